"""Capacity, latency and set-up overhead of wcsgw (and of Janus side by side), end to end.

What runs (every process in its own process group, stopped at the end whatever happens):

* ``bench/echo_uas.py`` — the far end: a SIP UAS echoing RTP, in its own process, so its CPU
  is never counted as the gateway's;
* the gateway: ``twistd -n wcsgw --config <generated>`` on free ports (media ports and SIP in
  ranges of its own), log level info;
* ``bench/load_caller.py`` once per point: N calls held for ``--duration`` s.  Between its
  ``WINDOW_START`` / ``WINDOW_END`` lines this driver reads the gateway's utime+stime from
  ``/proc/<pid>/stat`` (all threads) and VmRSS from ``/proc/<pid>/status``;
* the baseline: the same caller straight to the echo (``--adapter direct``: plain RTP, a
  minimal SIP UAC) at the relay scan's call counts; "added" latency = the gateway run's RTT
  percentile minus the baseline's at the same count (a difference of percentiles, not the
  percentile of per-packet differences);
* with ``--janus``: Janus (SIP plugin + HTTP transport only, see ``bench/janus_peer.py``) and
  the same caller through the Janus adapter, at the same call counts;
* with ``--rtpengine``: wcsgw, (with ``--janus``) Janus and rtpengine side by side — runs
  interleaved, each gateway restarted per run, 3 repetitions, medians with their range, busy
  runs left out (``bench/rtpengine_compare.py``; rtpengine: ``bench/rtpengine_peer.py``, its
  ng/SIP front ``bench/rtpengine_front.py``).  This replaces the sequential Janus scan.

Scenarios: relayed PCMU at 10/50/100/200/300/… until the gateway uses ≥ 90 % of a core, the
caller itself does (≥ 90 %, or its 4 ms ticker runs late), calls fail or loss passes 5 %;
transcoded (the caller offers Opus only, the echo answers PCMU) at 10/25/50/…; call set-up
overhead; printed as Markdown tables.

Set-up overhead is measured from outside, with clocks every process shares (CLOCK_MONOTONIC):
the caller notes when it sends ``call`` and when ``callStatus ESTABLISHED`` arrives, the echo
UAS when the INVITE arrives and when its 200 OK leaves (it prints both, keyed by the
``X-Bench-Id`` header the caller sets through ``sipHeaders``).  ``call -> INVITE`` and
``200 OK -> ESTABLISHED`` are the gateway's two shares of the set-up; the rest is the far end.
Calls are placed one at a time (no queueing in the numbers), on an otherwise idle gateway.

Run: ``.venv/bin/python bench/relay_capacity.py [--quick] [--janus] [--rtpengine] [--duration 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.harness import (  # noqa: E402 - after sys.path; Proc/EchoUas/Wcsgw/PY: for profile_relay
    PY,
    EchoUas,
    Proc,
    Wcsgw,
    box_cpu,
    cpu_seconds,
    fmt,
    machine,
    pct,
    rss_kib,
)

__all__ = ["PY", "EchoUas", "Proc", "Wcsgw", "run_point", "scan", "saturated", "table"]


class Direct:
    """The baseline: the caller straight to the echo (plain RTP, a minimal SIP UAC), no gateway.
    Its RTT is what the path costs without a gateway; ``pid`` is the echo's, so the "gateway"
    CPU of these rows is the echo's."""

    name = "direct"

    def __init__(self, echo: EchoUas) -> None:
        self.pid = echo.p.pid

    def caller_args(self, echo_port: int) -> list[str]:
        return ["--adapter", "direct", "--sip-domain", "127.0.0.1", "--sip-port", str(echo_port)]

    def stop(self) -> None:
        pass


def run_point(target: Any, echo: EchoUas, calls: int, codec: str, args: argparse.Namespace,
              workdir: str, extra: list[str] | None = None) -> dict[str, Any]:
    """One load point: returns the caller's RESULT plus the gateway's CPU and RSS."""
    argv = [PY, os.path.join(HERE, "load_caller.py"), *target.caller_args(echo.port),
            "--codec", codec, "--calls", str(calls), "--duration", str(args.duration),
            "--settle", str(args.settle), "--concurrency", str(args.concurrency), *(extra or [])]
    caller = Proc(argv, os.path.join(workdir, f"caller-{target.name}-{codec}-{calls}.err"),
                  stdout_pipe=True)
    result: dict[str, Any] = {}
    marks: dict[str, tuple[float, float, float, float]] = {}
    try:
        for line in caller.proc.stdout:  # type: ignore[union-attr]
            if line.startswith(("WINDOW_START", "WINDOW_END")):
                key = line.split()[0]
                marks[key] = (time.monotonic(), cpu_seconds(target.pid),
                              cpu_seconds(caller.pid), cpu_seconds(echo.p.pid), *box_cpu())
                if key == "WINDOW_END":
                    result["rss_kib"] = rss_kib(target.pid)
            elif line.startswith("RESULT "):
                result.update(json.loads(line[7:]))
        caller.proc.wait(60)
    finally:
        caller.stop()
    if "WINDOW_START" in marks and "WINDOW_END" in marks:
        (t0, g0, c0, e0, b0, a0), (t1, g1, c1, e1, b1, a1) = marks["WINDOW_START"], marks["WINDOW_END"]
        span = t1 - t0
        # the whole machine, in % of ONE core (2 cores fully busy = 200 %), from /proc/stat:
        # only a hint (in some VMs/containers /proc/stat is not the real machine), JSON only
        result["box_cpu_pct"] = 100 * (os.cpu_count() or 1) * (b1 - b0) / max(a1 - a0, 1.0)
        result["gw_cpu_pct"] = 100 * (g1 - g0) / span
        result["caller_cpu_pct"] = 100 * (c1 - c0) / span
        result["echo_cpu_pct"] = 100 * (e1 - e0) / span
    return result


