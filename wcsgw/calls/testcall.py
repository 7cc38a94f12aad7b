"""One call to a test line: its SIP session answered at once, its RTP socket, its media.

The test lines' service (:mod:`wcsgw.calls.testlines`) routes each new INVITE here; from then
on the call is on its own, as a phone's would be: it answers (or refuses) the offer, follows
re-INVITEs (hold, unhold, a new address), takes a late offer's answer from the ACK, and sends
what its line sends — ``echo`` the caller's own packets as its stream, ``tone`` the sine of
:mod:`wcsgw.calls.testtone`, ``dtmf`` silence and each digit it hears said back and played
(:mod:`wcsgw.calls.testdtmf`) — only where the agreed direction allows.  It never outlives
``max_duration``, and on its end it gives its ports back and leaves the line's list.

G.711 only: the lines exist to prove a path works, and G.711 needs no codec library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import attr
from twisted.internet import defer, task
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from wcsgw.calls.addresses import sendable
from wcsgw.calls.testdtmf import DigitPlayer, digit_from_rtp
from wcsgw.calls.testtone import FRAME_SECONDS, SAMPLE_RATE, Tone
from wcsgw.media.dtmfdetector import DtmfDetector
from wcsgw.media.ports import PortsExhausted
from wcsgw.media.rtp import RtpError, build_rtp, parse_rtp
from wcsgw.media.settled import settled
from wcsgw.media.stream import OutboundStream
from wcsgw.media.udp import RtpSocket
from wcsgw.sdp.codecs import PCMA, PCMU, TELEPHONE_EVENT_8000, Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import SessionDescription
from wcsgw.sdp.negotiate import PLAIN_RTP_PROTOS, audio_answer, audio_offer, new_session_id
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.events import InfoReceived
from wcsgw.sip.ids import new_tag
from wcsgw.sip.info import DTMF_RELAY, dtmf_relay_body, parse_dtmf_info
from wcsgw.sip.message import Request
from wcsgw.sip.reactor import DelayedCall
from wcsgw.sip.responses import make_response
from wcsgw.sip.session import ReinviteOffered
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import Cancelled, Confirmed, Ended, Failed, IncomingInvite, UasEvent

if TYPE_CHECKING:
    from wcsgw.calls.testlines import TestLines

__all__ = ["TestCall", "first_g711"]

log = Logger(namespace="wcsgw.testlines")

_G711 = ("pcmu", "pcma")


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
        self._tone: Tone | DigitPlayer | None = None
        #: the ``dtmf`` line's ear for RFC 4733 digits (each key press once)
        self._detector = DtmfDetector()
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
            self.lines.forget(self)
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
            self.rtp.set_remote(sendable(connection.address, self.rtp.host), theirs.port, theirs.rtcp,
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
        log.info("test line {line}: call {sip_call_id} over ({event})", line=self.line,
                 sip_call_id=self.session.call_id if self.session else None, event=event)
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
        elif self.line in ("tone", "dtmf"):
            if self.line == "dtmf":
                self._tone = DigitPlayer(media.codec,
                                         media.dtmf.payload_type if media.dtmf else None)
            else:  # a restarted tone (re-INVITE) goes on from where the last one's marker left it
                self._tone = Tone(media.codec, first=self._tone is None or self._tone.first)
            self._loop = task.LoopingCall.withCount(self._tone_tick)
            self._loop.clock = self.reactor
            self._loop.start(FRAME_SECONDS, now=True)

    def _tone_tick(self, count: int) -> None:
        """``count`` ticks have passed since the last call (LoopingCall.withCount): send
        what the tone's clock says is due (:meth:`Tone.packets`)."""
        if self.rtp is None or self.media is None or self._tone is None:
            return
        for packet in self._tone.packets(count):
            self.rtp.send_rtp(packet)
            self.packets_sent += 1

    def _on_rtp(self, data: bytes, now: float) -> None:
        self.packets_received += 1
        if self.line == "dtmf":
            self._heard_rtp(data)
            return
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

    def _heard_rtp(self, data: bytes) -> None:
        """``dtmf``: a digit that begins in this packet is said back as events and played."""
        media, player = self.media, self._tone
        if media is None or not isinstance(player, DigitPlayer):
            return  # not sending (held, or media not agreed yet): nothing to say it back with
        digit = digit_from_rtp(self._detector, data,
                               media.dtmf.payload_type if media.dtmf else None)
        if digit is not None:
            player.press(digit, event=True)

    def _info(self, event: InfoReceived) -> None:
        """``dtmf``: a digit by SIP INFO is answered by an INFO with that digit, and played."""
        digit = parse_dtmf_info(event.content_type, event.body)
        session = self.session
        if self.line != "dtmf" or digit is None or session is None or session.terminated:
            return
        player = self._tone
        if isinstance(player, DigitPlayer) and not player.press(digit, event=False):
            return  # too many waiting: dropped, and not said back either
        session.send_info(DTMF_RELAY, dtmf_relay_body(digit), self.reactor.seconds())

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
                self.lines.forget(self)

            self._closing = closed.addBoth(forget)
        return settled(self._closing)


#: What a test call does with each event of its IncomingInvite.
_HANDLERS: dict[type, Callable[[TestCall, Any], None]] = {
    Confirmed: TestCall._confirmed,
    ReinviteOffered: TestCall._reoffered,
    InfoReceived: TestCall._info,
    Ended: TestCall._over,
    Failed: TestCall._over,
    Cancelled: TestCall._over,
}
