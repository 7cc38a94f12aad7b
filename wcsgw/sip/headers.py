"""Typed views of the structured SIP headers: Via, name-addr (From/To/Contact/Route), CSeq.

Parsers here take one header *value* (the message parser has already split comma-joined
lists and unfolded continuation lines) and raise :class:`SipParseError` on malformed input;
``str()`` of each type is its canonical serialization, so ``parse_x(str(x)) == x``.

Parameter names are lower-cased (they are case-insensitive, RFC 3261 §7.3.1), values are kept
as written; a quoted-string value keeps its quotes (``;+sip.instance="<urn:...>"``) so the
distinction between a token and a quoted string survives a round trip.

At the end, name-addr lists as the dialog layer reads them (:func:`split_header_list`, for a
Route or Contact list a message or a test left joined) and writes them
(:func:`format_name_addr`, the From/To of the requests a dialog or a session builds).
"""

from __future__ import annotations

import re

import attr

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.uri import URI, parse_host, parse_uri

#: RFC 3261 §8.1.1.7: branches starting with this were made by an RFC 3261 element.
MAGIC_COOKIE = "z9hG4bK"

# -- RFC 3261 §25.1 building blocks ---------------------------------------------------------
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'
#: gen-value = token / host / quoted-string (host adds ':' and brackets for IPv6)
_GEN_VALUE = rf"(?:{QUOTED_STRING}|[A-Za-z0-9\-.!%*_+`'~:\[\]]+)"
_WS = r"[ \t]*"

TOKEN_RE = re.compile(TOKEN)
_QUOTED_RE = re.compile(QUOTED_STRING)
_PARAM_RE = re.compile(rf";{_WS}({TOKEN})(?:{_WS}={_WS}({_GEN_VALUE}))?")
_PARAMS_RE = re.compile(rf"(?:{_WS};{_WS}{TOKEN}(?:{_WS}={_WS}{_GEN_VALUE})?)*{_WS}")
_VIA_RE = re.compile(
    rf"{_WS}({TOKEN}){_WS}/{_WS}({TOKEN}){_WS}/{_WS}({TOKEN})[ \t]+"
    rf"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(?:{_WS}:{_WS}([0-9]{{1,5}}))?"
    rf"({_WS};.*)?{_WS}",
    re.S,
)
_CSEQ_RE = re.compile(rf"{_WS}([0-9]{{1,10}})[ \t]+({TOKEN}){_WS}")
_DISPLAY_TOKENS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*")
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.S)
_NEEDS_QUOTING_RE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f"\\]')
_WS_CHARS = " \t"


def parse_params(text: str) -> dict[str, str | None]:
    """``;name=value;flag ...`` -> ordered dict (names lower-cased, flags map to None).

    Whitespace is allowed around ``;`` and ``=`` (SEMI / EQUAL are SWS-padded). The first
    occurrence of a repeated name wins: a duplicate carries no defined meaning, and refusing
    a whole call for one would be harsher than any peer expects.
    """
    if not text.strip(_WS_CHARS):  # SIP's whitespace: str.isspace() took "\x0c" too (fuzzing)
        return {}
    if not _PARAMS_RE.fullmatch(text):
        raise SipParseError(f"malformed parameters {text[:80]!r}")
    params: dict[str, str | None] = {}
    for m in _PARAM_RE.finditer(text):
        name = m.group(1).lower()
        if name not in params:
            params[name] = m.group(2)
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def quote_string(text: str) -> str:
    """A quoted-string holding ``text``: '"' and '\\' and controls become quoted-pairs.

    CR and LF cannot be carried by any SIP quoted-string, so they are turned into spaces
    rather than letting ``str()`` produce a header that would split the message.
    """
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    if _NEEDS_QUOTING_RE.search(text):
        text = _NEEDS_QUOTING_RE.sub(lambda m: "\\" + m.group(), text)
    return f'"{text}"'


def unquote_string(quoted: str) -> str:
    """The text of a quoted-string (quotes removed, quoted-pairs resolved)."""
    inner = quoted[1:-1]
    if "\\" in inner:
        inner = _QUOTED_PAIR_RE.sub(r"\1", inner)
    return inner


