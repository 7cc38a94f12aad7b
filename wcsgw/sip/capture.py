"""The SIP capture: every message the endpoint sends or receives, told to one observer.

Why here and this shape: the SIP ladder of a call (:mod:`wcsgw.calls.ladders`) must see what
really went over the wire — requests and responses, over UDP, TCP and TLS, retransmissions
included — and the one place all of it passes is the endpoint's input
(:meth:`~wcsgw.sip.endpoint.SipEndpoint.receive_bytes`) and its adapter's flush of
``take_outgoing`` (:class:`~wcsgw.sip.transport.SipTransport`).  Both call
``endpoint.capture(direction, data, peer, now)`` when it is set, and nothing more: with no
observer the cost is one attribute check per message.  What the observer needs to file a
message — its Call-ID, CSeq method, a label and a one-line summary — is read here from the raw
bytes by :func:`heading`, tolerant of anything (a message the parser refuses is shown too).
"""

from __future__ import annotations

import re
from typing import Callable

import attr

from wcsgw.sip.target import Target

__all__ = ["Heading", "Observer", "heading"]

#: ``(direction: "sent" | "received", data, peer, now)``; ``now`` is wall-clock seconds
Observer = Callable[[str, bytes, Target, float], None]

_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_CSEQ = re.compile(rb"^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(rb"SIP/2\.0[ \t]+(\d{3})")


@attr.s(auto_attribs=True, frozen=True, slots=True)
class Heading:
    """What a message is, read from its head."""

    #: its Call-ID ("" when it has none)
    call_id: str
    #: the method of its CSeq ("" when unreadable): which transaction a response belongs to
    cseq_method: str
    request: bool
    #: the method of a request, the status code of a response ("INVITE", "180")
    label: str
    #: the start line, at most 200 characters
    summary: str


def heading(data: bytes) -> Heading:
    """The :class:`Heading` of one message as it went over the wire (never raises)."""
    head = data[:4096]
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    summary = first[:200].decode("utf-8", errors="replace")
    status = _STATUS.match(first)
    if status is not None:
        request, label = False, status.group(1).decode()
    else:
        request, label = True, summary.split(" ", 1)[0][:32] or "?"
    call_id = _CALL_ID.search(head)
    cseq = _CSEQ.search(head)
    return Heading(
        call_id=call_id.group(1)[:256].decode("utf-8", errors="replace") if call_id else "",
        cseq_method=cseq.group(1).decode().upper() if cseq else "",
        request=request, label=label, summary=summary,
    )
