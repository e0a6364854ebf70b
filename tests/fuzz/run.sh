#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a bounded time on a
# scratch copy of its committed seeds (tests/fuzz/corpus/<target>) and
# regression inputs (tests/fuzz/regress/<target>); git's copies are not
# modified by the fuzzing itself.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET [TARGET...]]    (default: 60, every target)
#
# VKMIX_FUZZ_SEED=N fixes libFuzzer's random seed: the same build then walks
# the same sequence of inputs, so a run is reproducible (tests/run_all.sh, as
# CI runs it, fixes one; without it every run explores new inputs).
#
# When a target crashes or breaks a contract, its input is copied to
# tests/fuzz/regress/<target>/ (commit it with the fix: test_fuzz_corpus
# replays it in every ctest run) and the exit status is non-zero after all
# targets ran. Artifacts also stay in $BUILD/fuzz-artifacts/<target>/.
set -eu
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-gguf model_meta tokenize kv_config session_state}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${VKMIX_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${VKMIX_FUZZ_BUILD_JOBS:-2}

CC=${CC:-clang} cmake -S "$root" -B "$build" -DVKMIX_FUZZ=ON -DVKMIX_BUILD_TESTS=OFF >/dev/null
set --
for t in $targets; do set -- "$@" "fuzz_$t"; done
cmake --build "$build" --target "$@" -j "$jobs" >/dev/null

failed=""
for t in $targets; do
  case $t in
    gguf)       max_len=8192;  dict=gguf.dict ;;
    model_meta) max_len=32768; dict=model_meta.dict ;;
    tokenize)   max_len=2048;  dict=tokenize.dict ;;
    kv_config)  max_len=4096;  dict=kv_config.dict ;;
    session_state) max_len=131072; dict= ;;
    *)          max_len=4096;  dict= ;;
  esac
  work=$(mktemp -d)
  cp "$root/tests/fuzz/corpus/$t/"* "$work/"
  if [ -d "$root/tests/fuzz/regress/$t" ]; then cp "$root/tests/fuzz/regress/$t/"* "$work/" 2>/dev/null || true; fi
  art="$build/fuzz-artifacts/$t"
  rm -rf "$art"
  mkdir -p "$art"
  echo "== fuzz $t for ${secs}s"
  # the Vulkan loader and Mesa keep process-lifetime allocations: no leak checks with a device,
  # neither libFuzzer's per input (-detect_leaks) nor LeakSanitizer's at exit (ASAN_OPTIONS; a CI
  # run of 2026-12-02 failed on 128 bytes realloc'ed by llvmpipe's JIT-compiled code, reported at
  # exit after 34,904 clean inputs)
  leaks=1
  [ "$t" = session_state ] && leaks=0
  rc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=$leaks" \
  "$build/tests/fuzz/fuzz_$t" -detect_leaks=$leaks \
      -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 ${VKMIX_FUZZ_SEED:+-seed="$VKMIX_FUZZ_SEED"} ${dict:+-dict="$root/tests/fuzz/$dict"} \
      -artifact_prefix="$art/" "$work" 2>"$build/fuzz-$t.log" || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ *DONE)" "$build/fuzz-$t.log" || true
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$build/fuzz-$t.log"
    mkdir -p "$root/tests/fuzz/regress/$t"
    for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
      [ -f "$f" ] && cp "$f" "$root/tests/fuzz/regress/$t/" && echo "regression input: tests/fuzz/regress/$t/$(basename "$f")"
    done
    failed="$failed $t"
  fi
done
if [ -n "$failed" ]; then
  echo "fuzzing found problems in:$failed (inputs copied to tests/fuzz/regress/)"
  exit 1
fi
echo "== fuzzing: no problem found"
