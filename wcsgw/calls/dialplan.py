"""The dial plan: what a typed number means (E.164), which account carries it, how it is
rewritten for the next hop (docs/dial-plan.md).

Why a module of its own, and pure: a number typed in a browser reaches the phone network, so
what it is normalised to, which ``[[routes]]`` entry takes it and what is finally sent must be
decidable from the number alone and tested as a table — no SIP, no sockets, no clock.  The
:class:`~wcsgw.calls.policy.Policy` calls it where a callee becomes a Request-URI and applies
its number rules (``allowed_numbers``/``denied_numbers``) to the *normalised* number, so
``0030 123``, ``+30-123`` and ``tel:+30123`` are one number to the rules.

Normalisation (only with ``[dialplan] country_code`` set): visual separators are dropped, the
international prefix (``00``) becomes ``+``, the national prefix (``0``) becomes ``+`` and the
country code; anything else (an extension, a service code with ``*``/``#``) stays as typed.
Routes are tried in order; the first that matches a number takes it.  A route naming an
account is taken only by calls that may use server-held accounts (a session bound to one, or
the operator's REST calls): a browser that brought its own credentials never gets another
account's by typing a number.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

import attrs

from wcsgw.sip.account import SipAccount

__all__ = ["DialPlan", "DialRefusal", "Route", "Routed", "tel_number"]

_VISUAL = re.compile(r"[-(). ]")
_DIGITS = re.compile(r"[0-9]+")
_GLOBAL = re.compile(r"\+[0-9]+")


class DialRefusal(ValueError):
    """A number the dial plan will not carry; the message names the rule (a route or a key)."""


@attrs.frozen
class Route:
    """One ``[[routes]]`` entry, its account resolved.  ``where`` is how refusals name it."""

    where: str
    prefix: str = ""
    pattern: re.Pattern[str] | None = None
    account_name: str = ""
    account: SipAccount | None = None
    strip: int = 0
    prepend: str = ""
    user_phone: bool = False
    refuse: bool = False

    def matches(self, number: str) -> bool:
        if self.pattern is not None:
            return self.pattern.fullmatch(number) is not None
        return number.startswith(self.prefix)

    def describe(self) -> str:
        rule = f"pattern {self.pattern.pattern}" if self.pattern is not None else \
            f"prefix {self.prefix or '(any)'}"
        return f"{self.where} ({rule})"


@attrs.frozen
class Routed:
    """What a number becomes: the user part to send, the account to send it on (None: the
    caller's own) and whether the Request-URI says ``user=phone``."""

    user: str
    account: SipAccount | None = None
    user_phone: bool = False
    route: Route | None = None


@attrs.frozen
class DialPlan:
    """``[dialplan]`` and ``[[routes]]``.  ``DialPlan()`` changes nothing (today's
    behaviour): no normalisation, no routes."""

    country_code: str = ""
    national_prefix: str = "0"
    international_prefix: str = "00"
    routes: tuple[Route, ...] = ()
    #: "own": a number no route takes goes out on the caller's account; "refuse": refused
    unrouted: str = "own"

    @classmethod
    def from_settings(cls, section: Any, routes: Iterable[Any],
                      account: Callable[[str], SipAccount]) -> DialPlan:
        """``[dialplan]`` and ``[[routes]]`` (checked by wcsgw.config) with each route's
        account looked up by name (``account``: :meth:`AccountBook.named`)."""
        table = tuple(
            Route(f"routes[{i}]", prefix=r.prefix, pattern=re.compile(r.pattern) if r.pattern
                  else None, account_name=r.account,
                  account=account(r.account) if r.account else None, strip=r.strip,
                  prepend=r.prepend, user_phone=r.user_phone, refuse=r.refuse)
            for i, r in enumerate(routes))
        return cls(section.country_code, section.national_prefix, section.international_prefix,
                   table, section.unrouted)

    @property
    def active(self) -> bool:
        return bool(self.country_code or self.routes or self.unrouted != "own")

    def normalise(self, number: str) -> str:
        """The number in E.164 (``+<country><national>``) when it is one; otherwise as typed
        without its visual separators."""
        number = _VISUAL.sub("", number)
        if not self.country_code or not _DIGITS.fullmatch(number):
            return number
        intl, national = self.international_prefix, self.national_prefix
        if intl and number.startswith(intl):  # the prefix alone is no number: as typed
            return "+" + number[len(intl):] if len(number) > len(intl) else number
        if national and number.startswith(national) and len(number) > len(national):
            return f"+{self.country_code}{number[len(national):]}"
        return number

    def route(self, number: str, *, held: bool) -> Routed:
        """Where the normalised ``number`` goes.  ``held``: the call may use server-held
        accounts.  :class:`DialRefusal` naming the route (``refuse = true``) or
        ``dialplan.unrouted``."""
        for route in self.routes:
            if route.account is not None and not held:
                continue  # another account's credentials: not for a browser's own account
            if not route.matches(number):
                continue
            if route.refuse:
                raise DialRefusal(f"{number} is refused by {route.describe()}")
            user = route.prepend + number[route.strip:]
            if not user:
                raise DialRefusal(f"{number} is empty once {route.describe()} strips "
                                  f"{route.strip}")
            return Routed(user, route.account, route.user_phone, route)
        if self.unrouted == "refuse":
            raise DialRefusal(f"{number} matches no [[routes]] entry (dialplan.unrouted = "
                              "\"refuse\")")
        return Routed(number)


def tel_number(number: str, params: dict[str, str | None]) -> str:
    """The number of a ``tel:`` URI (RFC 3966): a global number as it is; a local one with a
    global ``phone-context`` (``tel:863-1234;phone-context=+1-914-555``) prefixed by it.
    Other parameters (``ext``, ``isub``, a domain context) would dial what no rule checked:
    :class:`DialRefusal`."""
    others = [name for name in params if name != "phone-context"]
    if others:
        raise DialRefusal(f"tel: parameters ({', '.join(others)}) are not accepted")
    number = _VISUAL.sub("", number)
    context = params.get("phone-context")
    if context is None:
        return number
    context = _VISUAL.sub("", context)
    if number.startswith("+") or not _GLOBAL.fullmatch(context):
        raise DialRefusal("tel: phone-context must be a global number prefix (+digits) "
                          "for a local number")
    return context + number
