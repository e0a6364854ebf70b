#!/usr/bin/env bash
# ctest install_consumer: `cmake --install` into a temporary prefix, then build
# examples/embed.c against the installed package twice, as an application would:
# with find_package(vkmix) (tests/install_consumer) and with pkg-config.
# usage: cli_install.sh BUILD_DIR SOURCE_DIR C_COMPILER SANITIZE(ON/OFF)
set -eu
BUILD=$1 SRC=$2 CC=$3 SAN=${4:-OFF}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PREFIX=$T/prefix
cmake --install "$BUILD" --prefix "$PREFIX" >"$T/install.log"
for f in include/vkmix.h lib/libvkmix.a lib/cmake/vkmix/vkmixConfig.cmake lib/cmake/vkmix/vkmixConfigVersion.cmake \
         lib/cmake/vkmix/vkmixTargets.cmake lib/pkgconfig/vkmix.pc bin/vkmix; do
  [ -f "$PREFIX/$f" ] || { echo "FAIL: $f was not installed"; cat "$T/install.log"; exit 1; }
done
# the installed package must not point back into the build or source tree
if grep -rqsF -e "$BUILD" -e "$SRC" "$PREFIX/lib/cmake" "$PREFIX/lib/pkgconfig"; then
  echo "FAIL: the installed package refers to the build or source tree:"
  grep -rnF -e "$BUILD" -e "$SRC" "$PREFIX/lib/cmake" "$PREFIX/lib/pkgconfig"
  exit 1
fi
# a library built with ASan/UBSan needs the same flags to link
SANFLAGS=""
[ "$SAN" = ON ] && SANFLAGS="-fsanitize=address,undefined"

# 1. CMake: find_package(vkmix) from the prefix
cmake -S "$SRC/tests/install_consumer" -B "$T/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_C_COMPILER="$CC" -DCMAKE_EXE_LINKER_FLAGS="$SANFLAGS" >"$T/configure.log" 2>&1 ||
  { echo "FAIL: configuring the consumer"; cat "$T/configure.log"; exit 1; }
cmake --build "$T/consumer" >"$T/build.log" 2>&1 || { echo "FAIL: building the consumer"; cat "$T/build.log"; exit 1; }
echo "find_package(vkmix): built $T/consumer/embed"

# 2. pkg-config
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --exists vkmix || { echo "FAIL: pkg-config cannot find vkmix"; exit 1; }
[ "$(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --modversion vkmix)" = "$(sed -n 's/^#define VKMIX_VERSION_STRING "\(.*\)"/\1/p' "$SRC/include/vkmix.h")" ] ||
  { echo "FAIL: vkmix.pc has the wrong version"; exit 1; }
# shellcheck disable=SC2046
"$CC" -std=c11 $SANFLAGS -o "$T/embed-pc" "$SRC/examples/embed.c" \
  $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs vkmix) ||
  { echo "FAIL: building embed.c with pkg-config"; exit 1; }
echo "pkg-config: built $T/embed-pc"

# 3. run the consumer when the test model is there
M=${VKMIX_SHARED_DIR:-../shared}/models/stories260K/stories260K.gguf
if [ -f "$M" ]; then
  out=$("$T/consumer/embed" "$M" "Once upon a time") || { echo "FAIL: the installed embed exited $?"; exit 1; }
  echo "$out"
  case "$out" in "Once upon a time"?*) ;; *) echo "FAIL: unexpected output"; exit 1 ;; esac
fi
echo "install: ok"
