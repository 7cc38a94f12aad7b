"""Our 2xx to an INVITE, re-sent by the UAS core until its ACK (RFC 3261 §13.3.1.4).

A 2xx to an INVITE is end-to-end: the server transaction is gone once it has passed it on, so
the UAS core — not the transaction — passes it to the transport again at T1, 2*T1, ... capped
at T2, over every transport (a hop behind a proxy may be UDP), until the ACK comes; and gives
up waiting for that ACK after 64*T1.  The dialog-creating INVITE
(:class:`~wcsgw.sip.uas.IncomingInvite`) and the peer's re-INVITE
(:class:`~wcsgw.sip.usage.reinvite.ReinviteServer`) both do exactly this, with one
:class:`OkRetransmission` each; what the end of the wait means is theirs to say.
"""

from __future__ import annotations

from typing import Callable

from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import Request, Response

__all__ = ["OkRetransmission", "acknowledges"]


class OkRetransmission:
    """One 2xx of ours until its ACK: re-sent while ``waiting()`` holds, ``on_no_ack(now)``
    once 64*T1 passed without one.  Its two timers are Deadlines in the endpoint's heap."""

    def __init__(self, endpoint: SipEndpoint, *, waiting: Callable[[], bool],
                 on_no_ack: Callable[[float], None]) -> None:
        self.endpoint = endpoint
        #: the 2xx, once sent
        self.response: Response | None = None
        self._waiting = waiting
        self._interval = 0.0
        self._retransmit = endpoint.deadlines.new(self._again)
        self._ack_wait = endpoint.deadlines.new(on_no_ack)

    def send(self, response: Response, now: float) -> None:
        """Send the 2xx ``response`` and keep re-sending it until :meth:`stop`."""
        timers = self.endpoint.config.timers
        self.response = response
        self._interval = timers.t1
        self._retransmit.set(now + self._interval)
        self._ack_wait.set(now + timers.timeout)
        self.endpoint.respond(response, now)

    def stop(self) -> None:
        """The ACK came, or nobody waits for it any more."""
        self._retransmit.clear()
        self._ack_wait.clear()

    def deadlines(self) -> tuple[float | None, float | None]:
        return self._retransmit.at, self._ack_wait.at

    def _again(self, now: float) -> None:
        if not self._waiting():
            return
        assert self.response is not None
        # §13.3.1.4: T1, 2*T1, 4*T1 ... capped at T2.
        self._interval = min(2 * self._interval, self.endpoint.config.timers.t2)
        self._retransmit.set(now + self._interval)
        self.endpoint.respond(self.response, now)


def acknowledges(ack: Request, invite: Request) -> bool:
    """``ack`` is the ACK of our 2xx to ``invite``: it carries the INVITE's CSeq number."""
    try:
        number = ack.cseq[0]
    except (SipParseError, ValueError):
        return False
    return number == invite.cseq[0]
