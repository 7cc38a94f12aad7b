"""Headless Firefox ESR with a fake microphone, driven over WebDriver BiDi, for tests.

Usage inside a trial test (the reactor is running)::

    browser = Firefox()
    self.addCleanup(browser.stop)           # idempotent; stops the whole process group
    await browser.start()                   # ready: the BiDi session is open
    page = await browser.new_page()         # a browsing context (tab)
    await page.goto(url)
    title = await page.call("() => document.title")
    await page.wait_for("() => document.readyState === 'complete'")
    peak = await page.call(DOMINANT_JS, ["window.stream", 1000, 8192])

Why WebDriver BiDi from Python rather than Playwright or puppeteer: Playwright drives only its
own patched Firefox build, not Debian's ``firefox-esr``; puppeteer-core would bring Node into
the suite.  Firefox speaks BiDi natively (``--remote-debugging-port``), and the few commands
the tests need (``session.new``, ``browsingContext.create``/``navigate``,
``script.callFunction``, ``log.entryAdded``) fit in this small client over autobahn's Twisted
WebSocket, which the gateway already depends on — so a test coroutine awaits it directly.

Values cross the wire as JSON text: :meth:`Page.call` wraps the function so the page returns
``JSON.stringify(result)`` and takes its arguments as one JSON string, which spares us BiDi's
RemoteValue (de)serialisation.

The profile (``user.js``, :data:`PREFS`): fake media devices without a permission prompt —
Firefox's fake microphone is a sine tone (:data:`FAKE_TONE_HZ`, measured by
tests/test_firefox_phone.py), autoplay allowed, ICE allowed on loopback with plain (not mDNS)
host candidates, no first-run pages, updates, telemetry or remote settings.  ``--remote-
debugging-port 0`` lets Firefox pick a free port; it writes it to ``WebDriverBiDiServer.json``
in the profile once listening, which is also how we know it is ready.

Firefox runs in its own session (process group, with its content processes); :meth:`stop`
ends the BiDi session, then stops the group (SIGTERM, then SIGKILL) and removes the profile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.peers.chromium import _DOMINANT_JS
from tests.peers.process import KeepsLog, stop_group

__all__ = ["FAKE_TONE_HZ", "FIREFOX", "PREFS", "Firefox", "FirefoxError", "Page",
           "dominant_frequency"]

FIREFOX = "/usr/bin/firefox-esr"
#: Firefox's fake microphone (``media.navigator.streams.fake``): a steady sine at this frequency.
FAKE_TONE_HZ = 1000.0
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0
STOP_GRACE = 3.0
POLL = 0.05

PREFS: dict[str, Any] = {
    # getUserMedia: fake devices, no prompt
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # remote audio plays without a user gesture
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    "media.autoplay.block-webaudio": False,
    # audio output into nothing at the real-time pace: without an output device (a CI
    # machine has no sound card) an AudioContext stays "suspended" and an AnalyserNode never
    # sees a sample; Firefox's own tests use this mock context
    "media.cubeb.force_mock_context": True,
    # ICE: host candidates on 127.0.0.1 (hidden by default), by address, not mDNS name
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.no_host": False,
    # a quiet browser: no first run, updates, telemetry, remote settings or studies
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "toolkit.telemetry.enabled": False,
    "app.normandy.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "extensions.update.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "dom.disable_open_during_load": False,
}


class FirefoxError(RuntimeError):
    """The browser could not be started, or a BiDi command failed."""


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def user_js(prefs: dict[str, Any]) -> str:
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


class _BiDi(WebSocketClientProtocol):
    """One BiDi connection: commands matched to replies by id; events to ``on_event``."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[int, defer.Deferred[Any]] = {}
        self.next_id = 0
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.on_event: Any = None

    def onOpen(self) -> None:  # noqa: N802 (autobahn API)
        self.opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:  # noqa: N802, N803
        message = json.loads(payload)
        if message.get("type") == "event":
            if self.on_event is not None:
                self.on_event(message["method"], message.get("params", {}))
            return
        d = self.pending.pop(message.get("id"), None)
        if d is None:
            return
        if message.get("type") == "error":
            d.errback(FirefoxError(f"{message.get('error')}: {message.get('message')}"))
        else:
            d.callback(message.get("result"))

    def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:  # noqa: N802, N803
        pending, self.pending = self.pending, {}
        for d in pending.values():
            d.errback(FirefoxError(f"BiDi connection closed ({code} {reason})"))
        if not self.opened.called:
            self.opened.errback(FirefoxError(f"BiDi connection refused ({code} {reason})"))

    def send(self, method: str, params: dict[str, Any]) -> defer.Deferred[Any]:
        self.next_id += 1
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending[self.next_id] = d
        self.sendMessage(json.dumps({"id": self.next_id, "method": method,
                                     "params": params}).encode())
        return d


