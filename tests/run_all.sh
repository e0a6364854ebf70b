#!/usr/bin/env bash
# The whole test suite, as CI runs it: a -Werror build with its ctest suite on
# lavapipe with the Khronos validation layer on, then the same suite under
# ASan+UBSan, then a short libFuzzer run of every fuzz target (tests/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}

echo "== build (-Werror) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKMIX_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "${VKMIX_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build and test under ASan + UBSan"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVKMIX_SANITIZE=ON -DVKMIX_WERROR=ON >/dev/null
  cmake --build build-asan -j"$JOBS"
  # Leak checking is off: the Vulkan loader and Mesa keep process-lifetime allocations.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$JOBS"
fi

if [ "${VKMIX_SKIP_FUZZ:-0}" != 1 ] && [ -x tests/fuzz/run.sh ] && command -v clang >/dev/null; then
  # A fixed seed keeps CI reproducible (a time-bounded run of it explores a prefix of what a
  # longer local run with the same seed explored); `tests/fuzz/run.sh` alone explores anew.
  echo "== fuzz every input surface (${VKMIX_FUZZ_SECONDS:-45} s per target, seed ${VKMIX_FUZZ_SEED:-20261202})"
  VKMIX_FUZZ_SEED=${VKMIX_FUZZ_SEED:-20261202} tests/fuzz/run.sh "${VKMIX_FUZZ_SECONDS:-45}"
fi
echo "== all tests passed"
