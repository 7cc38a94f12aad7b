"""The gateway as operators start it: ``twistd -n wcsgw --config ...`` and ``twistd -ny
twistd.tac``, as real subprocesses on free ports.

What is checked: /health answers, the process runs on the asyncio reactor, SIGTERM shuts it down
cleanly and frees its ports, and a bad config stops it with one line naming the key.

About the exit status after SIGTERM: twistd shuts down cleanly, then re-raises the signal on
itself so its parent sees "terminated by SIGTERM" (returncode -15) — the Unix convention, and
what systemd counts as a clean stop.  So a clean stop here is: that status, "Server Shut Down."
in the log, and nothing left running or listening.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from tests.peers.ports import free_port
from tests.peers.process import group_alive

REPO = Path(__file__).resolve().parent.parent
TAC = REPO / "twistd.tac"
ASYNCIO_REACTOR = "reactor class: twisted.internet.asyncioreactor.AsyncioSelectorReactor"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _twistd() -> list[str]:
    """twistd of the interpreter running the tests (the venv's, where the plugin is installed)."""
    beside = Path(sys.executable).parent / "twistd"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Gateway:
    """One twistd subprocess in its own session, output (stdout+stderr) to a file."""

    def __init__(self, case: unittest.TestCase, args: list[str], env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        self.cwd = os.path.abspath(cwd or case.mktemp())
        os.makedirs(self.cwd, exist_ok=True)
        self.log_path = Path(self.cwd) / "twistd.out"
        full_env = dict(os.environ)
        full_env.pop("WCSGW_CONFIG", None)
        for name in [n for n in full_env if n.startswith("WCSGW_")]:
            del full_env[name]
        # Import the working tree's wcsgw (the installed copy only has to provide the plugin).
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else [])
        )
        full_env.update(env or {})
        self._out = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            _twistd() + args, cwd=self.cwd, env=full_env, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        case.addCleanup(self.kill)

    @property
    def output(self) -> str:
        self._out.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Cleanup: whatever happened, nothing of this gateway survives the test."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._out.close()

    async def wait_health(self, port: int) -> dict[str, Any]:
        reactor = _reactor()
        deadline = reactor.seconds() + START_TIMEOUT
        url = f"http://127.0.0.1:{port}/health"
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"twistd exited ({self.proc.returncode}):\n{self.output}")
            try:
                # Blocking, but only for a local connect to another process: instant either way.
                with urllib.request.urlopen(url, timeout=2) as reply:
                    self.last_status = reply.status
                    return json.loads(reply.read())
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if reactor.seconds() > deadline:
                raise AssertionError(f"/health not answering after {START_TIMEOUT} s:\n{self.output}")
            await task.deferLater(reactor, 0.1, lambda: None)

    async def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        reactor = _reactor()
        deadline = reactor.seconds() + timeout
        while self.proc.poll() is None:
            if reactor.seconds() > deadline:
                raise AssertionError(f"twistd still running {timeout} s later:\n{self.output}")
            await task.deferLater(reactor, 0.05, lambda: None)
        return self.proc.returncode


def _write(directory: str, name: str, text: str) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _config(http_port: int, sip_port: int, extra: str = "") -> str:
    return (f'[http]\nlisten = "127.0.0.1"\nport = {http_port}\n'
            f'[sip]\nlisten = "127.0.0.1"\nport = {sip_port}\n{extra}')


class TwistdTestCase(unittest.TestCase):
    timeout = 120

    def tmpdir(self) -> str:
        """A fresh absolute directory (mktemp is relative to trial's working directory)."""
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    async def assert_runs_and_stops(self, gateway: Gateway, http_port: int, sip_port: int) -> None:
        from wcsgw import __version__

        health = await gateway.wait_health(http_port)
        self.assertEqual(gateway.last_status, 200)
        self.assertEqual(health, {"status": "ok", "version": __version__})
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=5) as reply:
            self.assertIn(">Voice call<", reply.read().decode())  # the Phone UI
        self.assertIn(ASYNCIO_REACTOR, gateway.output)

        os.killpg(gateway.proc.pid, signal.SIGTERM)
        code = await gateway.wait_exit()
        self.assertIn(code, (0, -signal.SIGTERM), gateway.output)
        self.assertIn("Server Shut Down.", gateway.output)
        self.assertNotIn("Traceback", gateway.output)
        self.assertFalse(group_alive(gateway.proc.pid), "a process of the gateway survived")
        self.assertTrue(_bindable(http_port), "HTTP port still bound")
        self.assertTrue(_bindable(sip_port), "SIP port still bound")

    def assert_one_line_error(self, gateway_output: str, *needles: str) -> None:
        self.assertNotIn("Traceback", gateway_output)
        self.assertNotIn("Usage:", gateway_output)
        lines = [line for line in gateway_output.splitlines() if line.strip()]
        matching = [line for line in lines if all(n in line for n in needles)]
        self.assertEqual(len(matching), 1, gateway_output)
        self.assertTrue(matching[0].startswith("wcsgw: "), matching[0])


