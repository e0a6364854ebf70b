#!/usr/bin/env bash
# Device run 2: correctness on the GPU, kernel figures, attention alone, end-to-end decode.
source .device-kit/vk-env.sh
export LD_LIBRARY_PATH=$PWD/.device-kit/lib:$LD_LIBRARY_PATH
export VKMIX_SHARED_DIR=$PWD/.device-kit/shared VKMIX_BINARY_DIR=/tmp
B=build
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,memory.used,memory.total --format=csv > $OUT/gpu.txt 2>&1
for t in test_kvquant test_kv_cache test_ops test_model; do
  timeout 120 $B/tests/$t > $OUT/$t.txt 2>&1; echo "$t rc=$?"; tail -1 $OUT/$t.txt
done
timeout 60 $B/vkmix-bench kernels -r 10 --bits 2 >/dev/null 2>&1   # warm-up
timeout 120 $B/vkmix-bench kernels -r 30 --tokens 262144 -o json > $OUT/kernels.json 2>&1
timeout 120 $B/vkmix-bench kernels -r 30 --tokens 262144 | tee $OUT/kernels.md | tail -14
timeout 200 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2,k4v4 -d 32768 --attn -r 5 -o json > $OUT/attn.json 2> $OUT/attn.err
python3 -c "import json;d=json.load(open('$OUT/attn.json'));[print(r['kv'],round(r['us_per_layer'],1),'us/layer',round(r['gbps']),'GB/s',round(r['ratio_vs_copy'],2),'of copy', r['check_rel_err']) for r in d['results']]" 2>&1 | tail -5; tail -3 $OUT/attn.err
timeout 240 $B/vkmix-bench --synthetic llama3-8b --wtype q4_0 --kv f16,k2v2 -d 0,32768 -n 32 -r 2 -o json > $OUT/e2e.json 2> $OUT/e2e.err
python3 -c "import json;d=json.load(open('$OUT/e2e.json'));[print(r['kv'],r['test'],r['batch'],round(r['tokens_per_s'],1),'t/s') for r in d['results']]" 2>&1 | tail -6; tail -3 $OUT/e2e.err
