"""Soak: hundreds of calls coming and going for half an hour; does anything leak?

What runs (``bench/harness.py``: every process in its own process group, on 127.0.0.1 and
free ports, stopped at the end whatever happens):

* the far end, ``bench/echo_uas.py`` (its own process);
* the gateway, ``twistd -n wcsgw`` with a REST token (``/metrics`` is read with it) and
  ``[limits]`` for a load from one address; overload control off (``max_cpu_percent = 0``,
  ``max_loop_lag_ms = 0``) unless ``--overload-control``: a soak looks for leaks, and on a
  shared machine the gateway would otherwise refuse calls whenever the box is busy;
* ``--callers`` processes of ``bench/churn_caller.py`` keeping ``--calls`` calls between them,
  each call living a random 5–60 s with a new one placed as soon as one ends, every call's
  audio checked by its tone's frequency.

First a warm-up (a few short calls: imports, first-use caches), then the **baseline** once
the gateway is idle again: media ports in use, open fds, reactor timers.  During the run,
every ``--sample`` seconds, from ``/metrics``: RSS, fds, ports in use, reactor timers
(``wcsgw_reactor_delayed_calls``), live calls and sessions, the gateway's CPU; from /proc the
callers' CPU; the load average.  After the run (every call hung up) the gateway is given
``--settle`` seconds to come back to the baseline (SIP transactions linger up to 32 s after a
call by design).

Printed: calls completed and failed (by reason), the least-squares slope per hour of RSS,
fds, ports and timers over the samples after ``--warmup`` minutes, and ports/fds/timers after
the run against the baseline.  Exit status 1 if any of the three did not come back (a leak),
2 if no call completed; all samples are written as JSON (``--json``, default under /tmp).

Run: ``make soak`` (``SOAK_ARGS="--minutes 5 --calls 100"``), or
``PYTHONPATH=. .venv/bin/python bench/soak.py [--minutes 30] [--calls 200]``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import (  # noqa: E402 - after sys.path
    PY,
    EchoUas,
    Proc,
    Wcsgw,
    cpu_seconds,
    fmt,
    load_average,
    machine,
    pct,
)

#: what a sample holds, from /metrics (summed over labels)
GAUGES = {
    "rss_mib": "wcsgw_process_resident_memory_bytes",
    "fds": "wcsgw_process_open_fds",
    "ports": "wcsgw_rtp_ports_in_use",
    "timers": "wcsgw_reactor_delayed_calls",
    "calls": "wcsgw_calls",
    "sessions": "wcsgw_websocket_sessions",
}
#: the figures that must come back to the idle baseline after the run
LEAK_KEYS = ("ports", "fds", "timers")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / sxx


class Caller:
    """One churn_caller process; its JSON lines are gathered by a thread."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self.p = Proc(argv, log_path, stdout_pipe=True)
        self.ends: list[dict[str, Any]] = []
        self.live = 0
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.proc.stdout:  # type: ignore[union-attr]
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "end":
                self.ends.append(event)
            elif kind == "live":
                self.live = event["live"]
            elif kind == "done":
                self.live = 0
        self.done.set()

    def stop(self) -> None:
        self.p.stop()


def run_callers(gw: Wcsgw, echo: EchoUas, workdir: str, name: str, calls: int, callers: int,
                seconds: float, life: tuple[float, float], concurrency: int) -> list[Caller]:
    out = []
    for k in range(callers):
        share = calls // callers + (1 if k < calls % callers else 0)
        argv = [PY, os.path.join(HERE, "churn_caller.py"), *gw.caller_args(echo.port),
                "--calls", str(share), "--seconds", str(seconds),
                "--life", str(life[0]), str(life[1]), "--concurrency", str(concurrency)]
        out.append(Caller(argv, os.path.join(workdir, f"{name}-{k}.err")))
    return out


