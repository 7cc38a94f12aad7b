"""A person checks their dial pad on the ``dtmf`` test line: the Phone UI of a fresh gateway
calls ``dtmf``, presses 1, 5 and #, sees each digit come back ("Received DTMF") and hears each
one played back as its DTMF tone pair.

The audio is checked by content: the page records the remote stream from before the first key,
and numpy finds the DTMF pairs in it (:func:`tests.test_testline_dtmf.dtmf_key`).  Every wait is on an event or a
condition, with generous timeouts.
"""

from __future__ import annotations

import numpy as np
from twisted.internet import reactor, task
from twisted.trial import unittest

from tests.e2e import REMOTE_STREAM, Phone, gateway_and_phone, gateway_config
from tests.peers.chromium import aio, evaluate
from tests.support import inline
from tests.test_testline_dtmf import dtmf_key

#: The rate the recorder keeps (48 kHz averaged over 6 samples: the tones are below 1.7 kHz).
RATE = 8000
WINDOW = RATE // 25  # 40 ms
HOP = RATE // 50  # 20 ms

#: Records the stream at ``expr`` into ``window.wcsgwHeard`` (floats at 8 kHz) from now on.
#: A ScriptProcessorNode with its largest buffer (16384 samples, 341 ms): the page's CSP
#: allows no script from elsewhere, so no AudioWorklet module; the large buffer rides out a
#: busy main thread.
RECORD_JS = """
async (expr) => {
  const stream = eval(expr);
  if (!stream) throw new Error("no stream at " + expr);
  const ctx = new AudioContext({sampleRate: 48000});
  await ctx.resume();
  const node = ctx.createScriptProcessor(16384, 1, 1);
  const mute = ctx.createGain();
  mute.gain.value = 0;
  ctx.createMediaStreamSource(stream).connect(node);
  node.connect(mute);
  mute.connect(ctx.destination);  // pulled by the graph, heard by no one
  window.wcsgwHeard = [];
  node.onaudioprocess = (e) => {
    const d = e.inputBuffer.getChannelData(0);
    for (let i = 0; i + 6 <= d.length; i += 6)
      window.wcsgwHeard.push((d[i] + d[i + 1] + d[i + 2] + d[i + 3] + d[i + 4] + d[i + 5]) / 6);
  };
  window.wcsgwRecorder = {ctx, node};
  return ctx.sampleRate;
}
"""

#: What was recorded since the last call (and forget it).
TAKE_JS = "() => { const h = window.wcsgwHeard; window.wcsgwHeard = []; return h; }"


def keys_heard(samples: np.ndarray) -> list[str]:
    """The DTMF keys in ``samples`` in order: each run of at least 3 windows (40 ms each,
    20 ms apart) that find the same key counts once."""
    keys: list[str] = []
    run_key, run = None, 0
    for start in range(0, len(samples) - WINDOW + 1, HOP):
        key = dtmf_key(samples[start:start + WINDOW] * 32767, RATE)
        run = run + 1 if key == run_key else 1
        run_key = key
        if key is not None and run == 3:
            keys.append(key)
    return keys


class DtmfTestLineTests(unittest.TestCase):
    timeout = 120

    async def start(self) -> Phone:
        self.gateway, phone = await gateway_and_phone(self, gateway_config())
        await phone.login()
        return phone

    async def received_digits(self, phone: Phone, digits: str) -> None:
        """Until the call panel shows ``Received DTMF: <digits>``."""
        await aio(phone.page.wait_for_function(
            "(want) => { const e = document.getElementById('dtmf-received');"
            " return e && !e.hidden && e.textContent.trim() === 'Received DTMF: ' + want; }",
            arg=digits, timeout=20_000))

    async def take(self, phone: Phone) -> None:
        self.heard.extend(await evaluate(phone.page, TAKE_JS))

    async def hears(self, phone: Phone, key: str, since: int, timeout: float) -> bool:
        """Whether the audio recorded from sample ``since`` on holds ``key`` within
        ``timeout`` seconds."""
        deadline = reactor.seconds() + timeout
        while True:
            await self.take(phone)
            if key in keys_heard(np.asarray(self.heard[since:], dtype=np.float64)):
                return True
            if reactor.seconds() > deadline:
                return False
            await task.deferLater(reactor, 0.2, lambda: None)

    @inline
    async def test_digits_are_shown_and_played_back(self) -> None:
        phone = await self.start()
        await phone.call("dtmf")
        await phone.wait_state("call-status", "established")
        self.heard: list[float] = []
        self.assertEqual(await evaluate(phone.page, RECORD_JS, REMOTE_STREAM), 48000)
        shown = ""
        for key in "15#":
            # A page whose main thread stalls for longer than the recorder's buffer loses
            # that audio: a key not heard is pressed again (at most 3 times).  A line that
            # does not play keys fails all three.
            for _attempt in range(3):
                await self.take(phone)
                since = len(self.heard)
                await phone.click(key)
                shown += key
                await self.received_digits(phone, shown)
                if await self.hears(phone, key, since, timeout=8.0):
                    break
            else:
                keys = keys_heard(np.asarray(self.heard, dtype=np.float64))
                self.fail(f"{key!r} shown but never heard; heard {keys} in "
                          f"{len(self.heard) / RATE:.1f} s of audio")
        keys = keys_heard(np.asarray(self.heard, dtype=np.float64))
        self.assertEqual([k for k in keys if k not in "15#"], [], keys)  # nothing else played
        self.assertEqual(sorted(set(keys)), sorted("15#"))
        [call] = self.gateway.calls.values()
        [line] = self.gateway.testlines.calls
        self.assertEqual(line.line, "dtmf")
        self.assertEqual(call.status.value, "ESTABLISHED")
        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        await self.gateway.testlines.wait_idle()
