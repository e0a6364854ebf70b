/* Benchmark support: synthetic cache contents, and decode attention timed alone
 * against a copy kernel, checked first against a CPU reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "kv/kv.h"
#include "kv/mikv_device.h"
#include "kv/mixkvq_device.h"
#include "ops/ops.h"
#include "runtime/session.h"
#include "vkmix_bench.h"

/* Random bits / FP16 values into a buffer with fill_random (F32 pattern = random bits
 * for codes, F16 for FP16 data and for scale/min pairs). */
static vkmix_error fill(vkm_cmd *cmd, vkm_buffer *b, int f16, float scale, uint32_t seed)
{
    vkmix_context *ctx = cmd->ctx;
    if (!b->buf) return VKMIX_OK;
    const vkm_pipeline *p;
    uint32_t wg = vkm_default_wg(ctx), spec[2] = { wg, f16 ? VKM_GGML_F16 : VKM_GGML_F32 };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_FILL_RANDOM, spec, 2, &p);
    if (e != VKMIX_OK) return e;
    uint64_t n = f16 ? b->size / 2 : b->size / 4;
    struct { uint32_t n, seed; float scale, offset; uint32_t n_in, row_words; } push = { (uint32_t)n, seed, scale, 0, 0, 0 };
    vkm_binding bb[3] = { VKM_BIND(*b), VKM_BIND(*b), VKM_BIND(*b) };
    vkm_cmd_dispatch(cmd, p, bb, 3, &push, sizeof push, vkm_groups_for(ctx, n, wg), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkmix_session_fill_synthetic(vkmix_session *s, uint32_t n_tokens, uint64_t seed)
{
    if (!s) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_context *ctx = s->model->ctx;
    if (n_tokens >= s->n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW, "fill: %u tokens leave no room in a context of %u",
                        n_tokens, s->n_ctx);
    vkm_kv_cache *c = &s->cache;
    vkmix_error e = vkm_cmd_begin(&s->cmd);
    uint32_t sd = (uint32_t)seed * 7919u + 17u;
    for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++) {
        vkm_kv_side *sides[2] = { &c->k[l], &c->v[l] };
        for (int i = 0; i < 2 && e == VKMIX_OK; i++) {
            vkm_kv_side *sd2 = sides[i];
            e = fill(&s->cmd, &sd2->ring, 1, 1.0f, sd++);
            if (e == VKMIX_OK) e = fill(&s->cmd, &sd2->sinks, 1, 1.0f, sd++);
            if (e == VKMIX_OK) e = fill(&s->cmd, &sd2->codes, 0, 1.0f, sd++);
            /* scale and min pairs: FP16 values in [-0.1, 0.1) */
            if (e == VKMIX_OK) e = fill(&s->cmd, &sd2->meta, 1, 0.1f, sd++);
        }
    }
    if (e == VKMIX_OK) e = vkm_cmd_submit(&s->cmd);
    if (e == VKMIX_OK && c->cfg.policy == VKMIX_KV_POLICY_MIKV) e = vkm_mikv_fill_synthetic(&s->cmd, c, sd);
    if (e == VKMIX_OK && c->cfg.policy == VKMIX_KV_POLICY_MIXKVQ) e = vkm_mixkvq_fill_synthetic(&s->cmd, c, sd);
    if (e == VKMIX_OK) s->n_past = n_tokens;
    return e;
}

/* ------------------------------------------------------------------ CPU reference of one layer */

static float h2f(uint16_t h) { return vkmix_f16_to_f32(h); }

/* K or V row of position p of head h into out[D] (fp32 math of the fused kernel). */
typedef struct {
    const vkm_kv_cache *c;
    const vkm_kv_side *s;
    int is_v;
    uint16_t *ring, *sinks;
    float *deq;        /* [H][nq*G][D] dequantized store (fp32) */
    uint32_t nq;
} side_view;

static vkmix_error download(vkm_cmd *cmd, const vkm_buffer *b, void **out)
{
    *out = NULL;
    if (!b->buf) return VKMIX_OK;
    *out = malloc(b->size);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    return vkm_buffer_download(cmd, b, 0, *out, b->size);
}

