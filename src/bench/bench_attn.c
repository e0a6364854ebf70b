/* Benchmark support: synthetic cache contents, and decode attention timed alone
 * against a copy kernel, checked first against a CPU reference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "kv/kvquant.h"
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
            cp = codes + (size_t)h * c->n_blocks * (G * s->bits / 32) * D;
            mp = meta + (size_t)h * c->n_blocks * D;
        } else {
            cp = codes + (size_t)h * c->n_blocks * G * vkm_kvq_v_words_per_token(s->bits, D);
            mp = meta + (size_t)h * c->n_blocks * G * (D / c->cfg.v_group);
        }
        e = vkm_kvq_dequantize_f32(&sh, cp, mp, v->deq + (size_t)h * v->nq * G * D);
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
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->ring[((size_t)h * c->n_ctx + p) * D + d]);
        return;
    }
    const uint32_t S = c->cfg.sinks;
    if (p < S) {
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->sinks[((size_t)h * S + p) * D + d]);
    } else if (p < S + v->nq * G) {
        memcpy(out, v->deq + ((size_t)h * v->nq * G + (p - S)) * D, D * 4);
    } else {
        uint32_t slot = (p - S) % c->cfg.ring;
        for (uint32_t d = 0; d < D; d++) out[d] = h2f(v->ring[((size_t)h * c->cfg.ring + slot) * D + d]);
    }
}

/* ------------------------------------------------------------------ timing */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double side_bytes(const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t nq, uint32_t n)
{
    const double H = c->n_kv_head, D = c->head_dim, G = c->cfg.group;
    if (s->bits >= 16) return H * n * D * 2;
    double code = is_v ? H * nq * G * vkm_kvq_v_words_per_token(s->bits, c->head_dim) * 4 : H * nq * G * D * s->bits / 8;
    double meta = is_v ? H * nq * G * (D / c->cfg.v_group) * 4 : H * nq * D * 4;
    return code + meta + H * (n - nq * G) * D * 2;
}

static vkmix_error bench_attention(vkmix_session *s, vkm_cmd *cmd, uint32_t reps, vkmix_attn_bench *out);

vkmix_error vkmix_bench_attention(vkmix_session *s, uint32_t reps, vkmix_attn_bench *out)
{
    if (!s || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    vkmix_context *ctx = s->model->ctx;
    vkm_device *dev = &ctx->dev;
    if (!s->n_past || s->n_past >= s->n_ctx)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "attention benchmark: fill the cache first (n_past %u)", s->n_past);
    if (reps < 1) reps = 1;
    if (reps > VKM_MAX_TIMESTAMPS - 1) reps = VKM_MAX_TIMESTAMPS - 1;
    /* this call's own recording target, with timestamps */
    vkm_cmd tcmd, *cmd = &tcmd;
    vkmix_error e = vkm_cmd_create(cmd, dev, ctx, true);
    if (e != VKMIX_OK) return e;
    if (!cmd->timestamps) {
        vkm_cmd_destroy(cmd);
        return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the device's queue has no timestamps");
    }
    e = bench_attention(s, cmd, reps, out);
    vkm_cmd_destroy(cmd);
    return e;
}

