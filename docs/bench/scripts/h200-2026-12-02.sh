#!/usr/bin/env bash
# The H200 run of 2026-12-02 (one call: the session had 10 device-minutes).
# Correctness on the GPU (test_ops, test_model), then decode attention for
# every kernel variant kept (v2, v2-f32, v1; the 2026-12-02 run named them v2 = FP32, v2-f16) at 32k and 131k, batched attention,
# the weight products against the read kernel, and the whole model end to end.
# Layout (built on the CPU machine, carried with the device tool):
#   .devbuild/{vkmix-bench,vkmix,tests/test_ops,tests/test_model,lib/libcjson.so.1,shared/models/...}
#   .device-kit/ (the Vulkan loader kit: cp -r ../shared/device .device-kit)
# Call: device run, carry [".devbuild", ".device-kit"], command `bash docs/bench/scripts/h200-2026-12-02.sh`.
# Every step has a timeout, and steps are skipped once BUDGET seconds have passed.
source docs/bench/scripts/h200-env.sh h200
BUDGET=${BUDGET:-420}
t0=$(date +%s)
step() {   # step NAME TIMEOUT CMD...: output to $O/NAME.txt, a status line on stdout
  local name=$1 to=$2; shift 2
  local el=$(( $(date +%s) - t0 ))
  if [ $(( el + 10 )) -gt "$BUDGET" ]; then echo "SKIP $name (at ${el}s)"; return; fi
  [ $(( el + to )) -gt "$BUDGET" ] && to=$(( BUDGET - el ))
  local s=$(date +%s)
  timeout "$to" "$@" > "$O/$name.txt" 2>&1
  local rc=$?
  echo "== $name rc=$rc $(( $(date +%s) - s ))s"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,memory.total --format=csv > "$O/gpu.txt" 2>&1
step devices 20 $B/vkmix-bench --list-devices
step test_ops 60 $B/tests/test_ops
grep -iE "fail|mismatch|error" "$O/test_ops.txt" | head -8; tail -1 "$O/test_ops.txt"
A="$B/vkmix-bench --synthetic llama3-8b --wtype q4_0"
step attn 110 $A --kv f16,k2v2,k4v4 -d 32768,131072 --attn --attn-variants v2,v2-f32,v1 -r 5 -o json
step attn_b16 45 $A --kv f16,k2v2 -d 32768 -b 16 --attn --attn-variants v2,v2-f32 -r 3 -o json
step attn_b16_split 45 env VKMIX_ATTN_SPLIT_BATCH=1 $A --kv f16,k2v2 -d 32768 -b 16 --attn --attn-variants v2,v2-f32 -r 3 -o json
step test_model 90 $B/tests/test_model
grep -iE "fail|mismatch" "$O/test_model.txt" | head -10; tail -1 "$O/test_model.txt"
step matvec 40 $B/vkmix-bench matvec -r 20 -o json
step matvec_tokens 30 $B/vkmix-bench matvec -r 20 --wtype q4_0,q8_0,f16 --shapes 14336x4096 --tokens 1,2,4,8,16 -o json
step matmul512 30 $B/vkmix-bench matvec -r 5 --wtype q4_0,q8_0,f16 --shapes 4096x4096,14336x4096 --tokens 512 --coopmat -o json
step matmul512_scalar 20 $B/vkmix-bench matvec -r 3 --wtype q4_0,f16 --shapes 14336x4096 --tokens 512 --scalar -o json
step e2e 110 $A --kv f16,k2v2 -d 0,32768 -p 512 -n 32 -r 2 -o json
echo "total $(( $(date +%s) - t0 ))s"
# short summaries (the full JSON is in $O)
python3 - "$O" <<'PY' 2>&1 | tail -60
import json, sys, os
o = sys.argv[1]
def load(n):
    try:
        t = open(os.path.join(o, n + '.txt')).read()
        return json.loads(t[t.index('{'):t.rindex('}') + 1])
    except Exception as e:
        return None
for n in ('attn', 'attn_b16', 'attn_b16_split'):
    d = load(n)
    if not d: print(n, 'no json'); continue
    for r in d.get('results', []):
        print(n, r.get('kv'), r.get('depth'), 'b', r.get('batch'), r.get('variant'), 'us', round(r.get('us_per_layer', 0), 1),
              'frac', round(r.get('fraction_of_read', 0), 3), 'read', r.get('read_gbps'), 'err', r.get('check_rel_err'))
for n in ('matvec', 'matvec_tokens', 'matmul512', 'matmul512_scalar', 'e2e'):
    d = load(n)
    if not d: print(n, 'no json'); continue
    if 'read_gbps' in d: print(n, 'read_gbps', d['read_gbps'])
    for r in d.get('results', [])[:40]:
        print(n, ' '.join('%s=%s' % (k, round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k in
                  ('wtype', 'rows', 'cols', 'tokens', 'time_us', 'ratio_vs_read', 'tflops', 'check_rel_err', 'kv', 'test', 'tokens_per_s', 'dispatches_per_token')))
PY
cd "${OUT:-/tmp/out}" && tar czf h200.tgz h200 && rm -rf h200
