#!/usr/bin/env bash
# Issue 11, third H200 call of 2026-12-02 (the session's last device-minutes): the MiKV and
# MixKVQ decode attention with more splits per row (VKMIX_POLICY_SPLITS; 64 before, 512 now)
# at 32k, Llama-3-8B shape, then decode end to end, then the two policy tests on the GPU.
# Prediction (written before the run): both kernels ran 512 workgroups of 32-64 invocations
# (4 per SM) at 2-3% of the read ceiling, so they are latency bound; 8x the workgroups should
# give 3-5x: MixKVQ 648 -> 130-220 us per layer, MiKV 784 -> 160-260 us.
# Same layout and call as h200-quality-2026-12-02.sh.
source docs/bench/scripts/h200-env.sh s
A="$B/vkmix-bench --synthetic llama3-8b --wtype q4_0"
KV=k2v2,k2v2:policy=mikv:frac=0.0625,k2v2:policy=mixkvq:kbits=3
VKMIX_POLICY_SPLITS=64 timeout 50 $A --kv $KV -d 32768 --attn -r 5 -o json > "$O/attn_splits64.txt" 2>&1; echo "== 64 rc=$?"
timeout 50 $A --kv $KV -d 32768 --attn -r 5 -o json > "$O/attn_splits512.txt" 2>&1; echo "== 512 rc=$?"
timeout 60 $A --kv $KV -d 32768 -n 32 -r 2 -o json > "$O/tg.txt" 2>&1; echo "== tg rc=$?"
for t in test_kv_mikv test_kv_mixkvq; do
    ( timeout 100 $B/tests/$t > "$O/$t.txt" 2>&1; echo "rc=$?" >> "$O/$t.txt" ) &
done
wait
for t in test_kv_mikv test_kv_mixkvq; do echo "$t: $(tail -2 "$O/$t.txt" | tr '\n' ' ')"; done
grep -h "^vkmix-bench: llama" "$O"/attn_*.txt | cut -c1-170
grep -o '"kv": "[^"]*"[^}]*"test": "tg[^"]*"[^}]*"tokens_per_s": [0-9.]*' "$O/tg.txt" | sed 's/"k_bits.*"tokens_per_s"/ t\/s/'
cd "${OUT:-/tmp/out}" && tar czf s.tgz s && rm -rf s
