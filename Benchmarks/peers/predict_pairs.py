#!/usr/bin/env python3
"""One image through fclf_predict against ONNX Runtime, measured back to back: each round runs fclf-bench's
single-image item (the seed CNN's architecture with fclf-bench's own weights, as compare.py times it) and then
ONNX Runtime on the exported seed model, with the same number of threads, seconds apart instead of minutes apart
as in compare.py (training items run between them there). On this VM the second core has slow phases, and a
single image gains from it only while it is quick: on 2 threads ours took 26 or 38 us (one thread: 36 us) and
ONNX Runtime 47 or 80 us (one thread: 68 us), whichever phase each met. compare.py's p50 ratio was 0.34 in the
fifteenth session's run and 0.77-0.81 in the sixteenth's three; this script's rounds gave 0.39-0.60 and once
0.83 (AMD Zen 4, 2026-11-29). --threads 1 compares the two without the second core.

    .venv/bin/python Benchmarks/peers/predict_pairs.py [--rounds 5] [--threads 2] [--json out.json]

Prints each round's p50 and p99 for both and the ratio ours / ONNX Runtime (issue 15 asks 0.7 or less)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import peers  # noqa: E402
from compare import EXPORT, SEED_MODEL, ours as compare_ours  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    peers.THREADS = args.threads
    onnx = os.path.join(tempfile.mkdtemp(), "seed.onnx")
    subprocess.run([EXPORT, SEED_MODEL, "--onnx", onnx], check=True, capture_output=True)
    rows = []
    for r in range(args.rounds):
        ours = compare_ours("predict", threads=args.threads)["predict 1 image"]
        ort = peers.ort_predict(onnx, singles=5000)
        row = {"round": r + 1, "threads": args.threads, "ours_p50_us": ours["p50_us"], "ours_p99_us": ours["p99_us"],
               "ort_p50_us": ort["p50_us"], "ort_p99_us": ort["p99_us"]}
        rows.append(row)
        print(f"round {r + 1}: ours p50 {row['ours_p50_us']:.1f} us, p99 {row['ours_p99_us']:.1f} us; ONNX Runtime "
              f"p50 {row['ort_p50_us']:.1f} us, p99 {row['ort_p99_us']:.1f} us; ours / ONNX Runtime p50 "
              f"{row['ours_p50_us'] / row['ort_p50_us']:.2f}, p99 {row['ours_p99_us'] / row['ort_p99_us']:.2f}",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
