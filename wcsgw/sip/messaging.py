"""SIP MESSAGE (RFC 3428), sans-IO: one page-mode message out through an account, and the
checks an incoming one passes before anyone shows it to a person.

Why its own module: a MESSAGE is neither a call nor a registration.  It is one non-INVITE
client transaction (retransmission, Timer F and transport errors are the transaction layer's,
as for an OPTIONS probe) sent to the account's next hop with the account's AOR as From;
:class:`OutgoingMessage` builds it and answers a 401/407 once per nonce with the account's
credentials (the judgement is the DigestClient's, as for REGISTER: the request went to the
account's own server), and :func:`send_message` runs it on an endpoint.

What reaches a browser is decided by :func:`incoming_refusal`: a body of at most
:data:`MAX_BODY` bytes, one of :data:`CONTENT_TYPES`, valid UTF-8 (and valid JSON for
``application/json``).  Nothing else is delivered: the page shows the text as text, and an
arbitrary type (HTML, an image, a script) never reaches it.  The body is never logged.
"""

from __future__ import annotations

import json
from typing import Callable

import attr

from wcsgw.sip.account import SipAccount
from wcsgw.sip.digest import ChallengeOutcome, DigestClient
from wcsgw.sip.frontdoor import MESSAGE_CONTENT_TYPES
from wcsgw.sip.headers import format_name_addr
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.target import Target, unbracket

__all__ = ["CONTENT_TYPES", "MAX_BODY", "MessageResult", "OutgoingMessage",
           "incoming_refusal", "media_type", "send_message"]

#: the largest body sent or delivered, in bytes (RFC 3428 §5: page mode is for short texts;
#: a bigger incoming one gets 413)
MAX_BODY = 8192
#: the body types sent and delivered: text for people, and JSON for applications (the front
#: door's list for MESSAGE, so that a 415 is answered before any transaction user sees one)
CONTENT_TYPES: tuple[str, ...] = MESSAGE_CONTENT_TYPES
#: challenges answered per message before giving up
MAX_CHALLENGES = 3


@attr.s(frozen=True, auto_attribs=True)
class MessageResult:
    """How a MESSAGE ended: the final status (408 for a timeout, 503 for a transport error)."""

    status: int
    reason: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def media_type(value: str | None) -> str:
    """``text/plain`` of ``text/plain; charset=UTF-8``."""
    return (value or "").split(";", 1)[0].strip().lower()


class OutgoingMessage:
    """One MESSAGE from ``account`` to ``request_uri`` (a URI the outbound policy built):
    :meth:`request` is the first to send; :meth:`response` takes each answer and returns the
    request to send again (a challenge answered), a :class:`MessageResult`, or None (1xx)."""

    def __init__(self, account: SipAccount, request_uri: str, body: bytes, content_type: str,
                 digest: DigestClient | None = None) -> None:
        if content_type not in CONTENT_TYPES:
            raise ValueError(f"content type must be one of {', '.join(CONTENT_TYPES)}")
        if len(body) > MAX_BODY:
            raise ValueError(f"body over {MAX_BODY} bytes")
        self.account = account
        self.request_uri = request_uri
        self.body = body
        self.content_type = content_type
        self._digest = digest if digest is not None else account.digest_client()
        self._call_id = new_call_id()
        self._tag = new_tag()
        self._cseq = 0
        self._challenges = 0
        self._pending: Request | None = None

    def target(self) -> Target:
        """Where it goes: the account's outbound proxy, else its domain (as REGISTER)."""
        host, port, transport = self.account.next_hop()
        return Target(transport.upper(), unbracket(host), port)

    def request(self) -> Request:
        """The next request of this message: a new CSeq each time (RFC 3261 §8.1.3.5),
        with credentials once a challenge was answered."""
        self._cseq += 1
        h = Headers()
        h.add("From", self.account.from_header(self._tag))
        h.add("To", format_name_addr(self.request_uri))
        h.add("Call-ID", self._call_id)
        h.add("CSeq", f"{self._cseq} MESSAGE")
        charset = ";charset=UTF-8" if self.content_type == "text/plain" else ""
        h.add("Content-Type", self.content_type + charset)
        request = Request("MESSAGE", self.request_uri, h, self.body)
        if self._challenges:
            self._digest.authorize(request, to_server=True)
        self._pending = request
        return request

    def response(self, response: Response) -> Request | MessageResult | None:
        """An answer to the request last made."""
        if response.status < 200:
            return None
        if response.status in (401, 407) and self._pending is not None \
                and self._challenges < MAX_CHALLENGES:
            outcome = self._digest.handle_challenge(self._pending, response, to_server=True)
            if outcome is ChallengeOutcome.RETRY:
                self._challenges += 1
                return self.request()
        return MessageResult(response.status, response.reason)

    @staticmethod
    def failure(reason: str) -> MessageResult:
        """The transaction failed without an answer: ``timeout`` (Timer F) or a transport
        error, whose words (the endpoint's: which host:port did not answer) are kept."""
        if reason == "timeout":
            return MessageResult(408, "Request Timeout")
        words = "transport error" if reason in ("", "transport") else reason[:200]
        return MessageResult(503, f"Service Unavailable ({words})")


#: what :func:`send_message` needs of the endpoint (``SipEndpoint.send_request``)
SendRequest = Callable[
    [Request, Target, float, Callable[[Response, float], None], Callable[[str, float], None]],
    object,
]


def send_message(send_request: SendRequest, message: OutgoingMessage, now: float,
                 done: Callable[[MessageResult], None]) -> None:
    """Send ``message`` in client transactions through ``send_request`` (an endpoint's),
    answering challenges; ``done`` hears the result once."""
    target = message.target()

    def on_response(response: Response, now: float) -> None:
        outcome = message.response(response)
        if isinstance(outcome, Request):
            send_request(outcome, target, now, on_response, on_failure)
        elif outcome is not None:
            done(outcome)

    def on_failure(reason: str, now: float) -> None:
        done(message.failure(reason))

    send_request(message.request(), target, now, on_response, on_failure)


def incoming_refusal(request: Request) -> tuple[int, str] | None:
    """Why an incoming MESSAGE's body cannot be shown (status, reason), or None when it can:
    413 over :data:`MAX_BODY`, 415 for a type not in :data:`CONTENT_TYPES`, 400 for a body
    that is not UTF-8 (or not JSON when it says it is)."""
    if len(request.body) > MAX_BODY:
        return 413, "Request Entity Too Large"
    kind = media_type(request.headers.get("Content-Type"))
    if request.body and kind not in CONTENT_TYPES:
        return 415, "Unsupported Media Type"
    if "Content-Encoding" in request.headers:
        return 415, "Unsupported Media Type"
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "Bad Request (body is not UTF-8)"
    if kind == "application/json":
        try:
            json.loads(text)
        except ValueError:
            return 400, "Bad Request (body is not JSON)"
    return None
