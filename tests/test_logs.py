"""The gateway's log output (wcsgw/api/logformat.py, [log] format and level).

Unit tests on the pure parts (the JSON record, the secret-named fields, the session ids of
call lines, Twisted's socket noise); then real events: a UDP port opened and closed on the
reactor, and a whole gateway placing a REST call to its echo test line, read back as JSON lines
— no Twisted socket line at info, every call line with its call and session ids.
"""

from __future__ import annotations

import io
import json
import os
import re
from types import SimpleNamespace
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest

from tests.peers.chromium import write_tone_wav
from tests.support import EventLog, inline
from wcsgw.api.logformat import CallIds, GatewayLogObserver, is_secret_key, json_line
from wcsgw.config import RestSettings
from wcsgw.service import make_log_observer

TOKEN = "logs-secret-token"


def event(**fields: Any) -> dict[str, Any]:
    base = {"log_format": "call {call_id}: {status}", "log_level": LogLevel.info,
            "log_namespace": "wcsgw.calls.core", "log_time": 1765000000.1234}
    return {**base, **fields}


class Capture:
    """A ``[log]`` observer on the global publisher for the test's length; ``lines()`` are the
    JSON objects written (or ``text()`` the text)."""

    def __init__(self, case: unittest.TestCase, level: str = "info", format: str = "json") -> None:
        self.out = io.StringIO()
        self.observer = make_log_observer(level, self.out, format)
        self.seen = EventLog()  # every line, to wait on
        observer = self.observer

        def tap(e: dict[str, Any]) -> None:
            before = self.out.tell()
            observer(e)
            if self.out.tell() != before:
                self.seen(e)

        globalLogPublisher.addObserver(tap)
        case.addCleanup(globalLogPublisher.removeObserver, tap)

    def text(self) -> str:
        return self.out.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]


class JsonRecordTests(unittest.TestCase):
    def test_one_object_per_line_with_time_level_namespace_message_and_fields(self) -> None:
        line = json_line(event(call_id="c1", session_id="s1", status="ESTABLISHED"))
        self.assertTrue(line.endswith("\n"))
        self.assertEqual(line.count("\n"), 1)
        self.assertNotIn("\x1e", line)  # not Twisted's RS-separated jsonFileLogObserver
        self.assertEqual(json.loads(line), {
            "time": "2025-12-06T05:46:40.123Z", "level": "info",
            "namespace": "wcsgw.calls.core", "message": "call c1: ESTABLISHED",
            "call_id": "c1", "session_id": "s1", "status": "ESTABLISHED"})

    def test_secret_named_fields_never_written(self) -> None:
        for key in ("password", "sipPassword", "auth_token", "Authorization", "client_secret",
                    "credentials"):
            self.assertTrue(is_secret_key(key), key)
        for key in ("call_id", "session_id", "aor", "registrar", "appKey"):
            self.assertFalse(is_secret_key(key), key)
        record = json.loads(json_line(event(
            log_format="connect as {aor}", aor="sip:1001@pbx", sipPassword="hunter2",
            token="t0k", nested={"password": "hunter3", "user": "1001"})))
        self.assertEqual(record["aor"], "sip:1001@pbx")
        self.assertEqual(record["nested"], {"user": "1001"})
        self.assertNotIn("sipPassword", record)
        self.assertNotIn("token", record)
        for secret in ("hunter2", "hunter3", "t0k"):
            self.assertNotIn(secret, json_line(event(sipPassword=secret, nested={"password": secret},
                                                     token=secret)))

    def test_only_plain_json_values_are_fields(self) -> None:
        record = json.loads(json_line(event(
            log_format="x", n=3, ratio=0.5, nan=float("nan"), flag=True, none=None,
            codecs=("PCMU", "opus"), thing=object(), log_logger=Logger())))
        self.assertEqual({k: record[k] for k in ("n", "ratio", "flag", "none", "codecs")},
                         {"n": 3, "ratio": 0.5, "flag": True, "none": None,
                          "codecs": ["PCMU", "opus"]})
        self.assertNotIn("nan", record)
        self.assertNotIn("thing", record)
        self.assertNotIn("log_logger", record)

    def test_failure_carries_its_traceback(self) -> None:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            failure = Failure()
        record = json.loads(json_line(event(log_format="boom", log_failure=failure,
                                            log_level=LogLevel.critical)))
        self.assertEqual((record["level"], record["message"]), ("critical", "boom"))
        self.assertIn("ZeroDivisionError", record["traceback"])


