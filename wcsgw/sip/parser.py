"""Bytes <-> messages: RFC 3261 §7 / §20 / §25 grammar (datagram or one framed message).

Decisions worth knowing (RFC 4475 drives most of them):

* Line ends: CRLF, and bare LF is tolerated; a bare CR is refused. Continuation lines
  (CRLF + SP/HT) are unfolded into one SP. CRLFs before the start line are ignored (§7.5).
* Header text is decoded as UTF-8 with ``surrogateescape``: a peer that sends Latin-1 in a
  display name is not refused (a gateway should not drop a call over a caller-id), and
  :func:`serialize` re-emits the very same bytes.  Code that hands header text to a browser
  must encode with ``errors="replace"`` or strip surrogates.
* Comma-joined values of the list headers in :data:`LIST_HEADERS` become separate entries
  (quotes and ``<...>`` respected; empty elements dropped); every other header is one entry.
* Validated on every message, because the layers above rely on them: the start line, each
  Via, From, To, Call-ID, CSeq (and, for requests, that its method equals the request's),
  each Contact, Content-Length and Date.  Requests must carry Via, From, To, Call-ID and CSeq
  (§8.1.1); Max-Forwards may be missing (RFC 2543 peers, RFC 4475 inv2543).  Duplicate
  singleton headers are left for :func:`wcsgw.sip.checks.check_request` (RFC 4475 multi01).
* The start line is strict: exactly one SP between elements, none trailing (RFC 4475
  lwsstart, trws, lwsruri reject), no headers in a SIP Request-URI (escruri).
* Body: Content-Length bytes; absent Content-Length means the rest of the datagram
  (§18.3); more declared than present is an error, less truncates (dblreq). A datagram
  that ends on a line end without the empty line (RFC 4475 baddn's file) is read as
  headers with no body rather than refused outright.
* An error in a request that has a method token and a Via carries ``partial``: a Request
  with the raw headers read so far, enough for ``make_response(partial, 400)``. Its header
  values are unvalidated text: reply to the packet's source address, not to its Via.
"""

from __future__ import annotations

import re

from wcsgw.sip import uri as _uri
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.headers import TOKEN, TOKEN_RE, parse_cseq, parse_name_addr, parse_via
from wcsgw.sip.message import AnyMessage, Headers, Message, Request, Response, canonical_name
from wcsgw.sip.uri import parse_uri

#: Headers whose grammar is ``element *(COMMA element)`` (RFC 3261 §20 and later RFCs).
#: Authorization-style headers, Date, Reply-To (one rplyto-spec) and unknown headers are
#: never split: a comma means something else there, or we cannot know.
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "Via", "Route", "Record-Route", "Contact", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Content-Encoding", "Content-Language", "Allow-Events", "Path", "Service-Route",
        "In-Reply-To", "Alert-Info", "Call-Info", "Error-Info", "Warning",
        "P-Asserted-Identity", "P-Preferred-Identity", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "Reason", "History-Info", "Diversion", "Security-Client",
        "Security-Server", "Security-Verify", "Geolocation",
    }
)

_CALL_ID_RE = re.compile(
    r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?"
)
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)
_DIGITS_RE = re.compile(r"[0-9]{1,10}")
_FOLD_RE = re.compile(r"[ \t]*\n[ \t]+")
_HEADER_LINE_RE = re.compile(r"^([^:\n]*):[ \t]*([^\n]*)$", re.M)
_LIST_ITEM_RE = re.compile(r'[ \t]*((?:"(?:[^"\\]|\\.)*"|<[^>]*>|[^,"<])*)(?:,|\Z)', re.S)

#: names seen on the wire -> canonical names; bounded so random names cannot grow it forever
_CANONICAL_CACHE: dict[str, str] = {}
_CANONICAL_CACHE_MAX = 2048

# -- fast paths for validation ---------------------------------------------------------------
# Each pattern accepts a strict *subset* of what the full parser accepts (the common shapes:
# no IPv6, no quoted parameter values, no optional whitespace).  A value matching it is
# known valid without building objects; anything else goes through parse_via /
# parse_name_addr, which decide and give the precise error.  tests/test_sip_parser.py checks
# the subset property with generated values.
_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_SIMPLE_PARAMS = rf"(?:;{TOKEN}(?:=[A-Za-z0-9\-.!%*_+`'~:]+)?)*"
_FAST_VIA_RE = re.compile(
    rf"SIP/2\.0/[A-Z]+ {_uri._HOSTNAME}(?::{_PORT})?{_SIMPLE_PARAMS}"
)
_FAST_SIP_URI = (
    rf"sips?:(?:{_uri._USER}(?::{_uri._PASSWORD})?@)?{_uri._HOSTNAME}(?::{_PORT})?"
    rf"(?:;{_uri._PARAMCHAR}+(?:={_uri._PARAMCHAR}+)?)*"
)
_FAST_REQUEST_URI_RE = re.compile(_FAST_SIP_URI)
_ADDR_SPEC_USER = rf"(?:[{_uri._UNRESERVED}&=+$/]|{_uri._ESCAPED})+"
_FAST_NAME_ADDR_RE = re.compile(
    rf'(?:(?:"[^"\\\x00-\x1f\x7f]*" ?|{TOKEN}(?: {TOKEN})* ?)?<{_FAST_SIP_URI}>'
    rf"|sips?:(?:{_ADDR_SPEC_USER}@)?{_uri._HOSTNAME}(?::{_PORT})?){_SIMPLE_PARAMS}"
)