static vkmix_error bench_attention(vkmix_session *s, vkm_cmd *cmd, uint32_t reps, vkmix_attn_bench *out)
{
    vkmix_model *m = s->model;
    vkmix_context *ctx = m->ctx;
    vkm_device *dev = &ctx->dev;
    const vkm_hparams *hp = &m->hp;
    vkm_kv_cache *c = &s->cache;
    const uint32_t pos = s->n_past, Q = hp->n_head * hp->head_dim, D = hp->head_dim;
    const uint32_t nq = c->cfg.quantized ? vkm_kv_blocks_at(&c->cfg, pos) : 0;
    vkmix_error e;
    /* a random query in the scratch q buffer (row 0) */
    float *qh = malloc((size_t)Q * 4), *gpu = malloc((size_t)Q * 4);
    if (!qh || !gpu) { free(qh); free(gpu); return VKMIX_ERROR_OUT_OF_HOST_MEMORY; }
    uint64_t st = 0x1234567ull + pos;
    for (uint32_t i = 0; i < Q; i++) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        qh[i] = ((float)(st >> 40) / 16777216.0f - 0.5f) * 4.0f;
    }
    e = vkm_buffer_upload(cmd, &s->sc.q, 0, qh, (uint64_t)Q * 4);
    vkm_binding qb = VKM_BIND_RANGE(s->sc.q, 0, (uint64_t)Q * 4), ob = VKM_BIND_RANGE(s->sc.att, 0, (uint64_t)Q * 4);
    /* attention of position `pos` over [0, pos]: the current token must be in the cache,
     * as after a store; the synthetic fill already wrote every slot */
    if (e == VKMIX_OK && (e = vkm_cmd_begin(cmd)) == VKMIX_OK) {
        e = vkm_kv_cache_attention(cmd, c, 0, qb, ob, VKM_BIND(s->attn_scratch), 1, pos);
        if (e == VKMIX_OK) e = vkm_cmd_submit(cmd);
    }
    if (e == VKMIX_OK) e = vkm_buffer_download(cmd, &s->sc.att, 0, gpu, (uint64_t)Q * 4);
    /* CPU reference over the same cache contents */
    side_view kv[2];
    memset(kv, 0, sizeof kv);
    if (e == VKMIX_OK) e = view_create(cmd, c, &c->k[0], 0, nq, &kv[0]);
    if (e == VKMIX_OK) e = view_create(cmd, c, &c->v[0], 1, nq, &kv[1]);
    if (e == VKMIX_OK) {
        const uint32_t n = pos + 1, rep = hp->n_head / hp->n_head_kv;
        float *sc = malloc((size_t)n * 4), *row = malloc((size_t)D * 4);
        double *acc = malloc((size_t)D * 8);
        double num = 0, den = 0;
        for (uint32_t qh_i = 0; qh_i < hp->n_head && sc && row && acc; qh_i++) {
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
        out->check_rel_err = isnan(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1e-30));
        free(sc);
        free(row);
        free(acc);
    }
    view_free(&kv[0]);
    view_free(&kv[1]);
    free(qh);
    free(gpu);
    if (e != VKMIX_OK) return e;
    if (!(out->check_rel_err <= 1e-3))
        return vkm_fail(dev, VKMIX_ERROR_INTERNAL,
                        "attention check failed: relative error %.3e against the CPU reference (bound 1e-3)",
                        out->check_rel_err);
    /* time: every layer's attention for one query, between two timestamps */
    double t[VKM_MAX_TIMESTAMPS];
    for (int pass = 0; pass < 4; pass++) { /* passes 0-2 warm up (clocks ramp up under load) */
        if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) return e;
        vkm_cmd_timestamp(cmd, 0);
        for (uint32_t r = 0; r < reps && e == VKMIX_OK; r++) {
            for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++)
                e = vkm_kv_cache_attention(cmd, c, l, qb, ob, VKM_BIND(s->attn_scratch), 1, pos);
            vkm_cmd_barrier(cmd);
            vkm_cmd_timestamp(cmd, r + 1);
        }
        if (e != VKMIX_OK) return e;
        if ((e = vkm_cmd_submit(cmd)) != VKMIX_OK) return e;
    }
    for (uint32_t r = 0; r < reps; r++) {
        if ((e = vkm_timestamp_ns(cmd, r, r + 1, &t[r])) != VKMIX_OK) return e;
        t[r] /= c->n_layer;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    out->us_per_layer = t[reps / 2] * 1e-3;
    double bytes = 0;
    for (uint32_t l = 0; l < c->n_layer; l++)
        bytes += side_bytes(c, &c->k[l], 0, nq, pos + 1) + side_bytes(c, &c->v[l], 1, nq, pos + 1);
    out->bytes_per_layer = bytes / c->n_layer;
    out->gbps = out->bytes_per_layer / (out->us_per_layer * 1e3);
    /* the copy kernel on 256 MiB (well past any cache) */
    vkmix_kvq_shape cs = { VKMIX_KV_KEYS, 2, 32, 128, 8, dev->caps.quirk_cpu_device ? 4096 : 131072 };
    vkmix_kvq_bench kb;
    if ((e = vkmix_kvq_bench_run(ctx, &cs, reps, &kb)) != VKMIX_OK) return e;
    out->copy_gbps = kb.copy_bytes / (kb.copy_ms * 1e6);
    return VKMIX_OK;
}

vkmix_error vkmix_session_step_counts(const vkmix_session *s, uint32_t *dispatches, uint32_t *barriers)
{
    if (!s || !dispatches || !barriers) return VKMIX_ERROR_INVALID_ARGUMENT;
    *dispatches = s->cmd.n_dispatch;
    *barriers = s->cmd.n_barrier;
    return VKMIX_OK;
}
