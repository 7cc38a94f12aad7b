"""RFC 3263 targets for client transactions: where a request to a host name goes, and the
next target after a timeout or a transport error (RFC 3263 §4.3, RFC 3261 §8.1.3.1).

A request to a *name* waits (unsent) until its :class:`~wcsgw.sip.locate.Locations` entry is
known, then goes to the first located target.  When its transaction times out or cannot be
sent before any response came, it is not reported to the TU: the request leaves again with a
fresh branch — a new transaction on the wire, with fresh timers — to the next target, and
only when every target failed does the TU hear of the failure.  The TU keeps one transaction
object throughout, so nothing above the layer knows failover happened.  A CANCEL goes where
its INVITE went (§9.1).  Without ``Locations`` (the default) names are sent as they are and
the transport adapter resolves them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import attr
from twisted.logger import Logger

from wcsgw.sip.ids import new_branch
from wcsgw.sip.locate import Locations
from wcsgw.sip.parser import serialize
from wcsgw.sip.target import Target
from wcsgw.sip.transaction.client import ClientTransaction
from wcsgw.sip.transaction.machine import State
from wcsgw.sip.trust import normalize_ip

if TYPE_CHECKING:
    from wcsgw.sip.transaction.layer import TransactionLayer

log = Logger(namespace="wcsgw.sip.failover")

_VIA_TRANSPORT = re.compile(r"^(\s*SIP\s*/\s*2\.0\s*/\s*)[A-Za-z]+", re.I)
_VIA_BRANCH = re.compile(r";\s*branch\s*=\s*[^;,\s]*", re.I)


class Failover:
    """The located targets each client transaction has left, and the ones still waiting."""

    def __init__(self, layer: "TransactionLayer", locations: Locations | None) -> None:
        self.layer = layer
        self.locations = locations
        #: the time of the layer's current input (a timeout ends a transaction without one)
        self.now = 0.0
        self._left: dict[ClientTransaction, list[Target]] = {}
        self._failing: set[ClientTransaction] = set()
        self._waiting: list[tuple[ClientTransaction, Target]] = []
        #: requests sent again to a next target so far (for tests and operators' debugging)
        self.retries = 0

    def begin(self, txn: ClientTransaction, now: float) -> None:
        """Launch ``txn`` at its first target, or keep it until its name is located."""
        self.now = now
        named = txn.target
        if txn.request.method == "CANCEL":
            invite = self.layer._clients.get((txn.key[0], "INVITE"))
            if invite is not None:
                txn.target = invite.target  # §9.1: where the INVITE went
        elif (self.locations is not None and named.connection is None
                and normalize_ip(named.host) is None):
            targets = self.locations.get(named, now)
            if targets is None:
                self._waiting.append((txn, named))
                return
            self._aim(txn, _named(targets, named))
        self.layer.launch(txn, now)

    def located(self, now: float) -> None:
        assert self.locations is not None
        self.now = now
        waiting, self._waiting = self._waiting, []
        for txn, named in waiting:
            if txn.state is State.TERMINATED:
                continue  # abandoned by its TU while it waited: never sent
            targets = self.locations.get(named, now)
            if targets is None:
                self._waiting.append((txn, named))
            else:
                self._aim(txn, _named(targets, named))
                self.layer.launch(txn, now)

    def failed(self, txn: ClientTransaction) -> bool:
        """Whether the failure of ``txn`` is taken care of here (a target is left, and no
        response came yet: a peer that answered was reached)."""
        if self._left.get(txn) and txn.state is txn._INITIAL:
            self._failing.add(txn)
            return True
        return False

    def retry(self, txn: ClientTransaction) -> bool:
        """Instead of terminating ``txn`` after :meth:`failed`: re-send it to the next target."""
        if txn not in self._failing:
            self._left.pop(txn, None)
            return False
        self._failing.discard(txn)
        layer = self.layer
        layer.timer_queue.cancel_all(txn)
        if layer._clients.get(txn.key) is txn:
            del layer._clients[txn.key]
        peers = layer._by_target.get(txn.target)
        if peers is not None:
            peers.discard(txn)
            if not peers:
                del layer._by_target[txn.target]
        failed = txn.target
        self._aim(txn, self._left.pop(txn))
        self.retries += 1
        log.info("{method} to {failed} failed: trying {target} (RFC 3263 §4.3)",
                 method=txn.request.method, failed=_show(failed), target=_show(txn.target))
        txn.state = txn._INITIAL
        layer.launch(txn, self.now)
        return True

    def _aim(self, txn: ClientTransaction, targets: list[Target]) -> None:
        """Point ``txn`` (its request, key and bytes) at ``targets[0]`` with a fresh branch."""
        if not targets:
            return  # nothing located: send by name, as without location
        target, rest = targets[0], targets[1:]
        if rest:
            self._left[txn] = rest
        else:
            self._left.pop(txn, None)
        branch = new_branch()
        headers = txn.request.headers
        vias = headers.get_all("Via")
        top = _VIA_TRANSPORT.sub(lambda m: m.group(1) + target.transport, vias[0], count=1)
        top = _VIA_BRANCH.sub(f";branch={branch}", top, count=1)
        headers.remove_first("Via")
        headers.prepend("Via", top)
        txn.key = (branch, txn.key[1])
        txn.target = target
        txn.wire = serialize(txn.request)


def _show(target: Target) -> str:
    return f"{target.transport} {target.host}:{target.port}"


def _named(targets: list[Target], named: Target) -> list[Target]:
    """The located ``targets`` remembering the name they came from: the transport checks a TLS
    server's certificate against it (RFC 5922 §4), not against the address."""
    return [attr.evolve(t, name=named.host) for t in targets]
