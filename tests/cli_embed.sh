#!/usr/bin/env bash
# ctest example_embed: examples/embed.c generates 16 greedy tokens with stories260K
# (../shared's, or the shipped assets/stories260K-f16.gguf).
# usage: cli_embed.sh path/to/embed
set -u
EMBED=$1
# ../shared's stories260K, or the shipped f16 copy
MODEL=${VKMIX_SHARED_DIR:-../shared}/models/stories260K/stories260K.gguf
[ -f "$MODEL" ] || MODEL=${VKMIX_SOURCE_DIR:-.}/assets/stories260K-f16.gguf
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
