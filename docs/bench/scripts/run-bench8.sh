#!/usr/bin/env bash
# Device run 7/8: FP16 tokens split across workgroups, their loads 8 at a time.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
export VKMIX_SHARED_DIR=$PWD/.device-kit/shared VKMIX_BINARY_DIR=/tmp
B=build
for t in test_kv_cache test_model; do timeout 100 $B/tests/$t > $OUT/$t.log 2>&1; echo "$t rc=$?"; done
timeout 150 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2,k4v4 -d 32768 --attn -r 5 > $OUT/attn.md 2> $OUT/attn.err; tail -3 $OUT/attn.md; tail -2 $OUT/attn.err
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 0,32768 -n 32 -r 2 -o json > $OUT/e2e.json 2> $OUT/e2e.err
python3 -c "import json;d=json.load(open('$OUT/e2e.json'));[print(r['kv'],r['test'],r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -4; tail -2 $OUT/e2e.err
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 32768 -n 8 -b max -r 1 -o json > $OUT/capacity.json 2> $OUT/capacity.err
python3 -c "import json;d=json.load(open('$OUT/capacity.json'));[print(r['kv'],r['test'],'batch',r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -4; tail -2 $OUT/capacity.err
