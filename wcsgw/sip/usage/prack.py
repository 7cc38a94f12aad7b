"""Reliable provisional responses (RFC 3262, 100rel/PRACK), both ways.

Why: carriers play announcements and ringback as early media in a 183 and many require it to
be reliable — over UDP a lost 183 means a caller who hears nothing, and a 183 whose SDP is
lost leaves no session to answer.  RFC 3262 makes such a 1xx a tiny transaction of its own:
the UAS re-sends it until a PRACK naming it (RAck) comes, and the UAC PRACKs each one once.

:class:`ReliableProvisional` is the UAS side of one such 1xx (its RSeq, its retransmission at
T1, 2·T1, 4·T1 ... and the 64·T1 give-up, each a Deadline in the endpoint's heap);
:class:`ReliableProvisionals` numbers them on one INVITE and keeps one unacknowledged at a time
(§3).  :class:`PrackSender` is the UAC side: which reliable 1xx are new (in RSeq order, per
early dialog) and the PRACK for each.  The decision whether to use 100rel at all is
:func:`uas_wants_reliable` over the INVITE and our ``prack`` policy.
"""

from __future__ import annotations

import random
from typing import Callable, Literal

from twisted.logger import Logger

from wcsgw.sip.dialog import Dialog
from wcsgw.sip.dialogs import dialog_target
from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import ignore_failure, ignore_response

__all__ = [
    "PrackPolicy",
    "PrackSender",
    "ReliableProvisional",
    "ReliableProvisionals",
    "is_reliable",
    "parse_rack",
    "tags_of",
    "uac_invite_headers",
    "uas_wants_reliable",
]

log = Logger(namespace="wcsgw.sip.session")

#: "off": never; "supported": when the peer supports or requires it; "required": our INVITEs
#: require it (a UAS that cannot do it refuses them 420).
PrackPolicy = Literal["off", "supported", "required"]

_MAX_RSEQ = 2**31 - 1


def tags_of(message: Request | Response, header: str) -> set[str]:
    return {t.strip().lower() for t in message.headers.get_all(header)}


def uac_invite_headers(policy: PrackPolicy) -> list[tuple[str, str]]:
    """What our INVITE says about 100rel (§4)."""
    if policy == "off":
        return []
    return [("Require" if policy == "required" else "Supported", "100rel")]


def uas_wants_reliable(invite: Request, policy: PrackPolicy) -> bool:
    """Send this INVITE's 18x reliably: it requires 100rel, or supports it and we do (§3)."""
    if "100rel" in tags_of(invite, "Require"):
        return True
    return policy != "off" and "100rel" in tags_of(invite, "Supported")


def is_reliable(response: Response) -> bool:
    """A 101-199 sent reliably: ``Require: 100rel`` and an RSeq (§4)."""
    rseq = (response.headers.get("RSeq") or "").strip()
    return (100 < response.status < 200 and "100rel" in tags_of(response, "Require")
            and rseq.isdigit())


def parse_rack(value: str | None) -> tuple[int, int, str] | None:
    """``RAck: <rseq> <cseq> <method>`` (§7.2), or None."""
    parts = (value or "").split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2].upper()