class PluginTests(TwistdTestCase):
    def test_installed_plugin_is_current(self) -> None:
        """twistd finds the plugin in site-packages (non-editable install); a stale copy there
        would make the other tests lie.  `make test` reinstalls when sources change."""
        spec = importlib.util.find_spec("twisted.plugins.wcsgw_plugin")
        self.assertIsNotNone(spec, "plugin not installed: run `make test` (pip install .)")
        installed = Path(spec.origin).read_bytes()  # type: ignore[union-attr, arg-type]
        source = (REPO / "plugins" / "wcsgw_plugin.py").read_bytes()
        self.assertEqual(installed, source, f"{spec.origin} is stale: run `make test`")

    async def test_runs_on_asyncio_reactor_and_stops_on_sigterm(self) -> None:
        http_port, sip_port = free_port(), free_port()
        cwd = self.tmpdir()
        config = _write(cwd, "gw.toml", _config(http_port, sip_port))
        gateway = Gateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", config],
                          cwd=cwd)
        await self.assert_runs_and_stops(gateway, http_port, sip_port)
        self.assertIn("wcsgw.service#info", gateway.output)

    async def test_without_config_uses_defaults_and_environment(self) -> None:
        http_port, sip_port = free_port(), free_port()
        gateway = Gateway(self, ["-n", "--pidfile=", "wcsgw"],
                          env={"WCSGW_HTTP_PORT": str(http_port), "WCSGW_SIP_PORT": str(sip_port)})
        await self.assert_runs_and_stops(gateway, http_port, sip_port)

    async def test_log_level_filters(self) -> None:
        http_port, sip_port = free_port(), free_port()
        cwd = self.tmpdir()
        config = _write(cwd, "gw.toml", _config(http_port, sip_port, '[log]\nlevel = "warn"\n'))
        gateway = Gateway(self, ["-n", "--pidfile=", "wcsgw", "--config", config], cwd=cwd)
        await gateway.wait_health(http_port)
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        await gateway.wait_exit()
        self.assertNotIn("#info]", gateway.output)
        self.assertNotIn("#debug]", gateway.output)

    async def test_unknown_key_fails_with_one_line(self) -> None:
        cwd = self.tmpdir()
        config = _write(cwd, "bad.toml", "[sip]\nport = 5060\nbogus_key = 1\n")
        gateway = Gateway(self, ["-n", "--pidfile=", "wcsgw", "--config", config], cwd=cwd)
        code = await gateway.wait_exit()
        self.assertNotEqual(code, 0)
        self.assert_one_line_error(gateway.output, "sip.bogus_key", "unknown key")

    async def test_wrong_type_fails_with_one_line(self) -> None:
        cwd = self.tmpdir()
        config = _write(cwd, "bad.toml", '[http]\nport = "8080"\n')
        gateway = Gateway(self, ["-n", "--pidfile=", "wcsgw", "--config", config], cwd=cwd)
        self.assertNotEqual(await gateway.wait_exit(), 0)
        self.assert_one_line_error(gateway.output, "http.port", "must be an integer")

    async def test_missing_config_file_fails_with_one_line(self) -> None:
        gateway = Gateway(self, ["-n", "--pidfile=", "wcsgw", "--config", "/nonexistent/gw.toml"])
        self.assertNotEqual(await gateway.wait_exit(), 0)
        self.assert_one_line_error(gateway.output, "/nonexistent/gw.toml", "cannot read")

    async def test_other_reactor_refused_with_one_line(self) -> None:
        gateway = Gateway(self, ["-n", "--pidfile=", "--reactor=poll", "wcsgw"])
        self.assertNotEqual(await gateway.wait_exit(), 0)
        self.assert_one_line_error(gateway.output, "asyncio reactor", "PollReactor")


