"""Helpers for end-to-end tests: a whole gateway in this process, the Phone UI in Chromium.

The gateway is the real service tree (``make_service``) on free ports; the browser drives the
real Phone UI by the accessible names of docs/contract.md, as a person would.
"""

from __future__ import annotations

import json
import os
import wave
from io import BytesIO
from typing import Any

import attrs
import numpy as np
from twisted.internet import defer, reactor, task
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.peers.baresip import Baresip, write_tone
from tests.peers.chromium import (
    Chromium,
    aio,
    dominant_frequency,
    evaluate,
    record_peer_connections,
    video_pixels,
    video_stats,
    write_tone_wav,
)
from tests.peers.kamailio import Kamailio
from tests.peers.png import read_png
from tests.support import assert_near, ready_or_reload_once
from wcsgw.config import (
    Config,
    HttpSettings,
    LimitsSettings,
    MediaSettings,
    PolicySettings,
    RecordingSettings,
    RestSettings,
    SipSettings,
)
from wcsgw.service import make_service

TOKEN = "operator-secret"

REMOTE_STREAM = "document.getElementById('remote-audio').srcObject"
#: In video calls the Phone UI plays the far end (audio and video) through #remote-video.
REMOTE_VIDEO = "document.getElementById('remote-video')"
LOCAL_VIDEO = "document.getElementById('local-video')"
REMOTE_VIDEO_STREAM = REMOTE_VIDEO + ".srcObject"
#: A picture whose luma standard deviation (0-255) is below this is taken as uniform (black,
#: grey, one flat colour): both test patterns (Chromium's fake camera, baresip's fakevideo
#: bars) are far above it.
UNIFORM_STD = 8.0


def gateway_config(allowed_domains: tuple[str, ...] = (), rtp_timeout: float = 10.0,
                   **sip: Any) -> Config:
    return Config(
        http=HttpSettings(listen="127.0.0.1", port=0),
        sip=attrs.evolve(SipSettings(listen="127.0.0.1", port=0), **sip),
        media=MediaSettings(listen="127.0.0.1", port_min=30000, port_max=30999,
                            rtp_timeout=rtp_timeout),
        policy=PolicySettings(allowed_domains=allowed_domains),
        # The gateway shares this process with the test's own peers and checks, so its CPU
        # share is theirs too: overload control by CPU would refuse calls for the tests' work.
        # The event-loop lag check stays on, as in production (tests.test_calls_overload
        # tests both).
        limits=LimitsSettings(max_cpu_percent=0),
    )


class Gateway:
    """The gateway's whole service tree, started in this process."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.top = make_service(config)

    def start(self) -> None:
        self.top.startService()

    def stop(self) -> defer.Deferred:
        if not self.top.running:
            return defer.succeed(None)
        return defer.maybeDeferred(self.top.stopService)

    @property
    def url(self) -> str:
        host, port = self.top.getServiceNamed("http").address
        return f"http://{host}:{port}/"

    @property
    def sip(self) -> Any:
        return self.top.getServiceNamed("sip")

    @property
    def calls(self) -> dict[str, Any]:
        """Live calls by callId (the call registry)."""
        return self.top.call_gateway.calls

    def when_idle(self) -> defer.Deferred:
        """Every call over on both legs (the last BYE answered)."""
        return self.top.call_gateway.when_idle()

    @property
    def ports_in_use(self) -> int:
        return len(self.top.call_gateway.media_ports.in_use)

    async def ports_released(self, within: float = 10.0) -> int:
        """The media ports in use once they are all given back, or ``within`` seconds have
        passed.  A browser leg's port comes back a moment after ``when_idle`` (its DTLS
        transport stops after the call has ended), with no event to await."""
        deadline = reactor.seconds() + within
        while self.ports_in_use and reactor.seconds() < deadline:
            await task.deferLater(reactor, 0.05, lambda: None)
        return self.ports_in_use

    @property
    def testlines(self) -> Any:
        return self.top.getServiceNamed("testlines")


async def gateway_and_phone(case: Any, config: Config) -> tuple["Gateway", "Phone"]:
    """A gateway on ``config`` and the Phone UI open on it in a Chromium whose microphone
    plays 440 Hz (not logged in); both stopped at ``case``'s clean-up."""
    gateway = Gateway(config)
    gateway.start()
    case.addCleanup(gateway.stop)
    browser = Chromium(fake_audio=write_tone_wav(case.mktemp() + ".wav", 440.0))
    await browser.start()
    case.addCleanup(browser.stop)
    return gateway, await Phone.open(browser, gateway.url)


