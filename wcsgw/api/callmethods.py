"""The in-call JSON-RPC methods of a browser session (hangup, answer, hold, transfer, DTMF,
ICE restart, recording): each checks its params and hands one call-layer operation the call's
id.  A mixin of :class:`wcsgw.api.methods.SessionMethods`, apart so that session set-up
(connect, resume, hooks) and what is done to a call live in modules of their own size.
"""

from __future__ import annotations

from typing import Any

from wcsgw.api.params import (
    _DTMF,
    _MAX_DTMF,
    _MAX_SDP,
    ParamError,
    _boolean,
    _call_id,
    _choice,
    _sip_headers,
    _string,
)
from wcsgw.calls.errors import Codes
from wcsgw.calls.gateway import CallError, CallGateway
from wcsgw.calls.inbound import decline_busy

__all__ = ["CallMethods"]


class CallMethods:
    """What a session does to one of its calls; ``gateway`` and ``session_id`` are the
    session's (set by :class:`~wcsgw.api.methods.SessionMethods`)."""

    gateway: CallGateway
    session_id: str

    def _hangup(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        if _boolean(params, "busy", False):  # declining a call waiting: 486, not decline_status
            decline_busy(self.gateway.registry.get(self.session_id, call_id))
        self.gateway.hangup(self.session_id, call_id)
        return {}

    def _answer(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        sdp = _string(params, "sdp", required=True, max_len=_MAX_SDP, multiline=True)
        # Checked like the INVITE's, but not used yet: the call layer's 200 OK has no extras.
        _sip_headers(params, self.gateway.policy)
        self.gateway.answer(self.session_id, call_id, sdp)
        return {}

    def _hold(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        if _boolean(params, "holdForTransfer", False):  # WCS: held to be transferred next
            self.gateway.hold(self.session_id, call_id, for_transfer=True)
            return {}
        self.gateway.hold(self.session_id, call_id)
        return {}

    def _unhold(self, params: dict[str, Any]) -> dict[str, Any]:
        self.gateway.unhold(self.session_id, _call_id(params))
        return {}

    def _transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        # A user part or URI (blind) or another callId of this session (attended): which one it
        # is, and whether the destination is allowed, is the call layer's decision.
        target = _string(params, "target", required=True).strip()
        self.gateway.transfer(self.session_id, call_id, target)
        return {}

    def _answer_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        """The answer to a ``transferRequest`` notification: ``accept`` true lets the far
        end's REFER proceed, false declines it (603).  ``accept`` is required: a browser that
        forgot it must not transfer the call by default."""
        call_id = _call_id(params)
        if params.get("accept") is None:
            raise ParamError("accept", "is required (true or false)")
        accept = _boolean(params, "accept", False)
        self.gateway.answer_transfer(self.session_id, call_id, accept)
        return {}

    def _send_dtmf(self, params: dict[str, Any]) -> dict[str, Any]:
        call_id = _call_id(params)
        dtmf = _string(params, "dtmf", required=True)
        if not _DTMF.match(dtmf):
            raise ParamError("dtmf", f"must be 1 to {_MAX_DTMF} of the digits 0-9 * # A-D")
        dtmf_type = _choice(params, "type", ("RFC2833", "INFO"), "RFC2833")
        # a-d are taken as A-D: RFC 4733 events 12-15 and the INFO "Signal=" value are upper case.
        self.gateway.send_dtmf(self.session_id, call_id, dtmf.upper(), dtmf_type)
        return {}

    def _restart_ice(self, params: dict[str, Any]) -> dict[str, Any]:
        """The browser's ICE restart after a network change (docs/websocket-api.md): its new
        offer for one of its calls, our answer back; the SIP side hears nothing of it."""
        call_id = _call_id(params)
        sdp = _string(params, "sdp", required=True, max_len=_MAX_SDP, multiline=True)
        return {"sdp": self.gateway.restart_ice(self.session_id, call_id, sdp)}

    def _record(self, params: dict[str, Any]) -> dict[str, Any]:
        """Record one of the session's calls, both ways in one stereo WAV (docs/operations.md,
        Recordings): from now, or from the answer when asked before it."""
        call_id = _call_id(params)
        recordings = getattr(self.gateway, "recordings", None)
        if recordings is None:
            raise CallError(Codes.INVALID, "recording is not configured", "callId")
        return {"recording": recordings.record(self.session_id, call_id, True)}

    def _stop_recording(self, params: dict[str, Any]) -> dict[str, Any]:
        """Stop (pause) it: the file stays, silent until ``record`` again or the call's end."""
        call_id = _call_id(params)
        recordings = getattr(self.gateway, "recordings", None)
        if recordings is None:
            raise CallError(Codes.INVALID, "recording is not configured", "callId")
        recordings.record(self.session_id, call_id, False)
        return {}
