"""SIP/SIPS/tel URIs (RFC 3261 §19.1, §25; RFC 3966): parse, compare, serialize.

Components are stored *unescaped* (``%41`` -> ``A``) so code compares and routes on what the
URI means, not on how a peer chose to spell it; ``str()`` escapes again wherever the grammar
needs it, so ``parse_uri(str(u)) == u``.  Host names and parameter names are lower-cased at
parse time (both are case-insensitive, RFC 3261 §19.1.4), so lookups such as
``uri.params.get("lr")`` need no case folding.  Escapes that do not decode to UTF-8 are kept
as surrogates (``surrogateescape``) and re-emitted byte for byte.

Schemes other than sip/sips/tel are kept opaque: RFC 4475 (unkscm, novelsc, unksm2) requires
a parser to accept them; deciding whether they are acceptable (416) is application policy.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, unquote

import attr

from wcsgw.sip.errors import SipParseError

# -- RFC 3261 §25.1 character classes, as regex fragments -----------------------------------
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"
_USER = rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+"
_PASSWORD = rf"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*"
_PARAMCHAR = rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESCAPED})"
_HNVCHAR = rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESCAPED})"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
_HOSTNAME = rf"(?:{_LABEL}\.)*{_LABEL}\.?"
_IPV6REF = r"\[[0-9A-Fa-f:.]+\]"
_HOST = rf"(?:{_IPV6REF}|{_HOSTNAME})"

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):")
_SIP_RE = re.compile(
    rf"(?:(?P<user>{_USER})(?::(?P<password>{_PASSWORD}))?@)?"
    rf"(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?"
    rf"(?P<params>(?:;{_PARAMCHAR}+(?:={_PARAMCHAR}+)?)*)"
    rf"(?:\?(?P<headers>{_HNVCHAR}+={_HNVCHAR}*(?:&{_HNVCHAR}+={_HNVCHAR}*)*))?"
)
_TEL_RE = re.compile(
    r"(?P<number>\+[0-9().\-]*[0-9][0-9().\-]*|[0-9A-Fa-f*#().\-]*[0-9A-Fa-f*#][0-9A-Fa-f*#().\-]*)"
    rf"(?P<params>(?:;[A-Za-z0-9\-]+(?:={_PARAMCHAR}+)?)*)"
)
#: absoluteURI's opaque part (uric characters, plus '#' and brackets seen in the wild)
_OPAQUE_RE = re.compile(rf"(?:[{_UNRESERVED};/?:@&=+$,#\[\]]|{_ESCAPED})+")
_HOST_RE = re.compile(_HOST)

# Characters that may stay unescaped on output, per component (quote() adds alnum and "_.-~").
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"
_SAFE_RES = {
    safe: re.compile("[A-Za-z0-9_.~\\-" + re.escape(safe) + "]+")
    for safe in (_USER_SAFE, _PASSWORD_SAFE, _PARAM_SAFE, _HEADER_SAFE)
}

#: the uri-parameters RFC 3261 §19.1.4 says must match whenever either URI carries them
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")
_TEL_VISUAL = str.maketrans("", "", "-.()")


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
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return "tel:" + (self.user or "") + format_uri_params(self.params)
        out = [self.scheme, ":"]
        if self.user:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":")
                out.append(escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        if self.params:
            out.append(format_uri_params(self.params))
        if self.headers:
            out.append(
                "?"
                + "&".join(
                    f"{escape(k, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}"
                    for k, v in self.headers.items()
                )
            )
        return "".join(out)

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


def escape(text: str, safe: str) -> str:
    """%-escape what the component's grammar does not allow raw (fast path: nothing to do)."""
    if _SAFE_RES[safe].fullmatch(text):
        return text
    return quote(text, safe=safe, errors="surrogateescape")


def unescape(text: str) -> str:
    """Undo %-escapes; bytes that are not UTF-8 survive as surrogates (see module doc)."""
    if "%" not in text:
        return text
    return unquote(text, errors="surrogateescape")


def format_uri_params(params: dict[str, str | None]) -> str:
    return "".join(
        f";{escape(k, _PARAM_SAFE)}" if v is None else f";{escape(k, _PARAM_SAFE)}={escape(v, _PARAM_SAFE)}"
        for k, v in params.items()
    )