class Page:
    """One browsing context (tab) of :class:`Firefox`."""

    def __init__(self, browser: "Firefox", context: str) -> None:
        self.browser = browser
        self.context = context

    async def goto(self, url: str) -> None:
        await self.browser.send("browsingContext.navigate",
                                {"context": self.context, "url": url, "wait": "complete"})

    async def reload(self) -> None:
        await self.browser.send("browsingContext.reload",
                                {"context": self.context, "wait": "complete"})

    async def call(self, function: str, arg: Any = None) -> Any:
        """Run the page function ``function`` (JS source; may be async) with ``arg`` (any
        JSON value); its result, JSON-decoded.  A thrown error raises FirefoxError."""
        wrapper = (f"async (argJson) => {{ const r = await ({function})(JSON.parse(argJson));"
                   " return r === undefined ? 'null' : JSON.stringify(r); }")
        result = await self.browser.send("script.callFunction", {
            "functionDeclaration": wrapper,
            "arguments": [{"type": "string", "value": json.dumps(arg)}],
            "target": {"context": self.context},
            "awaitPromise": True,
            "resultOwnership": "none",
        })
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise FirefoxError(f"page script failed: {details.get('text')}")
        return json.loads(result["result"]["value"])

    async def wait_for(self, predicate: str, arg: Any = None, timeout: float = 30.0) -> Any:
        """Poll the page function ``predicate`` (every 100 ms, in the page) until it returns
        something truthy; return that.  Raises FirefoxError after ``timeout`` seconds."""
        return await self.call(
            "async ([src, arg, ms]) => { const f = eval('(' + src + ')');"
            " const end = performance.now() + ms;"
            " for (;;) { const v = await f(arg); if (v) return v;"
            "   if (performance.now() > end) throw new Error('timed out waiting for ' + src);"
            "   await new Promise((r) => setTimeout(r, 100)); } }",
            [predicate, arg, int(timeout * 1000)])


def dominant_frequency(page: Page, stream_expr: str, ms: int = 1500,
                       fft_size: int = 8192) -> Any:
    """``{"frequency": Hz, "level": dBFS, ...}`` of the page's stream at ``stream_expr``: the
    same in-page AnalyserNode measurement as :func:`tests.peers.chromium.dominant_frequency`."""
    return page.call(_DOMINANT_JS, [stream_expr, ms, fft_size])


