#!/usr/bin/env bash
# ctest cli: the vkmix command line, end to end.
# usage: cli_test.sh path/to/vkmix [model.gguf]      (env: VKMIX_SHARED_DIR, VKMIX_VALIDATION=1 from ctest)
# Without $2 the model is ../shared's stories260K, or the shipped assets/stories260K-f16.gguf
# when ../shared is absent; skips (77) the checks that need a model only when $2 is missing.
set -u
VKMIX=$1
SHARED=${VKMIX_SHARED_DIR:-../shared}
# the model: $2, or stories260K
M=${2:-$SHARED/models/stories260K/stories260K.gguf}
if [ -z "${2:-}" ] && [ ! -f "$M" ] && [ -f "${VKMIX_SOURCE_DIR:-.}/assets/stories260K-f16.gguf" ]; then
  M=${VKMIX_SOURCE_DIR:-.}/assets/stories260K-f16.gguf
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# run NAME ARGS...: stdout -> $T/NAME.out, stderr -> $T/NAME.err, exit status -> $rc
run() {
  local name=$1; shift
  "$VKMIX" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null
  rc=$?
}
has() { grep -qF -- "$2" "$T/$1" || fail "$1 lacks '$2': $(head -c 600 "$T/$1")"; }

# ---- without a model -------------------------------------------------------------
run help --help
[ $rc = 0 ] || fail "--help exited $rc"
has help.out "--kv-profile"
for f in -ctk -ctv --cache-type-k -t --threads -fa --flash-attn -ngl --no-display-prompt -s, --kv-policy; do has help.out "$f"; done
run badflag --no-such-flag
[ $rc = 2 ] || fail "a bad flag exited $rc, want 2"
has badflag.err "unknown option '--no-such-flag'"
has badflag.err "usage:"
run badnum -n many
[ $rc = 2 ] || fail "-n many exited $rc, want 2"
has badnum.err "usage:"
run novalue -m
[ $rc = 2 ] || fail "-m without a value exited $rc, want 2"
run badtmpl --chat-template nope -i
[ $rc = 2 ] || fail "an unknown template exited $rc, want 2"
has badtmpl.err "chatml"
run missing -m "$T/no-such-model.gguf" -p hi
[ $rc != 0 ] || fail "a missing model exited 0"
has missing.err "cannot read model file"
has missing.err "no-such-model.gguf"
echo "not a gguf file" >"$T/bad.gguf"
run notgguf -m "$T/bad.gguf" -p hi
[ $rc != 0 ] || fail "a bad model file exited 0"
has notgguf.err "loading model"
run devices --list-devices
[ $rc = 0 ] || fail "--list-devices exited $rc"
has devices.out "0: "

if [ ! -f "$M" ]; then
  echo "skip the model checks: $M missing"
  [ $fails = 0 ] || exit 1
  exit 77
fi

# ---- one-shot generation ---------------------------------------------------------------
# GREEDY: the prompt and its 20-token greedy continuation by the fp32 CPU reference
# (src/ref_model.c) of each model; P: prompt tokens with BOS; KV: the f16 cache at the
# default context (min(training context, 4096)); ENDS: its greedy story from BOS ends with
# an end-of-generation token (stories260K starts the next story with BOS instead); CTXT: the
# training context; KVMEM: the k8v8 cache against f16 at -c 400 (vkmix_kv_memory_estimate).
case "$(basename "$M")" in
  stories260K.gguf|stories260K-f16.gguf)
    GREEDY="Once upon a time, there was a little girl named Lily. She loved to play outsid"
    P=5 NL=5 ENDS=0 KV="KV 1.25 MiB, K 16.00 / V 16.00 bits"
    CTXT=2048 KVMEM="takes 0.303 MiB at context 400, more than the f16 cache's 0.244 MiB" ;;
  TinyStories-656K-Q8_0.gguf)
    GREEDY="Once upon a time, a little girl named Lily lived in a small house. She loved to eat yummy food. One day, she saw a small bird on the ground. The bird was sad because "
    P=6 NL=2 ENDS=1 KV="KV 0.25 MiB, K 16.00 / V 16.00 bits"
    CTXT=512 KVMEM="takes 0.230 MiB at context 400, more than the f16 cache's 0.195 MiB" ;;
  *) echo "no reference text for $M"; exit 1 ;;
