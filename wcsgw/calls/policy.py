"""Where sessions may register and call: the gateway's safe default is "nowhere but its own
test lines", and an operator opens it up domain by domain (``policy.allowed_domains``).

A gateway that turns web visitors into SIP calls is a toll-fraud machine if it will dial any
URI through any server a browser names, so both the server a session uses (domain and
outbound proxy) and every destination URI are checked here, in one place.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount, escape_user, uri_host

#: A dialable user part: digits and the characters people type in numbers, or a SIP user.
_USER = re.compile(r"^[A-Za-z0-9+*#._~!'()\-]{1,64}$")
_URI = re.compile(r"^(sips?|tel):(?:(?P<user>[^@;?]+)@)?(?P<host>\[[^\]]+\]|[^:;?>]+)?", re.I)


class Policy:
    """Checks accounts and destinations against ``allowed_domains`` (case-insensitive)."""

    def __init__(
        self,
        allowed_domains: Iterable[str],
        testlines_uri: str | Callable[[str], str] | None = None,
    ) -> None:
        self.allowed = {d.lower().strip("[]") for d in allowed_domains}
        #: the built-in test lines' URI for a line name — a callable (the lines pick their port
        #: at start) or a ``sip:{user}@host:port`` template — or None when they are disabled
        self.testlines_uri = testlines_uri

    def allows_host(self, host: str) -> bool:
        return host.lower().strip("[]") in self.allowed

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
        if account.outbound_proxy and not self.allows_host(account.outbound_proxy):
            raise CallError(Codes.FORBIDDEN, f"Forbidden destination: proxy {account.outbound_proxy}"
                            " is not in policy.allowed_domains", "sipOutboundProxy")

    def request_uri(self, account: SipAccount | None, callee: str, field: str = "callee") -> str:
        """The Request-URI for ``callee``: a user part goes to the account's domain (or the
        test lines); a full sip:/sips:/tel: URI must name an allowed host."""
        callee = callee.strip()
        if not callee:
            raise CallError(Codes.INVALID, "callee is empty", field)
        if account is None:
            assert self.testlines_uri is not None  # check_account ran at connect
            if callee not in ("echo", "tone"):
                raise CallError(Codes.FORBIDDEN, "Forbidden destination: without a SIP domain "
                                "only the test lines echo and tone can be called", field)
            if callable(self.testlines_uri):
                return self.testlines_uri(callee)
            return self.testlines_uri.format(user=callee)
        match = _URI.match(callee)
        if match:
            scheme = match.group(1).lower()
            if scheme == "tel":
                # A tel: number is dialled through the account's own server.
                number = callee.split(":", 1)[1].split(";", 1)[0]
                return f"sip:{escape_user(number)}@{uri_host(account.domain)};user=phone"
            host = (match.group("host") or "").strip("[]")
            if not self.allows_host(host):
                raise CallError(Codes.FORBIDDEN, f"Forbidden destination: {host} is not in "
                                "policy.allowed_domains", field)
            return callee
        if not _USER.match(callee):
            raise CallError(Codes.INVALID, "callee must be a number, a user name or a "
                            "sip:/sips:/tel: URI", field)
        return f"sip:{escape_user(callee)}@{uri_host(account.domain)}"