static vkmix_error view_create(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t nq,
                               side_view *v)
{
    memset(v, 0, sizeof *v);
    v->c = c;
    v->s = s;
    v->is_v = is_v;
    v->nq = s->bits < 16 ? nq : 0;
    vkmix_error e = download(cmd, &s->ring, (void **)&v->ring);
    if (e == VKMIX_OK) e = download(cmd, &s->sinks, (void **)&v->sinks);
    if (e != VKMIX_OK || !v->nq) return e;
    uint32_t *codes = NULL, *meta = NULL;
    e = download(cmd, &s->codes, (void **)&codes);
    if (e == VKMIX_OK) e = download(cmd, &s->meta, (void **)&meta);
    const uint32_t H = c->n_kv_head, D = c->head_dim, G = c->cfg.group;
    v->deq = malloc((size_t)H * v->nq * G * D * 4);
    if (e == VKMIX_OK && !v->deq) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t h = 0; h < H && e == VKMIX_OK; h++) {
        /* the store keeps n_blocks groups per head; dequantize the first nq of head h */
        vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, s->bits, is_v ? c->cfg.v_group : G, D, 1,
                               v->nq * G };
        const uint32_t *cp, *mp;
        if (!is_v) {
            const uint64_t hb = kvl_k_block(h, 0, c->n_blocks);
            cp = codes + kvl_k_code(hb, 0, 0, s->bits, G, D);
            mp = meta + kvl_k_meta(hb, 0, D);
        } else {
            const uint64_t ht = kvl_v_slot(h, 0, (uint64_t)c->n_blocks * G);
            cp = codes + kvl_v_code(ht, 0, s->bits, D);
            mp = meta + kvl_v_meta(ht, 0, D, c->cfg.v_group);
        }
        e = vkm_kvq_dequantize_f32(&sh, cp, mp, v->deq + kvl_f16(h, 0, 0, (uint64_t)v->nq * G, D));
    }
    free(codes);
    free(meta);
    return e;
}

static void view_free(side_view *v)
{
    free(v->ring);
    free(v->sinks);
    free(v->deq);
}

static void view_row(const side_view *v, uint32_t h, uint32_t p, float *out)
{
    const vkm_kv_cache *c = v->c;
    const uint32_t D = c->head_dim, G = c->cfg.group;
    if (v->s->bits >= 16) {
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->ring[kvl_f16(h, p, d, c->n_ctx, D)]);
        return;
    }
    const uint32_t S = c->cfg.sinks;
    if (p < S) {
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->sinks[kvl_f16(h, p, d, S, D)]);
    } else if (p < S + v->nq * G) {
        memcpy(out, v->deq + kvl_f16(h, p - S, 0, (uint64_t)v->nq * G, D), D * 4);
    } else {
        const uint64_t slot = kvl_ring_slot(p, S, c->cfg.ring);
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->ring[kvl_f16(h, slot, d, c->cfg.ring, D)]);
    }
}

/* ------------------------------------------------------------------ timing */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Bytes decode attention reads at position n - 1: nq packed groups (as before the step) and n - nq*G FP16 tokens. */
static double side_bytes(const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t nq, uint32_t n)
{
    const uint64_t H = c->n_kv_head, D = c->head_dim, G = c->cfg.group, b = s->bits;
    if (b >= 16) return (double)(2 * kvl_f16(H, 0, 0, n, D));
    uint64_t code = is_v ? 4 * kvl_v_code_words(H, nq * G, b, D) : 4 * kvl_k_code_words(H, nq, b, G, D);
    uint64_t meta = is_v ? 4 * kvl_v_meta_words(H, nq * G, D, c->cfg.v_group) : 4 * kvl_k_meta_words(H, nq, D);
    return (double)(code + meta + 2 * kvl_f16(H, 0, 0, n - nq * G, D));
}

/* The same for a MiKV or MixKVQ side: what its sizes count at n tokens (codes, scales and
 * mins, high-precision rows, tier maps or masks), plus the FP16 tokens of the ring; an
 * upper bound of what the attention reads (MiKV's high rows are read only for marked tokens). */
