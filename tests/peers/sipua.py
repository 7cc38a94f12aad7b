"""A minimal scripted SIP user agent for raw-RTP peers (mediastream): it answers an INVITE
with an SDP naming ONE codec and the media peer's RTP port, takes ACK and BYE, and can hang up.

Usage inside a trial test (the reactor is running)::

    async def media(host, port, pt):        # the offer's RTP address and payload type
        ms = Mediastream("G729/8000", (host, port), infile, outfile, payload_type=pt)
        return await ms.start()              # anything with .port and .stop()
    ua = SipUA(CODECS["G729/8000"], media)
    ua.start()
    self.addCleanup(ua.stop)                 # hangs up what is live, stops media and SIP
    ... the gateway INVITEs sip:1003@127.0.0.1:<ua.port> ...
    call = await ua.next_call()              # the first INVITE taken (answered or refused)
    await call.confirmed()                   # the ACK came
    await ua.hangup(call) / await call.ended()   # BYE either way; media stopped after it

Why the gateway's own sans-IO SIP stack (``wcsgw.sip``: SipService, IncomingInvite): it
already does what a UAS must — 100 Trying, one To tag, the 2xx retransmitted until the ACK,
BYE in both directions, CANCEL — and it is tested on its own against Kamailio and RFC 4475.
What this module adds is only the test peer's behaviour:

* the answer names exactly ``codec``, under the offer's payload type number (RFC 3264 §6.1;
  the media factory gets that number — mediastream, stuck with its own numbers, puts a
  rewriting relay in front), or 488 when the offer lacks the codec (name and clock rate
  compared, case-insensitive) — every offer is kept in :attr:`UaCall.offered` so tests can
  read what the gateway proposed;
* the media peer is started on the offer's address BEFORE the 200 goes out (its port must be
  bound when RTP arrives), and stopped when the call ends — before :meth:`UaCall.ended` fires,
  so its recording is complete by then;
* a re-INVITE is answered with the same SDP (a new version), so a hold does not hang;
* other m-lines of the offer are refused with port 0 (RFC 3264 §6: as many m-lines as offered).
"""

from __future__ import annotations

import random
from typing import Any, Awaitable, Callable, Protocol

import attr
from twisted.internet import defer
from twisted.python.failure import Failure

from wcsgw.config import SipSettings
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import PLAIN_RTP_PROTOS
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.ids import new_tag
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.service import SipService
from wcsgw.sip.session import ReinviteOffered
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import Cancelled, Confirmed, Ended, Failed, IncomingInvite, IncomingInvites

__all__ = ["MediaPeer", "SipUA", "UaCall", "answer_sdp"]

WAIT = 15.0


class MediaPeer(Protocol):
    """What the media factory returns: a started peer with its local RTP port."""

    port: int

    def stop(self) -> "defer.Deferred[None]": ...


#: (the offer's RTP host, port, the codec's payload type in the offer) -> a started peer
MediaFactory = Callable[[str, int, int], Awaitable[MediaPeer]]


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _waiter(source: defer.Deferred, timeout: float, what: str) -> defer.Deferred:
    """A fresh Deferred following ``source`` (which stays shared and uncancelled), failing
    with TimeoutError after ``timeout`` seconds."""
    d: defer.Deferred = defer.Deferred()
    reactor = _reactor()

    def expire() -> None:
        if not d.called:
            d.errback(TimeoutError(f"sipua: no {what} within {timeout:g} s"))

    timer = reactor.callLater(timeout, expire)

    def relay(result: Any) -> None:
        if timer.active():
            timer.cancel()
        if not d.called:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

    source.addBoth(lambda r: (relay(r), r)[1])
    return d


def matching_audio(offer: SessionDescription, codec: Any) -> tuple[MediaDescription, int] | None:
    """The first plain-RTP audio m-line offering ``codec`` (name any case, clock rate), and
    the codec's payload type there."""
    for m in offer.media:
        if m.kind != "audio" or m.rejected or m.proto.upper() not in PLAIN_RTP_PROTOS:
            continue
        for c in m.codecs():
            if c.name.lower() == codec.name.lower() and c.clock_rate == codec.clock_rate:
                return m, c.payload_type
    return None


