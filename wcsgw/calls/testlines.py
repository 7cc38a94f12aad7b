"""The built-in test lines: ``echo`` (sends your audio back) and ``tone`` (a 1 kHz tone).

They make a fresh install callable with no PBX anywhere: a browser session with an empty SIP
domain calls ``echo`` or ``tone``, and the gateway's own SIP endpoint INVITEs the test lines
over loopback UDP.  So the test lines are a *separate* SIP user agent — their own
:class:`~wcsgw.sip.service.SipService` on 127.0.0.1, port chosen at start — and a call to them
goes through the whole B2BUA: INVITE, offer/answer, RTP, BYE, exactly as a call to a phone.

Each call is an :class:`~wcsgw.sip.uas.IncomingInvite` answered at once:

* the Request-URI's user picks the line; any other user gets 404, an INVITE no dialog can be
  made from 400, an offer that does not parse 400;
* the answer takes the first G.711 codec of the offer (PCMU or PCMA, with the offerer's payload
  type) plus telephone-event/8000 if offered; no G.711: 488.  An INVITE without SDP (late offer)
  gets our offer in the 200 and the codec is taken from the ACK's answer;
* ``echo`` re-sends every received RTP packet of the negotiated payload types (audio and
  telephone-event) as its own stream: its SSRC, continuous sequence numbers and timestamps
  (:class:`~wcsgw.media.stream.OutboundStream`);
* ``tone`` sends 160 samples of a 1 kHz sine every 20 ms (a ``LoopingCall`` on the reactor),
  timestamps +160 per packet; a late reactor catches up with a burst of up to 100 ms, and a
  longer stall is skipped with the timestamps moved on by it, so the receiver's clock stays true;
* media goes out only where the answer's direction allows it (a sendonly offer gets recvonly);
  RTCP that arrives is ignored and none is sent (the gateway's RTP timeout watches RTP);
* a call ends on the caller's BYE, after ``max_duration`` (10 minutes) with our BYE — a test
  line must never stay up forever — or when the service stops (BYE to every live call, bounded
  wait, then the sockets are closed whatever happened).

Media sockets come from the :class:`~wcsgw.media.ports.PortAllocator` given (the gateway passes
its own, so test-line ports stay in the configured range and never collide with a call's).
"""

from __future__ import annotations

import random
from typing import Any, Callable

import attr
import numpy as np
from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from wcsgw.config import SipSettings
from wcsgw.media import g711
from wcsgw.media.ports import PortAllocator, PortsExhausted
from wcsgw.media.rtp import RtpError, build_rtp, parse_rtp
from wcsgw.media.settled import settled
from wcsgw.media.stream import OutboundStream
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import PCMA, PCMU, TELEPHONE_EVENT_8000, Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import SessionDescription
from wcsgw.sdp.negotiate import PLAIN_RTP_PROTOS, audio_answer, audio_offer, new_session_id
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.account import uri_host
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.ids import new_tag
from wcsgw.sip.message import Request
from wcsgw.sip.reactor import DelayedCall
from wcsgw.sip.responses import make_response
from wcsgw.sip.service import SipService
from wcsgw.sip.session import ReinviteOffered
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import (
    Cancelled,
    Confirmed,
    Ended,
    Failed,
    IncomingInvite,
    IncomingInvites,
    UasEvent,
)
from wcsgw.sip.uri import parse_uri

__all__ = ["LINES", "MAX_CALL_DURATION", "TestCall", "TestLines"]

log = Logger(namespace="wcsgw.testlines")

#: The lines there are.
LINES: tuple[str, ...] = ("echo", "tone")
#: No test call lasts longer than this (seconds).
MAX_CALL_DURATION = 600.0
#: How long stopping waits for the BYEs of live calls to be answered.
STOP_GRACE = 2.0

TONE_HZ = 1000.0
SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE
#: Packets the tone sends at once to catch up with a late reactor (100 ms); longer stalls
#: are skipped.
MAX_TONE_BURST = 5
#: -12 dBFS: clearly audible, far from clipping after any gain a phone adds.
TONE_AMPLITUDE = 0.25 * 32767
_G711 = ("pcmu", "pcma")


