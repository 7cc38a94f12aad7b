"""Typed views of the structured SIP headers: Via, name-addr (From/To/Contact/Route), CSeq.

Parsers here take one header *value* (the message parser has already split comma-joined
lists) and raise :class:`SipParseError` on malformed input; ``str()`` of each type is its
canonical serialization, so ``parse_x(str(x)) == x``.
"""

from __future__ import annotations

import attr

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.uri import URI

#: RFC 3261 §8.1.1.7: branches starting with this were made by an RFC 3261 element.
MAGIC_COOKIE = "z9hG4bK"


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

    def __str__(self) -> str:
        raise NotImplementedError  # filled by the grammar work


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
        raise NotImplementedError


def parse_via(value: str) -> Via:
    raise NotImplementedError


def parse_name_addr(value: str) -> NameAddr:
    raise NotImplementedError


def parse_cseq(value: str) -> tuple[int, str]:
    raise NotImplementedError
