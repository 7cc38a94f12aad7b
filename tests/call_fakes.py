"""Fakes for driving a real :class:`~wcsgw.calls.call.Call` (or a subclass) in unit tests.

The SIP dialog, the browser's WebRTC leg and the SIP side's RTP socket pair are fakes (what
they would send is recorded, with the clock's time); every timer runs on a
:class:`task.Clock`, and the ports come from a :class:`FakePortAllocator`, whose ports are
never bound.  So a call's unit tests open no socket: what the SIP side sends is handed to the
socket at a clock time (:meth:`FakeRtpSocket.receive`), exact and without waiting.  A module
of its own so that test modules share the fakes without importing each other's TestCases.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.internet.protocol import DatagramProtocol

from wcsgw.calls.environment import CallEnvironment
from wcsgw.media.ports import PortAllocator
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.parser import parse_sdp

Address = tuple[str, int]


class FakePortAllocator(PortAllocator):
    """A :class:`PortAllocator` whose ports nobody binds: the bind test (a socket per port
    tried) always passes, so the range's arithmetic — pairs, holes, the reserve, release — is
    the real one and exact, and no socket is opened for it."""

    def _bindable(self, port: int) -> bool:
        return True


class _FakeUdpPort:
    """What :class:`RtpSocket` keeps of a port it listens on: the protocol datagrams go to,
    and ``stopListening``; it writes nothing (:class:`FakeRtpSocket` records its sends)."""

    def __init__(self, number: int, protocol: DatagramProtocol) -> None:
        self.number = number
        self.protocol = protocol
        self.listening = True

    def write(self, data: bytes, address: Address) -> None:
        pass

    def stopListening(self) -> None:  # noqa: N802 (Twisted API)
        self.listening = False


class _NoSockets:
    """The reactor as :class:`FakeRtpSocket` shows it to :class:`RtpSocket`: ``listenUDP``
    hands out a :class:`_FakeUdpPort` and binds nothing; time is the test's reactor's."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.ports: dict[int, _FakeUdpPort] = {}

    def listenUDP(self, port: int, protocol: DatagramProtocol,  # noqa: N802 (Twisted API)
                  interface: str = "") -> _FakeUdpPort:
        self.ports[port] = _FakeUdpPort(port, protocol)
        return self.ports[port]

    def seconds(self) -> float:
        return float(self.reactor.seconds())


class FakeRtpSocket(RtpSocket):
    """The SIP side's RTP/RTCP pair without sockets: the real :class:`RtpSocket` (its ports
    from the allocator, its latches, the RFC 5761 split, ``close``) over ports that bind
    nothing.  What the call sends is recorded with the clock's time (:attr:`rtp`,
    :attr:`rtcp`: all it is handed, whether or not a real socket would have a target for it);
    what the SIP side sends arrives by :meth:`receive` at the clock's time, through the latch
    to ``on_rtp`` / ``on_rtcp`` as a datagram from the kernel would."""

    def __init__(self, reactor: Any, allocator: PortAllocator, host: str | None = None,
                 **kwargs: Any) -> None:
        self._udp = _NoSockets(reactor)
        kwargs.setdefault("clock", self._udp.seconds)
        super().__init__(self._udp, allocator, host, **kwargs)
        self.reactor = reactor
        self.rtp: list[tuple[float, bytes]] = []  # (clock time, packet) toward the SIP side
        self.rtcp: list[tuple[float, bytes]] = []

    @property
    def rtp_packets(self) -> list[bytes]:
        """The RTP sent toward the SIP side, without the times."""
        return [packet for _, packet in self.rtp]

    @property
    def rtcp_packets(self) -> list[bytes]:
        """The RTCP sent toward the SIP side, without the times."""
        return [packet for _, packet in self.rtcp]

    @property
    def listening(self) -> bool:
        """Whether the ports are still open (:meth:`close` stops them)."""
        return any(port.listening for port in self._udp.ports.values())

    def send_rtp(self, data: bytes) -> None:
        self.rtp.append((self._udp.seconds(), data))

    def send_rtcp(self, data: bytes) -> None:
        self.rtcp.append((self._udp.seconds(), data))

    def receive(self, data: bytes, source: Address | None = None, *,
                rtcp_port: bool = False) -> None:
        """A datagram from ``source`` arrives now (the clock's time) on the RTP port, or the
        RTCP port with ``rtcp_port``; ``source`` defaults to the address the far end's SDP
        names for that port.  A closed port hears nothing, as a closed socket."""
        port = self._udp.ports[self.rtcp_port if rtcp_port else self.rtp_port]
        if source is None:
            latch = self.rtcp_latch if rtcp_port else self.rtp_latch
            assert latch.sdp_address is not None, "no SDP from the far end yet: name a source"
            source = latch.sdp_address
        if port.listening:
            port.protocol.datagramReceived(data, source)


