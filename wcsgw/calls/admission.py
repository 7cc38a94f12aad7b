"""``[limits]`` as the gateway applies them: who may open a session or place a call, and why not.

Every session and call comes through :class:`~wcsgw.calls.gateway.CallGateway`, so that is
where the limits are enforced; the rules themselves are here, apart from the bookkeeping of
sessions and calls, so each limit reads as one check and every refusal is made (and counted,
for ``/metrics``) the same way: a :class:`CallError` whose message names the setting.  The
counting underneath (the per-address call window, the port reserve's size, what "per IP"
means) is the sans-IO :mod:`wcsgw.calls.limits`.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Literal

from twisted.logger import Logger

from wcsgw.calls.drain import DRAINING_MESSAGE, Drain
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.limits import SlidingWindow, address_key, effective_reserve
from wcsgw.calls.overload import OVERLOADED_MESSAGE, OverloadDetector
from wcsgw.calls.sessions import Session
from wcsgw.config import LimitsSettings
from wcsgw.media.ports import PortsExhausted, PortsReserved

__all__ = ["LIMIT_NAMES", "Admission", "GateRefusal", "drain_gate", "overload_gate"]

#: What a refusal can be counted under (the label values of wcsgw_limit_refusals_total):
#: the [limits] caps, and the gates of a draining or overloaded gateway.
LIMIT_NAMES = ("max_sessions", "sessions_per_ip", "calls_per_session", "calls_per_minute_per_ip",
               "port_reserve", "ports", "draining", "overloaded")

Kind = Literal["session", "call"]

log = Logger(namespace="wcsgw.calls")


class Admission:
    """The ``[limits]`` checks: sessions per peer address and in all, live calls per session
    (incoming and REST-handed calls included), calls per minute per address (WebSocket
    ``call`` and REST ``call/startup`` share one window), and the media port reserve.
    Sans-IO like the counting it uses: the time comes from the caller."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self.call_rate = SlidingWindow(limits.calls_per_minute_per_ip, 60.0)
        #: refusals so far by limit (/metrics ``wcsgw_limit_refusals_total``); "ports" is
        #: the range exhausted, "port_reserve" a session's further call kept off the reserve
        self.refusals: dict[str, int] = dict.fromkeys(LIMIT_NAMES, 0)
        #: what may close the door to all new work for a while (a draining gateway, overload
        #: control): each is asked with what is coming ("session": a fresh ``connect``, not a
        #: socket — a draining gateway still takes its own sessions back by ``authToken`` —
        #: or "call") and returns its refusal, a CallError naming why, or None
        self.gates: list[Callable[[Kind], CallError | None]] = []

    def check_open(self, kind: Kind) -> None:
        """Is the gateway taking new sessions or calls at all?  The first gate's refusal if
        not (checked before the per-session and per-address limits)."""
        for gate in self.gates:
            refusal = gate(kind)
            if refusal is not None:
                raise refusal

    def admit_session(self, sessions: Collection[Session], peer: str | None) -> None:
        """May one more session open from ``peer``, beside ``sessions``?
        :class:`CallError` (TOO_MANY_SESSIONS) naming the limit if not."""
        limits = self.limits
        peer = address_key(peer) if peer is not None else None
        if len(sessions) >= limits.max_sessions:
            raise self.refused("max_sessions", Codes.TOO_MANY_SESSIONS, f"Too many sessions: "
                               f"limits.max_sessions is {limits.max_sessions}")
        if peer is not None:
            from_peer = sum(1 for s in sessions if s.peer == peer)
            if from_peer >= limits.sessions_per_ip:
                raise self.refused("sessions_per_ip", Codes.TOO_MANY_SESSIONS,
                                   f"Too many sessions from {peer}: limits.sessions_per_ip is "
                                   f"{limits.sessions_per_ip}")

    def check_session_calls(self, session: Session) -> None:
        """``limits.calls_per_session``: live calls of the session, incoming ones included."""
        cap = self.limits.calls_per_session
        if len(session.calls) >= cap:
            raise self.refused("calls_per_session", Codes.TOO_MANY_CALLS,
                               f"Too many calls: limits.calls_per_session is {cap}")

    def check_rate(self, peer: str | None, now: float) -> None:
        """``limits.calls_per_minute_per_ip``: counts this call for ``peer`` at ``now`` (None:
        the address is not known — the operator's own calls from inside — and not limited)."""
        if peer is None:
            return
        peer = address_key(peer)  # idempotent: sessions keep the key already
        if not self.call_rate.admit(peer, now):
            wait = self.call_rate.retry_after(peer, now)
            raise self.refused("calls_per_minute_per_ip", Codes.CALL_RATE,
                               f"Too many calls from {peer}: limits.calls_per_minute_per_ip "
                               f"is {self.limits.calls_per_minute_per_ip}; try again in "
                               f"{max(1, round(wait))} s")

    def port_reserve(self, session: Session | None, media_ports: Any) -> int:
        """How many media ports a call of ``session`` must leave free: a session that
        already has a live call starts the next one inside the reserve, so it cannot take the
        last ports and every other session can still place its first call (0: no reserve;
        ``media_ports`` None: none kept)."""
        if session is not None and session.calls and media_ports is not None:
            return effective_reserve(self.limits.port_reserve, media_ports.size)
        return 0

    def port_refusal(self, exc: Exception, call_id: str) -> CallError | None:
        """The refusal a start that raised ``exc`` gets when it ran out of media ports (the
        reserve, or the range): a :class:`CallError` (NO_PORTS), not an internal error.
        None for any other failure."""
        if isinstance(exc, PortsReserved):
            return self.refused(
                "port_reserve", Codes.NO_PORTS,
                f"No media ports free for another call of this session: the last "
                f"{exc.reserve} are kept for other sessions (limits.port_reserve)")
        if isinstance(exc, PortsExhausted):
            log.warn("call {call_id} refused: {error}", call_id=call_id, error=str(exc))
            return self.refused("ports", Codes.NO_PORTS, "No media ports free")
        return None

    def refused(self, limit: str, code: int, message: str) -> CallError:
        """Count a refusal by ``limit`` (for /metrics) and make its error."""
        self.refusals[limit] = self.refusals.get(limit, 0) + 1
        return CallError(code, message)

    def closed(self, limit: str, code: int, message: str, retry_after: int) -> GateRefusal:
        """Count a gate's refusal by ``limit`` and make its error, with the Retry-After a
        SIP refusal carries."""
        self.refusals[limit] = self.refusals.get(limit, 0) + 1
        return GateRefusal(code, message, retry_after=retry_after)


