"""The Twisted side of RFC 3263 server location: asks :mod:`twisted.names` the questions a
:class:`~wcsgw.sip.locate.Location` hands out, and hands the located targets to the endpoint's
transaction layer and its trust checks.

Kept thin on purpose: which records to ask for, their order, TTLs and failover are decided in
:mod:`wcsgw.sip.locate` and :mod:`wcsgw.sip.transaction.failover`.  The resolver is
``twisted.names.client.createResolver`` — the system's ``/etc/resolv.conf`` unless
``[sip] dns_servers`` names servers (tests point it at their own authoritative server).
"""

from __future__ import annotations

import random
import socket
from typing import Any, Callable, Sequence

from twisted.internet import defer
from twisted.logger import Logger
from twisted.names import client, dns
from twisted.python.failure import Failure

from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import AccountRegistration, SipEndpoint
from wcsgw.sip.locate import (
    NEGATIVE_TTL,
    Address,
    Locations,
    Naptr,
    Question,
    Record,
    RecordCache,
    Srv,
    location_for,
)
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target

log = Logger(namespace="wcsgw.sip.dnslocator")

_QUERIES = {"NAPTR": "lookupNamingAuthorityPointer", "SRV": "lookupService",
            "A": "lookupAddress", "AAAA": "lookupIPV6Address"}


#: Per-try timeouts of a DNS query (9 s in all, twisted.names' default is 60 s): a request
#: waits unsent while its name is located, and a SIP transaction gives up after 32 s.
TIMEOUTS = (1, 3, 5)


def parse_server(text: str) -> tuple[str, int]:
    """``"127.0.0.1"``, ``"127.0.0.1:5353"`` or ``"[::1]:53"`` -> (host, port); ValueError."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host, port = text, 53
    if not host or not 0 < port < 65536:
        raise ValueError(text)
    return host, port


def make_resolver(servers: Sequence[str], reactor: Any = None) -> Any:
    """A twisted.names resolver asking ``servers`` (empty: those of /etc/resolv.conf); no
    hosts file: RFC 3263 records only come from DNS."""
    if servers:
        return client.Resolver(  # type: ignore[no-untyped-call]
            servers=[parse_server(s) for s in servers], timeout=TIMEOUTS, reactor=reactor)
    return client.Resolver(  # type: ignore[no-untyped-call]
        resolv="/etc/resolv.conf", timeout=TIMEOUTS, reactor=reactor)


def _records(rtype: str, answers: Sequence[dns.RRHeader]) -> list[Record]:
    out: list[Record] = []
    for rr in answers:
        payload: Any = rr.payload
        if rtype == "NAPTR" and rr.type == dns.NAPTR:
            out.append(Naptr(payload.order, payload.preference, payload.flags.string.decode("ascii"),
                             payload.service.string.decode("ascii"), str(payload.replacement), rr.ttl))
        elif rtype == "SRV" and rr.type == dns.SRV:
            out.append(Srv(payload.priority, payload.weight, payload.port, str(payload.target),
                           rr.ttl))
        elif rtype == "A" and rr.type == dns.A:
            out.append(Address(payload.dottedQuad(), rr.ttl))
        elif rtype == "AAAA" and rr.type == dns.AAAA:
            out.append(Address(socket.inet_ntop(socket.AF_INET6, payload.address), rr.ttl))
    return out


class DnsLocator:
    """Locates the named targets the endpoint's transaction layer waits for."""

    def __init__(self, endpoint: SipEndpoint, resolver: Any, clock: Any,
                 rng: random.Random | None = None,
                 supported: Sequence[str] = ("UDP", "TCP")) -> None:
        self.endpoint = endpoint
        self.resolver = resolver
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.supported = tuple(supported)
        self.cache = RecordCache()
        self.locations = Locations(wanted=self._wanted)
        self._busy: set[Target] = set()
        endpoint.layer.failover.locations = self.locations

    def _wanted(self) -> None:
        # Called from inside the layer: start the look-ups on the next turn, not re-entrantly.
        self.clock.callLater(0, self._start)

    def _start(self) -> None:
        for named in self.locations.take_wanted():
            if named not in self._busy:
                self._busy.add(named)
                self.locate(named).addBoth(self._done, named)

    def _done(self, result: object, named: Target) -> None:
        self._busy.discard(named)
        if isinstance(result, Failure):
            # Never leave the requests waiting for this name: they go by name, as without
            # location, and the name is asked again after the negative TTL.
            log.failure("locating {host}", result, host=named.host)
            now = self.clock.seconds()
            self.locations.learn(named, [], NEGATIVE_TTL, now)
            self.endpoint.layer.located(now)
            if self.endpoint.wake is not None:
                self.endpoint.wake()

    @defer.inlineCallbacks
    def locate(self, named: Target) -> Any:
        location = location_for(named, self.supported, self.rng)
        while not location.done:
            questions = location.questions()
            if not questions:
                break
            answers = yield defer.gatherResults([self._ask(q) for q in questions])
            for question, records in zip(questions, answers):
                location.answer(question, records)
        now = self.clock.seconds()
        self.locations.learn(named, location.targets, location.ttl, now)
        for target in location.targets:  # the trust checks: these addresses are this name's
            self.endpoint.addresses.learn(named.host, target.host)
        if not location.targets:
            log.info("no RFC 3263 targets for {host}: sending by name", host=named.host)
        self.endpoint.layer.located(now)
        if self.endpoint.wake is not None:
            self.endpoint.wake()
        return location.targets

    @defer.inlineCallbacks
    def _ask(self, question: Question) -> Any:
        now = self.clock.seconds()
        cached = self.cache.get(question, now)
        if cached is not None:
            return cached
        try:
            answers, _auth, _extra = yield getattr(self.resolver, _QUERIES[question.rtype])(
                question.name)
            records = _records(question.rtype, answers)
        except Exception as exc:  # NXDOMAIN, no data, a timeout: no records
            log.debug("DNS {rtype} {name}: {exc}", rtype=question.rtype, name=question.name,
                      exc=exc)
            records = []
        self.cache.put(question, records, self.clock.seconds())
        return records


class LocatingSipService(SipService):
    """A :class:`SipService` whose endpoint locates names by RFC 3263 (``[sip]
    dns_location``): the locator is in place before the first REGISTER leaves."""

    locator: DnsLocator | None = None

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()
        self._locator()

    def register(self, account: SipAccount, listener: Callable[[object], None] | None = None,
                 contact_user: str | None = None) -> AccountRegistration:
        self._locator()
        return super().register(account, listener, contact_user)

    def _locator(self) -> None:
        endpoint = self.endpoint
        if endpoint is not None and (self.locator is None or self.locator.endpoint is not endpoint):
            resolver = make_resolver(getattr(self.settings, "dns_servers", ()), self.reactor)
            self.locator = DnsLocator(endpoint, resolver, self.reactor)
