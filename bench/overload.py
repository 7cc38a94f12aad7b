"""Overload: offered more relayed calls than it can carry, does the gateway keep the calls it
took good by refusing the rest?

Same processes as ``bench/relay_capacity.py`` (``bench/harness.py``: echo UAS, gateway,
``bench/load_caller.py`` holding N calls for a window; each in its own process group, on
127.0.0.1, always stopped), in four steps:

1. **capacity C**, overload control off in effect (``limits.max_cpu_percent = 0``,
   ``max_loop_lag_ms = 10000``: nothing is refused, but the gateway samples its loop lag and
   ``/metrics`` shows it as ``wcsgw_event_loop_lag_seconds``): relayed PCMU at rising call
   counts until the gateway's CPU over the window reaches ``--cpu-limit`` % of a core (the
   default limit, 90) or its loop lag ``--lag-limit`` ms (the default limit, 50).  C is where
   the CPU line crosses the limit, interpolated between the two points around it (rounded
   down to ten calls), or the last point under the lag limit;
2. **at C, control off** (``max_cpu_percent = 0``, ``max_loop_lag_ms = 0``): the reference —
   every call up, its RTT p50/p99 and loss;
3. **1.5 × C, control on** (the gateway's default limits): calls admitted and refused, by
   reason (``Gateway overloaded`` is the overload gate's; anything else is a failure), and for
   the admitted calls RTT p50/p99 and loss;
4. **1.5 × C, control off in effect** (as in 1; skipped with ``--quick``): what the same
   offer does without the gate — every call taken, and what that costs every call;

and the baseline — the caller straight to the echo, no gateway, at C — so "added" latency is
the gateway run's RTT percentile minus the baseline's.  Printed as Markdown; ``--json`` keeps
every figure.

Run: ``PYTHONPATH=. .venv/bin/python bench/overload.py [--quick]`` (``make bench`` runs it
with ``BENCH_ARGS``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import EchoUas, Wcsgw, fmt, load_average, machine  # noqa: E402
from bench.relay_capacity import Direct, run_point  # noqa: E402

OFF = {"max_cpu_percent": 0, "max_loop_lag_ms": 0}
#: control off in effect (no CPU check, a lag no call survives anyway), but the gateway's load
#: sampler runs, so /metrics has the loop lag the scan needs: with both limits 0 nothing samples
MEASURE = {"max_cpu_percent": 0, "max_loop_lag_ms": 10000}
LAG_METRIC = "wcsgw_event_loop_lag_seconds"
OVERLOADED = "overloaded"  # in the refusal's message: "Gateway overloaded"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class LagWatch:
    """Samples ``/metrics`` once a second while a point runs: the highest event-loop lag (the
    overload detector's mean over its window; absent when nothing samples it) and the most
    live calls seen."""

    def __init__(self, gw: Wcsgw) -> None:
        self.gw = gw
        self.stop = threading.Event()
        self.lag_ms: float | None = None
        self.lag_name: str | None = None
        self.calls_max = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            try:
                m = self.gw.metrics(timeout=2.0)
            except OSError:
                continue
            self.calls_max = max(self.calls_max, m.get("wcsgw_calls", 0.0))
            if LAG_METRIC in m:
                ms = 1000 * m[LAG_METRIC]
                if self.lag_ms is None or ms > self.lag_ms:
                    self.lag_ms, self.lag_name = ms, LAG_METRIC

    def done(self) -> None:
        self.stop.set()
        self.thread.join(3)


def point(gw: Wcsgw, echo: EchoUas, n: int, args: argparse.Namespace, workdir: str,
          lag_measured: bool = True) -> dict[str, Any]:
    """``lag_measured``: False when both limits are 0 (nothing samples the lag: it reads 0)."""
    watch = LagWatch(gw)
    try:
        r = run_point(gw, echo, n, "pcmu", args, workdir)
    finally:
        watch.done()
    r["calls"] = n
    r["lag_ms_max"] = watch.lag_ms if lag_measured else None
    r["lag_metric"] = watch.lag_name
    r["gw_calls_max"] = watch.calls_max
    r["load1"] = round(load_average()[0], 2)
    reasons = r.get("failure_reasons") or {}
    r["refused_overload"] = sum(k for reason, k in reasons.items() if OVERLOADED in reason.lower())
    r["failed_other"] = (r.get("failed") or 0) - r["refused_overload"]
    log(f"  {n:4d} offered: up {r.get('calls_up')}, refused (overload) {r['refused_overload']}, "
        f"other failures {r['failed_other']}, gw {fmt(r.get('gw_cpu_pct'), 1)} %, "
        f"lag max {fmt(r['lag_ms_max'], 1)} ms, RTT p50/p99 {fmt(r.get('rtt_p50_ms'))}/"
        f"{fmt(r.get('rtt_p99_ms'))} ms, loss {fmt(r.get('loss_pct'), 3)} %, load {r['load1']}")
    return r


def find_capacity(rows: list[dict[str, Any]], cpu_limit: float, lag_limit: float) -> tuple[int, str]:
    """C from a scan: where CPU crosses the limit (interpolated), or the first point whose lag
    passed its limit, or the last point if neither was reached (a lower bound)."""
    for prev, row in zip([None, *rows], rows, strict=False):
        lag = row.get("lag_ms_max")
        if lag is not None and lag >= lag_limit:
            if prev is None:
                return _tens(row["calls"]), (f"loop lag {lag:.0f} ms already at the first point: "
                                             "C is below it (start the scan lower with --counts)")
            return _tens(prev["calls"]), f"loop lag {lag:.0f} ms at {row['calls']}"
        cpu = row.get("gw_cpu_pct") or 0.0
        if cpu >= cpu_limit:
            if prev is None:
                return _tens(row["calls"]), f"CPU {cpu:.0f} % already at the first point"
            c0, c1 = prev.get("gw_cpu_pct") or 0.0, cpu
            n = prev["calls"] + (row["calls"] - prev["calls"]) * (cpu_limit - c0) / max(c1 - c0, 1e-9)
            return _tens(n), f"CPU crosses {cpu_limit:.0f} % between {prev['calls']} and {row['calls']} calls"
    return _tens(rows[-1]["calls"]), "limit not reached: C is a lower bound (the caller or the box saturated first)"


def _tens(n: float) -> int:
    return max(10, int(n) // 10 * 10)


def scan_stop(r: dict[str, Any], n: int, cpu_limit: float, lag_limit: float) -> str | None:
    if (r.get("gw_cpu_pct") or 0) >= cpu_limit:
        return "gateway CPU at the limit"
    if (r.get("lag_ms_max") or 0) >= lag_limit:
        return "loop lag at the limit"
    if (r.get("caller_cpu_pct") or 0) >= 85:
        return "load caller saturated"
    if (r.get("calls_up") or 0) < n:
        return f"only {r.get('calls_up')} of {n} calls came up"
    return None


def added(row: dict[str, Any], base: dict[str, Any], key: str) -> float | None:
    if row.get(key) is None or base.get(key) is None:
        return None
    return float(row[key] - base[key])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="coarser scan, shorter windows, no step 4")
    ap.add_argument("--counts", default="50,100,150,200,250,300,350,400,500")
    ap.add_argument("--capacity", type=int, default=None, help="skip the scan: C is this")
    ap.add_argument("--cpu-limit", type=float, default=90.0, help="% of a core that defines C")
    ap.add_argument("--lag-limit", type=float, default=50.0, help="loop lag (ms) that defines C")
    ap.add_argument("--factor", type=float, default=1.5, help="offered load, times C")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--drain", type=float, default=0.5)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    if args.quick:
        args.duration = min(args.duration, 4.0)
        args.counts = "50,100,200,300"
    counts = [int(x) for x in args.counts.split(",")]

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # run the finally: stop every child

    signal.signal(signal.SIGTERM, terminate)
    workdir = tempfile.mkdtemp(prefix="wcsgw-overload-")
    log(f"work folder (logs): {workdir}")
    report: dict[str, Any] = {"machine": machine(), "load1_start": round(load_average()[0], 2)}
    started: list[Any] = []

    def gateway(limits: dict[str, int]) -> Wcsgw:
        for p in [p for p in started if isinstance(p, Wcsgw)]:
            p.stop()
            started.remove(p)
        gw = Wcsgw(workdir, limits=limits)
        started.append(gw)
        run_point(gw, echo, 2, "pcmu", argparse.Namespace(**{**vars(args), "duration": 1.0,
                                                             "settle": 0.5}), workdir)  # warm-up
        return gw

    try:
        echo = EchoUas(workdir, "40000-49999")
        started.append(echo)
        if args.capacity is None:
            log("1. capacity: relayed PCMU, overload control off (lag measured)")
            gw = gateway(MEASURE)
            rows = []
            for n in counts:
                r = point(gw, echo, n, args, workdir)
                rows.append(r)
                reason = scan_stop(r, n, args.cpu_limit, args.lag_limit)
                if reason:
                    r["stopped"] = reason
                    break
            if len(rows) >= 2 and "limit" in rows[-1].get("stopped", ""):
                # one more point halfway between the last two: the steps are coarse
                mid = _tens((rows[-2]["calls"] + rows[-1]["calls"]) / 2)
                if rows[-2]["calls"] < mid < rows[-1]["calls"]:
                    rows.insert(-1, point(gw, echo, mid, args, workdir))
            report["scan"] = rows
            capacity, why = find_capacity(rows, args.cpu_limit, args.lag_limit)
        else:
            capacity, why = args.capacity, "given (--capacity)"
            gw = gateway(OFF)
        report["capacity"], report["capacity_why"] = capacity, why
        offered = round(args.factor * capacity)
        log(f"C = {capacity} ({why}); offered {offered}")
        log(f"2. at C = {capacity}, overload control off (a fresh gateway)")
        gw = gateway(OFF)
        report["at_c_off"] = point(gw, echo, capacity, args, workdir, lag_measured=False)
        log(f"3. {offered} offered, overload control on (the default limits)")
        gw = gateway({})
        report["over_on"] = point(gw, echo, offered, args, workdir)
        if not args.quick:
            log(f"4. {offered} offered, overload control off (lag measured)")
            gw = gateway(MEASURE)
            report["over_off"] = point(gw, echo, offered, args, workdir)
        for p in [p for p in started if isinstance(p, Wcsgw)]:
            p.stop()
            started.remove(p)
        log(f"baseline: the caller straight to the echo, {capacity} calls")
        report["direct"] = point_direct(echo, capacity, args, workdir)
    finally:
        for p in reversed(started):
            p.stop()
    report["load1_end"] = round(load_average()[0], 2)
    print_report(report, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def point_direct(echo: EchoUas, n: int, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    r = run_point(Direct(echo), echo, n, "pcmu", args, workdir)
    r["calls"] = n
    return r


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\nMachine: {report['machine']}; load average {report['load1_start']} at the start, "
          f"{report['load1_end']} at the end\n")
    if "scan" in report:
        print("### Capacity scan (overload control off)\n")
        print("| calls | up | gw CPU % of a core | loop lag max ms | RTT p50 ms | RTT p99 ms | loss % "
              "| caller CPU % |\n|---|---|---|---|---|---|---|---|")
        for r in report["scan"]:
            print(f"| {r['calls']} | {r.get('calls_up')} | {fmt(r.get('gw_cpu_pct'), 1)} | "
                  f"{fmt(r.get('lag_ms_max'), 1)} | {fmt(r.get('rtt_p50_ms'))} | "
                  f"{fmt(r.get('rtt_p99_ms'))} | {fmt(r.get('loss_pct'), 3)} | "
                  f"{fmt(r.get('caller_cpu_pct'), 1)} |")
        print()
    print(f"C = **{report['capacity']}** relayed calls ({report['capacity_why']}).\n")
    base = report.get("direct") or {}
    print("### Offered beyond C\n")
    print("| run | offered | admitted | refused `Gateway overloaded` | other failures | gw CPU % "
          "| loop lag max ms | RTT p50 ms | RTT p99 ms | added p99 ms | loss % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, label in (("at_c_off", "at C, control off"), ("over_on", f"{args.factor:g} × C, control on"),
                       ("over_off", f"{args.factor:g} × C, control off")):
        r = report.get(key)
        if r is None:
            continue
        print(f"| {label} | {r['calls']} | {r.get('calls_up')} | {r.get('refused_overload')} | "
              f"{r.get('failed_other')} | {fmt(r.get('gw_cpu_pct'), 1)} | {fmt(r.get('lag_ms_max'), 1)} | "
              f"{fmt(r.get('rtt_p50_ms'))} | {fmt(r.get('rtt_p99_ms'))} | "
              f"{fmt(added(r, base, 'rtt_p99_ms'))} | {fmt(r.get('loss_pct'), 3)} |")
    print(f"| baseline (no gateway) | {base.get('calls')} | {base.get('calls_up')} | – | – | – | – | "
          f"{fmt(base.get('rtt_p50_ms'))} | {fmt(base.get('rtt_p99_ms'))} | – | {fmt(base.get('loss_pct'), 3)} |")
    on = report.get("over_on") or {}
    other = {k: v for k, v in (on.get("failure_reasons") or {}).items() if OVERLOADED not in k.lower()}
    if other:
        print("\nOther failures at 1.5 × C, control on:")
        for reason, k in other.items():
            print(f"- {k} × {reason}")


if __name__ == "__main__":
    main()