class ReliableProvisional:
    """One reliable 1xx of ours: sent now, re-sent at T1 doubling until its PRACK; after
    64·T1 ``on_give_up`` (the UAS SHOULD then refuse the INVITE 5xx, §3)."""

    def __init__(self, endpoint: SipEndpoint, response: Response, rseq: int, now: float,
                 *, settled: Callable[[], bool], on_give_up: Callable[[float], None]) -> None:
        self.endpoint = endpoint
        self.response = response
        self.rseq = rseq
        self.acknowledged = False
        self._settled = settled
        self._on_give_up = on_give_up
        timers = endpoint.config.timers
        self._interval = timers.t1
        self._resend = endpoint.deadlines.new(self._resend_due)
        self._give_up = endpoint.deadlines.new(self._give_up_due)
        response.headers.add("Require", "100rel")
        response.headers.add("RSeq", str(rseq))
        endpoint.respond(response, now)
        self._resend.set(now + self._interval)
        self._give_up.set(now + timers.timeout)

    def deadline(self) -> float | None:
        live = [d for d in (self._resend.at, self._give_up.at) if d is not None]
        return min(live) if live else None

    def close(self) -> None:
        self._resend.clear()
        self._give_up.clear()

    def matches(self, rack: tuple[int, int, str], invite: Request) -> bool:
        return rack == (self.rseq, invite.cseq[0], "INVITE")

    def acknowledge(self) -> None:
        self.acknowledged = True
        self.close()

    def _resend_due(self, now: float) -> None:
        if self._settled():
            self.close()
            return
        self.endpoint.respond(self.response, now)
        self._interval *= 2
        self._resend.set(now + self._interval)

    def _give_up_due(self, now: float) -> None:
        self.close()
        if not self._settled():
            log.info("reliable {status} never PRACKed within 64*T1",
                     status=self.response.status)
            self._on_give_up(now)


class ReliableProvisionals:
    """The reliable 1xx of one INVITE we answer: RSeq numbering from a random start (§3),
    at most one unacknowledged (later ones wait for its PRACK), and the PRACKs."""

    def __init__(self, endpoint: SipEndpoint, invite: Request, rng: random.Random, *,
                 settled: Callable[[], bool], on_give_up: Callable[[float], None]) -> None:
        self.endpoint = endpoint
        self.invite = invite
        self.next_rseq = rng.randint(1, _MAX_RSEQ // 2)
        self.current: ReliableProvisional | None = None
        self._waiting: list[Response] = []
        self._settled = settled
        self._on_give_up = on_give_up

    def deadline(self) -> float | None:
        return self.current.deadline() if self.current is not None else None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        self._waiting.clear()

    def send(self, response: Response, now: float) -> None:
        if self.current is not None and not self.current.acknowledged:
            self._waiting.append(response)  # §3: one unacknowledged at a time
            return
        rseq = self.next_rseq
        self.next_rseq += 1
        self.current = ReliableProvisional(self.endpoint, response, rseq, now,
                                           settled=self._settled, on_give_up=self._on_give_up)

    def receive_prack(self, prack: Request, now: float) -> None:
        """200 to the PRACK of the 1xx awaiting it (and the next one goes), else 481 (§3)."""
        rack = parse_rack(prack.headers.get("RAck"))
        current = self.current
        if rack is None or current is None or not current.matches(rack, self.invite):
            self.endpoint.respond(make_response(prack, 481), now)
            return
        current.acknowledge()
        self.endpoint.respond(make_response(prack, 200), now)
        if self._waiting and not self._settled():
            self.send(self._waiting.pop(0), now)


class PrackSender:
    """The UAC side: PRACK each new reliable 1xx of each early dialog once, in RSeq order."""

    def __init__(self, endpoint: SipEndpoint, transport: str) -> None:
        self.endpoint = endpoint
        self.transport = transport
        #: the last RSeq PRACKed, by the early dialog's remote tag
        self.last_rseq: dict[str, int] = {}

    def receive(self, dialog: Dialog | None, invite: Request, response: Response,
                now: float) -> bool:
        """False when ``response`` is a reliable 1xx already seen or out of order (§4:
        not passed up); otherwise True, and a reliable one is PRACKed."""
        if dialog is None or not is_reliable(response):
            return True
        rseq = int(response.headers.get("RSeq") or "0")
        last = self.last_rseq.get(dialog.remote_tag)
        if last is not None and rseq != last + 1:
            return False  # a retransmission (our PRACK re-sends itself) or out of order
        self.last_rseq[dialog.remote_tag] = rseq
        prack = dialog.create_request("PRACK", [("RAck", f"{rseq} {invite.cseq[0]} INVITE")])
        self.endpoint.send_request(prack, dialog_target(dialog, self.transport), now,
                                   ignore_response, ignore_failure)
        return True
