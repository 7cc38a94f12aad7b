"""SDP text <-> :class:`SessionDescription` (RFC 8866 grammar, which obsoletes RFC 4566).

:func:`parse_sdp` reads what real peers send and refuses what is not SDP with
:class:`SdpParseError` (a ValueError) naming the line -- never with another exception.
:func:`serialize_sdp` writes the canonical form: fields in RFC 8866 order
(``v o s i u e p c b t r z k a``, then per m-section ``m i c b k a``), single spaces, CRLF
line ends.  ``parse_sdp(serialize_sdp(sd)) == sd`` for every well-formed model, and a
description already written in canonical form (Chrome's, baresip's) comes back byte for byte.

Tolerated, because peers do it and nothing is ambiguous:

* LF line ends (RFC 8866 §5 asks parsers to accept them), a CR-less last line, blank lines;
* runs of spaces or tabs between the fields of structured lines (``o m c t b``) and
  trailing whitespace on them or after a property attribute's name (``a=sendrecv ``);
* fields out of the RFC's order *within* their section (``a=`` before ``c=``, ``t=`` after
  ``a=``): the section a field belongs to is unambiguous, and serializing restores the order;
* a missing or empty ``s=`` line (some old phones): ``session_name`` is then "-" -- the
  name carries no meaning for a call;
* a missing ``t=`` line: timing (0, 0), what every VoIP peer sends anyway;
* an m-line without formats (``m=audio 0 RTP/AVP``), written by some stacks to reject;
* octets that are not UTF-8 are read as Latin-1 (an old phone's session name should not
  fail a call).

Refused: input that does not start with ``v=0``; a line that is not ``<letter>=<value>``;
an unknown type letter (RFC 8866 §5: such a description must be ignored as a whole); a
session-only field inside a media section (``t=``, ``o=`` ...); a second copy of a field
that may appear once (``o s i u c z k`` at session level, ``i k`` per m-section); malformed
``o= c= b= t= r= z= m=`` values; an attribute name that is not a token; NUL or a bare CR
inside a line; a missing ``o=`` line.  Attribute values are opaque here: a malformed
``a=rtpmap`` only makes its format unusable (see ``MediaDescription.codecs``).
"""

from __future__ import annotations

import re

from wcsgw.sdp.errors import SdpParseError
from wcsgw.sdp.model import (
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
)

#: RFC 8866 §9 token-char: %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 / %x41-5A / %x5E-7E
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TOKEN_RE = re.compile(_TOKEN)
_PROTO_RE = re.compile(rf"{_TOKEN}(?:/{_TOKEN})*")
#: numbers: ASCII digits only (str.isdigit() accepts other scripts) and bounded in length,
#: so int() never meets a number too long to convert
_NUMBER = r"[0-9]{1,20}"
_NUMBER_RE = re.compile(_NUMBER)
_PORT_RE = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")
_BANDWIDTH_RE = re.compile(rf"({_TOKEN}):({_NUMBER})")
_TYPED_TIME = rf"{_NUMBER}[dhms]?"
_REPEAT_RE = re.compile(rf"{_TYPED_TIME}(?:[ \t]+{_TYPED_TIME}){{2,}}")
_ZONE = rf"{_NUMBER}[ \t]+-?{_TYPED_TIME}"
_ZONES_RE = re.compile(rf"{_ZONE}(?:[ \t]+{_ZONE})*")
_IP4_ADDRESS_RE = re.compile(r"([^/]+)(?:/([0-9]{1,3})(?:/([0-9]{1,5}))?)?")
_IP6_ADDRESS_RE = re.compile(r"([^/]+)(?:/([0-9]{1,5}))?")
_FIELD_SEP_RE = re.compile(r"[ \t]+")
_WS = " \t"

_SESSION_ONCE = {"o": "o=", "s": "s=", "i": "i=", "u": "u=", "c": "c=", "z": "z=", "k": "k="}
_SESSION_ONLY = set("vosuepptrz")
_KNOWN = set("vosiuepcbtrzkam")


class _LineError(Exception):
    """A field parser's complaint; :func:`parse_sdp` adds the line number and text."""


def _fields(value: str) -> list[str]:
    value = value.strip(_WS)
    return _FIELD_SEP_RE.split(value) if value else []


def _token(text: str, what: str) -> str:
    if not _TOKEN_RE.fullmatch(text):
        raise _LineError(f"{what} {text!r} is not a token")
    return text


def _number(text: str, what: str) -> int:
    if not _NUMBER_RE.fullmatch(text):
        raise _LineError(f"{what} {text!r} is not a number")
    return int(text)


