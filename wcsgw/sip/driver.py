"""Run a sans-IO :class:`TransactionLayer` on a Twisted clock (aioquic's adapter pattern).

One ``callLater`` is kept armed at the layer's ``next_deadline()``; after every input the
caller calls :meth:`ClockDriver.pump`, which flushes datagrams to ``send`` and events to
``deliver`` and re-arms the timer.  Works with the reactor and with ``task.Clock`` in tests.
"""

from __future__ import annotations

from typing import Callable

from wcsgw.sip.reactor import Clock, DelayedCall
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import Event, TransactionLayer


class ClockDriver:
    def __init__(self, layer: TransactionLayer, clock: Clock,
                 send: Callable[[bytes, Target], None],
                 deliver: Callable[[Event], None] | None = None) -> None:
        self.layer, self.clock, self.send, self.deliver = layer, clock, send, deliver
        self._call: DelayedCall | None = None

    def now(self) -> float:
        return self.clock.seconds()

    def pump(self) -> None:
        """Flush outputs (until a TU reacting in ``deliver`` adds none) and re-arm the timer."""
        while True:
            out = self.layer.take_outgoing()
            events = self.layer.take_events() if self.deliver is not None else []
            if not out and not events:
                break
            for data, target in out:
                self.send(data, target)
            for event in events:
                self.deliver(event)  # type: ignore[misc]
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        deadline = self.layer.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - self.clock.seconds())
            self._call = self.clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._call = None
        self.layer.handle_timer(self.clock.seconds())
        self.pump()
