#!/usr/bin/env python3
"""Ours vs PyTorch eager, Keras and ONNX Runtime (and OpenBLAS for GEMM), measured alternately in one run.

    python3 -m venv .venv && .venv/bin/pip install -r Benchmarks/peers/requirements.txt
    swift build -c release --package-path Benchmarks --product fclf-bench
    .venv/bin/python Benchmarks/peers/compare.py [--rounds 3] [--json out.json]

Each round runs our fclf-bench (GEMM vs OpenBLAS in-process, training steps, prediction), then each peer,
back to back; the table gives per item the median over rounds of ours and theirs, and the ratio, so that
both sides of a ratio come from the same minutes of this shared machine. % of peak uses the FMA peak
fclf-bench measures at its start."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import peers  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "Benchmarks", ".build", "release", "fclf-bench")
# The seed CNN for the latency and batch items (the same architecture fclf-bench times when given no
# model), and the built-in model (the best preset's recipe 6) for its own items.
SEED_MODEL = os.path.join(ROOT, "Tests", "FashionCLFTests", "Fixtures", "seed-cnn-dea59f8.fclf")
BEST_MODEL = os.path.join(ROOT, "Sources", "CModelData", "builtin-model.fclf")
EXPORT = os.path.join(ROOT, ".build", "release", "fclf-export")  # swift build -c release --product fclf-export


def ours(mode, env=None, threads=2, extra=()):
    out = subprocess.run([BENCH, mode, "--threads", str(threads), *extra], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return {d["item"]: d for d in map(json.loads, out.stdout.splitlines())}


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--bench", help="another fclf-bench binary (an older build, for a before/after table)")
    ap.add_argument("--no-best", action="store_true", help="leave out the built-in model's items (a bench without --model)")
    args = ap.parse_args()
    global BENCH
    if args.bench:
        BENCH = os.path.abspath(args.bench)
    tmp = tempfile.mkdtemp()
    onnx_path, best_onnx = os.path.join(tmp, "seed.onnx"), os.path.join(tmp, "best.onnx")
    subprocess.run([EXPORT, SEED_MODEL, "--onnx", onnx_path], check=True, capture_output=True)
    subprocess.run([EXPORT, BEST_MODEL, "--onnx", best_onnx], check=True, capture_output=True)
    rows = {}  # item -> {column: [values per round]}
    train_flops = {}  # training item -> FLOPs per image (fclf-bench computes them from the architecture)

    def add(item, col, value):
        rows.setdefault(item, {}).setdefault(col, []).append(value)

    peak = []
    machine = ""
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        o = ours("all")
        blas512 = ours("gemm", {"OPENBLAS_CORETYPE": "SkylakeX"})
        o1 = ours("train", threads=1)
        peak.append(o["fma peak"]["gflops"])
        machine = o["machine"].get("blocking", "blocking not reported (an older fclf-bench)")
        for item, d in o.items():
            if item.startswith("gemm "):
                add(item, "ours", d["ours_gflops"])
                add(item, "OpenBLAS", d["openblas_gflops"])
                if item in blas512:
                    add(item, "OpenBLAS AVX-512", blas512[item]["openblas_gflops"])
                    add(item, "ours (2nd run)", blas512[item]["ours_gflops"])
        peer_models = (("cnn", 32), ("cnn", 128), ("mlp", 32))
        for model, batch in peer_models:
            item = f"train {model} b{batch}"
            add(item, "ours", o[item]["images_per_second"])
            add(item, "ours 1 thread", o1[item]["images_per_second"])
            add(item, "PyTorch", peers.torch_train(model, batch)["images_per_second"])
            add(item, "Keras", peers.keras_train(model, batch)["images_per_second"])
        for item, d in o.items():
            if not item.startswith("train "):
                continue
            # FLOPs per image: an older fclf-bench does not report them (its items were the seed CNN's sizes)
            train_flops[item] = d.get("flops_per_image", 0.45e6 if "mlp" in item else 15.4e6)
            if item not in {f"train {m} b{b}" for m, b in peer_models}:
                add(item, "ours", d["images_per_second"])  # the fast preset's network: ours only (its % of peak is the target)
        def add_predict(label, mine, theirs):
            """One model's latency and batch rows: ours (fclf-bench predict) beside ONNX Runtime's."""
            for q in ("p50", "p99"):
                add(f"{label}1 image {q} (us)", "ours", mine["predict 1 image"][f"{q}_us"])
                add(f"{label}1 image {q} (us)", "ONNX Runtime", theirs[f"{q}_us"])
            batch_item = next(k for k in mine if k.startswith("predict batch"))
            add(f"{label}10,000 images (img/s)", "ours", mine[batch_item]["images_per_second"])
            add(f"{label}10,000 images (img/s)", "ONNX Runtime", theirs["images_per_second"])

        ort = peers.ort_predict(onnx_path)
        add_predict("predict ", o, ort)
        add("ONNX export accuracy", "ONNX Runtime", ort["accuracy"])
        if not args.no_best:
            add_predict("best model ", ours("predict", extra=("--model", BEST_MODEL)), peers.ort_predict(best_onnx))

    p = med(peak)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
    print(f"\n{cpu}, {os.cpu_count()} logical CPUs; {machine}")
    print(f"FMA peak measured: {p:.1f} GFLOP/s on 2 threads; medians of {args.rounds} alternating rounds\n")
    print(f"{'item':40} {'column':18} {'value':>12} {'ratio ours/col':>15} {'% of peak':>10}")
    table = {}
    for item, cols in rows.items():
        ours_v = med(cols.get("ours", []))
        for col, vals in cols.items():
            v = med(vals)
            ratio = ""
            if col not in ("ours",) and ours_v and v and "ours" not in col:
                ratio = f"{(v / ours_v if 'us)' in item else ours_v / v):.2f}"
            pct = ""
            if item.startswith("gemm"):
                pct = f"{100 * v / p:.1f}"
            if item in train_flops:
                pct = f"{100 * v * train_flops[item] / 1e9 / p:.1f}"
            if item.startswith("predict 10,000"):
                pct = f"{100 * v * 5.26e6 / 1e9 / p:.1f}"
            print(f"{item:40} {col:18} {v:12.1f} {ratio:>15} {pct:>10}")
            table.setdefault(item, {})[col] = v
    print("\nratio: ours / theirs for throughput (higher is better), theirs / ours for latency (higher is better)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak_gflops": p, "rounds": args.rounds, "machine": machine, "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
