"""Trunk health: OPTIONS keep-alive to an account's next hop, and whether that hop is up.

Why: a carrier trunk or PBX that stopped answering should stop getting calls at once, not after
every caller has waited out Timer B.  :class:`TrunkHealth` is the sans-IO up/down machine of
one trunk (``now`` in, the instant of its next probe and its changes out; it reads no clock);
:class:`TrunkProbes` runs those machines on an endpoint: it sends each OPTIONS through the
endpoint's client transactions (so retransmission, Timer F and transport errors are the
transaction layer's, as for a REGISTER) and keeps each trunk's next probe as a
:class:`~wcsgw.sip.timers.Deadline` in the endpoint's one heap.

What counts: any final response is an answer from a live server (a 404 or 405 still proves it
is there) except 408 and 5xx, which say the server cannot serve (RFC 3261 §21.5; a proxy's
own 503 when its next hop is gone); a transaction timeout or transport error is a failure too.
``threshold`` failures in a row mark the trunk down; the first good answer marks it up again.
A trunk starts up: a freshly started gateway does not refuse calls before the first probe.
"""

from __future__ import annotations

from typing import Callable

import attr

from wcsgw.sip.account import SipAccount, uri_host
from wcsgw.sip.frontdoor import capability_headers
from wcsgw.sip.headers import format_name_addr
from wcsgw.sip.ids import new_call_id, new_tag
from wcsgw.sip.message import Headers, Request, Response
from wcsgw.sip.target import Target, unbracket
from wcsgw.sip.timers import EPSILON, Deadline, Deadlines

__all__ = ["TrunkChange", "TrunkHealth", "TrunkProbes", "is_failure", "options_request"]


@attr.s(frozen=True, auto_attribs=True)
class TrunkChange:
    """The trunk went up or down; ``reason`` says what the last probe got (no secrets)."""

    up: bool
    reason: str


def is_failure(status: int) -> bool:
    """A final status that says the trunk cannot take calls: 408 or 5xx."""
    return status == 408 or status >= 500


class TrunkHealth:
    """One trunk's up/down state, probed every ``interval`` seconds."""

    def __init__(self, interval: float, threshold: int = 3) -> None:
        if interval <= 0 or threshold < 1:
            raise ValueError("need interval > 0 and threshold >= 1")
        self.interval = interval
        self.threshold = threshold
        self.up = True
        #: failures in a row since the last good answer
        self.failures = 0
        self.last_reason = ""
        self.in_flight = False
        self._next: float | None = None

    def start(self, now: float) -> None:
        """Probe at once: the first answer tells whether the trunk is there."""
        self._next = now

    def next_deadline(self) -> float | None:
        """When the next probe is due; None while one is in flight (its outcome decides)."""
        return None if self.in_flight else self._next

    def probe_due(self, now: float) -> bool:
        """True (and the probe counts as sent) when a probe should go out now."""
        if self.in_flight or self._next is None or now + EPSILON < self._next:
            return False
        self.in_flight = True
        return True

    def answered(self, status: int, now: float) -> TrunkChange | None:
        """The probe got a final response ``status``."""
        if is_failure(status):
            return self.failed(f"SIP {status}", now)
        return self._outcome(True, f"SIP {status}", now)

    def failed(self, reason: str, now: float) -> TrunkChange | None:
        """The probe timed out or could not be sent (``reason`` from the transaction)."""
        return self._outcome(False, reason, now)

    def _outcome(self, good: bool, reason: str, now: float) -> TrunkChange | None:
        self.in_flight = False
        self._next = now + self.interval
        self.last_reason = reason
        self.failures = 0 if good else self.failures + 1
        was = self.up
        if good:
            self.up = True
        elif self.failures >= self.threshold:
            self.up = False
        return TrunkChange(self.up, reason) if self.up != was else None


def options_request(account: SipAccount, call_id: str, tag: str, cseq: int) -> Request:
    """An out-of-dialog OPTIONS (RFC 3261 §11.1) to the account's next hop itself: its
    Request-URI is that host and port, with no user part, which proxies answer themselves
    (Kamailio's ``uri == myself && $rU == $null``) instead of forwarding it."""
    host, port, _transport = account.next_hop()
    uri = f"sip:{uri_host(host)}:{port}"
    h = Headers()
    h.add("From", format_name_addr(account.aor(), None, tag))
    h.add("To", format_name_addr(uri))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} OPTIONS")
    h.add("Accept", "application/sdp")
    for name, value in capability_headers():
        h.add(name, value)
    return Request("OPTIONS", uri, h, b"")


#: what :class:`TrunkProbes` needs of the endpoint (``SipEndpoint.send_request``)
SendRequest = Callable[
    [Request, Target, float, Callable[[Response, float], None], Callable[[str, float], None]],
    object,
]


@attr.s(auto_attribs=True, eq=False)
class _Probe:
    account: SipAccount
    health: TrunkHealth
    target: Target
    listener: Callable[[TrunkChange], None]
    timer: Deadline
    call_id: str = attr.ib(factory=new_call_id)
    tag: str = attr.ib(factory=new_tag)
    cseq: int = 0
    stopped: bool = False


class TrunkProbes:
    """The OPTIONS probes of one endpoint (``send_request`` and ``deadlines`` are its own)."""

    def __init__(self, send_request: SendRequest, deadlines: Deadlines) -> None:
        self._send_request = send_request
        self._deadlines = deadlines
        self._probes: list[_Probe] = []

    def watch(self, account: SipAccount, health: TrunkHealth, now: float,
              listener: Callable[[TrunkChange], None]) -> None:
        """Probe ``account``'s next hop from now on; ``listener`` hears each change."""
        host, port, transport = account.next_hop()
        probe = _Probe(account, health, Target(transport.upper(), unbracket(host), port),
                       listener, self._deadlines.new(lambda now: self._due(probe, now)))
        self._probes.append(probe)
        health.start(now)
        self._due(probe, now)

    def stop(self) -> None:
        """No more probes (a probe in flight is left to its transaction; its answer is
        ignored)."""
        for probe in self._probes:
            probe.stopped = True
            probe.timer.clear()
        self._probes.clear()

    def _due(self, probe: _Probe, now: float) -> None:
        if probe.stopped:
            return
        if probe.health.probe_due(now):
            probe.cseq += 1
            request = options_request(probe.account, probe.call_id, probe.tag, probe.cseq)

            def on_response(response: Response, now: float) -> None:
                if response.status >= 200:
                    self._settled(probe, probe.health.answered(response.status, now))

            def on_failure(reason: str, now: float) -> None:
                self._settled(probe, probe.health.failed(reason, now))

            self._send_request(request, probe.target, now, on_response, on_failure)
        self._rearm(probe)

    def _settled(self, probe: _Probe, change: TrunkChange | None) -> None:
        if probe.stopped:
            return
        if change is not None:
            probe.listener(change)
        self._rearm(probe)

    def _rearm(self, probe: _Probe) -> None:
        when = probe.health.next_deadline()
        if when is None:
            probe.timer.clear()
        else:
            probe.timer.set(when)