class FakeLeg:
    """What a Call uses of a WebRtcLeg; records the RTP it would send to the browser."""

    ice_ufrag = "ufrg"
    ice_pwd = "p" * 24
    fingerprint = ("sha-256", "AB:" * 31 + "CD")

    def __init__(self, reactor: Any, bind_host: str, advertised: str, allocator: PortAllocator,
                 **kwargs: Any) -> None:
        self.host = advertised or bind_host  # what the browser is told, as a WebRtcLeg's
        self.bind_host = bind_host
        self.allocator = allocator
        self.ports = allocator.allocate(1)
        self.port = self.ports[0]
        self.rtp: list[tuple[float, bytes]] = []  # (clock time, packet)
        self.rtcp: list[bytes] = []
        self.on_rtp = self.on_rtcp = self.on_state = lambda *a: None
        self.clock = reactor
        self.remote: Any = None
        self.started = False

    @property
    def rtp_packets(self) -> list[bytes]:
        """The RTP sent to the browser, without the times."""
        return [packet for _, packet in self.rtp]

    def set_remote(self, ufrag: str, pwd: str, fingerprint: Any) -> None:
        self.remote = (ufrag, pwd, fingerprint)

    def start(self) -> None:
        self.started = True

    def send_rtp(self, packet: bytes) -> None:
        self.rtp.append((self.clock.seconds(), packet))

    def send_rtcp(self, packet: bytes) -> None:
        self.rtcp.append(packet)

    def close(self) -> defer.Deferred:
        if self.ports:
            self.allocator.release(self.ports)
            self.ports = []
        return defer.succeed(None)


class FakeInvite:
    """What a Call uses of an OutgoingInvite: the offers and answers it would send, INFOs and
    hang-ups."""

    def __init__(self, endpoint: Any, account: Any, uri: str, sdp: bytes, *, listener: Any,
                 **kwargs: Any) -> None:
        self.offer = sdp
        self.listener = listener
        self.reinvites: list[bytes] = []
        self.reinvite_answers: list[bytes] = []
        self.terminated = False
        self.hung_up = False
        self.reinvite_in_progress = False
        self.refer_in_progress = False
        self.request_uri = uri
        self.infos: list[tuple[str, bytes]] = []

    def send_info(self, content_type: str, body: bytes, now: float) -> None:
        self.infos.append((content_type, body))

    def start(self, now: float) -> None:
        pass

    def hangup(self, now: float) -> None:
        self.hung_up = self.terminated = True

    def reinvite(self, sdp: bytes, now: float) -> None:
        self.reinvites.append(sdp)

    def answer_reinvite(self, sdp: bytes, now: float) -> None:
        self.reinvite_answers.append(sdp)

    def reject_reinvite(self, status: int, now: float, reason: str | None = None) -> None:
        self.reinvite_answers.append(str(status).encode())

    def offered_codecs(self) -> list:
        return parse_sdp(self.offer).media[0].codecs()


class FakeIncomingInvite:
    """What an InboundCall uses of an IncomingInvite: the caller's offer, our answer or
    rejection, INFOs."""

    def __init__(self, offer: bytes) -> None:
        self.offer_sdp = offer
        self.answered: bytes | None = None
        self.rejected: int | None = None
        self.terminated = False
        self.listener = lambda event: None
        self.infos: list[tuple[str, bytes]] = []

    def send_info(self, content_type: str, body: bytes, now: float) -> None:
        self.infos.append((content_type, body))

    def ring(self, now: float, sdp: bytes | None = None) -> None:
        pass

    def answer(self, sdp: bytes, now: float) -> None:
        self.answered = sdp

    def reject(self, status: int, reason: str | None, now: float, **kw: Any) -> None:
        self.rejected = status

    def hangup(self, now: float) -> None:
        self.terminated = True


class FakeSip:
    endpoint = None


class Account:
    login = "alice"


def sip_answer(formats: list[tuple[int, str, str | None]], port: int = 40000,
               ptime: int | None = None) -> bytes:
    """An SDP answer from the SIP side: ``formats`` as (payload type, rtpmap, fmtp)."""
    text = (f"v=0\r\no=- 5 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt, _, _ in formats)}\r\n")
    for pt, rtpmap, fmtp in formats:
        text += f"a=rtpmap:{pt} {rtpmap}\r\n"
        if fmtp:
            text += f"a=fmtp:{pt} {fmtp}\r\n"
    if ptime:
        text += f"a=ptime:{ptime}\r\n"
    return (text + "a=sendrecv\r\n").encode()


def fake_call_setup(case: Any, ports: int = 200) -> None:
    """Set ``case.clock`` (a :class:`task.Clock` at a realistic epoch) and ``case.allocator``
    (a :class:`FakePortAllocator`).  The fake legs and socket come with :func:`fake_env`."""
    case.clock = task.Clock()
    case.clock.advance(1_700_000_000)
    case.allocator = FakePortAllocator("127.0.0.1", 20000, 20000 + ports)


def fake_env(case: Any, **settings: Any) -> CallEnvironment:
    """The CallEnvironment of a :func:`fake_call_setup` test: fake SIP and the fakes its
    factories build (:class:`FakeInvite`, :class:`FakeLeg`, :class:`FakeRtpSocket`)."""
    settings.setdefault("make_invite", FakeInvite)
    settings.setdefault("make_browser_leg", FakeLeg)
    settings.setdefault("make_rtp_socket", FakeRtpSocket)
    settings.setdefault("media_host", "127.0.0.1")
    settings.setdefault("browser_address", "127.0.0.1")
    settings.setdefault("sip_address", "127.0.0.1")
    return CallEnvironment(reactor=case.clock, sip=FakeSip(), allocator=case.allocator,
                           **settings)
