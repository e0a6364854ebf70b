#!/usr/bin/env bash
# Device run 6: pass loops issue 8 loads at a time.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
B=build
timeout 100 $B/tests/test_kv_cache > $OUT/test_kv_cache.log 2>&1; echo "test_kv_cache rc=$?"
timeout 150 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv k2v2,k4v4 -d 32768 --attn -r 5 > $OUT/attn.md 2> $OUT/attn.err; tail -2 $OUT/attn.md; tail -2 $OUT/attn.err
VKMIX_KVQ_SPLITS=128 VKMIX_KVQ_WG=128 VKMIX_KVQ_TILE=256 timeout 100 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv k2v2 -d 32768 --attn -r 5 2>&1 | grep k2v2
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv k2v2 -d 32768 -n 32 -r 2 2>&1 | grep tg32
