"""A SIP account as a browser session or REST call describes it (docs/contract.md ``connect``).

It holds what the WCS ``sipLogin``/``sipAuthenticationName``/``sipPassword``/``sipDomain``/
``sipOutboundProxy``/``sipPort``/``sipTransport``/``sipRegisterRequired`` fields say, and derives
the three things the SIP layer needs from them: the address-of-record (RFC 3261 §10.2.1 To/From
of a REGISTER), the registrar URI (§10.2: Request-URI is the domain, no user part) and the next
hop to send to (the outbound proxy when set, else the domain; RFC 3263 resolution of that name
happens in the transport layer).

The password is masked in ``repr()`` so an account can be logged or shown in a traceback.
"""

from __future__ import annotations

import string

import attr

from wcsgw.sip.digest import Credentials, DigestClient, RealmPin
from wcsgw.sip.ids import new_cnonce

#: the ``sipTransport`` values; "tls" is SIP over TLS (wcsgw.sip.tls), port 5061 by default
TRANSPORTS: tuple[str, ...] = ("udp", "tcp", "tls")

# RFC 3261 §25.1: user = 1*( unreserved / escaped / user-unreserved )
_USER_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()" + "&=+$,;?/")


def escape_user(user: str) -> str:
    """Percent-escape a login for the user part of a SIP URI (RFC 3261 §19.1.2).

    Logins are free text in the browser form; an ``@`` or a space in one must not change
    which host the URI names.
    """
    out: list[str] = []
    for ch in user:
        if ch in _USER_SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def uri_host(host: str) -> str:
    """A host as a SIP URI wants it: IPv6 literals in brackets (RFC 3261 §25.1 IPv6reference)."""
    # two or more colons: an IPv6 literal; one colon is "host:port", which stays as it is
    return f"[{host}]" if host.count(":") >= 2 and not host.startswith("[") else host


def _unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _mask(_: object) -> str:
    return "'***'"


def _check_transport(_inst: object, _attr: object, value: str) -> None:
    if value not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {value!r}")


def _check_port(_inst: object, _attr: object, value: int) -> None:
    if not 0 <= value < 65536:
        raise ValueError(f"port out of range: {value}")


#: SDES-SRTP toward this account's SIP side (RFC 4568; wcsgw.calls.sipsdes has the table)
SRTP_POLICIES: tuple[str, ...] = ("off", "optional", "mandatory")


def _check_srtp(_inst: object, _attr: object, value: str) -> None:
    if value not in SRTP_POLICIES:
        raise ValueError(f"srtp must be one of {', '.join(SRTP_POLICIES)}, not {value!r}")


def _check_expires(_inst: object, _attr: object, value: int) -> None:
    if value <= 0:
        raise ValueError(f"expires must be positive: {value}")


def _lower(value: str) -> str:
    return value.lower()


@attr.s(frozen=True, slots=True, auto_attribs=True, kw_only=True)
class SipAccount:
    """Who we are toward one SIP server, and where that server is.

    All fields are keyword-only (``SipAccount(login=..., password=..., domain=...)``): a
    positional mix-up of login and auth name would be silent.  ``auth_name`` defaults to
    ``login`` (an empty string counts as unset, as the browser form sends one);
    ``outbound_proxy`` ``None`` means "send to the domain".
    """

    login: str
    auth_name: str | None = None
    password: str = attr.ib(default="", repr=_mask)
    domain: str
    outbound_proxy: str | None = None
    #: 0: the transport's default (RFC 3261 §19.1.2: 5061 for TLS, else 5060)
    port: int = attr.ib(default=0, validator=_check_port)
    transport: str = attr.ib(default="udp", converter=_lower, validator=_check_transport)
    register: bool = True
    expires: int = attr.ib(default=600, validator=_check_expires)
    display_name: str | None = None
    srtp: str = attr.ib(default="off", converter=_lower, validator=_check_srtp)
    #: the realm(s) this account's server challenged with first, shared by all its
    #: DigestClients (:meth:`digest_client`); not part of the account's identity
    realm_pin: RealmPin = attr.ib(factory=RealmPin, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.auth_name:
            object.__setattr__(self, "auth_name", self.login)
        if not self.port:
            object.__setattr__(self, "port", 5061 if self.transport == "tls" else 5060)
        if not self.outbound_proxy:
            object.__setattr__(self, "outbound_proxy", None)
        if not self.domain:
            raise ValueError("domain is required")
        if not self.login:
            raise ValueError("login is required")

    def aor(self) -> str:
        """The address-of-record ``sip:login@domain`` (RFC 3261 §10.2.1: To and From)."""
        return f"sip:{escape_user(self.login)}@{uri_host(self.domain)}"

    def registrar_uri(self) -> str:
        """The REGISTER Request-URI ``sip:domain`` (RFC 3261 §10.2: no userinfo)."""
        return f"sip:{uri_host(self.domain)}"

    def next_hop(self) -> tuple[str, int, str]:
        """(host, port, transport) to send requests to: the outbound proxy, else the domain."""
        return (self.outbound_proxy or self.domain, self.port, self.transport)

    def server_hosts(self) -> tuple[str, ...]:
        """The account's own SIP servers, as configured: the outbound proxy (if any) and the
        domain (the registrar).  Requests from their addresses are the registrar's or
        proxy's (new INVITEs, in-dialog requests through the proxy), and only requests to
        them may carry credentials (:mod:`wcsgw.sip.trust`)."""
        hosts = [self.outbound_proxy] if self.outbound_proxy else []
        hosts.append(self.domain)
        return tuple(_unbracket(h) for h in dict.fromkeys(hosts))

    def digest_client(self) -> DigestClient:
        """A DigestClient with this account's credentials and realm pin: a registration and
        each call get their own (nonce counts are per request stream) but one pin."""
        return DigestClient(self.credentials(), cnonce_factory=new_cnonce, pin=self.realm_pin)

    def credentials(self) -> Credentials:
        """Digest credentials: the authentication name, not the login (they differ on PBXes
        that authenticate extension 1001 as user ``acme-1001``)."""
        assert self.auth_name is not None
        return Credentials(self.auth_name, self.password)

    def from_header(self, tag: str) -> str:
        """A From value for this account's AOR, with display name and ``tag``."""
        return f"{self.name_addr()};tag={tag}"

    def name_addr(self) -> str:
        """``"Display" <aor>`` or ``<aor>``: the AOR as a name-addr without tag."""
        if self.display_name:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}" <{self.aor()}>'
        return f"<{self.aor()}>"
