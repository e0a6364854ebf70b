#!/usr/bin/env bash
# Device run 3: the second fused attention design, copy shapes, matvec, end-to-end, capacity.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
export VKMIX_SHARED_DIR=$PWD/.device-kit/shared VKMIX_BINARY_DIR=/tmp
B=build
timeout 100 $B/tests/test_kv_cache > $OUT/test_kv_cache.txt 2>&1; echo "test_kv_cache rc=$?"; tail -1 $OUT/test_kv_cache.txt
timeout 100 $B/tests/test_model > $OUT/test_model.txt 2>&1; echo "test_model rc=$?"; tail -1 $OUT/test_model.txt
timeout 60 $B/vkmix-bench kernels -r 10 --bits 2 >/dev/null 2>&1   # warm-up
timeout 150 $B/vkmix-bench kernels -r 20 --tokens 262144 | tee $OUT/kernels.md | grep -E "copy|read|dequant" | head -12
timeout 120 $B/vkmix-bench matvec --wtype q4_0,f16 --rows 128256 --cols 4096 --mv-wg 64,128,256 --mv-rows 1,2,4 -r 10 | tee $OUT/matvec.md | sort -t'|' -k7 -n | tail -4
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2,k4v4 -d 32768 --attn -r 5 > $OUT/attn.md 2> $OUT/attn.err; tail -4 $OUT/attn.md; tail -2 $OUT/attn.err
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 0,32768 -n 32 -r 2 -o json > $OUT/e2e.json 2> $OUT/e2e.err
python3 -c "import json;d=json.load(open('$OUT/e2e.json'));[print(r['kv'],r['test'],r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -6; tail -2 $OUT/e2e.err