def _parse_origin(value: str) -> Origin:
    parts = _fields(value)
    if len(parts) != 6:
        raise _LineError(
            "o= needs <username> <sess-id> <sess-version> <nettype> <addrtype> <address>"
        )
    username, sess_id, sess_version, nettype, addrtype, address = parts
    return Origin(
        username=username,
        session_id=_number(sess_id, "session id"),
        session_version=_number(sess_version, "session version"),
        nettype=_token(nettype, "network type"),
        addrtype=_token(addrtype, "address type"),
        address=address,
    )


def _parse_connection(value: str) -> Connection:
    parts = _fields(value)
    if len(parts) != 3:
        raise _LineError("c= needs <nettype> <addrtype> <connection-address>")
    nettype, addrtype, address = parts
    _token(nettype, "network type")
    _token(addrtype, "address type")
    ttl = count = None
    if addrtype.upper() == "IP4":
        m = _IP4_ADDRESS_RE.fullmatch(address)
        if m is None:
            raise _LineError(f"bad IP4 connection address {address!r}")
        address = m.group(1)
        ttl = int(m.group(2)) if m.group(2) else None
        count = int(m.group(3)) if m.group(3) else None
    elif addrtype.upper() == "IP6":
        m = _IP6_ADDRESS_RE.fullmatch(address)
        if m is None:
            raise _LineError(f"bad IP6 connection address {address!r}")
        address = m.group(1)
        count = int(m.group(2)) if m.group(2) else None
    return Connection(nettype=nettype, addrtype=addrtype, address=address, ttl=ttl, count=count)


def _parse_bandwidth(value: str) -> Bandwidth:
    m = _BANDWIDTH_RE.fullmatch(value.strip(_WS))
    if m is None:
        raise _LineError("b= needs <bwtype>:<bandwidth>")
    return Bandwidth(m.group(1), int(m.group(2)))


def _parse_timing(value: str) -> tuple[int, int]:
    parts = _fields(value)
    if len(parts) != 2:
        raise _LineError("t= needs <start-time> <stop-time>")
    return _number(parts[0], "start time"), _number(parts[1], "stop time")


def _parse_media(value: str) -> MediaDescription:
    parts = _fields(value)
    if len(parts) < 3:
        raise _LineError("m= needs <media> <port> <proto> <fmt> ...")
    kind, port_text, proto, *formats = parts
    _token(kind, "media type")
    m = _PORT_RE.fullmatch(port_text)
    if m is None:
        raise _LineError(f"bad port {port_text!r}")
    port = int(m.group(1))
    port_count = int(m.group(2)) if m.group(2) else None
    if port > 65535:
        raise _LineError(f"port {port} out of range")
    if port_count is not None and not 1 <= port_count <= 65535:
        raise _LineError(f"number of ports {port_count} out of range")
    if not _PROTO_RE.fullmatch(proto):
        raise _LineError(f"bad transport protocol {proto!r}")
    for fmt in formats:
        _token(fmt, "format")
    return MediaDescription(kind, port, proto, formats, port_count=port_count)


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not colon:
        return Attribute(_token(name.rstrip(_WS), "attribute name"))
    return Attribute(_token(name, "attribute name"), rest)