class Phone:
    """The Phone UI in one page, used through its labels and buttons."""

    def __init__(self, page: Any) -> None:
        self.page = page

    @classmethod
    async def open(cls, browser: Chromium, url: str, record_peers: bool = False) -> "Phone":
        """``record_peers``: keep the page's RTCPeerConnections (for :meth:`video_stats`)."""
        page = await browser.new_page()
        if record_peers:
            await record_peer_connections(page)
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        await aio(page.goto(url))
        # The page is usable once phone.js has wired its forms (it marks <html data-ready>);
        # a module that did not load leaves a page whose buttons do nothing: say why.
        await ready_or_reload_once(
            lambda: aio(page.wait_for_selector("html[data-ready=true]", state="attached",
                                               timeout=15_000)),
            lambda: aio(page.reload()),
            lambda: (f"the Phone UI at {url} did not become ready; failed requests: "
                     f"{failed}; console: {browser.console[-20:]}"))
        # Every call status the page shows, in order (a person sees them go by).
        await evaluate(page, """() => {
            window.seenCallStates = [];
            const e = document.getElementById('call-status');
            new MutationObserver(() => {
                const s = e.dataset.state;
                if (s && window.seenCallStates[window.seenCallStates.length - 1] !== s)
                    window.seenCallStates.push(s);
            }).observe(e, {attributes: true, childList: true, subtree: true});
        }""")
        return cls(page)

    async def call_states(self) -> list[str]:
        return await evaluate(self.page, "window.seenCallStates")

    async def fill(self, label: str, value: str) -> None:
        await aio(self.page.get_by_label(label, exact=True).fill(value))

    async def click(self, name: str) -> None:
        await aio(self.page.get_by_role("button", name=name, exact=True).click())

    async def login(self, login: str = "", password: str = "", domain: str = "",
                    proxy: str = "", port: str = "", register: bool = False) -> None:
        for label, value in (("Login", login), ("Password", password), ("Domain", domain),
                             ("Outbound proxy", proxy), ("Port", port)):
            if value:
                await self.fill(label, value)
        box = self.page.get_by_label("Register", exact=True)
        if await aio(box.is_checked()) != register:
            await aio(box.click())
        await self.click("Log in")
        await self.wait_state("session-status", "registered" if register else "established")

    async def wait_state(self, element_id: str, *states: str, timeout: float = 15.0) -> str:
        """Wait until the status element shows one of ``states`` (lower case); returns it."""
        script = (
            "([id, states]) => { const e = document.getElementById(id);"
            " return e && states.includes(e.dataset.state) ? e.dataset.state : false; }"
        )
        handle = await aio(self.page.wait_for_function(
            script, arg=[element_id, list(states)], timeout=timeout * 1000))
        return await aio(handle.json_value())

    async def ringing(self) -> None:
        """Wait until the page offers an incoming call (its Answer button is enabled)."""
        await aio(self.page.wait_for_function(
            "() => !document.getElementById('answer').disabled", timeout=15000))

    async def status_text(self, element_id: str) -> str:
        return await evaluate(self.page, f"document.getElementById('{element_id}').textContent")

    async def call(self, callee: str) -> None:
        await self.fill("Callee", callee)
        await self.click("Voice call")

    async def received_frequency(self, ms: int = 1500, stream: str = REMOTE_STREAM
                                 ) -> dict[str, Any]:
        return await dominant_frequency(self.page, stream, ms)

    async def video_call(self, callee: str) -> None:
        await self.fill("Callee", callee)
        await self.click("Video call")

    async def video_stats(self) -> dict[str, Any]:
        """The current call's video inbound/outbound statistics (needs ``record_peers``)."""
        stats = await video_stats(self.page)
        if stats is None:
            raise AssertionError("the page has no RTCPeerConnection (record_peers=False?)")
        return stats

    async def frames_decoded(self) -> int:
        inbound = (await self.video_stats())["inbound"]
        return int(inbound["framesDecoded"] or 0) if inbound else 0

    async def wait_frames_decoded(self, more_than: int, timeout: float = 15.0) -> int:
        """Poll getStats until the browser decoded more than ``more_than`` video frames."""
        deadline = reactor.seconds() + timeout
        while True:
            decoded = await self.frames_decoded()
            if decoded > more_than:
                return decoded
            if reactor.seconds() > deadline:
                raise AssertionError(f"framesDecoded stayed at {decoded} (wanted > {more_than}) "
                                     f"for {timeout:g} s; stats {await self.video_stats()}")
            await task.deferLater(reactor, 0.25, lambda: None)

    async def remote_pixels(self) -> dict[str, Any]:
        return await video_pixels(self.page, REMOTE_VIDEO)

    async def local_pixels(self) -> dict[str, Any]:
        return await video_pixels(self.page, LOCAL_VIDEO)

    async def video_state(self) -> str:
        return await evaluate(self.page, "document.getElementById('video-area').dataset.state")

    async def video_transceivers(self) -> list[dict[str, Any]]:
        """``{mid, direction, currentDirection, stopped}`` of each video transceiver."""
        return await evaluate(self.page, """() => {
            const pc = window.wcsgwPeers && window.wcsgwPeers[window.wcsgwPeers.length - 1];
            if (!pc) return [];
            return pc.getTransceivers().filter((t) => t.receiver.track.kind === "video")
              .map((t) => ({mid: t.mid, direction: t.direction,
                            currentDirection: t.currentDirection, stopped: t.stopped}));
        }""")


