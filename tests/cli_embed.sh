#!/usr/bin/env bash
# ctest example_embed: examples/embed.c generates 16 greedy tokens with stories260K.
# usage: cli_embed.sh path/to/embed
set -u
EMBED=$1
MODEL=${VKMIX_SHARED_DIR:-../shared}/models/stories260K/stories260K.gguf
if [ ! -f "$MODEL" ]; then echo "skip: $MODEL missing"; exit 77; fi
out=$("$EMBED" "$MODEL" "Once upon a time") || { echo "FAIL: embed exited $?"; exit 1; }
echo "$out"
case "$out" in
  "Once upon a time"?*) ;;
  *) echo "FAIL: the output does not continue the prompt"; exit 1 ;;
esac
# 16 tokens of a 512-token vocabulary: at least a few words
[ "${#out}" -gt 24 ] || { echo "FAIL: output too short"; exit 1; }
echo "ok"
