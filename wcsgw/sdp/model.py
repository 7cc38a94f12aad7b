"""The SDP data model (RFC 8866, which obsoletes RFC 4566): plain attrs values.

A :class:`SessionDescription` holds every field the grammar allows, so parsing and
serializing (``wcsgw.sdp.parser``) round-trip; the helpers answer the questions the gateway
asks of an offer or answer (codecs, direction, ICE credentials, DTLS fingerprint ...).

Values are kept as written: attribute values verbatim (Chrome writes
``a=msid-semantic: WMS`` with a space that must survive), names in their original case
(lookups ignore case).  Several WebRTC attributes may sit at session or media level
(Firefox puts ``a=fingerprint`` at session level, Chrome in each m-section), so
:class:`SessionDescription` has ``*_for(media)`` methods that look in the m-section first
and fall back to the session.

Containers (:class:`SessionDescription`, :class:`MediaDescription`) are mutable so answers
can be built step by step; the leaves (:class:`Attribute`, :class:`Connection`,
:class:`Origin`, :class:`Bandwidth`, :class:`Timing`) are frozen.
"""

from __future__ import annotations

import re

import attr

from wcsgw.sdp.codecs import STATIC_PAYLOAD_TYPES, Codec, parse_rtpmap

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _addrtype_for(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Attribute:
    """``a=name`` (value None: a property attribute) or ``a=name:value`` (value may be "")."""

    name: str
    value: str | None = None


@attr.s(frozen=True, slots=True, auto_attribs=True, kw_only=True)
class Connection:
    """``c=<nettype> <addrtype> <address>[/<ttl>][/<count>]`` (keyword arguments only).

    ``addrtype`` defaults to IP6 for an address with a colon, else IP4.  ``ttl`` (IP4
    multicast only) and ``count`` (multicast layers) are split off the address for IP4/IP6;
    for other address types the address is kept whole.
    """

    address: str
    nettype: str = "IN"
    addrtype: str = attr.ib(
        default=attr.Factory(lambda self: _addrtype_for(self.address), takes_self=True)
    )
    ttl: int | None = None
    count: int | None = None

    @property
    def value(self) -> str:
        """The connection-address as written on the c= line (with /ttl and /count)."""
        text = self.address
        if self.ttl is not None:
            text += f"/{self.ttl}"
        if self.count is not None:
            text += f"/{self.count}"
        return text


@attr.s(frozen=True, slots=True, auto_attribs=True, kw_only=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (keywords).

    RFC 3264 §5: ``session_version`` goes up by one with every new offer or answer of the
    session, so a re-INVITE whose version did not change carries no new description.
    """

    session_id: int
    session_version: int
    address: str
    username: str = "-"
    nettype: str = "IN"
    addrtype: str = attr.ib(
        default=attr.Factory(lambda self: _addrtype_for(self.address), takes_self=True)
    )


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` -- e.g. ``AS`` in kbit/s, ``TIAS`` in bit/s (RFC 3890)."""

    bwtype: str
    value: int


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Timing:
    """A further ``t=`` line with its ``r=`` lines (raw values), for the rare SDP with several."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


class _Attributes:
    """Attribute lookups shared by the session and media levels (names compared case-blind)."""

    __slots__ = ()
    attributes: list[Attribute]

    def get(self, name: str) -> str | None:
        """The value of the first ``a=name``; None when absent *or* a property attribute
        (use :meth:`has` for ``a=rtcp-mux``-like flags)."""
        name = name.lower()
        for a in self.attributes:
            if a.name.lower() == name:
                return a.value
        return None

    def get_all(self, name: str) -> list[str]:
        """The values of every ``a=name`` in order (property attributes give "")."""
        name = name.lower()
        return [a.value or "" for a in self.attributes if a.name.lower() == name]

    def has(self, name: str) -> bool:
        name = name.lower()
        return any(a.name.lower() == name for a in self.attributes)

    @property
    def direction(self) -> str | None:
        """sendrecv / sendonly / recvonly / inactive as written at this level, else None."""
        for a in self.attributes:
            if a.name.lower() in DIRECTIONS:
                return a.name.lower()
        return None

    @property
    def ice_ufrag(self) -> str | None:
        return self.get("ice-ufrag")

    @property
    def ice_pwd(self) -> str | None:
        return self.get("ice-pwd")

    @property
    def setup(self) -> str | None:
        """DTLS role (RFC 4145 / 8842): active, passive, actpass, holdconn."""
        value = self.get("setup")
        return value.strip().lower() if value is not None else None

    @property
    def fingerprint(self) -> tuple[str, str] | None:
        """``("sha-256", "AB:CD:...")`` from the first well-formed ``a=fingerprint``."""
        for value in self.get_all("fingerprint"):
            parts = value.split()
            if len(parts) == 2:
                return parts[0].lower(), parts[1]
        return None


@attr.s(slots=True, auto_attribs=True)
class MediaDescription(_Attributes):
    """One m-section: ``m=<kind> <port>[/<port_count>] <proto> <formats...>`` and its fields."""

    kind: str
    port: int
    proto: str
    formats: list[str] = attr.Factory(list)
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = attr.Factory(list)
    attributes: list[Attribute] = attr.Factory(list)
    port_count: int | None = None
    information: str | None = None
    key: str | None = None
    #: further c= lines of this m-section (layered multicast, RFC 8866 §5.7); rare.
    extra_connections: list[Connection] = attr.Factory(list)

    @property
    def is_rtp(self) -> bool:
        """Whether the formats are RTP payload types (``RTP/AVP``, ``UDP/TLS/RTP/SAVPF`` ...)."""
        return "RTP" in self.proto.upper().split("/")

    @property
    def rejected(self) -> bool:
        """Port 0 means a rejected or disabled stream (RFC 3264 §5.1, §6), unless
        ``a=bundle-only`` says it rides on the BUNDLE transport (RFC 9143)."""
        return self.port == 0 and not self.has("bundle-only")

    def codecs(self) -> list[Codec]:
        """The m-line's formats as codecs, in m-line order, each with its payload type.

        Dynamic payload types come from ``a=rtpmap``; static ones (0 PCMU, 8 PCMA, 9 G722,
        13 CN, 18 G729 ...) from RFC 3551 when there is no rtpmap.  ``a=fmtp`` is attached.
        Formats that cannot be resolved (a dynamic type without or with a malformed rtpmap)
        are left out: nobody can use them.  Non-RTP m-lines have no codecs.
        """
        if not self.is_rtp:
            return []
        rtpmaps: dict[int, Codec] = {}
        for value in self.get_all("rtpmap"):
            codec = parse_rtpmap(value)
            if codec is not None and codec.payload_type not in rtpmaps:
                rtpmaps[codec.payload_type] = codec  # type: ignore[index]
        fmtps: dict[str, str] = {}
        for value in self.get_all("fmtp"):
            fmt, _, params = value.strip().partition(" ")
            if fmt and fmt not in fmtps:
                fmtps[fmt] = params.strip()
        result: list[Codec] = []
        for fmt in self.formats:
            if not (fmt.isascii() and fmt.isdigit()) or len(fmt) > 3:
                continue
            pt = int(fmt)
            codec = rtpmaps.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
            if codec is None:
                continue
            fmtp = fmtps.get(fmt) or fmtps.get(str(pt)) or None
            result.append(attr.evolve(codec, payload_type=pt, fmtp=fmtp))
        return result

    @property
    def mid(self) -> str | None:
        return self.get("mid")

    @property
    def rtcp_mux(self) -> bool:
        return self.has("rtcp-mux")

    @property
    def candidates(self) -> list[str]:
        """Raw ``a=candidate`` values: ``foundation component transport priority address port
        typ type ...`` (RFC 8839 §5.1)."""
        return self.get_all("candidate")

    @property
    def rtcp(self) -> int | None:
        """The RTCP port from ``a=rtcp:<port> [IN IP4 addr]`` (RFC 3605), else None.

        Without it RTCP goes to port + 1, or to the RTP port itself once rtcp-mux is agreed.
        """
        value = self.get("rtcp")
        if value is None:
            return None
        m = _PORT_RE.match(value)
        return int(m.group(1)) if m and int(m.group(1)) <= 65535 else None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in milliseconds (a fractional value is truncated), else None."""
        value = self.get("ptime")
        if value is None:
            return None
        m = _PTIME_RE.fullmatch(value.strip())
        return int(m.group(1)) if m else None


_PORT_RE = re.compile(r"[ \t]*([0-9]{1,5})(?:[ \t]|$)", re.ASCII)
_PTIME_RE = re.compile(r"([0-9]{1,6})(?:\.[0-9]*)?", re.ASCII)


@attr.s(slots=True, auto_attribs=True)
class SessionDescription(_Attributes):
    """A whole description.  ``timing`` is the first ``t=`` line; the few fields real peers
    never send (``r=`` after it, more ``t=`` lines, ``z=``, ``k=``, ``e=``, ``p=``) are kept
    raw so nothing is lost in a round trip."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = attr.Factory(list)
    timing: tuple[int, int] = (0, 0)
    attributes: list[Attribute] = attr.Factory(list)
    media: list[MediaDescription] = attr.Factory(list)
    information: str | None = None
    uri: str | None = None
    emails: list[str] = attr.Factory(list)
    phones: list[str] = attr.Factory(list)
    #: ``r=`` values that follow the first ``t=`` line
    repeats: list[str] = attr.Factory(list)
    #: further ``t=`` lines with their ``r=`` lines
    more_timings: list[Timing] = attr.Factory(list)
    #: ``z=`` value
    time_zones: str | None = None
    #: ``k=`` value (obsolete, RFC 8866 §5.12)
    key: str | None = None

    def first_audio(self) -> MediaDescription | None:
        """The first audio m-section that is not rejected (port 0): the one a call's audio
        uses — browsers, phones and the gateway's own offers put one audio stream first."""
        return next((m for m in self.media if m.kind == "audio" and not m.rejected), None)

    # -- media level first, then session level ------------------------------------------------
    def direction_for(self, media: MediaDescription) -> str:
        """The stream's direction: the m-section's, else the session's, else sendrecv
        (RFC 3264 §5.1)."""
        return media.direction or self.direction or "sendrecv"

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """Where the stream's RTP goes: the m-section's c=, else the session's."""
        return media.connection or self.connection

    def ice_ufrag_for(self, media: MediaDescription) -> str | None:
        return media.ice_ufrag or self.ice_ufrag

    def ice_pwd_for(self, media: MediaDescription) -> str | None:
        return media.ice_pwd or self.ice_pwd

    def fingerprint_for(self, media: MediaDescription) -> tuple[str, str] | None:
        return media.fingerprint or self.fingerprint

    def setup_for(self, media: MediaDescription) -> str | None:
        return media.setup or self.setup

    # -- session-level ------------------------------------------------------------------------
    @property
    def ice_lite(self) -> bool:
        return self.has("ice-lite")

    def groups(self, semantics: str = "BUNDLE") -> list[list[str]]:
        """The mids of each ``a=group:<semantics> mid ...`` (RFC 5888), e.g. BUNDLE groups."""
        result = []
        for value in self.get_all("group"):
            parts = value.split()
            if parts and parts[0].upper() == semantics.upper():
                result.append(parts[1:])
        return result

    def media_by_mid(self, mid: str) -> MediaDescription | None:
        for media in self.media:
            if media.mid == mid:
                return media
        return None