#: Turns off Chromium's voice processing for every getUserMedia of the pages that follow.
RAW_MICROPHONE_JS = """(() => {
  const md = navigator.mediaDevices;
  if (!md || md.wcsgwRaw) return;
  const native = md.getUserMedia.bind(md);
  const raw = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
  md.getUserMedia = (c) => native(c && c.audio
    ? {...c, audio: {...(typeof c.audio === "object" ? c.audio : {}), ...raw}} : c);
  md.wcsgwRaw = true;
})();"""


def raw_microphone(browser: Chromium) -> defer.Deferred:
    """Pages opened after this get the fake microphone's tone as it is: no echo canceller,
    noise suppressor or gain control.  Why: with them Chromium pulls a steady tone down by
    ~19 dB over its first 3 s (measured: 11 600 RMS -> 1 240), so what a peer receives says
    nothing about the gateway's level; without them a level can be checked in dB."""
    return aio(browser.context.add_init_script(RAW_MICROPHONE_JS))


def dominant_hz(path) -> tuple[float, float]:
    """(dominant frequency, RMS level) of a WAV, past its first half second."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
        if w.getnchannels() > 1:
            samples = samples.reshape(-1, w.getnchannels())[:, 0]
    samples = samples[rate // 2:]
    if len(samples) < rate // 4:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples), float(np.sqrt(np.mean(samples ** 2)))



async def phone_digits(phone: Baresip, since: int, count: int) -> list[str]:
    """The next ``count`` digits a baresip phone reports (CALL_DTMF_START), in order."""
    digits = []
    for _ in range(count):
        event = await phone.wait_event("CALL_DTMF_START", since=since)
        digits.append(event.get("param"))
        since = phone.events.index(event) + 1
    return digits


class PeersMixin:
    """The peers most real-peer tests start: Kamailio, the gateway, a baresip phone playing
    1 kHz, a browser (fake 440 Hz microphone) and the Phone UI logged in as 1001; and the
    gateway's REST API.  Each peer is stopped at clean-up, the phone before Kamailio."""

    async def start_pbx(self, config: Config | None = None) -> None:
        """Kamailio and the gateway (``config``, default: :func:`gateway_config` for loopback)
        as ``self.kam``, ``self.gateway``."""
        self.kam = Kamailio()
        self.addCleanup(self.kam.stop)
        await self.kam.start()
        self.gateway = Gateway(config or gateway_config(allowed_domains=("127.0.0.1",),
                                                        t1=0.1, t2=0.8))
        self.gateway.start()
        self.addCleanup(self.gateway.stop)

    async def assert_clean(self) -> None:
        """No call and no media port left behind."""
        await self.gateway.when_idle()
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(await self.gateway.ports_released(), 0)

    async def start_pbx_and_phone(self, config: Config | None = None, *, user: str = "1002",
                                  **phone: Any) -> Baresip:
        """:meth:`start_pbx`, then baresip ``user`` registered (``phone``: more
        :class:`Baresip` options) as ``self.phone``."""
        await self.start_pbx(config)
        return await self.start_phone(user, **phone)

    async def start_phone(self, user: str = "1002", **phone: Any) -> Baresip:
        """Baresip ``user`` registered at ``self.kam`` (however it was started), playing a
        1 kHz tone, PCMU unless ``phone`` says otherwise, as ``self.phone``."""
        tone = write_tone(os.path.abspath(self.mktemp()) + ".wav", frequency=1000.0, rate=8000,
                          seconds=30.0)
        phone.setdefault("codecs", "PCMU")
        self.phone = Baresip(user, f"pass{user}", registrar_port=self.kam.port, outbound=True,
                             tone=tone, **phone)
        self.addCleanup(self.phone.stop)  # added after Kamailio's: runs first
        await self.phone.start()
        await self.phone.registered()
        return self.phone

    async def start_browser(self, raw_mic: bool = False) -> Chromium:
        """``self.browser``; ``raw_mic``: no voice processing on its microphone
        (:func:`raw_microphone`)."""
        self.browser = Chromium(fake_audio=write_tone_wav(self.mktemp() + "-mic.wav", 440.0))
        await self.browser.start()
        self.addCleanup(self.browser.stop)
        if raw_mic:
            await raw_microphone(self.browser)
        return self.browser

    async def rest(self, path: str, body: dict, token: str | None = TOKEN) -> tuple[int, object]:
        """POST ``body`` to the gateway's ``/rest-api/<path>``: (status, decoded reply)."""
        headers = Headers({b"content-type": [b"application/json"]})
        if token:
            headers.addRawHeader(b"authorization", f"Bearer {token}".encode())
        url = self.gateway.url + "rest-api/" + path
        response = await Agent(reactor).request(
            b"POST", url.encode(), headers, FileBodyProducer(BytesIO(json.dumps(body).encode())))
        return response.code, json.loads(await readBody(response))

    def startup_body(self, **extra: object) -> dict:
        """A call/startup body: 1001 at our Kamailio calls 1002; ``extra`` adds or overrides."""
        return {"callee": "1002", "sipLogin": "1001", "sipPassword": "pass1001",
                "sipDomain": "127.0.0.1", "sipOutboundProxy": "127.0.0.1",
                "sipPort": self.kam.port, **extra}

    async def logged_in_ui(self, page_query: str = "", **open_options: Any) -> Phone:
        """A Phone UI page in ``self.browser``, logged in as 1001 and registered at Kamailio."""
        ui = await Phone.open(self.browser, self.gateway.url + page_query, **open_options)
        await ui.login(login="1001", password="pass1001", domain="127.0.0.1",
                       proxy="127.0.0.1", port=str(self.kam.port), register=True)
        return ui