esac
run greedy -m "$M" -p "Once upon a time" -n 20 --greedy
[ $rc = 0 ] || fail "greedy exited $rc: $(cat "$T/greedy.err")"
[ "$(cat "$T/greedy.out")" = "$GREEDY" ] || fail "greedy text: got '$(cat "$T/greedy.out")', want '$GREEDY'"
has greedy.err "prompt $P tok"
has greedy.err "generated 20 tok"
has greedy.err "t/s"
has greedy.err "$KV"
run greedy2 -m "$M" -p "Once upon a time" -n 20 --temp 0
cmp -s "$T/greedy.out" "$T/greedy2.out" || fail "--temp 0 twice differs: $(cat "$T/greedy.out") / $(cat "$T/greedy2.out")"
run seed1 -m "$M" -p "Once upon a time" -n 24 --seed 42 --temp 1
run seed2 -m "$M" -p "Once upon a time" -n 24 --seed 42 --temp 1
[ $rc = 0 ] || fail "sampling exited $rc"
cmp -s "$T/seed1.out" "$T/seed2.out" || fail "--seed 42 twice differs"
run seed3 -m "$M" -p "Once upon a time" -n 24 --seed 43 --temp 1
cmp -s "$T/seed1.out" "$T/seed3.out" && fail "--seed 42 and --seed 43 give the same text"
# prompt chunks of one token give the same greedy text as one chunk
run batch1 -m "$M" -p "Once upon a time" -n 20 --greedy -b 1
cmp -s "$T/greedy.out" "$T/batch1.out" || fail "-b 1 differs from the default batch: $(cat "$T/batch1.out")"
run noecho -m "$M" -p "Once upon a time" -n 20 --greedy --no-echo
[ "Once upon a time$(cat "$T/noecho.out")" = "$(cat "$T/greedy.out")" ] || fail "--no-echo is not the continuation"
run zero -m "$M" -p "Once upon a time" -n 0
[ "$(cat "$T/zero.out")" = "Once upon a time" ] || fail "-n 0 generated: $(cat "$T/zero.out")"
# the prompt from standard input and from a file
"$VKMIX" -m "$M" -n 20 --greedy <<<"Once upon a time" >"$T/stdin.out" 2>"$T/stdin.err"
cmp -s "$T/greedy.out" "$T/stdin.out" || fail "a prompt on stdin differs from -p: $(cat "$T/stdin.out" "$T/stdin.err")"
echo "Once upon a time" >"$T/prompt.txt"
run file -m "$M" -f "$T/prompt.txt" -n 20 --greedy
cmp -s "$T/greedy.out" "$T/file.out" || fail "-f differs from -p: $(cat "$T/file.out")"
# the default model (VKMIX_MODEL)
VKMIX_MODEL=$M "$VKMIX" -p "Once upon a time" -n 20 --greedy >"$T/env.out" 2>"$T/env.err" </dev/null
cmp -s "$T/greedy.out" "$T/env.out" || fail "VKMIX_MODEL: $(cat "$T/env.err")"
# without -m and VKMIX_MODEL: assets/stories260K-f16.gguf of a checkout without ../shared
# (a copy of the program in $T/repo/build), or a clear error when there is no model at all
A=${VKMIX_SOURCE_DIR:-}/assets/stories260K-f16.gguf
if [ "$(basename "$M")" = stories260K.gguf ] || [ "$(basename "$M")" = stories260K-f16.gguf ] && [ -f "$A" ]; then
  mkdir -p "$T/repo/build" "$T/repo/assets" && cp "$VKMIX" "$T/repo/build/vkmix" && cp "$A" "$T/repo/assets/"
  (cd / && env -u VKMIX_MODEL "$T/repo/build/vkmix" -p "Once upon a time" -n 20 --greedy >"$T/assets.out" 2>"$T/assets.err")
  has assets.err "repo/assets/stories260K-f16.gguf"
  cmp -s "$T/greedy.out" "$T/assets.out" || fail "the f16 assets model: '$(cat "$T/assets.out")'"
  mkdir -p "$T/lonely" && cp "$VKMIX" "$T/lonely/vkmix"
  (cd "$T/lonely" && env -u VKMIX_MODEL ./vkmix -p hi >"$T/nomodel.out" 2>"$T/nomodel.err")
  [ $? = 1 ] || fail "no model at all did not exit 1"
  has nomodel.err "no model: pass -m"
fi
# a story from BOS (no prompt) ends at its end-of-story token
run story -m "$M" --greedy -c 400
[ $rc = 0 ] || fail "a story from BOS exited $rc"
if [ "$ENDS" = 1 ]; then
  grep -q "context is full" "$T/story.err" && fail "the greedy story did not end by itself within 400 tokens"
