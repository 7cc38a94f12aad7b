"""The server-held accounts as trunks: whether each is up (OPTIONS keep-alive) and who the
gateway says is calling on it (RFC 3325 caller identity).

Why here, beside the call gateway: a call routed to a trunk that stopped answering must be
refused at once (1004, its message naming the account and what the last probe got) instead of
waiting out Timer B, and the identity a trunk asserts must be the operator's
(``[[accounts]] asserted_identity`` / ``privacy``), added after the browser's ``sipHeaders``
passed :meth:`Policy.outgoing_headers <wcsgw.calls.policy.Policy.outgoing_headers>`, which
never lets a client name those headers.  There is no failover: a dial plan route names one
account, and a call on a down one is refused (docs/configuration.md).

The up/down machine and the OPTIONS sender are :mod:`wcsgw.sip.health`; :class:`TrunkService`
starts them on the SIP endpoint once it is up and stops them with the gateway.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Iterator

import attr
from twisted.application.service import Service
from twisted.logger import Logger

from wcsgw.calls.errors import CallError, Codes
from wcsgw.sip.account import SipAccount
from wcsgw.sip.health import TrunkChange, TrunkHealth, TrunkProbes

__all__ = ["Trunk", "TrunkService", "Trunks"]

log = Logger(namespace="wcsgw.calls")

#: failures in a row that mark a trunk down (``[[accounts]] options_failures`` default)
DEFAULT_FAILURES = 3


@attr.s(auto_attribs=True, eq=False)
class Trunk:
    """One server-held account's trunk settings and, when probed, its health."""

    name: str
    account: SipAccount
    #: RFC 3325 headers every call on this account carries (set by the operator only)
    identity: list[tuple[str, str]] = attr.ib(factory=list)
    #: None: not probed (``options_interval = 0``), counted as up
    health: TrunkHealth | None = None

    @property
    def up(self) -> bool:
        return self.health is None or self.health.up


class Trunks:
    """The trunks by account name (only named accounts: the ones calls can be routed to)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Trunk] = {}
        #: called with (name, TrunkChange) on each up/down change (logging, tests)
        self.observers: list[Callable[[str, TrunkChange], None]] = [_log_change]

    def add(self, name: str, account: SipAccount, *, options_interval: float = 0,
            options_failures: int = DEFAULT_FAILURES, asserted_identity: str = "",
            privacy: str = "") -> Trunk:
        identity = []
        if asserted_identity:
            uri = asserted_identity
            identity.append(("P-Asserted-Identity", uri if uri.startswith("<") else f"<{uri}>"))
        if privacy:
            identity.append(("Privacy", privacy))
        health = TrunkHealth(options_interval, options_failures) if options_interval > 0 else None
        trunk = Trunk(name, account, identity, health)
        self._by_name[name] = trunk
        return trunk

    @classmethod
    def from_config(cls, settings: Iterable[Any], accounts: Iterable[SipAccount]) -> Trunks:
        """``[[accounts]]`` entries with a name, beside the SipAccounts the SIP service made
        of them (the same objects the AccountBook holds)."""
        trunks = cls()
        for entry, account in zip(settings, accounts):
            if entry.name:
                trunks.add(entry.name, account, options_interval=entry.options_interval,
                           options_failures=entry.options_failures,
                           asserted_identity=entry.asserted_identity, privacy=entry.privacy)
        return trunks

    def __iter__(self) -> Iterator[Trunk]:
        return iter(list(self._by_name.values()))

    def get(self, name: str | None) -> Trunk | None:
        return self._by_name.get(name) if name is not None else None

    def probed(self) -> list[Trunk]:
        """The trunks with an OPTIONS keep-alive (for /metrics ``wcsgw_trunk_up``)."""
        return [t for t in self._by_name.values() if t.health is not None]

    def identity(self, name: str | None) -> dict[str, str]:
        """The RFC 3325 headers of the account ``name`` (none for other accounts)."""
        trunk = self.get(name)
        return dict(trunk.identity) if trunk is not None else {}

    def outgoing(self, name: str | None, headers: dict[str, str]) -> dict[str, str]:
        """The INVITE's extra headers for a call on the account ``name`` (None: not a
        server-held account): :class:`CallError` when that trunk is down, else ``headers``
        (already checked by the policy) plus the trunk's identity headers."""
        trunk = self.get(name)
        if trunk is None:
            return headers
        if not trunk.up:
            assert trunk.health is not None
            raise CallError(Codes.FORBIDDEN, f"Trunk down: account {name!r} does not answer "
                            f"OPTIONS ({trunk.health.last_reason})")
        return {**headers, **self.identity(name)}


class TrunkService(Service):
    """Probes every trunk with ``options_interval`` on the SIP service's endpoint (started
    after the SIP service, which makes the endpoint); each change goes to the observers."""

    def __init__(self, trunks: Trunks, sip: Any) -> None:
        self.trunks = trunks
        self.sip = sip
        self.probes: TrunkProbes | None = None

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]
        probed = self.trunks.probed()
        endpoint = self.sip.endpoint
        if not probed or endpoint is None:
            return
        self.probes = TrunkProbes(endpoint.send_request, endpoint.deadlines)
        now = self.sip.reactor.seconds()
        for trunk in probed:
            assert trunk.health is not None
            self.probes.watch(trunk.account, trunk.health, now,
                              functools.partial(self._changed, trunk.name))

    def _changed(self, name: str, change: TrunkChange) -> None:
        for observer in list(self.trunks.observers):
            observer(name, change)

    def stopService(self) -> Any:  # noqa: N802 (Twisted API)
        if self.probes is not None:
            self.probes.stop()
            self.probes = None
        return super().stopService()  # type: ignore[no-untyped-call]


def _log_change(name: str, change: TrunkChange) -> None:
    if change.up:
        log.info("trunk {name} is up again ({reason})", name=name, reason=change.reason)
    else:
        log.warn("trunk {name} is down ({reason}): calls on it are refused until it answers "
                 "OPTIONS", name=name, reason=change.reason)