class CallIdsTests(unittest.TestCase):
    def test_session_filled_in_for_live_and_recently_ended_calls(self) -> None:
        ids = CallIds(keep=2)
        calls = [SimpleNamespace(call_id=f"c{i}", session_id=f"s{i}") for i in range(4)]
        for call in calls:
            ids.call_started(call)
        self.assertEqual(ids.enrich(event(call_id="c0"))["session_id"], "s0")
        for call in calls:
            ids.call_ended(call)
        # the last two ended calls are remembered, the older ones forgotten (bounded)
        self.assertEqual(ids.enrich(event(call_id="c3"))["session_id"], "s3")
        self.assertEqual(ids.enrich(event(call_id="c2"))["session_id"], "s2")
        self.assertNotIn("session_id", ids.enrich(event(call_id="c0")))
        self.assertNotIn("session_id", ids.enrich(event(call_id="unknown")))

    def test_sip_lines_get_the_call_of_their_dialog(self) -> None:
        ids = CallIds(keep=1)
        call = SimpleNamespace(call_id="c1", session_id="s1", invite=None)
        ids.call_started(call)
        sip_line = event(log_format="call {sip_call_id}: Ended", sip_call_id="abc@host")
        self.assertNotIn("call_id", ids.enrich(sip_line))  # no dialog yet
        call.invite = SimpleNamespace(call_id="abc@host")  # its INVITE is built
        later = event(sip_call_id="abc@host", log_time=sip_line["log_time"] + CallIds.REREAD)
        enriched = ids.enrich(later)
        self.assertEqual((enriched["call_id"], enriched["session_id"]), ("c1", "s1"))
        call.invite = SimpleNamespace(call_id="new@host")  # a transfer: another dialog
        self.assertEqual(ids.enrich(event(sip_call_id="new@host", log_time=later["log_time"] + 5))
                         ["call_id"], "c1")
        ids.call_ended(call)
        self.assertEqual(ids.enrich(event(sip_call_id="new@host"))["session_id"], "s1")
        other = SimpleNamespace(call_id="c2", session_id=None, invite=SimpleNamespace(call_id="x"))
        ids.call_started(other)
        ids.call_ended(other)  # keep=1: c1 forgotten
        self.assertNotIn("session_id", ids.enrich(event(sip_call_id="new@host")))
        self.assertNotIn("call_id", ids.enrich(event(sip_call_id="unknown")))

    def test_webrtc_leg_lines_and_a_reused_port(self) -> None:
        ids = CallIds()

        def call(call_id: str, port: int) -> SimpleNamespace:
            leg = SimpleNamespace(media=SimpleNamespace(control=SimpleNamespace(label=port)))
            return SimpleNamespace(call_id=call_id, session_id=f"s-{call_id}", near=leg)

        old = call("old", 30000)
        ids.call_started(old)
        ids.call_ended(old)
        line = event(log_format="webrtc leg {webrtc_leg}: browser ended DTLS", webrtc_leg=30000)
        self.assertEqual(ids.enrich(line)["call_id"], "old")  # the ended call's last lines
        ids.call_started(call("new", 30000))  # the port is reused by a live call: it wins
        self.assertEqual(ids.enrich(line)["session_id"], "s-new")

    def test_lines_of_calls_that_never_were_do_not_rescan_the_live_calls(self) -> None:
        """A flood of refused INVITEs while overloaded: the live calls are read once a second
        at most (and after a call starts or ends), not once a line."""
        reads = []

        class Counted:
            call_id, session_id = "c1", "s1"

            @property
            def invite(self) -> SimpleNamespace:
                reads.append(1)
                return SimpleNamespace(call_id="dialog-1")

        ids = CallIds()
        ids.call_started(Counted())
        for n in range(100):
            ids.enrich(event(sip_call_id=f"refused-{n}", log_time=1000.0 + n / 1000))
        self.assertEqual(len(reads), 1)
        ids.enrich(event(sip_call_id="refused-x", log_time=1000.0 + CallIds.REREAD + 0.5))
        self.assertEqual(len(reads), 2)
        self.assertEqual(ids.enrich(event(sip_call_id="dialog-1", log_time=1002.0))["call_id"],
                         "c1")  # indexed by that read: no third one
        self.assertEqual(len(reads), 2)

    def test_the_logged_event_is_not_changed(self) -> None:
        ids = CallIds()
        ids.call_started(SimpleNamespace(call_id="c1", session_id="s1"))
        logged = event(call_id="c1")
        self.assertEqual(ids.enrich(logged)["session_id"], "s1")
        self.assertNotIn("session_id", logged)  # other observers see it as it was logged
        explicit = event(call_id="c1", session_id="other")
        self.assertIs(ids.enrich(explicit), explicit)


