"""A minimal scripted SIP user agent for raw-RTP peers (mediastream): it answers an INVITE
with an SDP naming ONE codec and the media peer's RTP port, takes ACK and BYE, and can hang up.

Usage inside a trial test (the reactor is running)::

    async def media(host, port, pt, local):  # the far RTP address, payload type, our port
        ms = Mediastream("G729/8000", (host, port), infile, outfile, payload_type=pt,
                         port=local)
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
* other m-lines of the offer are refused with port 0 (RFC 3264 §6: as many m-lines as offered);
* :meth:`SipUA.call` places a call the other way (an INVITE offering the one codec, through
  a registrar/proxy with digest credentials): :class:`UaOutgoingCall`.
"""

from __future__ import annotations

import random
from typing import Any, Awaitable, Callable, Protocol

import attr
from twisted.internet import defer
from twisted.python.failure import Failure

from tests.peers.ports import free_port
from wcsgw.config import SipSettings
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.model import MediaDescription, SessionDescription
from wcsgw.sdp.negotiate import PLAIN_RTP_PROTOS
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.ids import new_tag
from wcsgw.sip.invite import Answered, OutgoingInvite, Provisional
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.service import SipService
from wcsgw.sip.session import ReinviteOffered
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import Cancelled, Confirmed, Ended, Failed, IncomingInvite, IncomingInvites

__all__ = ["MediaPeer", "SipUA", "UaCall", "UaOutgoingCall", "answer_sdp"]

WAIT = 15.0


class MediaPeer(Protocol):
    """What the media factory returns: a started peer with its local RTP port (and, if it
    has an ``address`` attribute, the c= address the answer names instead of 127.0.0.1)."""

    port: int

    def stop(self) -> "defer.Deferred[None]": ...


