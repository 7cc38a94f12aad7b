"""Transcoding quality and cost per chain: every browser codec against every SIP codec.

For each chain and direction, a 1 kHz and a 440 Hz tone at -12 dBFS go through a
transcoding MediaBridge as real RTP (20 ms packets from a real encoder) and are decoded on the
far side by a fresh codec (tests/quality.py does the work the tests use too). Printed per
direction: the worst frequency error of the two tones (%), the worst level change (dB), the
lowest SNR (dB; the tone fitted at the frequency sent, against everything else), the SNR at
10 % packet loss (1 packet in 10 concealed; a pure tone is the hardest case for PLC), and the
bridge's CPU time per 20 ms packet in (decode, resample, encode, headers; p50 and p99 over
``--seconds`` of audio).

    PYTHONPATH=. .venv/bin/python bench/codec_quality.py [--seconds 10] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.quality import chains, label, run_direction  # noqa: E402


def direction_row(browser, sip, to_sip: bool, seconds: float) -> list[float]:
    freq_err = level = 0.0
    snr = float("inf")
    for freq in (1000.0, 440.0):
        run = run_direction(browser, sip, to_sip=to_sip, freq=freq)
        got, lv, s = run.measure(freq)
        freq_err = max(freq_err, abs(got - freq) / freq * 100)
        level = lv if abs(lv) > abs(level) else level
        snr = min(snr, s)
    lossy = run_direction(browser, sip, to_sip=to_sip, freq=440.0, seconds=2.0, lose=lambda i: i % 10 == 5)
    loss_snr = lossy.measure(440.0)[2]
    timed = run_direction(browser, sip, to_sip=to_sip, freq=440.0, seconds=seconds, timed=True)
    costs = np.array(timed.encode_us[10:])
    return [freq_err, level, snr, loss_snr, float(np.percentile(costs, 50)), float(np.percentile(costs, 99))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="audio timed per direction (default 10)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    head = ["chain (browser / SIP)", "dir", "freq err %", "level dB", "SNR dB", "SNR 10% loss", "µs p50", "µs p99"]
    rows = []
    for browser, sip in chains():
        for to_sip in (True, False):
            values = direction_row(browser, sip, to_sip, args.seconds)
            rows.append([f"{label(*browser)} / {label(*sip)}", "→ SIP" if to_sip else "→ browser"] + values)
            if not args.markdown:
                print(fmt(rows[-1]), flush=True)
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(fmt_cells(r)) + " |")


def fmt_cells(r: list) -> list[str]:
    return [r[0], r[1], f"{r[2]:.3f}", f"{r[3]:+.2f}", f"{r[4]:.1f}", f"{r[5]:.1f}", f"{r[6]:.0f}", f"{r[7]:.0f}"]


def fmt(r: list) -> str:
    c = fmt_cells(r)
    return f"{c[0]:22s} {c[1]:10s} {c[2]:>8s} {c[3]:>7s} {c[4]:>6s} {c[5]:>6s} {c[6]:>6s} {c[7]:>6s}"


if __name__ == "__main__":
    main()
