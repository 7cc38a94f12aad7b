"""Issue 16 "done when" (part 3), end to end: the Phone UI draws the live quality of both legs of
a real call.

Headless Chromium (Phone UI, fake 440 Hz microphone) calls a baresip phone (1 kHz, PCMU)
registered at Kamailio, through the gateway, all on loopback. Once the call carries audio the
gateway's ``callStats`` (every 5 s) reach the page, which shows a figure per leg — found by
their accessible names, "Browser leg quality" and "SIP leg quality" — with MOS, loss, jitter
and RTT as text. On loopback they must be plausible: MOS 3.5-4.5, no loss, a few ms of jitter
and round trip; RTT on *both* legs means the gateway's SRs reached each peer and their RRs
came back. The call object (REST's view) carries the same per-leg ``stats``. Once relayed
(PCMU end to end), once transcoded (Opus from the browser, PCMU to the phone).
"""

from __future__ import annotations

import re
from typing import Any

from twisted.trial import unittest

from tests.e2e import SipPhoneMixin
from tests.peers.chromium import aio, evaluate
from tests.support import inline

FIGURES = ("Browser leg quality", "SIP leg quality")

#: the page's figures' values once every one of them is known (RTT comes last: it needs an SR
#: out and the peer's RR back); false until then
ALL_KNOWN = """(labels) => {
    const out = {};
    for (const label of labels) {
        const figure = document.querySelector(`figure[aria-label="${label}"]`);
        if (!figure) return false;
        const values = [...figure.querySelectorAll('.quality-value')].map(e => e.textContent);
        if (values.length !== 4 || values.some(v => v.includes('—'))) return false;
        out[label] = values;
    }
    return out;
}"""


def number(text: str) -> float:
    match = re.search(r"-?\d+(\.\d+)?", text)
    assert match is not None, text
    return float(match.group())


class PhoneUiQualityTests(SipPhoneMixin, unittest.TestCase):
    @inline
    async def test_graphs_of_both_legs_in_a_live_call(self) -> None:
        await self.graphs_in_a_call("", "relay")

    @inline
    async def test_graphs_in_a_transcoded_call(self) -> None:
        """Opus from the browser, PCMU to the phone: each leg scored with its own codec."""
        await self.graphs_in_a_call("?codecs=opus", "transcode")

    async def graphs_in_a_call(self, page_query: str, mode: str) -> None:
        ui, phone = await self.setup_call(page_query=page_query)
        await ui.call("1002")
        await self.talk_and_check_audio(ui, phone, mode)
        handle = await aio(ui.page.wait_for_function(ALL_KNOWN, arg=list(FIGURES), timeout=40000))
        shown: dict[str, list[str]] = await aio(handle.json_value())
        for label in FIGURES:
            # found as a person (or a screen reader) finds it: the figure by its name, the
            # values by their text
            figure = ui.page.get_by_role("figure", name=label, exact=True)
            texts = {}
            for name in ("MOS", "Loss", "Jitter", "RTT"):
                texts[name] = await aio(figure.get_by_text(re.compile(rf"^{name} ")).text_content())
                self.assertIn(texts[name], shown[label])
            lines = await aio(figure.get_by_role("img").count())
            self.assertEqual(lines, 4, label)
            mos, loss = number(texts["MOS"]), number(texts["Loss"])
            jitter, rtt = number(texts["Jitter"]), number(texts["RTT"])
            self.assertTrue(3.5 <= mos <= 4.5, (label, texts))
            self.assertEqual(loss, 0.0, (label, texts))
            self.assertRegex(texts["Loss"], r"^Loss \d+\.\d %$")
            self.assertTrue(0 <= jitter < 40, (label, texts))
            self.assertTrue(0 <= rtt < 100, (label, texts))
        [call] = self.gateway.calls.values()
        stats: dict[str, Any] = call.describe()["stats"]
        for leg in ("browser", "sip"):
            self.assertIsNotNone(stats[leg]["rttMs"], leg)
            self.assertTrue(3.5 <= stats[leg]["mos"] <= 4.5, stats)
            self.assertEqual(stats[leg]["packetsLost"], 0, stats)
        samples = await evaluate(
            ui.page, "document.querySelectorAll('figure[aria-label] polyline').length")
        self.assertGreater(samples, 0)
        await ui.click("Hangup")
        await ui.wait_state("call-status", "finish")
        await self.assert_clean()
