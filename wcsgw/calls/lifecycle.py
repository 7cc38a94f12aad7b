"""The call layer as a service of the gateway's tree: what starts with it and how it stops."""

from __future__ import annotations

from typing import Any, cast

from twisted.application.service import Service

from wcsgw.sip.reactor import Clock

__all__ = ["CALLS_STOP_GRACE", "CallsService"]


class CallsService(Service):
    """Ends live calls properly when the gateway stops (SIGTERM): every call is hung up (BYE or
    CANCEL) and the answers awaited, bounded by CALLS_STOP_GRACE, before the SIP endpoint and
    test lines stop — children stop in reverse order, and this one was added after them."""

    name = "calls"

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        from wcsgw.calls.inbound import InboundRouter

        # After the SIP service started (its endpoint exists): INVITEs to sessions' contacts.
        self.gateway.sip.endpoint.handlers.append(
            InboundRouter(self.gateway, self.gateway.take_incoming))

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        from twisted.internet import reactor

        if self.gateway.hooks is not None:
            self.gateway.hooks.stop()  # no retry timer left; its HTTP connections closed
        self.gateway.hangup_all()
        idle = self.gateway.when_idle()
        timer = cast(Clock, reactor).callLater(CALLS_STOP_GRACE,
                                               lambda: idle.called or idle.callback(None))
        return idle.addBoth(
            lambda result: (timer.active() and timer.cancel(), result)[1])  # type: ignore[func-returns-value]


#: How long a stopping gateway waits for its calls' BYEs/CANCELs to be answered.
CALLS_STOP_GRACE = 3.0
