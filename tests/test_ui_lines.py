"""Several lines in the Phone UI (wcsgw/web/lines.js), with real peers: the browser (Phone UI in
Chromium, logged in as 1001 at Kamailio) in a call with baresip 1002 (1 kHz) meets baresip
1003 (700 Hz) as a second line — a call waiting answered and switched, a call waiting
declined busy, one given up and one left alone, and a second call placed then joined to the
first by an attended transfer.

The page is driven by the accessible names of docs/contract.md.  What the page asked the
gateway, in what order, is read from its WebSocket frames (each hold is answered with
``callStatus HOLD`` before the next call goes on); audio by content: each line's far end
plays through its own element, measured by FFT.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import REMOTE_STREAM, PeersMixin, Phone
from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import aio, evaluate
from tests.support import assert_near, inline
from tests.test_e2e_in_call import tail_frequency

#: the far end of a line after the first plays through its own element (lines.js newAudio)
SECOND_LINE_STREAM = "document.querySelector('#line-audio audio').srcObject"
#: generous: a 2-core CI machine runs the gateway, Kamailio, two phones and Chromium at once
WAIT = 30.0


class LinesTests(PeersMixin, unittest.TestCase):
    timeout = 240

    async def setup_lines(self) -> Phone:
        """Kamailio, the gateway, phones A (1002, 1 kHz) and B (1003, 700 Hz), and the Phone
        UI logged in as 1001 with its WebSocket frames recorded (:attr:`frames`)."""
        await self.start_pbx()
        self.a = await self.start_phone("1002")
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=700.0, rate=8000,
                          seconds=30.0)
        self.b = Baresip("1003", "pass1003", registrar_port=self.kam.port, outbound=True,
                         codecs="PCMU", tone=tone)
        self.addCleanup(self.b.stop)  # before Kamailio's stop
        await self.b.start()
        await self.b.registered()
        await self.start_browser()
        ui = await Phone.open(self.browser, self.gateway.url)
        self.frames: list[tuple[str, dict[str, Any]]] = []

        def record(ws: Any) -> None:
            for kind in ("framesent", "framereceived"):
                ws.on(kind, lambda payload, kind=kind: self.frames.append(
                    (kind[5:], json.loads(payload))))

        ui.page.on("websocket", record)
        await ui.login(login="1001", password="pass1001", domain="127.0.0.1", proxy="127.0.0.1",
                       port=str(self.kam.port), register=True)
        # Each line's party and status as the list shows them, in order.
        await evaluate(ui.page, """() => {
            window.seenLines = [];
            const list = document.getElementById('line-list');
            new MutationObserver(() => {
                for (const item of list.querySelectorAll('li')) {
                    const entry = item.querySelector('.line-party').textContent + ':' + item.dataset.state;
                    if (!window.seenLines.includes(entry)) window.seenLines.push(entry);
                }
            }).observe(list, {childList: true, subtree: true});
        }""")
        return ui

    # -- helpers ---------------------------------------------------------------------------

    async def until(self, check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        deadline = reactor.seconds() + timeout
        while not check():
            if reactor.seconds() > deadline:
                self.fail(f"{what}: not within {timeout:g} s")
            await task.deferLater(reactor, 0.1, lambda: None)

    def gateway_call(self, party: str) -> Any:
        """The gateway's live call with ``party`` (its caller or callee), or None."""
        for call in self.gateway.calls.values():
            d = call.describe()
            if party in (d["caller"], d["callee"]):
                return call
        return None

    async def gateway_status(self, party: str, status: str) -> None:
        def check() -> bool:
            call = self.gateway_call(party)
            return call is not None and call.describe()["status"] == status
        await self.until(check, f"the gateway's call with {party} in {status}")

    def call_id(self, party: str) -> str:
        call = self.gateway_call(party)
        assert call is not None, f"no call with {party}"
        return str(call.describe()["callId"])

    async def frame_index(self, direction: str, what: Callable[[dict[str, Any]], bool]) -> int:
        """The index of the first frame ``direction`` ("sent"/"received") matching ``what``
        (Playwright reports frames a little after the page saw them: waits for it)."""
        def find() -> int | None:
            for i, (way, message) in enumerate(self.frames):
                if way == direction and what(message):
                    return i
            return None
        await self.until(lambda: find() is not None,
                         f"a {direction} frame like that (seen so far: "
                         f"{[m.get('method') for _, m in self.frames]})")
        found = find()
        assert found is not None
        return found

    def sent(self, method: str, call_id: str) -> Callable[[dict[str, Any]], bool]:
        return lambda m: m.get("method") == method and m.get("params", {}).get("callId") == call_id

    def status_of(self, call_id: str, status: str) -> Callable[[dict[str, Any]], bool]:
        return lambda m: (m.get("method") == "callStatus"
                          and m["params"].get("callId") == call_id
                          and m["params"].get("status") == status)

    async def hears(self, ui: Phone, stream: str, frequency: float) -> None:
        """The tone at ``frequency`` plays in ``stream`` (measured again until it does: media
        resumes a moment after the re-INVITE that resumed it; a new line's stream is attached
        to its element when the page has applied the answer, which may follow the gateway's
        ESTABLISHED)."""
        deadline = reactor.seconds() + WAIT
        while True:
            try:
                peak = await ui.received_frequency(stream=stream)
            except Exception as e:
                if "no stream" not in str(e) or reactor.seconds() > deadline:
                    raise
                await task.deferLater(reactor, 0.1, lambda: None)
                continue
            if abs(peak["frequency"] - frequency) <= 15 and peak["level"] > -60:
                return
            if reactor.seconds() > deadline:
                assert_near(self, peak["frequency"], frequency, 15)
                self.assertGreater(peak["level"], -60)

    async def silent(self, ui: Phone, stream: str) -> None:
        """Nothing plays in ``stream`` (a held far end sends nothing; its last packets drain)."""
        deadline = reactor.seconds() + WAIT
        while True:
            peak = await ui.received_frequency(stream=stream)
            if peak["level"] < -70:
                return
            if reactor.seconds() > deadline:
                self.assertLess(peak["level"], -70, peak)

    async def in_call_with_a(self, ui: Phone) -> None:
        await ui.call("1002")
        await ui.wait_state("call-status", "established", timeout=WAIT)
        await self.a.wait_event("CALL_ESTABLISHED", timeout=WAIT)

    async def b_calls_waiting(self, ui: Phone) -> Any:
        """Phone B calls 1001 while the browser talks to A: the call waiting shows."""
        await self.b.command("dial", f"sip:1001@127.0.0.1:{self.kam.port}")
        box = ui.page.get_by_role("alertdialog", name="Call waiting: 1003", exact=True)
        await aio(box.wait_for(state="visible", timeout=WAIT * 1000))
        self.assertEqual(await evaluate(ui.page, "document.getElementById('call-waiting').dataset.tone"),
                         "playing")  # the soft waiting tone ...
        self.assertNotEqual(await evaluate(ui.page, "document.getElementById('incoming').dataset.ringing"),
                            "true")  # ... not the ringer
        # The call in the panel is untouched: still A, talking.
        await ui.wait_state("call-status", "established")
        return box

    # -- tests -----------------------------------------------------------------------------

    @inline
    async def test_call_waiting_answer_holds_the_first_then_switch_back(self) -> None:
        ui = await self.setup_lines()
        await self.in_call_with_a(ui)
        await self.b_calls_waiting(ui)
        mark_a, mark_b = self.a.mark(), self.b.mark()
        await ui.click("Answer waiting call")
        await self.b.wait_event("CALL_ESTABLISHED", since=mark_b, timeout=WAIT)
        await self.gateway_status("1003", "ESTABLISHED")
        await self.gateway_status("1002", "HOLD")
        await self.a.wait_event("CALL_REMOTE_SDP", since=mark_a, timeout=WAIT)
        await self.until(lambda: "a=sendonly" in self.a.log_text(),  # A's phone was held
                         "a=sendonly in the log of A's phone")
        a_id, b_id = self.call_id("1002"), self.call_id("1003")
        # A was held (and said so) before B was answered.
        self.assertLess(await self.frame_index("sent", self.sent("hold", a_id)),
                        await self.frame_index("received", self.status_of(a_id, "HOLD")))
        self.assertLess(await self.frame_index("received", self.status_of(a_id, "HOLD")),
                        await self.frame_index("sent", self.sent("answer", b_id)))
        await aio(ui.page.get_by_role("alertdialog").filter(has_text="Call waiting").wait_for(
            state="hidden", timeout=WAIT * 1000))
        await ui.wait_state("call-status", "established", timeout=WAIT)  # the panel shows B
        self.assertIn("1003", await ui.status_text("call-peer"))
        await self.hears(ui, SECOND_LINE_STREAM, 700)  # B is heard ...
        await self.silent(ui, REMOTE_STREAM)  # ... and nothing comes from held A

        await ui.click("Switch to 1002")
        await self.gateway_status("1003", "HOLD")
        await self.gateway_status("1002", "ESTABLISHED")
        self.assertLess(await self.frame_index("received", self.status_of(b_id, "HOLD")),
                        await self.frame_index("sent", self.sent("unhold", a_id)))
        await ui.wait_state("call-status", "established", timeout=WAIT)
        self.assertIn("1002", await ui.status_text("call-peer"))
        await self.hears(ui, REMOTE_STREAM, 1000)  # A is heard again ...
        await self.silent(ui, SECOND_LINE_STREAM)  # ... and B, held, is quiet
        self.assertIn("1003:hold", await evaluate(ui.page, "window.seenLines"))

        # Hanging up A leaves B in the panel, still held; then B ends too.
        mark_a, mark_b = self.a.mark(), self.b.mark()
        await ui.click("Hangup")
        await self.a.wait_event("CALL_CLOSED", since=mark_a, timeout=WAIT)
        await ui.wait_state("call-status", "hold", timeout=WAIT)
        self.assertIn("1003", await ui.status_text("call-peer"))
        await ui.click("Hangup")
        await self.b.wait_event("CALL_CLOSED", since=mark_b, timeout=WAIT)
        await ui.wait_state("call-status", "finish", timeout=WAIT)
        await self.assert_clean()

    @inline
    async def test_declining_a_call_waiting_answers_busy(self) -> None:
        ui = await self.setup_lines()
        await self.in_call_with_a(ui)
        mark_b = self.b.mark()
        await self.b_calls_waiting(ui)
        [waiting] = [c for c in self.gateway.calls.values() if c.describe()["incoming"]]
        waiting_id = waiting.describe()["callId"]
        await ui.click("Decline waiting call")
        closed = await self.b.wait_event("CALL_CLOSED", since=mark_b, timeout=WAIT)
        # 486, not the gateway's decline_status for a lone call (603 by default)
        self.assertIn("486", closed.get("param", ""))
        self.assertEqual(self.gateway.config.sip.decline_status, 603)
        hangup = self.frames[await self.frame_index("sent", self.sent("hangup", waiting_id))][1]
        self.assertIs(hangup["params"].get("busy"), True)
        finish = self.frames[await self.frame_index("received", self.status_of(waiting_id, "FINISH"))][1]
        self.assertEqual(finish["params"]["sipStatus"], 486)
        await aio(ui.page.get_by_role("alertdialog").filter(has_text="Call waiting").wait_for(
            state="hidden", timeout=WAIT * 1000))
        self.assertEqual(await evaluate(ui.page, "document.getElementById('call-waiting').dataset.tone"),
                         "off")
        # The call with A goes on as it was: not held, still heard.
        await self.gateway_status("1002", "ESTABLISHED")
        await self.until(lambda: len(self.gateway.calls) == 1, "the declined call gone")
        await self.hears(ui, REMOTE_STREAM, 1000)
        mark_a = self.a.mark()
        await ui.click("Hangup")
        await self.a.wait_event("CALL_CLOSED", since=mark_a, timeout=WAIT)
        await self.assert_clean()

    @inline
    async def test_a_call_waiting_given_up_goes_and_one_left_alone_rings(self) -> None:
        """The caller of a call waiting hangs up: the call waiting goes.  Another one waits
        when the call in the panel ends: with no line left it rings as a lone call (the
        ringer, the panel's Answer), and is answered as one."""
        ui = await self.setup_lines()
        await self.in_call_with_a(ui)
        await self.b_calls_waiting(ui)
        mark_b = self.b.mark()
        await self.b.command("hangup")
        await self.b.wait_event("CALL_CLOSED", since=mark_b, timeout=WAIT)
        await aio(ui.page.get_by_role("alertdialog").filter(has_text="Call waiting").wait_for(
            state="hidden", timeout=WAIT * 1000))
        self.assertEqual(await evaluate(ui.page, "document.getElementById('call-waiting').dataset.tone"),
                         "off")
        await self.b_calls_waiting(ui)
        mark_a = self.a.mark()
        await ui.click("Hangup")
        await self.a.wait_event("CALL_CLOSED", since=mark_a, timeout=WAIT)
        await aio(ui.page.wait_for_function(
            "() => !document.getElementById('answer').disabled", timeout=WAIT * 1000))
        self.assertEqual(await evaluate(ui.page, "document.getElementById('incoming').dataset.ringing"),
                         "true")
        self.assertTrue(await evaluate(ui.page, "document.getElementById('call-waiting').hidden"))
        await ui.click("Answer")
        await ui.wait_state("call-status", "established", timeout=WAIT)
        await self.hears(ui, REMOTE_STREAM, 700)
        mark_b = self.b.mark()
        await ui.click("Hangup")
        await self.b.wait_event("CALL_CLOSED", since=mark_b, timeout=WAIT)
        await self.assert_clean()

    @inline
    async def test_second_call_placed_then_joined_by_attended_transfer(self) -> None:
        ui = await self.setup_lines()
        await self.in_call_with_a(ui)
        a_id = self.call_id("1002")
        mark_a, mark_b = self.a.mark(), self.b.mark()
        # A second call from the dial form while in a call: A is held first.
        await ui.call("1003")
        await self.b.wait_event("CALL_ESTABLISHED", since=mark_b, timeout=WAIT)
        await self.gateway_status("1003", "ESTABLISHED")
        await self.gateway_status("1002", "HOLD")
        b_id = self.call_id("1003")
        self.assertLess(await self.frame_index("received", self.status_of(a_id, "HOLD")),
                        await self.frame_index("sent", lambda m: m.get("method") == "call"
                                         and m["params"].get("callee") == "1003"))
        await self.hears(ui, SECOND_LINE_STREAM, 700)

        transfer = ui.page.get_by_role("button", name="Transfer to other line", exact=True)
        await aio(self.expect_enabled(transfer))
        mark_a, mark_b = self.a.mark(), self.b.mark()
        await aio(transfer.click())
        # A's phone is asked to call B in place of the gateway (REFER with Replaces) ...
        await self.a.wait_event("CALL_ESTABLISHED", since=mark_a, timeout=WAIT)
        await self.until(lambda: "Replaces=" in self.a.log_text(), "Replaces= in A's REFER")
        # ... and both of the page's calls end FINISH.
        for call_id in (a_id, b_id):
            await self.frame_index("received", self.status_of(call_id, "FINISH"))
        await ui.wait_state("call-status", "finish", timeout=WAIT)
        await aio(ui.page.get_by_text("Transfer COMPLETED").wait_for(timeout=WAIT * 1000))
        await self.assert_clean()  # nothing of the gateway is left in the joined call
        # The two phones talk to each other: B hears A's 1 kHz.
        await task.deferLater(reactor, 2.0, lambda: None)
        mark_b = self.b.mark()
        await self.b.command("hangup")
        await self.b.wait_event("CALL_CLOSED", since=mark_b, timeout=WAIT)
        frequency, level = tail_frequency(self.b.recordings()[-1])
        assert_near(self, frequency, 1000, 15)
        self.assertGreater(level, 300)

    def expect_enabled(self, locator: Any) -> Any:
        from playwright.async_api import expect

        return expect(locator).to_be_enabled(timeout=WAIT * 1000)
