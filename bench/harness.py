"""What every whole-gateway benchmark starts and measures, in one place.

``relay_capacity.py``, ``profile_relay.py``, ``soak.py`` and ``overload.py`` all run the same
three processes — the echo UAS (``echo_uas.py``), the gateway (``twistd -n wcsgw``) and load
callers (``load_caller.py``, ``churn_caller.py``) — each in its own process group, on
127.0.0.1 and free ports, and stopped whatever happens.  The figures they read about a process
come from /proc (CPU, RSS) or from the gateway's own ``/metrics``.
"""

from __future__ import annotations

import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime (fields 14, 15)


def box_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, all cores (first line of /proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


class Proc:
    """A child in its own process group; stop() ends the group (TERM, then KILL)."""

    def __init__(self, argv: list[str], log_path: str, env: dict[str, str] | None = None,
                 cwd: str | None = None, stdout_pipe: bool = False) -> None:
        self.log = open(log_path, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE if stdout_pipe else self.log, stderr=self.log,
            env=env, cwd=cwd, start_new_session=True, text=True)
        self.pid = self.proc.pid

    def stop(self, grace: float = 5.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)  # stragglers of the group, if any
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


class EchoUas:
    def __init__(self, workdir: str, media_ports: str) -> None:
        self.p = Proc([PY, os.path.join(HERE, "echo_uas.py"), "--media-ports", media_ports],
                      os.path.join(workdir, "echo_uas.err"), stdout_pipe=True)
        self.setups: dict[str, tuple[float, float]] = {}
        line = self.p.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("READY"):
            raise RuntimeError(f"echo UAS did not start: {line!r}")
        self.port = int(line.split()[1])
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.proc.stdout:  # type: ignore[union-attr]
            parts = line.split()
            if len(parts) == 4 and parts[0] == "SETUP":
                self.setups[parts[1]] = (float(parts[2]), float(parts[3]))

    def stop(self) -> None:
        self.p.stop()


#: ``[limits]`` for a load from one address: the defaults (20 sessions per IP, 30 calls a
#: minute) are for browsers on the internet, and every bench caller is 127.0.0.1.
LOAD_LIMITS = {"max_sessions": 20000, "sessions_per_ip": 20000, "calls_per_minute_per_ip": 1000000,
               "calls_per_session": 4}


class Wcsgw:
    """The gateway under test, with ``LOAD_LIMITS`` updated by ``limits``.  ``extra``: more
    TOML tables for its config; a REST token is always set, so ``/metrics`` answers only the
    bench (``metrics()``)."""

    name = "wcsgw"

    def __init__(self, workdir: str, log_level: str = "info",
                 launcher: list[str] | None = None, extra: str = "",
                 limits: dict[str, int] | None = None) -> None:
        """``launcher``: argv that runs twistd's main in place of the twistd script (e.g. the
        tracemalloc wrapper of ``bench/profile_relay.py``); twistd's arguments follow it."""
        self.http_port, self.sip_port = free_port(), free_port()
        self.token = secrets.token_urlsafe(18)
        config = os.path.join(workdir, "gw.toml")
        table = "".join(f"{k} = {v}\n" for k, v in {**LOAD_LIMITS, **(limits or {})}.items())
        with open(config, "w") as f:
            f.write(f"""[http]\nlisten = "127.0.0.1"\nport = {self.http_port}\n
[sip]\nlisten = "127.0.0.1"\nport = {self.sip_port}\n
[media]\nlisten = "127.0.0.1"\nport_min = 30000\nport_max = 39999\n
[testlines]\nenabled = true\n
[policy]\nallowed_domains = ["127.0.0.1"]\n
[rest]\ntokens = ["{self.token}"]\n
[limits]\n{table}
[log]\nlevel = "{log_level}"\n{extra}""")
        env = dict(os.environ, PYTHONPATH=REPO)
        twistd = os.path.join(os.path.dirname(PY), "twistd")
        self.p = Proc([*(launcher or [twistd]), "-n", "--pidfile=", "--logfile=-", "wcsgw",
                       "--config", config],
                      os.path.join(workdir, "gateway.log"), env=env, cwd=workdir)
        self.pid = self.p.pid
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=2):
                    break
            except OSError:
                if self.p.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway did not start; see {workdir}/gateway.log") from None
                time.sleep(0.2)

    def caller_args(self, echo_port: int) -> list[str]:
        return ["--adapter", "wcsgw", "--ws", f"ws://127.0.0.1:{self.http_port}/ws",
                "--sip-domain", "127.0.0.1", "--sip-port", str(echo_port)]

    def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """``/metrics``, each metric summed over its labels (``wcsgw_calls`` = every live call)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/metrics",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 (loopback)
            return sum_by_name(reply.read().decode())

    def stop(self) -> None:
        self.p.stop()


def sum_by_name(exposition: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, number = line.rpartition(" ")
        name = series.split("{", 1)[0]
        try:
            totals[name] = totals.get(name, 0.0) + float(number)
        except ValueError:
            continue
    return totals


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; commit {commit or '?'}")
