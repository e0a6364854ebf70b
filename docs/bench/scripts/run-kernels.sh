#!/usr/bin/env bash
# Device run 1: capabilities, correctness of the KV kernels on the GPU, and the kernel benchmark.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
B=${B:-build}
vulkaninfo --summary > $OUT/vulkaninfo.txt 2>&1
nvidia-smi > $OUT/nvidia-smi.txt 2>&1
$B/tests/test_context > $OUT/test_context.txt 2>&1; echo "test_context rc=$?"
$B/tests/test_kvquant > $OUT/test_kvquant.txt 2>&1; echo "test_kvquant rc=$?"; tail -2 $OUT/test_kvquant.txt
# warm up, then measure
$B/vkmix-bench kernels -r 10 --bits 2 >/dev/null 2>&1
$B/vkmix-bench kernels -r 30 -o json > $OUT/kernels.json 2>&1
$B/vkmix-bench kernels -r 30 --tokens 262144 | tee $OUT/kernels.md