def parse_host(text: str) -> str:
    """Validate a host (hostname, IPv4, bracketed IPv6) and return it lower-cased."""
    if not _HOST_RE.fullmatch(text):
        raise SipParseError(f"malformed host {text[:64]!r}")
    if text.startswith("["):
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise SipParseError(f"malformed IPv6 reference {text[:64]!r}") from None
    return text.lower()


def _parse_params(text: str) -> dict[str, str | None]:
    """uri-parameters already validated by the caller's regex: split and unescape."""
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        name = unescape(name).lower()
        if name not in params:  # first occurrence wins; duplicates are not meaningful
            params[name] = unescape(value) if eq else None
    return params


def parse_uri(text: str) -> URI:
    """Parse a SIP, SIPS or tel URI; any other scheme is accepted and kept opaque."""
    m = _SCHEME_RE.match(text)
    if m is None:
        raise SipParseError(f"URI without a scheme: {text[:64]!r}")
    scheme = m.group(1).lower()
    rest = text[m.end() :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, text)
    if scheme == "tel":
        t = _TEL_RE.fullmatch(rest)
        if t is None:
            raise SipParseError(f"malformed tel URI {text[:64]!r}")
        params = _parse_params(t.group("params")) if t.group("params") else {}
        return URI("tel", user=t.group("number"), params=params)
    if not _OPAQUE_RE.fullmatch(rest):
        raise SipParseError(f"malformed {scheme} URI {text[:64]!r}")
    return URI(scheme, opaque=rest)


def _parse_sip(scheme: str, rest: str, text: str) -> URI:
    m = _SIP_RE.fullmatch(rest)
    if m is None:
        raise SipParseError(f"malformed {scheme} URI {text[:64]!r}")
    user, password, host, port, params, headers = m.group(
        "user", "password", "host", "port", "params", "headers"
    )
    uri = URI(scheme, host=parse_host(host))
    if user is not None:
        uri.user = unescape(user)
        if password is not None:
            uri.password = unescape(password)
    if port is not None:
        uri.port = int(port)
        if uri.port > 65535:
            raise SipParseError(f"port out of range in {text[:64]!r}")
    if params:
        uri.params = _parse_params(params)
    if headers:
        for item in headers.split("&"):
            name, _, value = item.partition("=")
            uri.headers.setdefault(unescape(name), unescape(value))
    return uri


def uri_equal(a: URI, b: URI) -> bool:
    """URI comparison per RFC 3261 §19.1.4 (sip/sips), RFC 3966 §4 (tel), exact otherwise."""
    if a.scheme != b.scheme:
        return False
    if a.opaque is not None or b.opaque is not None:
        return a.opaque == b.opaque
    if a.scheme == "tel":
        return (a.user or "").translate(_TEL_VISUAL).lower() == (b.user or "").translate(
            _TEL_VISUAL
        ).lower() and _lower_params(a.params) == _lower_params(b.params)
    if (a.user, a.password, a.host, a.port) != (b.user, b.password, b.host, b.port):
        return False
    pa, pb = _lower_params(a.params), _lower_params(b.params)
    for name in _STRICT_PARAMS:
        if pa.get(name, "\0absent") != pb.get(name, "\0absent"):
            return False
    for name in pa.keys() & pb.keys():
        if pa[name] != pb[name]:
            return False
    ha = {k.lower(): v for k, v in a.headers.items()}
    hb = {k.lower(): v for k, v in b.headers.items()}
    return ha == hb


def _lower_params(params: dict[str, str | None]) -> dict[str, str | None]:
    return {k.lower(): (v.lower() if v is not None else None) for k, v in params.items()}


_DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def same_binding(a: URI, b: URI) -> bool:
    """Whether two Contact URIs name the same binding.

    Looser than §19.1.4 on purpose: registrars echo Contacts with parameters added, removed or
    re-cased (``;ob``, ``;transport=TCP``, ``received``), so scheme, user, host and port decide.
    """
    return (
        a.scheme == b.scheme
        and (a.user or "") == (b.user or "")
        and a.host.lower() == b.host.lower()
        and (a.port or _DEFAULT_PORTS.get(a.scheme)) == (b.port or _DEFAULT_PORTS.get(b.scheme))
    )
