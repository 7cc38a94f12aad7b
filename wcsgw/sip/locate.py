"""RFC 3263 server location, sans-IO: DNS records in, ordered targets out.

A request to a host *name* goes to whatever the name's NAPTR, SRV and A/AAAA records say,
in the order they say, and a transaction that times out or cannot be sent tries the next
one (RFC 3263 §4.3, RFC 3261 §8.1.3.1).  The look-ups are I/O, so this module only holds the
decisions: which question to ask next (:class:`Location`), the order of SRV records (RFC 2782
weighted random, with an injected random source so tests can seed it), the records' TTLs on
an injected clock (:class:`RecordCache`), and the located targets per named target that the
transaction layer reads (:class:`Locations`).  The Twisted adapter that asks the questions is
:mod:`wcsgw.sip.dnslocator`.
"""

from __future__ import annotations

import random
from typing import Callable, Iterable, Sequence, Union

import attr

from wcsgw.sip.target import Target, default_port
from wcsgw.sip.trust import normalize_ip

__all__ = ["Address", "Location", "Locations", "Naptr", "Question", "RecordCache", "Srv",
           "naptr_choices", "order_srv"]

#: RFC 3263 §4.1 / RFC 3261 §26: the NAPTR services a SIP client understands.
SERVICES: dict[str, str] = {"SIP+D2U": "UDP", "SIP+D2T": "TCP", "SIPS+D2T": "TLS"}
#: RFC 3263 §4.1: the SRV owner name prefix per transport, when there is no NAPTR.
SRV_PREFIX: dict[str, str] = {"UDP": "_sip._udp.", "TCP": "_sip._tcp.", "TLS": "_sips._tcp."}
#: How long a name without usable records is remembered (no SOA minimum at hand).
NEGATIVE_TTL = 30


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str
    ttl: int = 0


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str
    ttl: int = 0


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Address:
    address: str
    ttl: int = 0


Record = Union[Naptr, Srv, Address]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Question:
    name: str
    rtype: str  # "NAPTR" | "SRV" | "A" | "AAAA"


def _name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def naptr_choices(records: Iterable[Naptr], supported: Sequence[str]) -> list[tuple[str, str]]:
    """(transport, SRV name) in NAPTR order (order, then preference, RFC 3403 §4.1), only
    the terminal "s" records for services we support (RFC 3263 §4.1)."""
    usable = [r for r in records if r.flags.lower() == "s"
              and SERVICES.get(r.service.upper()) in supported]
    usable.sort(key=lambda r: (r.order, r.preference))
    return [(SERVICES[r.service.upper()], _name(r.replacement)) for r in usable]


