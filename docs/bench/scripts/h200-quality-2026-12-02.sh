#!/usr/bin/env bash
# Issue 11 on the H200 (one call): the cache policies' decode speed at 32k (Llama-3-8B
# shape, random Q4_0 weights) against the per-layer cache of the same effective bits,
# the policies' tests on the GPU, and the quality comparison of docs/QUALITY.md
# ("The three papers compared"): evidence-31M at 2048 tokens, every method of
# docs/bench/quality-2026-12-02/plan.tsv, KL / PPL / top-1 on held-out book text and the
# passkey test; and the two story models.
# Layout (built on the CPU machine, carried with the device tool):
#   .devbuild/{vkmix-eval,vkmix-bench,tests/test_kv_*,lib/libcjson.so.1,shared/...,text/...}
#   .device-kit/ (cp -r ../shared/device .device-kit)
# Call: device run, carry [".devbuild", ".device-kit"], command
#   `bash docs/bench/scripts/h200-quality-2026-12-02.sh`.
# The bench runs alone first (timings); then the tests and the evaluations run side by
# side (correctness and quality only: the model is small and its steps are short, so
# several processes keep the GPU busy). Every step has a timeout.
source docs/bench/scripts/h200-env.sh q
t0=$(date +%s)
BUDGET=${BUDGET:-540}
left() { echo $(( BUDGET - ($(date +%s) - t0) )); }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,memory.total --format=csv > "$O/gpu.txt" 2>&1

# 1. speed at 32k (alone on the GPU)
A="$B/vkmix-bench --synthetic llama3-8b --wtype q4_0"
KV=f16,k2v2,k3v2,k2v3,k2v2:policy=mikv:frac=0.0625,k2v2:policy=mixkvq:kbits=3
s=$(date +%s); timeout 100 $A --kv $KV -d 32768 --attn -r 5 -o json > "$O/speed_attn.txt" 2>&1
echo "== speed_attn rc=$? $(( $(date +%s) - s ))s"
s=$(date +%s); timeout 130 $A --kv $KV -d 32768 -n 32 -r 2 -o json > "$O/speed_tg.txt" 2>&1
echo "== speed_tg rc=$? $(( $(date +%s) - s ))s"

# 2. tests and evaluations side by side
pids=()
for t in test_kv_mikv test_kv_mixkvq test_kv_cache; do
    ( timeout 200 $B/tests/$t > "$O/$t.txt" 2>&1; echo "rc=$?" >> "$O/$t.txt" ) & pids+=($!)
done
M=$B/shared/models/evidence-31M/evidence-31M-q8_0.gguf
PLAN=docs/bench/quality-2026-12-02/plan.tsv
mapfile -t SPECS < <(grep -v '^#' $PLAN | cut -f3 | grep -v '^f16$')
n=${#SPECS[@]}
G=4   # processes per measure
for g in $(seq 0 $((G - 1))); do
    list=""
    for ((i = g; i < n; i += G)); do list="$list${list:+,}${SPECS[$i]}"; done
    T=$(( $(left) - 20 ))
    ( timeout $T $B/vkmix-eval -m $M -f $B/text/evidence-heldout.txt --max-tokens 36864 -c 2048 --stride 1024 \
        --kv "$list" -o "$O/ev_kl_$g.json" > "$O/ev_kl_$g.txt" 2>&1; echo "rc=$?" >> "$O/ev_kl_$g.txt" ) & pids+=($!)
    ( timeout $T $B/vkmix-eval -m $M --haystack $B/shared/data/niah-haystack/PaulGrahamEssays -c 2048 \
        --niah-ctx 2040 --trials 26 --seed 1 --kv "$list" -o "$O/ev_niah_$g.json" > "$O/ev_niah_$g.txt" 2>&1
      echo "rc=$?" >> "$O/ev_niah_$g.txt" ) & pids+=($!)
done
SKV=k2v2:w=32,k3v3:w=32,k4v4:w=32,k2v2:w=32:policy=mikv:frac=0.03125,k2v2:w=32:policy=mikv:frac=0.0625
SKV=$SKV,k2v2:w=32:policy=mikv:frac=0.125,k2v2:w=32:policy=mixkvq:kbits=2.5,k2v2:w=32:policy=mixkvq:kbits=3
SKV=$SKV,k2v2:w=32:policy=mixkvq:kbits=4
for N in stories260K tinystories-656k; do
    P=docs/bench/quality-2026-12-02/$N
    [ $N = stories260K ] && SM=$B/shared/models/stories260K/stories260K.gguf || SM=$B/shared/models/tinystories-656k/TinyStories-656K-Q8_0.gguf
    ( timeout $(( $(left) - 20 )) $B/vkmix-eval -m $SM -f $B/text/tinystories-heldout.txt --max-tokens 4096 -c 512 \
        --kv "$SKV,$P/kvmix.json,$P/target-kvmix.json,$P/target-k3v3.json" -o "$O/st_$N.json" > "$O/st_$N.txt" 2>&1
      echo "rc=$?" >> "$O/st_$N.txt" ) & pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
echo "total $(( $(date +%s) - t0 ))s"
for t in test_kv_mikv test_kv_mixkvq test_kv_cache; do
    echo "$t: $(grep -ciE 'fail' "$O/$t.txt") fail lines; $(tail -2 "$O/$t.txt" | tr '\n' ' ')"
done
for f in "$O"/ev_*.txt "$O"/st_*.txt; do echo "$(basename $f): $(tail -1 $f)"; done
python3 - "$O" <<'PY' 2>&1 | tail -30
import json, sys, os, glob
o = sys.argv[1]
for n in ('speed_attn', 'speed_tg'):
    try:
        t = open(os.path.join(o, n + '.txt')).read()
        d = json.loads(t[t.index('{'):t.rindex('}') + 1])
    except Exception as e:
        print(n, 'no json', e); continue
    for r in d.get('results', []):
        print(n, r.get('kv'), 'K', round(r.get('k_bits', 0), 2), 'V', round(r.get('v_bits', 0), 2),
              'us', round(r.get('us_per_layer', 0), 1), 'frac', round(r.get('fraction_of_read', 0), 3),
              't/s', round(r.get('tokens_per_s', 0), 1), r.get('test'))
for f in sorted(glob.glob(os.path.join(o, 'ev_niah_*.json')))[:1]:
    d = json.load(open(f))
    print('niah f16', [c.get('niah_accuracy') for c in d['caches'] if c.get('reference')])
PY
cd "${OUT:-/tmp/out}" && tar czf q.tgz q && rm -rf q
