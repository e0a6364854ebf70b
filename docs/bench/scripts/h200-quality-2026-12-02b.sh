#!/usr/bin/env bash
# Issue 11, second H200 call of 2026-12-02: the evidence-31M comparison only, cut to fit the
# session's last device-minutes (the first call, h200-quality-2026-12-02.sh, measured the speed
# and the story models; its evidence runs were cut off by their timeouts: 4 + 4 processes of
# 7 caches, 36 windows and 130 passkey trials each, ran at about 0.65 passes of 2048 tokens per
# second per process).
#   KL / PPL / top-1: every cache of plan.tsv (random layers: 2 seeds), 12 windows of 2048
#     tokens every 1024 (12,287 scored tokens per cache), 2 processes.
#   passkey: 20 caches, 65 trials (5 depths x 13) at 2040 prompt tokens, 8 processes; each runs
#     seed 1 (7 trials per depth) then seed 2 (6 per depth), so a timeout keeps the first half.
# Same layout and call as h200-quality-2026-12-02.sh, command `bash THIS`.
source docs/bench/scripts/h200-env.sh q
t0=$(date +%s)
BUDGET=${BUDGET:-530}
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
M=$B/shared/models/evidence-31M/evidence-31M-q8_0.gguf
PLAN=docs/bench/quality-2026-12-02/plan.tsv
pids=()
for t in test_kv_mikv test_kv_mixkvq; do
    ( timeout 300 $B/tests/$t > "$O/$t.txt" 2>&1; echo "rc=$?" >> "$O/$t.txt" ) & pids+=($!)
done
mapfile -t KL < <(grep -v '^#' $PLAN | cut -f3 | grep -v -e '^f16$' -e random3 -e random4)
for g in 0 1; do
    list=""
    for ((i = g; i < ${#KL[@]}; i += 2)); do list="$list${list:+,}${KL[$i]}"; done
    ( timeout $(( $(left) - 15 )) $B/vkmix-eval -m $M -f $B/text/evidence-heldout.txt --max-tokens 12288 -c 2048 \
        --stride 1024 --kv "$list" -o "$O/ev_kl_$g.json" > "$O/ev_kl_$g.txt" 2>&1; echo "rc=$?" >> "$O/ev_kl_$g.txt" ) &
    pids+=($!)
done
# passkey: every method at each budget, fewer alternates
mapfile -t NH < <(grep -v '^#' $PLAN | cut -f3 | grep -v -e '^f16$' -e random2 -e random3 -e random4 \
    -e '/kvmix.json:policy=mixkvq' -e 'k2v3:w=32' -e 'k4v2:w=32' -e 'frac=0.0625:hi=16' -e 'target-k3v2.json:policy=mixkvq')
for g in 0 1 2 3 4 5 6 7; do
    list=""
    for ((i = g; i < ${#NH[@]}; i += 8)); do list="$list${list:+,}${NH[$i]}"; done
    [ -z "$list" ] && continue
    ( for sd in 1 2; do
        tr=$([ $sd = 1 ] && echo 7 || echo 6)
        timeout $(( $(left) - 15 )) $B/vkmix-eval -m $M --haystack $B/shared/data/niah-haystack/PaulGrahamEssays -c 2048 \
            --niah-ctx 2040 --trials $tr --seed $sd --kv "$list" -o "$O/ev_niah_s${sd}_$g.json" > "$O/ev_niah_s${sd}_$g.txt" 2>&1
        echo "rc=$?" >> "$O/ev_niah_s${sd}_$g.txt"
      done ) & pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "total $(( $(date +%s) - t0 ))s"
for t in test_kv_mikv test_kv_mixkvq; do echo "$t: $(tail -2 "$O/$t.txt" | tr '\n' ' ')"; done
for f in "$O"/ev_*.txt; do echo "$(basename $f): $(tail -2 $f | tr '\n' ' ' | cut -c1-120)"; done
cd "${OUT:-/tmp/out}" && tar czf q.tgz q && rm -rf q
