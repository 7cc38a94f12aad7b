"""The built-in test lines: ``echo`` (sends your audio back), ``tone`` (a 1 kHz tone) and
``dtmf`` (says back and plays each digit you press).

They make a fresh install callable with no PBX anywhere: a browser session with an empty SIP
domain calls ``echo`` or ``tone``, and the gateway's own SIP endpoint INVITEs the test lines
over loopback UDP.  So the test lines are a *separate* SIP user agent — their own
:class:`~wcsgw.sip.service.SipService` on 127.0.0.1, port chosen at start — and a call to them
goes through the whole B2BUA: INVITE, offer/answer, RTP, BYE, exactly as a call to a phone.

Each call is an :class:`~wcsgw.sip.uas.IncomingInvite` answered at once:

* the Request-URI's user picks the line; any other user gets 404, an INVITE no dialog can be
  made from 400, an offer that does not parse 400;
* the answer takes the first G.711 codec of the offer (PCMU or PCMA, with the offerer's payload
  type) plus telephone-event/8000 if offered; no G.711: 488.  An INVITE without SDP (late offer)
  gets our offer in the 200 and the codec is taken from the ACK's answer;
* ``echo`` re-sends every received RTP packet of the negotiated payload types (audio and
  telephone-event) as its own stream: its SSRC, continuous sequence numbers and timestamps
  (:class:`~wcsgw.media.stream.OutboundStream`);
* ``tone`` sends 160 samples of a 1 kHz sine every 20 ms (a ``LoopingCall`` on the reactor),
  timestamps +160 per packet; a late reactor catches up with a burst of up to 100 ms, and a
  longer stall is skipped with the timestamps moved on by it, so the receiver's clock stays true;
* ``dtmf`` sends silence on the same clock, and each digit it receives — RFC 4733 events or SIP
  INFO — goes back the way it came (events in its stream, or an INFO) and is then played as its
  DTMF tone pair for 200 ms (:mod:`wcsgw.calls.testdtmf`);
* media goes out only where the answer's direction allows it (a sendonly offer gets recvonly);
  RTCP that arrives is ignored and none is sent (the gateway's RTP timeout watches RTP);
* a call ends on the caller's BYE, after ``max_duration`` (10 minutes) with our BYE — a test
  line must never stay up forever — or when the service stops (BYE to every live call, bounded
  wait, then the sockets are closed whatever happened).

Media sockets come from the :class:`~wcsgw.media.ports.PortAllocator` given (the gateway passes
its own, so test-line ports stay in the configured range and never collide with a call's).

This module is the service and its front door (which INVITE becomes which line's call); one
call is a :class:`~wcsgw.calls.testcall.TestCall`, the tone's packet clock
:mod:`wcsgw.calls.testtone`, the dtmf line's stream :mod:`wcsgw.calls.testdtmf`.
"""

from __future__ import annotations

from typing import Any

import attr
from twisted.application.service import Service
from twisted.internet import defer
from twisted.logger import Logger

from wcsgw.calls.testcall import TestCall
from wcsgw.config import SipSettings
from wcsgw.media.ports import PortAllocator
from wcsgw.sip.account import uri_host
from wcsgw.sip.dialogs import DialogRouter
from wcsgw.sip.errors import SipParseError
from wcsgw.sip.ids import new_tag
from wcsgw.sip.message import Request
from wcsgw.sip.responses import make_response
from wcsgw.sip.service import SipService
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import ServerTransaction
from wcsgw.sip.uas import IncomingInvites
from wcsgw.sip.uri import parse_uri

__all__ = ["LINES", "MAX_CALL_DURATION", "TestCall", "TestLines"]

log = Logger(namespace="wcsgw.testlines")

#: The lines there are.
LINES: tuple[str, ...] = ("echo", "tone", "dtmf")
#: No test call lasts longer than this (seconds).
MAX_CALL_DURATION = 600.0
#: How long stopping waits for the BYEs of live calls to be answered.
STOP_GRACE = 2.0


