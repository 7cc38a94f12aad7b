"""The call layer as a service of the gateway's tree: what starts with it and how it stops —
at once (reactor stop: calls hung up, short grace) or gracefully (drain: no new work, live
calls finish, then stop).  The drain's decisions are :class:`wcsgw.calls.drain.Drain`'s; the
overload decisions :class:`wcsgw.calls.overload.OverloadDetector`'s; here are their timers,
signals and actions."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Callable, cast

from twisted.application.service import Service
from twisted.logger import Logger

from wcsgw.calls.admission import drain_gate, overload_gate
from wcsgw.calls.drain import Drain, Step
from wcsgw.calls.loadsampler import LoadSampler
from wcsgw.calls.overload import OverloadDetector
from wcsgw.calls.status import SessionStatus
from wcsgw.sip.reactor import Clock

__all__ = ["CALLS_STOP_GRACE", "CallsService", "say_goodbye", "DrainDriver"]

log = Logger(namespace="wcsgw.calls")

#: How long a stopping gateway waits for its calls' BYEs/CANCELs to be answered.
CALLS_STOP_GRACE = 3.0


class DrainDriver:
    """Runs one gateway's :class:`Drain`: closes the door (the drain gate of
    ``gateway.admission``), wakes when a call ends or a deadline comes, hangs up what is left
    after ``limits.drain_seconds``, and finally calls ``stop`` (``reactor.stop`` in the
    service: the tree's stopService unregisters and closes everything)."""

    def __init__(self, gateway: Any, clock: Any, stop: Callable[[], None]) -> None:
        self.gateway = gateway
        self.clock = clock
        self.stop = stop
        self.state = Drain(gateway.limits.drain_seconds, grace=CALLS_STOP_GRACE)
        self._timer: Any = None
        self._awaiting_idle = False
        self._cancelled = False
        gateway.admission.gates.append(drain_gate(gateway.admission, self.state, clock.seconds))

    @property
    def draining(self) -> bool:
        return self.state.draining

    def live(self) -> int:
        """Calls live or whose SIP leg is still ending."""
        registry = self.gateway.registry
        return len(set(registry.unsettled) | set(registry.calls.values()))

    def describe(self) -> dict[str, object]:
        return self.state.describe(self.clock.seconds(), len(self.gateway.calls))

    def begin(self, why: str) -> dict[str, object]:
        """Start draining (``why`` is logged); idempotent.  What REST answers."""
        if self.state.begin(self.clock.seconds()):
            log.info("draining ({why}): new sessions and calls refused; {n} live call(s) may "
                     "go on for up to {seconds} s (limits.drain_seconds)", why=why,
                     n=len(self.gateway.calls), seconds=self.gateway.limits.drain_seconds)
            self._check()
        return self.describe()

    def cancel(self) -> None:
        """No more wake-ups, and never a stop of ours: the gateway stops another way (a
        second SIGTERM, the service stopping)."""
        self._cancelled = True
        self._clear_timer()

    def _clear_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _check(self, _: object = None) -> None:
        if self._cancelled:
            return
        step = self.state.step(self.clock.seconds(), self.live())
        if step is Step.NOTHING:
            return
        self._clear_timer()
        if step is Step.STOP:
            log.info("drained: no call left; unregistering and stopping")
            self.stop()
            return
        if step is Step.HANG_UP:
            log.info("drain time over (limits.drain_seconds): hanging up {n} call(s) with BYE",
                     n=len(self.gateway.calls))
            self.gateway.hangup_all()
            if self.state.step(self.clock.seconds(), self.live()) is Step.STOP:
                log.info("drained: calls ended; unregistering and stopping")
                self.stop()
                return
        deadline = self.state.deadline()
        if deadline is not None:
            self._timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()),
                                               self._check)
        if not self._awaiting_idle:
            self._awaiting_idle = True
            self.gateway.when_idle().addCallback(self._once_idle)

    def _once_idle(self, _: object) -> None:
        # when_idle may fire synchronously inside _check, or long after; either way ask again
        # on the next turn, with the registry settled.
        self._awaiting_idle = False
        self.clock.callLater(0, self._check)