def tone_frame(codec: str) -> bytes:
    """One 20 ms packet of the 1 kHz tone in ``codec`` (PCMU/PCMA).

    1 kHz at 8 kHz sampling is 8 samples per period, so 160 samples hold exactly 20 periods:
    the same payload, sent again and again, is a continuous sine.
    """
    n = np.arange(FRAME_SAMPLES)
    samples = TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * n / SAMPLE_RATE)
    return g711.encode(codec, samples)


def first_g711(offer: SessionDescription) -> Codec | None:
    """The first PCMU or PCMA of the first audio m-line (plain RTP, not rejected) that has one:
    the stream :func:`~wcsgw.sdp.negotiate.audio_answer` then accepts."""
    for m in offer.media:
        if m.kind != "audio" or m.rejected or m.proto.upper() not in PLAIN_RTP_PROTOS:
            continue
        for codec in m.codecs():
            if codec.key in _G711 and codec.clock_rate == SAMPLE_RATE and codec.channels == 1:
                return codec
    return None


@attr.s(auto_attribs=True, eq=False)
class _Media:
    """What was agreed for one call's stream."""

    codec: Codec
    dtmf: Codec | None
    sends: bool


class TestCall:
    """One call to a test line: its SIP session, RTP socket and media source."""

    __test__ = False  # not a test case, whatever its name says

    def __init__(self, lines: "TestLines", line: str) -> None:
        self.lines = lines
        self.line = line
        self.session: IncomingInvite | None = None
        self.rtp: RtpSocket | None = None
        self.media: _Media | None = None
        self.packets_sent = 0
        self.packets_received = 0
        self._loop: task.LoopingCall | None = None
        self._limit: DelayedCall | None = None
        self._stream: OutboundStream | None = None
        self._tone = b""
        self._seq = 0
        self._ts = 0
        self._ssrc = 0
        self._first = True
        self._closing: defer.Deferred[None] | None = None

    def __repr__(self) -> str:
        call_id = self.session.call_id if self.session is not None else None
        return f"<TestCall {self.line} {call_id!r}>"

    @property
    def reactor(self) -> Any:
        return self.lines.reactor

    # ------------------------------------------------------------------ SIP

    def take(self, request: Request, transaction: ServerTransaction, now: float) -> None:
        """Answer the INVITE (or refuse it); called from the endpoint's handler."""
        endpoint = self.lines.endpoint
        assert endpoint is not None
        try:
            session = IncomingInvite(endpoint, request, transaction, listener=self.on_event)
        except ValueError as exc:
            endpoint.respond(make_response(request, 400, str(exc)[:100], to_tag=new_tag()), now)
            self.lines._forget(self)
            return
        self.session = session
        self._limit = self.reactor.callLater(self.lines.max_duration, self._time_is_up)
        if session.offer_sdp is None:
            self._answer_late_offer(now)
        else:
            self._answer_offer(session.offer_sdp, now)

    def _answer_offer(self, offer_sdp: bytes, now: float) -> None:
        session = self.session
        assert session is not None
        try:
            offer = parse_sdp(offer_sdp)
        except SdpError as exc:
            session.reject(400, f"Malformed SDP: {exc}"[:100], now)
            return
        codec = first_g711(offer)
        if codec is None:
            session.reject(488, None, now, headers=[("Warning", '305 wcsgw "no G.711 offered"')])
            return
        if not self._open_socket(now):
            return
        assert self.rtp is not None
        try:
            answer = audio_answer(
                offer, self.lines.media_address, self.rtp.rtp_port, [codec, TELEPHONE_EVENT_8000],
                session_id=new_session_id(),
            )
        except SdpError:  # not expected: first_g711 found a stream audio_answer accepts
            session.reject(488, None, now)
            return
        self._agree(offer, answer)
        session.answer(serialize_sdp(answer).encode(), now)
        self._start_media()

    def _answer_reinvite(self, sdp: bytes | None) -> None:
        """Hold, unhold or a new address from the caller: answer as RFC 3264 says (the
        offered direction mirrored), keep a G.711 codec, follow the new address."""
        session, now = self.session, self.reactor.seconds()
        assert session is not None and self.rtp is not None
        try:
            offer = parse_sdp(sdp) if sdp else None
        except SdpError:
            offer = None
        codec = first_g711(offer) if offer is not None else None
        if offer is None or codec is None:
            session.reject_reinvite(488, now)
            return
        answer = audio_answer(offer, self.lines.media_address, self.rtp.rtp_port,
                              [codec, TELEPHONE_EVENT_8000], session_id=new_session_id())
        self._agree(offer, answer)
        session.answer_reinvite(serialize_sdp(answer).encode(), now)
        if self._loop is not None and self._loop.running:
            self._loop.stop()  # restarted below if we still send (not while held)
        self._loop = None
        self._start_media()

    def _answer_late_offer(self, now: float) -> None:
        session = self.session
        assert session is not None
        if not self._open_socket(now):
            return
        assert self.rtp is not None
        offer = audio_offer(
            self.lines.media_address, self.rtp.rtp_port, [PCMU, PCMA, TELEPHONE_EVENT_8000],
            session_id=new_session_id(),
        )
        session.answer(serialize_sdp(offer).encode(), now)  # the ACK brings the answer

    def _late_answer(self, ack_sdp: bytes | None) -> None:
        """The ACK's SDP answer to our offer: take its codec, or end the call."""
        try:
            answer = parse_sdp(ack_sdp) if ack_sdp else None
        except SdpError:
            answer = None
        codec = first_g711(answer) if answer is not None else None
        if answer is None or codec is None:
            log.info("test line {line}: no usable answer in the ACK; hanging up", line=self.line)
            if self.session is not None:  # the transport adapter flushes the BYE
                self.session.hangup(self.reactor.seconds())
            return
        # An answer's payload types are the offer's (RFC 3264 §6.1): ours.  Its direction is
        # the peer's: we send unless it only sends (or is inactive).
        self._agree(answer, answer, codec=codec)
        media = answer.first_audio()
        assert self.media is not None and media is not None
        self.media.sends = answer.direction_for(media) in ("sendrecv", "recvonly")
        self._start_media()

    def _open_socket(self, now: float) -> bool:
        session = self.session
        assert session is not None
        try:
            self.rtp = RtpSocket(self.reactor, self.lines.allocator)
        except (PortsExhausted, CannotListenError) as exc:
            log.warn("test line {line}: no media port ({exc})", line=self.line, exc=exc)
            session.reject(503, "No Media Port", now, headers=[("Retry-After", "5")])
            return False
        self.rtp.on_rtp = self._on_rtp
        return True

    def _agree(self, remote: SessionDescription, ours: SessionDescription,
               codec: Codec | None = None) -> None:
        """Point the socket at the peer's stream and note codec, DTMF and direction."""
        assert self.rtp is not None
        theirs = remote.first_audio()
        mine = ours.first_audio()
        assert theirs is not None and mine is not None
        codecs = mine.codecs()
        if codec is None:
            codec = next(c for c in codecs if c.key in _G711)
        dtmf = next((c for c in codecs if c.key == "telephone-event"), None)
        direction = ours.direction_for(mine)
        self.media = _Media(codec, dtmf, direction in ("sendrecv", "sendonly"))
        connection = remote.connection_for(theirs)
        if connection is not None and theirs.port:
            # latched to the SDP's IP or the INVITE's source IP (wcsgw.media.udp)
            source = getattr(getattr(self.session, "transaction", None), "source", None)
            self.rtp.set_remote(connection.address, theirs.port, theirs.rtcp,
                                rtcp_mux=mine.rtcp_mux,
                                signalling=(source.host,) if source is not None else ())

    def on_event(self, event: UasEvent) -> None:
        """The IncomingInvite's listener: each event type its handler (:data:`_HANDLERS`)."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _confirmed(self, event: Confirmed) -> None:
        if self.session is not None and self.session.offer_sdp is None:
            self._late_answer(event.ack_sdp)

    def _reoffered(self, event: ReinviteOffered) -> None:
        self._answer_reinvite(event.sdp)

    def _over(self, event: Ended | Failed | Cancelled) -> None:
        log.info("test line {line}: call {call} over ({event})", line=self.line,
                 call=self.session.call_id if self.session else None, event=event)
        self.close()

    def hangup(self) -> None:
        """End the call from the test line's side (BYE), from outside the endpoint."""
        if self.session is not None and not self.session.terminated:
            self.session.hangup(self.reactor.seconds())

    def _time_is_up(self) -> None:
        self._limit = None
        log.info("test line {line}: {limit} s are up, hanging up", line=self.line,
                 limit=self.lines.max_duration)
        self.hangup()

    # ------------------------------------------------------------------ media

    def _start_media(self) -> None:
        media = self.media
        if media is None or not media.sends:
            return
        if self.line == "echo":
            self._stream = OutboundStream(clock_rate=SAMPLE_RATE)
        elif self.line == "tone":
            self._tone = tone_frame(media.codec.name)
            rng = random.SystemRandom()  # RFC 3550 §5.1: random SSRC, sequence, timestamp
            self._ssrc, self._seq, self._ts = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
            self._loop = task.LoopingCall.withCount(self._tone_tick)
            self._loop.clock = self.reactor
            self._loop.start(FRAME_SECONDS, now=True)

    def _tone_tick(self, count: int) -> None:
        """``count`` ticks have passed since the last call (LoopingCall.withCount): a late
        reactor catches up with a short burst, so the receiver hears no gap; after a longer
        stall the missed packets are skipped, but the timestamps still advance by them so
        our clock stays true to the wall clock."""
        if self.rtp is None or self.media is None:
            return
        burst = min(count, MAX_TONE_BURST)
        skipped = count - burst
        for _ in range(burst):
            if not self._first:
                self._ts = (self._ts + FRAME_SAMPLES * (1 + skipped)) & 0xFFFFFFFF
                self._seq = (self._seq + 1) & 0xFFFF
            skipped = 0
            packet = build_rtp(
                payload_type=self.media.codec.payload_type or 0, sequence=self._seq,
                timestamp=self._ts, ssrc=self._ssrc, payload=self._tone, marker=self._first,
            )
            self._first = False
            self.rtp.send_rtp(packet)
            self.packets_sent += 1

    def _on_rtp(self, data: bytes, now: float) -> None:
        self.packets_received += 1
        stream, media, rtp = self._stream, self.media, self.rtp
        if stream is None or media is None or rtp is None:
            return  # tone, or media not agreed yet
        try:
            header = parse_rtp(data)
        except RtpError:
            return
        pt = header.payload_type
        if pt != media.codec.payload_type and (media.dtmf is None or pt != media.dtmf.payload_type):
            return
        payload = header.payload(data)
        seq, ts, rebased = stream.translate(
            header.ssrc, header.sequence, header.timestamp, now, len(payload)
        )
        rtp.send_rtp(build_rtp(payload_type=pt, sequence=seq, timestamp=ts, ssrc=stream.ssrc,
                               payload=payload, marker=header.marker or rebased))
        self.packets_sent += 1

    # ------------------------------------------------------------------ teardown

    def close(self) -> defer.Deferred[None]:
        """Stop media, release the ports, and leave the line's list of calls (once)."""
        if self._closing is None:
            if self._limit is not None and self._limit.active():
                self._limit.cancel()
            self._limit = None
            if self._loop is not None and self._loop.running:
                self._loop.stop()
            self._loop = None
            self._stream = None
            rtp, self.rtp = self.rtp, None
            closed = rtp.close() if rtp is not None else defer.succeed(None)

            def forget(_: object) -> None:
                self.lines._forget(self)

            self._closing = closed.addBoth(forget)
        return settled(self._closing)


