"""Fakes for driving a real :class:`~wcsgw.calls.call.Call` (or a subclass) in unit tests.

The SIP dialog and the browser's WebRTC leg are fakes (what they would send is recorded); the
SIP-side media socket is a real UDP socket on loopback from a real PortAllocator, while every
timer runs on a :class:`task.Clock` (:class:`HybridReactor`).  A module of its own so that
test modules share the fakes without importing each other's TestCases.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor, task

from tests.peers.ports import free_port
from wcsgw.calls.call import CallEnvironment
from wcsgw.media.ports import PortAllocator
from wcsgw.sdp.parser import parse_sdp


class HybridReactor(task.Clock):
    """A Clock for timers, the real reactor for UDP sockets."""

    def listenUDP(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 (Twisted API)
        return reactor.listenUDP(*args, **kwargs)


class FakeLeg:
    """What a Call uses of a WebRtcLeg; records the RTP it would send to the browser."""

    host = "127.0.0.1"
    ice_ufrag = "ufrg"
    ice_pwd = "p" * 24
    fingerprint = ("sha-256", "AB:" * 31 + "CD")

    def __init__(self, reactor: Any, bind_host: str, advertised: str, allocator: PortAllocator,
                 **kwargs: Any) -> None:
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
    """Set ``case.clock`` (a :class:`HybridReactor` at a realistic epoch) and
    ``case.allocator`` (real loopback ports).  The fake legs come with :func:`fake_env`."""
    case.clock = HybridReactor()
    case.clock.advance(1_700_000_000)
    low = free_port()
    case.allocator = PortAllocator("127.0.0.1", low - low % 2, low - low % 2 + ports)


def fake_env(case: Any, **settings: Any) -> CallEnvironment:
    """The CallEnvironment of a :func:`fake_call_setup` test: fake SIP, loopback media, and
    the fake legs (:class:`FakeInvite`, :class:`FakeLeg`) built by its factories."""
    settings.setdefault("make_invite", FakeInvite)
    settings.setdefault("make_browser_leg", FakeLeg)
    return CallEnvironment(reactor=case.clock, sip=FakeSip(), allocator=case.allocator,
                           media_host="127.0.0.1", media_advertised="127.0.0.1", **settings)
