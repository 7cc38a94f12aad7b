"""The operator's own calls (REST ``call/startup``), apart from the browser sessions' calls.

Kept out of :mod:`wcsgw.calls.gateway` so that module stays small: these are the calls the
REST client places — with server-side media (a WAV played, the answer recorded) or handed to a
connected browser session — and they share the gateway's registry, limits and policy, which
they reach through the :class:`~wcsgw.calls.gateway.CallGateway` they are given.

A server-held account (``[[accounts]] name``) is the operator's own: its servers are not
checked against ``policy.allowed_domains`` (the destination still is, as for any account).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from wcsgw.calls import ids
from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount

if TYPE_CHECKING:
    from wcsgw.calls.gateway import CallGateway

__all__ = ["startup", "transfer"]


def startup(
    gw: CallGateway,
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
    gw.admission.check_open("call")
    if session_id is not None and account is None:
        session = gw.sessions.get(session_id)
        account = session.account if session is not None else None
    if gw.accounts.name_of(account) is None:
        gw.policy.check_account(account)
    # The operator's calls may take routes to server-held accounts (docs/dial-plan.md).
    account, uri = gw.policy.routed(account, callee, held=True)
    sip_headers = gw.policy.outgoing_headers(sip_headers or {})
    sip_headers = gw.trunks.outgoing(gw.accounts.name_of(account), sip_headers)  # down: refused
    call_id = gw.registry.new_call_id(call_id)
    handed_to = gw.sessions.get(session_id) if session_id is not None else None
    if handed_to is not None:
        gw.admission.check_session_calls(handed_to)
    gw.admission.check_rate(peer, gw.clock())
    if session_id is not None:
        return _hand_to_session(gw, session_id, call_id, uri, callee, account,
                                     visible_name, has_video)
    if gw.file_call_factory is None:
        raise CallError(Codes.INVALID, "server-side media is not configured", "playFile")
    record_file = None
    if record:
        if gw.recordings is None:
            raise CallError(Codes.INVALID, "recording is not configured", "record")
        # Server-chosen, never from the callId (issue 10: "../outside/victim"); the one
        # recordings folder ([recording] folder, wcsgw.calls.recording).
        record_file = Path(gw.recordings.folder) / ids.recording_name()
    call = gw.file_call_factory(
        call_id=call_id, session_id=None, account=account, request_uri=uri, callee=callee,
        visible_name=visible_name, has_audio=has_audio, has_video=has_video,
        sip_headers=sip_headers or {}, play_file=Path(play_file) if play_file else None,
        record_file=record_file, **gw._hooks(None),
    )
    gw._start(call, None)
    return call_id

def _hand_to_session(gw: CallGateway, session_id: str, call_id: str, uri: str, callee: str,
                     account: SipAccount | None, visible_name: str | None,
                     has_video: bool = False) -> str:
    """REST startup with sessionId: the browser gets the call as an incoming one and,
    once it answers, the gateway places the SIP call (with video when ``has_video``, the
    browser's answer keeps video and the SIP side takes it)."""
    session = gw.sessions.get(session_id)
    if session is None or not session.connected:
        raise CallError(Codes.NOT_CONNECTED, f"no connected session {session_id}",
                        "sessionId")
    account = account or session.account
    call = gw.handed_call_factory(
        call_id=call_id, session_id=session.id, account=account,
        request_uri=uri, callee=callee, visible_name=visible_name, has_audio=True,
        has_video=has_video, **gw._hooks(session),
    )
    identity = gw.trunks.identity(gw.accounts.name_of(account))
    if identity:  # a server-held account's RFC 3325 headers, for the INVITE sent on answer
        call.sip_headers.update(identity)
    gw._start(call, session)
    return call_id



def transfer(gw: CallGateway, session_id: str | None, call_id: str, target: str) -> None:
    """Blind transfer to a number or URI, or attended when ``target`` is the callId of
    another call of the same session (REFER with Replaces)."""
    call = gw.registry.get(session_id, call_id)
    other = gw.calls.get(target)
    if other is not None and other is not call and other.session_id == call.session_id:
        call.transfer(other.request_uri, replaces_call=other)
        return
    # A session without an account calls the test lines only; any other call (a
    # session's, or the operator's) transfers through its own account's domain.
    session = gw.sessions.get(call.session_id)
    testlines_only = session is not None and session.account is None
    account = None if testlines_only else call.account
    uri = gw.policy.request_uri(account, target, field="target")
    call.transfer(uri)