class TacTests(TwistdTestCase):
    async def test_tac_with_wcsgw_config(self) -> None:
        http_port, sip_port = free_port(), free_port()
        config = _write(self.tmpdir(), "gw.toml", _config(http_port, sip_port))
        gateway = Gateway(self, ["-ny", str(TAC), "--pidfile=", "--logfile=-"],
                          env={"WCSGW_CONFIG": config})
        await self.assert_runs_and_stops(gateway, http_port, sip_port)

    async def test_tac_reads_wcsgw_toml_in_working_directory(self) -> None:
        http_port, sip_port = free_port(), free_port()
        cwd = self.tmpdir()
        _write(cwd, "wcsgw.toml", _config(http_port, sip_port))
        gateway = Gateway(self, ["-ny", str(TAC), "--pidfile="], cwd=cwd)
        await self.assert_runs_and_stops(gateway, http_port, sip_port)

    async def test_tac_bad_config_fails_with_one_line(self) -> None:
        cwd = self.tmpdir()
        config = _write(cwd, "bad.toml", '[[accounts]]\ndomain = "example.com"\n')
        gateway = Gateway(self, ["-ny", str(TAC), "--pidfile="], cwd=cwd,
                          env={"WCSGW_CONFIG": config})
        self.assertNotEqual(await gateway.wait_exit(), 0)
        self.assert_one_line_error(gateway.output, "accounts[0].login: required")


class ServiceTreeTests(unittest.TestCase):
    """make_service in this process (no twistd): structure, /health, log wiring."""

    def _config(self, **http: Any) -> Any:
        from wcsgw.config import parse_config

        return parse_config({"http": {"port": 0, **http}, "sip": {"port": 0}})

    def test_children(self) -> None:
        from twisted.application.service import Service

        from wcsgw.service import make_service

        top = make_service(self._config(), sip_factory=lambda config: Service())
        self.assertEqual(sorted(s.name for s in top), ["http", "sip"])
        self.assertEqual(top.config.http.port, 0)

    async def test_health_and_placeholder_over_http(self) -> None:
        from twisted.application.service import Service
        from twisted.web.client import Agent, readBody

        from wcsgw import __version__
        from wcsgw.service import make_service

        top = make_service(self._config(), sip_factory=lambda config: Service())
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        host, port = top.getServiceNamed("http").address
        self.assertEqual(host, "127.0.0.1")
        self.assertNotEqual(port, 0)

        agent = Agent(_reactor())
        reply = await agent.request(b"GET", f"http://127.0.0.1:{port}/health".encode())
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(json.loads(await readBody(reply)), {"status": "ok", "version": __version__})
        reply = await agent.request(b"GET", f"http://127.0.0.1:{port}/".encode())
        self.assertIn(b"Phone UI arrives", await readBody(reply))
        reply = await agent.request(b"GET", f"http://127.0.0.1:{port}/nope".encode())
        self.assertEqual(reply.code, 404)
        await readBody(reply)

        await top.stopService()
        self.assertIsNone(top.getServiceNamed("http").address)
        self.assertTrue(_bindable(port))

    def test_log_observer_becomes_application_component(self) -> None:
        import io

        from twisted.application.service import Application, Service
        from twisted.logger import ILogObserver, LogLevel

        from wcsgw.service import make_log_observer, make_service

        out = io.StringIO()
        observer = make_log_observer("info", out)
        application = Application("wcsgw-test")
        make_service(self._config(), log_observer=observer,
                     sip_factory=lambda config: Service()).setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)

        for level in (LogLevel.debug, LogLevel.info, LogLevel.error):
            observer({"log_level": level, "log_format": f"at {level.name}", "log_time": 0,
                      "log_namespace": "test"})
        text = out.getvalue()
        self.assertNotIn("at debug", text)
        self.assertIn("at info", text)
        self.assertIn("at error", text)

    def test_start_logs_accounts_without_password(self) -> None:
        from twisted.application.service import Service
        from twisted.logger import formatEvent, globalLogPublisher

        from wcsgw.config import parse_config
        from wcsgw.service import make_service

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        config = parse_config({"http": {"port": 0}, "sip": {"port": 0}, "accounts": [
            {"login": "1001", "domain": "example.com", "password": "pw-secret-1"}]})
        top = make_service(config, sip_factory=lambda config: Service())
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        text = "\n".join(formatEvent(e) + repr(e) for e in events)
        self.assertIn("sip:1001@example.com", text)
        self.assertNotIn("pw-secret-1", text)