class SipPhoneMixin(PeersMixin):
    """Kamailio, the gateway, baresip 1002 (1 kHz) and a browser logged in as 1001."""

    timeout = 120

    async def setup_call(self, *, answermode: str = "auto", page_query: str = "",
                         phone_user: str = "1002", codecs: str = "PCMU",
                         config: Config | None = None,
                         raw_mic: bool = False) -> tuple[Phone, Baresip]:
        """``config``: the gateway's (default: :func:`gateway_config` for loopback);
        ``raw_mic``: no voice processing on the browser's microphone (:func:`raw_microphone`)."""
        # ausrc_*: baresip resamples the 8 kHz tone for any codec (Opus runs at 48 kHz).
        await self.start_pbx_and_phone(config, user=phone_user, answermode=answermode,
                                       codecs=codecs, ausrc_srate=8000, ausrc_channels=1)
        await self.start_browser(raw_mic)
        return await self.logged_in_ui(page_query), self.phone

    async def start_handed_call(self, ui: Phone, **extra: object) -> None:
        """REST call/startup of call "handed" to 1002 with the browser's sessionId
        (``extra``: more fields); returns once the browser is offered the call."""
        [session_id] = self.gateway.top.call_gateway.sessions
        code, reply = await self.rest("call/startup", self.startup_body(
            callId="handed", sessionId=session_id, **extra), token=None)
        self.assertEqual((code, reply), (200, {"callId": "handed"}))
        await ui.ringing()

    async def assert_clean(self) -> None:
        """No call, no media port, no SIP session timer left behind."""
        await super().assert_clean()
        self.assertEqual(self.gateway.sip.endpoint.timed_users, [])

    async def talk_and_check_audio(self, ui: Phone, phone: Baresip, mode: str) -> None:
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        self.assertEqual(call.describe()["media"]["mode"], mode)
        peak = await ui.received_frequency()
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)
        # Let the phone record a good second of the browser's tone.
        await task.deferLater(reactor, 1.5, lambda: None)

    def assert_phone_heard_440(self, phone: Baresip) -> None:
        [recording] = phone.recordings()
        frequency, level = dominant_hz(recording)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)


