"""What the four transaction state machines share: the RFC's state names, the response
classes their tables are keyed by, :class:`Transaction` — identity, timers in the layer's
queue, output, and table dispatch — and :class:`TransactionHost`, all a transaction may ask of
the layer that holds it, so the machines never reach into the layer's own bookkeeping.  The
machines themselves are in :mod:`~wcsgw.sip.transaction.client` and
:mod:`~wcsgw.sip.transaction.server`."""

from __future__ import annotations

import enum
from typing import Callable, ClassVar, Protocol

from wcsgw.sip.message import Request
from wcsgw.sip.target import Target
from wcsgw.sip.timers import TimerConfig, TimerQueue
from wcsgw.sip.transaction.events import Event, TransactionTimeout, TransportFailed
from wcsgw.sip.transaction.matching import Key


class State(enum.Enum):
    """Transaction states; the names are the RFC's (Figures 5-8, RFC 6026 Figures 3-5)."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ResponseClass(enum.Enum):
    """Response classes as the state machines tell them apart."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"


def classify(status: int) -> ResponseClass:
    if status < 200:
        return ResponseClass.PROVISIONAL
    if status < 300:
        return ResponseClass.SUCCESS
    return ResponseClass.FAILURE


class TransactionHost(Protocol):
    """The layer as its transactions see it (:class:`~wcsgw.sip.transaction.layer.TransactionLayer`):
    the timer values, the one queue every transaction's timers live in, and where what a
    transaction sends, reports and ends goes."""

    timers: TimerConfig
    timer_queue: TimerQueue["Transaction"]

    def transmit(self, data: bytes, target: Target) -> None:
        """Queue ``data`` for ``target`` (the adapter sends it after this input)."""

    def emit(self, event: Event) -> None:
        """Give ``event`` to the transaction user."""

    def terminate(self, txn: "Transaction") -> None:
        """``txn`` is over: forget it, drop its timers, tell the transaction user."""


class Transaction:
    """What all four machines share: identity, timers, output, and table dispatch.

    Each concrete class fills ``_TIMERS`` (``(state, timer name) -> handler``) and
    ``_FAIL_ON_TRANSPORT_ERROR``; a timer or input the table does not list is ignored.
    """

    _INITIAL: ClassVar[State]
    _TIMERS: ClassVar[dict[tuple[State, str], Callable[..., None]]] = {}
    _FAIL_ON_TRANSPORT_ERROR: ClassVar[frozenset[State]] = frozenset()

    def __init__(self, layer: TransactionHost, request: Request, key: Key,
                 target: Target) -> None:
        self.request = request
        self.key = key
        #: client: where the request goes; server: where responses go (§18.2.2).
        self.target = target
        self.state = self._INITIAL
        self._layer = layer
        self._config = layer.timers
        self._interval = 0.0  # current retransmission interval of Timer A, E or G
        #: when the layer started it (``launch``, or the request's arrival)
        self.started = 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request.method} {self.state.value} {self.key!r}>"

    @property
    def deadlines(self) -> dict[str, float]:
        """Armed timers by RFC name (``{"A": 1.5, "B": 32.0}``): for tests and debugging."""
        return self._layer.timer_queue.armed(self)

    # -- inputs the layer feeds in --

    def on_timer(self, name: str, now: float) -> None:
        handler = self._TIMERS.get((self.state, name))
        if handler is not None:
            handler(self, now)

    def on_transport_error(self, now: float, reason: str = "transport") -> None:
        if self.state in self._FAIL_ON_TRANSPORT_ERROR:
            self._layer.emit(TransportFailed(self, reason))
            self._terminate()

    # -- helpers for the state machines --

    def _arm(self, name: str, delay: float, now: float) -> None:
        self._layer.timer_queue.arm(self, name, now + delay)

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._layer.timer_queue.cancel(self, name)

    def _enter(self, state: State) -> None:
        """Move to ``state``, dropping every timer of the state left behind."""
        self._layer.timer_queue.cancel_all(self)
        self.state = state

    def _linger(self, name: str, unreliable_delay: float, now: float) -> None:
        """Arm a wait-for-retransmissions timer (D, I, J, K): zero on reliable transports,
        where "Terminated immediately" is what the RFC means."""
        if self.target.reliable or unreliable_delay <= 0:
            self._terminate()
        else:
            self._arm(name, unreliable_delay, now)

    def _send(self, data: bytes) -> None:
        self._layer.transmit(data, self.target)

    def _emit(self, event: Event) -> None:
        self._layer.emit(event)

    def _terminate(self, now: float = 0.0) -> None:
        self._layer.terminate(self)

    def _timeout(self, now: float) -> None:
        self._emit(TransactionTimeout(self))
        self._terminate()