class Firefox(KeepsLog):
    """One headless Firefox ESR on a fresh profile, with one BiDi session."""

    def __init__(self, media_origins: Sequence[str] = (),
                 prefs: Optional[dict[str, Any]] = None, executable: str = FIREFOX) -> None:
        self.media_origins = tuple(media_origins)
        self.prefs = {**PREFS, **(prefs or {})}
        self.executable = executable
        self.profile: Optional[Path] = None
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.pgid: Optional[int] = None  # the browser's process group (kept after stop)
        self.bidi: Optional[_BiDi] = None
        self.console: list[str] = []  # console messages and page errors, for diagnosis
        self._stopped: Optional[defer.Deferred[None]] = None

    def start(self) -> defer.Deferred[None]:
        return defer.ensureDeferred(self._start())

    async def _start(self) -> None:
        if not os.access(self.executable, os.X_OK):
            raise FirefoxError(f"{self.executable} not found: install Debian's firefox-esr "
                               "package (make test does)")
        self.profile = Path(tempfile.mkdtemp(prefix="wcsgw-firefox-"))
        # media_origins get the microphone and camera as a person who ticked "remember"
        # would: a default permissions file.  Why, beyond media.navigator.permission.disabled:
        # without a granted permission (or a capture Firefox counts, and a fake device is not
        # one) Firefox gathers ICE host candidates on the default route's address only
        # (MediaManager::IsActivelyCapturingOrHasAPermission) — none in a network namespace
        # with only loopback, where ICE then fails.
        grants = self.profile / "permissions.txt"
        grants.write_text("".join(f"origin\t{kind}\t1\t{origin.rstrip('/')}\n"
                                  for origin in self.media_origins
                                  for kind in ("microphone", "camera")))
        prefs = {**self.prefs, "permissions.manager.defaultsUrl": grants.as_uri()}
        (self.profile / "user.js").write_text(user_js(prefs))
        self.log_path = self.profile.parent / (self.profile.name + ".log")
        self._log_file = open(self.log_path, "wb")
        env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1", "HOME": str(self.profile)}
        try:
            self.proc = subprocess.Popen(
                [self.executable, "--headless", "--no-remote", "--profile", str(self.profile),
                 "--remote-debugging-port", "0", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
            self.pgid = self.proc.pid
            port = await self._listening_port()
            factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/session")
            factory.protocol = _BiDi
            self.bidi = await TCP4ClientEndpoint(_reactor(), "127.0.0.1", port).connect(factory)
            await self.bidi.opened
            self.bidi.on_event = self._event
            await self.send("session.new", {"capabilities": {
                "alwaysMatch": {"acceptInsecureCerts": True}}})
            await self.send("session.subscribe", {"events": ["log.entryAdded"]})
        except BaseException:
            await self._stop()
            raise

    async def _listening_port(self) -> int:
        """Firefox writes the BiDi port to the profile once it listens."""
        assert self.profile is not None and self.proc is not None
        marker = self.profile / "WebDriverBiDiServer.json"
        deadline = _reactor().seconds() + START_TIMEOUT
        while _reactor().seconds() < deadline:
            if self.proc.poll() is not None:
                raise FirefoxError(f"firefox exited ({self.proc.returncode}): "
                                   f"{self._read_log()[-2000:]}")
            try:
                return int(json.loads(marker.read_text())["ws_port"])
            except (OSError, ValueError, KeyError):
                pass
            await task.deferLater(_reactor(), POLL, lambda: None)
        raise FirefoxError(f"firefox did not listen for BiDi in {START_TIMEOUT:g} s: "
                           f"{self._read_log()[-2000:]}")

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "log.entryAdded":
            self.console.append(f"{params.get('level')}: {params.get('text')}")

    async def send(self, method: str, params: dict[str, Any]) -> Any:
        """One BiDi command; its result (FirefoxError on error or after COMMAND_TIMEOUT)."""
        if self.bidi is None:
            raise FirefoxError("not connected")
        d = self.bidi.send(method, params)
        d.addTimeout(COMMAND_TIMEOUT, _reactor())
        try:
            return await d
        except defer.TimeoutError as e:
            raise FirefoxError(f"{method}: no answer in {COMMAND_TIMEOUT:g} s") from e

    async def new_page(self) -> Page:
        result = await self.send("browsingContext.create", {"type": "tab"})
        return Page(self, result["context"])

    def console_errors(self) -> list[str]:
        return [line for line in self.console if line.startswith("error")]

    def stop(self) -> defer.Deferred[None]:
        """End the session, stop the process group, remove the profile.  Idempotent."""
        if self._stopped is None:
            self._stopped = defer.ensureDeferred(self._stop())
        d: defer.Deferred[None] = defer.Deferred()
        self._stopped.addBoth(lambda r: (d.callback(None), r)[1])
        return d

    async def _stop(self) -> None:
        # Every step runs even if one before it failed: no browser may outlive the test.
        if self.bidi is not None:
            bidi, self.bidi = self.bidi, None
            try:
                d = bidi.send("session.end", {})
                d.addTimeout(2.0, _reactor())
                await d
            except Exception:
                pass
            if bidi.transport is not None:
                bidi.transport.abortConnection()
        if self.proc is not None:
            await stop_group(self.proc, STOP_GRACE, _reactor())
            self.proc = None
        if self._log_file is not None:
            self._close_log()
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None
            try:
                self.log_path.unlink()
            except OSError:
                pass