fi
run verbose -m "$M" -p "Once upon a time" -n 2 -v
has verbose.err "device: "
has verbose.err "model: "

# ---- the context -------------------------------------------------------------------
LONG="Once upon a time there was a little girl named Lily who loved to play in the park with her friends"
run long -m "$M" -c 16 -p "$LONG"
[ $rc != 0 ] || fail "a prompt longer than -c 16 exited 0"
has long.err "but the context holds 16"
run trunc -m "$M" -c 16 -n 4 --greedy --truncate -p "$LONG"
[ $rc = 0 ] || fail "--truncate exited $rc: $(cat "$T/trunc.err")"
has trunc.err "kept its last"
run full -m "$M" -c 24 -p "Once upon a time" --greedy --ignore-eos
[ $rc = 0 ] || fail "running into the context end exited $rc"
has full.err "the context is full (24 tokens)"
# every position is used, and the last token sampled is printed but not evaluated
has full.err "generated $((24 - P + 1)) tok"
has full.err "context 24/24"

# ---- KV configurations ---------------------------------------------------------------
run kvbad -m "$M" --kv k9v9 -p hi
[ $rc != 0 ] || fail "--kv k9v9 exited 0"
has kvbad.err "--kv k9v9: bad KV profile"
has kvbad.err "widths must be 2, 3, 4, 8 or 16"
run kvbad2 -m "$M" --kv q4 -p hi
[ $rc != 0 ] || fail "--kv q4 exited 0"
has kvbad2.err "is not f16 or kXvY"
run kvgroup -m "$M" --kv k4v2 --kv-group 48 -p hi
[ $rc != 0 ] || fail "--kv-group 48 exited 0"
has kvgroup.err "KV group 48 must be 32, 64 or 128"
run kvf16 -m "$M" --kv f16 -p "Once upon a time" -n 20 --greedy
cmp -s "$T/greedy.out" "$T/kvf16.out" || fail "--kv f16 differs from the default"
echo '{"layers": "all of them"}' >"$T/badprofile.json"
run kvprof -m "$M" --kv-profile "$T/badprofile.json" -p hi
[ $rc != 0 ] || fail "a bad --kv-profile exited 0"
has kvprof.err "must be an array"
run kvprof2 -m "$M" --kv-profile "$T/none.json" -p hi
[ $rc != 0 ] || fail "a missing --kv-profile file exited 0"
has kvprof2.err "cannot read KV profile"
# quantized caches: a uniform config and a per-layer profile, with a window smaller than the text
run kv4 -m "$M" --kv k4v4 --kv-window 32 -p "Once upon a time" -n 100 --greedy
[ $rc = 0 ] || fail "--kv k4v4 exited $rc: $(cat "$T/kv4.err")"
has kv4.out "Once upon a time"
layers='{"k": 8, "v": 4}'
for _ in $(seq 2 "$NL"); do layers="$layers, {\"k\": 4, \"v\": 2}"; done
echo "{\"layers\": [$layers], \"group\": 32, \"window\": 32}" >"$T/profile.json"
run kvprof3 -m "$M" --kv-profile "$T/profile.json" -p "Once upon a time" -n 100 --greedy
[ $rc = 0 ] || fail "--kv-profile exited $rc: $(cat "$T/kvprof3.err")"
has kvprof3.out "Once upon a time"

# ---- llama.cpp's flag names ------------------------------------------------------------
# -ctk / -ctv are --kv kXvY: the same text and the same KV line (the one not given stays f16)
kvline() { grep -o "KV [0-9.]* MiB, K [0-9.]* / V [0-9.]* bits" "$T/$1"; }
run ctk -m "$M" -p "Once upon a time" -n 20 --greedy -ctk q4_0 -ctv q8_0
[ $rc = 0 ] || fail "-ctk q4_0 -ctv q8_0 exited $rc: $(cat "$T/ctk.err")"
run kv48 -m "$M" -p "Once upon a time" -n 20 --greedy --kv k4v8
cmp -s "$T/ctk.out" "$T/kv48.out" || fail "-ctk q4_0 -ctv q8_0 differs from --kv k4v8"
[ -n "$(kvline kv48.err)" ] && [ "$(kvline ctk.err)" = "$(kvline kv48.err)" ] ||
  fail "-ctk q4_0 -ctv q8_0: '$(kvline ctk.err)', --kv k4v8: '$(kvline kv48.err)'"
