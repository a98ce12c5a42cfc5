#!/usr/bin/env bash
# Runs the test suite (swift test, which also builds and runs the C API test program and fclf-classify)
# under sanitizers, each in a build folder of its own:
#   scripts/sanitize.sh [asan|tsan|all]      (default all)
#   asan  .build-asan: Swift with AddressSanitizer, C with ASan + UndefinedBehaviorSanitizer; the C programs
#         are built with clang -fsanitize=address,undefined (a plain cc cannot link against the ASan library)
#   tsan  .build-tsan: Swift and C with ThreadSanitizer, the target_clones disabled (FCLF_NO_CLONES: their
#         ifunc resolvers run before TSan is initialised), OpenMP through LLVM's Archer (without it TSan
#         reports OpenMP's fork/join as races)
# The tests that run fclf-train and load libfashionclf.so get the sanitized builds' (FCLF_BIN_DIR, FCLF_LIB_DIR),
# not a plain build's, which a fresh clone does not even have. Any report fails the run. --disable-xctest: the tests are Swift Testing's, and XCTest's empty run leaks 144
# bytes inside libXCTest.so, which LeakSanitizer reports. The Python ctypes example is skipped: an uninstrumented python3 cannot load a
# sanitized library (the C test program drives the same calls).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
what=${1:-all}
case $what in
    asan | tsan | all) ;;
    *) echo "usage: scripts/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;;
esac
# Swift's crash backtracer reads the dead process's memory, which the sanitizers report, and then hangs.
export SWIFT_BACKTRACE=enable=no

run_asan() {
    local flags=(--scratch-path .build-asan --sanitize=address
                 -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
                 -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined)
    swift build "${flags[@]}"
    # detect_leaks=1: a leak in our C code or the C API's handles is a bug (the Swift runtime's caches stay
    # reachable and are not reported). max_allocation_size_mb: no test needs 1 GiB in one piece, and a
    # malloc that size is what a header trusted too early asks for (swift traps on it rather than failing).
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:max_allocation_size_mb=1024:allocator_may_return_null=0 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    FCLF_LIB_DIR="$root/.build-asan/debug" FCLF_BIN_DIR="$root/.build-asan/debug" FCLF_CC="clang -fsanitize=address,undefined" \
        swift test "${flags[@]}" --disable-xctest --skip pythonExample
}

run_tsan() {
    local archer=${FCLF_ARCHER:-/usr/lib/llvm-14/lib/libarcher.so}  # Debian libomp-14-dev
    [ -f "$archer" ] || { echo "sanitize.sh: $archer not found (Debian libomp-14-dev; or set FCLF_ARCHER)" >&2; exit 1; }
    local flags=(--scratch-path .build-tsan --sanitize=thread -Xcc -DFCLF_NO_CLONES)
    swift build "${flags[@]}"
    # clang's static TSan runtime intercepts libdispatch: the C programs link the toolchain's libdispatch too.
    local swiftlib
    swiftlib=$(dirname "$(command -v swift)")/../lib/swift/linux
    OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS=halt_on_error=1:ignore_noninstrumented_modules=1 \
    FCLF_LIB_DIR="$root/.build-tsan/debug" FCLF_BIN_DIR="$root/.build-tsan/debug" \
    FCLF_CC="clang -fsanitize=thread -L$swiftlib -Wl,-rpath,$swiftlib -ldispatch -lBlocksRuntime" \
        swift test "${flags[@]}" --disable-xctest --skip pythonExample
}

for s in asan tsan; do
    if [ "$what" = all ] || [ "$what" = $s ]; then
        start=$SECONDS
        "run_$s"
        echo "sanitize.sh: $s clean in $((SECONDS - start)) s"
    fi
done
