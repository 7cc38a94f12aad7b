"""`make cluster-demo`: a whole cluster on this machine's loopback, for a person to try.

A tool beside the load harness in bench/, not part of the gateway.

Starts, each in its own process group (so Ctrl-C leaves nothing behind): a ``redis-server``
(the shared state), Kamailio as registrar + dispatcher (tests/peers/kamailio-dispatcher.cfg:
users 1001..1004 / pass1001.., the workers as one dispatcher set probed with OPTIONS), two
gateway workers (``twistd -n wcsgw``) from ONE config file with per-worker ports in their
environment — exactly as the systemd template ``wcsgw@.service`` runs them
(docs/deployment.md) — and HAProxy in front of the workers' HTTP ports (health checks on
``/health``, sticky cookie).  Then prints where everything is and waits for Ctrl-C.

Why the test suite's peers (tests/peers/): they already start these daemons on free ports,
wait until each is ready and stop whole process groups; a demo written again beside them
would drift from what the suite proves.  Run from the repository (``make cluster-demo`` sets
PYTHONPATH); ``--http-port`` / ``--sip-port`` pick the front ports (default 8080 and 5060).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from twisted.internet import asyncioreactor

asyncioreactor.install(asyncio.new_event_loop())

from twisted.internet import defer, reactor, task  # noqa: E402 (after the reactor install)

from tests.peers.dispatcher import Dispatcher  # noqa: E402
from tests.peers.haproxy import HAProxy  # noqa: E402
from tests.peers.ports import free_port  # noqa: E402
from tests.peers.process import stop_group  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TOKEN = "demo-token"
WORKERS = ("w1", "w2")


class Proc:
    """A daemon of the demo: its own session, output to a log file in the demo's folder."""

    def __init__(self, name: str, argv: list[str], folder: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        self._out = open(self.log, "ab")
        self.proc = subprocess.Popen(argv, cwd=folder, env={**os.environ, **(env or {})},
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    async def stop(self) -> None:
        await stop_group(self.proc, 10.0, reactor)
        self._out.close()


async def until(check: Any, what: str, proc: Proc, timeout: float = 30.0) -> None:
    deadline = reactor.seconds() + timeout
    while not check():
        if proc.proc.poll() is not None or reactor.seconds() > deadline:
            raise SystemExit(f"cluster-demo: {what} did not start; see {proc.log}")
        await task.deferLater(reactor, 0.1, lambda: None)


def answers(port: int, payload: bytes = b"") -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            if payload:
                s.sendall(payload)
                return s.recv(16).startswith(b"+PONG")
            return True
    except OSError:
        return False


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


async def run(args: argparse.Namespace, folder: Path, started: list[Any]) -> None:
    redis_port = free_port("tcp")
    redis = Proc("redis", [shutil.which("redis-server") or "/usr/bin/redis-server",
                           "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(folder)], folder)
    started.append(redis)
    await until(lambda: answers(redis_port, b"PING\r\n"), "redis-server", redis)

    ports = {name: (free_port("tcp"), free_port("udp+tcp"), free_port("udp", span=200))
             for name in WORKERS}
    kam = Dispatcher([(name, ports[name][1]) for name in WORKERS], port=args.sip_port,
                     ping=1, rundir=str(folder / "kamailio"))
    await kam.start()
    started.append(kam)

    config = folder / "wcsgw.toml"
    config.write_text(
        '[http]\nlisten = "127.0.0.1"\n[sip]\nlisten = "127.0.0.1"\n'
        f'[policy]\nallowed_domains = ["127.0.0.1:{kam.port}"]\n'
        f'[rest]\ntokens = ["{TOKEN}"]\n'
        f'[cluster]\nredis_url = "redis://127.0.0.1:{redis_port}/0"\n'
        f'secret = "{secrets.token_hex(16)}"\n')
    twistd = [sys.executable, "-c",
              "import sys; from twisted.scripts.twistd import run; sys.exit(run())"]
    workers = []
    for name in WORKERS:
        http_port, sip_port, media = ports[name]
        env = {"PYTHONPATH": str(REPO), "WCSGW_HTTP_PORT": str(http_port),
               "WCSGW_SIP_PORT": str(sip_port), "WCSGW_MEDIA_PORT_MIN": str(media),
               "WCSGW_MEDIA_PORT_MAX": str(media + 199), "WCSGW_CLUSTER_NODE_ID": name}
        worker = Proc(name, twistd + ["-n", "--pidfile=", "--logfile=-", "wcsgw",
                                      "--config", str(config)], folder, env)
        started.append(worker)
        workers.append(worker)
    for name, worker in zip(WORKERS, workers):
        await until(lambda p=ports[name][0]: healthy(p), f"worker {name}", worker)

    lb = HAProxy([(name, ports[name][0]) for name in WORKERS], port=args.http_port,
                 check_ms=1000)
    await lb.start()
    started.append(lb)

    print(f"""
cluster-demo is up (everything on 127.0.0.1; logs and configs in {folder}):

  Phone UI through HAProxy   {lb.url}/
      SIP domain 127.0.0.1, port {kam.port}; users 1001..1004, passwords pass1001..pass1004
  REST through HAProxy       {lb.url}/rest-api/...   (Authorization: Bearer {TOKEN})
  Kamailio registrar+dispatcher  udp/tcp 127.0.0.1:{kam.port}
      calls to sip:gw<anything>@127.0.0.1 are spread over the workers;
      kamcmd -s {kam.ctl} dispatcher.list
  Redis                      redis://127.0.0.1:{redis_port}/0
  HAProxy admin socket       echo 'show stat' | socat - {lb.stats_socket}""")
    for name in WORKERS:
        http_port, sip_port, media = ports[name]
        print(f"  worker {name}: http://127.0.0.1:{http_port}/  SIP {sip_port}  "
              f"media {media}-{media + 199}  (log {folder / name}.log)")
    print("\nCtrl-C stops everything.", flush=True)
    stopped: defer.Deferred[None] = defer.Deferred()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # callFromThread: a Python signal handler runs between two bytecodes, and a timer set
        # there would not wake the loop out of its wait; the reactor's waker does.
        signal.signal(sig, lambda *_: reactor.callFromThread(
            lambda: stopped.called or stopped.callback(None)))
    await stopped


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="wcsgw-cluster-demo-"))
    started: list[Any] = []
    try:
        await run(args, folder, started)
    finally:
        print("cluster-demo: stopping ...", flush=True)
        for thing in reversed(started):  # the workers drain, then the fronts, then Redis
            result = thing.stop()
            await (result if isinstance(result, defer.Deferred) else defer.ensureDeferred(result))
        print("cluster-demo: stopped", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8080, help="HAProxy's front port")
    parser.add_argument("--sip-port", type=int, default=5060, help="Kamailio's SIP port")
    args = parser.parse_args()
    outcome: list[Any] = []

    def done(result: Any) -> None:
        outcome.append(result)
        reactor.stop()

    reactor.callWhenRunning(
        lambda: defer.ensureDeferred(main(args)).addBoth(done))
    reactor.run(installSignalHandlers=False)
    failure = outcome[0] if outcome else None
    if failure is not None and hasattr(failure, "value"):  # a twisted Failure
        raise SystemExit(str(failure.value))


if __name__ == "__main__":
    cli()
