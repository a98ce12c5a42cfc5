#!/usr/bin/env python3
"""Training and batch prediction over thread counts: ours beside PyTorch (training) and ONNX Runtime (batch
prediction) at the same thread count, measured back to back, with the parallel efficiency of each.

    python3 Benchmarks/peers/scaling.py --onnx seed.onnx [--threads 1,2,4,8,16] [--bench "CMD"] [--json out.json] [--ours-only]

--bench is how to start fclf-bench (default: the release build; on a machine without the Swift toolchain, a
carried loader and library path, see scripts/device-scaling.sh). Each of our items carries a digest of its
results; the script fails if a digest differs between thread counts, since results must not depend on them."""
import argparse
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import peers  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def ours(cmd, threads):
    out = subprocess.run([*cmd, "scaling", "--threads", str(threads)], capture_output=True, text=True, check=True)
    sys.stderr.write(out.stderr)
    return {d["item"]: d for d in map(json.loads, out.stdout.splitlines())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2,4,8,16")
    ap.add_argument("--bench", default=os.path.join(ROOT, "Benchmarks", ".build", "release", "fclf-bench"))
    ap.add_argument("--onnx", required=True, help="the seed CNN exported by fclf-export --onnx")
    ap.add_argument("--json")
    ap.add_argument("--ours-only", action="store_true", help="leave out the peers (an A/B of two of our builds)")
    args = ap.parse_args()
    cmd = shlex.split(args.bench)
    counts = [int(t) for t in args.threads.split(",") if int(t) <= (os.cpu_count() or 1)]
    rows = {}  # (item, column) -> {threads: value}
    digests = {}
    for t in counts:
        print(f"{t} threads", file=sys.stderr, flush=True)
        o = ours(cmd, t)
        peers.THREADS = t
        for batch in (32, 128):
            item = f"train cnn b{batch}"
            rows.setdefault((item, "ours"), {})[t] = o[item]["images_per_second"]
            if not args.ours_only:
                rows.setdefault((item, "PyTorch"), {})[t] = peers.torch_train("cnn", batch)["images_per_second"]
            digests.setdefault(item, set()).add(o[item]["digest"])
        item = next(k for k in o if k.startswith("predict batch"))
        rows.setdefault(("predict 10,000 images", "ours"), {})[t] = o[item]["images_per_second"]
        if not args.ours_only:
            rows.setdefault(("predict 10,000 images", "ONNX Runtime"), {})[t] = peers.ort_predict(args.onnx, singles=0)["images_per_second"]
        digests.setdefault(item, set()).add(o[item]["digest"])

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    print(f"\n{cpu}, {os.cpu_count()} logical CPUs; {o['machine'].get('blocking', '')}; isa {o['machine'].get('isa', '')}")
    print("images/s by thread count (parallel efficiency = rate(T) / (T x rate(1)) in brackets)\n")
    print(f"{'item':24} {'column':14} " + " ".join(f"{t:>16}" for t in counts))
    for (item, col), by in rows.items():
        base = by.get(counts[0])
        cells = []
        for t in counts:
            eff = by[t] / (t / counts[0] * base) if base else 0
            cells.append(f"{by[t]:9.0f} ({eff:.2f})")
        print(f"{item:24} {col:14} " + " ".join(f"{c:>16}" for c in cells))
    print("\nours / peer at each thread count:")
    for item in {i for i, _ in rows} if not args.ours_only else []:
        peer = next(c for i, c in rows if i == item and c != "ours")
        r = [rows[(item, "ours")][t] / rows[(item, peer)][t] for t in counts]
        print(f"{item:24} vs {peer:12} " + " ".join(f"{x:>8.2f}" for x in r))
    same = all(len(d) == 1 for d in digests.values())
    print("\nresults independent of the thread count: " + ("yes, every digest equal" if same else f"NO: {digests}"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu, "threads": counts, "rows": [{"item": i, "column": c, "images_per_second": by}
                                                               for (i, c), by in rows.items()],
                       "digests": {k: sorted(v) for k, v in digests.items()}}, f, indent=1)
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
