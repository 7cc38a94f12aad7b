"""Session timers (RFC 4028): who refreshes a dialog, how often, and what happens when the
refresh does not come.

A carrier (or a stateful proxy in between) frees a call whose refresh never comes, and a
gateway that lost the far end's BYE keeps its media ports until someone notices: both sides
agree on an interval, one of them (the *refresher*) sends a session refresh at half of it,
and the other ends the call with BYE when none came ``min(32, interval/3)`` seconds before
it expires (§10).

The negotiation is pure functions over the INVITE and its 2xx (:func:`uas_negotiate`,
:func:`uac_negotiate`, :func:`retry_after_422`); :class:`SessionTimer` is the usage that runs
the agreed interval on a confirmed dialog, its two Deadlines in the endpoint's heap.  Our
refreshes are UPDATEs without a body (§7.4 prefers UPDATE: no offer/answer, so they never
collide with a hold or a transfer); a refresh answered 481 or 408, or not at all, ends the
call with BYE (§10); another refusal (a peer that takes no UPDATE) stops the timer rather
than end a healthy call.
"""

from __future__ import annotations

from typing import Iterable

import attr
from twisted.logger import Logger

from wcsgw.sip.events import REASON_TIMEOUT
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import UsageHost

__all__ = [
    "EXPIRY_MARGIN_MAX",
    "SessionTimer",
    "TimerAgreement",
    "TimerPolicy",
    "expiry_margin",
    "parse_session_expires",
    "retry_after_422",
    "supports_timer",
    "uac_negotiate",
    "uac_request_headers",
    "uas_negotiate",
    "uas_response_headers",
]

log = Logger(namespace="wcsgw.sip.session")

#: §10: the side that does not refresh sends BYE this long (at most) before expiry.
EXPIRY_MARGIN_MAX = 32.0
#: §4: no Session-Expires below 90 s, whatever a peer asks for.
ABSOLUTE_MIN_SE = 90


@attr.s(frozen=True, auto_attribs=True)
class TimerPolicy:
    """What we ask for (``session_expires``, 0: we ask for no timer, but still honour the
    peer's) and the shortest interval we take (``min_se``, answered 422 below it)."""

    session_expires: int = 0
    min_se: int = ABSOLUTE_MIN_SE


@attr.s(frozen=True, auto_attribs=True)
class TimerAgreement:
    """The interval agreed for a dialog and whether we are the refresher."""

    interval: int
    we_refresh: bool


def parse_session_expires(value: str | None) -> tuple[int, str | None] | None:
    """``Session-Expires`` as (delta-seconds, refresher "uac"/"uas"/None); None when absent
    or unreadable (an unreadable value is treated as no timer rather than a broken call)."""
    if not value:
        return None
    delta, *params = [p.strip() for p in value.split(";")]
    if not delta.isdigit():
        return None
    refresher = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
            refresher = val.strip().lower()
    return int(delta), refresher


def _min_se(message: Request | Response) -> int:
    value = (message.headers.get("Min-SE") or "").split(";", 1)[0].strip()
    return int(value) if value.isdigit() else ABSOLUTE_MIN_SE


def supports_timer(message: Request | Response) -> bool:
    tags = [*message.headers.get_all("Supported"), *message.headers.get_all("Require")]
    return any(t.strip().lower() == "timer" for t in tags)


def expiry_margin(interval: int) -> float:
    """§10: how long before expiry the non-refresher gives up."""
    return min(EXPIRY_MARGIN_MAX, interval / 3)


def uac_request_headers(session_expires: int, min_se: int) -> list[tuple[str, str]]:
    """What our INVITE carries to ask for timers (§7.1: ``Supported: timer`` is a MUST for a
    UAC that does them); the refresher is left to the UAS."""
    if session_expires <= 0:
        return []
    return [("Supported", "timer"), ("Session-Expires", str(session_expires)),
            ("Min-SE", str(min_se))]


def retry_after_422(response: Response, asked: int) -> int | None:
    """§7.1: a 422 names the smallest interval the peer takes in Min-SE; the new
    Session-Expires to retry with, or None when the 422 asks nothing larger (no loop)."""
    wanted = _min_se(response)
    return wanted if response.status == 422 and wanted > asked else None


def uac_negotiate(response: Response) -> TimerAgreement | None:
    """§7.2: the 2xx decides; without Session-Expires there is no session timer."""
    parsed = parse_session_expires(response.headers.get("Session-Expires"))
    if parsed is None:
        return None
    interval, refresher = parsed
    return TimerAgreement(interval, we_refresh=refresher != "uas")


def uas_negotiate(request: Request, session_expires: int,
                  min_se: int) -> TimerAgreement | Response | None:
    """§9 for a dialog-creating INVITE (or a refresh): the agreement, a 422 when the caller
    asks for less than our ``min_se``, or None (no timer: we do not run timers, and the
    caller asked for none).

    The refresher (Table 2 of §9): the caller's choice when it named one; otherwise the
    caller when it supports timers (it asked, it can refresh), else us."""
    parsed = parse_session_expires(request.headers.get("Session-Expires"))
    if parsed is None:
        if session_expires <= 0:
            return None
        interval = max(session_expires, _min_se(request), min_se)
        refresher = None
    else:
        interval, refresher = parsed
        if interval < min_se:
            return make_response(request, 422, headers=[("Min-SE", str(min_se))])
        if session_expires > 0:
            interval = min(interval, max(session_expires, min_se, _min_se(request)))
    if refresher is None:
        refresher = "uac" if supports_timer(request) else "uas"
    return TimerAgreement(interval, we_refresh=refresher == "uas")


