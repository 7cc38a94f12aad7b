"""REFER both ways (RFC 3515) with the implicit subscription and its NOTIFYs.

:class:`ReferClient` is our REFER and the subscription it creates: the NOTIFYs the peer sends
about the call it makes (``message/sipfrag``) are answered 200 and reported; with no final
one within the subscription's expiry (+64*T1) the transfer failed.  :class:`ReferServer` is
the peer's REFER: the owner accepts (202 and the first NOTIFY) or refuses it, then reports
its new call in NOTIFYs; our subscription ends with the final report or its expiry.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from twisted.logger import Logger

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.events import (
    REASON_TIMEOUT,
    REASON_TRANSPORT,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
)
from wcsgw.sip.headers import format_name_addr, parse_params
from wcsgw.sip.message import Request, Response
from wcsgw.sip.refer import SIPFRAG, parse_replaces, parse_sipfrag, sipfrag_body, split_refer_to
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import UsageHost, contact_value, ignore_failure

__all__ = ["REFER_EXPIRES", "ReferClient", "ReferServer", "accept_notify"]

log = Logger(namespace="wcsgw.sip.session")

#: How long the subscription a REFER creates lasts, in the NOTIFYs we send (RFC 3515 §2.4.4
#: leaves it to the notifier; 60 s is what baresip and Asterisk use), and how long we wait for
#: a final NOTIFY when the notifier names no expiry.
REFER_EXPIRES = 60

_SUB_STATE_RE = re.compile(r"^\s*([A-Za-z-]+)\s*(;.*)?$", re.S)


def _subscription_state(value: str | None) -> tuple[str, int | None]:
    """``("active"|"pending"|"terminated"|"", expires or None)`` from Subscription-State."""
    if not value:
        return "", None
    match = _SUB_STATE_RE.match(value)
    if match is None:
        return "", None
    expires: int | None = None
    try:
        params = parse_params(match.group(2) or "")
        raw = params.get("expires")
        expires = int(raw) if raw is not None else None
    except (SipParseError, ValueError):
        pass
    return match.group(1).lower(), expires


def accept_notify(host: UsageHost, request: Request, now: float) -> None:
    """200 to a NOTIFY of our subscription; NOTIFY is a target refresh (RFC 6665 §4.2.2)."""
    host.endpoint.respond(make_response(request, 200), now)
    if host.dialog is not None:
        host.dialog.refresh_target(request)


class ReferClient:
    """Our REFER with ``refer_to`` (a Refer-To value) and its subscription.  ``on_done(over)``
    runs once it is settled, before the event that says how; ``over`` when the subscription
    itself ended (a late NOTIFY of it is then still answered 200)."""

    def __init__(self, host: UsageHost, refer_to: str, on_done: Callable[[bool], None]) -> None:
        self.host = host
        self.refer_to = refer_to
        self._on_done = on_done
        self.request: Request | None = None
        self.challenges = 0
        self.accepted = False
        self.closed = False
        self._guard = host.endpoint.deadlines.new(self._no_final_notify)

    def deadline(self) -> float | None:
        return self._guard.at

    def close(self) -> None:
        self.closed = True
        self._guard.clear()

    def send(self, now: float) -> None:
        host = self.host
        dialog = host.confirmed_dialog()
        headers = [
            ("Refer-To", self.refer_to),
            ("Referred-By", format_name_addr(dialog.local_uri)),
            ("Contact", contact_value(dialog)),
        ]
        request = dialog.create_request("REFER", headers)
        host.authorize(request, self.challenges)
        self.request = request

        def on_response(response: Response, now: float) -> None:
            status = response.status
            if status < 200 or not self._current(request):
                return
            if 200 <= status < 300:
                if not self.accepted:
                    self.accepted = True
                    self._arm_guard(None, now)
                    host.emit(ReferAccepted(status))
                return
            if host.answers_challenge(request, response, self.challenges):
                self.challenges += 1
                self.send(now)
                return
            self._done(over=False)
            text = f"{status} {response.reason}"
            if status == 481:
                host.end_call(text, now, bye=False, first=ReferFailed(status, text))
            else:
                host.emit(ReferFailed(status, text))

        def on_failure(reason: str, now: float) -> None:
            if not self._current(request):
                return
            self._done(over=False)
            host.emit(ReferFailed(None, REASON_TIMEOUT if reason == "timeout" else REASON_TRANSPORT))

        host.endpoint.send_request(request, host.next_hop(), now, on_response, on_failure)

    def receive_notify(self, request: Request, now: float) -> None:
        """A NOTIFY (``Event: refer``) of our subscription."""
        host = self.host
        accept_notify(host, request, now)
        state, expires = _subscription_state(request.headers.get("Subscription-State"))
        content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        frag = parse_sipfrag(request.body) if content_type == SIPFRAG else None
        terminated = state == "terminated"
        if not self.accepted:
            self.accepted = True  # the NOTIFY overtook the REFER's 202 (RFC 3515 §2.4.4)
            host.emit(ReferAccepted(202))
            if self.closed:
                return
        if frag is None:
            if terminated:
                self._done(over=True)
                host.emit(ReferFailed(None, "transfer subscription ended without a final status"))
            else:
                self._arm_guard(expires, now)
            return
        status, reason = frag
        final = terminated or status >= 200
        if final:
            self._done(over=True)
        else:
            self._arm_guard(expires, now)
        host.emit(ReferProgress(status, final, reason))

    def _current(self, request: Request) -> bool:
        return not self.closed and self.request is request and not self.host.terminated

    def _done(self, *, over: bool) -> None:
        self.close()
        self._on_done(over)

    def _arm_guard(self, expires: int | None, now: float) -> None:
        wait = REFER_EXPIRES if expires is None else expires
        self._guard.set(now + wait + self.host.endpoint.config.timers.timeout)

    def _no_final_notify(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        self._done(over=False)
        self.host.emit(ReferFailed(None, "no final NOTIFY for the transfer"))


class ReferServer:
    """The peer's REFER ``request`` (a valid one: see :meth:`receive`).  ``event`` is the
    Event value of our NOTIFYs; ``on_done`` runs once we owe the peer nothing more."""

    def __init__(self, host: UsageHost, request: Request, event: str,
                 on_done: Callable[[], None], now: float) -> None:
        self.host = host
        self.request = request
        self.event = event
        self._on_done = on_done
        self.accepted = False
        self.last: tuple[int, str] = (100, "Trying")
        self.closed = False
        deadlines = host.endpoint.deadlines
        # A REFER the owner leaves unanswered for 32*T1 is refused 500.
        self._answer_by = deadlines.new(self._unanswered)
        self._expires = deadlines.new(self._expired)  # our subscription's end
        self._answer_by.set(now + host.endpoint.config.timers.timeout / 2)

    @staticmethod
    def parse(request: Request) -> ReferReceived | Response:
        """What the peer's REFER asks (its event), or the 400 that refuses it."""
        values = request.headers.get_all("Refer-To")
        if len(values) != 1:
            return make_response(request, 400, "Bad Request (exactly one Refer-To)")
        replaces: dict[str, Any] | None = None
        try:
            refer_to, replaces_text = split_refer_to(values[0])
            if replaces_text is not None:
                call_id, to_tag, from_tag = parse_replaces(replaces_text)
                replaces = {"call_id": call_id, "to_tag": to_tag, "from_tag": from_tag,
                            "early_only": "early-only" in replaces_text.lower()}
        except ValueError as exc:
            return make_response(request, 400, f"Bad Request ({exc})"[:100])
        return ReferReceived(refer_to, replaces, request.headers.get("Referred-By"))

    def deadline(self) -> float | None:
        live = [d for d in (self._answer_by.at, self._expires.at) if d is not None]
        return min(live) if live else None

    def close(self) -> None:
        self.closed = True
        self._answer_by.clear()
        self._expires.clear()

    def accept(self, now: float, *, notify_trying: bool) -> None:
        dialog = self.host.confirmed_dialog()
        response = make_response(self.request, 202)
        response.headers.add("Contact", contact_value(dialog))
        self.accepted = True
        self._answer_by.clear()
        self._expires.set(now + REFER_EXPIRES)
        self.host.endpoint.respond(response, now)
        if notify_trying:
            self.notify(100, "Trying", now, None)

    def notify(self, status: int, reason: str, now: float, final: bool | None) -> None:
        if final is None:
            final = status >= 200
        self.last = (status, reason)
        if final:
            self._done()
            state = "terminated;reason=noresource"
        else:
            self._expires.set(now + REFER_EXPIRES)
            state = f"active;expires={REFER_EXPIRES}"
        self._send_notify(state, sipfrag_body(status, reason), now)

    def reject(self, status: int, now: float, reason: str | None = None) -> None:
        self._done()
        self.host.endpoint.respond(make_response(self.request, status, reason), now)

    def abort(self, now: float) -> None:
        """The call is ending: 487 if not answered yet (§15.1.2)."""
        self.close()
        if not self.accepted:
            self.host.endpoint.respond(make_response(self.request, 487), now)

    def _done(self) -> None:
        self.close()
        self._on_done()

    def _send_notify(self, state: str, body: bytes, now: float) -> None:
        host = self.host
        dialog = host.confirmed_dialog()
        headers = [
            ("Event", self.event),
            ("Subscription-State", state),
            ("Content-Type", f"{SIPFRAG};version=2.0"),
        ]
        request = dialog.create_request("NOTIFY", headers, body)  # Contact: the dialog's

        def on_response(response: Response, now: float) -> None:
            if response.status >= 300:
                log.info("NOTIFY of {sip_call_id} answered {status}", sip_call_id=host.call_id,
                         status=response.status)

        host.endpoint.send_request(request, host.next_hop(), now, on_response, ignore_failure)

    def _unanswered(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        log.warn("REFER of {sip_call_id} left unanswered: 500", sip_call_id=self.host.call_id)
        self.reject(500, now)

    def _expired(self, now: float) -> None:
        if self.closed or self.host.terminated:
            return
        # Our subscription ran out without a final report (RFC 6665 §4.2.2): say so.
        self._done()
        status, reason = self.last
        self._send_notify("terminated;reason=timeout", sipfrag_body(status, reason), now)
