"""The B2BUA's face toward the APIs: browser sessions, their SIP accounts and their calls.

The JSON-RPC (and later REST) layer talks only to :class:`CallGateway`; it never sees SIP or
media objects.  Each session is one browser connection: it may bring a SIP account (checked
against the policy, registered if asked) and places calls.  When its WebSocket closes, a
connected session is *detached* for ``resume_seconds`` (its calls and registration stay up, what
it would hear is queued) and a ``connect {authToken}`` on a new socket resumes it
(:mod:`wcsgw.calls.resuming`); when it goes away for good — disconnect, a socket closing with
resume off or before connect, or the resume window over — every call it owned is ended on the
SIP side and its binding is removed, so nothing is left up behind a vanished browser.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls import operator
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.admission import Admission
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.limits import address_key
from wcsgw.calls.policy import Policy
from wcsgw.calls.registry import CallRegistry
from wcsgw.calls.resume import Relay
from wcsgw.calls.resuming import Resumer
from wcsgw.calls.sessions import Session, SessionListener, registration_status
from wcsgw.calls.status import SessionStatus
from wcsgw.calls.trunks import Trunks
from wcsgw.config import LimitsSettings
from wcsgw.sip.account import SipAccount, escape_user

__all__ = ["CallError", "CallGateway", "Codes", "SessionListener"]

DTMF_DIGITS = frozenset("0123456789*#ABCD")

log = Logger(namespace="wcsgw.calls")


def _end(call: Any, by: str) -> None:
    """Hang ``call`` up, its record saying who ended it (docs/contract.md ``endedBy``)."""
    if getattr(call, "ended_by", None) is None:
        call.ended_by = by
    call.hangup()


class CallGateway:
    """Sessions and calls of one gateway process.

    ``calls`` is the registry of live calls by callId (REST finds them there); ``factory`` builds
    a :class:`wcsgw.calls.call.Call` — injected so the API layer can be tested without media.

    ``limits`` (``[limits]``) are enforced here, where every session and call comes through,
    by its :class:`~wcsgw.calls.admission.Admission` (the call-rate window on ``clock``);
    every refusal is a :class:`CallError` whose message names the setting.
    """

    def __init__(self, sip: Any, policy: Policy, call_factory: Any, *,
                 limits: LimitsSettings | None = None,
                 clock: Callable[[], float] = time.monotonic, scheduler: Any = None) -> None:
        """``scheduler`` (callLater/seconds; default the reactor) times resume windows."""
        self.sip = sip
        self.policy = policy
        self.call_factory = call_factory
        self.admission = Admission(limits or LimitsSettings())
        self.limits = self.admission.limits
        #: now, for the call-rate window (the reactor's seconds in the service; tests inject)
        self.clock = clock
        #: the media ports every call takes from (set by the service; None: no reserve kept)
        self.media_ports: Any = None
        #: the shared browser port (media.browser_port; set by the service), for /metrics
        self.browser_port: Any = None
        #: refusals so far by limit (/metrics ``wcsgw_limit_refusals_total``)
        self.refusals = self.admission.refusals
        self.sessions: dict[str, Session] = {}
        self.registry = CallRegistry()
        #: live calls by callId, and those whose SIP leg is not over yet (CallRegistry)
        self.calls, self.unsettled = self.registry.calls, self.registry.unsettled
        self._by_contact: dict[str, Session] = {}
        #: builds an InboundCall (the service wires it; None: no incoming calls)
        self.inbound_factory: Any = None
        #: builds a FileCall for REST calls with server-side media
        self.file_call_factory: Any = None
        #: builds a HandedCall for REST calls handed to a browser session
        self.handed_call_factory: Any = None
        #: what ended calls counted (for /metrics: counters must survive a call's end)
        self.totals = self.registry.totals
        #: the server-held accounts ([[accounts]] with a name), for connect_named and REST
        self.accounts = AccountBook()
        #: the server-held accounts as trunks: up/down by OPTIONS, caller identity
        self.trunks = Trunks()
        #: the REST hooks of ``[[apps]]`` (wcsgw.calls.hooks.runtime.Hooks; the service sets
        #: it; None: no hooks)
        self.hooks: Any = None
        #: how long a connected session outlives its WebSocket (http.resume_seconds; 0: not
        #: at all), and the detached sessions and tokens
        self.resume_seconds: float = 0
        self.resumer = Resumer(self, scheduler)
        #: operations (docs/operations.md), set by the service: the call records
        #: (wcsgw.calls.cdr), the call recordings (wcsgw.calls.recording) and the SIP ladders
        #: (wcsgw.calls.ladders); None: that part is off
        self.cdr: Any = None
        self.recordings: Any = None
        self.ladders: Any = None

    # -- sessions -----------------------------------------------------------------------

    def admit_session(self, peer: str | None) -> None:
        """May one more session open from ``peer``?  :class:`CallError` (TOO_MANY_SESSIONS)
        naming the limit if not.  The WebSocket layer asks before it accepts the upgrade."""
        self.admission.admit_session(self.sessions.values(), peer)

    def open_session(self, session_id: str, listener: SessionListener,
                     peer: str | None = None) -> None:
        """A new browser connection from ``peer`` (its TCP address; a proxy's
        X-Forwarded-For is not trusted).  Refused like :meth:`admit_session`."""
        self.admit_session(peer)
        key = address_key(peer) if peer is not None else None
        relay = Relay(listener, session_id=session_id)
        self.sessions[session_id] = Session(session_id, relay, peer=key, relay=relay)

    def connect(self, session_id: str, account: SipAccount | None, register: bool) -> None:
        session = self._unconnected(session_id)
        self.policy.check_account(account)
        self._bind(session, account)
        if account is not None and register:
            # Keyed unescaped: the router reads the Request-URI's user part unescaped.
            session.contact_user = f"{account.login}-{secrets.token_hex(4)}"
            self._by_contact[session.contact_user] = session
            session.registration = self.sip.register(
                account, listener=lambda event: self._registration_event(session, event),
                contact_user=escape_user(session.contact_user))

    def connect_named(self, session_id: str, name: str) -> None:
        """Bind the session to the server-held account ``name``: its calls go out on it, the
        browser never learns its password, and no REGISTER is sent for the session (the
        service keeps the account's one registration).  Its servers are the operator's, so
        they need not be in policy.allowed_domains; destinations are still checked."""
        session = self._unconnected(session_id)
        self._bind(session, self.accounts.named(name))
        session.account_name = name

    def _unconnected(self, session_id: str) -> Session:
        session = self._session(session_id)
        if session.connected:
            raise CallError(Codes.BAD_STATE, "already connected; disconnect first")
        self.admission.check_open("session")  # a draining gateway: only resumes get in
        return session

    def _bind(self, session: Session, account: SipAccount | None) -> None:
        session.account = account
        session.connected = True
        session.listener.session_status(SessionStatus.ESTABLISHED.value, None, "")

    def auth_token(self, session_id: str) -> str:
        """A fresh ``authToken`` for the connected session (the one before it dies)."""
        return self.resumer.issue(self._session(session_id))

    def resume(self, fresh_id: str, token: str,
               on_session: Callable[[str], None] = lambda session_id: None) -> tuple[str, str]:
        """``connect {authToken}`` on the socket of ``fresh_id``: (the resumed session's id,
        its new token), :meth:`Resumer.resume`; SESSION_EXPIRED naming ``authToken`` if the
        token is no good."""
        return self.resumer.resume(fresh_id, token, on_session)

    def disconnect(self, session_id: str) -> None:
        session = self._session(session_id)
        self.resumer.forget(session_id)
        self._teardown(session)
        session.listener.session_status(SessionStatus.DISCONNECTED.value, None, "")

    def close_session(self, session_id: str) -> None:
        """The browser's socket is gone: a connected session waits for a resume
        (:meth:`Resumer.detach`); else end its calls and binding, then forget it."""
        session = self.sessions.get(session_id)
        if session is not None and not self.resumer.detach(session):
            self.end_session(session_id)

    def end_session(self, session_id: str) -> None:
        """End the session for good: its calls, its binding, its token."""
        self.resumer.forget(session_id)
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self._teardown(session)

    def _teardown(self, session: Session) -> None:
        for call in list(session.calls.values()):
            _end(call, "browser")
        if session.registration is not None:
            self.sip.unregister(session.registration)
            session.registration = None
        if session.contact_user is not None:
            self._by_contact.pop(session.contact_user, None)
            session.contact_user = None
        session.connected = False
        session.account, session.account_name = None, None

    def _registration_event(self, session: Session, event: object) -> None:
        """A REGISTER client's event, as the session's ``sessionStatus``."""
        if session.id not in self.sessions:
            return
        report = registration_status(event, session)
        if report is not None:
            session.listener.session_status(*report)

    # -- calls --------------------------------------------------------------------------

    def call(
        self,
        session_id: str,
        *,
        call_id: str | None,
        callee: str,
        visible_name: str | None,
        has_audio: bool,
        has_video: bool,
        sdp: str,
        sip_headers: dict[str, str],
        account: SipAccount | None = None,
    ) -> str:
        """``account``: a server-held account the session's hook chose for this call (None:
        the session's own)."""
        session = self._session(session_id)
        if not session.connected:
            raise CallError(Codes.NOT_CONNECTED, "connect before calling")
        self.admission.check_open("call")
        self.admission.check_session_calls(session)
        call_id = self.registry.new_call_id(call_id)
        held = account is not None or session.account_name is not None
        account, uri = self.policy.routed(account or session.account, callee, held=held)
        self.admission.check_rate(session.peer, self.clock())
        # The API layer checked them already (-32602); checked again here so that no path
        # into the call layer can skip the allow-list.
        sip_headers = self.policy.outgoing_headers(sip_headers)
        # a down trunk refuses here; its RFC 3325 identity is added after the policy check
        sip_headers = self.trunks.outgoing(self.accounts.name_of(account), sip_headers)
        call = self.call_factory(
            call_id=call_id, session_id=session.id, account=account, request_uri=uri,
            callee=callee, visible_name=visible_name, has_audio=has_audio, has_video=has_video,
            browser_offer=sdp, sip_headers=sip_headers,
            **self._hooks(session),
        )
        self._start(call, session)
        return call_id

    def hangup(self, session_id: str, call_id: str) -> None:
        _end(self.registry.get(session_id, call_id), "browser")

    # -- incoming calls -------------------------------------------------------------------

    def session_for_contact(self, contact_user: str) -> Session | None:
        return self._by_contact.get(contact_user)

    def take_incoming(self, session: Session, invite: Any, request: Any) -> Any:
        """An INVITE the router accepted for ``session``: make and register its call."""
        self.admission.check_open("call")  # the router answers 503 with Retry-After
        self.admission.check_session_calls(session)  # the router answers 486 Busy Here
        caller = request.from_
        callee = request.to
        call_id = secrets.token_hex(8)
        call = self.inbound_factory(
            invite=invite, caller=caller.uri.user or str(caller.uri), request_uri=str(caller.uri),
            call_id=call_id, session_id=session.id, account=session.account,
            callee=callee.uri.user or str(callee.uri), visible_name=caller.display_name,
            has_audio=True, has_video=False, **self._hooks(session),
        )
        self._start(call, session)
        return call

    def answer(self, session_id: str, call_id: str, sdp: str) -> None:
        self.registry.get(session_id, call_id).answer(sdp)

    # -- in-call functions: a session's own calls, or any call for the operator (None) --

    def hold(self, session_id: str | None, call_id: str, for_transfer: bool = False) -> None:
        call = self.registry.get(session_id, call_id)  # for_transfer: WCS's holdForTransfer
        call.hold(for_transfer=True) if for_transfer else call.hold()

    def unhold(self, session_id: str | None, call_id: str) -> None:
        self.registry.get(session_id, call_id).unhold()

    def send_dtmf(self, session_id: str | None, call_id: str, digits: str,
                  type: str = "RFC2833") -> None:
        if not digits or any(d not in DTMF_DIGITS for d in digits.upper()):
            raise CallError(Codes.INVALID, "dtmf must be digits 0-9 * # A-D", "dtmf")
        if type.upper() not in ("RFC2833", "INFO"):
            raise CallError(Codes.INVALID, "type must be RFC2833 or INFO", "type")
        self.registry.get(session_id, call_id).send_dtmf(digits.upper(), type.upper())

    def transfer(self, session_id: str | None, call_id: str, target: str) -> None:
        """Blind or attended transfer: :func:`wcsgw.calls.operator.transfer`."""
        operator.transfer(self, session_id, call_id, target)

    def answer_transfer(self, session_id: str, call_id: str, accept: bool) -> None:
        """The browser's answer to a ``transferRequest`` (a far end's REFER put to it):
        accept -> the transfer proceeds, refuse -> 603 Decline.  Only the session's own
        call; :class:`CallError` naming ``callId`` when it has no request pending."""
        self.registry.get(session_id, call_id).answer_transfer(accept)

    # -- the operator's view (REST) -------------------------------------------------------

    def startup(self, **request: Any) -> str:
        """A call the operator places (REST ``call/startup``):
        :func:`wcsgw.calls.operator.startup` (its own module for this file's size)."""
        return operator.startup(self, **request)

    def terminate(self, call_id: str) -> None:
        _end(self.registry.get(None, call_id), "gateway")

    def find_all(self) -> list[dict[str, Any]]:
        return [call.describe() for call in self.calls.values()]

    def find(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Calls whose fields equal every given filter (callId, status, caller, callee,
        sessionId ...)."""
        return self.registry.find(filters)

    def _start(self, call: Any, session: Session | None) -> None:
        """Register ``call`` (live and unsettled) and start it.

        A start that fails for any reason leaves no trace: the call leaves the registry, what
        it opened is closed (``abandon``: its ports go back, no timer stays) and the request
        gets the error.  Running out of media ports is a :class:`CallError` (NO_PORTS), not
        an internal error.  A session that already has a live call starts this one inside the
        port reserve (:meth:`PortAllocator.keeping`, :meth:`Admission.port_reserve`)."""
        reserve = self.admission.port_reserve(session, self.media_ports)
        self.registry.add(call)
        if session is not None:
            session.calls[call.call_id] = call
        try:
            if reserve:
                with self.media_ports.keeping(reserve):
                    call.start()
            else:
                call.start()
        except Exception as exc:
            self._abandon(call)
            refusal = self.admission.port_refusal(exc, call.call_id)
            if refusal is not None:
                raise refusal from None
            raise

    def _abandon(self, call: Any) -> None:
        """Undo a start that raised: close what the call opened, forget it."""
        try:
            abandon = getattr(call, "abandon", None)
            if abandon is not None:
                abandon()
        except Exception:  # noqa: BLE001 - logged; the call is forgotten all the same
            log.failure("call {call_id}: cleaning up a refused start failed",
                        call_id=call.call_id)
        finally:
            self._forget_call(call)
            self.registry.settled(call)

    def _hooks(self, session: Session | None) -> dict[str, Any]:
        """The callbacks every call gets: statuses and notifications to its session (none
        for the operator's own calls), and the registry's bookkeeping."""
        # a test's listener without ``notify``: the call gets none (it then asks no REFER)
        notifies = session is not None and (session.relay is None or session.relay.notifies)
        return {
            "on_status": session.listener.call_status if session else (lambda described: None),
            "notify": getattr(session.listener, "notify", None) if session and notifies else None,
            "on_gone": self._forget_call,
            "on_settled": self.registry.settled,
        }

    def _forget_call(self, call: Any) -> None:
        """The call reached its terminal status: out of the registry and its session."""
        self.registry.gone(call)
        session = self.sessions.get(call.session_id)
        if session is not None:
            session.calls.pop(call.call_id, None)

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no call is live or still ending on the SIP side (graceful shutdown)."""
        return self.registry.when_idle()

    def hangup_all(self) -> None:
        """The gateway is going away: every call ends, every detached session too (and no
        session detaches from now on: nothing would resume it)."""
        for session_id in self.resumer.stop():
            self.end_session(session_id)
        for call in list(self.calls.values()):
            _end(call, "gateway")

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise CallError(Codes.NOT_CONNECTED, "unknown session")
        return session

    def restart_ice(self, session_id: str, call_id: str, sdp: str) -> str:  # Call.restart_ice
        return str(self.registry.get(session_id, call_id).restart_ice(sdp))
