"""DTMF carried in SIP INFO bodies: the de-facto formats, built and read.

INFO (RFC 6086) is only the envelope; the digit travels in a body whose format no RFC fixes.
Two are in wide use and are what PBXs and phones send and expect:

* ``application/dtmf-relay`` (Cisco's, copied by nearly everyone: Asterisk, FreeSWITCH,
  baresip, Kamailio-fronted SBCs)::

      Signal=5
      Duration=250

  Some senders spell ``*`` and ``#`` as ``Signal=10`` and ``Signal=11`` (the RFC 4733 event
  codes); both spellings are read.
* ``application/dtmf`` (older; a body that is just the digit, ``5``).

Only the body is handled here: sending the INFO is :meth:`send_info` of the INVITE sessions
(:mod:`wcsgw.sip.session`), and turning a received one into a digit is the call layer's, with
:func:`parse_dtmf_info`.  Pure functions, no state.
"""

from __future__ import annotations

import re

__all__ = [
    "DTMF_DIGITS",
    "DTMF_INFO",
    "DTMF_RELAY",
    "dtmf_relay_body",
    "parse_dtmf_info",
]

#: The sixteen DTMF keys, as this module writes them (A-D upper case).
DTMF_DIGITS = "0123456789*#ABCD"
DTMF_RELAY = "application/dtmf-relay"
DTMF_INFO = "application/dtmf"

#: RFC 4733 §3.2 event codes 10-15 as some dtmf-relay senders put them in Signal=.
_EVENT_CODES = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}
_SIGNAL_RE = re.compile(r"^[ \t]*signal[ \t]*=[ \t]*(\S+)", re.I | re.M)


def _digit(text: str, *, event_codes: bool = False) -> str | None:
    text = text.strip()
    if event_codes and text in _EVENT_CODES:
        return _EVENT_CODES[text]
    if len(text) == 1 and text.upper() in DTMF_DIGITS:
        return text.upper()
    return None


def dtmf_relay_body(digit: str, duration_ms: int = 250) -> bytes:
    """The ``application/dtmf-relay`` body for one key: ``b"Signal=5\\r\\nDuration=250\\r\\n"``.

    One digit per INFO: receivers (baresip, Asterisk) read one ``Signal`` line and ignore the
    rest, so a string of digits is a string of INFOs.  Raises ValueError for anything but one
    of ``0-9 * # A-D`` (lower-case a-d accepted), or a duration that is not positive.
    """
    key = _digit(digit) if len(digit) == 1 else None
    if key is None:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    if duration_ms <= 0:
        raise ValueError(f"DTMF duration must be positive, not {duration_ms}")
    return f"Signal={key}\r\nDuration={int(duration_ms)}\r\n".encode("ascii")


def parse_dtmf_info(content_type: str, body: bytes) -> str | None:
    """The digit an INFO carries, or None when the body is not DTMF.

    ``content_type`` is the Content-Type header value as received (parameters and case do not
    matter).  ``application/dtmf-relay``: the ``Signal=`` line (``10``/``11`` read as ``*``/
    ``#``); ``application/dtmf``: the whole body is the digit.  Anything else — another
    type, an unknown key, a broken body — is None, never an exception: an INFO comes from the
    network.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    if media_type == DTMF_RELAY:
        match = _SIGNAL_RE.search(text)
        return _digit(match.group(1), event_codes=True) if match else None
    if media_type == DTMF_INFO:
        return _digit(text)
    return None
