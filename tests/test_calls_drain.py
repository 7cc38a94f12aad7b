"""Graceful drain (issue 15, item 2): the sans-IO :class:`Drain` on a ``task.Clock``; the
service's driver over a CallGateway with SIP and calls faked (the gate's refusals, the end of
the drain when the last call ends or when ``limits.drain_seconds`` pass, SIGTERM once and
twice); and a real gateway in this process refusing through every door while its live call
to the echo line goes on: JSON-RPC 1011 (a call, a fresh connect), REST 503, ``/health`` 503, SIP 503
with Retry-After to SIPp's INVITE and to an OPTIONS probe, and ``/metrics``.  The gateway as
its own process, SIGTERMed, is ``test_drain_process.py``."""

from __future__ import annotations

import json
import signal
from typing import Any

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.peers.sipp import Sipp
from tests.support import inline
from tests.test_calls_limits import FakeSip, GatewayLimitsCase, Invite, Listener
from tests.test_front_door import UdpClient, options
from tests.test_security_limits import LimitsCase, limits_config
from wcsgw.calls.drain import Drain, DrainState, Step
from wcsgw.calls.errors import Codes
from wcsgw.calls.lifecycle import CALLS_STOP_GRACE, CallsService
from wcsgw.config import LimitsSettings


class DrainTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(100)
        self.drain = Drain(60, grace=3)

    def step(self, live: int) -> Step:
        return self.drain.step(self.clock.seconds(), live)

    def test_open_until_begun_then_begun_once(self) -> None:
        self.assertFalse(self.drain.draining)
        self.assertEqual(self.step(5), Step.NOTHING)
        self.assertIsNone(self.drain.deadline())
        self.assertTrue(self.drain.begin(self.clock.seconds()))
        self.assertTrue(self.drain.draining)
        self.assertEqual((self.drain.since, self.drain.until), (100, 160))
        self.clock.advance(10)
        self.assertFalse(self.drain.begin(self.clock.seconds()))  # a second ask changes nothing
        self.assertEqual(self.drain.until, 160)

    def test_calls_go_on_until_the_last_ends_then_stop(self) -> None:
        self.drain.begin(self.clock.seconds())
        self.assertEqual(self.step(2), Step.WAIT)
        self.assertEqual(self.drain.deadline(), 160)
        self.clock.advance(59.9)
        self.assertEqual(self.step(1), Step.WAIT)
        self.assertEqual(self.step(0), Step.STOP)
        self.assertIs(self.drain.state, DrainState.DONE)
        self.assertEqual(self.step(0), Step.NOTHING)  # stopped once
        self.assertIsNone(self.drain.deadline())

    def test_at_drain_seconds_the_rest_are_hung_up_then_stop_after_the_grace(self) -> None:
        self.drain.begin(self.clock.seconds())
        self.clock.advance(60)
        self.assertEqual(self.step(2), Step.HANG_UP)
        self.assertIs(self.drain.state, DrainState.ENDING)
        self.assertEqual(self.drain.deadline(), 163)
        self.clock.advance(2.9)
        self.assertEqual(self.step(1), Step.WAIT)  # a BYE not answered yet
        self.clock.advance(0.1)
        self.assertEqual(self.step(1), Step.STOP)  # the grace is over: stop anyway

    def test_ending_stops_as_soon_as_the_byes_are_answered(self) -> None:
        self.drain.begin(self.clock.seconds())
        self.clock.advance(61)
        self.assertEqual(self.step(1), Step.HANG_UP)
        self.assertEqual(self.step(0), Step.STOP)

    def test_no_call_stops_at_once_and_zero_seconds_hangs_up_at_once(self) -> None:
        self.drain.begin(self.clock.seconds())
        self.assertEqual(self.step(0), Step.STOP)
        now = Drain(0, grace=3)
        now.begin(self.clock.seconds())
        self.assertEqual(now.step(self.clock.seconds(), 1), Step.HANG_UP)

    def test_retry_after_covers_the_time_left_and_describe(self) -> None:
        self.drain.begin(self.clock.seconds())
        self.assertEqual(self.drain.retry_after(self.clock.seconds()), 63)
        self.clock.advance(59.5)
        self.assertEqual(self.drain.retry_after(self.clock.seconds()), 4)  # 0.5 + 3 rounded up
        self.assertEqual(self.drain.describe(self.clock.seconds(), 2),
                         {"status": "draining", "calls": 2, "secondsLeft": 1})
        self.clock.advance(1)
        self.step(1)
        self.assertEqual(self.drain.retry_after(self.clock.seconds()), 3)
        self.assertEqual(self.drain.describe(self.clock.seconds(), 1)["status"], "ending")
        self.assertEqual(Drain(60).describe(0, 0), {"status": "open", "calls": 0})