class LevelTests(unittest.TestCase):
    def test_level_filter_and_text_format_unchanged(self) -> None:
        out = io.StringIO()
        observer = make_log_observer("warn", out)
        observer(event(call_id="c1", status="x"))  # info: below warn
        observer(event(log_level=LogLevel.warn, call_id="c1", status="FAILED"))
        self.assertEqual(out.getvalue().count("\n"), 1)
        self.assertIn("call c1: FAILED", out.getvalue())
        self.assertIsInstance(observer, GatewayLogObserver)

    def test_a_udp_port_opened_and_closed_writes_nothing_at_info(self) -> None:
        """Twisted's own events for one socket (the ones every call's media sockets make):
        written at debug, none at info."""
        info = Capture(self, "info", "text")
        debug = Capture(self, "debug", "text")
        port = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        number = port.getHost().port
        d = port.stopListening()

        def check(_: object) -> None:
            self.assertIn(f"(UDP Port {number} Closed)", debug.text())
            self.assertIn(f"starting on {number}", debug.text())
            self.assertIn("Starting protocol", debug.text())
            self.assertEqual(info.text(), "")
        return d.addCallback(check)


NOISE = re.compile(r"\(UDP Port \d+ Closed\)|Starting protocol|Stopping protocol|"
                   r"starting on \d+|Starting factory|Stopping factory")