static double policy_bytes(const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t l, int is_v, uint32_t nq, uint32_t n)
{
    const vkm_kv_side *s = is_v ? &c->v[l] : &c->k[l];
    if (s->bits >= 16) return side_bytes(c, s, is_v, nq, n);
    vkm_kv_sizes z;
    vkm_kv_layer_sizes(&c->cfg, hp, c->n_ctx, n, l, is_v, &z);
    return (double)(z.code_bytes + z.meta_bytes + z.fp16_bytes + z.aux_bytes +
                    2 * kvl_f16(c->n_kv_head, 0, 0, n - nq * c->cfg.group, c->head_dim));
}

const char *vkmix_attn_variant_name(vkmix_attn_variant v)
{
    static const char *names[VKMIX_ATTN_VARIANTS_] = { "v2", "v1", "v2-f32" };
    return (unsigned)v < VKMIX_ATTN_VARIANTS_ ? names[v] : NULL;
}

/* Layer 0's attention of session s (output row `row` of out) against the CPU
 * reference over the cache's own contents; returns the relative error. */
static vkmix_error check_one(vkm_cmd *cmd, vkmix_session *s, const float *qh, const float *gpu, double *rel)
{
    const vkm_hparams *hp = &s->model->hp;
    vkm_kv_cache *c = &s->cache;
    const uint32_t pos = s->n_past, D = hp->head_dim;
    const uint32_t nq = c->cfg.quantized ? vkm_kv_blocks_at(&c->cfg, pos) : 0;
    side_view kv[2];
    memset(kv, 0, sizeof kv);
    vkmix_error e = view_create(cmd, c, &c->k[0], 0, nq, &kv[0]);
    if (e == VKMIX_OK) e = view_create(cmd, c, &c->v[0], 1, nq, &kv[1]);
    if (e == VKMIX_OK) {
        const uint32_t n = pos + 1, rep = hp->n_head / hp->n_head_kv;
        float *sc = malloc((size_t)n * 4), *row = malloc((size_t)D * 4);
        double *acc = malloc((size_t)D * 8);
        double num = 0, den = 0;
        if (!sc || !row || !acc) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        for (uint32_t qh_i = 0; qh_i < hp->n_head && e == VKMIX_OK; qh_i++) {
            uint32_t h = qh_i / rep;
            const float *q = qh + (size_t)qh_i * D;
            double mx = -INFINITY, sum = 0;
            for (uint32_t p = 0; p < n; p++) {
                view_row(&kv[0], h, p, row);
                double d = 0;
                for (uint32_t i = 0; i < D; i++) d += (double)q[i] * row[i];
                sc[p] = (float)(d / sqrt((double)D));
                if (sc[p] > mx) mx = sc[p];
            }
            for (uint32_t i = 0; i < D; i++) acc[i] = 0;
            for (uint32_t p = 0; p < n; p++) {
                double w = exp(sc[p] - mx);
                sum += w;
                view_row(&kv[1], h, p, row);
                for (uint32_t i = 0; i < D; i++) acc[i] += w * row[i];
            }
            for (uint32_t i = 0; i < D; i++) {
                double r = acc[i] / sum, g = gpu[(size_t)qh_i * D + i];
                num += (g - r) * (g - r);
                den += r * r;
            }
        }
        *rel = isnan(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1e-30));
        free(sc);
        free(row);
        free(acc);
    }
    view_free(&kv[0]);
    view_free(&kv[1]);
    return e;
}

/* The read kernel (copy.comp, read-only) over one buffer. */
static vkmix_error read_buffer(vkm_cmd *cmd, const vkm_buffer *b, double *bytes)
{
    if (!b->buf || b->size < 16) return VKMIX_OK;
    vkmix_context *ctx = cmd->ctx;
    const vkm_pipeline *p;
    uint32_t wg = 256 <= ctx->dev.caps.max_wg_invocations ? 256 : vkm_default_wg(ctx);
    uint32_t spec[3] = { wg, 4, 1 };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_COPY, spec, 3, &p);
    if (e != VKMIX_OK) return e;
    uint32_t n = (uint32_t)(b->size / 16);
    vkm_binding bind[2] = { VKM_BIND(*b), VKM_BIND(*b) };   /* the write never happens (see copy.comp) */
    vkm_cmd_dispatch(cmd, p, bind, 2, &n, 4, vkm_groups_for(ctx, (n + 3) / 4, wg), 1, 1);
    *bytes += (double)n * 16;
    return VKMIX_OK;
}