def scan(target: Any, echo: EchoUas, codec: str, counts: list[int], args: argparse.Namespace,
         workdir: str, idle_rss: int, log: Callable[[str], None],
         extra: list[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for n in counts:
        r = run_point(target, echo, n, codec, args, workdir, extra)
        r["calls"] = n
        up = r.get("calls_up") or 0
        if up:
            r["rss_per_call_kib"] = (r.get("rss_kib", 0) - idle_rss) / up
            r["cpu_per_call_pct"] = r.get("gw_cpu_pct", 0) / up
        rows.append(r)
        log(f"  {target.name} {codec} {n:4d} calls: up {up}, gw {r.get('gw_cpu_pct', 0):5.1f} %, "
            f"caller {r.get('caller_cpu_pct', 0):5.1f} %, echo {r.get('echo_cpu_pct', 0):5.1f} %, "
            f"loss {r.get('loss_pct')} %, "
            f"rtt p50/p99 {fmt(r.get('rtt_p50_ms'))}/{fmt(r.get('rtt_p99_ms'))} ms"
            + (f", caller's Opus {r['opus_send']}" if r.get("opus_send") else ""))
        reason = saturated(r, n)
        if reason:
            r["stopped"] = reason
            log(f"  stop: {reason}")
            break
    return rows


def saturated(r: dict[str, Any], n: int) -> str | None:
    if r.get("gw_cpu_pct", 0) >= 90:
        return "gateway core saturated (>= 90 % of one core)"
    if r.get("caller_cpu_pct", 0) >= 85:
        return "load caller saturated (its CPU >= 85 % of a core)"
    if (r.get("rtt_p50_ms") or 0) > 20:
        return ("queues building (RTT p50 > 20 ms): the machine ran out of CPU before the "
                "gateway's core did (gateway + caller + echo + anything else on the box)")
    if (r.get("calls_up") or 0) < n:
        return f"only {r.get('calls_up')} of {n} calls came up"
    if (r.get("loss_pct") or 0) > 5:
        return "loss above 5 %"
    return None


def setup_overhead(target: Any, echo: EchoUas, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    n = getattr(args, "setup_calls", 0) or (10 if getattr(args, "quick", False) else 30)
    r = run_point(target, echo, n, "pcmu", argparse.Namespace(**{**vars(args), "duration": 1.0,
                                                                  "settle": 0.2, "concurrency": 1}),
                  workdir, extra=["--dump-setup"])
    time.sleep(0.5)  # the echo UAS's last SETUP lines
    to_invite, to_est, total = [], [], []
    for s in r.get("setup") or []:
        far = echo.setups.get(s["id"])
        if far is None:
            continue
        to_invite.append(1000 * (far[0] - s["call"]))
        to_est.append(1000 * (s["established"] - far[1]))
        total.append(1000 * (s["established"] - s["call"]))
    return {"n": len(total),
            "call_to_invite": (pct(to_invite, 50), pct(to_invite, 99)),
            "ok_to_established": (pct(to_est, 50), pct(to_est, 99)),
            "total": (pct(total, 50), pct(total, 99))}


def _added(row: dict[str, Any], base: dict[str, Any], key: str) -> float | None:
    if row.get(key) is None or base.get(key) is None:
        return None
    return row[key] - base[key]


def table(rows: list[dict[str, Any]], janus_rows: dict[int, dict[str, Any]] | None = None,
          base_rows: dict[int, dict[str, Any]] | None = None) -> str:
    head = ("| calls | up | gw CPU % of a core | CPU/call % | gw pkts/s in | RTT p50 ms | RTT p99 ms "
            "| loss % | RSS/call kB | caller CPU % | echo CPU % |")
    sep = "|---|---|---|---|---|---|---|---|---|---|---|"
    if base_rows is not None:
        head += " added p50 ms | added p99 ms |"
        sep += "---|---|"
    if janus_rows is not None:
        head += " Janus CPU/call % | wcsgw/Janus |"
        sep += "---|---|"
    out = [head, sep]
    for r in rows:
        pps_in = 2 * (r.get("pps_each_way") or 0)  # from the browser leg + from the SIP leg
        line = (f"| {r['calls']} | {r.get('calls_up')} | {fmt(r.get('gw_cpu_pct'), 1)} | "
                f"{fmt(r.get('cpu_per_call_pct'), 3)} | {pps_in:,.0f} | {fmt(r.get('rtt_p50_ms'))} | "
                f"{fmt(r.get('rtt_p99_ms'))} | {fmt(r.get('loss_pct'), 3)} | "
                f"{fmt(r.get('rss_per_call_kib'), 0)} | {fmt(r.get('caller_cpu_pct'), 1)} | "
                f"{fmt(r.get('echo_cpu_pct'), 1)} |")
        if base_rows is not None:
            b = base_rows.get(r["calls"]) or {}
            line += f" {fmt(_added(r, b, 'rtt_p50_ms'))} | {fmt(_added(r, b, 'rtt_p99_ms'))} |"
        if janus_rows is not None:
            j = janus_rows.get(r["calls"])
            jc = j.get("cpu_per_call_pct") if j else None
            ratio = (r.get("cpu_per_call_pct") / jc) if (jc and r.get("cpu_per_call_pct")) else None
            line += f" {fmt(jc, 3)} | {fmt(ratio, 2)} |"
        out.append(line)
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer points, shorter windows")
    ap.add_argument("--janus", action="store_true", help="also run the relayed scenario through Janus")
    ap.add_argument("--rtpengine", action="store_true",
                    help="wcsgw, Janus (with --janus) and rtpengine side by side, interleaved")
    ap.add_argument("--reps", type=int, default=3, help="side-by-side repetitions")
    ap.add_argument("--side-counts", default=None,
                    help="side-by-side call counts (10,25,50,100; --quick: 10,50)")
    ap.add_argument("--allow-busy", action="store_true",
                    help="keep side-by-side runs on a busy machine in the medians (marked)")
    ap.add_argument("--max-load", type=float, default=0.7,
                    help="busy: 1-minute load average per core above this before a run")
    ap.add_argument("--max-others", type=float, default=25.0,
                    help="busy: other processes above this %% of a core during a run")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--relay-counts", default="10,50,100,200,300,400,500,600,800")
    ap.add_argument("--transcode-counts", default="10,25,50,75,100")
    ap.add_argument("--caller-opus", choices=("answer", "fullband"), default="answer",
                    help="transcoded scenario: the caller's Opus as Chromium encodes for the "
                         "gateway's fmtp (narrowband against PCMU), or fullband whatever it says")
    ap.add_argument("--setup-calls", type=int, default=0,
                    help="calls of the set-up scenario, one at a time (0: 30; --quick: 10)")
    ap.add_argument("--skip", default="",
                    help="comma list of: relay, transcode, setup, baseline, janus-relay, side")
    ap.add_argument("--json", help="also write every figure to this file")
    args = ap.parse_args()
    if args.quick:
        args.duration = min(args.duration, 4.0)
        args.relay_counts = "10,50"
        args.transcode_counts = "10"
        args.side_counts = args.side_counts or "10,50"
    args.side_counts = args.side_counts or "10,25,50,100"
    skip = set(filter(None, args.skip.split(",")))
    relay_counts = [int(x) for x in args.relay_counts.split(",")]
    tc_counts = [int(x) for x in args.transcode_counts.split(",")]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # run the finally: stop every child

    signal.signal(signal.SIGTERM, terminate)
    workdir = tempfile.mkdtemp(prefix="wcsgw-bench-")
    log(f"work folder (logs): {workdir}")
    started: list[Any] = []
    report: dict[str, Any] = {"machine": machine()}
    try:
        echo = EchoUas(workdir, "40000-49999")
        started.append(echo)
        gw = Wcsgw(workdir)
        started.append(gw)
        run_point(gw, echo, 2, "pcmu", argparse.Namespace(**{**vars(args), "duration": 1.0,
                                                             "settle": 0.5}), workdir)  # warm-up
        time.sleep(1.0)
        idle_rss = rss_kib(gw.pid)
        report["wcsgw_idle_rss_kib"] = idle_rss
        if "relay" not in skip:
            log("relayed PCMU")
            report["relay"] = scan(gw, echo, "pcmu", relay_counts, args, workdir, idle_rss, log)
        if "transcode" not in skip:
            log("transcoded Opus <-> PCMU (a fresh gateway: RSS per call from its own idle)")
            gw.stop()
            started.remove(gw)
            gw = Wcsgw(workdir)
            started.append(gw)
            run_point(gw, echo, 2, "opus", argparse.Namespace(**{**vars(args), "duration": 1.0,
                                                                 "settle": 0.5}), workdir)
            time.sleep(1.0)
            idle_rss = rss_kib(gw.pid)
            report["transcode"] = scan(gw, echo, "opus", tc_counts, args, workdir, idle_rss, log,
                                       ["--opus-band", args.caller_opus])
        if "setup" not in skip:
            log("set-up overhead (one call at a time, after the scans: RSS figures stay clean)")
            report["setup"] = setup_overhead(gw, echo, args, workdir)
        if "baseline" not in skip and report.get("relay"):
            log("baseline: caller straight to the echo, no gateway, same call counts")
            counts = [r["calls"] for r in report["relay"]]
            report["direct"] = scan(Direct(echo), echo, "pcmu", counts, args, workdir, 0, log)
        gw.stop()
        started.remove(gw)
        if args.rtpengine and "side" not in skip:
            from bench.rtpengine_compare import side_by_side

            log("side by side: wcsgw, " + ("Janus, " if args.janus else "") + "rtpengine")
            report["side_by_side"] = side_by_side(echo, args, workdir, log)
        if args.janus and not args.rtpengine:
            from bench.janus_peer import Janus

            log("Janus, relayed PCMU, same call counts")
            janus = Janus(workdir)
            started.append(janus)
            run_point(janus, echo, 2, "pcmu", argparse.Namespace(**{**vars(args), "duration": 1.0,
                                                                    "settle": 0.5}), workdir)
            time.sleep(1.0)
            j_idle = rss_kib(janus.pid)
            counts = [r["calls"] for r in report.get("relay", [])] or relay_counts
            report["janus_idle_rss_kib"] = j_idle
            if "janus-relay" not in skip:
                report["janus"] = scan(janus, echo, "pcmu", counts, args, workdir, j_idle, log)
            if "setup" not in skip:
                log("Janus set-up overhead (one call at a time)")
                report["janus_setup"] = setup_overhead(janus, echo, args, workdir)
    finally:
        for p in reversed(started):
            p.stop()

    print(f"\nMachine: {report['machine']}\n")
    if "setup" in report:
        s = report["setup"]
        print(f"### Call set-up overhead ({s['n']} calls, one at a time)\n")
        print("| share | p50 ms | p99 ms |\n|---|---|---|")
        print(f"| `call` sent -> INVITE at the far end | {fmt(s['call_to_invite'][0])} "
              f"| {fmt(s['call_to_invite'][1])} |")
        print(f"| 200 OK sent -> `ESTABLISHED` received | {fmt(s['ok_to_established'][0])} "
              f"| {fmt(s['ok_to_established'][1])} |")
        print(f"| whole `call` -> `ESTABLISHED` | {fmt(s['total'][0])} | {fmt(s['total'][1])} |\n")
    if "janus_setup" in report:
        s = report["janus_setup"]
        print(f"Janus, same scenario ({s['n']} calls; `call` request -> `accepted` event):\n")
        print("| share | p50 ms | p99 ms |\n|---|---|---|")
        print(f"| `call` request sent -> INVITE at the far end | {fmt(s['call_to_invite'][0])} "
              f"| {fmt(s['call_to_invite'][1])} |")
        print(f"| 200 OK sent -> `accepted` event received | {fmt(s['ok_to_established'][0])} "
              f"| {fmt(s['ok_to_established'][1])} |")
        print(f"| whole `call` -> `accepted` | {fmt(s['total'][0])} | {fmt(s['total'][1])} |\n")
    janus_by = {r["calls"]: r for r in report.get("janus", [])} if "janus" in report else None
    base_by = {r["calls"]: r for r in report.get("direct", [])} if "direct" in report else None
    if "relay" in report:
        print("### Relayed PCMU (wcsgw)\n")
        print(table(report["relay"], janus_by, base_by))
        stop = report["relay"][-1].get("stopped")
        print(f"\nStopped: {stop or 'end of the list'}\n")
    if "transcode" in report:
        print("### Transcoded Opus <-> PCMU (wcsgw)\n")
        print(table(report["transcode"]))
        stop = report["transcode"][-1].get("stopped")
        print(f"\nStopped: {stop or 'end of the list'}\n")
    if "janus" in report:
        print("### Relayed PCMU (Janus SIP plugin)\n")
        print(table(report["janus"], None, base_by))
        print()
    if "side_by_side" in report:
        from bench.rtpengine_compare import tables

        gateways, counts, runs = report["side_by_side"]
        print(f"### Side by side: relayed PCMU, {', '.join(gateways)} ({args.reps} repetitions, "
              f"{args.duration:g} s windows)\n")
        print(tables(runs, gateways, counts, args.allow_busy))
        print()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