#: headers validated on every message (see module doc)
_CHECKED = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Date"})


def _canonical(name: str) -> str:
    canon = _CANONICAL_CACHE.get(name)
    if canon is None:
        canon = canonical_name(name)
        if len(_CANONICAL_CACHE) < _CANONICAL_CACHE_MAX:
            _CANONICAL_CACHE[name] = canon
    return canon


def split_list(value: str) -> list[str]:
    """Split a list header's value on the commas that are outside quotes and ``<...>``."""
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [p for p in (part.strip(" \t") for part in value.split(",")) if p]
    out: list[str] = []
    pos, end = 0, len(value)
    while pos < end:
        m = _LIST_ITEM_RE.match(value, pos)
        if m is None or m.end() == pos:
            raise SipParseError(f"unbalanced quote or '<' in {value[:80]!r}")
        item = m.group(1).strip(" \t")
        if item:
            out.append(item)
        pos = m.end()
    return out


def _split_head(data: bytes) -> tuple[bytes, int]:
    """(header bytes, offset of the body): the first empty line ends the headers."""
    i_crlf = data.find(b"\n\r\n")
    i_lf = data.find(b"\n\n")
    if i_crlf < 0 and i_lf < 0:
        if data.endswith(b"\n"):
            # A datagram whose sender left out the final empty line: headers only, no body.
            return data[:-1], len(data)
        raise SipParseError("no empty line after the headers")
    if i_lf < 0 or 0 <= i_crlf < i_lf:
        return data[:i_crlf], i_crlf + 3
    return data[:i_lf], i_lf + 2


def _header_text(head: bytes) -> str:
    """Decode, normalise line ends to LF and unfold continuation lines."""
    text = head.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text.endswith("\r"):
            text = text[:-1]
        if "\r" in text:
            raise SipParseError("bare CR in the header section")
    if "\n " in text or "\n\t" in text:
        text = _FOLD_RE.sub(" ", text)
    return text


def _read_headers(text: str) -> tuple[list[tuple[str, str]], SipParseError | None]:
    """Header lines -> (canonical name, value) entries; the first error is returned, not
    raised, so that a partial request can still be built from the other lines.

    One regex pass cuts every line into name and value; only when some line has no colon
    does the slower line-by-line path run, to find it and keep the others.
    """
    if not text:
        return [], None
    pairs = _HEADER_LINE_RE.findall(text)
    if len(pairs) != text.count("\n") + 1:
        return _read_header_lines(text.split("\n"))
    items: list[tuple[str, str]] = []
    cache = _CANONICAL_CACHE
    error: SipParseError | None = None
    for name, value in pairs:
        canon = cache.get(name)  # names in the cache were validated when first seen
        if canon is None:
            name = name.rstrip(" \t")
            if not TOKEN_RE.fullmatch(name):
                error = error or SipParseError(f"malformed header name {name[:80]!r}")
                continue
            canon = _canonical(name)
        value = value.rstrip(" \t")
        if "," in value and canon in LIST_HEADERS:
            try:
                items.extend((canon, part) for part in split_list(value))
            except SipParseError as exc:
                error = error or exc
                items.append((canon, value))
        else:
            items.append((canon, value))
    return items, error


def _read_header_lines(lines: list[str]) -> tuple[list[tuple[str, str]], SipParseError | None]:
    """The careful path of :func:`_read_headers`, line by line."""
    items: list[tuple[str, str]] = []
    error: SipParseError | None = None
    for line in lines:
        name, colon, value = line.partition(":")
        canon = _CANONICAL_CACHE.get(name) if colon else None  # cached: validated before
        if canon is None:
            name = name.rstrip(" \t")
            if not colon or not TOKEN_RE.fullmatch(name):
                if error is None:
                    error = SipParseError(f"malformed header line {line[:80]!r}")
                continue
            canon = _canonical(name)
        value = value.strip(" \t")
        if canon in LIST_HEADERS and "," in value:
            try:
                parts = split_list(value)
            except SipParseError as exc:
                error = error or exc
                items.append((canon, value))
                continue
            items.extend((canon, part) for part in parts)
        else:
            items.append((canon, value))
    return items, error


def _make_headers(items: list[tuple[str, str]]) -> Headers:
    headers = Headers()
    headers._items = items  # names are canonical already; skip re-canonicalising each one
    return headers