@attr.s(auto_attribs=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS, WSS, SCTP ...
    host: str  # IPv6 references keep their brackets: "[2001:db8::1]"
    port: int | None = None
    #: parameters in order; a flag parameter (``rport`` without value) maps to None.
    params: dict[str, str | None] = attr.ib(factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written in the Via (what RFC 3261 §17.2.3 matches on)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the magic cookie *and* something after it.

        A bare ``z9hG4bK`` (RFC 4475 badbranch) cannot be unique, so such a request must be
        matched with the RFC 2543 rules.
        """
        branch = self.params.get("branch")
        return (branch is not None and branch.startswith(MAGIC_COOKIE)
                and len(branch) > len(MAGIC_COOKIE))

    def __str__(self) -> str:
        sent_by = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {sent_by}{format_params(self.params)}"


@attr.s(auto_attribs=True, slots=True)
class NameAddr:
    """``"Display" <uri>;tag=x`` or addr-spec form; header parameters kept in order."""

    uri: URI
    display_name: str | None = None
    params: dict[str, str | None] = attr.ib(factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        """Always the name-addr form: ``<>`` keeps URI parameters apart from header ones."""
        uri = f"<{self.uri}>"
        if self.display_name is not None:
            uri = f"{quote_string(self.display_name)} {uri}"
        return uri + format_params(self.params) if self.params else uri


def parse_via(value: str) -> Via:
    """One via-parm (RFC 3261 §20.42), LWS allowed around '/', ':' and parameters."""
    m = _VIA_RE.fullmatch(value)
    if m is None:
        raise SipParseError(f"malformed Via {value[:80]!r}")
    name, version, transport, host, port, params = m.groups()
    via = Via(transport.upper(), parse_host(host), protocol=f"{name.upper()}/{version}")
    if port is not None:
        via.port = int(port)
        if via.port > 65535:
            raise SipParseError(f"Via port out of range {value[:80]!r}")
    if params:
        via.params = parse_params(params)
    return via


def parse_name_addr(value: str) -> NameAddr:
    """From/To/Contact/Route-style value: ``[display] <uri> *(;param)`` or ``addr-spec *(;param)``.

    In the addr-spec form every ``;`` parameter belongs to the header, not to the URI
    (RFC 3261 §20.10; RFC 4475 cparam01), and a URI carrying '?' or ',' must have been
    bracketed (RFC 4475 regbadct), so it is refused.
    """
    s = value.strip(_WS_CHARS)
    display: str | None = None
    if s.startswith('"'):
        q = _QUOTED_RE.match(s)
        if q is None:
            raise SipParseError(f"unterminated quoted display name in {value[:80]!r}")
        display = unquote_string(q.group())
        rest = s[q.end() :].lstrip(_WS_CHARS)
        if not rest.startswith("<"):
            raise SipParseError(f"display name not followed by <uri> in {value[:80]!r}")
    else:
        lt = s.find("<")
        if lt < 0:
            return _parse_addr_spec(s, value)
        words = s[:lt].strip(_WS_CHARS)
        if words:
            if not _DISPLAY_TOKENS_RE.fullmatch(words):
                raise SipParseError(f"display name must be tokens or quoted in {value[:80]!r}")
            display = " ".join(words.split())
        rest = s[lt:]
    gt = rest.find(">")
    if gt < 0:
        raise SipParseError(f"missing '>' in {value[:80]!r}")
    uri_text = rest[1:gt]
    if not uri_text or uri_text[0] in _WS_CHARS or uri_text[-1] in _WS_CHARS:
        raise SipParseError(f"whitespace inside <> in {value[:80]!r}")
    return NameAddr(parse_uri(uri_text), display, parse_params(rest[gt + 1 :]))


def _parse_addr_spec(s: str, value: str) -> NameAddr:
    uri_text, semi, params = s.partition(";")
    uri_text = uri_text.rstrip(_WS_CHARS)
    if "?" in uri_text or "," in uri_text:
        raise SipParseError(f"URI with '?' or ',' must be enclosed in <> in {value[:80]!r}")
    return NameAddr(parse_uri(uri_text), None, parse_params(semi + params) if semi else {})


def parse_cseq(value: str) -> tuple[int, str]:
    """``number method``; the number must fit in 31 bits (RFC 3261 §8.1.1.5)."""
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError(f"malformed CSeq {value[:80]!r}")
    number = int(m.group(1))
    if number > 2**31 - 1:
        raise SipParseError(f"CSeq number out of range {value[:80]!r}")
    return number, m.group(2)


def delta_seconds(text: str | None) -> int | None:
    """A delta-seconds value (Expires, Min-Expires, an ``expires`` parameter), None when
    absent, not a number or negative."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def retry_after(value: str | None) -> int | None:
    """Seconds from a Retry-After value (§20.33: ``delta-seconds [comment] *(; param)``)."""
    if value is None:
        return None
    return delta_seconds(value.split(";", 1)[0].split("(", 1)[0])


# -- name-addr lists, as dialogs read them and the sessions write From/To --------------


def split_header_list(value: str) -> list[str]:
    """Split a comma-joined name-addr list (Route, Record-Route, Contact) into entries.

    Commas inside ``<...>`` and quoted display names do not split.  The message parser is
    expected to have split lists already; this keeps dialogs right when it did not (or when a
    test or another element built a message with one joined value).
    """
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    start = 0
    for i, ch in enumerate(value):
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            part = value[start:i].strip()
            if part:
                out.append(part)
            start = i + 1
    part = value[start:].strip()
    if part:
        out.append(part)
    return out


def _quote_display(display: str) -> str:
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_name_addr(uri: str, display_name: str | None = None, tag: str | None = None) -> str:
    """``"Display" <uri>;tag=x``: always the bracketed form, so URI parameters stay the URI's
    (RFC 3261 §20.10: without brackets, ``;`` parameters would bind to the header)."""
    text = f"<{uri}>"
    if display_name:
        text = f"{_quote_display(display_name)} {text}"
    if tag:
        text += f";tag={tag}"
    return text
