#!/bin/sh
# Builds the libFuzzer target fuzz_gguf with clang and runs it for a bounded
# time on a scratch copy of the committed seed corpus (the corpus in git is
# not modified). Usage: tests/fuzz/run.sh [SECONDS] (default 60).
# Crash inputs are written to $BUILD/fuzz-artifacts/; exit status is non-zero
# when the fuzzer finds a problem.
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${VKMIX_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${VKMIX_FUZZ_BUILD_JOBS:-2}

CC=${CC:-clang} cmake -S "$root" -B "$build" -DVKMIX_FUZZ=ON -DVKMIX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_gguf -j "$jobs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp "$root"/tests/fuzz/corpus/gguf/* "$work"/
mkdir -p "$build/fuzz-artifacts"
"$build/tests/fuzz/fuzz_gguf" \
    -max_total_time="$secs" \
    -max_len=8192 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -dict="$root/tests/fuzz/gguf.dict" \
    -artifact_prefix="$build/fuzz-artifacts/" \
    "$work"