#: (the far end's RTP host and port, the codec's payload type there, and our RTP port when
#: an offer of ours already named it, else None) -> a started peer
MediaFactory = Callable[[str, int, int, "int | None"], Awaitable[MediaPeer]]


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class _Once:
    """A result that comes once (a value or an exception) and any number of waiters, each
    with its own timeout — before or after it came."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.done = False
        self._value: Any = None
        self._error: BaseException | None = None
        self._waiting: list[defer.Deferred] = []

    def succeed(self, value: Any) -> None:
        self._settle(value, None)

    def fail(self, error: BaseException) -> None:
        self._settle(None, error)

    def _settle(self, value: Any, error: BaseException | None) -> None:
        if self.done:
            return
        self.done, self._value, self._error = True, value, error
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            self._fire(d)

    def _fire(self, d: defer.Deferred) -> None:
        if d.called:
            return
        if self._error is not None:
            d.errback(Failure(self._error))
        else:
            d.callback(self._value)

    def wait(self, timeout: float) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        if self.done:
            self._fire(d)
            return d
        self._waiting.append(d)

        def expire() -> None:
            if d in self._waiting:
                self._waiting.remove(d)
            if not d.called:
                d.errback(TimeoutError(f"sipua: no {self.what} within {timeout:g} s"))

        timer = _reactor().callLater(timeout, expire)
        d.addBoth(lambda r: (timer.active() and timer.cancel(), r)[1])
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
        self._confirmed = _Once("ACK")
        self._ended = _Once("end of call")
        self._sdp: bytes | None = None
        self._session_id = random.randrange(1, 1 << 31)
        self._version = 0

    @property
    def call_id(self) -> str:
        return self.request.call_id

    def confirmed(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires once our 200 is acknowledged (the call is up); fails when the call ended
        before (refused, cancelled)."""
        return self._confirmed.wait(timeout)

    def ended(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires with the terminal event once the call is over and the media peer stopped."""
        return self._ended.wait(timeout)

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
        self.media = await self.ua.media_factory(host, accepted.port, pt, None)
        session = self.session
        assert session is not None and self.offer is not None
        if session.terminated:  # cancelled while the media peer started
            await self._stop_media()
            return
        # a media peer may name another c= address than ours (a phone behind NAT: private)
        self._sdp = answer_sdp(self.offer, accepted, self.ua.codec, pt, self.media.port,
                               self._session_id,
                               address=getattr(self.media, "address", "127.0.0.1"))
        self.final_status = 200
        session.answer(self._sdp, _reactor().seconds())

    def _media_failed(self, reason: Any) -> None:
        if self.session is not None and not self.session.terminated:
            self.final_status = 500
            self.session.reject(500, "Media Peer Failed", _reactor().seconds())
        self._ended.fail(reason.value)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Confirmed):
            self._confirmed.succeed(self)
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
        self._confirmed.fail(RuntimeError(f"sipua: call ended before the ACK: {event}"))
        d = defer.ensureDeferred(self._stop_media())
        d.addBoth(lambda _: self._ended.succeed(event))
        self.ua._forget(self)

    async def _stop_media(self) -> None:
        if self.media is not None:
            await self.media.stop()

    def hangup(self) -> defer.Deferred:
        """BYE (or 603 before our answer); fires like :meth:`ended`."""
        if self.session is not None and not self.session.terminated:
            self.session.hangup(_reactor().seconds())
        return self.ended()


class UaOutgoingCall:
    """A call the agent places: an INVITE offering ``codec`` only, under the codec's own
    payload type (an offerer's numbers are its to choose), on an RTP port picked before the
    media peer starts — the peer starts once the answer says where to send."""

    def __init__(self, ua: "SipUA", account: SipAccount, request_uri: str) -> None:
        self.ua = ua
        self.account = account
        self.request_uri = request_uri
        #: our RTP port, named in the offer (RTCP: port + 1)
        self.port = free_port("udp", span=2)
        self.session: OutgoingInvite | None = None
        #: provisional statuses seen (100, 180, 183 ...), in order
        self.provisional: list[int] = []
        #: the answer as received and parsed, and the codec it chose ("G729/8000")
        self.answer_sdp: bytes | None = None
        self.answer: SessionDescription | None = None
        self.answered_codec: str | None = None
        self.media: MediaPeer | None = None
        #: the terminal SIP event (Failed, Ended) once it came
        self.outcome: Any = None
        self._answered = _Once("answer")
        self._ended = _Once("end of call")
        self._session_id = random.randrange(1, 1 << 31)
        self._version = 0
        self._sdp = self._offer(0)

    def _offer(self, version: int) -> bytes:
        codec, pt = self.ua.codec, self.ua.codec.payload_type
        lines = ["v=0", f"o=sipua {self._session_id} {version} IN IP4 127.0.0.1", "s=sipua",
                 "c=IN IP4 127.0.0.1", "t=0 0", f"m=audio {self.port} RTP/AVP {pt}",
                 f"a=rtpmap:{pt} {codec.rtpmap}"]
        if codec.fmtp:
            lines.append(f"a=fmtp:{pt} {codec.fmtp}")
        lines += ["a=ptime:20", "a=sendrecv"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def answered(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires once the call is answered and the media peer runs; fails when the call
        failed instead (its Failed event in the message)."""
        return self._answered.wait(timeout)

    def ended(self, timeout: float = WAIT) -> defer.Deferred:
        """Fires with the terminal event once the call is over and the media peer stopped."""
        return self._ended.wait(timeout)

    def start(self) -> None:
        self.session = OutgoingInvite(self.ua.sip.endpoint, self.account, self.request_uri,
                                      self._sdp, listener=self._on_event,
                                      no_answer_timeout=None)
        self.session.start(_reactor().seconds())

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Provisional):
            self.provisional.append(event.status)
        elif isinstance(event, Answered):
            d = defer.ensureDeferred(self._start_media(event.sdp))
            d.addErrback(lambda f: self._answered.fail(f.value))
        elif isinstance(event, ReinviteOffered):
            if self.session is not None:
                self._version += 1
                self._sdp = self._offer(self._version)
                self.session.answer_reinvite(self._sdp, _reactor().seconds())
        elif isinstance(event, (Failed, Ended)):
            self.outcome = event
            self._answered.fail(RuntimeError(f"sipua: the call was not answered: {event}"))
            d = defer.ensureDeferred(self._stop_media())
            d.addBoth(lambda _: self._ended.succeed(event))
            self.ua._forget(self)

    async def _start_media(self, sdp: bytes) -> None:
        self.answer_sdp = sdp
        self.answer = parse_sdp(sdp)
        found = matching_audio(self.answer, self.ua.codec)
        if found is None:
            self.hangup()
            raise RuntimeError(f"sipua: the answer has no {self.ua.codec.rtpmap}: {sdp!r}")
        accepted, pt = found
        self.answered_codec = self.ua.codec.rtpmap
        connection = self.answer.connection_for(accepted)
        assert connection is not None
        self.media = await self.ua.media_factory(connection.address, accepted.port, pt,
                                                 self.port)
        if self.outcome is not None:  # over while the peer started
            await self._stop_media()
            return
        self._answered.succeed(self)

    async def _stop_media(self) -> None:
        if self.media is not None:
            await self.media.stop()

    def hangup(self) -> defer.Deferred:
        """CANCEL before the answer, BYE after it; fires like :meth:`ended`."""
        if self.session is not None and self.outcome is None:
            self.session.hangup(_reactor().seconds())
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
        #: every call placed with :meth:`call`
        self.placed: list[UaOutgoingCall] = []
        self._live: list[Any] = []
        self._arrivals: list[_Once] = []

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

    def next_call(self, index: int = 0, timeout: float = WAIT) -> defer.Deferred:
        """Fires with the ``index``-th INVITE taken (0: the first), already here or to come."""
        while len(self._arrivals) <= index:
            self._arrivals.append(_Once(f"INVITE #{len(self._arrivals) + 1}"))
        return self._arrivals[index].wait(timeout)

    def _arrived(self, call: UaCall) -> None:
        index = len(self.calls) - 1
        while len(self._arrivals) <= index:
            self._arrivals.append(_Once(f"INVITE #{len(self._arrivals) + 1}"))
        self._arrivals[index].succeed(call)

    def call(self, account: SipAccount, request_uri: str) -> UaOutgoingCall:
        """Place a call (INVITE offering our one codec) as ``account`` (digest challenges
        answered with its credentials, sent to its outbound proxy or domain)."""
        call = UaOutgoingCall(self, account, request_uri)
        self.placed.append(call)
        self._live.append(call)
        call.start()
        return call

    def _forget(self, call: Any) -> None:
        if call in self._live:
            self._live.remove(call)

    async def _stop(self) -> None:
        waits = [call.hangup() for call in list(self._live)]
        for d in waits:
            try:
                await d
            except Exception:  # noqa: BLE001 - stopping: a call that does not end cleanly
                pass            # still has its media stopped below
        for call in [*self.calls, *self.placed]:
            await call._stop_media()
        if self.sip.running:
            await self.sip.stopService()

    def stop(self) -> defer.Deferred:
        """Hang up live calls (bounded), stop every media peer, close the SIP sockets."""
        return defer.ensureDeferred(self._stop())
