"""Trunk health (issue 14 item 5) on the sans-IO side: the up/down machine on an injected
clock, the OPTIONS probes through a real SipEndpoint's client transactions (bytes out,
answers and timeouts in), a call on a down trunk refused before anything starts, /metrics'
``wcsgw_trunk_up`` and the ``[[accounts]]`` keys.  Against real Kamailio:
test_trunks_kamailio.py."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from tests.test_api_metrics import parse_exposition
from tests.test_calls_gateway import FakeCall, FakeSip, Listener
from wcsgw.api.metrics import render
from wcsgw.api.trunkmetrics import trunk_families
from wcsgw.calls.accounts import AccountBook
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.policy import Policy
from wcsgw.calls.trunks import Trunks
from wcsgw.config import ConfigError, parse_config
from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.health import TrunkChange, TrunkHealth, TrunkProbes, is_failure
from wcsgw.sip.message import Request
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.transaction import TimerConfig

SECRET = "tr4nk-Secret"


def trunk_account(port: int = 5080) -> SipAccount:
    return SipAccount(login="gw", password=SECRET, domain="trunk.example",
                      outbound_proxy="192.0.2.7", port=port)


class TrunkHealthTests(unittest.TestCase):
    """The state machine alone, its ``now`` from a task.Clock."""

    def test_down_after_threshold_failures_in_a_row_and_up_on_first_answer(self) -> None:
        clock = task.Clock()
        health = TrunkHealth(interval=30, threshold=3)
        health.start(clock.seconds())
        self.assertTrue(health.up)
        self.assertEqual(health.next_deadline(), 0)
        self.assertTrue(health.probe_due(clock.seconds()))
        self.assertIsNone(health.next_deadline())  # in flight: its outcome decides
        self.assertFalse(health.probe_due(clock.seconds()))  # never two at once
        self.assertIsNone(health.answered(200, clock.seconds()))
        self.assertEqual(health.next_deadline(), 30)

        changes = []
        for outcome in ("timeout", 503, "transport error", 408, "timeout"):
            clock.advance(29)
            self.assertFalse(health.probe_due(clock.seconds()))
            clock.advance(1)
            self.assertTrue(health.probe_due(clock.seconds()))
            change = (health.failed(outcome, clock.seconds()) if isinstance(outcome, str)
                      else health.answered(outcome, clock.seconds()))
            changes.append(change)
        # 503 then a transport error; a success in between would have reset the count
        self.assertEqual(changes[:2], [None, None])
        self.assertEqual(changes[2], TrunkChange(False, "transport error"))
        self.assertEqual(changes[3:], [None, None])  # stays down, no repeated change
        self.assertFalse(health.up)
        self.assertEqual(health.failures, 5)

        clock.advance(30)
        self.assertTrue(health.probe_due(clock.seconds()))
        self.assertEqual(health.answered(404, clock.seconds()), TrunkChange(True, "SIP 404"))
        self.assertTrue(health.up)
        self.assertEqual(health.failures, 0)

    def test_a_success_resets_the_count(self) -> None:
        health = TrunkHealth(interval=5, threshold=2)
        health.start(0)
        now = 0.0
        for outcome in (500, 200, 500, 200, 500):
            self.assertTrue(health.probe_due(now))
            self.assertIsNone(health.answered(outcome, now))
            now += 5
        self.assertTrue(health.up)

    def test_which_statuses_fail(self) -> None:
        self.assertEqual([s for s in (200, 401, 403, 404, 405, 408, 480, 500, 503, 600)
                          if is_failure(s)], [408, 500, 503, 600])

    def test_bad_settings(self) -> None:
        for kw in ({"interval": 0}, {"interval": 5, "threshold": 0}):
            with self.assertRaises(ValueError):
                TrunkHealth(**kw)


class ProbeTests(unittest.TestCase):
    """TrunkProbes on a real sans-IO SipEndpoint: the OPTIONS bytes, answers, Timer F."""

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5062,
                                                   timers=TimerConfig(t1=0.05, t2=0.4)))
        self.probes = TrunkProbes(self.endpoint.send_request, self.endpoint.deadlines)
        self.changes: list[TrunkChange] = []
        self.health = TrunkHealth(interval=10, threshold=2)
        self.account = trunk_account()
        self.probes.watch(self.account, self.health, self.clock.seconds(), self.changes.append)

    def sent(self) -> list[tuple[Request, Target]]:
        out = []
        for data, target in self.endpoint.take_outgoing():
            message = parse_message(data)
            assert isinstance(message, Request)
            out.append((message, target))
        return out

    def run_until(self, when: float) -> None:
        """Fire the endpoint's deadlines in order up to ``when`` (as the adapter would)."""
        while True:
            due = self.endpoint.next_deadline()
            if due is None or due > when:
                break
            self.clock.advance(max(0.0, due - self.clock.seconds()))
            self.endpoint.handle_timer(self.clock.seconds())
        self.clock.advance(max(0.0, when - self.clock.seconds()))

    def answer(self, request: Request, status: int) -> None:
        response = make_response(request, status, to_tag="t1")
        self.endpoint.receive_bytes(response.to_bytes(), Target("UDP", "192.0.2.7", 5080),
                                    self.clock.seconds())

    def test_options_to_the_next_hop_then_down_on_timeouts_and_up_again(self) -> None:
        ((options, target),) = self.sent()
        self.assertEqual(target, Target("UDP", "192.0.2.7", 5080))
        self.assertEqual(options.method, "OPTIONS")
        self.assertEqual(options.uri, "sip:192.0.2.7:5080")  # the hop itself, no user part
        self.assertIn("sip:gw@trunk.example", options.headers.get("From"))
        self.assertEqual(options.headers.get("CSeq"), "1 OPTIONS")
        self.assertNotIn(SECRET.encode(), options.to_bytes())
        self.answer(options, 200)
        self.assertEqual(self.changes, [])

        # next probe 10 s later; nobody answers it nor the next: Timer F (64*T1 = 3.2 s) each
        self.run_until(10)
        ((second, _),) = self.sent()
        self.assertEqual(second.headers.get("CSeq"), "2 OPTIONS")
        self.assertEqual(second.headers.get("Call-ID"), options.headers.get("Call-ID"))
        self.run_until(13.3)
        self.assertEqual(self.changes, [])  # one failure: still up (threshold 2)
        self.assertTrue(self.health.up)
        self.sent()  # retransmissions of the unanswered one
        self.run_until(23.3)
        self.assertIn("3 OPTIONS", [r.headers.get("CSeq") for r, _ in self.sent()])
        self.run_until(26.6)
        self.assertEqual(len(self.changes), 1)
        self.assertFalse(self.changes[0].up)
        self.assertFalse(self.health.up)

        self.run_until(36.6)
        fourth = [r for r, _ in self.sent() if r.headers.get("CSeq") == "4 OPTIONS"][0]
        self.answer(fourth, 200)
        self.assertEqual(self.changes[1:], [TrunkChange(True, "SIP 200")])

    def test_a_503_counts_and_stop_sends_no_more(self) -> None:
        ((options, _),) = self.sent()
        self.answer(options, 503)
        self.run_until(10)
        ((second, _),) = self.sent()
        self.answer(second, 503)
        self.assertEqual(self.changes, [TrunkChange(False, "SIP 503")])
        self.probes.stop()
        self.run_until(100)
        self.assertEqual([r for r, _ in self.sent() if r.method == "OPTIONS"], [])
        self.assertIsNone(self.endpoint.next_deadline())