case "$(kvline ctk.err)" in *"K 16.00"* | *"V 16.00"*) fail "-ctk/-ctv left a 16-bit cache: $(kvline ctk.err)" ;; esac
run ctk2 -m "$M" -p "Once upon a time" -n 2 --cache-type-k=iq4_nl
run kv4f -m "$M" -p "Once upon a time" -n 2 --kv k4v16
[ -n "$(kvline kv4f.err)" ] && [ "$(kvline ctk2.err)" = "$(kvline kv4f.err)" ] ||
  fail "--cache-type-k=iq4_nl: '$(kvline ctk2.err)', --kv k4v16: '$(kvline kv4f.err)'"
run ctk3 -m "$M" -p "Once upon a time" -n 20 --greedy -ctk f16 -ctv f16
cmp -s "$T/greedy.out" "$T/ctk3.out" || fail "-ctk f16 -ctv f16 differs from the default"
has ctk3.err "$KV"
run ctk5 -m "$M" -p hi -ctk q5_0
[ $rc = 2 ] || fail "-ctk q5_0 exited $rc, want 2"
has ctk5.err "-ctk 'q5_0': vkmix has no 5-bit cache width"
has ctk5.err "f16, q8_0, q4_0"
run ctvbf -m "$M" -p hi -ctv bf16
[ $rc = 2 ] || fail "-ctv bf16 exited $rc, want 2"
has ctvbf.err "not bf16"
run ctkkv -m "$M" -p hi -ctk q8_0 --kv k4v4
[ $rc = 2 ] || fail "-ctk with --kv exited $rc, want 2"
has ctkkv.err "-ctk/-ctv and --kv cannot be used together"
# -t, -fa (with or without a value), -ngl, --no-display-prompt, -s
run compat -m "$M" -p "Once upon a time" -n 20 --greedy -t 4 -fa -ngl 99 --no-display-prompt
[ $rc = 0 ] || fail "-t 4 -fa -ngl 99 --no-display-prompt exited $rc: $(cat "$T/compat.err")"
cmp -s "$T/noecho.out" "$T/compat.out" || fail "--no-display-prompt differs from --no-echo: $(cat "$T/compat.out")"
has compat.err "-t 4 is accepted and unused"
run faon -m "$M" -fa on -p "Once upon a time" -n 20 --greedy
cmp -s "$T/greedy.out" "$T/faon.out" || fail "-fa on: $(cat "$T/faon.out" "$T/faon.err")"
run faoff -m "$M" -p "Once upon a time" -n 20 --greedy --flash-attn=off
cmp -s "$T/greedy.out" "$T/faoff.out" || fail "--flash-attn=off: $(cat "$T/faoff.out" "$T/faoff.err")"
has faoff.err "-fa off is ignored"
run fabad -m "$M" -p hi --flash-attn=maybe
[ $rc = 2 ] || fail "--flash-attn=maybe exited $rc, want 2"
run s42 -m "$M" -p "Once upon a time" -n 24 -s 42 --temp 1
cmp -s "$T/seed1.out" "$T/s42.out" || fail "-s 42 differs from --seed 42"

# ---- warnings: the training context, and quantized caches that do not pay ------------
run ctxlong -m "$M" -p "Once upon a time" -n 1 -c 4096
[ $rc = 0 ] || fail "-c 4096 exited $rc"
has ctxlong.err "warning: context 4096 is longer than the model's training context $CTXT"
run ctxok -m "$M" -p "Once upon a time" -n 1 -c "$CTXT" --kv k4v4
grep -q "warning" "$T/ctxok.err" && fail "k4v4 at -c $CTXT warned: $(cat "$T/ctxok.err")"
# -c 100 < sinks 0 + window 128 + group 32: nothing is ever packed, and the ring costs more than f16
run kvwin -m "$M" -p "Once upon a time" -n 1 -c 100 -ctk q4_0 -ctv q4_0
[ $rc = 0 ] || fail "-c 100 -ctk q4_0 -ctv q4_0 exited $rc"
has kvwin.err "warning: the k4v4 (-ctk q4_0 -ctv q4_0) cache never quantizes a token at context 100"
has kvwin.err "the first at 160 tokens"
has kvwin.err "more than the f16 cache's"
# -c 400: k8v8 packs tokens but still takes more than f16; k4v4 does not
run kvmem -m "$M" -p "Once upon a time" -n 1 -c 400 --kv k8v8
has kvmem.err "warning: the k8v8 cache $KVMEM"
grep -q "never quantizes" "$T/kvmem.err" && fail "k8v8 at -c 400 said it never quantizes"
run kvmem2 -m "$M" -p "Once upon a time" -n 1 -c 400 --kv k4v4
grep -q "warning" "$T/kvmem2.err" && fail "k4v4 at -c 400 warned: $(cat "$T/kvmem2.err")"

