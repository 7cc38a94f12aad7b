"""What may leave the gateway toward the SIP side: which servers a session may use, which
destinations it may call (hosts, ports, numbers), and which headers a browser may add.

A gateway that turns web visitors into SIP calls is a toll-fraud machine if it will dial any
URI through any server a browser names, so the server a session uses (domain and outbound
proxy), every destination URI (``callee``, transfer ``target``, a far end's ``Refer-To``) and
every header a browser asks for are decided here, in one place.

**What is checked is what is sent.**  A destination is parsed once, by the SIP stack's own URI
parser (:func:`wcsgw.sip.uri.parse_uri`, the one that builds and routes requests); its host,
port, parameters and user part are checked; and the Request-URI is *built* from those checked
parts (:class:`wcsgw.sip.uri.URI`).  The browser's string never reaches the wire, so a second
reading of it (``sip:127.0.0.1;x@evil.example`` has the *user* ``127.0.0.1;x`` and the host
``evil.example``) cannot differ from the one that was checked.  URI parameters and headers
that redirect or smuggle (``maddr``, ``lr``, ``method``, another ``transport``, ``?Route=``,
any ``?header``) are refused rather than dropped: a browser that sends them is not dialling
a number.

Rules, in the order they are applied:

* ``allowed_domains`` entries are hosts (``pbx.example.com``, ``10.0.0.5``, ``[2001:db8::1]``)
  or ``host:port``.  A bare host allows that host at the account's own port (and any
  ``sipPort`` for the account's own server); ``host:port`` allows exactly that port.
  A destination URI without a port counts as the account's port.
* the dialled number — the user part with the visual separators ``-().`` and spaces removed
  when what is left is a number (``+`` digits ``*#``), the user part as it is otherwise (a
  name) — must fullmatch one of ``allowed_numbers`` when that list is not empty and none of
  ``denied_numbers``.  The separator-free number is also what the Request-URI carries.
* the dial plan (:mod:`wcsgw.calls.dialplan`, docs/dial-plan.md): a number is normalised
  (E.164) before the number rules see it, and a number dialled bare or as ``tel:`` goes where
  the first matching ``[[routes]]`` entry says (:meth:`Policy.routed`).
* headers: see :meth:`Policy.outgoing_headers`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Iterable, Mapping

from wcsgw.calls.dialplan import DialPlan, DialRefusal, tel_number
from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount, uri_host
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import canonical_name
from wcsgw.sip.uri import URI, parse_uri

__all__ = ["Policy"]

#: A user part we build a Request-URI with: digits and the characters people type in numbers,
#: or a SIP user name.  Nothing that has a meaning in the URI grammar (``@ ; ? : / = & ,``),
#: so no downstream reader can split it differently.
_USER = re.compile(r"[A-Za-z0-9+*#._~!'()\-]{1,64}")
#: What a browser may type as a bare callee: the above plus spaces (between digit groups).
_BARE = re.compile(r"[A-Za-z0-9+*#._~!'()\- ]{1,80}")
_VISUAL = re.compile(r"[-(). ]")
_NUMBER = re.compile(r"\+?[0-9*#]+")
_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#]+")
#: ``user=`` values that only say how to read the user part (RFC 3261 §19.1.1)
_USER_PARAM = ("phone", "ip")

# -- headers ----------------------------------------------------------------------------------

_MAX_HEADERS = 32
_MAX_HEADER_NAME = 64
_MAX_HEADER_VALUE = 1024
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # RFC 3261 §25.1 token (header names)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Headers that route the request, make the transaction or dialog, authenticate, or negotiate
#: extensions: the gateway writes these (or must not send them), so a browser never may, even
#: when ``policy.allowed_headers`` lists them.  ``Content-*`` as a prefix below.
_NEVER = frozenset(n.lower() for n in (
    "Via", "Route", "Record-Route", "Path", "Service-Route", "From", "To", "Call-ID", "CSeq",
    "Contact", "Max-Forwards", "Max-Breadth", "MIME-Version", "Authorization",
    "Proxy-Authorization", "WWW-Authenticate", "Proxy-Authenticate", "Authentication-Info",
    "Security-Client", "Security-Server", "Security-Verify", "Require", "Proxy-Require",
    "Supported", "Unsupported", "Allow", "Allow-Events", "Accept", "Accept-Encoding",
    "Accept-Language", "Accept-Contact", "Reject-Contact", "Request-Disposition", "Expires",
    "Min-Expires", "Session-Expires", "Min-SE", "Refer-To", "Referred-By", "Refer-Sub",
    "Replaces", "Join", "Target-Dialog", "Event", "Subscription-State", "RSeq", "RAck",
    "Recv-Info", "Info-Package", "Reason",
))
#: Headers that assert who is calling (or who pays, or where the call came from): trusted by
#: the next hop inside its trust domain, so a browser setting them is caller-ID spoofing.
#: Call-Info and Alert-Info join them because phones act on them (``answer-after=0`` makes
#: many auto-answer: a browser could open the callee's microphone).  Allowed only when
#: ``policy.allowed_headers`` names them exactly — never by a prefix; every ``P-`` header
#: (RFC 3325/3455/7315 trust-domain headers: identity, charging, access network) counts too.
_IDENTITY = frozenset(n.lower() for n in (
    "P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID", "Identity",
    "Identity-Info", "Privacy", "Diversion", "History-Info", "Call-Info", "Alert-Info",
))
#: RFC 3325 caller identity: only ever the operator's (``[[accounts]] asserted_identity``).
_ASSERTED = frozenset({"p-asserted-identity", "p-preferred-identity", "privacy"})


class Policy:
    """The outbound policy of one gateway (``[policy]``): destinations and headers."""

    def __init__(
        self,
        allowed_domains: Iterable[str],
        testlines_uri: str | Callable[[str], str] | None = None,
        *,
        allowed_numbers: Iterable[str] = (),
        denied_numbers: Iterable[str] = (),
        allowed_headers: Iterable[str] = ("X-*",),
        dialplan: DialPlan | None = None,
    ) -> None:
        #: [dialplan] and [[routes]]; DialPlan() normalises and routes nothing
        self.dialplan = dialplan or DialPlan()
        #: host -> ports allowed by a ``host:port`` entry; ``None`` in the set = a bare entry
        self._hosts: dict[str, set[int | None]] = {}
        for entry in allowed_domains:
            host, port = _split_entry(entry)
            self._hosts.setdefault(host, set()).add(port)
        #: the built-in test lines' URI for a line name — a callable (the lines pick their port
        #: at start) or a ``sip:{user}@host:port`` template — or None when they are disabled
        self.testlines_uri = testlines_uri
        self.allowed_numbers = [re.compile(p) for p in allowed_numbers]
        self.denied_numbers = [re.compile(p) for p in denied_numbers]
        self._header_exact: set[str] = set()
        self._header_prefixes: list[str] = []
        for name in allowed_headers:
            if name.endswith("*"):
                self._header_prefixes.append(name[:-1].lower())
            else:
                self._header_exact.add(canonical_name(name).lower())

    # -- servers ------------------------------------------------------------------------

    def allows_host(self, host: str) -> bool:
        """Whether any ``allowed_domains`` entry names ``host`` (with or without a port)."""
        return _norm_host(host) in self._hosts

    def allows_server(self, host: str, port: int) -> bool:
        """Whether an account may send its requests to ``host:port``: a bare entry allows the
        host at any port (the operator trusts that server), ``host:port`` only that port."""
        ports = self._hosts.get(_norm_host(host))
        return ports is not None and (None in ports or port in ports)

    def check_account(self, account: SipAccount | None) -> None:
        """An account may only use servers in the allowed list; no account means the test
        lines, which must be enabled."""
        if account is None:
            if self.testlines_uri is None:
                raise CallError(Codes.FORBIDDEN, "No SIP domain given and the test lines are off",
                                "sipDomain")
            return
        if not self.allows_host(account.domain):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: domain {account.domain} "
                            "is not in policy.allowed_domains", "sipDomain")
        hop, field = (account.outbound_proxy, "sipOutboundProxy") if account.outbound_proxy \
            else (account.domain, "sipDomain")
        if not self.allows_host(hop):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: proxy {hop}"
                            " is not in policy.allowed_domains", field)
        if not self.allows_server(hop, account.port):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {hop} port {account.port}"
                            " is not in policy.allowed_domains", "sipPort")

    # -- destinations -------------------------------------------------------------------

    def request_uri(self, account: SipAccount | None, callee: str, field: str = "callee") -> str:
        """The Request-URI to call for ``callee`` (a ``callee``, a transfer ``target``, a far
        end's ``Refer-To`` without its ``?headers``), checked and built from parsed parts.

        A user part goes to the account's domain (or, without an account, names a test
        line); a full ``sip:``/``tel:`` URI must name an allowed host and port and carry no
        redirecting parameter or header; ``tel:`` is dialled through the account's domain.
        Refusals are :class:`CallError` naming ``field``: ``FORBIDDEN`` ("Forbidden
        destination: ...") for what the policy does not allow, ``INVALID`` for what is not a
        destination at all."""
        return self.routed(account, callee, field)[1]

    def routed(self, account: SipAccount | None, callee: str, field: str = "callee", *,
               held: bool = False) -> tuple[SipAccount | None, str]:
        """The account to call on and the Request-URI, through the dial plan: a number typed
        bare or as ``tel:`` goes where its route says (another account, rewritten, with
        ``user=phone``); a refusing route or ``dialplan.unrouted`` refuses naming itself.
        ``held``: the call may use server-held accounts (routes naming one)."""
        uri = self.destination(account, callee, field)
        text = callee.strip().lower()
        if account is None or not self.dialplan.active or uri.user is None \
                or not _NUMBER.fullmatch(uri.user) or (":" in text and text[:4] != "tel:"):
            return account, str(uri)
        try:
            out = self.dialplan.route(uri.user, held=held)
        except DialRefusal as exc:
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {exc}", field) from None
        via = out.account or account
        params = dict(uri.params)
        if out.user_phone:
            params["user"] = "phone"
        return via, str(URI("sip", user=out.user, host=_uri_host(via.domain), params=params))

    def destination(self, account: SipAccount | None, callee: str,
                    field: str = "callee") -> URI:
        """:meth:`request_uri` as a parsed :class:`URI` (for code that routes on it)."""
        callee = callee.strip()
        if not callee:
            raise CallError(Codes.INVALID, f"{field} is empty", field)
        if account is None:
            return self._test_line(callee, field)
        if ":" not in callee:
            return self._user_at_domain(account, callee, field)
        try:
            uri = parse_uri(callee)
        except SipParseError:
            raise CallError(Codes.INVALID, f"{field} is not a valid SIP or tel URI",
                            field) from None
        if uri.scheme == "tel":
            return self._tel(account, uri, field)
        if uri.scheme not in ("sip", "sips"):
            raise CallError(Codes.INVALID, f"{field} must be a number, a user name or a "
                            "sip:/tel: URI", field)
        return self._sip(account, uri, field)

    def _test_line(self, callee: str, field: str) -> URI:
        if self.testlines_uri is None:  # check_account refused this session at connect
            raise CallError(Codes.FORBIDDEN, "No SIP domain given and the test lines are off",
                            field)
        if callee not in ("echo", "tone", "dtmf"):
            raise CallError(Codes.FORBIDDEN, "Forbidden destination: without a SIP domain "
                            "only the test lines echo, tone and dtmf can be called", field)
        if callable(self.testlines_uri):
            return parse_uri(self.testlines_uri(callee))
        return parse_uri(self.testlines_uri.format(user=callee))

    def _user_at_domain(self, account: SipAccount, callee: str, field: str) -> URI:
        """A bare user part: ``sip:<user>@<account domain>`` (the domain passed check_account)."""
        if not _BARE.fullmatch(callee):
            raise CallError(Codes.INVALID, f"{field} must be a number, a user name or a "
                            "sip:/tel: URI", field)
        user = self._dialled(callee, field)
        return URI("sip", user=user, host=_uri_host(account.domain))

    def _tel(self, account: SipAccount, uri: URI, field: str) -> URI:
        """``tel:`` numbers are dialled through the account's own server.  No parameters:
        ``;ext=`` or ``;isub=`` would dial digits the number rules never saw; with a dial plan,
        a global ``phone-context`` is folded into the number (:func:`tel_number`)."""
        if uri.params and not self.dialplan.active:
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: tel: parameters "
                            f"({', '.join(uri.params)}) are not accepted", field)
        try:
            number = self.dialplan.normalise(tel_number(uri.user or "", uri.params))
        except DialRefusal as exc:
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {exc}", field) from None
        if not _TEL_NUMBER.fullmatch(number):
            raise CallError(Codes.INVALID, f"{field} is not a valid tel: number", field)
        self._check_number(number, field)
        return URI("sip", user=number, host=_uri_host(account.domain), params={"user": "phone"})

    def _sip(self, account: SipAccount, uri: URI, field: str) -> URI:
        if uri.scheme == "sips" and account.transport != "tls":
            raise CallError(Codes.INVALID, f"{field}: a sips: URI needs sipTransport tls",
                            field)
        if uri.password is not None:
            raise CallError(Codes.INVALID, f"{field} must not carry a password", field)
        if uri.headers:
            raise CallError(Codes.FORBIDDEN, "Forbidden destination: URI headers ("
                            f"{', '.join(sorted(uri.headers))}) are not accepted", field)
        params: dict[str, str | None] = {}
        for name, value in uri.params.items():
            low = (value or "").lower()
            if name == "user" and low in _USER_PARAM:
                params["user"] = low
            elif name == "transport" and low == account.transport:
                params["transport"] = low
            elif name == "transport":
                raise CallError(Codes.FORBIDDEN, f"Forbidden destination: transport={value} "
                                f"is not the account's ({account.transport})", field)
            else:
                shown = name if value is None else f"{name}={value}"
                raise CallError(Codes.FORBIDDEN, f"Forbidden destination: the URI parameter "
                                f"{shown[:64]} is not accepted (it could redirect the call)",
                                field)
        host = _norm_host(uri.host)
        port = uri.port if uri.port is not None else account.port
        ports = self._hosts.get(host)
        if ports is None:
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {host} is not in "
                            "policy.allowed_domains", field)
        if port not in ports and not (None in ports and port == account.port):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {host} port {port} is "
                            "neither the account's port nor named in policy.allowed_domains",
                            field)
        user = None
        if uri.user is not None:
            if not _USER.fullmatch(uri.user):
                raise CallError(Codes.INVALID, f"{field} has a user part with characters "
                                "that are not accepted", field)
            user = self._dialled(uri.user, field)
        else:
            self._check_number("", field)
        return URI(uri.scheme, user=user, host=_uri_host(host), port=uri.port, params=params)

    def _dialled(self, user: str, field: str) -> str:
        """The user part as dialled: a number without its visual separators, or a name as it
        is; checked against the number rules."""
        number = _VISUAL.sub("", user)
        is_number = _NUMBER.fullmatch(number) is not None
        dialled = self.dialplan.normalise(number) if is_number else user
        if number.startswith("+") and not is_number:
            # "+" says "phone number": one that is not a number cannot be checked as one
            raise CallError(Codes.INVALID, f"{field} is not a valid phone number", field)
        if " " in dialled or not _USER.fullmatch(dialled):
            raise CallError(Codes.INVALID, f"{field} must be a number, a user name or a "
                            "sip:/tel: URI", field)
        self._check_number(dialled, field)
        return dialled

    def _check_number(self, number: str, field: str) -> None:
        if self.allowed_numbers and not any(p.fullmatch(number) for p in self.allowed_numbers):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {number or 'no number'} "
                            "matches none of policy.allowed_numbers", field)
        if any(p.fullmatch(number) for p in self.denied_numbers):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {number} matches "
                            "policy.denied_numbers", field)

    # -- headers ------------------------------------------------------------------------

    def outgoing_headers(self, headers: Any, field: str = "sipHeaders") -> dict[str, str]:
        """The extra headers a browser (``sipHeaders``) or a REST caller may put into the
        INVITE, checked; :class:`CallError` ``INVALID`` naming ``<field>.<name>`` otherwise.

        Names are allowed by ``policy.allowed_headers`` (case-insensitive; a trailing ``*``
        is a prefix; compact forms count as their long names).  Routing, transaction and
        negotiation headers (:data:`_NEVER`, ``Content-*``) and PAI/PPI/Privacy are never
        taken; other identity headers (:data:`_IDENTITY`, ``P-*``) only when listed exactly.
        Values are one line: no CR, LF or other control characters, at most 1024 chars."""
        if not isinstance(headers, Mapping):
            raise CallError(Codes.INVALID, f"{field} must be an object", field)
        if len(headers) > _MAX_HEADERS:
            raise CallError(Codes.INVALID, f"{field} has too many headers (at most "
                            f"{_MAX_HEADERS})", field)
        out: dict[str, str] = {}
        for name, value in headers.items():
            where = f"{field}.{name}"
            if not isinstance(name, str) or not _TOKEN.fullmatch(name) \
                    or len(name) > _MAX_HEADER_NAME:
                raise CallError(Codes.INVALID, f"{where} is not a valid SIP header name", where)
            problem = self._header_refusal(name)
            if problem:
                raise CallError(Codes.INVALID, f"{where} {problem}", where)
            if not isinstance(value, str):
                raise CallError(Codes.INVALID, f"{where} must be a string", where)
            if len(value) > _MAX_HEADER_VALUE or _CONTROL.search(value):
                raise CallError(Codes.INVALID, f"{where} must be one line of at most "
                                f"{_MAX_HEADER_VALUE} characters without control characters",
                                where)
            out[name] = value
        return out

    def _header_refusal(self, name: str) -> str | None:
        """Why ``name`` may not be sent, or None when it may."""
        full = canonical_name(name).lower()
        if full in _NEVER or full.startswith("content-"):
            return "is set by the gateway and cannot be sent by a client"
        if full in _ASSERTED:  # whatever policy.allowed_headers says: caller-ID spoofing
            return "is set from the account's asserted_identity/privacy, never by a client"
        if full in self._header_exact:
            return None
        if full in _IDENTITY or full.startswith("p-"):
            return ("is an identity header: only sent when policy.allowed_headers names it "
                    "exactly")
        if any(full.startswith(prefix) for prefix in self._header_prefixes):
            return None
        return "is not in policy.allowed_headers"


def _norm_host(host: str) -> str:
    """A host as compared: lower case, no brackets, no trailing dot, IP literals canonical
    (``0:0::1`` is ``::1``), so two spellings of one host cannot be told apart."""
    host = host.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _uri_host(host: str) -> str:
    """A compared host back in URI form (IPv6 in brackets)."""
    return uri_host(_norm_host(host))


def _split_entry(entry: str) -> tuple[str, int | None]:
    """An ``allowed_domains`` entry: ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a
    bare IPv6 literal (two or more colons: no port)."""
    entry = entry.strip()
    host, port = entry, None
    if entry.startswith("["):
        close = entry.find("]")
        if close > 0 and entry[close + 1:].startswith(":") and entry[close + 2:].isdigit():
            host, port = entry[:close + 1], int(entry[close + 2:])
    elif entry.count(":") == 1:
        name, _, digits = entry.partition(":")
        if digits.isdigit():
            host, port = name, int(digits)
    return _norm_host(host), port
