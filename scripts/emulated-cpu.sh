#!/usr/bin/env bash
# Trains and classifies on a CPU this machine is not, under QEMU's user-mode emulator, and checks that the bits are
# those of the same kernel variant run natively:
#   scripts/emulated-cpu.sh [QEMU_CPU] [TRAIN_ITEMS]
#   QEMU_CPU     a QEMU CPU model (qemu-x86_64 -cpu help); default Haswell-noTSX: AVX2 and FMA, no AVX-512.
#                Nehalem (SSE4.2, no AVX) runs the scalar variant.
#   TRAIN_ITEMS  how many of `fclf-bench train --quick`'s five digests to compare (default 5; 3 stops after the seed
#                CNN's two and the MLP's, skipping cnn3w-bn, the slowest under emulation).
#   FCLF_ISA     when set, both runs use that variant (e.g. scalar on an emulated Haswell: the portable kernels in
#                the x86-64-v3 copies of the cloned loops); otherwise the one the emulated CPU picks.
# Under emulation CPUID describes the emulated CPU, so everything that reads it takes that CPU's path: the kernels'
# variant (CKernels/dispatch.c), the target_clones of the small fused ops (FCLF_CLONES: x86-64-v3 or the baseline
# instead of this machine's v4) and the GEMM blocking (CPUID leaf 4, whose caches QEMU invents). The native run
# forces the same variant (FCLF_ISA); the emulated one gets the native run's blocking (FCLF_GEMM_BLOCKING), since K
# blocking changes a product's bits. Equal digests mean equal weights after the same steps, bit for bit; the photo
# check compares every class and probability fclf-classify prints for examples/photos with the built-in model.
# Needs qemu-user (apt-get install qemu-user; not part of CI) and the release builds (swift build -c release, and
# the same with --package-path Benchmarks). Slow: the emulator runs the kernels at about 0.5 GFLOP/s, so the seed
# CNN's digests take minutes and cnn3w-bn's about half an hour. Exit status 1 when anything differs.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=${1:-Haswell-noTSX}
items=${2:-5}
bench=Benchmarks/.build/x86_64-unknown-linux-gnu/release/fclf-bench
classify=.build/release/fclf-classify
command -v qemu-x86_64 > /dev/null || { echo "emulated-cpu: qemu-x86_64 not found; install it with: apt-get install qemu-user" >&2; exit 2; }
for exe in "$bench" "$classify"; do
    [[ -x $exe ]] || { echo "emulated-cpu: $exe is missing; build it: swift build -c release (and --package-path Benchmarks)" >&2; exit 2; }
done
emulate() { qemu-x86_64 -cpu "$cpu" "$@" 2> >(grep -v "TCG doesn't support" >&2); }
out=$(mktemp -d)
emulated=
trap 'if [[ -n $emulated ]]; then kill "$emulated" 2> /dev/null || true; fi; rm -rf "$out"' EXIT

# The variant the emulated CPU gets, from its own 'machine' line (or FCLF_ISA's); the native run then forces it.
emulate "$bench" peak --quick 2> /dev/null | head -1 > "$out/emulated-machine.json" || true
isa=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["isa"])' "$out/emulated-machine.json" 2> /dev/null) || {
    echo "emulated-cpu: fclf-bench did not start under qemu-x86_64 -cpu $cpu (see qemu-x86_64 -cpu help)" >&2
    exit 2
}
echo "emulated $cpu: variant $isa${FCLF_ISA:+ (FCLF_ISA)}"
export FCLF_ISA=$isa
"$bench" train --quick 2> /dev/null > "$out/native.jsonl"
blocking=$(python3 -c 'import json,sys; m=json.loads(open(sys.argv[1]).readline()); print("%d,%d,%d" % (m["mc"], m["kc"], m["nc"]))' "$out/native.jsonl")
echo "native, FCLF_ISA=$isa: blocking $blocking; emulated with FCLF_GEMM_BLOCKING=$blocking"

# fclf-bench prints one JSON line per item as it finishes: stop it after the first TRAIN_ITEMS digests (it would
# otherwise go on to the next item before a write ended it).
status=0
: > "$out/emulated-all.jsonl"
FCLF_GEMM_BLOCKING=$blocking qemu-x86_64 -cpu "$cpu" "$bench" train --quick > "$out/emulated-all.jsonl" 2> /dev/null &
emulated=$!
while kill -0 "$emulated" 2> /dev/null && [[ $(grep -c '"digest"' "$out/emulated-all.jsonl") -lt $items ]]; do sleep 2; done
kill "$emulated" 2> /dev/null || true
wait "$emulated" 2> /dev/null || true
emulated=
grep '"digest"' "$out/emulated-all.jsonl" | head -n "$items" > "$out/emulated.jsonl" || true
python3 - "$out/native.jsonl" "$out/emulated.jsonl" "$items" << 'EOF' || status=1
import json, sys
native = {d["item"]: d["digest"] for d in map(json.loads, open(sys.argv[1])) if "digest" in d}
emulated = [json.loads(line) for line in open(sys.argv[2])]
bad = 0
for d in emulated:
    same = native.get(d["item"]) == d["digest"]
    bad += not same
    print(f"{d['item']}: native {native.get(d['item'])}, emulated {d['digest']}: {'same' if same else 'DIFFERENT'}")
wanted = min(int(sys.argv[3]), len(native))
if len(emulated) < wanted:
    print(f"the emulated run stopped after {len(emulated)} of {wanted} digests"); bad = 1
sys.exit(1 if bad else 0)
EOF

"$classify" examples/photos --json "$out/native-photos.json" > /dev/null
FCLF_GEMM_BLOCKING=$blocking emulate "$classify" examples/photos --json "$out/emulated-photos.json" > /dev/null
python3 - "$out/native-photos.json" "$out/emulated-photos.json" << 'EOF' || status=1
import json, sys
a, b = (json.load(open(p))["results"] for p in sys.argv[1:3])
keys = lambda r: (r["file"], r["predicted_index"], r["probability"], r["unsure"], [(t["class"], t["probability"]) for t in r["top"]])
differ = [x["file"] for x, y in zip(a, b) if keys(x) != keys(y)] + (["(counts)"] if len(a) != len(b) else [])
print(f"examples/photos: {len(a)} photos, {len(a) - len(differ)} with the same classes and probabilities")
sys.exit(1 if differ else 0)
EOF
exit $status
