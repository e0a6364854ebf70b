#!/usr/bin/env bash
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
B=.devbuild
for cfg in "VKMIX_KVQ_TILE=128 VKMIX_KVQ_SPLITS=256" "VKMIX_KVQ_TILE=64 VKMIX_KVQ_SPLITS=512" "VKMIX_KVQ_WG=128 VKMIX_KVQ_TILE=128 VKMIX_KVQ_SPLITS=256"; do
  echo "== $cfg"; env $cfg timeout 60 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv k2v2 -d 32768 --attn -r 5 2>&1 | grep -E "k2v2|rror" | tail -1
done
