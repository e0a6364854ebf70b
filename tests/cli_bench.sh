#!/usr/bin/env bash
# ctest cli_bench: vkmix-bench's progress on stderr, with the shipped stories260K.
# usage: cli_bench.sh path/to/vkmix-bench model.gguf
#   - without a terminal: one line per step (about every 10%), "N/TOTAL", the test, the ETA;
#   - on a terminal (script(1), when installed): a bar redrawn with \r;
#   - the results stay on stdout (the Markdown table), untouched by the progress.
set -u
BENCH=$1
M=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
has() { grep -qF -- "$2" "$T/$1" || fail "$1 lacks '$2': $(head -c 800 "$T/$1")"; }

# 2 caches x 2 depths x (pp8 + tg4) = 8 timed tests
"$BENCH" -m "$M" -p 8 -n 4 --kv f16,k4v4 -d 0,32 -r 1 >"$T/lines.out" 2>"$T/lines.err" </dev/null
[ $? = 0 ] || fail "vkmix-bench exited non-zero: $(cat "$T/lines.err")"
has lines.err "vkmix-bench: 0/8"
has lines.err ", f16, pp8@d0: 1/8,"
has lines.err ", k4v4, tg4@d32: 8/8,"
has lines.err "ETA"
grep -q $'\r' "$T/lines.err" && fail "a bar (\\r) without a terminal"
# the table: 8 result rows, no progress text in it
[ "$(grep -c '^| llama' "$T/lines.out")" = 8 ] || fail "want 8 result rows: $(cat "$T/lines.out")"
grep -q "elapsed" "$T/lines.out" && fail "progress on stdout"
if command -v script >/dev/null; then
  script -qec "'$BENCH' -m '$M' -n 4 --kv f16 -r 1 -o csv >'$T/tty.out'" "$T/tty.log" >/dev/null </dev/null
  has tty.log "[##############################] 1/1"
  grep -q $'\r' "$T/tty.log" || fail "no \\r on a terminal"
  has tty.out "tg4@d0"
fi
[ $fails = 0 ] && echo "cli_bench: all checks passed" && exit 0
echo "cli_bench: $fails failures"
exit 1