def answer_sdp(offer: SessionDescription, accepted: MediaDescription, codec: Any, pt: int,
               port: int, session_id: int, version: int = 0,
               address: str = "127.0.0.1") -> bytes:
    """Our answer: ``codec`` as payload type ``pt`` on ``port`` for the accepted m-line,
    port 0 for every other one; no rtcp-mux (the peer uses port + 1)."""
    lines = ["v=0", f"o=sipua {session_id} {version} IN IP4 {address}", "s=sipua",
             f"c=IN IP4 {address}", "t=0 0"]
    for m in offer.media:
        if m is accepted:
            lines += [f"m=audio {port} {m.proto} {pt}", f"a=rtpmap:{pt} {codec.rtpmap}"]
            if codec.fmtp:
                lines.append(f"a=fmtp:{pt} {codec.fmtp}")
            lines += ["a=ptime:20", "a=sendrecv"]
        else:
            lines.append(f"m={m.kind} 0 {m.proto} {' '.join(m.formats) or '0'}")
    return ("\r\n".join(lines) + "\r\n").encode()


class UaCall:
    """One INVITE the agent took."""

    def __init__(self, ua: "SipUA", request: Request) -> None:
        self.ua = ua
        self.request = request
        self.session: IncomingInvite | None = None
        #: the offer as received (bytes) and parsed (None when it did not parse)
        self.offer_sdp: bytes | None = None
        self.offer: SessionDescription | None = None
        #: the rtpmaps offered in the first audio m-line, in order ("G729/8000", ...)
        self.offered: list[str] = []
        #: what we answered: 200, or the refusal (488 ...)
        self.final_status: int | None = None
        self.media: MediaPeer | None = None
        #: the terminal SIP event (Ended, Failed, Cancelled) once it came
        self.outcome: Any = None
        self._confirmed: defer.Deferred = defer.Deferred()
        self._ended: defer.Deferred = defer.Deferred()
        self._sdp: bytes | None = None
        self._session_id = random.randrange(1, 1 << 31)
        self._version = 0

    @property
    def call_id(self) -> str:
        return self.request.call_id

    def confirmed(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires once our 200 is acknowledged (the call is up)."""
        return _waiter(self._confirmed, timeout, "ACK")

    def ended(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires with the terminal event once the call is over and the media peer stopped."""
        return _waiter(self._ended, timeout, "end of call")

    # -- SIP ------------------------------------------------------------------------------

    def take(self, transaction: ServerTransaction, now: float) -> None:
        endpoint = self.ua.sip.endpoint
        try:
            self.session = IncomingInvite(endpoint, self.request, transaction,
                                          listener=self._on_event)
        except ValueError as exc:
            self.final_status = 400
            endpoint.respond(make_response(self.request, 400, str(exc)[:100], to_tag=new_tag()), now)
            self._finish(Failed(400, "400 unusable INVITE"))
            return
        self.offer_sdp = self.session.offer_sdp
        try:
            self.offer = parse_sdp(self.offer_sdp) if self.offer_sdp else None
        except SdpError:
            self.offer = None
        if self.offer is not None:
            audio = next((m for m in self.offer.media if m.kind == "audio"), None)
            self.offered = [c.rtpmap for c in audio.codecs()] if audio is not None else []
        found = matching_audio(self.offer, self.ua.codec) if self.offer is not None else None
        if found is None:
            self.final_status = 488
            self.session.reject(488, None, now,
                                headers=[("Warning", f'305 sipua "only {self.ua.codec.rtpmap}"')])
            return
        accepted, pt = found
        connection = self.offer.connection_for(accepted)
        assert connection is not None
        d = defer.ensureDeferred(self._start_media(connection.address, accepted, pt))
        d.addErrback(self._media_failed)

    async def _start_media(self, host: str, accepted: MediaDescription, pt: int) -> None:
        self.media = await self.ua.media_factory(host, accepted.port, pt)
        session = self.session
        assert session is not None and self.offer is not None
        if session.terminated:  # cancelled while the media peer started
            await self._stop_media()
            return
        self._sdp = answer_sdp(self.offer, accepted, self.ua.codec, pt, self.media.port,
                               self._session_id)
        self.final_status = 200
        session.answer(self._sdp, _reactor().seconds())
        self.ua.pump()

    def _media_failed(self, reason: Any) -> None:
        if self.session is not None and not self.session.terminated:
            self.final_status = 500
            self.session.reject(500, "Media Peer Failed", _reactor().seconds())
            self.ua.pump()
        if not self._ended.called:
            self._ended.errback(reason)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Confirmed):
            if not self._confirmed.called:
                self._confirmed.callback(self)
        elif isinstance(event, ReinviteOffered):
            self._answer_reinvite()
        elif isinstance(event, (Ended, Failed, Cancelled)):
            self._finish(event)

    def _answer_reinvite(self) -> None:
        session = self.session
        assert session is not None
        if self._sdp is None:
            session.reject_reinvite(488, _reactor().seconds())
            return
        self._version += 1
        head, _, rest = self._sdp.partition(b"\r\n")
        origin, _, tail = rest.partition(b"\r\n")
        origin = f"o=sipua {self._session_id} {self._version} IN IP4 127.0.0.1".encode()
        self._sdp = b"\r\n".join([head, origin, tail])
        session.answer_reinvite(self._sdp, _reactor().seconds())

    def _finish(self, event: Any) -> None:
        self.outcome = event
        if not self._confirmed.called:
            self._confirmed.errback(RuntimeError(f"sipua: call ended before the ACK: {event}"))
            self._confirmed.addErrback(lambda _: None)  # nobody may be waiting
        d = defer.ensureDeferred(self._stop_media())
        d.addBoth(lambda _: self._ended.called or self._ended.callback(event))
        self.ua._forget(self)

    async def _stop_media(self) -> None:
        if self.media is not None:
            await self.media.stop()

    def hangup(self) -> defer.Deferred:
        """BYE (or 603 before our answer); fires like :meth:`ended`."""
        if self.session is not None and not self.session.terminated:
            self.session.hangup(_reactor().seconds())
            self.ua.pump()
        return self.ended()


