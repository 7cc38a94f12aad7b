"""`make fuzz`: coverage-guided fuzzing (atheris, libFuzzer) of what faces the network.

One child process per target (bench/fuzz/targets.py), each with libFuzzer's own guards: a run
count (``-runs``), an input size limit (``-max_len``), a memory ceiling (``-rss_limit_mb``:
unbounded growth is a failure, not a slow machine) and a per-input time limit (``-timeout``:
a hang is a failure).  Each child starts from the target's seeds (bench/fuzz/seeds.py) and
from every input kept in tests/data/fuzz/<target>/, and only wcsgw is instrumented, so the
coverage counted is the gateway's.

The parent prints one row per target: inputs run, exec/s, coverage (libFuzzer's ``cov``
edges and ``ft`` features), crashes/hangs/OOM, peak RSS and wall time.  An input that
crashed, hung or ran out of memory is copied to tests/data/fuzz/<target>/ (where
tests/test_fuzz_replay.py replays it in the suite) and the run exits 1.

    python bench/fuzz/run.py                    # every target, 10^6 inputs each
    python bench/fuzz/run.py --quick            # a smoke run: 2000 inputs each
    python bench/fuzz/run.py --targets sip,sdp --runs 200000 --max-time 600
    python bench/fuzz/run.py --targets sip --resume /tmp/wcsgw-fuzz-x   # go on from a run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEPT = ROOT / "tests" / "data" / "fuzz"
ALL = ("sip", "sdp", "jsonrpc", "rest", "stun", "rtp")

_STATUS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+).*?exec/s: (\d+)(?: rss: (\d+)Mb)?")
_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


# -- the child: one target under libFuzzer ---------------------------------------------------

def child(args: argparse.Namespace) -> None:
    import atheris

    with atheris.instrument_imports(include=["wcsgw"]):
        from bench.fuzz.targets import TARGETS
    from twisted.logger import globalLogBeginner

    # The gateway logs what it refuses (at most once a second per kind); here nobody reads
    # it, and Twisted's start-up buffer would hold the last 65536 events.
    globalLogBeginner.beginLoggingTo([lambda event: None], discardBuffer=True,
                                     redirectStandardIO=False)
    target = TARGETS[args.child]
    flags = [f"-runs={args.runs}", f"-max_len={target.max_len}",
             f"-rss_limit_mb={args.rss_limit_mb}", f"-timeout={args.timeout}",
             f"-artifact_prefix={args.artifacts}/", "-print_final_stats=1",
             "-print_pcs=0", "-reload=0"]
    if args.max_time:
        flags.append(f"-max_total_time={args.max_time}")

    def guarded(data: bytes) -> None:
        """The target, and the input written down before a failure leaves: libFuzzer writes
        its own crash-<sha1> too, but a busy machine has seen it die before it did."""
        try:
            target.run(data)
        except BaseException:
            digest = hashlib.sha1(data).hexdigest()
            (Path(args.artifacts) / f"crash-{digest}").write_bytes(data)
            raise

    atheris.Setup([sys.argv[0], *flags, args.corpus], guarded)
    atheris.Fuzz()


# -- the parent: a child per target, a table --------------------------------------------------

def seed_corpus(name: str, corpus: Path, earlier: Path | None = None) -> int:
    """Write the seeds, the kept inputs and an earlier run's corpus (``--resume``) into
    ``corpus``; how many."""
    from bench.fuzz.seeds import seeds

    inputs = list(seeds(name))
    for folder in (KEPT / name, earlier / name / "corpus" if earlier else None):
        if folder is not None and folder.is_dir():
            inputs += [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()
                       and p.name != "README.md"]
    for data in inputs:
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return len(inputs)


def keep(name: str, artifacts: Path) -> list[str]:
    """Copy what the child left (crash-*, timeout-*, oom-*, leak-*) to tests/data/fuzz."""
    found = []
    for path in sorted(artifacts.iterdir()):
        kind = path.name.split("-", 1)[0]
        if kind not in ("crash", "timeout", "oom", "leak", "slow"):
            continue
        data = path.read_bytes()
        dest = KEPT / name / f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        found.append(str(dest.relative_to(ROOT)))
    return found


def run_target(name: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    corpus, artifacts = work / name / "corpus", work / name / "artifacts"
    corpus.mkdir(parents=True)
    artifacts.mkdir(parents=True)
    seeded = seed_corpus(name, corpus, Path(args.resume) if args.resume else None)
    log_path = work / f"{name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name,
               "--runs", str(args.runs), "--timeout", str(args.timeout),
               "--rss-limit-mb", str(args.rss_limit_mb), "--max-time", str(args.max_time),
               "--corpus", str(corpus), "--artifacts", str(artifacts)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    started = time.monotonic()
    with open(log_path, "wb") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                              cwd=work, start_new_session=True).returncode
    wall = time.monotonic() - started
    text = log_path.read_text("utf-8", "replace")
    statuses = _STATUS.findall(text)
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    last = statuses[-1] if statuses else ("0", "0", "0", "0", "")
    runs = stats.get("number_of_executed_units", int(last[0]))
    kept = keep(name, artifacts)
    kinds = [Path(p).name.split("-", 1)[0] for p in kept]
    failed = code != 0 or bool(kept)
    if failed and args.verbose:
        print(text[-6000:], file=sys.stderr)
    return {
        "target": name, "seeds": seeded, "runs": runs,
        # libFuzzer's own figure is whole inputs per whole second of fuzzing (0 on a short
        # run); the wall time includes the start-up, so this one is a floor
        "exec/s": stats.get("average_exec_per_sec") or round(runs / max(wall, 1e-3)),
        "cov": int(last[1]), "ft": int(last[2]),
        "crashes": kinds.count("crash") + (1 if failed and not kept else 0),
        "hangs": kinds.count("timeout"), "oom": kinds.count("oom") + kinds.count("leak"),
        "rss_mb": stats.get("peak_rss_mb", int(last[4] or 0)), "wall_s": round(wall),
        "kept": kept, "log": str(log_path), "exit": code,
    }


def table(rows: list[dict[str, object]]) -> str:
    head = ("target", "seeds", "runs", "exec/s", "cov", "ft", "crashes", "hangs", "oom",
            "rss_mb", "wall_s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[h]) for h in head) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default=",".join(ALL),
                        help=f"comma-separated, of: {', '.join(ALL)} (default: all)")
    parser.add_argument("--runs", type=int, default=1_000_000, help="inputs per target")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2000 inputs each")
    parser.add_argument("--max-time", type=int, default=0,
                        help="seconds per target at most (0: no limit; then --runs decides)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=1024, help="memory ceiling")
    parser.add_argument("--parallel", type=int, default=1, help="targets run at once")
    parser.add_argument("--resume", help="start from the corpora of an earlier --work folder")
    parser.add_argument("--work", help="where corpora and logs go (default: a temp folder)")
    parser.add_argument("--verbose", action="store_true", help="print a failing child's log")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    if args.quick:
        args.runs = 2000
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r} (known: {', '.join(ALL)})")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="wcsgw-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (work / name).exists():
            shutil.rmtree(work / name)

    def one(name: str) -> dict[str, object]:
        row = run_target(name, args, work)
        print(f"{name}: {row['runs']} inputs, {row['exec/s']} exec/s, cov {row['cov']} "
              f"ft {row['ft']}, crashes {row['crashes']} hangs {row['hangs']} "
              f"oom {row['oom']}, {row['wall_s']} s", flush=True)
        for path in row["kept"]:  # type: ignore[attr-defined]
            print(f"  kept {path}", flush=True)
        return row

    # Each child is one process: --parallel runs that many targets at once (a machine of
    # its own can take one per core; a shared one, 1).
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        rows = list(pool.map(one, names))
    print()
    print(table(rows))
    print(f"\nlogs and corpora: {work}")
    return 1 if any(r["crashes"] or r["hangs"] or r["oom"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
