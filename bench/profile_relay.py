"""Where the gateway's time goes under load: py-spy on a running wcsgw.

Starts the echo UAS and wcsgw like ``bench/relay_capacity.py``, holds ``--calls`` calls with
the load caller (``--codec pcmu`` relayed, ``opus`` transcoded), samples the gateway with
``py-spy record --format raw`` (collapsed stacks, ``--nonblocking``, 100 Hz) during the steady
window, and prints the functions with the most *own* samples and the most *inclusive* samples
(share of all samples, idle included — the reactor's ``select``/``epoll`` wait is the idle).

With ``--setup``: the set-up scenario instead of a steady window — ``--calls`` calls placed one
at a time (as ``bench/relay_capacity.py``'s set-up overhead), sampled at ``--rate`` (2000 Hz)
from the first ``call`` to the last ``ESTABLISHED``; the samples are then split by the stack
they were taken in: under the JSON-RPC frame of a session (``call`` -> INVITE), under the SIP
port's datagram (the 200 OK -> ``ESTABLISHED``, and the DTLS/ICE of the browser leg), the rest.

Needs ``py-spy`` (pip) and permission to ptrace the gateway (root, or ptrace_scope 0).
Run: ``.venv/bin/python bench/profile_relay.py --calls 100 [--codec opus] [--seconds 8]``;
``.venv/bin/python bench/profile_relay.py --setup --calls 100``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.relay_capacity import PY, EchoUas, Proc, Wcsgw  # noqa: E402 - after sys.path

#: the set-up's samples by the frame they were taken under, first match wins (the anchor is a
#: function name as py-spy prints it, up to its file): the JSON-RPC ``call`` up to the INVITE,
#: every SIP datagram (the 100/180/200 and their work: answer, ACK, ``ESTABLISHED``), the
#: browser leg's own packets (STUN, DTLS), the rest (media of the calls already up, hang-ups)
SETUP_PARTS = {
    "`call` -> INVITE (SessionMethods._call)": "SessionMethods._call (",
    "SIP in: 1xx/200 -> ACK, ESTABLISHED (SIP port datagrams)": "_UDP.datagramReceived (",
    "browser leg: STUN, DTLS (WebRtcLeg.receive)": "WebRtcLeg.receive (",
    "the rest (media, WebSocket frames, hang-ups)": "",
}


def setup_part(frames: list[str]) -> tuple[str, list[str]]:
    """Which part of :data:`SETUP_PARTS` a stack belongs to, and its frames from the anchor on."""
    for name, anchor in SETUP_PARTS.items():
        if not anchor:
            return name, frames
        for i, frame in enumerate(frames):
            if frame.startswith(anchor):
                return name, frames[i:]
    return name, frames


def warm_up(gw: "Wcsgw", echo_port: int, workdir: str, *, duration: float, settle: float) -> None:
    """Two calls through the gateway and back to idle, so imports and first-use caches are
    not in what is measured next."""
    warm = Proc([PY, os.path.join(HERE, "load_caller.py"), *gw.caller_args(echo_port),
                 "--calls", "2", "--duration", str(duration), "--settle", str(settle)],
                os.path.join(workdir, "warm.err"))
    warm.proc.wait(60)
    warm.stop()
    time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--codec", choices=("pcmu", "opus"), default="pcmu")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--rate", type=int, default=None, help="samples/s (200; --setup: 2000)")
    ap.add_argument("--setup", action="store_true",
                    help="profile call set-ups placed one at a time instead of a steady window")
    ap.add_argument("--memory", action="store_true",
                    help="tracemalloc instead of py-spy: where the per-call memory goes")
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(PY), "py-spy")
    workdir = tempfile.mkdtemp(prefix="wcsgw-profile-")
    raw = os.path.join(workdir, "gateway.raw")
    started: list = []
    try:
        echo = EchoUas(workdir, "40000-49999")
        started.append(echo)
        mem_out = os.path.join(workdir, "tracemalloc.txt")
        launcher = [PY, os.path.join(HERE, "tracemalloc_twistd.py"), mem_out] if args.memory else None
        gw = Wcsgw(workdir, launcher=launcher)
        started.append(gw)
        if args.memory:
            # baseline after a 2-call warm-up, so imports and first-use caches are not counted
            warm_up(gw, echo.port, workdir, duration=1, settle=0.5)
            os.kill(gw.pid, signal.SIGUSR1)
            time.sleep(2)
        rate = str(args.rate or (2000 if args.setup else 200))
        spy: list[Proc] = []
        if args.setup:
            # warm-up first (imports, first-use caches), then sample every set-up of the run
            warm_up(gw, echo.port, workdir, duration=0.5, settle=0.2)
            spy.append(Proc([pyspy, "record", "--pid", str(gw.pid), "--format", "raw", "--rate",
                             rate, "--nonblocking", "--output", raw],
                            os.path.join(workdir, "py-spy.log")))
            time.sleep(1)  # py-spy attached
        window = (["--concurrency", "1", "--duration", "0.2", "--settle", "0", "--dump-setup"]
                  if args.setup else ["--duration", str(args.seconds + 2), "--settle", "2"])
        caller = Proc([PY, os.path.join(HERE, "load_caller.py"), *gw.caller_args(echo.port),
                       "--codec", args.codec, "--calls", str(args.calls), *window,
                       *(["--concurrency", "2"] if args.memory else [])],
                      os.path.join(workdir, "caller.err"), stdout_pipe=True)
        started.append(caller)
        result = []

        def read() -> None:
            for line in caller.proc.stdout:  # type: ignore[union-attr]
                if line.startswith("WINDOW_START") and args.memory:
                    os.kill(gw.pid, signal.SIGUSR1)
                elif line.startswith("WINDOW_START") and args.setup:
                    for p in spy:  # every set-up done: py-spy writes what it has and exits
                        p.proc.send_signal(signal.SIGINT)
                elif line.startswith("WINDOW_START"):
                    spy.append(Proc([pyspy, "record", "--pid", str(gw.pid), "--format", "raw",
                                     "--rate", rate, "--nonblocking", "--duration",
                                     str(int(args.seconds)), "--output", raw],
                                    os.path.join(workdir, "py-spy.log")))
                elif line.startswith("RESULT"):
                    result.append(line)

        t = threading.Thread(target=read)
        t.start()
        t.join(args.seconds + 120)
        for p in spy:
            p.proc.wait(30)
            p.stop()
        caller.proc.wait(30)
        deadline = time.monotonic() + 120
        while args.memory and not os.path.exists(mem_out) and time.monotonic() < deadline:
            time.sleep(0.5)  # the snapshot of a big heap takes a while
    finally:
        for p in reversed(started):
            p.stop()
    if args.memory:
        print(f"{args.calls} {args.codec} calls held; {result[0][:300] if result else ''}\n")
        with open(mem_out) as f:
            print(f.read())
        return
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    parts: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in SETUP_PARTS}
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            # per function, not per line: "f (file.py:12)" -> "f (file.py)"
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            own[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
            if args.setup:
                part, below = setup_part(frames)
                for fr in set(below):
                    parts[part][fr] += n
                parts[part][""] += n
    print(f"{args.calls} {args.codec} calls, {total} samples; {result[0][:300] if result else ''}\n")
    if args.setup:
        # ms of samples per call: at --rate Hz one sample is 1000/rate ms of the loop's time
        up = json.loads(result[0][len("RESULT "):]).get("calls_up") if result else None
        per_call = 1000 / float(rate) / max(up or args.calls, 1)
        print("| part of the set-up | samples | ms per call |\n|---|---|---|")
        for name, counter in parts.items():
            print(f"| {name} | {counter['']} | {counter[''] * per_call:.2f} |")
        for name in list(SETUP_PARTS)[:2]:
            counter = parts[name]
            print(f"\n{name}, inclusive (ms per call):\n\n| ms | function |\n|---|---|")
            for fn, n in counter.most_common(args.top + 1):
                if fn:
                    print(f"| {n * per_call:.2f} | `{fn}` |")
        print()
    print("| own % | function |\n|---|---|")
    for name, n in own.most_common(args.top):
        print(f"| {100 * n / total:.1f} | `{name}` |")
    print("\n| inclusive % | function |\n|---|---|")
    for name, n in incl.most_common(args.top + 15):
        print(f"| {100 * n / total:.1f} | `{name}` |")


if __name__ == "__main__":
    main()