/* The read kernel over every buffer of the batch's caches (all layers): the ceiling
 * of these very allocations. GB/s. */
static vkmix_error cache_read(vkm_cmd *cmd, vkmix_session *const *ss, uint32_t n, uint32_t reps, double *gbps)
{
    double t[VKM_MAX_TIMESTAMPS], bytes = 0;
    vkmix_error e = VKMIX_OK;
    for (int pass = 0; pass < 2 && e == VKMIX_OK; pass++) {
        if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) return e;
        vkm_cmd_timestamp(cmd, 0);
        for (uint32_t r = 0; r < reps && e == VKMIX_OK; r++) {
            bytes = 0;
            for (uint32_t i = 0; i < n && e == VKMIX_OK; i++) {
                const vkm_kv_cache *c = &ss[i]->cache;
                for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++) {
                    const vkm_kv_side *sd[2] = { &c->k[l], &c->v[l] };
                    for (int k = 0; k < 2 && e == VKMIX_OK; k++) {
                        e = read_buffer(cmd, &sd[k]->codes, &bytes);
                        if (e == VKMIX_OK) e = read_buffer(cmd, &sd[k]->meta, &bytes);
                        if (e == VKMIX_OK) e = read_buffer(cmd, &sd[k]->ring, &bytes);
                        if (e == VKMIX_OK) e = read_buffer(cmd, &sd[k]->sinks, &bytes);
                    }
                }
            }
            vkm_cmd_barrier(cmd);
            vkm_cmd_timestamp(cmd, r + 1);
        }
        if (e == VKMIX_OK) e = vkm_cmd_submit(cmd);
    }
    for (uint32_t r = 0; r < reps && e == VKMIX_OK; r++) e = vkm_timestamp_ns(cmd, r, r + 1, &t[r]);
    if (e != VKMIX_OK) return e;
    qsort(t, reps, sizeof t[0], cmp_double);
    *gbps = bytes / t[reps / 2];
    return VKMIX_OK;
}

/* Records layer l's attention of the batch (q and out rows 0..n-1 of the work scratch). */
static vkmix_error record_layer(vkm_cmd *cmd, vkmix_session *const *ss, uint32_t n, vkmix_attn_variant variant,
                                vkm_attn_work *w, vkm_attn_row *rows, const vkm_buffer *qbuf, const vkm_buffer *obuf,
                                uint32_t l)
{
    const vkm_hparams *hp = &ss[0]->model->hp;
    const uint64_t qb = (uint64_t)hp->n_head * hp->head_dim * 4;
    if (variant == VKMIX_ATTN_V1) {
        for (uint32_t i = 0; i < n; i++) {
            vkmix_error e = vkm_kv_cache_attention(cmd, &ss[i]->cache, l, VKM_BIND_RANGE(*qbuf, i * qb, qb),
                                                   VKM_BIND_RANGE(*obuf, i * qb, qb), VKM_BIND(ss[i]->attn_scratch), 1,
                                                   ss[i]->n_past);
            if (e != VKMIX_OK) return e;
        }
        return VKMIX_OK;
    }
    return vkm_kv_decode(cmd, w, l, rows, n, VKM_BIND(*qbuf), VKM_BIND(*obuf));
}