class _Handler:
    """The test lines' RequestHandler: new INVITEs become :class:`TestCall` s."""

    def __init__(self, lines: "TestLines") -> None:
        self.lines = lines

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method != "INVITE" or transaction is None:
            return False
        try:
            if request.to.tag:
                return False  # in-dialog: the DialogRouter's (481 if it knows none)
            user = parse_uri(request.uri).user or ""
        except (SipParseError, ValueError):
            user = ""
        endpoint = self.lines.endpoint
        assert endpoint is not None
        if user.lower() not in LINES:
            endpoint.respond(make_response(request, 404, to_tag=new_tag()), now)
            return True
        call = TestCall(self.lines, user.lower())
        self.lines._calls.append(call)
        call.take(request, transaction, now)
        return True


#: What a test call does with each event of its IncomingInvite.
_HANDLERS: dict[type, Callable[[TestCall, Any], None]] = {
    Confirmed: TestCall._confirmed,
    ReinviteOffered: TestCall._reoffered,
    Ended: TestCall._over,
    Failed: TestCall._over,
    Cancelled: TestCall._over,
}


class TestLines(Service):
    """The test lines as a Twisted service: a SIP endpoint on 127.0.0.1 and its calls."""

    __test__ = False  # not a test case, whatever its name says

    def __init__(
        self,
        reactor: Any = None,
        *,
        allocator: PortAllocator | None = None,
        sip_settings: SipSettings | None = None,
        max_duration: float = MAX_CALL_DURATION,
    ) -> None:
        """``allocator`` gives media ports (default: 20000-29999 on 127.0.0.1, as the default
        media config); ``sip_settings`` the RFC 3261 timers and user agent (the gateway's
        ``[sip]``) — listen address and port are always 127.0.0.1 and a free port."""
        base = sip_settings or SipSettings()
        settings = attr.evolve(base, listen="127.0.0.1", port=0, advertised_address="",
                               user_agent=f"{base.user_agent} test lines")
        self._reactor = reactor
        self.sip = SipService(settings, reactor=reactor)
        self.allocator = allocator or PortAllocator("127.0.0.1", 20000, 29999)
        self.max_duration = max_duration
        self._calls: list[TestCall] = []
        self._idle_waiters: list[defer.Deferred[None]] = []

    @property
    def reactor(self) -> Any:
        return self.sip.reactor

    @property
    def endpoint(self) -> Any:
        return self.sip.endpoint

    @property
    def port(self) -> int:
        return self.sip.port

    @property
    def media_address(self) -> str:
        """The address put in our SDP: the allocator's, or loopback for a wildcard."""
        host = self.allocator.host
        return "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)

    def uri(self, user: str) -> str:
        """``sip:echo@127.0.0.1:PORT``: the Request-URI of a line (once started)."""
        return f"sip:{user}@{uri_host(self.sip.settings.advertised_host)}:{self.port}"

    @property
    def active_calls(self) -> int:
        """Calls taken and not yet fully closed (media ports still held)."""
        return len(self._calls)

    @property
    def calls(self) -> list[TestCall]:
        return list(self._calls)

    def wait_idle(self) -> defer.Deferred[None]:
        """Fires once no call is active (every call ended and its ports released)."""
        if not self._calls:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    # ------------------------------------------------------------------ service

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]  # Service is untyped
        self.sip.startService()
        endpoint = self.sip.endpoint
        assert endpoint is not None
        # In-dialog requests of calls that are gone get 481 from the router from the start.
        DialogRouter.install(endpoint)
        IncomingInvites.install(endpoint)
        endpoint.handlers.append(_Handler(self))
        log.info("test lines {lines} at {uri}", lines=", ".join(LINES), uri=self.uri("<line>"))

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        super().stopService()  # type: ignore[no-untyped-call]  # Service is untyped
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._calls:
            for call in list(self._calls):
                call.hangup()
            idle = self.wait_idle()

            def release() -> None:
                if not idle.called:
                    idle.callback(None)

            timer = self.reactor.callLater(STOP_GRACE, release)
            await idle
            if timer.active():
                timer.cancel()
            # Whatever did not end in time (a BYE unanswered): close it now.
            await defer.gatherResults([call.close() for call in list(self._calls)])
        if self.sip.running:
            await self.sip.stopService()

    def _forget(self, call: TestCall) -> None:
        if call in self._calls:
            self._calls.remove(call)
        if not self._calls:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                if not d.called:
                    d.callback(None)