class CallsService(Service):
    """Ends live calls properly when the gateway stops (SIGTERM twice, or reactor stop):
    every call is hung up (BYE or CANCEL) and the answers awaited, bounded by
    CALLS_STOP_GRACE, before the SIP endpoint and test lines stop — children stop in reverse
    order, and this one was added after them.

    It also carries the gateway's two gates: the drain (the first SIGTERM, or REST
    ``gateway/drain``: ``gateway.drain``) and overload control (``gateway.overload``, fed by
    a :class:`LoadSampler` while the service runs).  ``stop``: what a finished drain calls
    (``reactor.stop``; tests give their own)."""

    name = "calls"

    def __init__(self, gateway: Any, reactor: Any = None,
                 stop: Callable[[], None] | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self.gateway = gateway
        self.reactor = reactor
        limits = gateway.limits
        gateway.drain = DrainDriver(gateway, reactor, stop or reactor.stop)
        gateway.overload = OverloadDetector(limits.max_loop_lag_ms, limits.max_cpu_percent)
        gateway.admission.gates.append(overload_gate(gateway.admission, gateway.overload))
        self.sampler = LoadSampler(gateway.overload, reactor)
        self._previous_sigterm: Any = None
        self._handler: Any = None
        self._watching = False

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]
        from wcsgw.calls.inbound import InboundRouter

        # After the SIP service started (its endpoint exists): INVITEs to sessions' contacts.
        self.gateway.sip.endpoint.handlers.append(
            InboundRouter(self.gateway, self.gateway.take_incoming))
        self.sampler.start()
        # Twisted installs its own SIGTERM handler (stop at once) as the reactor starts
        # running: ours replaces it after that, and passes the second SIGTERM on to it.
        self.reactor.callWhenRunning(self.watch_sigterm)

    def watch_sigterm(self) -> None:
        """The first SIGTERM drains, a second stops at once (the handler there before, or
        ``reactor.stop``).  Only the reactor's thread acts: the handler hands it over."""
        if self._watching or not self.running:
            return

        def on_term(signum: int, frame: FrameType | None) -> None:
            self.reactor.callFromThread(self._sigterm, previous, signum, frame)

        previous = signal.signal(signal.SIGTERM, on_term)
        self._previous_sigterm, self._watching, self._handler = previous, True, on_term

    def _sigterm(self, previous: Any, signum: int, frame: FrameType | None) -> None:
        drain = self.gateway.drain
        if not self.running:  # stopped, but a handler installed after ours still calls it
            if callable(previous):
                previous(signum, frame)
            return
        if not drain.draining:
            drain.begin("SIGTERM")
            return
        log.info("second SIGTERM while draining: stopping now")
        drain.cancel()
        if callable(previous):
            previous(signum, frame)
        else:
            self.reactor.stop()

    def _unwatch_sigterm(self) -> None:
        """Give SIGTERM back — unless another handler was installed over ours since (two
        gateways in one process): that one still passes the signal on through ours."""
        if self._watching:
            previous = self._previous_sigterm
            if signal.getsignal(signal.SIGTERM) is self._handler:
                signal.signal(signal.SIGTERM,
                              previous if previous is not None else signal.SIG_DFL)
            self._previous_sigterm, self._watching = None, False

    def stopService(self) -> Any:
        super().stopService()  # type: ignore[no-untyped-call]
        self.sampler.stop()
        self.gateway.drain.cancel()
        self._unwatch_sigterm()
        if self.gateway.hooks is not None:
            self.gateway.hooks.stop()  # no retry timer left; its HTTP connections closed
        self.gateway.hangup_all()
        say_goodbye(self.gateway)
        idle = self.gateway.when_idle()
        timer = cast(Clock, self.reactor).callLater(CALLS_STOP_GRACE,
                                                    lambda: idle.called or idle.callback(None))
        return idle.addBoth(
            lambda result: (timer.active() and timer.cancel(), result)[1])  # type: ignore[func-returns-value]


def say_goodbye(gateway: Any) -> None:
    """Every session still attached hears that it ends (``sessionStatus DISCONNECTED``,
    "Gateway stopped") and its socket closes normally (1000): a browser then knows at once to
    log in again, on another gateway, rather than try to resume here for ``resume_seconds``."""
    for session in list(gateway.sessions.values()):
        listener = session.listener
        listener.session_status(SessionStatus.DISCONNECTED.value, None, "Gateway stopped")
        closing = getattr(listener, "gateway_stopped", None)  # the WebSocket's, if attached
        if closing is not None:
            closing()
