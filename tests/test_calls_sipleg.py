"""The legs and the call-control events (wcsgw/calls/events.py): the SIP leg alone
(wcsgw/calls/sipleg.py: one interface over the UAC and the UAS session, and what its SIP events
mean; no sockets, no clock, the sessions are fakes that record what the leg was asked), and
the browser leg's states as a call hears them (a real Call with fake legs, tests/call_fakes.py,
on a task.Clock)."""

from __future__ import annotations

from typing import Any

from twisted.trial import unittest

from tests.test_calls_hold import HoldCase
from wcsgw.calls import events as cc
from wcsgw.calls.sipleg import IncomingSipLeg, OutgoingSipLeg, to_control
from wcsgw.calls.status import CallStatus, Info
from wcsgw.sip.events import (
    Answered,
    Cancelled,
    Confirmed,
    Ended,
    Failed,
    InfoAnswered,
    InfoReceived,
    Provisional,
    ReferReceived,
    ReinviteAnswered,
    ReinviteConfirmed,
    ReinviteFailed,
    ReinviteOffered,
)


class Session:
    """What a leg asks of its SIP session, recorded."""

    def __init__(self, terminated: bool = False) -> None:
        self.terminated = terminated
        self.asked: list[tuple[Any, ...]] = []
        self.offer_sdp = b"v=0"

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.asked.append((name, *args))


class LegTests(unittest.TestCase):
    def test_outgoing_leg_starts_the_invite_and_cancels_to_refuse_or_withdraw(self) -> None:
        session = Session()
        leg = OutgoingSipLeg(session)
        leg.start(1.0)
        leg.refuse(480, "Temporarily Unavailable", 2.0)
        leg.withdraw(3.0)
        self.assertEqual(session.asked, [("start", 1.0), ("hangup", 2.0), ("hangup", 3.0)])

    def test_outgoing_leg_that_is_over_withdraws_nothing(self) -> None:
        session = Session(terminated=True)
        OutgoingSipLeg(session).withdraw(1.0)
        self.assertEqual(session.asked, [])

    def test_incoming_leg_rings_refuses_with_a_final_and_withdraws_nothing(self) -> None:
        session = Session()
        leg = IncomingSipLeg(session)
        leg.start(1.0)
        leg.refuse(603, "Decline", 2.0)
        leg.withdraw(3.0)  # the INVITE's taker answers it
        leg.answer(b"sdp", 4.0)
        self.assertEqual(session.asked, [("ring", 1.0), ("reject", 603, "Decline", 2.0),
                                         ("answer", b"sdp", 4.0)])
        self.assertEqual(leg.offer_sdp, b"v=0")

    def test_both_legs_hang_up_reinvite_and_send_info_alike(self) -> None:
        for leg_type in (OutgoingSipLeg, IncomingSipLeg):
            session = Session()
            leg = leg_type(session)
            leg.hangup(1.0)
            leg.reinvite(b"offer", 2.0)
            leg.answer_reinvite(b"answer", 3.0)
            leg.reject_reinvite(488, 4.0)
            leg.send_info("application/dtmf-relay", b"Signal=1", 5.0)
            self.assertEqual(session.asked, [
                ("hangup", 1.0), ("reinvite", b"offer", 2.0), ("answer_reinvite", b"answer", 3.0),
                ("reject_reinvite", 488, 4.0),
                ("send_info", "application/dtmf-relay", b"Signal=1", 5.0)])


class ControlEventTests(unittest.TestCase):
    def test_what_each_sip_event_means_to_the_call(self) -> None:
        refer = ReferReceived("sip:1004@example.org", None, None)
        cases = [
            (Provisional(180, "Ringing"), cc.Ring(180)),
            (Provisional(183, "Session Progress", b"sdp"), cc.EarlyMedia(183, b"sdp")),
            (Answered(b"sdp"), cc.Connect(b"sdp")),
            (Confirmed(b"sdp"), cc.Confirm(b"sdp")),
            (ReinviteOffered(None), cc.Reoffer(None)),
            (ReinviteConfirmed(b"sdp"), cc.ReofferConfirmed(b"sdp")),
            (ReinviteAnswered(b"sdp"), cc.ReofferAnswered(b"sdp")),
            (ReinviteFailed(488, "488 Not Acceptable Here"),
             cc.ReofferFailed("488 Not Acceptable Here")),
            (InfoAnswered(200), cc.InfoDone(200)),
            (InfoReceived("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
             cc.Dtmf("5")),
            (InfoReceived("application/media_control+xml", b"<media_control/>"),
             cc.KeyFrameRequest(b"<media_control/>")),
            (refer, cc.TransferRequest(refer)),
            (Failed(486, "486 Busy Here"), cc.Fail(486, "486 Busy Here")),
            (Ended("", by_remote=True), cc.Disconnect(None, Info.NORMAL)),
            (Ended("Bye", by_remote=True), cc.Disconnect(None, "Bye")),
            (Cancelled(), cc.Disconnect(487, "Cancelled by the caller")),
        ]
        for sip, control in cases:
            self.assertEqual(to_control(sip), control, sip)

    def test_an_info_that_is_neither_digits_nor_media_control_means_nothing(self) -> None:
        self.assertIsNone(to_control(InfoReceived("text/plain", b"hello")))
        self.assertIsNone(to_control(object()))


class BrowserLegStateTests(HoldCase):
    """The browser leg's states reach the call as call-control events: ICE or DTLS failing
    fails the call (FAILED, why in ``info``, the SIP status kept) and hangs up the SIP leg."""

    def test_ice_and_dtls_failures_fail_the_call_and_hang_up_the_sip_leg(self) -> None:
        for state, info in (("failed:ice", Info.ICE), ("failed:dtls", Info.DTLS)):
            call = self.established()
            call.leg.on_state(state)
            self.assertEqual((call.status, call.info, call.sip_status),
                             (CallStatus.FAILED, info, 200))
            self.assertTrue(call.invite.hung_up)

    def test_other_states_are_nothing_to_the_call(self) -> None:
        call = self.established()
        call.leg.on_state("connected")
        self.assertEqual(call.status, CallStatus.ESTABLISHED)
        self.assertFalse(call.invite.hung_up)