class GatewayLogTests(unittest.TestCase):
    """A whole gateway, a REST call to its echo test line, the JSON log read back."""

    timeout = 60

    @inline
    async def test_a_call_logs_ids_and_no_socket_noise(self) -> None:
        from io import BytesIO

        from twisted.web.client import Agent, FileBodyProducer, readBody
        from twisted.web.http_headers import Headers

        from tests.e2e import gateway_config
        from wcsgw.service import make_service

        media = os.path.abspath(self.mktemp())
        os.makedirs(media)
        write_tone_wav(os.path.join(media, "tone.wav"), 440.0, seconds=5.0, rate=8000)
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                              rest=RestSettings(tokens=(TOKEN,), media_folder=media))
        capture = Capture(self, "info", "json")
        debug = Capture(self, "debug", "json")
        top = make_service(config, log_observer=capture.observer)
        self.assertIn(capture.observer.call_ids, top.call_gateway.registry.watchers)
        top.startService()
        self.addCleanup(top.stopService)
        host, port = top.getServiceNamed("http").address

        async def rest(path: str, body: dict[str, Any]) -> int:
            headers = Headers({b"content-type": [b"application/json"],
                               b"authorization": [f"Bearer {TOKEN}".encode()]})
            response = await Agent(reactor).request(
                b"POST", f"http://{host}:{port}/rest-api/{path}".encode(), headers,
                FileBodyProducer(BytesIO(json.dumps(body).encode())))
            await readBody(response)
            return response.code

        start = len(capture.lines())
        self.assertEqual(await rest("call/startup", {"callee": "echo", "callId": "logcall1",
                                                      "playFile": "tone.wav"}), 200)
        call = top.call_gateway.calls["logcall1"]
        await capture.seen.wait_for(lambda e: e.get("call_id") == "logcall1" and "mode" in e)
        self.assertEqual(await rest("call/terminate", {"callId": "logcall1"}), 200)
        await top.call_gateway.when_idle()
        await top.getServiceNamed("testlines").wait_idle()

        lines = capture.lines()[start:]
        # the call's sockets did log Twisted's lines, at debug only
        self.assertTrue([r for r in debug.lines() if NOISE.search(r["message"])])
        self.assertEqual([r["message"] for r in lines if NOISE.search(r["message"])], [])
        call_lines = [r for r in lines if r.get("call_id") == "logcall1"]
        self.assertGreaterEqual(len(call_lines), 3, lines)  # offer, media, statuses
        self.assertTrue(any("FINISH" in r["message"] for r in call_lines), call_lines)
        for record in call_lines:
            self.assertIn("session_id", record)
            self.assertEqual(record["session_id"], call.session_id)
            self.assertRegex(record["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(record["level"], ("debug", "info", "warn", "error", "critical"))
        # the SIP layer's lines of the call's dialog (ours, and the test line's) name it too
        dialog = call.invite.call_id
        sip_lines = [r for r in lines if r.get("sip_call_id") == dialog]
        self.assertGreaterEqual(len(sip_lines), 2, lines)
        for record in sip_lines:
            self.assertEqual((record["call_id"], record["session_id"]),
                             ("logcall1", call.session_id), record)
        self.assertNotIn(TOKEN, capture.text())


class TwistdJsonTests(unittest.TestCase):
    """Both start paths (the plugin, twistd.tac) write JSON lines with ``[log] format``."""

    timeout = 120

    async def run_gateway(self, args: list[str], env: dict[str, str], http_port: int) -> list[dict]:
        import signal

        from tests.test_twistd import Gateway

        gateway = Gateway(self, args, env=env)
        await gateway.wait_health(http_port)
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        await gateway.wait_exit()
        lines = [line for line in gateway.output.splitlines() if line.strip()]
        records = [json.loads(line) for line in lines]  # every line: one JSON object
        for record in records:
            self.assertEqual(set(record) >= {"time", "level", "namespace", "message"}, True, record)
        self.assertEqual([r["message"] for r in records if NOISE.search(r["message"])], [])
        self.assertTrue(any(r["namespace"] == "wcsgw.service" and "starting" in r["message"]
                            for r in records), records)
        return records

    @inline
    async def test_plugin_and_tac(self) -> None:
        from tests.peers.ports import free_port
        from tests.test_twistd import TAC, _config, _write

        http_port, sip_port = free_port(), free_port()
        cwd = os.path.abspath(self.mktemp())
        config = _write(cwd, "gw.toml", _config(http_port, sip_port, '[log]\nformat = "json"\n'))
        await self.run_gateway(["-n", "--pidfile=", "wcsgw", "--config", config], {}, http_port)
        http_port, sip_port = free_port(), free_port()
        config = _write(cwd, "tac.toml", _config(http_port, sip_port))
        await self.run_gateway(["-ny", str(TAC), "--pidfile="],
                               {"WCSGW_CONFIG": config, "WCSGW_LOG_FORMAT": "json"}, http_port)
