/*
 * llama.cpp's flag names and the warnings about a session's settings, shared by
 * vkmix, vkmix-eval and vkmix-calibrate. Every tools/NAME.c is its own program:
 * this file is compiled into each of them with
 *   #include "common/llama_flags.c"
 * (static functions only; public header only; nothing here exits: the callers
 * print the messages their own way).
 *
 *   -ctk, --cache-type-k T   key cache type      (f16, q8_0, q4_0, ... mapped to vkmix's widths)
 *   -ctv, --cache-type-v T   value cache type
 *   -t, --threads N          CPU threads (where a tool has CPU work; otherwise accepted and unused)
 *   -fa, --flash-attn [on|off|auto]   accepted: vkmix's attention is always fused
 *   -ngl, --n-gpu-layers N   accepted: every layer runs on the GPU
 *   --kv-policy P[:opts]     the cache policy of every quantized cache the tool builds
 *                            (layer, mikv, mixkvq; appended as :policy=P[:opts] to each spec)
 */
#ifndef VKMIX_TOOL_LLAMA_FLAGS_C
#define VKMIX_TOOL_LLAMA_FLAGS_C

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vkmix.h"

#ifndef TOOL_FN
#define TOOL_FN __attribute__((unused))
#endif

typedef struct tool_compat {
    const char *ctk, *ctv;  /* -ctk / -ctv as given, NULL: not given */
    long threads;           /* -t, 0: not given */
    int fa_given, fa_off;   /* -fa, and -fa off */
    int ngl_given;
    const char *kv_policy;  /* --kv-policy as given, NULL: not given */
} tool_compat;

/* The help lines of the flags above (the tool's usage prints them). threads_line:
 * the tool's own text for -t. */
#define TOOL_COMPAT_HELP_CACHE                                                                             \
    "  -ctk, --cache-type-k T  key cache type, llama.cpp's names: f16, q8_0, q4_0 (q4_1, iq4_nl: 4 bits)\n" \
    "                          and vkmix's q3_0, q2_0; the codes are vkmix's own groupwise formats of\n"     \
    "                          that width (docs/KVCACHE.md), not ggml's blocks\n"                            \
    "  -ctv, --cache-type-v T  value cache type, as -ctk (the one not given stays f16)\n"
#define TOOL_COMPAT_HELP_POLICY                                                                            \
    "  --kv-policy P[:opts]    cache policy of every quantized cache: layer (per-layer widths), mikv\n"     \
    "                          (per token: frac=F hi=8|16 balance=0|1) or mixkvq (per key channel:\n"      \
    "                          kbits=B t16=T t4=T block=N queries=N); e.g. mikv:frac=0.05 (docs/KVCACHE.md)\n"
#define TOOL_COMPAT_HELP_FA                                                                                \
    "  -fa, --flash-attn [on|off|auto]  accepted: vkmix's attention is always fused (flash-style)\n"         \
    "  -ngl, --n-gpu-layers N  accepted: every layer runs on the GPU\n"

/* The width in bits of a llama.cpp cache type name (or vkmix's), 0 when there is
 * none, with the reason in err. */