class FakeReactor(task.Clock):
    """A task.Clock with what CallsService asks of the reactor besides time."""

    def __init__(self) -> None:
        super().__init__()
        self.stops = 0

    def callWhenRunning(self, f: Any, *args: Any) -> None:  # noqa: N802 (Twisted API)
        f(*args)

    def callFromThread(self, f: Any, *args: Any) -> None:  # noqa: N802 (Twisted API)
        f(*args)

    def stop(self) -> None:
        self.stops += 1


class EndpointSip(FakeSip):
    def __init__(self) -> None:
        self.endpoint = type("Endpoint", (), {"handlers": []})()


class DrainServiceCase(GatewayLimitsCase):
    """A CallGateway with SIP and calls faked, and its CallsService on a fake reactor."""

    limits = LimitsSettings(drain_seconds=60, max_loop_lag_ms=0, max_cpu_percent=0)

    def setUp(self) -> None:
        super().setUp()
        self.reactor = FakeReactor()
        self.gateway.sip = EndpointSip()
        self.gateway.clock = self.reactor.seconds
        self.service = CallsService(self.gateway, reactor=self.reactor)
        self.service.startService()
        self.addCleanup(self.service.stopService)



class DrainServiceTests(DrainServiceCase):
    def drained_refusal(self, fn: Any, *args: Any, **kw: Any) -> None:
        error = self.refused(Codes.DRAINING, fn, *args, **kw)
        self.assertEqual(error.message, "Gateway draining")
        self.assertGreaterEqual(getattr(error, "retry_after", 0), 1)

    def test_every_door_closes_and_live_calls_go_on_until_the_last_ends(self) -> None:
        a = self.session("a")
        first, second = self.call(a), self.call(a)
        self.assertEqual(self.gateway.drain.begin("test"),
                         {"status": "draining", "calls": 2, "secondsLeft": 60})
        # a new socket still opens (it may be a session coming back with its authToken) ...
        self.gateway.admit_session("10.0.0.9")
        self.gateway.open_session("b", Listener(), peer="10.0.0.9")
        # ... but a fresh session does not connect, with its own account or a named one
        self.drained_refusal(self.gateway.connect, "b", None, False)
        self.drained_refusal(self.gateway.connect_named, "b", "trunk")
        self.drained_refusal(self.call, a)
        self.drained_refusal(self.gateway.take_incoming, self.gateway.sessions[a], object(),
                             Invite())
        self.drained_refusal(self.gateway.startup, call_id=None, callee="echo", account=None)
        self.assertEqual(self.gateway.refusals["draining"], 5)
        self.assertEqual(set(self.gateway.calls), {first, second})  # the live calls go on
        self.reactor.advance(30)
        self.gateway.hangup(a, first)
        self.reactor.advance(0)
        self.assertEqual(self.reactor.stops, 0)
        self.gateway.hangup(a, second)  # the last one ends: the gateway stops
        self.reactor.advance(0)
        self.assertEqual(self.reactor.stops, 1)
        self.reactor.advance(1000)
        self.assertEqual(self.reactor.stops, 1)

    def test_calls_left_at_drain_seconds_are_hung_up_then_the_gateway_stops(self) -> None:
        a = self.session("a")
        self.call(a)
        hung: list[str] = []
        for call in self.made:
            original = call.hangup
            call.hangup = lambda original=original, call=call: (hung.append(call.call_id),
                                                                original())
        self.gateway.drain.begin("test")
        self.reactor.advance(59.9)
        self.assertEqual((hung, self.reactor.stops), ([], 0))
        self.reactor.advance(0.1)
        self.assertEqual(len(hung), 1)  # BYE at drain_seconds
        self.reactor.advance(0)
        self.assertEqual(self.reactor.stops, 1)

    def test_a_bye_never_answered_stops_after_the_grace(self) -> None:
        a = self.session("a")
        self.call(a)
        stuck = self.made[0]
        stuck.hangup = lambda: stuck.on_gone(stuck)  # gone, but its SIP leg never settles
        self.gateway.drain.begin("test")
        self.reactor.advance(60)
        self.assertEqual(self.reactor.stops, 0)
        self.reactor.advance(CALLS_STOP_GRACE)
        self.assertEqual(self.reactor.stops, 1)
        self.gateway.registry.settled(stuck)  # for the service's own stop in the clean-up

    def test_no_live_call_stops_at_once(self) -> None:
        self.gateway.drain.begin("REST")
        self.reactor.advance(0)
        self.assertEqual(self.reactor.stops, 1)

    def test_first_sigterm_drains_second_stops_at_once_and_stop_restores_the_handler(self) -> None:
        seen: list[int] = []
        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
            service = CallsService(self.gateway, reactor=self.reactor)
            service.startService()
            handler = signal.getsignal(signal.SIGTERM)
            self.assertTrue(callable(handler))
            a = self.session("a")
            self.call(a)
            handler(signal.SIGTERM, None)  # type: ignore[operator]
            self.assertTrue(service.gateway.drain.draining)
            self.assertEqual((seen, self.reactor.stops), ([], 0))
            handler(signal.SIGTERM, None)  # type: ignore[operator]
            self.assertEqual(seen, [signal.SIGTERM])  # the handler before ours: stop now
            service.stopService()
            self.reactor.advance(10)
            self.assertEqual(self.reactor.stops, 0)  # the drain never stops it a second time
            self.assertEqual(len(self.gateway.calls), 0)  # the stop path hangs them up
            self.assertEqual(signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None), None)  # type: ignore[operator,func-returns-value]
            self.assertEqual(seen, [signal.SIGTERM, signal.SIGTERM])
        finally:
            signal.signal(signal.SIGTERM, previous)

    def test_two_gateways_in_one_process_pass_sigterm_along_whatever_the_stop_order(self) -> None:
        from tests.test_calls_limits import TESTLINES
        from wcsgw.calls.gateway import CallGateway
        from wcsgw.calls.policy import Policy

        other = CallGateway(EndpointSip(), Policy([], TESTLINES), lambda **kw: None,
                            limits=self.limits, clock=self.reactor.seconds)
        seen: list[int] = []
        previous = signal.getsignal(signal.SIGTERM)
        try:
            signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
            one = CallsService(self.gateway, reactor=self.reactor)
            two = CallsService(other, reactor=self.reactor)
            one.startService()
            two.startService()
            one.stopService()  # not the last installed: its handler stays in the chain
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
            self.assertEqual((self.gateway.drain.draining, other.drain.draining, seen),
                             (False, True, []))
            two.stopService()
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # type: ignore[operator]
            self.assertEqual(seen, [signal.SIGTERM])  # both stopped: the original handler
            self.assertEqual(self.reactor.stops, 1)  # the second one's drain: no call, done
        finally:
            signal.signal(signal.SIGTERM, previous)


