#!/usr/bin/env bash
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
B=build
timeout 100 $B/tests/test_kv_cache > $OUT/t.txt 2>&1; echo "test_kv_cache rc=$?"
run() { echo "== $*"; env "$@" timeout 60 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv k2v2,k4v4 -d 32768 --attn -r 5 2>&1 | grep -E "k2v2|k4v4|error|failed" | tail -2; }
run VKMIX_KVQ_SPLITS=128
run VKMIX_KVQ_SPLITS=256 VKMIX_KVQ_WG=256 VKMIX_KVQ_TILE=128
timeout 150 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 32768 -n 32 -r 2 2>&1 | grep -E "tg32" 
