#!/bin/sh
# Soak test (not part of CI): generates many tokens with the tiny model and a
# quantized cache on lavapipe, through context resets and rewinds, and checks that host
# RSS and device memory stay flat (tests/soak/soak.c says how each is measured).
#
#   tests/soak/soak.sh [TOKENS [KV [N_CTX [EVERY]]]]      (defaults: 100000 k4v2:w=32:s=4 256 1000)
#
# Builds the library in $VKMIX_SOAK_BUILD (default build-soak, RelWithDebInfo),
# writes the samples to $VKMIX_SOAK_BUILD/soak.csv and the verdict to stderr;
# exit status 0 when both stayed flat. It takes long on a small machine: run it
# with nice, in the background. Model: $VKMIX_SOAK_MODEL (default the shipped
# assets/stories260K-f16.gguf).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${VKMIX_SOAK_BUILD:-$root/build-soak}
model=${VKMIX_SOAK_MODEL:-$root/assets/stories260K-f16.gguf}
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/share/vulkan/icd.d/lvp_icd.x86_64.json}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVKMIX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target vkmix -j "${JOBS:-2}" >/dev/null
${CC:-cc} -std=c11 -O2 -g -Wall -Wextra -I"$root/include" "$root/tests/soak/soak.c" \
    "$build/libvkmix.a" -lcjson -lm -ldl -lpthread -o "$build/soak"
"$build/soak" "$model" "$@" | tee "$build/soak.csv"