class DrainGatewayTests(LimitsCase):
    """A real gateway in this process: an echo call, then REST gateway/drain."""

    config = limits_config(drain_seconds=600, max_loop_lag_ms=0, max_cpu_percent=0)

    def setUp(self) -> None:
        super().setUp()
        self.stops: list[bool] = []
        self.calls.drain.stop = lambda: self.stops.append(True)  # not this test process
        self.sip_port = self.gateway.sip.port

    async def health(self) -> tuple[int, dict]:
        status, body = await self.get("health")
        return status, json.loads(body)

    @inline
    async def test_draining_refuses_everything_new_and_the_live_call_goes_on(self) -> None:
        ws = await self.ws()
        token = (await ws.request("connect", {}))["result"]["authToken"]
        call_id = (await self.call(ws))["result"]["callId"]
        await self.established(ws, call_id)
        status, health = await self.health()
        self.assertEqual((status, health["status"]), (200, "ok"))
        self.assertEqual((await self.rest("gateway/drain", {"x": 1}))[0], 400)
        status, body = await self.rest("gateway/drain", {})
        self.assertEqual((status, body["status"], body["calls"]), (200, "draining", 1))
        self.assertEqual((await self.rest("gateway/drain", {}))[1]["status"], "draining")

        status, health = await self.health()
        self.assertEqual((status, health["status"], health["calls"]), (503, "draining", 1))
        self.assertRefused(await self.call(ws), Codes.DRAINING, "Gateway draining")
        # a new socket opens (it may be a session coming back), but a fresh connect is refused
        fresh = await self.ws()
        self.assertRefused(await fresh.request("connect", {}), Codes.DRAINING, "Gateway draining")
        status, body = await self.rest("call/startup", {"callee": "echo"})
        self.assertEqual((status, body), (503, {"error": "Gateway draining"}))

        # SIP: an OPTIONS probe and a real INVITE (SIPp) get 503 with Retry-After
        client = UdpClient()
        listening = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        client.transport.write(options("drain1"), ("127.0.0.1", self.sip_port))
        reply = await client.answers.wait_for(lambda r: not isinstance(r, bytes), timeout=5)
        self.assertEqual(reply.status, 503)
        self.assertGreater(int(reply.headers.get("Retry-After")), 500)
        sipp = Sipp("uac_refused_503.xml", remote=f"127.0.0.1:{self.sip_port}")
        self.addCleanup(sipp.stop)
        sipp.start()
        self.assertEqual(await sipp.finished(), 0, sipp.logs)
        self.assertIn("Retry-After:", sipp.logs)

        status, metrics = await self.get("metrics")
        self.assertIn(b"wcsgw_draining 1", metrics)
        self.assertIn(b'wcsgw_limit_refusals_total{limit="draining"} 4', metrics)

        # A session whose socket drops during the drain comes back (a drain must not turn a
        # network blip into a lost call): the resume is not a new session.
        ws.protocol.transport.abortConnection()
        await ws.closed
        ws = await self.ws()
        resumed = await ws.request("connect", {"authToken": token})
        self.assertTrue(resumed["result"]["resumed"], resumed)
        frame = await ws.notification("callStatus", callId=call_id)
        self.assertEqual(frame["params"]["status"], "ESTABLISHED")

        # The live call is untouched; it ends by its own hangup, and then the gateway stops.
        self.assertEqual(self.calls.calls[call_id].describe()["status"], "ESTABLISHED")
        self.assertEqual(self.stops, [])
        self.assertIn("result", await ws.request("hangup", {"callId": call_id}))
        await self.gateway.when_idle()
        for _ in range(100):
            if self.stops:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(self.stops, [True])