def _decode(data: str | bytes | bytearray | memoryview) -> str:
    if isinstance(data, str):
        return data
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_sdp(data: str | bytes) -> SessionDescription:
    """Parse a session description (str, or bytes as carried in a SIP body).

    Raises :class:`SdpParseError` for anything that is not SDP (see the module docstring
    for exactly what is tolerated).
    """
    text = _decode(data)
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.strip(_WS):
            lines.append((number, line))
    if not lines:
        raise SdpParseError("empty session description")

    number, line = lines[0]
    if line.rstrip(_WS) != "v=0":
        raise SdpParseError("the first line must be v=0", number, line)

    origin: Origin | None = None
    session: dict[str, object] = {}
    seen: set[str] = set()
    timings: list[tuple[int, int, list[str]]] = []
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[Bandwidth] = []
    attributes: list[Attribute] = []
    media: list[MediaDescription] = []
    current: MediaDescription | None = None
    media_seen: set[str] = set()

    for number, line in lines[1:]:
        try:
            if len(line) < 2 or line[1] != "=":
                raise _LineError("not a <type>=<value> line")
            kind, value = line[0], line[2:]
            if kind not in _KNOWN:
                raise _LineError(f"unknown type {kind!r}")
            if "\r" in value or "\x00" in value:
                raise _LineError("CR or NUL inside a line")
            if kind == "m":
                current = _parse_media(value)
                media.append(current)
                media_seen = set()
            elif current is not None:
                if kind in _SESSION_ONLY:
                    raise _LineError(f"{kind}= is not allowed in a media description")
                if kind in "ik":
                    if kind in media_seen:
                        raise _LineError(f"second {kind}= line in one media description")
                    media_seen.add(kind)
                if kind == "a":
                    current.attributes.append(_parse_attribute(value))
                elif kind == "c":
                    connection = _parse_connection(value)
                    if current.connection is None:
                        current.connection = connection
                    else:
                        current.extra_connections.append(connection)
                elif kind == "b":
                    current.bandwidths.append(_parse_bandwidth(value))
                elif kind == "i":
                    current.information = value
                else:  # k
                    current.key = value
            else:
                if kind in _SESSION_ONCE:
                    if kind in seen:
                        raise _LineError(f"second {kind}= line")
                    seen.add(kind)
                if kind == "a":
                    attributes.append(_parse_attribute(value))
                elif kind == "o":
                    origin = _parse_origin(value)
                elif kind == "s":
                    session["session_name"] = value
                elif kind == "i":
                    session["information"] = value
                elif kind == "u":
                    session["uri"] = value
                elif kind == "e":
                    emails.append(value)
                elif kind == "p":
                    phones.append(value)
                elif kind == "c":
                    session["connection"] = _parse_connection(value)
                elif kind == "b":
                    bandwidths.append(_parse_bandwidth(value))
                elif kind == "t":
                    timings.append((*_parse_timing(value), []))
                elif kind == "r":
                    if not timings:
                        raise _LineError("r= without a t= line before it")
                    if not _REPEAT_RE.fullmatch(value.strip(_WS)):
                        raise _LineError("r= needs <interval> <duration> <offset> ...")
                    timings[-1][2].append(value)
                elif kind == "z":
                    if not _ZONES_RE.fullmatch(value.strip(_WS)):
                        raise _LineError("z= needs <adjustment-time> <offset> ...")
                    session["time_zones"] = value
                elif kind == "k":
                    session["key"] = value
                else:  # v
                    raise _LineError("second v= line")
        except _LineError as e:
            raise SdpParseError(str(e), number, line) from None

    if origin is None:
        raise SdpParseError("no o= line")
    name = session.pop("session_name", "-")
    start, stop, repeats = timings[0] if timings else (0, 0, [])
    return SessionDescription(
        origin=origin,
        session_name=name if name and isinstance(name, str) else "-",
        bandwidths=bandwidths,
        timing=(start, stop),
        attributes=attributes,
        media=media,
        emails=emails,
        phones=phones,
        repeats=repeats,
        more_timings=[Timing(s, t, tuple(r)) for s, t, r in timings[1:]],
        **session,  # type: ignore[arg-type]
    )


def serialize_sdp(sd: SessionDescription) -> str:
    """The canonical text of ``sd`` (CRLF line ends, RFC 8866 field order).

    Raises ValueError when a value holds CR, LF or NUL: such a value would split a line and
    let one field smuggle others into the description.
    """
    out: list[str] = []

    def add(kind: str, value: str) -> None:
        if "\r" in value or "\n" in value or "\x00" in value:
            raise ValueError(f"SDP {kind}= value holds CR, LF or NUL: {value[:80]!r}")
        out.append(f"{kind}={value}")

    def add_attributes(attributes: list[Attribute]) -> None:
        for a in attributes:
            add("a", a.name if a.value is None else f"{a.name}:{a.value}")

    o = sd.origin
    add("v", "0")
    add("o", " ".join([o.username, str(o.session_id), str(o.session_version),
                       o.nettype, o.addrtype, o.address]))
    add("s", sd.session_name or "-")
    if sd.information is not None:
        add("i", sd.information)
    if sd.uri is not None:
        add("u", sd.uri)
    for email in sd.emails:
        add("e", email)
    for phone in sd.phones:
        add("p", phone)
    if sd.connection is not None:
        add("c", _connection_value(sd.connection))
    for b in sd.bandwidths:
        add("b", f"{b.bwtype}:{b.value}")
    add("t", f"{sd.timing[0]} {sd.timing[1]}")
    for repeat in sd.repeats:
        add("r", repeat)
    for timing in sd.more_timings:
        add("t", f"{timing.start} {timing.stop}")
        for repeat in timing.repeats:
            add("r", repeat)
    if sd.time_zones is not None:
        add("z", sd.time_zones)
    if sd.key is not None:
        add("k", sd.key)
    add_attributes(sd.attributes)
    for m in sd.media:
        port = m.port if m.port_count is None else f"{m.port}/{m.port_count}"
        add("m", " ".join([m.kind, str(port), m.proto, *m.formats]))
        if m.information is not None:
            add("i", m.information)
        for connection in ([m.connection] if m.connection else []) + m.extra_connections:
            add("c", _connection_value(connection))
        for b in m.bandwidths:
            add("b", f"{b.bwtype}:{b.value}")
        if m.key is not None:
            add("k", m.key)
        add_attributes(m.attributes)
    return "\r\n".join(out) + "\r\n"


def _connection_value(c: Connection) -> str:
    return f"{c.nettype} {c.addrtype} {c.value}"