class Sampler:
    def __init__(self, gw: Wcsgw) -> None:
        self.gw = gw
        self.t0 = time.monotonic()
        self.last_cpu: tuple[float, float] | None = None
        self.last_callers: dict[int, tuple[float, float]] = {}

    def sample(self, callers: list[Caller] | None = None) -> dict[str, Any]:
        now = time.monotonic()
        row: dict[str, Any] = {"t": round(now - self.t0, 1), "load1": round(load_average()[0], 2)}
        try:
            m = self.gw.metrics()
        except OSError as exc:
            row["error"] = repr(exc)
            return row
        for key, name in GAUGES.items():
            if name in m:
                row[key] = m[name]
        if "rss_mib" in row:
            row["rss_mib"] = round(row["rss_mib"] / 2**20, 2)
        cpu = m.get("wcsgw_process_cpu_seconds_total")
        if cpu is not None:
            if self.last_cpu is not None and now > self.last_cpu[0]:
                row["gw_cpu_pct"] = round(100 * (cpu - self.last_cpu[1]) / (now - self.last_cpu[0]), 1)
            self.last_cpu = (now, cpu)
        used = 0.0
        callers = callers or []
        for c in callers:
            try:
                spent = cpu_seconds(c.p.pid)
            except OSError:
                continue
            before = self.last_callers.get(c.p.pid)
            if before is not None and now > before[0]:
                used += 100 * (spent - before[1]) / (now - before[0])
            self.last_callers[c.p.pid] = (now, spent)
        if callers:
            row["callers_cpu_pct"] = round(used, 1)
            row["caller_live"] = sum(c.live for c in callers)
        return row


def wait_idle(sampler: Sampler, target: dict[str, float] | None, timeout: float) -> dict[str, Any]:
    """Poll until no call or session is left and, with ``target``, ports/fds/timers are back
    at or under it (``timeout`` at most); the last sample.  Without a target: until the three
    stop moving (three polls in a row alike)."""
    deadline = time.monotonic() + timeout
    seen: list[tuple[Any, ...]] = []
    while True:
        row = sampler.sample()
        quiet = row.get("calls") == 0 and row.get("sessions") == 0
        figures = tuple(row.get(k) for k in LEAK_KEYS)
        seen.append(figures)
        if quiet and target is not None and all(
                row.get(k) is not None and row[k] <= target[k] for k in LEAK_KEYS):
            return row
        if quiet and target is None and len(seen) >= 3 and len(set(seen[-3:])) == 1:
            return row
        if time.monotonic() > deadline:
            return row
        time.sleep(2.0)