def _parse_start_line(line: str) -> tuple[str, str, str] | tuple[int, str]:
    """``(method, uri, version)`` for a request or ``(status, reason)`` for a response."""
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not 100 <= int(code) <= 699:
            raise SipParseError(f"malformed status code {code[:20]!r}")
        return int(code), reason
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError(f"malformed request line {line[:100]!r}")
    method, uri_text, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise SipParseError(f"malformed method {method[:40]!r}")
    _check_version(version)
    if _FAST_REQUEST_URI_RE.fullmatch(uri_text):
        return method, uri_text, version
    uri = parse_uri(uri_text)
    if uri.headers and uri.scheme in ("sip", "sips"):
        raise SipParseError("headers are not allowed in a Request-URI")  # RFC 3261 §19.1.5
    return method, uri_text, version


def _check_version(version: str) -> None:
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError(f"malformed SIP version {version[:20]!r}")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version[:20]!r}", status=505)


def _validate(items: list[tuple[str, str]], method: str | None) -> int | None:
    """Check the headers the layers above rely on; return the Content-Length (or None)."""
    seen: dict[str, list[str]] = {}
    for name, value in items:
        if name in _CHECKED:
            seen.setdefault(name, []).append(value)
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        if name not in seen:
            raise SipParseError(f"missing {name}")
    for via in seen["Via"]:
        if not _FAST_VIA_RE.fullmatch(via):
            parse_via(via)
    _check_name_addr(seen["From"][0])
    _check_name_addr(seen["To"][0])
    if not _CALL_ID_RE.fullmatch(seen["Call-ID"][0]):
        raise SipParseError(f"malformed Call-ID {seen['Call-ID'][0][:80]!r}")
    _, cseq_method = parse_cseq(seen["CSeq"][0])
    if method is not None and cseq_method != method:
        raise SipParseError(f"CSeq method {cseq_method!r} does not match {method!r}")
    for contact in seen.get("Contact", ()):
        if contact != "*":
            _check_name_addr(contact)
    date = seen.get("Date")
    if date is not None and not _DATE_RE.fullmatch(date[0]):
        raise SipParseError(f"malformed Date {date[0][:60]!r}")
    lengths = seen.get("Content-Length")
    if lengths is None:
        return None
    for value in lengths:
        if not _DIGITS_RE.fullmatch(value):
            raise SipParseError(f"malformed Content-Length {value[:20]!r}")
    values = {int(v) for v in lengths}
    if len(values) > 1:
        raise SipParseError("conflicting Content-Length values")
    return values.pop()


def _check_name_addr(value: str) -> None:
    if not _FAST_NAME_ADDR_RE.fullmatch(value):
        parse_name_addr(value)


def _partial(start_line: str, items: list[tuple[str, str]]) -> Request | None:
    """What a 400 needs: a request line with a method token, and a Via to answer along."""
    words = start_line.split()
    if not words or not TOKEN_RE.fullmatch(words[0]):
        return None
    if not any(name == "Via" for name, _ in items):
        return None
    uri = words[1] if len(words) > 1 else ""
    return Request(words[0], uri, _make_headers(list(items)))


def parse_message(data: bytes) -> AnyMessage:
    """Parse one complete datagram/frame (start line, headers, body)."""
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("empty message")
    head, body_start = _split_head(data)
    start_line, _, rest = _header_text(head).partition("\n")
    items, error = _read_headers(rest)
    is_request = start_line[:4].upper() != "SIP/"
    try:
        start = _parse_start_line(start_line)
        if error is not None:
            raise error
        length = _validate(items, start[0] if len(start) == 3 else None)
        body = data[body_start:]
        if length is not None:
            if length > len(body):
                raise SipParseError(f"Content-Length {length} exceeds the {len(body)} body bytes present")
            body = body[:length]
    except SipParseError as exc:
        if is_request and exc.partial is None:
            exc.partial = _partial(start_line, items)
        raise
    headers = _make_headers(items)
    if len(start) == 3:
        return Request(start[0], start[1], headers, body, "SIP/2.0")
    return Response(start[0], start[1], headers, body, "SIP/2.0")


def serialize(msg: Message) -> bytes:
    """Start line, one ``Name: value`` line per entry, Content-Length = len(body), body.

    Content-Length is always written (replacing any present, at its place): streams need it
    and a stale value would corrupt framing. A CR or LF inside a value would let one header
    inject others, so it raises ValueError instead of being sent.
    """
    if isinstance(msg, Request):
        start = f"{msg.method} {msg.uri} {msg.version}"
    elif isinstance(msg, Response):
        start = f"{msg.version} {msg.status} {msg.reason}"
    else:
        raise TypeError(f"cannot serialize {type(msg).__name__}")
    body = msg.body
    lines = [start]
    have_length = False
    for name, value in msg.headers:
        if name == "Content-Length":
            if have_length:
                continue
            value = str(len(body))
            have_length = True
        lines.append(f"{name}: {value}")
    if not have_length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("CR or LF inside a start line or header value")
    return text.encode("utf-8", "surrogateescape") + body
