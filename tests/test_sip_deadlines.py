"""The endpoint's one timer heap for the usages' deadlines (no scan of the live sessions)."""

from __future__ import annotations

import random

from twisted.trial import unittest

from tests.test_sip_invite import SDP_OFFER, CallHarness
from wcsgw.sip.account import SipAccount
from wcsgw.sip.endpoint import EndpointConfig, SipEndpoint
from wcsgw.sip.invite import Failed, OutgoingInvite
from wcsgw.sip.message import Request
from wcsgw.sip.parser import parse_message
from wcsgw.sip.responses import make_response
from wcsgw.sip.target import Target
from wcsgw.sip.timers import Deadlines


class DeadlinesTests(unittest.TestCase):
    def setUp(self) -> None:
        self.wakes = 0
        self.fired: list[tuple[str, float]] = []

        def wake() -> None:
            self.wakes += 1

        self.deadlines = Deadlines(wake)

    def new(self, name: str):  # type: ignore[no-untyped-def]
        return self.deadlines.new(lambda now: self.fired.append((name, now)))

    def test_set_moves_and_clear_drops(self) -> None:
        a, b = self.new("a"), self.new("b")
        a.set(5.0)
        b.set(3.0)
        self.assertEqual(self.deadlines.next_deadline(), 3.0)
        b.set(7.0)  # moved later: the stale entry does not count
        self.assertEqual((a.at, b.at, self.deadlines.next_deadline()), (5.0, 7.0, 5.0))
        a.clear()
        self.assertEqual((a.at, self.deadlines.next_deadline(), len(self.deadlines)),
                         (None, 7.0, 1))
        self.assertEqual(self.wakes, 3)  # every arming tells the adapter

    def test_fire_due_in_order_once(self) -> None:
        a, b, c = self.new("a"), self.new("b"), self.new("c")
        a.set(2.0)
        b.set(1.0)
        c.set(9.0)
        self.deadlines.fire_due(2.0)
        self.assertEqual(self.fired, [("b", 2.0), ("a", 2.0)])
        self.assertEqual((a.at, b.at, c.at), (None, None, 9.0))
        self.deadlines.fire_due(2.0)
        self.assertEqual(len(self.fired), 2)

    def test_deadline_armed_while_firing_and_due_runs_too(self) -> None:
        later = self.new("later")
        first = self.deadlines.new(lambda now: later.set(now))
        first.set(1.0)
        self.deadlines.fire_due(1.0)
        self.assertEqual(self.fired, [("later", 1.0)])


class EndpointHeapTests(unittest.TestCase):
    def test_sessions_share_one_heap_without_a_scan(self) -> None:
        h = CallHarness(no_answer_timeout=7.0)
        others = [OutgoingInvite(h.ep, h.account, f"sip:100{i}@127.0.0.1", SDP_OFFER,
                                 listener=h.events.append, no_answer_timeout=t)
                  for i, t in ((3, 3.0), (4, 5.0))]
        h.start()
        for call in others:
            call.start(0.0)
        self.assertEqual(len(h.ep.deadlines), 3)  # one no-answer timeout each
        self.assertEqual(h.ep.deadlines.next_deadline(), 3.0)
        self.assertEqual(h.ep.next_deadline(), 0.5)  # Timer A of the INVITEs comes first
        self.assertEqual(h.ep.timed_users, [h.call, *others])

    def test_an_ended_session_leaves_no_deadline(self) -> None:
        h = CallHarness(no_answer_timeout=5.0)
        h.start()
        self.assertEqual(len(h.ep.deadlines), 1)
        self.assertEqual(h.ep.deadlines.next_deadline(), h.call.next_deadline())
        h.advance(40.0)  # no answer, no provisional: Timer B settles it
        self.assertIsInstance(h.events[-1], Failed)
        self.assertEqual(len(h.ep.deadlines), 0)
        self.assertEqual(h.ep.timed_users, [])


class RegistrationHeapTests(unittest.TestCase):
    """A REGISTER client's refresh is a Deadline too; none while its REGISTER is in flight."""

    def test_refresh_deadline_only_between_transactions(self) -> None:
        ep = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5099), rng=random.Random(1))
        account = SipAccount(login="1001", password="x", domain="127.0.0.1", port=5060)
        reg = ep.register(account, 0.0)
        [register] = [parse_message(d) for d, _ in ep.take_outgoing()]
        assert isinstance(register, Request)
        self.assertEqual(len(ep.deadlines), 0)  # in flight: its answer decides
        ok = make_response(register, 200, to_tag="r1")
        ok.headers.add("Contact", f"{register.headers.get('Contact')};expires=120")
        ep.receive_bytes(ok.to_bytes(), Target("UDP", "127.0.0.1", 5060), 0.1)
        self.assertEqual(len(ep.deadlines), 1)
        refresh = reg.registration.next_deadline()
        self.assertIsNotNone(refresh)
        self.assertEqual(ep.deadlines.next_deadline(), refresh)
        assert refresh is not None
        ep.handle_timer(refresh)  # the refresh REGISTER goes out; nothing armed meanwhile
        self.assertEqual([parse_message(d).method for d, _ in ep.take_outgoing()],  # type: ignore[union-attr]
                         ["REGISTER"])
        self.assertEqual(len(ep.deadlines), 0)
        ep.unregister(reg, refresh + 0.1)
        self.assertEqual(len(ep.deadlines), 0)