static TOOL_FN unsigned tool_cache_type_bits(const char *name, char *err, size_t errlen)
{
    static const struct { const char *name; unsigned bits; } map[] = {
        { "f16", 16 }, { "fp16", 16 }, { "16", 16 },
        { "q8_0", 8 }, { "q8", 8 }, { "8", 8 },
        { "q4_0", 4 }, { "q4_1", 4 }, { "iq4_nl", 4 }, { "q4", 4 }, { "4", 4 },
        { "q3_0", 3 }, { "q3", 3 }, { "3", 3 },
        { "q2_0", 2 }, { "q2", 2 }, { "2", 2 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcasecmp(name, map[i].name)) return map[i].bits;
    const char *why = "unknown cache type";
    if (!strcasecmp(name, "bf16")) why = "vkmix's 16-bit cache is f16, not bf16";
    else if (!strcasecmp(name, "f32")) why = "vkmix has no 32-bit cache: f16 is its widest";
    else if (!strcasecmp(name, "q5_0") || !strcasecmp(name, "q5_1")) why = "vkmix has no 5-bit cache width";
    else if (!strcasecmp(name, "q6_k") || !strcasecmp(name, "q6")) why = "vkmix has no 6-bit cache width";
    snprintf(err, errlen,
             "'%s': %s; the widths are 16, 8, 4, 3 and 2 bits: f16, q8_0, q4_0 (or q4_1, iq4_nl), q3_0, q2_0", name,
             why);
    return 0;
}

/* -ctk / -ctv as a vkmix KV spec: "f16" or "kXvY" in out (NULL-terminated),
 * 1 when either was given, 0 when neither was, -1 on a bad name (err says why). */
static TOOL_FN int tool_compat_kv(const tool_compat *c, char *out, size_t n, char *err, size_t errlen)
{
    if (!c->ctk && !c->ctv) return 0;
    unsigned kb = 16, vb = 16;
    char e[256];
    if (c->ctk && !(kb = tool_cache_type_bits(c->ctk, e, sizeof e))) {
        snprintf(err, errlen, "-ctk %s", e);
        return -1;
    }
    if (c->ctv && !(vb = tool_cache_type_bits(c->ctv, e, sizeof e))) {
        snprintf(err, errlen, "-ctv %s", e);
        return -1;
    }
    if (kb == 16 && vb == 16) snprintf(out, n, "f16");
    else snprintf(out, n, "k%uv%u", kb, vb);
    return 1;
}

/* 1 when P[:options] (a --kv-policy value) names a policy vkmix has: layer, mikv, mixkvq. */
static TOOL_FN int tool_kv_policy_ok(const char *p)
{
    size_t k = strcspn(p, ":");
    return (k == 5 && !strncmp(p, "layer", 5)) || (k == 4 && !strncmp(p, "mikv", 4)) ||
           (k == 6 && !strncmp(p, "mixkvq", 6));
}

/* spec with --kv-policy P applied, malloc'ed: "spec:policy=P" when P is given (not NULL) and
 * spec is not "f16" and names no policy itself; otherwise a copy of spec. NULL: out of memory. */
static TOOL_FN char *tool_kv_with_policy(const char *policy, const char *spec)
{
    int add = policy && strcmp(spec, "f16") && !strstr(spec, "policy=");
    size_t n = strlen(spec) + (add ? strlen(policy) + sizeof ":policy=" : 1);
    char *out = malloc(n);
    if (out) snprintf(out, n, add ? "%s:policy=%s" : "%s", spec, policy);
    return out;
}

static TOOL_FN int tool_compat_is(const char *a, const char *s1, const char *s2)
{
    return !strcmp(a, s1) || (s2 && !strcmp(a, s2));
}

/* Consumes argv[*i] (and its value) when it is one of the flags above. val: the
 * value of a --flag=value, or NULL (then the value is argv[*i + 1]). Returns 1
 * when consumed, 0 when the flag is not one of these, -1 on an error (err says why). */
static TOOL_FN int tool_compat_flag(tool_compat *c, const char *a, const char *val, int argc, char **argv, int *i,
                                    char *err, size_t errlen)
{
    int is_ctk = tool_compat_is(a, "-ctk", "--cache-type-k"), is_ctv = tool_compat_is(a, "-ctv", "--cache-type-v");
    int is_t = tool_compat_is(a, "-t", "--threads"), is_ngl = tool_compat_is(a, "-ngl", "--n-gpu-layers");
    int is_fa = tool_compat_is(a, "-fa", "--flash-attn"), is_pol = !strcmp(a, "--kv-policy");
    if (!is_ctk && !is_ctv && !is_t && !is_ngl && !is_fa && !is_pol) return 0;
    if (is_fa) {
        /* a value is optional (llama.cpp took none before it took on|off|auto) */
        static const char *vals[] = { "on", "off", "auto", "1", "0", "true", "false", "enabled", "disabled" };
        const char *v = val;
        if (!v && *i + 1 < argc)
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++)
                if (!strcasecmp(argv[*i + 1], vals[k])) v = argv[++*i];
        int ok = !v;
        for (size_t k = 0; v && k < sizeof vals / sizeof vals[0]; k++) ok |= !strcasecmp(v, vals[k]);
        if (!ok) {
            snprintf(err, errlen, "%s: '%s' is not on, off or auto", a, v);
            return -1;
        }
        c->fa_given = 1;
        c->fa_off = v && (!strcasecmp(v, "off") || !strcmp(v, "0") || !strcasecmp(v, "false") ||
                          !strcasecmp(v, "disabled"));
        return 1;
    }
    if (!val) {
        if (*i + 1 >= argc) {
            snprintf(err, errlen, "%s needs a value", a);
            return -1;
        }
        val = argv[++*i];
    }
    if (is_pol) {
        if (!tool_kv_policy_ok(val)) {
            snprintf(err, errlen, "--kv-policy: '%s' is not layer, mikv or mixkvq (options after ':', e.g. mikv:frac=0.05)",
                     val);
            return -1;
        }
        c->kv_policy = val;
        return 1;
    }
    if (is_ctk || is_ctv) {
        char e[256];
        if (!tool_cache_type_bits(val, e, sizeof e)) {
            snprintf(err, errlen, "%s %s", a, e);
            return -1;
        }
        if (is_ctk) c->ctk = val;
        else c->ctv = val;
        return 1;
    }
    char *end;
    long x = strtol(val, &end, 10);
    long lo = is_t ? 1 : -1, hi = is_t ? 1024 : 1 << 20;
    if (end == val || *end || x < lo || x > hi) {
        snprintf(err, errlen, "%s: '%s' is not an integer in [%ld, %ld]", a, val, lo, hi);
        return -1;
    }
    if (is_t) c->threads = x;
    else c->ngl_given = 1;
    return 1;
}

