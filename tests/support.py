"""Small helpers shared by the trial tests: coroutine tests and event waiting."""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable, TypeVar

from twisted.internet import defer, reactor, task

T = TypeVar("T")


def inline(f: Callable[..., Awaitable[T]]) -> Callable[..., defer.Deferred]:
    """Let an ``async def`` test method run under trial (which wants a Deferred back)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> defer.Deferred:
        return defer.ensureDeferred(f(*args, **kwargs))

    return wrapper


class EventLog:
    """Collects events and lets a test await the first one matching a predicate.

    Awaiting an event (not sleeping) is how tests synchronise with the gateway; ``timeout``
    only bounds how long a broken run can hang, it is never what the test measures.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._waiters: list[tuple[Callable[[Any], bool], defer.Deferred]] = []

    def __call__(self, *event: Any) -> None:
        item = event[0] if len(event) == 1 else event
        self.events.append(item)
        for pair in list(self._waiters):
            predicate, d = pair
            if predicate(item):
                self._waiters.remove(pair)
                d.callback(item)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 15.0) -> defer.Deferred:
        for item in self.events:
            if predicate(item):
                return defer.succeed(item)
        d: defer.Deferred = defer.Deferred()
        pair = (predicate, d)
        self._waiters.append(pair)

        def expire() -> None:
            if not d.called:
                self._waiters.remove(pair)
                d.errback(AssertionError(f"no matching event within {timeout}s; saw {self.events!r}"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d


async def ready_or_reload_once(wait_ready: Callable[[], Awaitable[Any]],
                               reload: Callable[[], Awaitable[Any]],
                               why: Callable[[], str]) -> None:
    """Wait for a page to say it is ready; if it does not, log ``why()`` and reload it once,
    as a person would.  Once in a full CI run (of thousands of page loads) a Phone UI's module
    had not run; a second failure is the test's, with ``why()`` as its message."""
    from twisted.python import log

    try:
        await wait_ready()
        return
    except Exception:
        log.msg(why() + "; reloading once")
    await reload()
    try:
        await wait_ready()
    except Exception as e:
        raise AssertionError(why()) from e


def deferred_sleep(seconds: float) -> defer.Deferred:
    """A pause that is part of a scenario (e.g. letting a registrar time out), not a sync."""
    return task.deferLater(reactor, seconds, lambda: None)


def assert_near(case: Any, value: float, expected: float, tolerance: float) -> None:
    """``|value - expected| <= tolerance`` (trial's assertAlmostEqual has no ``delta``)."""
    case.assertLessEqual(abs(value - expected), tolerance,
                         f"{value} is not within {tolerance} of {expected}")


def udp_port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing is bound to ``host:port`` (UDP): a socket was really released."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def with_ssrc(packet: bytes, ssrc: int) -> bytes:
    """An RTP packet with its SSRC replaced (an echo must look like our stream)."""
    import struct

    return packet[:8] + struct.pack("!I", ssrc) + packet[12:]
