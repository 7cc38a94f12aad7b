"""The Web SDK and the Phone UI use standard browser APIs only, and order video for Safari.

Why a scan: every browser test runs in Chromium (and some in Firefox), where a Chrome-only API
(``webkitRTCPeerConnection``, ``chrome.*``, ``goog*`` constraints, the legacy stream API or the
callback form of ``getStats``) would pass unnoticed and then break in Firefox or Safari.  The
scan reads code, not comments; a failure names file:line.  ``webkitAudioContext`` as the
fallback after ``AudioContext`` is allowed: that is the standard API first.

Safari: the SDK offers H.264 Constrained Baseline (profile-level-id 42e01f,
packetization-mode=1) first in m=video when the user agent is Safari's (wcsgw.js
``preferSafariVideo``).  Tested in Chromium with Safari's user agent, against the fake gateway
of tests/test_api_browser.py; the same page with Chromium's own user agent keeps its default
order (the check can fail).
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial import unittest

from tests.peers.chromium import aio
from tests.support import inline
from tests.test_api_browser import SDK_SETUP_JS, BrowserTestCase

WEB = Path(__file__).resolve().parent.parent / "wcsgw" / "web"

#: (pattern, why it is not standard)
NON_STANDARD: tuple[tuple[str, str], ...] = (
    (r"\bwebkitRTCPeerConnection\b|\bmozRTCPeerConnection\b", "prefixed RTCPeerConnection"),
    (r"\b(webkit|moz)GetUserMedia\b|\bnavigator\.getUserMedia\b",
     "legacy getUserMedia (use navigator.mediaDevices.getUserMedia)"),
    (r"\bwindow\.chrome\b|(?<![\w.$/])chrome\.\w", "Chrome-only chrome.* object"),
    (r"\bgoog[A-Z]\w*", "Chrome-only goog* constraint or statistic"),
    (r"\bsdpSemantics\b", "Chrome-only sdpSemantics option"),
    (r"\.(addStream|removeStream|getLocalStreams|getRemoteStreams)\s*\(|\bonaddstream\b",
     "legacy stream API (use addTrack/ontrack)"),
    (r"\.getStats\(\s*(function\b|\(?[\w\s,]*\)?\s*=>)", "legacy callback form of getStats"),
    (r"\bmozSrcObject\b|\bwebkitURL\b", "prefixed media API"),
    (r"(?<!\?\? )\bwindow\.webkitAudioContext\b", "webkitAudioContext not as the fallback"),
)


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, code) with comments blanked: block comments, and ``//`` comments that
    start a line or follow whitespace (so ``"http://..."`` in a string stays)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return [(n, re.sub(r"(^|\s)//.*$", "", line))
            for n, line in enumerate(text.splitlines(), start=1)]


def findings(name: str, text: str) -> list[str]:
    found = []
    for number, line in code_lines(text):
        for pattern, why in NON_STANDARD:
            if re.search(pattern, line):
                found.append(f"{name}:{number}: {why}: {line.strip()[:120]}")
    return found


class StandardApiTests(unittest.TestCase):
    def test_web_scripts_use_standard_apis_only(self) -> None:
        scripts = sorted(WEB.glob("*.js"))
        self.assertIn("wcsgw.js", [p.name for p in scripts])
        found = [line for path in scripts for line in findings(path.name, path.read_text())]
        self.assertEqual(found, [], "non-standard browser APIs:\n" + "\n".join(found))

    def test_the_scan_finds_each_kind(self) -> None:
        bad = """const pc = new webkitRTCPeerConnection({sdpSemantics: "unified-plan"});
pc.addStream(stream);
pc.getStats((response) => response.result());
if (window.chrome) chrome.runtime.sendMessage("x");
navigator.getUserMedia({audio: {mandatory: {googEchoCancellation: false}}}, ok, fail);
const Ctx = window.webkitAudioContext;
"""
        found = findings("bad.js", bad)
        self.assertEqual([f.split(": ")[0] for f in found],
                         ["bad.js:1", "bad.js:1", "bad.js:2", "bad.js:3", "bad.js:4",
                          "bad.js:5", "bad.js:5", "bad.js:6"], found)
        ok = """// pc.addStream(stream) is the legacy API; we use addTrack
/* webkitRTCPeerConnection: never */
const Context = window.AudioContext ?? window.webkitAudioContext;
const stats = await pc.getStats();
fetch("http://example.invalid/chrome.json");
"""
        self.assertEqual(findings("ok.js", ok), [])


SAFARI_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/18.1 Safari/605.1.15")

VIDEO_CALL_JS = """
() => {
  const call = window.session.createCall({callee: "1002", constraints: {audio: true, video: true}});
  window.call = call;
  call.call();
  return call.id();
}
"""


def first_video_codec(sdp: str) -> tuple[str, str]:
    """(rtpmap, fmtp) of the first payload type of the offer's m=video."""
    lines = sdp.splitlines()
    (m_line,) = [x for x in lines if x.startswith("m=video ")]
    pt = m_line.split()[3]
    (rtpmap,) = [x.split(" ", 1)[1] for x in lines if x.startswith(f"a=rtpmap:{pt} ")]
    fmtp = [x.split(" ", 1)[1] for x in lines if x.startswith(f"a=fmtp:{pt} ")]
    return rtpmap, fmtp[0] if fmtp else ""


class SafariVideoOrderTests(BrowserTestCase):
    async def offer(self, user_agent: str | None) -> str:
        if user_agent is not None:
            await aio(self.context.add_init_script(
                "Object.defineProperty(Navigator.prototype, 'userAgent',"
                f" {{get: () => {user_agent!r}}});"))
            await aio(self.page.reload())
            await aio(self.page.wait_for_selector("html[data-ready=true]"))
        await self.js(SDK_SETUP_JS)
        await self.js(VIDEO_CALL_JS)
        (_, _sid, call) = await self.gateway.events.wait_for(lambda e: e[0] == "call")
        return call["sdp"]

    @inline
    async def test_safari_offers_h264_constrained_baseline_first(self) -> None:
        sdp = await self.offer(SAFARI_UA)
        self.assertEqual(await self.js("navigator.userAgent"), SAFARI_UA)
        rtpmap, fmtp = first_video_codec(sdp)
        self.assertEqual(rtpmap, "H264/90000", sdp)
        self.assertIn("profile-level-id=42e01f", fmtp)
        self.assertIn("packetization-mode=1", fmtp)

    @inline
    async def test_chromium_keeps_its_own_order(self) -> None:
        sdp = await self.offer(None)
        self.assertIn("Chrome/", await self.js("navigator.userAgent"))
        rtpmap, fmtp = first_video_codec(sdp)
        self.assertNotEqual((rtpmap, "42e01f" in fmtp), ("H264/90000", True), sdp)
