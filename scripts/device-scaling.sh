#!/usr/bin/env bash
# The thread-scaling table (issue 15) on a machine without the Swift toolchain, such as the 16-core loan.
#
#   scripts/device-scaling.sh pack        # here: bundle fclf-bench, every library it loads (glibc's loader
#                                         # too, so the other machine's libraries never mix in), the seed
#                                         # CNN as ONNX and the test images into .devbundle/, and that into
#                                         # .devbundle.tar.xz (17 MB), the one path to carry
#   scripts/device-scaling.sh run OUTDIR  # there: lscpu, then Benchmarks/peers/scaling.py with the bundle,
#                                         # PyTorch and ONNX Runtime as that machine has them
#   scripts/device-scaling.sh profile OUTDIR  # there: a training step's profile (batch 128) at 1, 8 and 16
#                                         # threads, to see what stops the scaling
set -euo pipefail
cd "$(dirname "$0")/.."
B=.devbundle
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
    out=${2:?usage: scripts/device-scaling.sh run OUTDIR}
    mkdir -p "$out"
    [ -d "$B" ] || { mkdir -p "$B" && tar -xJf "$B.tar.xz" -C "$B"; }
    lscpu > "$out/lscpu.txt"
    grep -E "^(Model name|Socket|Core|Thread|CPU\(s\)|L[123])" "$out/lscpu.txt" || true
    python3 -c "import torch, onnxruntime; print('torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
    export FCLF_DATA=$PWD/$B/data
    PYTHONUNBUFFERED=1 python3 Benchmarks/peers/scaling.py --onnx "$B/seed.onnx" --json "$out/scaling.json" \
        --bench "$PWD/$B/lib/ld-linux-x86-64.so.2 --library-path $PWD/$B/lib $PWD/$B/fclf-bench" 2> "$out/scaling.log" | tee "$out/scaling.txt"
    # That machine's own figures at 2 threads (GEMM against its OpenBLAS, training's % of its FMA peak).
    # OpenBLAS's AVX-512 kernels named, as compare.py does: a CPU model it does not know gets generic ones.
    OPENBLAS_CORETYPE=SkylakeX "$B/lib/ld-linux-x86-64.so.2" --library-path "$B/lib" "$B/fclf-bench" all --threads 2 > "$out/all-t2.jsonl" 2> "$out/all-t2.txt"
    cat "$out/all-t2.txt"
    ;;
profile)
    out=${2:?usage: scripts/device-scaling.sh profile OUTDIR}
    mkdir -p "$out"
    [ -d "$B" ] || { mkdir -p "$B" && tar -xJf "$B.tar.xz" -C "$B"; }
    for t in 1 8 16; do
        OMP_NUM_THREADS=$t "$B/lib/ld-linux-x86-64.so.2" --library-path "$B/lib" "$B/fclf-profile" cnn 128 100 nogemm | tee -a "$out/profile.txt"
    done
    ;;
*) echo "usage: scripts/device-scaling.sh pack | run OUTDIR | profile OUTDIR" >&2; exit 2 ;;
esac
