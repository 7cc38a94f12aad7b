"""Server-held SIP accounts: the ``[[accounts]]`` with a ``name``, which sessions and REST
calls use by that name so that the SIP password never leaves the server.

Why a book of its own: a session bound to a shared account must not register it again (the
SIP service registers every ``[[accounts]]`` entry once, at start, with the login as its
contact's user part), must never carry the password toward the browser, and must be found by
the name a hook, an app's default or a REST caller gives — with a refusal that says which
names exist when the one given does not.  The book only looks accounts up; binding a session
to one is :meth:`CallGateway.connect_named <wcsgw.calls.gateway.CallGateway.connect_named>`.

Incoming calls on a shared account (an INVITE to its registered contact, whose user part is
the account's login) are not offered to the sessions bound to it by this layer: which browser
takes such a call is the backend's decision (the hooks' ``incomingCall`` reply names the
session); :meth:`AccountBook.for_contact` tells that code which account an INVITE is for.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount, escape_user

__all__ = ["AccountBook"]


class AccountBook:
    """The server-held accounts by name (``[[accounts]] name``); entries without a name are
    trunk registrations only, not usable by sessions or REST."""

    def __init__(self, accounts: Iterable[tuple[str, SipAccount]] = ()) -> None:
        self._by_name: dict[str, SipAccount] = {}
        for name, account in accounts:
            if name in self._by_name:
                raise ValueError(f"two server-held accounts are named {name!r}")
            self._by_name[name] = account

    def named(self, name: str, field: str = "account") -> SipAccount:
        """The account called ``name``; :class:`CallError` (INVALID, naming ``field``) when
        there is none, listing the names there are (names are not secret; the message
        never shows a login or a password)."""
        account = self._by_name.get(name)
        if account is None:
            known = ", ".join(sorted(self._by_name)) or "none are configured"
            raise CallError(Codes.INVALID, f"no server-held account named {str(name)[:64]!r} "
                            f"([[accounts]] name; known: {known})", field)
        return account

    def name_of(self, account: SipAccount | None) -> str | None:
        """The name of a server-held account (None for any other account, e.g. one a
        browser brought)."""
        for name, held in self._by_name.items():
            if held is account:
                return name
        return None

    def for_contact(self, contact_user: str) -> str | None:
        """The name of the account whose shared registration has this contact user part
        (the account's login, as the SIP service registered it), or None."""
        for name, account in self._by_name.items():
            if contact_user in (account.login, escape_user(account.login)):
                return name
        return None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)
