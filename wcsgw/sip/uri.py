"""SIP/SIPS/tel URIs (RFC 3261 §19.1, RFC 3966): parse, compare, serialize."""

from __future__ import annotations

import attr

from wcsgw.sip.errors import SipParseError


@attr.s(auto_attribs=True, slots=True)
class URI:
    scheme: str  # lower case: "sip", "sips", "tel", or another scheme kept opaque
    user: str | None = None  # unescaped
    password: str | None = None
    host: str = ""  # lower case; IPv6 references keep their brackets
    port: int | None = None
    params: dict[str, str | None] = attr.ib(factory=dict)  # uri-parameters, in order
    headers: dict[str, str] = attr.ib(factory=dict)  # ?h=v&...
    #: for schemes other than sip/sips/tel: everything after "scheme:", untouched
    opaque: str | None = None

    def __str__(self) -> str:
        raise NotImplementedError


def parse_uri(text: str) -> URI:
    raise NotImplementedError