# ---- chat / raw interactive mode over a pipe -----------------------------------------
printf 'Once upon a time\n there was\n/reset\nOnce upon a time\n' |
  "$VKMIX" -m "$M" -i -n 8 --greedy -v >"$T/chat.out" 2>"$T/chat.err"
rc=$?
[ $rc = 0 ] || fail "-i over a pipe exited $rc: $(cat "$T/chat.err")"
has chat.err "raw completion mode"
has chat.err "new conversation"
# the replies: "> " and the text of each turn; the first one continues the prompt greedily,
# and after /reset the same message gets the same reply
r1=$(grep '^> ' "$T/chat.out" | sed -n 1p)
r2=$(grep '^> ' "$T/chat.out" | sed -n 2p)
r4=$(grep '^> ' "$T/chat.out" | sed -n 4p)
case "> ${GREEDY#Once upon a time}" in
  "$r1"*) [ "${#r1}" -gt 10 ] || fail "chat: the first reply is empty" ;;
  *) fail "chat: the first reply '$r1' does not continue the prompt like the one-shot greedy text" ;;
esac
[ "${#r2}" -gt 3 ] || fail "chat: the second reply is empty: $(cat "$T/chat.out")"
[ "$r1" = "$r4" ] || fail "chat: after /reset the reply differs: '$r1' / '$r4'"
# an explicit chat template, with a system prompt, over a non-chat model: it must run
printf 'Hello\nTell me a story\n' |
  "$VKMIX" -m "$M" -i -n 8 --greedy --chat-template chatml --system "You tell stories." >"$T/chatml.out" 2>"$T/chatml.err"
[ $? = 0 ] || fail "--chat-template chatml exited non-zero: $(cat "$T/chatml.err")"
has chatml.err "chat template chatml"
# stories260K has no <|im_start|> token: the template's markers would be plain text
has chatml.err "warning: chat template chatml: '<|im_start|>' is not a token of the model's vocabulary"
has chatml.err "'<|im_end|>' is not a token"

# the model's own chat template picks the format (copies of the model with a template added)
ADDKV="$(dirname "$0")/cli_gguf_add_kv.py"
if command -v python3 >/dev/null; then
  check_template() { # NAME TEMPLATE-TEXT EXPECTED-STDERR
    python3 "$ADDKV" "$M" "$T/$1.gguf" tokenizer.chat_template "$2" || { fail "cannot write $1.gguf"; return; }
    printf 'Hello\n' | "$VKMIX" -m "$T/$1.gguf" -i -n 4 --greedy >"$T/tmpl_$1.out" 2>"$T/tmpl_$1.err"
    [ $? = 0 ] || fail "chat with the $1 template exited non-zero: $(cat "$T/tmpl_$1.err")"
    has "tmpl_$1.err" "$3"
  }
  check_template chatml "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'}}" "chat template chatml"
  check_template llama3 "{{'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'}}" "chat template llama3"
  has tmpl_llama3.err "'<|eot_id|>' is not a token of the model's vocabulary"
  check_template llama2 "{{ '<<SYS>>\n' + system + '\n<</SYS>>\n\n' }}{{ '[INST] ' + content + ' [/INST]' }}" "chat template llama2"
  check_template zephyr "{{ '<|user|>\n' + message['content'] + eos_token }}" "chat template zephyr"
  grep -q "is not a token" "$T/tmpl_zephyr.err" && fail "zephyr's plain-text markers warned"
  check_template other "{{ messages }}" "is not one vkmix knows"
  # --raw and --chat-template win over the model's template
  printf 'Once upon a time\n' | "$VKMIX" -m "$T/chatml.gguf" -i -n 4 --greedy --raw >/dev/null 2>"$T/tmpl_raw.err"
  has tmpl_raw.err "raw completion mode"
  printf 'Hi\n' | "$VKMIX" -m "$T/chatml.gguf" -i -n 4 --greedy --chat-template zephyr >/dev/null 2>"$T/tmpl_over.err"
  has tmpl_over.err "chat template zephyr"
fi

for f in "$T"/*.err; do
  grep -q "validation message" "$f" && fail "$(basename "$f"): Vulkan validation messages"
done
[ $fails = 0 ] && echo "cli: all checks passed" && exit 0
echo "cli: $fails failures"
exit 1
