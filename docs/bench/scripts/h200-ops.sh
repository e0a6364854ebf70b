#!/usr/bin/env bash
# H200 run of the "ops" work (issue 10): correctness of the product kernels on
# the GPU, then the weight products per type against the read kernel, batched
# decode, the prefill product on the matrix units, and a sweep of kernel shapes.
# Usage (device tool, carry [".device-kit", "build"]): bash docs/bench/scripts/h200-ops.sh
# B=<build folder> to use another one. Outputs land in $OUT (or ./out-ops).
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
B=${B:-build}
OUT=${OUT:-out-ops}
mkdir -p "$OUT"
$B/vkmix-bench --list-devices > "$OUT/devices.txt" 2>&1
# 1. correctness: every op against its CPU reference on the GPU (integer dot
#    products native and emulated, 1..16 tokens, repacked layouts; the
#    cooperative-matrix prefill kernel where the device has it, the scalar one
#    forced with VKMIX_MATMUL=scalar). Each must end with "all checks passed".
$B/tests/test_ops > "$OUT/test_ops.txt" 2>&1; echo "test_ops rc=$?"; tail -2 "$OUT/test_ops.txt"
VKMIX_VALIDATION=1 $B/tests/test_ops > "$OUT/test_ops_validation.txt" 2>&1; echo "test_ops (validation) rc=$?"; tail -1 "$OUT/test_ops_validation.txt"
VKMIX_MATMUL=scalar $B/tests/test_ops > "$OUT/test_ops_scalar.txt" 2>&1; echo "test_ops (scalar prefill) rc=$?"; tail -1 "$OUT/test_ops_scalar.txt"
VKMIX_MATMUL=coopmat $B/tests/test_ops > "$OUT/test_ops_coopmat.txt" 2>&1; echo "test_ops (cooperative matrix forced) rc=$?"; tail -1 "$OUT/test_ops_coopmat.txt"
# 2. weight products: every type at the four Llama-3-8B shapes, GB/s and the
#    fraction of the read kernel measured in the same run (table and JSON)
$B/vkmix-bench matvec -r 30 | tee "$OUT/matvec.md"
$B/vkmix-bench matvec -r 30 -o json > "$OUT/matvec.json" 2>&1
# 3. batched decode: 1..16 tokens at once (each weight read once for all)
$B/vkmix-bench matvec -r 30 --wtype q4_0,q8_0,q4_k,f16 --shapes 14336x4096 --tokens 1,2,4,8,16 | tee "$OUT/matvec-tokens.md"
# 4. prefill products, 512 tokens: cooperative matrix, then the scalar kernel (TFLOP/s column)
$B/vkmix-bench matvec -r 10 --wtype q4_0,q8_0,q4_k,q6_k,f16 --shapes 4096x4096,14336x4096,4096x14336 --tokens 512 --coopmat | tee "$OUT/matmul-coopmat.md"
$B/vkmix-bench matvec -r 5 --wtype q4_0,f16 --shapes 14336x4096 --tokens 512 --scalar | tee "$OUT/matmul-scalar.md"
# 5. kernel shapes: 4 workgroup sizes x 4 rows per workgroup x 2 unrolls per
#    type and shape (the per-configuration figures go to stderr)
$B/vkmix-bench matvec -r 20 --sweep --shapes 4096x4096,14336x4096,4096x14336 > "$OUT/matvec-sweep.md" 2> "$OUT/matvec-sweep.txt"
cat "$OUT/matvec-sweep.md"