class _Handler:
    """The test lines' RequestHandler: new INVITEs become :class:`TestCall` s."""

    def __init__(self, lines: "TestLines") -> None:
        self.lines = lines

    def handle_request(self, request: Request, transaction: ServerTransaction | None,
                       source: Target, now: float) -> bool:
        if request.method != "INVITE" or transaction is None:
            return False
        try:
            if request.to.tag:
                return False  # in-dialog: the DialogRouter's (481 if it knows none)
            user = parse_uri(request.uri).user or ""
        except (SipParseError, ValueError):
            user = ""
        endpoint = self.lines.endpoint
        assert endpoint is not None
        if user.lower() not in LINES:
            endpoint.respond(make_response(request, 404, to_tag=new_tag()), now)
            return True
        call = TestCall(self.lines, user.lower())
        self.lines._calls.append(call)
        call.take(request, transaction, now)
        return True


class TestLines(Service):
    """The test lines as a Twisted service: a SIP endpoint on 127.0.0.1 and its calls."""

    __test__ = False  # not a test case, whatever its name says

    def __init__(
        self,
        reactor: Any = None,
        *,
        allocator: PortAllocator | None = None,
        sip_settings: SipSettings | None = None,
        max_duration: float = MAX_CALL_DURATION,
    ) -> None:
        """``allocator`` gives media ports (default: 20000-29999 on 127.0.0.1, as the default
        media config); ``sip_settings`` the RFC 3261 timers and user agent (the gateway's
        ``[sip]``) — listen address and port are always 127.0.0.1 and a free port."""
        base = sip_settings or SipSettings()
        settings = attr.evolve(base, listen="127.0.0.1", port=0, advertised_address="",
                               user_agent=f"{base.user_agent} test lines")
        self._reactor = reactor
        self.sip = SipService(settings, reactor=reactor)
        self.allocator = allocator or PortAllocator("127.0.0.1", 20000, 29999)
        self.max_duration = max_duration
        self._calls: list[TestCall] = []
        self._idle_waiters: list[defer.Deferred[None]] = []

    @property
    def reactor(self) -> Any:
        return self.sip.reactor

    @property
    def endpoint(self) -> Any:
        return self.sip.endpoint

    @property
    def port(self) -> int:
        return self.sip.port

    @property
    def media_address(self) -> str:
        """The address put in our SDP: the allocator's, or loopback for a wildcard."""
        host = self.allocator.host
        return "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)

    def uri(self, user: str) -> str:
        """``sip:echo@127.0.0.1:PORT``: the Request-URI of a line (once started)."""
        return f"sip:{user}@{uri_host(self.sip.settings.advertised_host)}:{self.port}"

    @property
    def active_calls(self) -> int:
        """Calls taken and not yet fully closed (media ports still held)."""
        return len(self._calls)

    @property
    def calls(self) -> list[TestCall]:
        return list(self._calls)

    def wait_idle(self) -> defer.Deferred[None]:
        """Fires once no call is active (every call ended and its ports released)."""
        if not self._calls:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d

    # ------------------------------------------------------------------ service

    def startService(self) -> None:  # noqa: N802 (Twisted API)
        super().startService()  # type: ignore[no-untyped-call]  # Service is untyped
        self.sip.startService()
        endpoint = self.sip.endpoint
        assert endpoint is not None
        # In-dialog requests of calls that are gone get 481 from the router from the start.
        DialogRouter.install(endpoint)
        IncomingInvites.install(endpoint)
        endpoint.handlers.append(_Handler(self))
        log.info("test lines {lines} at {uri}", lines=", ".join(LINES), uri=self.uri("<line>"))

    def stopService(self) -> defer.Deferred[None]:  # noqa: N802
        super().stopService()  # type: ignore[no-untyped-call]  # Service is untyped
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        if self._calls:
            for call in list(self._calls):
                call.hangup()
            idle = self.wait_idle()

            def release() -> None:
                if not idle.called:
                    idle.callback(None)

            timer = self.reactor.callLater(STOP_GRACE, release)
            await idle
            if timer.active():
                timer.cancel()
            # Whatever did not end in time (a BYE unanswered): close it now.
            await defer.gatherResults([call.close() for call in list(self._calls)])
        if self.sip.running:
            await self.sip.stopService()

    def forget(self, call: TestCall) -> None:
        """``call`` is over and its ports are released: it leaves the list of calls."""
        if call in self._calls:
            self._calls.remove(call)
        if not self._calls:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                if not d.called:
                    d.callback(None)