/* ------------------------------------------------------------------ warnings */

/* -c beyond the model's training context. */
static TOOL_FN void tool_warn_context(const char *prog, const vkmix_model_info *info, uint32_t n_ctx)
{
    if (info->n_ctx_train > 0 && n_ctx > info->n_ctx_train)
        fprintf(stderr,
                "%s: warning: context %u is longer than the model's training context %u: past it the model "
                "sees positions it was not trained on\n",
                prog, n_ctx, info->n_ctx_train);
}

/* The cache configuration that a session with these params gets (0 on success). */
static TOOL_FN int tool_session_kv_config(const vkmix_session_params *sp, vkmix_kv_config *c)
{
    char err[256];
    if (sp->kv_config) *c = *sp->kv_config;
    else if (sp->kv_profile) {
        if (vkmix_kv_profile_read(sp->kv_profile, c, err, sizeof err) != VKMIX_OK) return -1;
    } else if (vkmix_kv_config_parse(sp->kv ? sp->kv : "f16", c, err, sizeof err) != VKMIX_OK) return -1;
    if (sp->kv_group) c->group = sp->kv_group;
    if (sp->kv_window) c->window = sp->kv_window;
    if (sp->kv_sinks) c->sinks = sp->kv_sinks;
    return 0;
}

/* A quantized cache that does not pay at this context: it never packs a token
 * (the context ends before the first group leaves the FP16 window: n_ctx < S + R + G),
 * or it takes more memory than the f16 cache would. what: the cache's name in
 * the messages. Returns the number of warnings printed (the session params must
 * be valid: call it after the session was created). */
static TOOL_FN int tool_warn_kv(const char *prog, const vkmix_model *m, const vkmix_session_params *sp,
                                const char *what)
{
    vkmix_kv_config c;
    if (tool_session_kv_config(sp, &c) != 0) return 0;
    vkmix_model_info info;
    if (vkmix_model_get_info(m, &info) != VKMIX_OK) return 0;
    uint32_t L = c.n_layer ? c.n_layer : 1, quantized = 0;
    for (uint32_t l = 0; l < L; l++) quantized |= c.k_bits[l] < 16 || c.v_bits[l] < 16;
    if (!quantized) return 0;
    vkmix_session_params f = *sp;
    f.kv = NULL;
    f.kv_profile = NULL;
    f.kv_config = NULL;
    f.kv_group = f.kv_window = f.kv_sinks = 0;
    vkmix_kv_memory mq, mf;
    if (vkmix_kv_memory_estimate(m, sp, 0, &mq) != VKMIX_OK || vkmix_kv_memory_estimate(m, &f, 0, &mf) != VKMIX_OK)
        return 0;
    uint32_t n_ctx = sp->n_ctx ? sp->n_ctx : info.n_ctx_train && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    uint32_t G = c.group ? c.group : 32, R = c.window ? c.window : 128, S = c.sinks;
    int n = 0;
    if ((uint64_t)n_ctx < (uint64_t)S + R + G) {
        fprintf(stderr,
                "%s: warning: the %s cache never quantizes a token at context %u: tokens leave the FP16 window "
                "(%u tokens, %u sinks) in groups of %u, the first at %u tokens; it is an f16 cache with extra "
                "memory (a longer -c, or --kv-window, changes that)\n",
                prog, what, n_ctx, R, S, G, S + R + G);
        n++;
    }
    if (mq.total_bytes > mf.total_bytes) {
        fprintf(stderr,
                "%s: warning: the %s cache takes %.3f MiB at context %u, more than the f16 cache's %.3f MiB (its FP16 "
                "window of %u tokens and the scales cost more than the packed codes save at this context)\n",
                prog, what, (double)mq.total_bytes / 1048576.0, n_ctx, (double)mf.total_bytes / 1048576.0, R);
        n++;
    }
    return n;
}

#endif
