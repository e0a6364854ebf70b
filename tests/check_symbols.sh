#!/usr/bin/env bash
# ctest library_symbols: libvkmix.a must coexist with an application's own
# Vulkan loader. It defines no vk* symbol (no global function pointers that
# would take the place of libvulkan's functions), does not even reference one
# (every Vulkan call goes through per-context tables), and every global symbol
# it defines is in its namespaces: vkmix_* (public) or vkm_* (private).
# Names starting with "__" are the compiler's (sanitizer instrumentation).
# usage: check_symbols.sh path/to/libvkmix.a
set -eu
LIB=$1
command -v nm >/dev/null || { echo "nm not found (binutils)"; exit 77; }
fail=0
defined=$(nm -g --defined-only "$LIB" | awk 'NF == 3 { print $3 }' | sort -u)
undefined=$(nm -u "$LIB" | awk '{ print $NF }' | sort -u)
vk_def=$(printf '%s\n' "$defined" | grep -E '^vk[A-Z]' || true)
vk_undef=$(printf '%s\n' "$undefined" | grep -E '^vk[A-Z]' || true)
foreign=$(printf '%s\n' "$defined" | grep -vE '^(vkmix_|vkm_|__)' | grep -v '^$' || true)
if [ -n "$vk_def" ]; then echo "FAIL: $LIB defines Vulkan symbols:"; echo "$vk_def" | head -20; fail=1; fi
if [ -n "$vk_undef" ]; then echo "FAIL: $LIB references Vulkan symbols (link-time):"; echo "$vk_undef" | head -20; fail=1; fi
if [ -n "$foreign" ]; then echo "FAIL: $LIB defines symbols outside vkmix_* / vkm_*:"; echo "$foreign" | head -20; fail=1; fi
[ $fail = 0 ] || exit 1
echo "$(printf '%s\n' "$defined" | grep -c '^vkmix_') public vkmix_* and $(printf '%s\n' "$defined" | grep -c '^vkm_') private vkm_* symbols; no vk* symbol defined or referenced"
