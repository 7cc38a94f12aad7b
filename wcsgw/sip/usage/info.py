"""INFO both ways (RFC 6086): any body, DTMF relay included (bodies: :mod:`wcsgw.sip.info`).

An INFO of ours is answered as :class:`~wcsgw.sip.events.InfoAnswered` (a 401/407 answered
first when the session has credentials; 481 ends the call, §12.2.1.2); several may be in
flight.  An INFO from the peer is answered 200 and given as
:class:`~wcsgw.sip.events.InfoReceived`.
"""

from __future__ import annotations

from wcsgw.sip.events import InfoAnswered, InfoReceived
from wcsgw.sip.message import Request, Response
from wcsgw.sip.responses import make_response
from wcsgw.sip.usage.host import UsageHost

__all__ = ["InfoClient", "receive_info"]


class InfoClient:
    """One INFO of ours with ``body`` of ``content_type``, until its final answer."""

    def __init__(self, host: UsageHost, content_type: str, body: bytes) -> None:
        if "\r" in content_type or "\n" in content_type:
            raise ValueError("CR or LF in the value of Content-Type")
        self.host = host
        self.content_type = content_type
        self.body = body

    def send(self, now: float, challenges: int = 0) -> None:
        host = self.host
        dialog = host.confirmed_dialog()
        request = dialog.create_request("INFO", [("Content-Type", self.content_type)], self.body)
        host.authorize(request, challenges)

        def on_response(response: Response, now: float) -> None:
            status = response.status
            if status < 200 or host.terminated:
                return
            if host.answers_challenge(request, response, challenges):
                self.send(now, challenges + 1)
                return
            if status == 481:  # the dialog is gone at the peer (§12.2.1.2)
                text = f"{status} {response.reason}"
                host.end_call(text, now, bye=False, first=InfoAnswered(status))
                return
            host.emit(InfoAnswered(status))

        def on_failure(reason: str, now: float) -> None:
            if not host.terminated:
                host.emit(InfoAnswered(None))

        host.endpoint.send_request(request, host.next_hop(), now, on_response, on_failure)


def receive_info(host: UsageHost, request: Request, now: float) -> None:
    """The peer's INFO: 200, then the event."""
    host.endpoint.respond(make_response(request, 200), now)
    host.emit(InfoReceived((request.headers.get("Content-Type") or "").strip(), request.body))
