"""CRLF keep-alive of a connection we opened (RFC 5626 §4.4.1), as a sans-IO clock.

Why: a NAT or firewall between us and a proxy forgets an idle TCP/TLS connection silently; the
proxy then cannot reach us (incoming calls are lost) and we learn it only when a request
times out.  A double-CRLF *ping* every ``interval`` seconds keeps the binding warm, and the
single-CRLF *pong* the peer must answer within ``pong_timeout`` (RFC 5626 §4.4.1: 10 s) proves
the flow still works; when it does not come, the connection is declared dead so that the
transport closes it and what used it fails over at once, not after Timer B/F.

Only outbound connections ping (we are the client of the flow); pings from our clients are
answered by the stream (:mod:`wcsgw.sip.stream`).  The caller gives "now" and asks
:meth:`CrlfKeepAlive.fire` when :meth:`deadline` is due.
"""

from __future__ import annotations

import enum

__all__ = ["CrlfKeepAlive", "KeepAliveAction", "PING", "PONG", "PONG_TIMEOUT"]

#: RFC 5626 §4.4.1: the double CRLF we send, the single CRLF that answers it.
PING = b"\r\n\r\n"
PONG = b"\r\n"
#: RFC 5626 §4.4.1: "if a pong is not received within 10 seconds, the flow has failed".
PONG_TIMEOUT = 10.0


class KeepAliveAction(enum.Enum):
    NOTHING = "nothing"
    PING = "ping"  # write PING now
    DEAD = "dead"  # the last ping went unanswered: close the connection, fail its flows


class CrlfKeepAlive:
    """When to ping, and whether the flow is still alive."""

    def __init__(self, interval: float, now: float, pong_timeout: float = PONG_TIMEOUT) -> None:
        if interval <= 0 or pong_timeout <= 0:
            raise ValueError("interval and pong_timeout must be positive")
        self.interval = interval
        self.pong_timeout = pong_timeout
        self._next_ping = now + interval
        self._pong_due: float | None = None
        self.pings_sent = 0
        self.dead = False

    def deadline(self) -> float | None:
        """When :meth:`fire` must next be called (None once dead)."""
        if self.dead:
            return None
        return self._pong_due if self._pong_due is not None else self._next_ping

    def fire(self, now: float) -> KeepAliveAction:
        if self.dead:
            return KeepAliveAction.NOTHING
        if self._pong_due is not None:
            if now >= self._pong_due:
                self.dead = True
                return KeepAliveAction.DEAD
            return KeepAliveAction.NOTHING
        if now >= self._next_ping:
            self._pong_due = now + self.pong_timeout
            self.pings_sent += 1
            return KeepAliveAction.PING
        return KeepAliveAction.NOTHING

    def pong(self, now: float) -> None:
        """A single CRLF arrived: the outstanding ping (if any) is answered; the next ping is
        an interval after this pong.  A pong nobody asked for changes nothing."""
        if self._pong_due is not None and not self.dead:
            self._pong_due = None
            self._next_ping = now + self.interval
