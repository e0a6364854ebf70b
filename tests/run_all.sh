#!/usr/bin/env bash
# The whole test suite, as CI runs it: a -Werror build with its ctest suite on
# lavapipe with the Khronos validation layer on, then the same suite under
# ASan+UBSan, then a short libFuzzer run of every fuzz target (tests/fuzz).
# After each ctest run: the tests skipped and why (tests/summary.py); the last line
# counts the tests run and skipped. Without ../shared (VKMIX_SHARED_DIR) only the
# tests that need its external models skip.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}

echo "== build (-Werror) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKMIX_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
# ctest_summary BUILD LABEL CTEST-ARGS...: ctest, then its summary; fails as ctest did
ctest_summary() {
  local dir=$1 label=$2 rc=0
  shift 2
  rm -f "$dir/ctest-junit.xml"
  ctest --test-dir "$dir" --output-on-failure -j"$JOBS" --output-junit ctest-junit.xml "$@" || rc=$?
  if [ -f "$dir/ctest-junit.xml" ] && command -v python3 >/dev/null; then
    python3 tests/summary.py "$dir/ctest-junit.xml" "$label" | tee "$dir/ctest-summary.txt" || true
  fi
  return $rc
}
ctest_summary build "tests (-Werror build)"

if [ "${VKMIX_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build and test under ASan + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVKMIX_SANITIZE=ON -DVKMIX_WERROR=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  # Leak checking is off: the Vulkan loader and Mesa keep process-lifetime allocations.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 ctest_summary build-asan "tests (ASan + UBSan)"
fi

if [ "${VKMIX_SKIP_FUZZ:-0}" != 1 ] && [ -x tests/fuzz/run.sh ] && command -v clang >/dev/null; then
  # A fixed seed keeps CI reproducible (a time-bounded run of it explores a prefix of what a
  # longer local run with the same seed explored); `tests/fuzz/run.sh` alone explores anew.
  echo "== fuzz every input surface (${VKMIX_FUZZ_SECONDS:-45} s per target, seed ${VKMIX_FUZZ_SEED:-20261202})"
  VKMIX_FUZZ_SEED=${VKMIX_FUZZ_SEED:-20261202} tests/fuzz/run.sh "${VKMIX_FUZZ_SECONDS:-45}"
fi
echo "== all tests passed"
# the last line: what ran and what was skipped (the -Werror build's suite)
if [ -f build/ctest-summary.txt ]; then tail -n 1 build/ctest-summary.txt; fi
