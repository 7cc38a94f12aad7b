"""What the SIP adapters use of a Twisted reactor, as typing Protocols.

Twisted describes its reactor with zope.interface interfaces, which a type checker cannot
use as types without a plugin; these Protocols name the few methods the adapters call, so
``SipTransport`` and ``SipService`` type-check under ``mypy --strict`` and take the real
reactor or a ``task.Clock`` (with fake listeners in tests) alike.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

__all__ = ["Clock", "DelayedCall", "ListeningPort", "SipReactor", "UdpPort"]


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...

    def getTime(self) -> float: ...  # noqa: N802 (Twisted API)


class Clock(Protocol):
    """``IReactorTime``: a reactor's clock, or ``task.Clock``."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., Any],  # noqa: N802
                  *args: Any, **kw: Any) -> DelayedCall: ...


class ListeningPort(Protocol):
    def getHost(self) -> Any: ...  # noqa: N802

    def stopListening(self) -> Any: ...  # noqa: N802 (a Deferred, or None)


class UdpPort(ListeningPort, Protocol):
    def write(self, datagram: bytes, addr: tuple[str, int]) -> Any: ...


class SipReactor(Clock, Protocol):
    """What ``SipTransport`` needs: the clock, UDP and TCP listeners, TCP connections."""

    def listenUDP(self, port: int, protocol: Any, interface: str = ...,  # noqa: N802
                  maxPacketSize: int = ...) -> UdpPort: ...  # noqa: N803

    def listenTCP(self, port: int, factory: Any, backlog: int = ...,  # noqa: N802
                  interface: str = ...) -> ListeningPort: ...

    def connectTCP(self, host: str, port: int, factory: Any, timeout: float = ...,  # noqa: N802
                   bindAddress: tuple[str, int] | None = ...) -> Any: ...  # noqa: N803