class VideoPhoneMixin(SipPhoneMixin):
    """A video call: the Phone UI's ``Video call`` (fake camera + 440 Hz microphone) to
    baresip 1002 with a video source (fakevideo bars) and display, through Kamailio."""

    async def setup_video_call(self, *, video_codecs: str = "VP8", phone_video: bool = True,
                               page_query: str = "", answermode: str = "auto"
                               ) -> tuple[Phone, Baresip]:
        await self.start_pbx_and_phone(answermode=answermode, video=phone_video,
                                       video_codecs=video_codecs)
        await self.start_browser()
        ui = await self.logged_in_ui(page_query, record_peers=True)
        return ui, self.phone

    async def established_video_call(self, ui: Phone, phone: Baresip) -> Any:
        """Place the video call and wait until both sides say ESTABLISHED; the gateway's call."""
        await ui.video_call("1002")
        await ui.wait_state("call-status", "established")
        await phone.wait_event("CALL_ESTABLISHED")
        [call] = self.gateway.calls.values()
        return call

    async def assert_browser_decodes_video(self, ui: Phone, frames: int = 20) -> dict[str, Any]:
        """The browser decodes a growing number of frames, and the picture it shows is not
        uniform (a frozen black or grey frame would pass a frame count alone).  Returns the
        last statistics."""
        first = await ui.wait_frames_decoded(0)
        await ui.wait_frames_decoded(first + frames)
        pixels = await ui.remote_pixels()
        self.assertGreater(pixels["width"], 0, pixels)
        self.assertGreater(pixels["std"], UNIFORM_STD,
                           f"the remote picture is uniform: {pixels['mean']:.1f} ± {pixels['std']:.1f}")
        return await ui.video_stats()

    async def assert_phone_decodes_video(self, phone: Baresip) -> np.ndarray:
        """baresip's snapshot of the DECODED received video is a picture, not a flat frame."""
        path = await phone.snapshot_received(os.path.join(str(phone.dir), "recv.png"))
        pixels = read_png(path).astype(float)
        luma = pixels[..., :3] @ np.array([0.299, 0.587, 0.114]) if pixels.shape[2] >= 3 \
            else pixels[..., 0]
        self.assertGreater(luma.std(), UNIFORM_STD,
                           f"baresip decoded a uniform picture ({luma.mean():.1f} ± {luma.std():.1f})")
        return luma

    async def assert_browser_hears_1k(self, ui: Phone, stream: str = REMOTE_VIDEO_STREAM) -> None:
        peak = await ui.received_frequency(stream=stream)
        assert_near(self, peak["frequency"], 1000, 15)
        self.assertGreater(peak["level"], -60)


class RestMixin(PeersMixin):
    """Kamailio, a gateway with REST (token, media and recordings folders), baresip 1002."""

    timeout = 120

    async def setup(self, codecs: str = "PCMU", **phone: Any) -> Baresip:
        """Start it all; the phone offers ``codecs`` (baresip's spelling), ``phone`` is passed
        on to :class:`Baresip`."""
        self.media = os.path.abspath(self.mktemp())
        self.recordings = os.path.abspath(self.mktemp())
        os.makedirs(self.media)
        os.makedirs(self.recordings)
        write_tone_wav(os.path.join(self.media, "tone440.wav"), 440.0, seconds=3.0)
        config = attrs.evolve(
            gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
            rest=RestSettings(tokens=(TOKEN,), media_folder=self.media),
            recording=RecordingSettings(folder=self.recordings))
        return await self.start_pbx_and_phone(config, codecs=codecs, **phone)

    async def play_and_record(self, phone: Baresip, call_id: str) -> list:
        """A REST call playing tone440.wav and recording, 2.5 s long, hung up over REST; the
        phone heard the file. Returns what call/find said while the call was up (the recording
        is ``<recordings>/<its "recording">``: a name the gateway chose, never the callId)."""
        code, reply = await self.rest("call/startup", self.startup_body(
            callId=call_id, playFile="tone440.wav", record=True))
        self.assertEqual((code, reply), (200, {"callId": call_id}))
        await phone.wait_event("CALL_ESTABLISHED")
        code, found = await self.rest("call/find", {"callId": call_id})
        self.assertEqual(code, 200)
        await task.deferLater(reactor, 2.5, lambda: None)  # the file plays; both sides record
        mark = phone.mark()
        self.assertEqual(await self.rest("call/terminate", {"callId": call_id}), (200, {}))
        await phone.wait_event("CALL_CLOSED", since=mark)
        await self.gateway.when_idle()
        [heard] = phone.recordings()
        frequency, level = dominant_hz(heard)
        assert_near(self, frequency, 440, 10)
        self.assertGreater(level, 300)
        return found

