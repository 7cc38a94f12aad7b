"""The B2BUA's face toward the APIs: browser sessions, their SIP accounts and their calls.

The JSON-RPC (and later REST) layer talks only to :class:`CallGateway`; it never sees SIP or
media objects.  Each session is one browser connection: it may bring a SIP account (checked
against the policy, registered if asked) and places calls; when it goes away — disconnect, or
its WebSocket simply closes — every call it owned is ended on the SIP side and its binding is
removed, so nothing is left up behind a vanished browser.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Callable, Protocol

import attr
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls import ids
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.limits import SlidingWindow, address_key, effective_reserve
from wcsgw.calls.policy import Policy
from wcsgw.calls.status import SessionStatus
from wcsgw.calls.totals import CallTotals
from wcsgw.config import LimitsSettings
from wcsgw.media.ports import PortsExhausted, PortsReserved
from wcsgw.sip.account import SipAccount, escape_user
from wcsgw.sip.endpoint import AccountRegistration
from wcsgw.sip.registration import Registered, RegistrationFailed, Unregistered

__all__ = ["CallError", "CallGateway", "Codes", "SessionListener"]

DTMF_DIGITS = frozenset("0123456789*#ABCD")

#: What a refusal can be counted under (the label values of wcsgw_limit_refusals_total).
LIMIT_NAMES = ("max_sessions", "sessions_per_ip", "calls_per_session", "calls_per_minute_per_ip",
               "port_reserve", "ports")

log = Logger(namespace="wcsgw.calls")


class SessionListener(Protocol):
    """What a browser session hears back (the WebSocket layer turns these into notifications)."""

    def session_status(self, status: str, sip_status: int | None, info: str) -> None: ...

    def call_status(self, call: dict[str, Any]) -> None: ...


@attr.s(auto_attribs=True, eq=False)
class Session:
    id: str
    listener: SessionListener
    account: SipAccount | None = None
    connected: bool = False
    registration: AccountRegistration | None = None
    calls: dict[str, Any] = attr.ib(factory=dict)  # callId -> Call
    #: the user part of this session's own registered contact (``<login>-<token>``): the
    #: registrar forks an account's calls to each logged-in browser by it
    contact_user: str | None = None
    #: who the WebSocket is from, as [limits] count it (``address_key`` of the TCP peer:
    #: the IPv4 address or the IPv6 /64; None: not known)
    peer: str | None = None



def _failed_status(event: RegistrationFailed) -> tuple[str, int | None, str]:
    status = SessionStatus.AUTHENTICATION_FAIL if event.auth else SessionStatus.FAILED
    return status.value, event.status, event.reason


#: A REGISTER client's event -> the ``sessionStatus`` (status, SIP status, info) it makes.
_REGISTRATION_STATUS: dict[type, Callable[[Any], tuple[str, int | None, str]]] = {
    Registered: lambda event: (SessionStatus.REGISTERED.value, 200, ""),
    RegistrationFailed: _failed_status,
    Unregistered: lambda event: (SessionStatus.UNREGISTERED.value, None, event.reason),
}

class CallGateway:
    """Sessions and calls of one gateway process.

    ``calls`` is the registry of live calls by callId (REST finds them there); ``factory`` builds
    a :class:`wcsgw.calls.call.Call` — injected so the API layer can be tested without media.

    ``limits`` (``[limits]``) are enforced here, where every session and call comes through:
    sessions per peer address and in all (:meth:`admit_session`), live calls per session
    (incoming and REST-handed calls included), calls per minute per address (WebSocket ``call``
    and REST ``call/startup`` share one window, on ``clock``), and the media port reserve.
    Every refusal is a :class:`CallError` whose message names the setting.
    """

    def __init__(self, sip: Any, policy: Policy, call_factory: Any, *,
                 limits: LimitsSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sip = sip
        self.policy = policy
        self.call_factory = call_factory
        self.limits = limits or LimitsSettings()
        #: now, for the call-rate window (the reactor's seconds in the service; tests inject)
        self.clock = clock
        self.call_rate = SlidingWindow(self.limits.calls_per_minute_per_ip, 60.0)
        #: the media ports every call takes from (set by the service; None: no reserve kept)
        self.media_ports: Any = None
        #: refusals so far by limit (/metrics ``wcsgw_limit_refusals_total``); "ports" is
        #: the range exhausted, "port_reserve" a session's further call kept off the reserve
        self.refusals: dict[str, int] = dict.fromkeys(LIMIT_NAMES, 0)
        self.sessions: dict[str, Session] = {}
        self.calls: dict[str, Any] = {}
        #: calls whose SIP leg is not over yet (a call leaves ``calls`` at its terminal status
        #: but may still be waiting for the answer to its BYE or CANCEL)
        self.unsettled: set[Any] = set()
        self._idle_waiters: list[defer.Deferred[None]] = []
        self._by_contact: dict[str, Session] = {}
        #: builds an InboundCall (the service wires it; None: no incoming calls)
        self.inbound_factory: Any = None
        #: builds a FileCall for REST calls with server-side media
        self.file_call_factory: Any = None
        #: builds a HandedCall for REST calls handed to a browser session
        self.handed_call_factory: Any = None
        #: where REST calls with ``record`` write their recordings, named by the gateway
        #: (:func:`wcsgw.calls.ids.recording_name`; None: recording refused)
        self.recordings_folder: str | None = None
        #: what ended calls counted (for /metrics: counters must survive a call's end)
        self.totals = CallTotals()

    # -- sessions -----------------------------------------------------------------------

    def admit_session(self, peer: str | None) -> None:
        """May one more session open from ``peer``?  :class:`CallError` (TOO_MANY_SESSIONS)
        naming the limit if not.  The WebSocket layer asks before it accepts the upgrade."""
        limits = self.limits
        peer = address_key(peer) if peer is not None else None
        if len(self.sessions) >= limits.max_sessions:
            raise self._refused("max_sessions", Codes.TOO_MANY_SESSIONS, f"Too many sessions: "
                                f"limits.max_sessions is {limits.max_sessions}")
        if peer is not None:
            from_peer = sum(1 for s in self.sessions.values() if s.peer == peer)
            if from_peer >= limits.sessions_per_ip:
                raise self._refused("sessions_per_ip", Codes.TOO_MANY_SESSIONS,
                                    f"Too many sessions from {peer}: limits.sessions_per_ip is "
                                f"{limits.sessions_per_ip}")

    def open_session(self, session_id: str, listener: SessionListener,
                     peer: str | None = None) -> None:
        """A new browser connection from ``peer`` (its TCP address; a proxy's
        X-Forwarded-For is not trusted).  Refused like :meth:`admit_session`."""
        self.admit_session(peer)
        key = address_key(peer) if peer is not None else None
        self.sessions[session_id] = Session(session_id, listener, peer=key)

    def connect(self, session_id: str, account: SipAccount | None, register: bool) -> None:
        session = self._session(session_id)
        if session.connected:
            raise CallError(Codes.BAD_STATE, "already connected; disconnect first")
        self.policy.check_account(account)
        session.account = account
        session.connected = True
        session.listener.session_status(SessionStatus.ESTABLISHED.value, None, "")
        if account is not None and register:
            # Keyed unescaped: the router reads the Request-URI's user part unescaped.
            session.contact_user = f"{account.login}-{secrets.token_hex(4)}"
            self._by_contact[session.contact_user] = session
            session.registration = self.sip.register(
                account, listener=lambda event: self._registration_event(session, event),
                contact_user=escape_user(session.contact_user))

    def disconnect(self, session_id: str) -> None:
        session = self._session(session_id)
        self._teardown(session)
        session.listener.session_status(SessionStatus.DISCONNECTED.value, None, "")

    def close_session(self, session_id: str) -> None:
        """The browser is gone: end its calls and binding, then forget it."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            self._teardown(session)

    def _teardown(self, session: Session) -> None:
        for call in list(session.calls.values()):
            call.hangup()
        if session.registration is not None:
            self.sip.unregister(session.registration)
            session.registration = None
        if session.contact_user is not None:
            self._by_contact.pop(session.contact_user, None)
            session.contact_user = None
        session.connected = False
        session.account = None

    def _registration_event(self, session: Session, event: object) -> None:
        """A REGISTER client's event, as the session's ``sessionStatus``."""
        if session.id not in self.sessions:
            return
        report = _REGISTRATION_STATUS.get(type(event))
        if report is not None:
            session.listener.session_status(*report(event))

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
    ) -> str:
        session = self._session(session_id)
        if not session.connected:
            raise CallError(Codes.NOT_CONNECTED, "connect before calling")
        self._check_session_calls(session)
        call_id = self._new_call_id(call_id)
        uri = self.policy.request_uri(session.account, callee)
        self._check_rate(session.peer)
        # The API layer checked them already (-32602); checked again here so that no path
        # into the call layer can skip the allow-list.
        sip_headers = self.policy.outgoing_headers(sip_headers)
        call = self.call_factory(
            call_id=call_id, session_id=session.id, account=session.account, request_uri=uri,
            callee=callee, visible_name=visible_name, has_audio=has_audio, has_video=has_video,
            browser_offer=sdp, sip_headers=sip_headers,
            **self._hooks(session),
        )
        self._start(call, session)
        return call_id

    def hangup(self, session_id: str, call_id: str) -> None:
        self._call(session_id, call_id).hangup()

    # -- incoming calls -------------------------------------------------------------------

    def session_for_contact(self, contact_user: str) -> Session | None:
        return self._by_contact.get(contact_user)

    def take_incoming(self, session: Session, invite: Any, request: Any) -> Any:
        """An INVITE the router accepted for ``session``: make and register its call."""
        from wcsgw.sip.headers import parse_name_addr  # noqa: F401 - for the caller's identity

        self._check_session_calls(session)  # the router answers 486 Busy Here
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
        self._call(session_id, call_id).answer(sdp)

    # -- in-call functions: a session's own calls, or any call for the operator (None) --

    def hold(self, session_id: str | None, call_id: str) -> None:
        self._call(session_id, call_id).hold()

    def unhold(self, session_id: str | None, call_id: str) -> None:
        self._call(session_id, call_id).unhold()

    def send_dtmf(self, session_id: str | None, call_id: str, digits: str,
                  type: str = "RFC2833") -> None:
        if not digits or any(d not in DTMF_DIGITS for d in digits.upper()):
            raise CallError(Codes.INVALID, "dtmf must be digits 0-9 * # A-D", "dtmf")
        if type.upper() not in ("RFC2833", "INFO"):
            raise CallError(Codes.INVALID, "type must be RFC2833 or INFO", "type")
        self._call(session_id, call_id).send_dtmf(digits.upper(), type.upper())

    def transfer(self, session_id: str | None, call_id: str, target: str) -> None:
        """Blind transfer to a number or URI, or attended when ``target`` is the callId of
        another call of the same session (REFER with Replaces)."""
        call = self._call(session_id, call_id)
        other = self.calls.get(target)
        if other is not None and other is not call and other.session_id == call.session_id:
            call.transfer(other.request_uri, replaces_call=other)
            return
        # A session without an account calls the test lines only; any other call (a
        # session's, or the operator's) transfers through its own account's domain.
        session = self.sessions.get(call.session_id)
        testlines_only = session is not None and session.account is None
        account = None if testlines_only else call.account
        uri = self.policy.request_uri(account, target, field="target")
        call.transfer(uri)

    def answer_transfer(self, session_id: str, call_id: str, accept: bool) -> None:
        """The browser's answer to a ``transferRequest`` (a far end's REFER put to it):
        accept -> the transfer proceeds, refuse -> 603 Decline.  Only the session's own
        call; :class:`CallError` naming ``callId`` when it has no request pending."""
        self._call(session_id, call_id).answer_transfer(accept)

    # -- the operator's view (REST) -------------------------------------------------------

    def startup(
        self,
        *,
        call_id: str | None,
        callee: str,
        account: SipAccount | None,
        register: bool = False,
        visible_name: str | None = None,
        has_audio: bool = True,
        has_video: bool = False,
        session_id: str | None = None,
        play_file: Any = None,
        record: Any = None,
        sip_headers: dict[str, str] | None = None,
        peer: str | None = None,
    ) -> str:
        """A call the operator places (REST ``call/startup``): with server-side media (a WAV
        played, the answer recorded), or handed to a connected browser session.  ``peer``:
        the REST client's address, for ``limits.calls_per_minute_per_ip``."""
        if session_id is not None:
            ids.check_id(session_id, "sessionId")
        if session_id is not None and account is None:
            session = self.sessions.get(session_id)
            account = session.account if session is not None else None
        self.policy.check_account(account)
        uri = self.policy.request_uri(account, callee)
        sip_headers = self.policy.outgoing_headers(sip_headers or {})
        call_id = self._new_call_id(call_id)
        handed_to = self.sessions.get(session_id) if session_id is not None else None
        if handed_to is not None:
            self._check_session_calls(handed_to)
        self._check_rate(peer)
        if session_id is not None:
            return self._hand_to_session(session_id, call_id, uri, callee, account,
                                         visible_name, has_video)
        if self.file_call_factory is None:
            raise CallError(Codes.INVALID, "server-side media is not configured", "playFile")
        record_file = None
        if record:
            if self.recordings_folder is None:
                raise CallError(Codes.INVALID, "no recordings folder is configured", "record")
            # Server-chosen, never from the callId (issue 10: "../outside/victim").
            record_file = Path(self.recordings_folder) / ids.recording_name()
        call = self.file_call_factory(
            call_id=call_id, session_id=None, account=account, request_uri=uri, callee=callee,
            visible_name=visible_name, has_audio=has_audio, has_video=has_video,
            sip_headers=sip_headers or {}, play_file=Path(play_file) if play_file else None,
            record_file=record_file, **self._hooks(None),
        )
        self._start(call, None)
        return call_id

    def _hand_to_session(self, session_id: str, call_id: str, uri: str, callee: str,
                         account: SipAccount | None, visible_name: str | None,
                         has_video: bool = False) -> str:
        """REST startup with sessionId: the browser gets the call as an incoming one and,
        once it answers, the gateway places the SIP call (with video when ``has_video``, the
        browser's answer keeps video and the SIP side takes it)."""
        session = self.sessions.get(session_id)
        if session is None or not session.connected:
            raise CallError(Codes.NOT_CONNECTED, f"no connected session {session_id}",
                            "sessionId")
        call = self.handed_call_factory(
            call_id=call_id, session_id=session.id, account=account or session.account,
            request_uri=uri, callee=callee, visible_name=visible_name, has_audio=True,
            has_video=has_video, **self._hooks(session),
        )
        self._start(call, session)
        return call_id

    def terminate(self, call_id: str) -> None:
        self._call(None, call_id).hangup()

    def find_all(self) -> list[dict[str, Any]]:
        return [call.describe() for call in self.calls.values()]

    def find(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Calls whose fields equal every given filter (callId, status, caller, callee,
        sessionId ...)."""
        found = []
        for call in self.calls.values():
            described = call.describe()
            if all(str(described.get(key)) == str(value) for key, value in filters.items()):
                found.append(described)
        return found

    def _call(self, session_id: str | None, call_id: str) -> Any:
        call = self.calls.get(call_id)
        if call is None or (session_id is not None and call.session_id != session_id):
            where = "" if session_id is None else " in this session"
            raise CallError(Codes.UNKNOWN_CALL, f"no call {call_id}{where}", "callId")
        return call

    def _new_call_id(self, call_id: str | None) -> str:
        """The client's callId if it is free (409 otherwise), or a fresh one."""
        if call_id is None:
            return secrets.token_hex(8)
        ids.check_id(call_id, "callId")  # a registry key, logged: one shape (calls/ids.py)
        if call_id in self.calls:
            raise CallError(Codes.DUPLICATE_CALL, f"callId {call_id} is already in use", "callId")
        return call_id

    def _start(self, call: Any, session: Session | None) -> None:
        """Register ``call`` (live and unsettled) and start it.

        A start that fails for any reason leaves no trace: the call leaves the registry, what
        it opened is closed (``abandon``: its ports go back, no timer stays) and the request
        gets the error.  Running out of media ports is a :class:`CallError` (NO_PORTS), not
        an internal error.  A session that already has a live call starts this one inside the
        port reserve (:meth:`PortAllocator.keeping`): it cannot take the last ports, so
        every other session can still place its first call."""
        reserve = 0
        if session is not None and session.calls and self.media_ports is not None:
            reserve = effective_reserve(self.limits.port_reserve, self.media_ports.size)
        self.unsettled.add(call)
        self.calls[call.call_id] = call
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
            if isinstance(exc, PortsReserved):
                raise self._refused(
                    "port_reserve", Codes.NO_PORTS,
                    f"No media ports free for another call of this session: the last "
                    f"{exc.reserve} are kept for other sessions (limits.port_reserve)") from None
            if isinstance(exc, PortsExhausted):
                log.warn("call {call_id} refused: {error}", call_id=call.call_id, error=str(exc))
                raise self._refused("ports", Codes.NO_PORTS, "No media ports free") from None
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
            self._settled(call)

    def _refused(self, limit: str, code: int, message: str) -> CallError:
        """Count a refusal by ``limit`` (for /metrics) and make its error."""
        self.refusals[limit] = self.refusals.get(limit, 0) + 1
        return CallError(code, message)

    def _check_session_calls(self, session: Session) -> None:
        """``limits.calls_per_session``: live calls of the session, incoming ones included."""
        cap = self.limits.calls_per_session
        if len(session.calls) >= cap:
            raise self._refused("calls_per_session", Codes.TOO_MANY_CALLS,
                                f"Too many calls: limits.calls_per_session is {cap}")

    def _check_rate(self, peer: str | None) -> None:
        """``limits.calls_per_minute_per_ip``: counts this call for ``peer`` (None: the
        address is not known — the operator's own calls from inside — and not limited)."""
        if peer is None:
            return
        peer = address_key(peer)  # idempotent: sessions keep the key already
        now = self.clock()
        if not self.call_rate.admit(peer, now):
            wait = self.call_rate.retry_after(peer, now)
            raise self._refused("calls_per_minute_per_ip", Codes.CALL_RATE,
                                f"Too many calls from {peer}: limits.calls_per_minute_per_ip "
                                f"is {self.limits.calls_per_minute_per_ip}; try again in "
                                f"{max(1, round(wait))} s")

    def _hooks(self, session: Session | None) -> dict[str, Any]:
        """The callbacks every call gets: statuses and notifications to its session (none
        for the operator's own calls), and the registry's bookkeeping."""
        return {
            "on_status": session.listener.call_status if session else (lambda described: None),
            "notify": getattr(session.listener, "notify", None) if session else None,
            "on_gone": self._forget_call,
            "on_settled": self._settled,
        }

    def _forget_call(self, call: Any) -> None:
        self.totals.call_ended(call)
        self.calls.pop(call.call_id, None)
        session = self.sessions.get(call.session_id)
        if session is not None:
            session.calls.pop(call.call_id, None)

    def _settled(self, call: Any) -> None:
        self.unsettled.discard(call)
        if not self.unsettled and not self.calls:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def when_idle(self) -> defer.Deferred[None]:
        """Fires once no call is live or still ending on the SIP side (graceful shutdown)."""
        if not self.unsettled and not self.calls:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    def hangup_all(self) -> None:
        for call in list(self.calls.values()):
            call.hangup()

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise CallError(Codes.NOT_CONNECTED, "unknown session")
        return session
