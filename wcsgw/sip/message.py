"""SIP message model: requests, responses and their header multimap.

The model is deliberately plain: header values are kept as text, one entry per value
(comma-joined list headers are split by the parser), and typed views (Via, CSeq, name-addr)
are parsed on demand by the accessors.  Keeping raw text means a proxy-style element can
pass through headers it does not understand unchanged, and parsing only what is read keeps
the hot path (retransmission absorption, routing) cheap.

Header names are stored in canonical form (``Call-ID``, ``Via``, ...) so compact forms
(``i``, ``v``) and odd capitalisation are resolved once, at parse time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator, Union

from wcsgw.sip.errors import SipParseError

#: RFC 3261 §7.3.3 compact forms, plus the ones from later RFCs that real traffic uses.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

#: Headers whose canonical spelling is not plain Title-Case.
_SPECIAL_CASE: dict[str, str] = {
    name.lower(): name
    for name in (
        "Call-ID",
        "CSeq",
        "WWW-Authenticate",
        "MIME-Version",
        "RAck",
        "RSeq",
        "SIP-ETag",
        "SIP-If-Match",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Session-ID",
    )
}


def canonical_name(name: str) -> str:
    """Map any spelling of a header name (compact, any case) to its canonical form."""
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    special = _SPECIAL_CASE.get(lower)
    if special is not None:
        return special
    return "-".join(part.capitalize() for part in lower.split("-"))


class Headers:
    """An ordered multimap of SIP headers with case-insensitive, compact-aware names.

    Each entry holds exactly one value; ``add("Via", ...)`` twice gives two Vias, in order.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        key = canonical_name(name)
        for n, v in self._items:
            if n == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = canonical_name(name)
        return [v for n, v in self._items if n == key]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first existing ``name`` (or at the top): how a Via is pushed."""
        key = canonical_name(name)
        for i, (n, _) in enumerate(self._items):
            if n == key:
                self._items.insert(i, (key, value))
                return
        self._items.insert(0, (key, value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` by one entry, kept where the first one stood."""
        key = canonical_name(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n == key:
                if not placed:
                    out.append((key, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((key, value))
        self._items = out

    def remove(self, name: str) -> None:
        key = canonical_name(name)
        self._items = [(n, v) for n, v in self._items if n != key]

    def remove_first(self, name: str) -> str | None:
        """Remove and return the first ``name`` (how a proxy pops its Via)."""
        key = canonical_name(name)
        for i, (n, v) in enumerate(self._items):
            if n == key:
                del self._items[i]
                return v
        return None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = canonical_name(name)
        return any(n == key for n, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> "Headers":
        h = Headers()
        h._items = list(self._items)
        return h


class Message:
    """What requests and responses share: version, headers, body and typed accessors."""

    __slots__ = ("version", "headers", "body", "source")

    def __init__(
        self,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.version = version
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        #: where a received message came from (a wcsgw.sip.target.Target, set by the
        #: TransactionLayer on receipt), None for one we built: lets the layers above tie
        #: what a message carries (an SDP's media address) to who sent it
        self.source: Any = None

    # -- typed accessors; each parses on demand and raises SipParseError when malformed --

    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("missing Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from CSeq."""
        from wcsgw.sip.headers import parse_cseq

        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("missing CSeq")
        return parse_cseq(value)

    @property
    def vias(self) -> list["Via"]:
        from wcsgw.sip.headers import parse_via

        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> "Via":
        from wcsgw.sip.headers import parse_via

        value = self.headers.get("Via")
        if value is None:
            raise SipParseError("missing Via")
        return parse_via(value)

    @property
    def from_(self) -> "NameAddr":
        from wcsgw.sip.headers import parse_name_addr

        value = self.headers.get("From")
        if value is None:
            raise SipParseError("missing From")
        return parse_name_addr(value)

    @property
    def to(self) -> "NameAddr":
        from wcsgw.sip.headers import parse_name_addr

        value = self.headers.get("To")
        if value is None:
            raise SipParseError("missing To")
        return parse_name_addr(value)

    @property
    def contacts(self) -> list["NameAddr"]:
        """Contact entries; a bare ``*`` (REGISTER wildcard) is returned as no entries."""
        from wcsgw.sip.headers import parse_name_addr

        return [parse_name_addr(v) for v in self.headers.get_all("Contact") if v.strip() != "*"]

    def to_bytes(self) -> bytes:
        from wcsgw.sip.parser import serialize

        return serialize(self)


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.method = method
        #: The Request-URI as text; ``wcsgw.sip.uri.parse_uri`` gives the structure.
        self.uri = uri

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers | Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body, version)
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


AnyMessage = Union[Request, Response]

if TYPE_CHECKING:  # names for type checkers only, avoids an import cycle
    from wcsgw.sip.headers import NameAddr, Via  # noqa: F401