def _request(method: str, to_tag: str = "") -> Any:
    from wcsgw.sip.parser import parse_message

    return parse_message((
        f"{method} sip:1001-abc@127.0.0.1:5080 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKrouter1\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:1002@127.0.0.1>;tag=f1\r\n"
        f"To: <sip:1001-abc@127.0.0.1>{';tag=' + to_tag if to_tag else ''}\r\n"
        f"Call-ID: router-{method}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n").encode())


class RouterWhileDrainingTests(DrainServiceCase):
    """The SIP front of the gate (calls/inbound.py), on the router itself: what it answers
    and what it leaves to the endpoint."""

    def setUp(self) -> None:
        super().setUp()
        self.answers: list[Any] = []
        endpoint = self.gateway.sip.endpoint
        endpoint.respond = lambda response, now: self.answers.append(response)
        [self.router] = endpoint.handlers

    def handle(self, request: Any, transaction: Any = None) -> bool:
        from wcsgw.sip.target import Target

        return self.router.handle_request(request, transaction, Target("udp", "127.0.0.1", 5060),
                                          self.reactor.seconds())

    def test_invite_and_options_get_503_with_retry_after_only_while_draining(self) -> None:
        self.assertFalse(self.handle(_request("OPTIONS")))  # open: the endpoint's 200
        self.call(self.session("a"))  # a live call keeps the drain open
        self.gateway.drain.begin("test")
        self.assertTrue(self.handle(_request("OPTIONS")))
        self.assertTrue(self.handle(_request("INVITE"), transaction=object()))
        self.assertEqual([(r.status, r.headers.get("Retry-After")) for r in self.answers],
                         [(503, "63"), (503, "63")])
        self.assertEqual(self.gateway.refusals["draining"], 1)  # the INVITE; a probe is no call
        self.assertFalse(self.handle(_request("OPTIONS", to_tag="t1")))  # in a dialog: not ours
