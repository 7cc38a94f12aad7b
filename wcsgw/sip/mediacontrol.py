"""Key-frame requests in SIP INFO: ``application/media_control+xml`` (RFC 5168), sans-IO.

Before RTCP feedback (RFC 4585 PLI, RFC 5104 FIR) was common, SIP video endpoints asked the
far encoder for an intra frame with an INFO carrying::

    <?xml version="1.0" encoding="utf-8" ?>
    <media_control>
      <vc_primitive>
        <to_encoder>
          <picture_fast_update/>
        </to_encoder>
      </vc_primitive>
    </media_control>

Polycom, Cisco, Yealink, Tandberg and older Asterisk/FreeSWITCH set-ups still send it and
still expect it: a phone that negotiated no ``a=rtcp-fb`` may ignore an RTCP PLI and only
answer this.  RFC 5168 is informational and describes the deployed practice (it recommends
RTCP FIR for new work), so this module reads what the deployed senders write rather than
only the schema's exact form:

* any XML namespace (a default ``xmlns`` some senders add), any whitespace, an XML
  declaration or none, an optional ``<stream_id>`` inside ``<vc_primitive>``;
* several ``<vc_primitive>`` in one document (any of them asking is a request);
* ``<general_error>`` — the receiver's report that it could not act on a command (the
  schema's error element) — is read so the caller can stop sending.

Anything else — another root element, a body that is not XML, a DOCTYPE (refused outright:
no entity expansion on network input), a body larger than :data:`MAX_BODY` — is
:data:`IGNORED`, never an exception: an INFO comes from the network.  The INFO itself is
answered 200 by the session layer whatever its body says (RFC 6086 legacy INFO usage: the
200 says the INFO was received, not that its body was acted on).

:class:`FastUpdateSender` is the policy for *our* requests: one INFO in flight, at most one
per :data:`FAST_UPDATE_INTERVAL`, and a 405/415/501 answer (the peer does not take INFO or
this body) turns the mechanism off for the dialog.
"""

from __future__ import annotations

import re
from typing import Optional
from xml.etree import ElementTree

import attr

__all__ = [
    "FAST_UPDATE_INTERVAL",
    "FastUpdateSender",
    "IGNORED",
    "MAX_BODY",
    "MEDIA_CONTROL",
    "MediaControl",
    "is_media_control",
    "parse_media_control",
    "picture_fast_update_body",
]

MEDIA_CONTROL = "application/media_control+xml"

#: Bodies larger than this are not parsed (a fast update is ~200 bytes).
MAX_BODY = 8192

#: At most one INFO fast update per this many seconds (an INFO is a SIP transaction through
#: proxies, not an RTCP packet; one key frame answers every request made meanwhile).
FAST_UPDATE_INTERVAL = 1.0

#: Answers that mean "never again in this dialog": INFO not allowed (405), body type not
#: taken (415), INFO not implemented (501).
DISABLING_STATUSES = frozenset({405, 415, 501})

_DOCTYPE_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.I)


@attr.s(frozen=True, slots=True, auto_attribs=True)
class MediaControl:
    """What a media_control document says.  ``picture_fast_update``: a key frame is asked
    for; ``stream_ids``: the ``<stream_id>`` values next to the requests (empty: the
    session's video, the usual case); ``general_error``: the text of a ``<general_error>``
    (None when there is none)."""

    picture_fast_update: bool = False
    stream_ids: tuple[str, ...] = ()
    general_error: Optional[str] = None


#: A body that is not a media_control document we can read.
IGNORED = MediaControl()


def picture_fast_update_body() -> bytes:
    """The INFO body asking the far encoder for a key frame: RFC 5168's example, the form
    Asterisk (chan_pjsip), Jami and the phones send."""
    return (b'<?xml version="1.0" encoding="utf-8" ?>\r\n'
            b"<media_control>\r\n"
            b"  <vc_primitive>\r\n"
            b"    <to_encoder>\r\n"
            b"      <picture_fast_update/>\r\n"
            b"    </to_encoder>\r\n"
            b"  </vc_primitive>\r\n"
            b"</media_control>\r\n")


def is_media_control(content_type: str) -> bool:
    """Whether a Content-Type value (as received: parameters, case) is RFC 5168's."""
    return content_type.split(";", 1)[0].strip().lower() == MEDIA_CONTROL


def _local(tag: object) -> str:
    """An element's name without its namespace (``{urn:x}media_control`` -> media_control)."""
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]


def parse_media_control(body: bytes) -> MediaControl:
    """Read a media_control document; :data:`IGNORED` for anything that is not one."""
    # No DOCTYPE, hence no entity declarations to expand; no NUL bytes, so a UTF-16/32 body
    # cannot hide one from the check (the senders write ASCII/UTF-8).
    if not body or len(body) > MAX_BODY or b"\x00" in body or _DOCTYPE_RE.search(body):
        return IGNORED
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError, UnicodeError):
        return IGNORED
    if _local(root.tag) != "media_control":
        return IGNORED
    fast_update = False
    streams: list[str] = []
    error: Optional[str] = None
    for child in root:
        name = _local(child.tag)
        if name == "vc_primitive":
            asked = any(_local(enc.tag) == "to_encoder"
                        and any(_local(cmd.tag) == "picture_fast_update" for cmd in enc)
                        for enc in child)
            if asked:
                fast_update = True
                streams += [(s.text or "").strip() for s in child
                            if _local(s.tag) == "stream_id" and (s.text or "").strip()]
        elif name == "general_error" and error is None:
            error = " ".join((child.text or "").split())
    return MediaControl(fast_update, tuple(streams), error)


class FastUpdateSender:
    """When to send an INFO fast update (sans-IO: the caller sends, and reports the answer).

    :meth:`request` says whether to send one now: not while one is unanswered (its key
    frame answers this request too), not within :data:`FAST_UPDATE_INTERVAL` of the last
    one unless ``force`` (a new path, unhold, a re-target: the last key frame is from before
    it), never once :attr:`enabled` is off.  :meth:`answered` takes the INFO's final status:
    405/415/501 turn the mechanism off for the dialog (RFC 3261 §21.4.6/§21.4.13/§21.5.2:
    the peer does not take INFO, or not this body), anything else re-arms it.
    """

    def __init__(self, interval: float = FAST_UPDATE_INTERVAL) -> None:
        self.interval = interval
        self.enabled = True
        self.in_flight = False
        self.last_sent: Optional[float] = None
        #: counters (stats and tests): INFOs sent, requests dropped while one was in flight
        #: or too soon after the last, the status that turned the mechanism off
        self.sent = 0
        self.suppressed = 0
        self.disabled_by: Optional[int] = None

    def request(self, now: float, *, force: bool = False) -> bool:
        """A key frame is wanted from the SIP side: True when an INFO should go out now (it
        is then counted as in flight)."""
        if not self.enabled:
            return False
        if self.in_flight or (not force and self.last_sent is not None
                              and now - self.last_sent < self.interval):
            self.suppressed += 1
            return False
        self.in_flight = True
        self.last_sent = now
        self.sent += 1
        return True

    def answered(self, status: Optional[int]) -> None:
        """The INFO's final answer (None: none came — timeout, transport error)."""
        self.in_flight = False
        if status in DISABLING_STATUSES:
            self.disable(status)

    def disable(self, status: Optional[int] = None) -> None:
        """No more INFO fast updates in this dialog (a refusing answer, a general_error)."""
        self.enabled = False
        self.disabled_by = status