def main() -> int:  # noqa: C901 - one linear script: start, warm up, run, settle, report
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--calls", type=int, default=200, help="concurrent calls kept")
    ap.add_argument("--callers", type=int, default=1, help="caller processes sharing them")
    ap.add_argument("--life", type=float, nargs=2, default=(5.0, 60.0), metavar=("MIN", "MAX"))
    ap.add_argument("--concurrency", type=int, default=10, help="set-ups in flight per caller")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=None,
                    help="minutes of the run left out of the slopes (default: a fifth, <= 5)")
    ap.add_argument("--settle", type=float, default=120.0,
                    help="seconds the gateway gets to come back to the baseline after the run")
    ap.add_argument("--overload-control", action="store_true",
                    help="keep the gateway's default overload limits (default: off)")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="gateway under tracemalloc: where its Python heap grew between the "
                         "baseline and the end (slow: for finding a leak, not for figures)")
    ap.add_argument("--heap-wait", type=float, default=45.0,
                    help="with --tracemalloc: idle seconds before the heap's last snapshot")
    ap.add_argument("--json", default=None, help="samples and results (default /tmp/wcsgw-soak-*.json)")
    args = ap.parse_args()
    warmup_s = 60 * (args.warmup if args.warmup is not None else min(5.0, args.minutes / 5))
    json_path = args.json or time.strftime("/tmp/wcsgw-soak-%Y%m%d-%H%M%S.json", time.gmtime())

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # run the finally: stop every child

    signal.signal(signal.SIGTERM, terminate)
    workdir = tempfile.mkdtemp(prefix="wcsgw-soak-")
    log(f"work folder (logs): {workdir}")
    report: dict[str, Any] = {"machine": machine(), "args": vars(args), "samples": []}
    started: list[Any] = []
    callers: list[Caller] = []
    try:
        echo = EchoUas(workdir, "40000-49999")
        started.append(echo)
        limits = {} if args.overload_control else {"max_cpu_percent": 0, "max_loop_lag_ms": 0}
        heap_out = os.path.join(workdir, "tracemalloc.txt")
        launcher = [PY, os.path.join(HERE, "tracemalloc_twistd.py"), heap_out] if args.tracemalloc else None
        gw = Wcsgw(workdir, limits=limits, launcher=launcher)
        started.append(gw)
        sampler = Sampler(gw)
        report["start"] = sampler.sample()
        log("warm-up: 4 calls of 2-4 s")
        warm = run_callers(gw, echo, workdir, "warmup", 4, 1, 6.0, (2.0, 4.0), 4)
        started.extend(warm)
        warm[0].done.wait(60)
        base = wait_idle(sampler, None, 90.0)
        report["baseline"] = base
        if args.tracemalloc:
            os.kill(gw.pid, signal.SIGUSR1)  # the heap's baseline
        report["warmup_calls"] = {"ok": sum(1 for e in warm[0].ends if e.get("ok")),
                                  "failed": [e.get("reason") for e in warm[0].ends if not e.get("ok")]}
        log(f"baseline: ports {base.get('ports')}, fds {base.get('fds')}, timers {base.get('timers')}, "
            f"RSS {base.get('rss_mib')} MiB")

        log(f"run: {args.calls} calls kept by {args.callers} caller(s), lives {args.life[0]:g}-"
            f"{args.life[1]:g} s, {args.minutes:g} min")
        callers = run_callers(gw, echo, workdir, "caller", args.calls, args.callers,
                              60 * args.minutes, tuple(args.life), args.concurrency)
        started.extend(callers)
        t_run = time.monotonic()
        sampler.sample(callers)  # CPU counters' first reading
        next_at = time.monotonic() + args.sample
        while not all(c.done.is_set() for c in callers):
            time.sleep(max(0.0, min(1.0, next_at - time.monotonic())))
            if time.monotonic() < next_at:
                continue
            next_at += args.sample
            row = sampler.sample(callers)
            row["run_s"] = round(time.monotonic() - t_run, 1)
            ends = [e for c in callers for e in c.ends]
            row["completed"] = sum(1 for e in ends if e.get("ok"))
            row["failed"] = sum(1 for e in ends if not e.get("ok"))
            report["samples"].append(row)
            log(f"  {row['run_s']:7.1f} s  calls {fmt(row.get('calls'))} (caller {row.get('caller_live')})"
                f"  done {row['completed']} failed {row['failed']}  RSS {fmt(row.get('rss_mib'))} MiB"
                f"  fds {fmt(row.get('fds'))}  ports {fmt(row.get('ports'))}  timers {fmt(row.get('timers'))}"
                f"  gw {fmt(row.get('gw_cpu_pct'))} %  callers {fmt(row.get('callers_cpu_pct'))} %"
                f"  load {row['load1']}")
        log("run over: every call hung up; waiting for the gateway to come back to its baseline")
        target = {k: float(base[k]) for k in LEAK_KEYS if base.get(k) is not None}
        after = wait_idle(sampler, target if len(target) == len(LEAK_KEYS) else None, args.settle)
        report["after"] = after
        if args.tracemalloc:
            # sessions whose WebSocket closed without `disconnect` are kept for resume
            # (http.resume_seconds, 30 s by default) with what they hold: past that, what the
            # heap still holds is what no call or session should
            time.sleep(args.heap_wait)
            os.kill(gw.pid, signal.SIGUSR1)
            for _ in range(120):
                if os.path.exists(heap_out):
                    break
                time.sleep(0.5)
            log(f"Python heap growth since the baseline: {heap_out}")
    finally:
        for p in reversed(started):
            p.stop()

    ends = [e for c in callers for e in c.ends]
    ok = [e for e in ends if e.get("ok")]
    failures = collections.Counter(e.get("reason", "?") for e in ends if not e.get("ok"))
    sent = sum(e.get("sent", 0) for e in ok)
    received = sum(e.get("received", 0) for e in ok)
    steady = [s for s in report["samples"] if s.get("run_s", 0) >= warmup_s and "error" not in s]
    slopes = {k: slope_per_hour([(s["run_s"], s[k]) for s in steady if s.get(k) is not None])
              for k in ("rss_mib", "fds", "ports", "timers", "calls")}
    base, after = report["baseline"], report["after"]
    leaked = {k: (after.get(k) - base.get(k)) if None not in (after.get(k), base.get(k)) else None
              for k in LEAK_KEYS}
    live = [s["calls"] for s in steady if s.get("calls") is not None]
    report.update({
        "completed": len(ok), "failed": sum(failures.values()), "failures": dict(failures),
        "audio_checked": sum(1 for e in ok if "heard_hz" in e),
        "loss_pct": round(100 * (1 - received / sent), 3) if sent else None,
        "setup_p50_ms": pct([e["setup_ms"] for e in ok if "setup_ms" in e], 50),
        "setup_p99_ms": pct([e["setup_ms"] for e in ok if "setup_ms" in e], 99),
        "slopes_per_hour": slopes, "leaked": leaked,
        "live_calls_mean": round(sum(live) / len(live), 1) if live else None,
        "gw_cpu_mean_pct": mean_of(steady, "gw_cpu_pct"),
        "callers_cpu_mean_pct": mean_of(steady, "callers_cpu_pct"),
        "load1_mean": mean_of(report["samples"], "load1"),
        "calls": ends,  # every call's own line from the caller: set-up, tone heard, lived, packets
    })
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)

    print(f"\nMachine: {report['machine']}")
    print(f"Run: {args.calls} calls kept ({args.callers} caller process(es)), lives "
          f"{args.life[0]:g}-{args.life[1]:g} s, {args.minutes:g} min; samples every "
          f"{args.sample:g} s; slopes over the samples after {warmup_s / 60:g} min\n")
    print("| figure | value |\n|---|---|")
    print(f"| calls completed (audio checked by tone) | {len(ok)} ({report['audio_checked']}) |")
    print(f"| calls failed | {report['failed']} |")
    print(f"| live calls, mean of samples | {fmt(report['live_calls_mean'])} |")
    print(f"| packet loss over completed calls | {fmt(report['loss_pct'], 3)} % |")
    print(f"| set-up p50 / p99 | {fmt(report['setup_p50_ms'])} / {fmt(report['setup_p99_ms'])} ms |")
    print(f"| gateway CPU, mean | {fmt(report['gw_cpu_mean_pct'])} % of a core |")
    print(f"| callers' CPU, mean | {fmt(report['callers_cpu_mean_pct'])} % of a core |")
    print(f"| load average (1 min), mean | {fmt(report['load1_mean'])} |")
    print("\n| figure | baseline | end of run (last sample) | slope per hour | after the run | leaked |")
    print("|---|---|---|---|---|---|")
    last = report["samples"][-1] if report["samples"] else {}
    # fds, ports and timers follow the live calls: their slopes mean something next to the
    # live calls' own (which churn and a busy box move)
    for key, unit in (("rss_mib", "MiB"), ("fds", ""), ("ports", ""), ("timers", ""), ("calls", "live")):
        print(f"| {key} {unit}".rstrip() + f" | {fmt(base.get(key))} | {fmt(last.get(key))} | "
              f"{fmt(slopes[key])} | {fmt(after.get(key))} | "
              f"{fmt(leaked.get(key)) if key in LEAK_KEYS else '(not a leak check)'} |")
    print("\n(RSS is not a leak check: memory Python and the C libraries free is kept for reuse;"
          " its slope after the warm-up is the figure to watch.)")
    if failures:
        print("\n| failures by reason | calls |\n|---|---|")
        for reason, n in failures.most_common():
            print(f"| {reason} | {n} |")
    print(f"\nSamples and results: {json_path}")
    if any(v is None or v > 0 for v in leaked.values()):
        print("LEAK: ports, fds or timers did not come back to the idle baseline")
        return 1
    if not ok:
        print("no call completed")
        return 2
    return 0


def mean_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(sum(values) / len(values), 2) if values else None


if __name__ == "__main__":
    sys.exit(main())
