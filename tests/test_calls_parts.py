"""The call's features that are objects of their own, alone on a task.Clock, no sockets:
the SIP INFO queue (wcsgw.calls.infoqueue) and media supervision (wcsgw.calls.supervision)."""

from __future__ import annotations

from twisted.internet import task
from twisted.trial import unittest

from wcsgw.calls.errors import CallError
from wcsgw.calls.infoqueue import FAST_UPDATE, InfoQueue
from wcsgw.calls.status import CallStatus
from wcsgw.calls.supervision import MEDIA_TICK, Supervision
from wcsgw.sip.mediacontrol import MEDIA_CONTROL


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
        self.supervision.start()
        self.clock.advance(MEDIA_TICK * 10)
        self.assertEqual(self.silent, [])
        self.supervision.stop()

    def test_silence_while_established(self) -> None:
        self.supervision.start()
        self.supervision.watch(self.bridge, self.media)
        for _ in range(6):
            self.clock.advance(MEDIA_TICK)
        self.assertEqual(self.silent, [6.0])
        self.assertEqual(self.media.reports, [1.0, 2.0, 3.0, 4.0, 5.0])
        self.supervision.stop()

    def test_hold_pauses_the_check(self) -> None:
        self.status = CallStatus.HOLD
        self.supervision.start()
        self.supervision.watch(self.bridge, self.media)
        for _ in range(10):
            self.clock.advance(MEDIA_TICK)
        self.assertEqual(self.silent, [])
        self.assertEqual(self.bridge.marked[-1], 10.0)
        self.supervision.stop()
        self.clock.advance(MEDIA_TICK * 10)
        self.assertEqual(len(self.media.reports), 10)

    def test_stop_ends_it(self) -> None:
        self.supervision.start()
        self.supervision.watch(self.bridge, self.media)
        self.supervision.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
