#!/usr/bin/env bash
# The thread-scaling table (issue 15) on a machine without the Swift toolchain, such as the 16-core loan.
#
#   scripts/device-scaling.sh pack        # here: bundle fclf-bench, every library it loads (glibc's loader
#                                         # too, so the other machine's libraries never mix in), the seed
#                                         # CNN as ONNX and the test images into .devbundle/, and that into
#                                         # .devbundle.tar.xz (17 MB), the one path to carry
#   scripts/device-scaling.sh run OUTDIR [CPUS]  # there: lscpu, then Benchmarks/peers/scaling.py with the
#                                         # bundle, PyTorch and ONNX Runtime as that machine has them; with CPUS
#                                         # (a comma list) pinned to those CPUs, thread counts up to their number;
#                                         # FCLF_SCALING_THREADS=1,8 other counts, FCLF_OURS_ONLY=1 without the peers
#   scripts/device-scaling.sh machine OUTDIR  # there: fclf-bench all at 2 threads (GEMM against its OpenBLAS,
#                                         # training's % of its FMA peak)
#   scripts/device-scaling.sh topology OUTDIR  # there: the FMA peak by thread count and which CPUs share a
#                                         # core's FMA units (Benchmarks/peers/cpu_pairs.py)
#   scripts/device-scaling.sh profile OUTDIR [CPUS]  # there: a training step's profile (batch 128) at 1, 8 and 16
#                                         # threads, to see what stops the scaling
#   scripts/device-scaling.sh bench OUTDIR NAME ARGS...  # there: the bundled fclf-bench with ARGS (say: mc --threads
#                                         # 2), its lines in OUTDIR/NAME.jsonl and NAME.txt
set -euo pipefail
cd "$(dirname "$0")/.."
# FCLF_BUNDLE names another bundle (an older build packed beside this one, for an A/B in one call).
B=${FCLF_BUNDLE:-.devbundle}
LOADER="$PWD/$B/lib/ld-linux-x86-64.so.2 --library-path $PWD/$B/lib"
BENCH="$LOADER $PWD/$B/fclf-bench"
unpack() { [ -d "$B" ] || { mkdir -p "$B" && tar -xJf "$B.tar.xz" -C "$B"; }; }
# CPUS (a comma list) as an affinity for a command, with Python's call rather than taskset, which a bare
# machine may lack.
pin_to() { python3 -c 'import os, sys; os.sched_setaffinity(0, [int(c) for c in sys.argv[1].split(",")]); os.execvp(sys.argv[2], sys.argv[2:])' "$@"; }
# pin and n for an optional CPUS: the command prefix (empty without CPUS) and how many CPUs there are to use.
pinning() {
    pin=()
    n=$(nproc)
    if [ -n "${1:-}" ]; then pin=(pin_to "$1"); n=$(echo "$1" | tr ',' '\n' | wc -l); fi
}
case "${1:-}" in
pack)
    bench=Benchmarks/.build/release/fclf-bench
    export_=.build/release/fclf-export
    [ -x "$bench" ] || { echo "device-scaling: $bench is missing; run: swift build -c release --package-path Benchmarks --product fclf-bench" >&2; exit 1; }
    [ -x "$export_" ] || { echo "device-scaling: $export_ is missing; run: swift build -c release --product fclf-export" >&2; exit 1; }
    rm -rf "$B"; mkdir -p "$B/lib" "$B/data"
    cp "$bench" Benchmarks/.build/release/fclf-profile "$B/"
    ldd "$bench" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | while read -r lib; do cp -L "$lib" "$B/lib/"; done
    "$export_" Tests/FashionCLFTests/Fixtures/seed-cnn-dea59f8.fclf --onnx "$B/seed.onnx" >/dev/null
    cp /usr/share/datasets/fashion-mnist/t10k-*-ubyte.gz "$B/data/"
    tar -cJf "$B.tar.xz" -C "$B" .
    du -sh "$B" "$B.tar.xz"
    ;;
run)
    out=${2:?usage: scripts/device-scaling.sh run OUTDIR [CPUS]}
    cpus=${3:-}
    mkdir -p "$out"
    unpack
    lscpu > "$out/lscpu.txt"
    grep -E "^(Model name|Socket|Core|Thread|CPU\(s\)|L[123])" "$out/lscpu.txt" || true
    python3 -c "import torch, onnxruntime; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
    export FCLF_DATA=$PWD/$B/data
    pinning "$cpus"
    counts=1,2,4,8,16
    if [ -n "$cpus" ]; then
        counts=$( (for t in 1 2 4 8 16; do if [ "$t" -lt "$n" ]; then echo $t; fi; done; echo "$n") | paste -sd,)
        echo "pinned to CPUs $cpus: threads $counts"
    fi
    PYTHONUNBUFFERED=1 ${pin[@]+"${pin[@]}"} python3 Benchmarks/peers/scaling.py --onnx "$B/seed.onnx" --json "$out/scaling.json" \
        --threads "${FCLF_SCALING_THREADS:-$counts}" --bench "$BENCH" ${FCLF_OURS_ONLY:+--ours-only} 2> "$out/scaling.log" | tee "$out/scaling.txt"
    ;;
machine)
    out=${2:?usage: scripts/device-scaling.sh machine OUTDIR}
    mkdir -p "$out"
    unpack
    # OpenBLAS's AVX-512 kernels named, as compare.py does: a CPU model it does not know gets generic ones.
    OPENBLAS_CORETYPE=SkylakeX $BENCH all --threads 2 > "$out/all-t2.jsonl" 2> "$out/all-t2.txt"
    cat "$out/all-t2.txt"
    ;;
topology)
    out=${2:?usage: scripts/device-scaling.sh topology OUTDIR}
    mkdir -p "$out"
    unpack
    PYTHONUNBUFFERED=1 python3 Benchmarks/peers/cpu_pairs.py --bench "$BENCH" --json "$out/pairs.json" | tee "$out/pairs.txt"
    ;;
profile)
    out=${2:?usage: scripts/device-scaling.sh profile OUTDIR [CPUS]}
    mkdir -p "$out"
    unpack
    pinning "${3:-}"
    for t in 1 8 16; do
        [ "$t" -le "$n" ] || continue
        OMP_NUM_THREADS=$t ${pin[@]+"${pin[@]}"} $LOADER "$PWD/$B/fclf-profile" cnn 128 100 nogemm | tee -a "$out/profile.txt"
    done
    ;;
bench)
    out=${2:?usage: scripts/device-scaling.sh bench OUTDIR NAME ARGS...}
    name=${3:?usage: scripts/device-scaling.sh bench OUTDIR NAME ARGS...}
    shift 3
    mkdir -p "$out"
    unpack
    OPENBLAS_CORETYPE=SkylakeX $BENCH "$@" > "$out/$name.jsonl" 2> "$out/$name.txt"
    cat "$out/$name.txt"
    ;;
*) echo "usage: scripts/device-scaling.sh pack | run OUTDIR [CPUS] | machine OUTDIR | topology OUTDIR | profile OUTDIR [CPUS] | bench OUTDIR NAME ARGS..." >&2; exit 2 ;;
esac