def uas_response_headers(agreement: TimerAgreement,
                         request: Request) -> list[tuple[str, str]]:
    """The 2xx's Session-Expires (the refresher as the request's UAC/UAS sees it), and
    ``Require: timer`` only to a caller that supports it (§9)."""
    refresher = "uas" if agreement.we_refresh else "uac"
    headers = [("Session-Expires", f"{agreement.interval};refresher={refresher}")]
    if supports_timer(request):
        headers.append(("Require", "timer"))
    return headers


class SessionTimer:
    """The agreed interval running on ``host``'s confirmed dialog: our refresh at half of it
    when we refresh, BYE when the dialog was not refreshed in time."""

    def __init__(self, host: UsageHost, agreement: TimerAgreement, now: float) -> None:
        self.host = host
        self.agreement = agreement
        self.closed = False
        self.refreshes_sent = 0
        self._refreshing: Request | None = None
        self._refresh = host.endpoint.deadlines.new(self._refresh_due)
        self._expire = host.endpoint.deadlines.new(self._expired)
        self.restart(agreement, now)

    def deadline(self) -> float | None:
        live = [d for d in (self._refresh.at, self._expire.at) if d is not None]
        return min(live) if live else None

    def close(self) -> None:
        self.closed = True
        self._refresh.clear()
        self._expire.clear()

    def restart(self, agreement: TimerAgreement, now: float) -> None:
        """A refresh succeeded (ours answered 2xx, or the peer's came): a new interval."""
        if self.closed:
            return
        self.agreement = agreement
        interval = agreement.interval
        if agreement.we_refresh:
            self._refresh.set(now + interval / 2)
        else:
            self._refresh.clear()
        self._expire.set(now + interval - expiry_margin(interval))

    def peer_refreshed(self, request: Request, now: float) -> list[tuple[str, str]]:
        """The peer's UPDATE or re-INVITE (answered 2xx by the caller of this) refreshes the
        session; its Session-Expires may move the refresher (§9).  The headers our 2xx
        carries."""
        parsed = parse_session_expires(request.headers.get("Session-Expires"))
        if parsed is None:
            agreement = self.agreement
        else:
            interval, refresher = parsed
            if refresher is None:
                refresher = "uac" if supports_timer(request) else "uas"
            agreement = TimerAgreement(interval, we_refresh=refresher == "uas")
        self.restart(agreement, now)
        return uas_response_headers(agreement, request)

    # ------------------------------------------------------------------ internals

    def _refresh_due(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        self._send(now, challenges=0)

    def _send(self, now: float, challenges: int) -> None:
        host = self.host
        dialog = host.confirmed_dialog()
        interval = self.agreement.interval
        headers: Iterable[tuple[str, str]] = [
            ("Session-Expires", f"{interval};refresher=uac"), ("Supported", "timer")]
        request = dialog.create_request("UPDATE", list(headers))
        host.authorize(request, challenges)
        self._refreshing = request
        self.refreshes_sent += 1

        def on_response(response: Response, now: float) -> None:
            if self.closed or self._refreshing is not request or response.status < 200:
                return
            self._answered(request, response, challenges, now)

        def on_failure(reason: str, now: float) -> None:
            if not self.closed and self._refreshing is request:
                self._fail(f"session refresh {reason}", now)

        host.endpoint.send_request(request, host.next_hop(), now, on_response, on_failure)

    def _answered(self, request: Request, response: Response, challenges: int,
                  now: float) -> None:
        status = response.status
        if 200 <= status < 300:
            self._refreshing = None
            agreed = uac_negotiate(response)
            self.restart(agreed or self.agreement, now)
        elif self.host.answers_challenge(request, response, challenges):
            self._send(now, challenges + 1)
        elif status in (408, 481):
            self._fail(f"session refresh {status}", now)
        elif (wanted := retry_after_422(response, self.agreement.interval)) is not None:
            self.agreement = TimerAgreement(wanted, we_refresh=True)
            self._send(now, challenges)
        else:
            # The peer takes no UPDATE (405, 501 ...): we cannot refresh, and ending the call
            # at expiry for that would punish an otherwise healthy call.  The timer stops.
            self.close()
            log.info("session refresh of {sip_call_id} refused {status}: timer stopped",
                     sip_call_id=self.host.call_id, status=status)

    def _fail(self, why: str, now: float) -> None:
        self.close()
        log.info("call {sip_call_id}: {why}: BYE", sip_call_id=self.host.call_id, why=why)
        self.host.end_call(REASON_TIMEOUT, now, bye=True)

    def _expired(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        self._fail("session not refreshed before it expired", now)
