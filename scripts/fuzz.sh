#!/usr/bin/env bash
# Fuzzes fashionclf's parsers with libFuzzer (the harnesses are the package in Fuzz/):
#   scripts/fuzz.sh [model|model-crc|idx|photo|checkpoint|all] [SECONDS per target, default 60]
#   model      ModelFile.decode + Classifier on arbitrary bytes (mostly stops at the CRC-32)
#   model-crc  the same, with a mutator that rewrites the CRC-32 after each mutation
#   idx        IDX.load(images:labels:) on gzip or plain files
#   photo      Photo.load (JPEG, PNG, EXIF) + Preprocessor.prepare
#   checkpoint Checkpoint.decode (training checkpoints, versions 1 and 2), with the CRC-32-rewriting mutator
# Built with ASan, UBSan (C, fatal) and libFuzzer coverage in .build-fuzz/. The seed corpora are written by the
# harnesses themselves (project code: ModelFile.encode, the IDX and photo writers, TrainingRun) into .build-fuzz/work/seeds/,
# plus the regression inputs of Tests/FashionCLFTests/Fixtures/fuzz/<target>/. The growing corpus, logs and
# findings (crash-*, oom-*, timeout-*, leak-*) stay in .build-fuzz/work/. A finding stops that target and
# makes the script exit 1; reproduce with .build-fuzz/release/fuzz-<target> FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
seconds=${2:-60}
case $what in
    all) targets=(model model-crc idx photo checkpoint) ;;
    model | model-crc | idx | photo | checkpoint) targets=("$what") ;;
    *) echo "usage: scripts/fuzz.sh [model|model-crc|idx|photo|checkpoint|all] [SECONDS]" >&2; exit 2 ;;
esac

scratch=.build-fuzz
# -sanitize=fuzzer: libFuzzer and coverage in the Swift code; fuzzer-no-link: coverage in the C code (kernels,
# image decoding). UBSan is C-only (swiftc has no -sanitize=undefined); Swift traps on overflow by itself.
# lld: gold crashes (internal error in format_file_lineno) linking these executables.
swift build --package-path Fuzz -c release --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address \
    -Xcc -fsanitize=fuzzer-no-link,address,undefined -Xcc -fno-sanitize-recover=undefined \
    -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined \
    -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld 2>&1 | grep -v "Cannot export local symbol '__asan_extra_spill_area'"
bin=$scratch/release
work=$scratch/work

# A finding is a crash, an ASan/UBSan report, a Swift trap, a timeout, an allocation over -rss_limit_mb
# (libFuzzer's malloc limit defaults to it) or a leak.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Swift's own crash backtracer reads the dead process's memory, which ASan reports, and then hangs: the
# sanitizers' and libFuzzer's reports are the ones wanted.
export SWIFT_BACKTRACE=enable=no
common=(-rss_limit_mb=2048 -print_final_stats=1 -max_total_time="$seconds")
status=0
for t in "${targets[@]}"; do
    case $t in
        # A model file's size is fixed by its parameter count: 8 KB allows networks of ~2,000 parameters.
        model | model-crc) opts=(-max_len=8192 -timeout=10 -use_value_profile=1) ;;
        # An images file of 28x28 images and its labels, gzip or plain (one plain image is 800 bytes).
        idx) opts=(-max_len=8192 -timeout=10 -use_value_profile=1) ;;
        # Small photos (the seeds are examples/photos scaled to 24 pixels: a 400x400 photo takes ~0.3 s to decode
        # and prepare in this build). A few bytes may claim up to the default limit of 64 million pixels, but
        # 16 KB cannot hold the data of that many, so a slow input is a bug (e.g. decoding on after corrupt data).
        photo) opts=(-max_len=16384 -timeout=10) ;;
        # The seeds are real runs' checkpoints of the MLP (109,386 parameters: 1.3-2.2 MB with Adam's moments, the
        # kept epoch or the f64 average) and the same with every tensor cut to two values (~1 KB); 3 MB covers them.
        # No value profile: on MB-size inputs it kept hundreds of near-copies (300 MB of corpus, 680 MB RSS in 30 s).
        checkpoint) opts=(-max_len=3145728 -timeout=10) ;;
    esac
    seeds=$work/seeds/$t corpus=$work/corpus/$t artifacts=$work/artifacts/$t
    rm -rf "$seeds"
    mkdir -p "$corpus" "$artifacts" "$work/logs" "$work/seeds"
    FCLF_FUZZ_SEEDS=$seeds FCLF_FUZZ_PHOTOS=examples/photos "$bin/fuzz-$t"
    regressions=Tests/FashionCLFTests/Fixtures/fuzz/${t%-crc}
    if [ -d "$regressions" ]; then cp "$regressions"/* "$seeds/"; fi
    log=$work/logs/$t.log
    echo "== fuzz-$t for ${seconds}s (log: $log)"
    rc=0
    "$bin/fuzz-$t" "${common[@]}" "${opts[@]}" -artifact_prefix="$artifacts/" "$corpus" "$seeds" > "$log" 2>&1 || rc=$?
    # The last coverage line and the executions.
    grep -E '^#[0-9]+' "$log" | tail -1 || true
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$log" | tr '\n' ' ' || true
    echo
    if [ $rc -ne 0 ]; then
        echo "fuzz-$t: FINDING (exit $rc):"
        grep -E 'ERROR|SUMMARY|Fatal error|runtime error|Test unit written' "$log" | head -8
        status=1
    fi
done
exit $status