class GateRefusal(CallError):
    """A gate's refusal: the gateway takes no new work *for now*.  ``retry_after`` (seconds)
    goes into the SIP 503's Retry-After, so a proxy tries another gateway meanwhile."""

    def __init__(self, code: int, message: str, *, retry_after: int) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


def drain_gate(admission: Admission, drain: Drain,
               clock: Callable[[], float]) -> Callable[[Kind], CallError | None]:
    """The gate of a draining gateway: every new session and call refused (DRAINING)."""

    def gate(kind: Kind) -> CallError | None:
        if not drain.draining:
            return None
        return admission.closed("draining", Codes.DRAINING, DRAINING_MESSAGE,
                                drain.retry_after(clock()))

    return gate


def overload_gate(admission: Admission,
                  detector: OverloadDetector) -> Callable[[Kind], CallError | None]:
    """The gate of an overloaded gateway: new calls refused (OVERLOADED); sessions still
    open — a WebSocket without a call costs next to nothing, and refusing it would only make
    browsers reconnect over and over."""

    def gate(kind: Kind) -> CallError | None:
        if kind != "call" or not detector.overloaded:
            return None
        return admission.closed("overloaded", Codes.OVERLOADED, OVERLOADED_MESSAGE,
                                detector.retry_after())

    return gate
