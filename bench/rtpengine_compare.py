"""wcsgw, Janus and rtpengine side by side: ``relay_capacity.py --rtpengine [--janus]``.

The same load caller (``load_caller.py``), the same echo far end, the same call counts, for
each gateway in turn.  What makes the comparison fair, and how:

* **interleaved**: repetition by repetition, count by count, one run of each gateway
  (wcsgw, Janus, rtpengine, wcsgw, ...), so a slow drift of the machine (other work starting
  or ending) falls on all of them alike rather than on whichever ran last;
* **restarted per run**: every run starts its gateway fresh, warms it with 2 calls, reads its
  idle RSS, carries the N calls, stops it; no run inherits another's heap or sockets;
* **a quiet machine, checked**: before each run the 1-minute load average is read; during the
  window, the CPU of every process *other than* the gateway, the caller and the echo is taken
  from /proc/stat.  A run that started with a load average above ``--max-load`` per core, or
  during which the others used more than ``--max-others`` % of a core, is **busy**: shown in
  the run log and left out of the medians (``--allow-busy``: kept, and the table says so);
* **the same admission**: wcsgw's overload control is off (``NO_OVERLOAD_CONTROL``, as in
  ``bench/workers.py``): Janus and rtpengine admit every call, and a loop-lag guard refusing
  calls on a loaded box would change N between the gateways compared;
* **3 repetitions**, each figure the median with its range ``[min–max]`` over the runs used;
  CPU of the gateway process only (all threads) — for rtpengine its media plane, since its
  signalling front runs in the caller (``bench/rtpengine_front.py``).

Set-up p50 (``call`` → INVITE at the echo, 200 OK → ``ESTABLISHED``), one call at a time on a
fresh gateway, is measured per repetition for each gateway too; for rtpengine ``call`` is the
ng ``offer`` and ``ESTABLISHED`` the ng ``answer``'s reply.  The summaries and tables are pure
functions of the run records (``tests/test_bench_rtpengine.py``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.harness import fmt, load_average, rss_kib
from bench.workers import NO_OVERLOAD_CONTROL, median_range

__all__ = ["busy_reason", "cell", "fit", "others_cpu_pct", "run_one", "side_by_side",
           "summarise", "tables"]

Record = dict[str, Any]


# ------------------------------------------------------------------ pure: judging and summing


def others_cpu_pct(result: Record) -> float | None:
    """CPU (% of one core) of everything on the machine but the three bench processes."""
    if "box_cpu_pct" not in result:
        return None
    own = sum(result.get(k, 0.0) for k in ("gw_cpu_pct", "caller_cpu_pct", "echo_cpu_pct"))
    return max(0.0, result["box_cpu_pct"] - own)


def busy_reason(load_1m: float, cores: int, others: float | None, max_load: float,
                max_others: float) -> str | None:
    """Why a run does not count (None: it does).  ``max_load`` is per core."""
    if load_1m > max_load * cores:
        return f"load average {load_1m:.2f} > {max_load:g} x {cores} cores"
    if others is not None and others > max_others:
        return f"other processes used {others:.0f} % of a core"
    return None


def fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares ``cpu = fixed + per_call * calls``: (fixed, per_call), None if the call
    counts do not vary."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - slope * mx, slope


METRICS = ("cpu_per_call_pct", "gw_cpu_pct", "rss_per_call_kib", "rtt_p50_ms", "rtt_p99_ms",
           "loss_pct", "idle_rss_kib", "call_to_invite_p50", "ok_to_established_p50")


def summarise(runs: Sequence[Record], allow_busy: bool) -> dict[tuple[str, int | str], Record]:
    """Per (gateway, calls) — calls is ``"setup"`` for set-up runs —: the median/min/max of each
    metric over the runs used, and how many were used, busy, failed.  A run is used when it is
    not busy (or ``allow_busy``) and every call came up."""
    groups: dict[tuple[str, int | str], list[Record]] = {}
    for r in runs:
        groups.setdefault((r["gateway"], r["calls"]), []).append(r)
    out: dict[tuple[str, int | str], Record] = {}
    for key, rs in groups.items():
        busy = [r for r in rs if r.get("busy")]
        failed = [r for r in rs if not r.get("complete")]
        used = [r for r in rs if r.get("complete") and (allow_busy or not r.get("busy"))]
        entry: Record = {"runs": len(rs), "used": len(used), "busy": len(busy),
                         "failed": len(failed),
                         "busy_used": sum(1 for r in used if r.get("busy"))}
        for m in METRICS:
            entry[m] = median_range([r[m] for r in used if r.get(m) is not None])
        out[key] = entry
    return out


def cell(m: tuple[float, float, float] | None, digits: int = 2) -> str:
    if m is None:
        return "–"
    return f"{m[0]:.{digits}f} [{m[1]:.{digits}f}–{m[2]:.{digits}f}]"


def _used(e: Record | None) -> str:
    if not e:
        return "–"
    text = f"{e['used']}/{e['runs']}"
    if e["busy_used"]:
        text += f" ({e['busy_used']} busy, kept)"
    elif e["busy"]:
        text += f" ({e['busy']} busy, left out)"
    if e["failed"]:
        text += f" ({e['failed']} with failed calls)"
    return text


def tables(runs: Sequence[Record], gateways: Sequence[str], counts: Sequence[int],
           allow_busy: bool) -> str:
    """Markdown: CPU per call, RSS per call, RTT, set-up and idle RSS, the fits, the run log."""
    s = summarise(runs, allow_busy)
    out: list[str] = []
    note = (" — busy runs KEPT (--allow-busy): figures from a loaded machine" if allow_busy
            and any(e["busy_used"] for e in s.values()) else "")
    out.append(f"#### CPU per relayed call, % of one core (median [min–max]){note}\n")
    head = "| calls | " + " | ".join(gateways)
    ratio = "wcsgw" in gateways and "rtpengine" in gateways
    head += " | wcsgw/rtpengine |" if ratio else " |"
    out += [head + " runs used |", "|---" * (len(gateways) + 2 + int(ratio)) + "|"]
    for n in counts:
        line = f"| {n} | " + " | ".join(cell(s.get((g, n), {}).get("cpu_per_call_pct"), 3)
                                         for g in gateways) + " |"
        if ratio:
            w = s.get(("wcsgw", n), {}).get("cpu_per_call_pct")
            r = s.get(("rtpengine", n), {}).get("cpu_per_call_pct")
            line += f" {fmt(w[0] / r[0] if w and r and r[0] else None)} |"
        line += " " + "; ".join(f"{g} {_used(s.get((g, n)))}" for g in gateways) + " |"
        out.append(line)
    fits = []
    for g in gateways:
        pts = [(float(r["calls"]), r["gw_cpu_pct"]) for r in runs
               if r["gateway"] == g and isinstance(r["calls"], int) and r.get("complete")
               and r.get("gw_cpu_pct") is not None and (allow_busy or not r.get("busy"))]
        f = fit(pts)
        if f:
            fits.append(f"{g} {f[0]:.1f} % + {f[1]:.3f} % per call ({len(pts)} runs)")
    if fits:
        out.append("\nLeast squares, gateway CPU = fixed + per call: " + "; ".join(fits) + ".")
    for title, metric, digits in (("RSS growth per call, kB", "rss_per_call_kib", 0),
                                  ("RTT p50, ms (caller → gateway → echo → back)", "rtt_p50_ms", 2),
                                  ("RTT p99, ms", "rtt_p99_ms", 2), ("loss, %", "loss_pct", 3)):
        out.append(f"\n#### {title}\n")
        out += ["| calls | " + " | ".join(gateways) + " |", "|---" * (len(gateways) + 1) + "|"]
        for n in counts:
            out.append(f"| {n} | " + " | ".join(cell(s.get((g, n), {}).get(metric), digits)
                                                 for g in gateways) + " |")
    out.append("\n#### Set-up p50 (one call at a time, fresh gateway) and idle RSS\n")
    out += ["| gateway | `call` → INVITE ms | 200 OK → ESTABLISHED ms | idle RSS MiB | runs used |",
            "|---|---|---|---|---|"]
    for g in gateways:
        e = s.get((g, "setup"), {})
        idle = median_range([r["idle_rss_kib"] / 1024 for r in runs if r["gateway"] == g
                             and r.get("idle_rss_kib") and (allow_busy or not r.get("busy"))])
        out.append(f"| {g} | {cell(e.get('call_to_invite_p50'))} | "
                   f"{cell(e.get('ok_to_established_p50'))} | {cell(idle, 1)} | {_used(e or None)} |")
    out.append("\n#### Run log (in the order run)\n")
    out += ["| # | gateway | calls | rep | load avg 1m before | others' CPU % | calls up | counted |",
            "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        counted = ("no: " + r["busy"]) if r.get("busy") and not allow_busy else (
            ("busy: " + r["busy"]) if r.get("busy") else "yes")
        if not r.get("complete"):
            counted = "no: calls failed"
        out.append(f"| {i} | {r['gateway']} | {r['calls']} | {r['rep']} | {r['load_1m']:.2f} | "
                   f"{fmt(r.get('others_cpu_pct'), 0)} | {fmt(r.get('calls_up'))} | {counted} |")
    return "\n".join(out)


# ------------------------------------------------------------------ the runs


def run_one(start: Callable[[], Any], name: str, calls: int | str, rep: int, echo: Any,
            args: argparse.Namespace, workdir: str, log: Callable[[str], None]) -> Record:
    """One run: a fresh gateway, warm-up, idle RSS, the load point (or the set-up scenario when
    ``calls == "setup"``), the gateway stopped whatever happens."""
    from bench.relay_capacity import run_point, setup_overhead

    cores = os.cpu_count() or 1
    load_1m = load_average()[0]
    record: Record = {"gateway": name, "calls": calls, "rep": rep, "load_1m": load_1m}
    try:
        gw = start()
    except Exception as exc:  # noqa: BLE001 (one gateway that does not start: a failed run)
        log(f"  {name} did not start: {exc}")
        return {**record, "complete": False, "busy": None, "error": str(exc)}
    try:
        warm = argparse.Namespace(**{**vars(args), "duration": 1.0, "settle": 0.5})
        run_point(gw, echo, 2, "pcmu", warm, workdir)
        time.sleep(1.0)
        record["idle_rss_kib"] = rss_kib(gw.pid)
        if calls == "setup":
            s = setup_overhead(gw, echo, args, workdir)
            record.update(complete=s["n"] > 0, calls_up=s["n"],
                          call_to_invite_p50=s["call_to_invite"][0],
                          ok_to_established_p50=s["ok_to_established"][0])
            others = None
        else:
            r = run_point(gw, echo, int(calls), "pcmu", args, workdir)
            up = r.get("calls_up") or 0
            others = others_cpu_pct(r)
            record.update({k: r.get(k) for k in ("calls_up", "gw_cpu_pct", "rtt_p50_ms",
                                                  "rtt_p99_ms", "loss_pct", "caller_cpu_pct",
                                                  "echo_cpu_pct", "box_cpu_pct",
                                                  "failure_reasons")})
            record["complete"] = up == calls and r.get("gw_cpu_pct") is not None
            if up:
                record["cpu_per_call_pct"] = (r.get("gw_cpu_pct") or 0.0) / up
                record["rss_per_call_kib"] = (r.get("rss_kib", 0) - record["idle_rss_kib"]) / up
    finally:
        gw.stop()
    record["others_cpu_pct"] = others
    record["busy"] = busy_reason(load_1m, cores, others, args.max_load, args.max_others)
    log(f"  {name:9s} {calls!s:>5} rep {rep}: load {load_1m:.2f}, up {record.get('calls_up')}, "
        f"CPU/call {fmt(record.get('cpu_per_call_pct'), 3)} %, "
        f"others {fmt(others, 0)} %{' BUSY: ' + record['busy'] if record['busy'] else ''}")
    return record


def side_by_side(echo: Any, args: argparse.Namespace, workdir: str,
                 log: Callable[[str], None]) -> tuple[list[str], list[int], list[Record]]:
    """Every run, interleaved; returns (gateways, counts, run records)."""
    from bench.harness import Wcsgw
    from bench.rtpengine_peer import Rtpengine

    # wcsgw's overload control off: Janus and rtpengine admit every call, and on a loaded box
    # wcsgw's loop-lag guard would refuse some, changing N between the gateways compared
    starters: dict[str, Callable[[], Any]] = {
        "wcsgw": lambda: Wcsgw(workdir, limits=NO_OVERLOAD_CONTROL)}
    if args.janus:
        from bench.janus_peer import Janus

        starters["janus"] = lambda: Janus(workdir)
    starters["rtpengine"] = lambda: Rtpengine(workdir)
    counts = [int(x) for x in args.side_counts.split(",")]
    runs: list[Record] = []
    for rep in range(1, args.reps + 1):
        log(f"side by side, repetition {rep} of {args.reps}")
        for calls in [*counts, "setup"]:
            for name, start in starters.items():
                runs.append(run_one(start, name, calls, rep, echo, args, workdir, log))
    return list(starters), counts, runs