class GatewayTests(unittest.TestCase):
    """A call routed to a down trunk is refused before anything starts (REST too)."""

    def setUp(self) -> None:
        self.calls: list[FakeCall] = []

        def factory(**kw: Any) -> FakeCall:
            call = FakeCall(**kw)
            self.calls.append(call)
            return call

        self.gw = CallGateway(FakeSip(), Policy([], "sip:{user}@127.0.0.1:5999"), factory)
        self.gw.file_call_factory = factory
        self.office = trunk_account()
        self.gw.accounts = AccountBook([("office", self.office)])
        self.gw.trunks = Trunks()
        self.trunk = self.gw.trunks.add("office", self.office, options_interval=30,
                                        options_failures=1)
        self.gw.open_session("a", Listener())
        self.gw.connect_named("a", "office")

    def call(self) -> str:
        return self.gw.call("a", call_id=None, callee="5551234", visible_name=None,
                            has_audio=True, has_video=False, sdp="v=0", sip_headers={})

    def test_down_refused_fast_up_again_calls(self) -> None:
        health = self.trunk.health
        assert health is not None
        health.start(0)
        self.assertTrue(health.probe_due(0))
        health.failed("timeout", 0)
        for place in (self.call, lambda: self.gw.startup(call_id=None, callee="5551234",
                                                         account=self.office)):
            with self.assertRaises(CallError) as caught:
                place()
            self.assertEqual(caught.exception.code, Codes.FORBIDDEN)
            self.assertIn("Trunk down: account 'office'", caught.exception.message)
            self.assertIn("timeout", caught.exception.message)
            self.assertNotIn(SECRET, caught.exception.message)
        self.assertEqual(self.calls, [])
        self.assertEqual(self.gw.calls, {})

        self.assertTrue(health.probe_due(30))
        health.answered(200, 30)
        self.call()
        self.assertEqual(len(self.calls), 1)
        self.assertTrue(self.calls[0].started)

    def test_trunk_without_interval_is_never_refused_nor_in_metrics(self) -> None:
        trunks = Trunks()
        trunks.add("plain", trunk_account())
        self.assertEqual(trunks.outgoing("plain", {"X-A": "1"}), {"X-A": "1"})
        self.assertEqual(trunks.probed(), [])
        self.assertEqual(trunks.outgoing(None, {}), {})  # a browser's own account


