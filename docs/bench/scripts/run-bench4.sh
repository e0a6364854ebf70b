#!/usr/bin/env bash
# Device run 4: attention with the new reduction, e2e decode, capacity at 32k, kernels with warm-up.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
export VKMIX_SHARED_DIR=$PWD/.device-kit/shared VKMIX_BINARY_DIR=/tmp
B=build
for t in test_kv_cache test_ops test_model; do timeout 100 $B/tests/$t > $OUT/$t.txt 2>&1; echo "$t rc=$?"; done
timeout 150 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2,k4v4 -d 32768 --attn -r 5 > $OUT/attn.md 2> $OUT/attn.err; tail -4 $OUT/attn.md; tail -2 $OUT/attn.err
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 0,32768 -n 32 -r 2 -o json > $OUT/e2e.json 2> $OUT/e2e.err
python3 -c "import json;d=json.load(open('$OUT/e2e.json'));[print(r['kv'],r['test'],r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -6; tail -2 $OUT/e2e.err
timeout 150 $B/vkmix-bench kernels -r 20 --tokens 262144 --bits 2,4 > $OUT/kernels.md 2>&1; grep -E "copy|read|dequant" $OUT/kernels.md | head -8
timeout 120 $B/vkmix-bench matvec --wtype q4_0,f16 --rows 128256 --cols 4096 -r 20 > $OUT/matvec.md 2>&1; tail -2 $OUT/matvec.md
timeout 230 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 32768 -n 8 -b 1,max -r 1 -o json > $OUT/capacity.json 2> $OUT/capacity.err
python3 -c "import json;d=json.load(open('$OUT/capacity.json'));[print(r['kv'],r['test'],'batch',r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -6; tail -2 $OUT/capacity.err
