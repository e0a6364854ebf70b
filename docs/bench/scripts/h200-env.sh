# Sourced by the H200 scripts beside it, on the GPU machine, from the repository root:
#   source docs/bench/scripts/h200-env.sh NAME
# The Vulkan loader kit (.device-kit, a copy of ../shared/device), the carried binaries and
# libraries (.devbuild), the tests' paths, and the output folder $O = $OUT/NAME.
set -u
root=$PWD
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$root/.devbuild/lib:$LD_LIBRARY_PATH
export VKMIX_SHARED_DIR=$root/.devbuild/shared VKMIX_SOURCE_DIR=$root VKMIX_BINARY_DIR=/tmp
B=$root/.devbuild
O=${OUT:-/tmp/out}/$1
mkdir -p "$O"
