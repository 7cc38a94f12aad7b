"""The browser leg's control (wcsgw.webrtc.control.LegControl) on a task.Clock, no socket:
ICE-lite answers, the consent and DTLS timers, what media may come from where, closing.

The DTLS handshake is wcsgw.webrtc.dtls's; these tests never complete it — tests/
test_webrtc_dtls.py and the Chromium tests do — they only check that :meth:`LegControl.stop`
ends it.
"""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.trial import unittest

from tests.test_webrtc_stun import BROWSER, LOCAL, REMOTE_UFRAG, binding_request
from wcsgw.webrtc.control import LegControl, LegError

FINGERPRINT = ("sha-256", ":".join(["AB"] * 32))
OTHER = ("127.0.0.2", 40000)


class LegControlTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(5000.0)
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.control = LegControl(self.clock, lambda data, addr: self.sent.append((data, addr)),
                                  credentials=LOCAL, consent_timeout=30.0, dtls_timeout=10.0)
        self.states: list[str] = []
        self.control.on_state = self.states.append
        self.addCleanup(lambda: defer.ensureDeferred(self.control.stop()))

    def start(self) -> None:
        self.control.set_remote(REMOTE_UFRAG, "p" * 22, FINGERPRINT)
        self.control.start()

    def test_start_needs_the_remote_and_happens_once(self) -> None:
        self.assertRaises(LegError, self.control.start)
        self.start()
        self.assertRaises(LegError, self.control.start)
        self.assertEqual((self.states, self.control.started_at), (["checking"], 5000.0))

    def test_check_answered_at_once_and_its_source_admitted(self) -> None:
        self.start()
        self.assertFalse(self.control.admits(BROWSER))
        request, _ = binding_request()
        self.control.stun(request, BROWSER, self.clock.seconds())
        self.assertEqual([addr for _, addr in self.sent], [BROWSER])
        self.assertTrue(self.control.admits(BROWSER))
        self.assertFalse(self.control.admits(OTHER))
        self.assertEqual((self.control.peer, self.control.ice_connected_at), (BROWSER, 5000.0))
        # DTLS only from an address that passed a check
        self.assertFalse(self.control.dtls(b"\x16" + bytes(20), OTHER))
        self.assertTrue(self.control.dtls(b"\x16" + bytes(20), BROWSER))

    def test_checks_before_start_are_not_answered(self) -> None:
        request, _ = binding_request()
        self.control.stun(request, BROWSER, self.clock.seconds())
        self.assertEqual(self.sent, [])

    def test_no_consent_fails_ice_at_the_timeout(self) -> None:
        self.start()
        self.clock.advance(29.9)
        self.assertEqual(self.states, ["checking"])
        self.clock.advance(0.2)
        self.assertEqual(self.states, ["checking", "failed:ice"])
        self.assertTrue(self.control.done)

    def test_checks_keep_consent_alive(self) -> None:
        self.control.dtls_timeout = 1000.0  # (no handshake here: only consent is watched)
        self.start()
        for _ in range(5):
            self.clock.advance(20.0)
            request, _ = binding_request()
            self.control.stun(request, BROWSER, self.clock.seconds())
        self.assertEqual(self.states, ["checking"])
        self.clock.advance(30.1)
        self.assertEqual(self.states, ["checking", "failed:ice"])

    def test_no_handshake_after_the_first_check_fails_dtls(self) -> None:
        self.start()
        self.clock.advance(3.0)
        request, _ = binding_request()
        self.control.stun(request, BROWSER, self.clock.seconds())
        self.clock.advance(9.9)
        self.assertEqual(self.states, ["checking"])
        self.clock.advance(0.2)
        self.assertEqual(self.states, ["checking", "failed:dtls"])
        # failed: nothing is answered any more, no timer is left
        self.assertEqual(self.clock.getDelayedCalls(), [])

    async def test_stop_ends_the_timers_and_the_handshake(self) -> None:
        self.start()
        already_closed = await self.control.stop()
        self.assertFalse(already_closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.control.closed()
        self.assertEqual(self.states, ["checking", "closed"])
