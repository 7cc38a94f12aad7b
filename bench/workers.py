"""Relayed capacity with one gateway worker and with two on the same machine (issue 17).

Why this exists: the cluster's promise is that a second process on a 2-core box carries
(nearly) twice the calls.  A worker is one event loop, so one core is its ceiling; what can
spoil the doubling is what the workers share — the machine's caches and memory bus, the
kernel's UDP path, the loopback, and (with ``--cluster``) Redis.  So the question measured is
*does a worker's CPU per call stay the same when a second worker runs beside it?*

What runs (the same pieces as ``bench/relay_capacity.py``, every one in its own process group,
on 127.0.0.1 and free ports, stopped whatever happens):

* two gateways (``twistd -n wcsgw``), each with its own SIP/HTTP ports (free ports), its own
  media range (``worker_media_ranges``, given through the ``WCSGW_MEDIA_PORT_MIN/MAX``
  environment overrides) and its own work folder; with ``--cluster`` also a ``redis-server``
  and ``[cluster] redis_url`` / ``secret`` for both, so the cluster's own cost is counted;
* one echo far end (``bench/echo_uas.py``) and one load caller (``bench/load_caller.py``) per
  worker: the same N calls per worker in both configurations, so the callers and echoes cost
  per worker what they cost with one;
* overload control off (``NO_OVERLOAD_CONTROL``);
* per repetition: N calls through worker 1 alone and N calls through each of the two at once
  (the callers started together), in turn one first and two first (a busy machine's drift
  falls on both).  Each process's utime+stime comes from /proc over the
  window all the callers' windows share (their intersection: the later ``WINDOW_START`` to
  the earlier ``WINDOW_END``), so no worker's figure includes another's call set-up.

The figure: CPU per call of each worker (% of a core / calls up).  The load generator and
echoes share the 2 cores with the gateways, so two workers can never both reach a full core
here; the calls each would carry at a CPU budget (``--budget``, % of a core per worker, 90 as
``relay_capacity.py``'s saturation mark) are ``budget / CPU per call``, summed over the
workers.  The ratio is that total with two workers over the total with one: 2.0 when a second
worker costs the first nothing, the issue's target is >= 1.8.  Three repetitions by default:
medians with their range; the load average before each point is printed, and a busy machine
(load average above the core count) is said so.

Run: ``PYTHONPATH=. .venv/bin/python bench/workers.py [--calls 100] [--reps 3] [--cluster]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import (  # noqa: E402 - after sys.path
    PY,
    EchoUas,
    Proc,
    Wcsgw,
    box_cpu,
    cpu_seconds,
    fmt,
    free_port,
    load_average,
    machine,
)

#: The gateways' media ports (the ``[media]`` default range of the harness), split per worker.
MEDIA_BASE, MEDIA_SPAN = 30000, 10000
#: The echoes' media ports, split the same way.
ECHO_BASE, ECHO_SPAN = 40000, 10000
#: Overload control off: on a 2-core box shared with the callers and echoes the event loop
#: runs late before any worker's core is full, and refused calls would change N between the
#: configurations compared (admission is ``bench/overload.py``'s subject, not this one's).
NO_OVERLOAD_CONTROL = {"max_loop_lag_ms": 0, "max_cpu_percent": 0}


def worker_media_ranges(workers: int, base: int = MEDIA_BASE, span: int = MEDIA_SPAN) -> list[tuple[int, int]]:
    """Disjoint ``(port_min, port_max)`` ranges, one per worker, splitting ``span`` ports from
    ``base`` evenly: two workers in one range would each bind-test (and skip) the other's ports
    on every call set-up, a cost a real deployment (one range per worker) does not pay."""
    if workers < 1 or span // workers < 4:
        raise ValueError(f"cannot split {span} ports among {workers} workers")
    each = span // workers
    return [(base + i * each, base + (i + 1) * each - 1) for i in range(workers)]


def window(marks: dict[str, dict[str, float]]) -> tuple[float, float] | None:
    """The span every caller measured in: the latest ``WINDOW_START`` to the earliest
    ``WINDOW_END``; None when a caller has no window or the windows do not overlap."""
    if not marks or any("WINDOW_START" not in m or "WINDOW_END" not in m for m in marks.values()):
        return None
    start = max(m["WINDOW_START"] for m in marks.values())
    end = min(m["WINDOW_END"] for m in marks.values())
    return (start, end) if end > start else None


def calls_at_budget(cpu_per_call: Sequence[float], budget: float) -> float:
    """Calls the workers carry together when each spends ``budget`` % of a core at the CPU per
    call (% of a core) it was measured at."""
    return sum(budget / c for c in cpu_per_call if c > 0)


def median_range(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(median, lowest, highest) of the repetitions; None without any."""
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def show(m: tuple[float, float, float] | None, digits: int = 2) -> str:
    if m is None:
        return "–"
    return f"{m[0]:.{digits}f} ({m[1]:.{digits}f}–{m[2]:.{digits}f})"


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Environment overrides for the gateways started inside (``Wcsgw`` copies os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Redis:
    """A throw-away redis-server (no persistence) for ``--cluster``."""

    def __init__(self, workdir: str) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("--cluster needs redis-server (the Makefile's PACKAGES)")
        self.port = free_port()
        self.p = Proc([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--dir", workdir],
                      os.path.join(workdir, "redis.log"))
        self.pid = self.p.pid
        deadline = time.monotonic() + 10
        import socket

        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.p.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {workdir}/redis.log")
            time.sleep(0.1)

    def stop(self) -> None:
        self.p.stop()


def run_point(pairs: list[tuple[Wcsgw, EchoUas]], calls: int, args: argparse.Namespace,
              workdir: str, tag: str, extra_pids: Sequence[int] = ()) -> dict[str, Any]:
    """N calls through every (gateway, echo) pair at once; CPU of every process over the
    shared window.  Returns per-worker rows and the machine's figures."""
    callers = []
    for i, (gw, echo) in enumerate(pairs):
        argv = [PY, os.path.join(HERE, "load_caller.py"), *gw.caller_args(echo.port),
                "--codec", "pcmu", "--calls", str(calls), "--duration", str(args.duration),
                "--settle", str(args.settle), "--concurrency", str(args.concurrency)]
        callers.append(Proc(argv, os.path.join(workdir, f"caller-{tag}-{i}.err"), stdout_pipe=True))
    pids = ([gw.pid for gw, _ in pairs] + [c.pid for c in callers]
            + [echo.p.pid for _, echo in pairs] + list(extra_pids))
    lock = threading.Lock()
    samples: dict[float, tuple[dict[int, float], tuple[float, float]]] = {}
    marks: dict[str, dict[str, float]] = {str(i): {} for i in range(len(callers))}
    results: list[dict[str, Any]] = [{} for _ in callers]

    def read(i: int, caller: Proc) -> None:
        for line in caller.proc.stdout:  # type: ignore[union-attr]
            if line.startswith(("WINDOW_START", "WINDOW_END")):
                with lock:
                    t = time.monotonic()
                    samples[t] = ({p: _cpu(p) for p in pids}, box_cpu())
                    marks[str(i)][line.split()[0]] = t
            elif line.startswith("RESULT "):
                results[i] = json.loads(line[7:])

    load = load_average()[0]
    threads = [threading.Thread(target=read, args=(i, c), daemon=True) for i, c in enumerate(callers)]
    try:
        for t in threads:
            t.start()
        for c in callers:
            c.proc.wait(120)
        for t in threads:
            t.join(5)
    finally:
        for c in callers:
            c.stop()
    point: dict[str, Any] = {"load_avg_1m": load, "workers": []}
    span = window(marks)
    if span is None:
        point["error"] = "the callers' windows did not overlap"
        return point
    (cpu0, box0), (cpu1, box1) = samples[span[0]], samples[span[1]]
    seconds = span[1] - span[0]
    point["window_s"] = seconds
    point["box_cpu_pct"] = 100 * (os.cpu_count() or 1) * (box1[0] - box0[0]) / max(box1[1] - box0[1], 1.0)
    pct = {p: 100 * (cpu1[p] - cpu0[p]) / seconds for p in pids}
    for i, (gw, echo) in enumerate(pairs):
        r = results[i]
        up = r.get("calls_up") or 0
        point["workers"].append({
            "calls": calls, "up": up, "gw_cpu_pct": pct[gw.pid],
            "cpu_per_call_pct": pct[gw.pid] / up if up else None,
            "caller_cpu_pct": pct[callers[i].pid], "echo_cpu_pct": pct[echo.p.pid],
            "loss_pct": r.get("loss_pct"), "rtt_p50_ms": r.get("rtt_p50_ms"),
            "rtt_p99_ms": r.get("rtt_p99_ms")})
    point["extra_cpu_pct"] = sum(pct[p] for p in extra_pids)
    return point


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # a caller that has just exited
        return 0.0


def summarise(reps: list[dict[int, dict[str, Any]]], budget: float) -> dict[str, Any]:
    """Per worker count: CPU per call per worker, total calls at ``budget``, and the ratio of
    each repetition's two-worker total to its one-worker total (medians with their range)."""
    out: dict[str, Any] = {}
    totals: dict[int, list[float]] = {}
    ratios: list[float] = []
    for rep in reps:
        this: dict[int, float] = {}
        for k, point in rep.items():
            per_call = [w["cpu_per_call_pct"] for w in point.get("workers", []) if w.get("cpu_per_call_pct")]
            if len(per_call) != k:
                continue
            row = out.setdefault(k, {"cpu_per_call": [], "gw_cpu": [], "up": [], "loss": [],
                                     "rtt_p50": [], "load": []})
            row["cpu_per_call"].extend(per_call)
            row["gw_cpu"].extend(w["gw_cpu_pct"] for w in point["workers"])
            row["up"].append(sum(w["up"] for w in point["workers"]))
            row["loss"].extend(w.get("loss_pct") or 0.0 for w in point["workers"])
            row["rtt_p50"].extend(w["rtt_p50_ms"] for w in point["workers"] if w.get("rtt_p50_ms") is not None)
            row["load"].append(point["load_avg_1m"])
            this[k] = calls_at_budget(per_call, budget)
            totals.setdefault(k, []).append(this[k])
        if this.get(1) and this.get(2):  # both points of this repetition complete
            ratios.append(this[2] / this[1])
    for k, row in out.items():
        row["total_at_budget"] = totals[k]
    return {"rows": out, "ratios": ratios}


def table(summary: dict[str, Any], calls: int, budget: float) -> str:
    head = (f"| workers | calls up (of {calls} per worker) | gw CPU % of a core, per worker "
            f"| CPU/call % per worker | calls at {budget:.0f} % per worker, total "
            "| ratio to one worker | RTT p50 ms | loss % | load avg 1 min |")
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for k in sorted(summary["rows"]):
        row = summary["rows"][k]
        ratio = show(median_range(summary["ratios"])) if k == 2 else "1"
        out.append(f"| {k} | {show(median_range(row['up']), 0)} | {show(median_range(row['gw_cpu']), 1)} "
                   f"| {show(median_range(row['cpu_per_call']), 3)} "
                   f"| {show(median_range(row['total_at_budget']), 0)} | {ratio} "
                   f"| {show(median_range(row['rtt_p50']))} | {show(median_range(row['loss']), 3)} "
                   f"| {show(median_range(row['load']), 1)} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=60, help="calls per worker")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--budget", type=float, default=90.0, help="CPU %% of a core per worker")
    ap.add_argument("--cluster", action="store_true",
                    help="run the workers with [cluster] redis_url (a redis-server of their own)")
    ap.add_argument("--quick", action="store_true", help="shorter windows (4 s)")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    if args.quick:
        args.duration = min(args.duration, 4.0)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # run the finally: stop every child

    signal.signal(signal.SIGTERM, terminate)
    workdir = tempfile.mkdtemp(prefix="wcsgw-bench-workers-")
    log(f"work folder (logs): {workdir}")
    started: list[Any] = []
    report: dict[str, Any] = {"machine": machine(), "args": vars(args), "reps": []}
    try:
        cluster_env: dict[str, str] = {}
        extra_pids: list[int] = []
        if args.cluster:
            redis = Redis(workdir)
            started.append(redis)
            extra_pids.append(redis.pid)
            cluster_env = {"WCSGW_CLUSTER_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
                           "WCSGW_CLUSTER_SECRET": secrets.token_urlsafe(24)}
        pairs: list[tuple[Wcsgw, EchoUas]] = []
        echo_ranges = worker_media_ranges(2, ECHO_BASE, ECHO_SPAN)
        for i, (lo, hi) in enumerate(worker_media_ranges(2)):
            folder = os.path.join(workdir, f"worker{i + 1}")
            os.mkdir(folder)
            echo = EchoUas(folder, f"{echo_ranges[i][0]}-{echo_ranges[i][1]}")
            started.append(echo)
            with environ({"WCSGW_MEDIA_PORT_MIN": str(lo), "WCSGW_MEDIA_PORT_MAX": str(hi),
                          **cluster_env}):
                gw = Wcsgw(folder, limits=NO_OVERLOAD_CONTROL)
            started.append(gw)
            pairs.append((gw, echo))
        warm = argparse.Namespace(**{**vars(args), "duration": 1.0, "settle": 0.5})
        run_point(pairs, 2, warm, workdir, "warm-up", extra_pids)
        for rep in range(args.reps):
            points: dict[int, dict[str, Any]] = {}
            for k in ((1, 2) if rep % 2 == 0 else (2, 1)):  # ABBA: the box's drift cancels
                p = run_point(pairs[:k], args.calls, args, workdir, f"r{rep}-w{k}", extra_pids)
                points[k] = p
                busy = " (busy machine)" if p["load_avg_1m"] > (os.cpu_count() or 1) else ""
                log(f"rep {rep + 1}, {k} worker(s): load avg {p['load_avg_1m']:.1f}{busy}, "
                    f"box {fmt(p.get('box_cpu_pct'), 0)} %, " + "; ".join(
                        f"w{i + 1} up {w['up']} gw {w['gw_cpu_pct']:.1f} % "
                        f"({fmt(w['cpu_per_call_pct'], 3)} %/call) caller {w['caller_cpu_pct']:.1f} % "
                        f"echo {w['echo_cpu_pct']:.1f} % loss {w['loss_pct']}"
                        for i, w in enumerate(p["workers"])) + (f" {p['error']}" if "error" in p else ""))
            report["reps"].append(points)
    finally:
        for p in reversed(started):
            p.stop()

    summary = summarise(report["reps"], args.budget)
    report["summary"] = summary
    loads = [p["load_avg_1m"] for rep in report["reps"] for p in rep.values()]
    print(f"\nMachine: {report['machine']}"
          f"{'; workers with [cluster] redis_url' if args.cluster else ''}\n")
    print(f"### One worker and two ({args.reps} repetitions, {args.calls} relayed PCMU calls per "
          f"worker, {args.duration:g} s windows; medians, range in brackets)\n")
    print(table(summary, args.calls, args.budget))
    ratio = median_range(summary["ratios"])
    if ratio and ratio[0] > 2.0:
        print("\nA ratio above 2 means one worker alone spent more CPU per call than each of two "
              "did: no gain, the machine's variance (a loop that runs late, RTT p50 higher, "
              "handles more packets per wake-up; on a shared VM placement moves it too). Read it "
              "as: the second worker costs the first nothing measurable.")
    cores = os.cpu_count() or 1
    if loads and max(loads) > cores:
        print(f"\nThe machine was busy: load average up to {max(loads):.1f} on {cores} cores.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