def order_srv(records: Iterable[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782 order: lowest priority first; within a priority, weighted random selection
    (zero weights first in the running sum, so they are picked rarely but not never).  A
    single target "." means the service is decidedly not available: no targets."""
    records = list(records)
    if len(records) == 1 and _name(records[0].target) == "":
        return []
    out: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight > 0)
        while group:
            total = sum(r.weight for r in group)
            # RFC 2782 draws from 0..total so zero weights get their small chance; with no
            # zero weight left, 1..total keeps the odds exactly proportional to the weights.
            pick = rng.randint(0 if group[0].weight == 0 else 1, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    out.append(group.pop(index))
                    break
    return out


class RecordCache:
    """DNS answers by question until their TTL runs out on the caller's clock (an empty
    answer is kept :data:`NEGATIVE_TTL` seconds, so a missing NAPTR is not asked per call)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._entries: dict[Question, tuple[float, list[Record]]] = {}
        self._max = max_entries

    def get(self, question: Question, now: float) -> list[Record] | None:
        entry = self._entries.get(question)
        if entry is None or entry[0] <= now:
            self._entries.pop(question, None)
            return None
        return list(entry[1])

    def put(self, question: Question, records: Sequence[Record], now: float) -> None:
        ttl = min((r.ttl for r in records), default=NEGATIVE_TTL)
        self._entries.pop(question, None)
        self._entries[question] = (now + ttl, list(records))
        while len(self._entries) > self._max:
            del self._entries[next(iter(self._entries))]


class Location:
    """One RFC 3263 §4 look-up: :meth:`questions` out, :meth:`answer` in, until
    :attr:`done`; then :attr:`targets` (empty when the name locates nothing) and
    :attr:`ttl` (the shortest TTL of the records used)."""

    def __init__(self, host: str, port: int | None, transport: str | None,
                 supported: Sequence[str] = ("UDP", "TCP"),
                 rng: random.Random | None = None) -> None:
        self.host = _name(host)
        self.port = port
        self.supported = tuple(supported)
        self.targets: list[Target] = []
        self.ttl = NEGATIVE_TTL
        self._rng = rng or random.Random()
        self._asked: list[Question] = []
        self._open: set[Question] = set()
        self._answers: dict[Question, list[Record]] = {}
        self._choices: list[tuple[str, str]] = []  # NAPTR: (transport, SRV name) left
        self._srv: list[Srv] = []
        self._transport = transport.upper() if transport else None
        self.done = False
        self._ttl_fresh = True  # no record used yet: the first one sets the TTL
        literal = normalize_ip(host)
        if literal is not None:  # §4.1/§4.2: numeric hosts need no DNS at all
            chosen = self._transport or "UDP"
            self._finish([Target(chosen, literal, port or default_port(chosen))])
        elif port is not None:  # §4.2: an explicit port skips NAPTR and SRV
            self._transport = self._transport or "UDP"
            self._ask_addresses()
        elif self._transport is not None:  # §4.1: the transport is given: SRV for it
            self._ask(Question(SRV_PREFIX[self._transport] + self.host, "SRV"))
        else:
            self._ask(Question(self.host, "NAPTR"))

    def questions(self) -> list[Question]:
        """The questions to ask now (each handed out once)."""
        out, self._asked = self._asked, []
        return out

    def answer(self, question: Question, records: Sequence[Record]) -> None:
        """The records answering ``question`` (empty for NXDOMAIN, no data or a failure)."""
        if question not in self._open or self.done:
            return
        self._open.discard(question)
        self._answers[question] = list(records)
        if records:
            used = min(r.ttl for r in records)
            self.ttl = used if self._ttl_fresh else min(self.ttl, used)
            self._ttl_fresh = False
        if question.rtype == "NAPTR":
            self._choices = naptr_choices((r for r in records if isinstance(r, Naptr)),
                                          self.supported)
            if self._choices:
                self._next_choice()
            else:  # §4.1: no NAPTR: SRV for UDP (our first supported transport)
                self._transport = self.supported[0]
                self._ask(Question(SRV_PREFIX[self._transport] + self.host, "SRV"))
        elif question.rtype == "SRV":
            self._srv = order_srv((r for r in records if isinstance(r, Srv)), self._rng)
            if self._srv:
                for name in dict.fromkeys(_name(r.target) for r in self._srv):
                    self._ask(Question(name, "A"))
                    self._ask(Question(name, "AAAA"))
            elif self._choices:
                self._next_choice()
            else:  # §4.2: no SRV: the host's own addresses at the transport's default port
                self._ask_addresses()
        if not self._open and not self._asked and question.rtype in ("A", "AAAA"):
            self._collect()

    def _next_choice(self) -> None:
        self._transport, srv_name = self._choices.pop(0)
        self._ask(Question(srv_name, "SRV"))

    def _ask(self, question: Question) -> None:
        if question not in self._open:
            self._open.add(question)
            self._asked.append(question)

    def _ask_addresses(self) -> None:
        self._srv = []
        self._ask(Question(self.host, "A"))
        self._ask(Question(self.host, "AAAA"))

    def _addresses(self, name: str) -> list[str]:
        found: list[str] = []
        for rtype in ("A", "AAAA"):  # IPv4 first: the gateway's default listening family
            for record in self._answers.get(Question(name, rtype), ()):
                if isinstance(record, Address):
                    found.append(record.address)
        return found

    def _collect(self) -> None:
        transport = self._transport or "UDP"
        targets: list[Target] = []
        if self._srv:
            for srv in self._srv:
                targets += [Target(transport, a, srv.port) for a in self._addresses(_name(srv.target))]
        else:
            port = self.port or default_port(transport)
            targets = [Target(transport, a, port) for a in self._addresses(self.host)]
        self._finish(list(dict.fromkeys(targets)))

    def _finish(self, targets: list[Target]) -> None:
        self.targets = targets
        self.done = True


class Locations:
    """The located targets of each named target, until their TTL runs out; what the
    transaction layer consults before it sends (:mod:`wcsgw.sip.transaction.layer`).

    A named target whose port is its transport's default is located as if it named no port
    and (for UDP) no transport: the account model cannot tell "5060 over UDP" from "nothing
    said", and RFC 3263's NAPTR/SRV are the point of turning location on."""

    def __init__(self, wanted: Callable[[], None] | None = None) -> None:
        self._on_wanted = wanted
        self._known: dict[Target, tuple[float, list[Target]]] = {}
        self._wanted: dict[Target, None] = {}

    def get(self, named: Target, now: float) -> list[Target] | None:
        """The targets for ``named`` in order ([] when it located nothing: send by name),
        or None when not known (yet, or any more): then it is wanted."""
        key = _key(named)
        entry = self._known.get(key)
        if entry is not None and entry[0] > now:
            return list(entry[1])
        self._known.pop(key, None)
        if key not in self._wanted:
            self._wanted[key] = None
            if self._on_wanted is not None:
                self._on_wanted()
        return None

    def take_wanted(self) -> list[Target]:
        out = list(self._wanted)
        self._wanted.clear()
        return out

    def learn(self, named: Target, targets: Sequence[Target], ttl: float, now: float) -> None:
        self._known[_key(named)] = (now + ttl, list(targets))


def _key(named: Target) -> Target:
    return Target(named.transport, _name(named.host), named.port)


def location_for(named: Target, supported: Sequence[str] = ("UDP", "TCP"),
                 rng: random.Random | None = None) -> Location:
    """The :class:`Location` for a target as the SIP core names it (see :class:`Locations`
    for how a default port and UDP read)."""
    explicit_port = None if named.port == default_port(named.transport) else named.port
    transport: str | None = named.transport
    if transport == "UDP" and explicit_port is None:
        transport = None
    return Location(named.host, explicit_port, transport, supported, rng)