vkmix_error vkmix_bench_attention(vkmix_session *const *ss, uint32_t n, uint32_t reps, vkmix_attn_variant variant,
                                  vkmix_attn_bench *out)
{
    if (!ss || !n || !ss[0] || !out || (unsigned)variant >= VKMIX_ATTN_VARIANTS_) return VKMIX_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    vkmix_model *m = ss[0]->model;
    vkmix_context *ctx = m->ctx;
    vkm_device *dev = &ctx->dev;
    const vkm_hparams *hp = &m->hp;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i] || ss[i]->model != m)
            return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "attention benchmark: session %u is not of the same model", i);
        if (!ss[i]->n_past || ss[i]->n_past >= ss[i]->n_ctx)
            return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "attention benchmark: fill the cache first (n_past %u)",
                            ss[i]->n_past);
    }
    if (variant != VKMIX_ATTN_V1 && !dev->bda)
        return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the v2 attention needs buffer device addresses");
    if (reps < 1) reps = 1;
    if (reps > VKM_MAX_TIMESTAMPS - 1) reps = VKM_MAX_TIMESTAMPS - 1;
    const uint32_t Q = hp->n_head * hp->head_dim;
    /* this call's own recording target, with timestamps */
    vkm_cmd tcmd, *cmd = &tcmd;
    vkmix_error e = vkm_cmd_create(cmd, dev, ctx, true);
    if (e != VKMIX_OK) return e;
    if (!cmd->timestamps) {
        vkm_cmd_destroy(cmd);
        return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the device's queue has no timestamps");
    }
    /* q and out rows of the batch, the work area, the rows */
    vkm_buffer qbuf = { 0 }, obuf = { 0 };
    vkm_attn_work w;
    memset(&w, 0, sizeof w);
    float *qh = malloc((size_t)n * Q * 4), *gpu = malloc((size_t)n * Q * 4);
    vkm_attn_row *rows = malloc(n * sizeof *rows);
    if (!qh || !gpu || !rows) {
        e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto done;
    }
    uint64_t st = 0x1234567ull + ss[0]->n_past;
    for (uint64_t i = 0; i < (uint64_t)n * Q; i++) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        qh[i] = ((float)(st >> 40) / 16777216.0f - 0.5f) * 4.0f;
    }
    uint32_t big = 0;
    for (uint32_t i = 1; i < n; i++)
        if (vkm_attn_max_splits(ctx, &ss[i]->cache) > vkm_attn_max_splits(ctx, &ss[big]->cache)) big = i;
    if ((e = vkm_buffer_create(dev, &qbuf, (uint64_t)n * Q * 4, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &obuf, (uint64_t)n * Q * 4, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if (variant != VKMIX_ATTN_V1 && (e = vkm_attn_work_create(ctx, &w, &ss[big]->cache, n, n)) != VKMIX_OK) goto done;
    if (variant == VKMIX_ATTN_V2_F32) w.use_f16 = 0;
    for (uint32_t i = 0; i < n; i++) rows[i] = (vkm_attn_row){ &ss[i]->cache, i, ss[i]->n_past, VKM_BIND(ss[i]->attn_scratch) };
    if ((e = vkm_buffer_upload(cmd, &qbuf, 0, qh, (uint64_t)n * Q * 4)) != VKMIX_OK) goto done;
    /* attention of position n_past over [0, n_past]: the current token must be in the
     * cache, as after a store; the synthetic fill already wrote every slot */
    if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) goto done;
    if ((e = record_layer(cmd, ss, n, variant, &w, rows, &qbuf, &obuf, 0)) != VKMIX_OK) goto done;
    if ((e = vkm_cmd_submit(cmd)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_download(cmd, &obuf, 0, gpu, (uint64_t)n * Q * 4)) != VKMIX_OK) goto done;
    /* FP16 arithmetic of the packed kernel (2/4-bit keys): about 1e-2 (tests/test_kv_attn.c) */
    int half = 0;
    for (uint32_t i = 0; i < n; i++)
        half |= variant == VKMIX_ATTN_V2 && w.use_f16 && ss[i]->cache.head_dim >= 64 && ss[i]->cache.k[0].bits < 8 && ss[i]->cache.v[0].bits < 16;
    out->check_bound = half ? 3e-2 : 1e-3;
    /* the check reads the per-layer format; a policy's tiers are checked against its CPU
     * simulation by its own tests (test_kv_mikv, test_kv_mixkvq), not here */
    int policy = 0;
    for (uint32_t i = 0; i < n; i++) policy |= ss[i]->cache.cfg.policy != VKMIX_KV_POLICY_LAYER;
    if (policy) out->check_rel_err = -1;
    for (uint32_t i = 0; i < n && i < 4 && !policy; i++) {
        double rel = 0;
        if ((e = check_one(cmd, ss[i], qh + (size_t)i * Q, gpu + (size_t)i * Q, &rel)) != VKMIX_OK) goto done;
        if (!(rel <= out->check_rel_err)) out->check_rel_err = rel;
    }
    if (!(out->check_rel_err <= out->check_bound)) {
        e = vkm_fail(dev, VKMIX_ERROR_INTERNAL, "attention check failed: relative error %.3e against the CPU reference (bound %.0e)",
                     out->check_rel_err, out->check_bound);
        goto done;
    }
    /* time: every layer's attention for the batch, between two timestamps */
    double t[VKM_MAX_TIMESTAMPS];
    const vkm_kv_cache *c0 = &ss[0]->cache;
    for (int pass = 0; pass < 4; pass++) { /* passes 0-2 warm up (clocks ramp up under load) */
        if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) goto done;
        vkm_cmd_timestamp(cmd, 0);
        for (uint32_t r = 0; r < reps && e == VKMIX_OK; r++) {
            for (uint32_t l = 0; l < c0->n_layer && e == VKMIX_OK; l++) {
                e = record_layer(cmd, ss, n, variant, &w, rows, &qbuf, &obuf, l);
                vkm_cmd_barrier(cmd);
            }
            vkm_cmd_timestamp(cmd, r + 1);
        }
        if (e != VKMIX_OK) goto done;
        if ((e = vkm_cmd_submit(cmd)) != VKMIX_OK) goto done;
    }
    for (uint32_t r = 0; r < reps; r++) {
        if ((e = vkm_timestamp_ns(cmd, r, r + 1, &t[r])) != VKMIX_OK) goto done;
        t[r] /= c0->n_layer;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    out->us_per_layer = t[reps / 2] * 1e-3;
    double bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        const vkm_kv_cache *c = &ss[i]->cache;
        uint32_t pos = ss[i]->n_past, nq = c->cfg.quantized ? vkm_kv_blocks_at(&c->cfg, pos) : 0;
        for (uint32_t l = 0; l < c->n_layer; l++)
            if (c->cfg.policy == VKMIX_KV_POLICY_LAYER)
                bytes += side_bytes(c, &c->k[l], 0, nq, pos + 1) + side_bytes(c, &c->v[l], 1, nq, pos + 1);
            else
                bytes += policy_bytes(c, &ss[i]->model->hp, l, 0, nq, pos + 1) + policy_bytes(c, &ss[i]->model->hp, l, 1, nq, pos + 1);
    }
    out->bytes_per_layer = bytes / c0->n_layer;
    out->gbps = out->bytes_per_layer / (out->us_per_layer * 1e3);
    out->dispatches_per_layer = variant == VKMIX_ATTN_V1 ? 2 * n : 3;
    /* the read and copy kernels on 256 MiB (well past any cache) */
    vkmix_kvq_shape cs = { VKMIX_KV_KEYS, 2, 32, 128, 8, dev->caps.quirk_cpu_device ? 4096 : 131072 };
    vkmix_kvq_bench kb;
    if ((e = vkmix_kvq_bench_run(ctx, &cs, reps, &kb)) != VKMIX_OK) goto done;
    out->copy_gbps = kb.copy_bytes / (kb.copy_ms * 1e6);
    out->read_gbps = kb.read_bytes / (kb.read_ms * 1e6);
    if ((e = cache_read(cmd, ss, n, reps < 8 ? reps : 8, &out->cache_read_gbps)) != VKMIX_OK) goto done;
done:
    vkm_cmd_destroy(cmd);
    vkm_attn_work_free(dev, &w);
    vkm_buffer_destroy(dev, &qbuf);
    vkm_buffer_destroy(dev, &obuf);
    free(qh);
    free(gpu);
    free(rows);
    return e;
}

vkmix_error vkmix_session_step_counts(const vkmix_session *s, uint32_t *dispatches, uint32_t *barriers)
{
    if (!s || !dispatches || !barriers) return VKMIX_ERROR_INVALID_ARGUMENT;
    *dispatches = s->cmd.n_dispatch;
    *barriers = s->cmd.n_barrier;
    return VKMIX_OK;
}
