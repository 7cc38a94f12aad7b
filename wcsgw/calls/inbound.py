"""Calls from the SIP side to a browser user: routing an INVITE to a session, and the call.

A browser session that registers gets a contact of its own (``sip:<login>-<token>@gateway``),
so the registrar forks an INVITE for the account to every logged-in browser and each fork
names the session it is for.  :class:`InboundRouter` is the one place where an incoming INVITE
is accepted or refused (:meth:`InboundRouter.decide`); :class:`InboundCall` then offers the
call to the browser (``incomingCall`` with a WebRTC offer made by the gateway, which stays
ICE-lite and the DTLS server) and, once the browser answers, answers the SIP side.

The codec plan (:mod:`wcsgw.calls.plan`) avoids transcoding: the browser is offered the SIP
caller's own codecs that browsers take first, and the other ``[codecs] webrtc`` codecs after
them only as a transcoding fallback (when transcoding is allowed and possible).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

from twisted.logger import Logger

from wcsgw.calls.call import Call
from wcsgw.calls.core import parsed_sdp
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.events import Confirm
from wcsgw.calls.hooks import incoming as hooks
from wcsgw.calls.offered import OfferedCall
from wcsgw.calls.plan import (
    CodecPlan,
    CodecRefusal,
    browser_offer_codecs,
    settle_inbound,
)
from wcsgw.calls.sipleg import IncomingSipLeg
from wcsgw.calls.status import CallStatus, Info
from wcsgw.calls.video import VideoPath
from wcsgw.sdp.codecs import Codec
from wcsgw.sdp.errors import SdpError
from wcsgw.sdp.negotiate import audio_answer, audio_offer
from wcsgw.sdp.parser import parse_sdp, serialize_sdp
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import IncomingInvite
from wcsgw.sip.uri import parse_uri

log = Logger(namespace="wcsgw.calls")

class InboundCall(OfferedCall):
    """A call from the SIP side, offered to one browser session."""

    def __init__(self, *, invite: IncomingInvite, caller: str, request_uri: str = "",
                 **kwargs: Any) -> None:
        """``request_uri``: where the caller can be reached again (its From URI: an attended
        transfer names this call by it)."""
        super().__init__(request_uri=request_uri, **kwargs)
        #: the caller's INVITE, as the call's SIP leg until a transfer replaces it
        self.uas = IncomingSipLeg(invite)
        self._take_sip(self.uas)
        self.caller_uri = caller
        self._sip_offer_sdp = self.uas.offer_sdp

    @property
    def caller(self) -> str:
        return self.caller_uri

    @property
    def incoming(self) -> bool:
        return True

    def start(self) -> None:
        """Open the media sockets, offer the call to the browser, ring the caller."""
        env = self.env
        sip_codecs: list[Codec] | None = None
        sip_ptime: int | None = None
        if self._sip_offer_sdp is not None:
            try:
                offer = parse_sdp(self._sip_offer_sdp)
            except SdpError:
                raise CallError(Codes.INVALID, "the caller's SDP does not parse") from None
            audio = offer.first_audio()
            if audio is None:
                raise CallError(Codes.NO_CODECS, Info.NO_CODECS)
            sip_codecs, sip_ptime = audio.codecs(), audio.ptime
            refusal = self.sip_sdp.sdes.refusal(offer)
            if refusal is not None:  # the account's srtp policy (wcsgw.calls.sipsdes): 488
                raise CallError(Codes.NO_CODECS, refusal)
            # Video from the caller: offered to the browser when we can relay one of its codecs.
            self.video = VideoPath.inbound(env, self.call_id, offer)
            self.has_video = self.video is not None
        codecs = browser_offer_codecs(sip_codecs, env.codecs)
        self.plan = CodecPlan("relay", sip_codecs or [], sip_ptime=sip_ptime)
        self._ring_browser(codecs, self._no_answer)
        self.uas.start(env.reactor.seconds())

    def answer(self, browser_sdp: str) -> None:
        """The browser accepted: learn its codec, answer the SIP side, start the media."""
        answer, browser_video = self._take_browser_answer(browser_sdp)
        plan = self.plan
        assert plan is not None and self.leg is not None and self.rtp is not None
        late = self._sip_offer_sdp is None
        try:
            settle_inbound(plan, answer.codecs[0], answer.telephone_event,
                           None if late else plan.sip_offer, self.env.codecs,
                           sip_ptime=plan.sip_ptime)
        except CodecRefusal as exc:  # the browser chose a codec we did not offer
            self._finish(CallStatus.FAILED, 488, exc.info)
            self.uas.refuse(488, "Not Acceptable Here", self.env.reactor.seconds())
            raise
        assert plan.sip_codec is not None
        if self._sip_offer_sdp is not None:
            offer = parse_sdp(self._sip_offer_sdp)
            supported = [c for c in (plan.sip_codec, plan.sip_dtmf) if c is not None]
            video_answer = None
            if self.video is not None:  # the browser's answer decides whether there is video
                video_answer = self.video.settle_browser_answer(browser_video, offer)
                if video_answer is None:
                    self.video.reject()
                    self.has_video = False
            sip_answer = audio_answer(self.sip_sdp.sdes.as_plain(offer), self.env.sip_address, self.rtp.port, supported,
                                      session_id=self.sip_sdp.new_session(), video=video_answer)
            self.sip_sdp.sdes.answer(offer, sip_answer.first_audio(), self.media)
            self._retarget(self._sip_offer_sdp, parsed=offer)
        else:
            # Late offer: our 200 offers, the ACK answers; the media starts then (Confirmed).
            sip_answer = audio_offer(self.env.sip_address, self.rtp.port, plan.sip_offer,
                                     session_id=self.sip_sdp.new_session())
            self.sip_sdp.sdes.decorate(sip_answer.first_audio(), fresh=True)
            self._browser_chosen = [answer.codecs[0]] + (
                [answer.telephone_event] if answer.telephone_event else [])
        self._cancel_ring_timer()
        if not late:
            self._start_media()
        self.uas.answer(serialize_sdp(sip_answer).encode(), self.env.reactor.seconds())
        self.answer_time = self.env.reactor.seconds()
        self.sip_status = 200
        # ESTABLISHED, or HOLD when the caller's offer holds us (sendonly/inactive/c=0.0.0.0:
        # our answer said recvonly/inactive, and nothing of the browser goes to it); a late
        # offer's answer comes with the ACK (Confirmed).
        self.holds.take_direction(None if late else parsed_sdp(self._sip_offer_sdp))

    #: the status a decline answers with: None = ``[sip] decline_status``; 486 once the browser
    #: declined the call as busy (``hangup {busy: true}``: a call waiting, see :func:`decline_busy`)
    decline_with: int | None = None

    def hangup(self) -> None:
        """Before the answer: decline (603 by default; docs/contract.md: hangup declines); after: BYE."""
        if self._finished:
            return
        now = self.env.reactor.seconds()
        if self.status is CallStatus.RING:
            status = self.decline_with or self.env.decline_status
            # Finish first: the rejection's own Failed event then finds the call over.
            self._finish(CallStatus.FINISH, status, "Declined")
            self.uas.refuse(status, "Decline" if status == 603 else "Busy Here", now)
            return
        super().hangup()

    def _no_answer(self) -> None:
        self._ring_timer = None
        if self.status is CallStatus.RING and not self._finished:
            self._finish(CallStatus.FINISH, 480, "No answer")
            self.uas.refuse(480, "Temporarily Unavailable", self.env.reactor.seconds())

    #: A call we answered hears one thing more than one we placed: the caller confirmed our
    #: answer (the ACK).  (The caller's CANCEL is a Disconnect, as any end of a call.)
    CONTROL_HANDLERS: ClassVar[Mapping[type, str]] = {
        **Call.CONTROL_HANDLERS,
        Confirm: "_confirmed",
    }

    def _connect_media(self, sip_sdp: bytes) -> None:
        """Never asked: the caller answers nothing of ours with a 1xx or 2xx (its late offer's
        answer comes in the ACK: :meth:`_confirmed`)."""

    def _confirmed(self, event: Confirm) -> None:
        """The ACK of our 200: with a late offer it carries the caller's answer, which
        settles the codecs and starts the media; else a new SDP in it re-targets."""
        if self._sip_offer_sdp is None and self.bridge is None:
            self._settle_late_offer(event.sdp)
        elif event.sdp:
            self._retarget(event.sdp)

    def _settle_late_offer(self, ack_sdp: bytes | None) -> None:
        """The ACK answered the offer of our 200: its codec settles the plan (relay or
        transcode, as for an outbound call's answer), then the media starts."""
        try:
            sd = parse_sdp(ack_sdp) if ack_sdp else None
        except SdpError:
            sd = None
        if self.sip_sdp.sdes.refuses_answer(sd):
            self._fail_sip("SRTP required")
            return
        if self._settle_sip_audio(sd):
            self._retarget(ack_sdp, parsed=sd)
            self._start_media()
            if self.status in (CallStatus.ESTABLISHED, CallStatus.HOLD):
                self.holds.take_direction(sd)  # the ACK's answer may hold us



def decline_busy(call: Any) -> None:
    """``hangup {busy: true}`` (docs/websocket-api.md): the browser is on another call, so a
    call still ringing is refused 486 Busy Here whatever ``[sip] decline_status`` says for a
    lone call (the caller's phone then says busy, not declined).  Anything else — an answered
    call, one the browser placed — hangs up as without it; the hangup itself follows."""
    if isinstance(call, InboundCall):
        call.decline_with = 486


class InboundRouter:
    """The gateway's taker of new INVITEs (an endpoint RequestHandler), placed after the
    dialog router: an INVITE to a session's contact becomes an :class:`InboundCall` of that
    session; anything else is refused here, never left unanswered."""

    def __init__(self, gateway: Any, make_call: Callable[..., InboundCall]) -> None:
        self.gateway = gateway
        self.make_call = make_call

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method == "OPTIONS":
            return self._options_while_draining(request, now)
        if request.method != "INVITE" or transaction is None:
            return False
        endpoint = self.gateway.sip.endpoint
        try:  # draining or overloaded: 503, and when to try again (a proxy fails over)
            self.gateway.admission.check_open("call")
        except CallError as exc:
            log.info("incoming call refused: {reason}", reason=exc.message,
                     sip_call_id=request.call_id)
            endpoint.respond(make_response(request, 503, "Service Unavailable", to_tag=_tag(),
                                           headers=_retry_after(exc)), now)
            return True
        try:
            user = parse_uri(request.uri).user or ""
        except Exception:  # noqa: BLE001 - the parser let it through; refuse, never crash
            user = ""
        session = self.gateway.session_for_contact(user)
        held = self._held_account(user) if session is None else None
        refusal = self.decide(session, request, source) if held is None else \
            self._from_servers(self.gateway.accounts.named(held), source)
        if refusal is not None:
            status, reason = refusal
            endpoint.respond(make_response(request, status, reason, to_tag=_tag()), now)
            return True
        app = hooks.app_of(self.gateway, session, held)
        if app is not None:
            # The backend decides: only this INVITE waits (100 Trying goes out meanwhile).
            self.gateway.hooks.decide(
                app, "incomingCall", getattr(session, "id", None),
                hooks.incoming_fields(request, held),
            ).addCallback(self._decided, app, session, request, transaction, user)
            return True
        if held is not None:  # a shared account's call: only a backend says which browser
            endpoint.respond(make_response(request, 480, "Temporarily Unavailable",
                                           to_tag=_tag()), now)
            return True
        self._take(session, request, transaction, user, now)
        return True

    def _options_while_draining(self, request: Request, now: float) -> bool:
        """An OPTIONS outside a dialog to a draining gateway: 503 with Retry-After, so a
        proxy probing us (Kamailio's dispatcher) takes us out of its set; otherwise the
        endpoint answers it (200) as always."""
        drain = getattr(self.gateway, "drain", None)
        if drain is None or not drain.draining or "tag=" in (request.headers.get("To") or ""):
            return False
        retry = drain.state.retry_after(now)
        self.gateway.sip.endpoint.respond(make_response(
            request, 503, "Service Unavailable", to_tag=_tag(),
            headers=[("Retry-After", str(retry))]), now)
        return True

    def _held_account(self, user: str) -> str | None:
        accounts = getattr(self.gateway, "accounts", None)
        return accounts.for_contact(user) if accounts is not None and user else None

    def _decided(self, decision: Any, app: Any, session: Any, request: Request,
                 transaction: ServerTransaction, user: str) -> None:
        now = self.gateway.clock()  # the reactor's seconds, as the SIP transport's
        target, refusal = hooks.routed(self.gateway, app, session, decision)
        if refusal is not None:
            status, reason = refusal
            log.info("incoming call refused by the application: {status}", status=status,
                     sip_call_id=request.call_id)
            self.gateway.sip.endpoint.respond(
                make_response(request, status, reason, to_tag=_tag()), now)
            return
        self._take(target, request, transaction, user, now)

    def _take(self, session: Any, request: Request, transaction: ServerTransaction,
              user: str, now: float) -> None:
        """Accept the INVITE for ``session``: its ``IncomingInvite`` and ``InboundCall``."""
        endpoint = self.gateway.sip.endpoint
        # The session's account answers challenges to our in-dialog requests (hold, REFER,
        # INFO, BYE) through a proxy that wants credentials, as on the calls it places — and
        # only toward that proxy: IncomingInvite gives the account's servers to the dialog
        # router and the digest check.
        account = getattr(session, "account", None)
        try:
            invite = IncomingInvite(endpoint, request, transaction, listener=lambda e: None,
                                    contact_user=user, account=account)
        except ValueError:
            endpoint.respond(make_response(request, 400, "Bad Request", to_tag=_tag()), now)
            return
        try:
            self.make_call(session, invite, request)  # its SIP leg listens to the INVITE
        except CallError as exc:
            # At limits.calls_per_session the session is busy (486), as a phone on a call.
            status, reason = _REFUSALS.get(exc.code, (500, "Server Error"))
            invite.reject(status, reason, now, headers=_retry_after(exc))
            log.info("incoming call refused: {reason}", reason=exc.message,
                     sip_call_id=request.call_id)
        except Exception:  # noqa: BLE001 - the call left nothing behind; answer, never crash
            log.failure("incoming call failed to start", sip_call_id=request.call_id)
            invite.reject(500, "Server Error", now)

    def decide(self, session: Any, request: Request, source: Target) -> tuple[int, str] | None:
        """Accept this incoming call?  The one decision point before the backend's: None
        accepts (then the session's app, if any, is asked: ``incomingCall``,
        :mod:`wcsgw.calls.hooks.incoming`); otherwise the SIP status and reason to refuse with.

        Only the registrar/proxy the session registered with knows its contact and may
        route calls to it: an INVITE from any other address (by IP, any port; the account's
        outbound proxy or domain, as the transport resolved them) is someone who found the
        contact and calls the browser directly — 403, and no ``incomingCall``."""
        if session is None or not session.connected:
            return 480, "Temporarily Unavailable"  # no (longer a) browser behind this contact
        return self._from_servers(getattr(session, "account", None), source)

    def _from_servers(self, account: Any, source: Target) -> tuple[int, str] | None:
        """403 unless the INVITE came from the account's registrar/proxy (see decide)."""
        servers = account.server_hosts() if account is not None else ()
        addresses = self.gateway.sip.endpoint.addresses
        if not addresses.admits(source.host, servers):
            addresses.want(servers)
            log.warn("INVITE for {user} from {host}:{port}, not its registrar/proxy "
                     "({servers}): 403", user=account.login if account is not None else "?",
                     host=source.host, port=source.port, servers=", ".join(servers))
            return 403, "Forbidden"
        return None


#: CallError code -> the SIP answer to an INVITE the gateway cannot take.
_REFUSALS: dict[int, tuple[int, str]] = {
    Codes.NO_CODECS: (488, "Not Acceptable Here"),
    Codes.TOO_MANY_CALLS: (486, "Busy Here"),
    Codes.NO_PORTS: (503, "Service Unavailable"),
    Codes.DRAINING: (503, "Service Unavailable"),
    Codes.OVERLOADED: (503, "Service Unavailable"),
}


def _retry_after(exc: CallError) -> list[tuple[str, str]]:
    """A gate's refusal says when to try again (RFC 3261 §20.33); other refusals do not."""
    retry = getattr(exc, "retry_after", None)
    return [("Retry-After", str(retry))] if retry is not None else []


def _tag() -> str:
    from wcsgw.sip.ids import new_tag

    return new_tag()
