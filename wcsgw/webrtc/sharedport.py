"""The shared browser port ([media] browser_port, docs/contract.md), Twisted: one UDP socket and
one ICE-TCP listener on the same number for every browser leg.

Thin on purpose: which leg a packet belongs to is decided by the sans-IO
:class:`~wcsgw.webrtc.mux.Demux`; the ICE-TCP connections are
:mod:`wcsgw.webrtc.icetcp`.  A :class:`~wcsgw.webrtc.leg.WebRtcLeg` built with ``mux=`` gets a
:class:`MuxBinding` instead of a socket of its own: the leg writes to it as it would to its
UDP port (the binding picks the transport from the address type), and closing the leg
unregisters it (``stopListening``), which forgets the addresses it proved and closes its
ICE-TCP connections.

A leg's address becomes "proven" when the leg answers an authenticated check from it (the
leg's control reports it through ``on_check``) — never because a packet merely named it.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol

from twisted.application.service import Service
from twisted.internet import defer

from wcsgw.media.fastudp import listen_udp
from wcsgw.webrtc.icetcp import IceTcpConnection, IceTcpFactory
from wcsgw.webrtc.mux import Demux, TcpAddress
from wcsgw.webrtc.stun import Address, IceCredentials, make_ice_credentials

__all__ = ["MuxBinding", "SharedPort", "SharedPortService", "MAX_CONNECTIONS", "IDLE_TIMEOUT"]

#: ICE-TCP connections open at once, at most (each is a browser leg that cannot use UDP).
MAX_CONNECTIONS = 1000
#: An ICE-TCP connection with no frame from a proven address for this long is closed (as long
#: as the per-leg consent timeout: a live browser checks consent every few seconds).
IDLE_TIMEOUT = 30.0


class MuxLeg(Protocol):
    """What the shared port uses of a leg."""

    ice_ufrag: str

    def receive(self, data: bytes, addr: Address) -> None: ...


class MuxBinding:
    """A leg's face of the shared port: what its own socket would be in per-call mode."""

    def __init__(self, owner: "SharedPort", ufrag: str) -> None:
        self.owner = owner
        self.ufrag = ufrag

    def prove(self, address: Address) -> None:
        """The leg answered an authenticated check from ``address``: route its packets here."""
        self.owner.demux.prove(address, self.ufrag)

    def forget(self, address: Address) -> None:
        """An ICE restart left ``address`` behind: stop routing it to the leg."""
        self.owner.forget(self.ufrag, address)

    def rekey(self, ufrag: str) -> None:
        """The leg restarted ICE with ``ufrag`` (from :meth:`SharedPort.new_credentials`)."""
        self.owner.demux.rekey(self.ufrag, ufrag)
        self.ufrag = ufrag

    def write(self, data: bytes, addr: Address) -> None:
        self.owner.send(data, addr)

    def stopListening(self) -> None:  # noqa: N802 (the socket's name, kept for the leg)
        self.owner.detach(self.ufrag)


class SharedPort:
    """One UDP socket and (``tcp``) one ICE-TCP listener on ``port`` of ``host``, shared by
    every browser leg; ``port`` 0 lets the kernel pick (tests), TCP then takes the same."""

    def __init__(self, reactor: Any, host: str, port: int, *, tcp: bool = True,
                 max_connections: int = MAX_CONNECTIONS,
                 idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.tcp = tcp
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.demux: Demux[MuxLeg] = Demux()
        self._connections: dict[TcpAddress, IceTcpConnection] = {}
        self._udp: Any = None
        self._tcp: Any = None
        #: ICE-TCP connections refused (over the limit, broken framing)
        self.tcp_refused = 0

    # -- listening ----------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._udp is not None

    def start(self) -> None:
        """Bind UDP, then TCP on the number UDP got (a busy port raises CannotListenError)."""
        self._udp = listen_udp(self.reactor, self.port, self.received, self.host)
        self.port = self._udp.getHost().port
        if self.tcp:
            try:
                self._tcp = self.reactor.listenTCP(self.port, IceTcpFactory(self),
                                                   interface=self.host)
            except Exception:
                self._udp.stopListening()
                self._udp = None
                raise

    def stop(self) -> defer.Deferred[None]:
        """Stop listening and drop the ICE-TCP connections (legs close with their calls)."""
        for connection in list(self._connections.values()):
            connection.abort()
        waits = [defer.maybeDeferred(port.stopListening)
                 for port in (self._udp, self._tcp) if port is not None]
        self._udp = self._tcp = None
        return defer.gatherResults(waits).addCallback(lambda _: None)

    @property
    def tcp_port(self) -> int:
        """The ICE-TCP passive candidate's port (the same number), 0 without ICE-TCP."""
        return self.port if self.tcp else 0

    # -- legs ---------------------------------------------------------------------------------

    def new_credentials(self) -> IceCredentials:
        """Fresh ICE credentials whose ufrag no registered leg has (the ufrag names the leg)."""
        while True:
            credentials = make_ice_credentials()
            if credentials.ufrag not in self.demux:
                return credentials

    def attach(self, leg: MuxLeg) -> MuxBinding:
        self.demux.register(leg.ice_ufrag, leg)
        return MuxBinding(self, leg.ice_ufrag)

    def detach(self, ufrag: str) -> None:
        for address in self.demux.unregister(ufrag):
            connection = self._connections.get(address) if type(address) is TcpAddress else None
            if connection is not None:
                connection.close()

    def forget(self, ufrag: str, address: Address) -> None:
        """``address`` no longer belongs to the leg ``ufrag`` (an ICE restart moved it): its
        packets are dropped from now on, its ICE-TCP connection closed.  An address some other
        leg proved since is left alone."""
        if self.demux.owner(address) != ufrag:
            return
        self.demux.forget(address)
        connection = self._connections.get(address) if type(address) is TcpAddress else None
        if connection is not None:
            connection.close()

    # -- packets ------------------------------------------------------------------------------

    def received(self, data: bytes, address: Address) -> None:
        leg = self.demux.route(data, address)
        if leg is not None:
            leg.receive(data, address)

    def send(self, data: bytes, address: Address) -> None:
        if type(address) is TcpAddress:
            connection = self._connections.get(address)
            if connection is not None:
                connection.send(data)
        elif self._udp is not None:
            self._udp.write(data, address)

    # -- ICE-TCP connections ------------------------------------------------------------------

    @property
    def tcp_connections(self) -> int:
        return len(self._connections)

    def tcp_up(self, connection: IceTcpConnection) -> None:
        assert connection.address is not None
        self._connections[connection.address] = connection

    def tcp_down(self, connection: IceTcpConnection) -> None:
        address = connection.address
        if address is not None and self._connections.get(address) is connection:
            del self._connections[address]
            self.demux.forget(address)


class SharedPortService(Service):
    """Listens while the gateway runs (started before calls, stopped after them)."""

    name = "browser-port"

    def __init__(self, shared: SharedPort) -> None:
        self.shared = shared

    def privilegedStartService(self) -> None:  # noqa: N802 (Twisted API)
        # Bound here, like the HTTP port: a busy port stops twistd at start-up.
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        if not self.shared.listening:
            self.shared.start()

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]
        if not self.shared.listening:
            self.shared.start()

    def stopService(self) -> Optional[defer.Deferred[None]]:  # noqa: N802 (Twisted API)
        super().stopService()  # type: ignore[no-untyped-call]
        return self.shared.stop()