class MetricsTests(unittest.TestCase):
    def test_trunk_up_by_account_name(self) -> None:
        trunks = Trunks()
        up = trunks.add("office", trunk_account(), options_interval=30)
        down = trunks.add("backup", trunk_account(5090), options_interval=30,
                          options_failures=1)
        trunks.add("unprobed", trunk_account(5091))
        assert down.health is not None and up.health is not None
        down.health.start(0)
        down.health.probe_due(0)
        down.health.failed("transport error", 0)
        text = render(trunk_families(trunks)).decode()
        families = parse_exposition(text)
        samples = families["wcsgw_trunk_up"]["samples"]
        self.assertEqual(families["wcsgw_trunk_up"]["type"], "gauge")
        self.assertEqual(sorted((dict(labels)["account"], value)
                                for (_name, labels), value in samples.items()),
                         [("backup", 0.0), ("office", 1.0)])
        self.assertNotIn("unprobed", text)
        self.assertNotIn("trunk.example", text)


class ConfigTests(unittest.TestCase):
    BASE = {"login": "gw", "domain": "trunk.example", "name": "office"}

    def error(self, **keys: Any) -> str:
        with self.assertRaises(ConfigError) as caught:
            parse_config({"accounts": [{**self.BASE, **keys}]})
        return str(caught.exception)

    def test_keys_parse_and_default_off(self) -> None:
        (plain,) = parse_config({"accounts": [self.BASE]}).accounts
        self.assertEqual((plain.options_interval, plain.options_failures,
                          plain.asserted_identity, plain.privacy), (0, 3, "", ""))
        (full,) = parse_config({"accounts": [{
            **self.BASE, "options_interval": 30, "options_failures": 2,
            "asserted_identity": "sip:+441234567890@trunk.example", "privacy": "id;critical",
        }]}).accounts
        self.assertEqual((full.options_interval, full.options_failures, full.privacy),
                         (30, 2, "id;critical"))
        trunks = Trunks.from_config([full], [trunk_account()])
        (trunk,) = list(trunks)
        self.assertEqual(trunk.identity, [
            ("P-Asserted-Identity", "<sip:+441234567890@trunk.example>"),
            ("Privacy", "id;critical")])
        self.assertEqual(trunks.probed(), [trunk])

    def test_bad_values_name_the_key(self) -> None:
        for keys, where in (
            ({"options_interval": -1}, "accounts[0].options_interval"),
            ({"options_interval": "30"}, "accounts[0].options_interval"),
            ({"options_failures": 0}, "accounts[0].options_failures"),
            ({"asserted_identity": "+441234"}, "accounts[0].asserted_identity"),
            ({"asserted_identity": "sip:a@b>\r\nVia: x"}, "accounts[0].asserted_identity"),
            ({"privacy": "id;none"}, "accounts[0].privacy"),
            ({"privacy": "everything"}, "accounts[0].privacy"),
        ):
            with self.subTest(keys=keys):
                self.assertTrue(self.error(**keys).startswith(where), self.error(**keys))

    def test_named_accounts_only(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            parse_config({"accounts": [{"login": "gw", "domain": "t.example",
                                        "options_interval": 30}]})
        self.assertEqual(caught.exception.key, "accounts[0].options_interval")
