#!/usr/bin/env python3
"""Which logical CPUs share one core's FMA units, measured: a VM may report one thread per core while the host
runs two of its vCPUs on one physical core, which then halves each one's FMA throughput and caps any program's
thread scaling. fclf-bench's FMA peak is run on CPU 0 alone, then on pairs of CPUs (an affinity each); a pair that gives
under 1.35x the single CPU shares a core.

    python3 Benchmarks/peers/cpu_pairs.py [--bench "CMD"] [--json out.json]

Prints the FMA peak by thread count (unpinned, twice each), the pairs that share a core, one CPU of each core
(the list to pin a scaling run to), and the 8-thread peak on those CPUs beside 8 unpinned threads."""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = 1.35  # pair / single below this: one core's FMA units between the two


def peak(cmd, threads, cpus=None, quick=True):
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
    out = subprocess.run([*cmd, "peak", "--threads", str(threads), *(["--quick"] if quick else [])],
                         capture_output=True, text=True, check=True, preexec_fn=pin)
    m = re.search(r"FMA peak, \d+ threads: ([0-9.]+)", out.stderr)
    if not m:
        sys.exit(f"cpu_pairs: no FMA peak in fclf-bench's output: {out.stderr.strip()}")
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "Benchmarks", ".build", "release", "fclf-bench"))
    ap.add_argument("--json")
    args = ap.parse_args()
    cmd = shlex.split(args.bench)
    cpus = sorted(os.sched_getaffinity(0))
    n = len(cpus)

    by_threads = {}
    for t in (1, 2, 4, 8, 16, 32):
        if t <= n:
            by_threads[t] = [peak(cmd, t, quick=False) for _ in range(2)]
            print(f"FMA peak, {t:2} threads, unpinned: " + ", ".join(f"{g:.1f}" for g in by_threads[t]) + " GFLOP/s",
                  flush=True)

    single = max(peak(cmd, 1, [cpus[0]]) for _ in range(3))
    print(f"\nCPU {cpus[0]} alone: {single:.1f} GFLOP/s; pairs sharing a core (pair < {SHARED} x that):", flush=True)
    pairs, partner, lonely = {}, {}, 0
    for i in cpus:
        if i in partner:
            continue
        found = False
        for j in cpus:
            if j <= i or j in partner:
                continue
            g = peak(cmd, 2, [i, j])
            if g < single * 1.7:  # shared, or a noisy reading of an unshared pair: once more, the better one counts
                g = max(g, peak(cmd, 2, [i, j]))
            pairs[f"{i},{j}"] = g
            if g < single * SHARED:
                partner[i], partner[j] = j, i
                print(f"  {i} and {j}: {g:.1f} GFLOP/s ({g / single:.2f}x)", flush=True)
                found = True
                break
        if not found:
            lonely += 1
            if lonely >= 2 and not partner:
                print("  none: the first two CPUs share a core with no other", flush=True)
                break
    distinct = [c for c in cpus if c not in partner or c < partner[c]]
    print(f"one CPU per core ({len(distinct)}): {','.join(map(str, distinct))}")

    pinned8 = None
    if partner and len(distinct) >= 8:
        pinned8 = [peak(cmd, 8, distinct[:8], quick=False) for _ in range(2)]
        print("FMA peak, 8 threads on those CPUs: " + ", ".join(f"{g:.1f}" for g in pinned8) + " GFLOP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpus": cpus, "peak_unpinned": by_threads, "single": single, "pairs": pairs,
                       "partner": partner, "one_per_core": distinct, "peak_8_one_per_core": pinned8}, f, indent=1)


if __name__ == "__main__":
    main()
