"""``sendMessage`` (docs/contract.md): a SIP MESSAGE from a browser session.  A mixin of
:class:`wcsgw.api.methods.SessionMethods`, apart so that the session's methods module does not
grow with each feature.

The reply waits for the SIP side's final answer (``{}`` on a 2xx; error 1014 naming the SIP
status otherwise, 408 when nobody answered), through the same path as a reply that waits on a
hook: the request returns a Deferred firing with the rest of the work.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred

from wcsgw.api.params import ParamError, _choice, _string
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.messages import MESSAGE_FAILED
from wcsgw.sip.messaging import CONTENT_TYPES, MAX_BODY, MessageResult

__all__ = ["MessageMethods"]


def _outcome(result: MessageResult) -> Callable[[], dict[str, Any]]:
    def reply() -> dict[str, Any]:
        if result.ok:
            return {}
        raise CallError(MESSAGE_FAILED, f"Message not delivered: {result.status} {result.reason}")
    return reply


class MessageMethods:
    """What a session sends outside its calls; ``gateway`` and ``session_id`` are the
    session's (set by :class:`~wcsgw.api.methods.SessionMethods`)."""

    gateway: CallGateway
    session_id: str

    def _send_message(self, params: dict[str, Any]) -> Any:
        to = _string(params, "to", required=True).strip()
        body = _string(params, "body", required=True, max_len=MAX_BODY, multiline=True)
        if len(body.encode("utf-8")) > MAX_BODY:
            raise ParamError("body", f"is too long (at most {MAX_BODY} bytes as UTF-8)")
        content_type = _choice(params, "contentType", CONTENT_TYPES, "text/plain")
        messages = getattr(self.gateway, "messages", None)
        if messages is None:
            raise CallError(Codes.BAD_STATE, "messages are not available on this gateway")
        sent: Deferred[MessageResult] = messages.send(self.session_id, to, body, content_type)
        box: list[MessageResult] = []
        sent.addCallback(box.append)
        if box:  # settled at once (a transport error): answered now, not as a late reply
            return _outcome(box[0])()
        return sent.addCallback(lambda _: _outcome(box[0]))