@attr.s(auto_attribs=True, eq=False)
class _Handler:
    ua: "SipUA"

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method != "INVITE" or transaction is None:
            return False
        try:
            if request.to.tag:
                return False  # in-dialog: the DialogRouter's
        except (SipParseError, ValueError):
            return False
        call = UaCall(self.ua, request)
        self.ua.calls.append(call)
        self.ua._live.append(call)
        call.take(transaction, now)
        self.ua._arrived(call)  # after take: waiters see the offer already parsed
        return True


class SipUA:
    """A SIP user agent on 127.0.0.1 (UDP and TCP, free port) that answers with one codec.

    ``codec``: anything with ``name``, ``clock_rate``, ``payload_type``, ``rtpmap`` and
    ``fmtp`` (:class:`tests.peers.mediastream.MsCodec`, :class:`wcsgw.sdp.codecs.Codec`).
    ``media_factory(host, port)``: starts the media peer toward the offer's RTP address.
    ``user``: our Contact's user part.  ``t1``/``t2``: RFC 3261 timers (short for tests).
    """

    def __init__(self, codec: Any, media_factory: MediaFactory, *, user: str = "1003",
                 t1: float = 0.1, t2: float = 0.8) -> None:
        self.codec = codec
        self.media_factory = media_factory
        self.user = user
        settings = attr.evolve(SipSettings(), listen="127.0.0.1", port=0, advertised_address="",
                               t1=t1, t2=t2, user_agent="wcsgw-test-sipua")
        self.sip = SipService(settings)
        #: every INVITE taken, in order (answered or refused)
        self.calls: list[UaCall] = []
        self._live: list[UaCall] = []
        self._call_waiters: list[tuple[int, defer.Deferred]] = []

    @property
    def port(self) -> int:
        return self.sip.port

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

    @property
    def offers(self) -> list[list[str]]:
        """The audio rtpmaps of every INVITE's offer, in order."""
        return [c.offered for c in self.calls]

    def start(self) -> None:
        self.sip.startService()
        endpoint = self.sip.endpoint
        DialogRouter.install(endpoint)
        IncomingInvites.install(endpoint)
        endpoint.handlers.append(_Handler(self))

    def pump(self) -> None:
        if self.sip.transport is not None:
            self.sip.transport.pump()

    def next_call(self, index: int = 0, timeout: float = WAIT) -> defer.Deferred:
        """Fires with the ``index``-th INVITE taken (0: the first), already here or to come."""
        if index < len(self.calls):
            return defer.succeed(self.calls[index])
        d: defer.Deferred = defer.Deferred()
        self._call_waiters.append((index, d))
        return _waiter(d, timeout, f"INVITE #{index + 1}")

    def _arrived(self, call: UaCall) -> None:
        index = len(self.calls) - 1
        for entry in list(self._call_waiters):
            if entry[0] == index:
                self._call_waiters.remove(entry)
                entry[1].callback(call)

    def _forget(self, call: UaCall) -> None:
        if call in self._live:
            self._live.remove(call)

    async def _stop(self) -> None:
        waits = [call.hangup() for call in list(self._live)]
        for d in waits:
            try:
                await d
            except Exception:  # noqa: BLE001 - stopping: a call that does not end cleanly
                pass            # still has its media stopped below
        for call in self.calls:
            await call._stop_media()
        if self.sip.running:
            await self.sip.stopService()

    def stop(self) -> defer.Deferred:
        """Hang up live calls (bounded), stop every media peer, close the SIP sockets."""
        return defer.ensureDeferred(self._stop())
