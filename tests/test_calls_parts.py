"""The call's features that are objects of their own, alone on a task.Clock, no sockets:
the SIP INFO queue (wcsgw.calls.infoqueue), media supervision (wcsgw.calls.supervision),
both sides of a transfer (wcsgw.calls.transferor, wcsgw.calls.transferee), hold
(wcsgw.calls.hold) and our SDP toward the SIP side (wcsgw.calls.sipsdp)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from wcsgw.calls.errors import CallError
from wcsgw.calls.hold import Hold, holds_us
from wcsgw.calls.infoqueue import FAST_UPDATE, InfoQueue
from wcsgw.calls.policy import Policy
from wcsgw.calls.sipleg import OutgoingSipLeg
from wcsgw.calls.sipsdp import SipSdp
from wcsgw.calls.status import CallStatus
from wcsgw.calls.supervision import MEDIA_TICK, Supervision
from wcsgw.calls.transferee import OLD_DIALOG_GRACE, Transferee
from wcsgw.calls.transferor import Transfer, Transferor
from wcsgw.sdp.model import SessionDescription
from wcsgw.sdp.parser import parse_sdp
from wcsgw.sip.account import SipAccount
from wcsgw.sip.events import (
    Answered,
    Provisional,
    ReferAccepted,
    ReferFailed,
    ReferProgress,
    ReferReceived,
)
from wcsgw.sip.mediacontrol import MEDIA_CONTROL

ACCOUNT = SipAccount(login="1001", password="pw", domain="127.0.0.1")


class InfoQueueTests(unittest.TestCase):
    def setUp(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.answered: list[int | None] = []
        self.fail = False

        def send(content_type: str, body: bytes) -> None:
            if self.fail:
                raise RuntimeError("no dialog")
            self.sent.append((content_type, body))

        self.queue = InfoQueue(send, self.answered.append)

    def test_one_at_a_time_in_order(self) -> None:
        self.queue.send_digits("12")
        self.assertEqual(len(self.sent), 1)
        self.assertIn(b"Signal=1", self.sent[0][1])
        self.queue.answered(200)
        self.assertEqual(len(self.sent), 2)
        self.assertIn(b"Signal=2", self.sent[1][1])
        self.queue.answered(200)
        self.assertEqual(len(self.sent), 2)
        self.assertEqual(self.answered, [])  # digits are not key-frame requests

    def test_fast_update_jumps_the_queue(self) -> None:
        self.queue.send_digits("12")
        self.assertTrue(self.queue.fast_update())
        self.queue.answered(200)  # the first digit's answer
        self.assertEqual(self.sent[1][0], MEDIA_CONTROL)
        self.queue.answered(200)
        self.assertEqual(self.answered, [200])
        self.assertIn(b"Signal=2", self.sent[2][1])

    def test_a_dialog_that_cannot_send_drops_the_queue(self) -> None:
        self.fail = True
        self.assertRaises(CallError, self.queue.send_digits, "1")
        self.assertFalse(self.queue.fast_update())
        self.assertEqual(self.answered, [None])
        self.fail = False
        self.queue.answered(None)
        self.assertEqual(self.sent, [])

    def test_closed_sends_nothing(self) -> None:
        self.queue.close()
        self.queue.send_digits("1")
        self.assertEqual(self.sent, [])
        self.assertEqual(FAST_UPDATE, "picture_fast_update")


class FakeBridge:
    def __init__(self) -> None:
        self.last = 0.0
        self.marked: list[float] = []

    def mark_active(self, now: float) -> None:
        self.marked.append(now)
        self.last = now

    def inactive_for(self, now: float) -> float:
        return now - self.last


class FakeMedia:
    def __init__(self) -> None:
        self.reports: list[float] = []

    def report(self, now: float) -> None:
        self.reports.append(now)


class SupervisionTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.status = CallStatus.ESTABLISHED
        self.silent: list[float] = []
        self.supervision = Supervision(self.clock, 5.0, status=lambda: self.status,
                                       on_silence=lambda: self.silent.append(self.clock.seconds()))
        self.bridge, self.media = FakeBridge(), FakeMedia()

    def test_nothing_before_media(self) -> None:
        self.clock.advance(MEDIA_TICK * 10)
        self.assertEqual(self.silent, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])  # no ticker until media flows

    def test_silence_while_established(self) -> None:
        self.supervision.watch(self.bridge, self.media)
        for _ in range(6):
            self.clock.advance(MEDIA_TICK)
        self.assertEqual(self.silent, [6.0])
        self.assertEqual(self.media.reports, [1.0, 2.0, 3.0, 4.0, 5.0])
        self.supervision.stop()

    def test_hold_pauses_the_check(self) -> None:
        self.status = CallStatus.HOLD
        self.supervision.watch(self.bridge, self.media)
        for _ in range(10):
            self.clock.advance(MEDIA_TICK)
        self.assertEqual(self.silent, [])
        self.assertEqual(self.bridge.marked[-1], 10.0)
        self.supervision.stop()
        self.clock.advance(MEDIA_TICK * 10)
        self.assertEqual(len(self.media.reports), 10)

    def test_stop_ends_it(self) -> None:
        self.supervision.watch(self.bridge, self.media)
        self.supervision.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FakeDialog:
    """The SIP leg as the transfer objects use it."""

    def __init__(self) -> None:
        self.refers: list[tuple[str, Any]] = []
        self.refer_answers: list[int] = []
        self.notifies: list[tuple[int, bool]] = []
        self.terminated = False
        self.listener: Any = None
        self.hung_up = False

    def refer(self, target: str, now: float, replaces: Any = None) -> None:
        self.refers.append((target, replaces))

    def accept_refer(self, now: float) -> None:
        self.refer_answers.append(202)

    def reject_refer(self, status: int, now: float, reason: str | None = None) -> None:
        self.refer_answers.append(status)

    def notify_refer(self, status: int, reason: str, now: float, final: bool = False) -> None:
        self.notifies.append((status, final))

    def hangup(self, now: float) -> None:
        self.hung_up = self.terminated = True

    def start(self, now: float) -> None:
        pass


class TransferorTests(unittest.TestCase):
    def setUp(self) -> None:
        self.statuses: list[tuple[str, int | None]] = []
        self.done: list[Transfer] = []
        self.transferor = Transferor(status=lambda s, c: self.statuses.append((s, c)),
                                     completed=self.done.append)
        self.dialog = FakeDialog()

    def test_blind_transfer_completes(self) -> None:
        self.transferor.start(self.dialog, "sip:1003@pbx", 1.0)
        self.assertEqual(self.dialog.refers, [("sip:1003@pbx", None)])
        self.transferor.accepted(ReferAccepted(202))
        self.transferor.progress(ReferProgress(100, False))
        self.transferor.progress(ReferProgress(200, True))
        self.assertEqual(self.statuses, [("ACCEPTED", 202), ("TRYING", 100), ("COMPLETED", 200)])
        self.assertEqual([t.target for t in self.done], ["sip:1003@pbx"])
        self.assertIsNone(self.transferor.active)

    def test_refused_transfer_fails_and_the_call_goes_on(self) -> None:
        self.transferor.start(self.dialog, "sip:1003@pbx", 1.0)
        self.transferor.failed(ReferFailed(403, "403 Forbidden"))
        self.assertEqual(self.statuses, [("FAILED", 403)])
        self.assertEqual(self.done, [])
        self.transferor.progress(ReferProgress(200, True))  # none running
        self.assertEqual(len(self.statuses), 1)


class Host:
    """What a Transferee needs of its call."""

    call_id = "c1"
    status = CallStatus.ESTABLISHED
    finished = False
    transferring = False

    def __init__(self) -> None:
        self.invite = FakeDialog()
        self.notified: list[tuple[str, dict[str, Any]]] = []
        self.placed: list[tuple[str, FakeDialog, Any]] = []
        self.taken: list[FakeDialog] = []

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.notified.append((method, params))

    def place_transfer_invite(self, target: str, extra: list[tuple[str, str]],
                              listener: Any) -> FakeDialog:
        invite = FakeDialog()
        self.placed.append((target, invite, listener))
        return invite

    def take_over_dialog(self, new: Any, event: Answered) -> None:
        self.taken.append(new)
        self.invite = new


class Env:
    def __init__(self, clock: task.Clock, mode: str) -> None:
        self.reactor = clock
        self.policy = Policy(["127.0.0.1"])
        self.incoming_transfers = mode
        self.transfer_timeout = 15.0


class TransfereeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.host = Host()

    def transferee(self, mode: str, can_ask: bool = True) -> Transferee:
        return Transferee(self.host, Env(self.clock, mode),  # type: ignore[arg-type]
                          account=ACCOUNT, can_ask=can_ask)

    def test_accept_follows_and_the_target_takes_over(self) -> None:
        transferee = self.transferee("accept")
        old = self.host.invite
        transferee.refer_received(ReferReceived("sip:1003@127.0.0.1", None, None))
        self.assertEqual(old.refer_answers, [202])
        target, new, listener = self.host.placed[0]
        self.assertTrue(transferee.following)
        listener(Provisional(180, "Ringing"))
        listener(Answered(b""))
        self.assertEqual(old.notifies, [(180, False), (200, True)])
        self.assertEqual(self.host.taken, [new])
        self.assertFalse(transferee.following)
        self.clock.advance(OLD_DIALOG_GRACE)  # the transferor never ended the old dialog
        self.assertTrue(old.hung_up)

    def test_silence_of_the_browser_declines(self) -> None:
        transferee = self.transferee("ask")
        transferee.refer_received(ReferReceived("sip:1003@127.0.0.1", None, None))
        self.assertEqual(self.host.notified[0][0], "transferRequest")
        self.clock.advance(15.0)
        self.assertEqual(self.host.invite.refer_answers, [603])
        self.assertRaises(CallError, transferee.answer, True)

    def test_nobody_to_ask_refuses(self) -> None:
        transferee = self.transferee("ask", can_ask=False)
        transferee.refer_received(ReferReceived("sip:1003@127.0.0.1", None, None))
        self.assertEqual(self.host.invite.refer_answers, [403])
        self.assertEqual(self.host.placed, [])

    def test_close_leaves_no_timer(self) -> None:
        transferee = self.transferee("ask")
        transferee.refer_received(ReferReceived("sip:1003@127.0.0.1", None, None))
        transferee.close()
        self.assertEqual(self.clock.getDelayedCalls(), [])


def sdp(direction: str, address: str = "127.0.0.1") -> SessionDescription:
    return parse_sdp(f"v=0\r\no=- 1 1 IN IP4 {address}\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
                     f"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n")


class HoldTests(unittest.TestCase):
    def setUp(self) -> None:
        self.reoffers: list[str] = []
        self.applied: list[tuple[bool, bool, str]] = []
        self.hold = Hold(reoffer=self.reoffers.append,
                         apply=lambda *args: self.applied.append(args))

    def test_our_hold_holds_once_answered(self) -> None:
        self.hold.ask(True)
        self.assertEqual(self.reoffers, ["sendonly"])
        self.assertEqual(self.applied, [])
        self.assertRaises(CallError, self.hold.ask, True)  # one re-INVITE at a time
        self.hold.answered()
        self.assertEqual(self.applied, [(True, False, "")])
        self.assertEqual(self.hold.direction, "sendonly")
        self.hold.ask(True)  # held already: nothing sent
        self.assertEqual(self.reoffers, ["sendonly"])

    def test_refused_reoffer_changes_nothing(self) -> None:
        self.hold.ask(True)
        self.hold.refused()
        self.hold.answered()
        self.assertEqual(self.applied, [])
        self.assertFalse(self.hold.local)

    def test_the_far_end_holds_us(self) -> None:
        self.hold.reoffered(sdp("sendonly"))
        self.hold.reoffered(sdp("sendonly"))  # no change: not applied again
        self.hold.reoffered(sdp("sendrecv", "0.0.0.0"))  # RFC 2543 hold
        self.hold.reoffered(sdp("sendrecv"))
        self.assertEqual(self.applied, [(False, True, ""), (False, False, "")])
        self.assertTrue(holds_us(sdp("inactive")))

    def test_a_new_dialog_starts_afresh(self) -> None:
        self.hold.ask(True)
        self.hold.answered()
        self.hold.new_dialog(sdp("sendrecv"), "Transferred")
        self.assertEqual(self.applied[-1], (False, False, "Transferred"))


class FakeRtp:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host  # the address it is bound to
        self.remote: Any = None

    def set_remote(self, host: str, port: int, rtcp: int, *, signalling: tuple[str, ...]) -> None:
        self.remote = (host, port, rtcp, signalling)


class Source:
    host = "192.0.2.7"


class SipSdpTests(unittest.TestCase):
    def setUp(self) -> None:
        self.sdp = SipSdp("198.51.100.1")
        self.pcmu = sdp("sendrecv").media[0].codecs()

    def test_one_session_per_dialog_one_version_per_sdp(self) -> None:
        first = parse_sdp(self.sdp.first_offer(4000, self.pcmu, None).decode())
        again = parse_sdp(self.sdp.next_version(4000, self.pcmu, "sendonly", None).decode())
        self.assertEqual(first.origin.session_id, again.origin.session_id)
        self.assertEqual(again.origin.session_version, first.origin.session_version + 1)
        self.assertEqual(again.media[0].direction, "sendonly")
        self.assertEqual(first.connection.address, "198.51.100.1")
        other = parse_sdp(self.sdp.first_offer(4000, self.pcmu, None).decode())
        self.assertNotEqual(other.origin.session_id, first.origin.session_id)

    def test_retarget_latches_to_the_sdp_and_its_source(self) -> None:
        rtp = FakeRtp()
        # The SIP leg remembers where the dialog's SDP-carrying messages came from.
        leg = OutgoingSipLeg(SimpleNamespace(listener=None))
        leg.heard(Provisional(183, "Session Progress", source=Source()))  # type: ignore[arg-type]
        leg.heard(Provisional(180, "Ringing"))  # no source: the last one stays
        self.sdp.retarget(rtp, None, b"v=0\r\no=- 1 1 IN IP4 203.0.113.9\r\ns=-\r\n"
                                     b"c=IN IP4 203.0.113.9\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
                          source=leg.source)
        self.assertEqual(rtp.remote, ("203.0.113.9", 5000, 5001, ("192.0.2.7",)))
        self.sdp.retarget(rtp, None, b"not sdp")
        self.assertEqual(rtp.remote[1], 5000)
