/* MiKV on the device (the rules and the CPU simulation: kv_policy_mikv.c; the
 * data: docs/KVCACHE.md, "MiKV"). A layer with a packed side keeps, besides the
 * per-layer policy's store (the low tier, the FP16 ring and sinks), one u32
 * buffer `aux` with its tier masks, the importance of the ring's tokens, the
 * balancer (b, max|q|, max|k|) and the high rows of keys and values. A step:
 *   store    the FP16 ring (vkm_kv_ring_store);
 *   attend   mikv_attn.comp, one workgroup per (KV head, query row, split), both tiers
 *            in one pass, the raw scores of the ring's tokens into `sc`; mikv_combine.comp
 *            merges the splits; then
 *            mikv_importance.comp adds each token's probabilities (never read back)
 *            and, over the first window, mikv_qmax.comp the balancer's max|q|.
 *            Prefill is this same kernel with one workgroup row per query row (no
 *            linear FP16 copy of the history): simple, and it reads exactly what
 *            decode reads, so one CPU simulation (fp32 dequantization) serves both;
 *   age      at the first block, mikv_balance.comp fixes b; mikv_age.comp picks the
 *            tiers and stages the rows; kvq_quant_k / kvq_quant_v pack them.
 * A layer whose sides are both 16 bits (and every layer of an FP16 configuration)
 * has no MiKV state: the plain FP16 attention, as the per-layer policy. */
#include "kv/mikv_device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct mikv_layer {
    vkm_buffer aux;          /* NULL buf: no packed side */
    uint32_t o_mask, o_score, o_bal, o_qmax, o_kmax, o_hk, o_hkm, o_hv, o_hvm; /* word offsets */
    uint64_t w_hk, w_hkm, w_hv, w_hvm;   /* words of the high rows' regions */
} mikv_layer;

typedef struct mikv_dev {
    mikv_layer *layer;       /* [n_layer] */
    vkm_buffer sc;           /* [KVL_CHUNK][n_head][ring] f32 scores, then [KVL_CHUNK][n_head] (max, sum) at o_ml,
                              * then the splits' partials [rows][n_head][splits][D + 2] at o_part (rows splits <= MAX_PARTS) */
    vkm_buffer stk;          /* [H][nst G][D] f16: low keys to pack */
    vkm_buffer shk, shv;     /* [H][nst kh][D] f16: high rows to pack at 8 bits */
    uint32_t o_ml, o_part, nst, kh;
} mikv_dev;

/* Splits of one attention call. A decode row: up to MAX_PARTS splits (VKMIX_POLICY_SPLITS) of
 * at least SPLIT_MIN tokens; 64 splits of 256+ tokens (the first version) left 512 workgroups for
 * a 32k decode of 8 KV heads: 784 us per layer on an H200 (2026-12-02). Several rows (prefill):
 * rows x splits <= PREFILL_PARTS, splits of at least PREFILL_SPLIT_MIN tokens (a chunk of 64 rows:
 * one split per row), as first written: more splits there change the rounding that the tests'
 * stories260K prefill bound was set on (8 per row moved it from 1e-3 to 4e-3 on lavapipe). */
#define MAX_PARTS 512u
#define SPLIT_MIN 64u
#define PREFILL_PARTS 64u
#define PREFILL_SPLIT_MIN 256u

static int layer_on(const vkm_kv_cache *c, uint32_t l) { return c->k[l].bits < 16 || c->v[l].bits < 16; }

static mikv_dev *dev_of(const vkm_kv_cache *c) { return c->policy_state; }

/* ------------------------------------------------------------------ storage */

static vkmix_error side_create(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t l, int is_v,
                               vkm_kv_side *s)
{
    vkm_kv_sizes z;
    vkm_kv_sizes_layer(&c->cfg, hp, c->n_ctx, 0, l, is_v, &z); /* the low tier: the per-layer policy's store */
    return vkm_kv_side_alloc(ctx, c, &z, l, is_v, s);
}

/* 64 words: offsets that satisfy any minStorageBufferOffsetAlignment (at most 256 bytes). */
static uint64_t align64(uint64_t w) { return (w + 63) / 64 * 64; }

/* The high rows of one side: codes and meta (8 bits) or FP16 words (16 bits). */
static void high_words(const vkm_kv_cache *c, uint64_t rows, uint64_t *codes, uint64_t *meta)
{
    const uint64_t D = c->head_dim;
    if (c->cfg.mikv.high_bits >= 16) {
        *codes = kvl_v_code_words(1, rows, 16, D);
        *meta = 0;
    } else {
        *codes = kvl_v_code_words(1, rows, 8, D);
        *meta = kvl_v_meta_words(1, rows, D, c->cfg.v_group);
    }
}

static vkmix_error layer_create(vkmix_context *ctx, vkm_kv_cache *c, mikv_dev *m, uint32_t l)
{
    mikv_layer *ml = &m->layer[l];
    const uint64_t H = c->n_kv_head, D = c->head_dim, rows = H * c->n_blocks * m->kh;
    uint64_t at = 0;
#define REGION(off, words)                                                                                             \
    do {                                                                                                               \
        (off) = (uint32_t)at;                                                                                          \
        at = align64(at + (words));                                                                                    \
    } while (0)
    REGION(ml->o_mask, kvl_mikv_mask(H * c->n_blocks, 0, c->cfg.group));
    REGION(ml->o_score, kvl_ring_score(H, 0, c->cfg.ring));
    if (c->k[l].bits < 16 && c->cfg.mikv.outlier_balancer) {
        REGION(ml->o_bal, kvl_head_channel(H, 0, D));
        REGION(ml->o_qmax, kvl_head_channel(H, 0, D));
        REGION(ml->o_kmax, kvl_head_channel(H, 0, D));
    }
    if (c->k[l].bits < 16) {
        high_words(c, rows, &ml->w_hk, &ml->w_hkm);
        REGION(ml->o_hk, ml->w_hk);
        REGION(ml->o_hkm, ml->w_hkm);
    }
    if (c->v[l].bits < 16) {
        high_words(c, rows, &ml->w_hv, &ml->w_hvm);
        REGION(ml->o_hv, ml->w_hv);
        REGION(ml->o_hvm, ml->w_hvm);
    }
#undef REGION
    if (at > UINT32_MAX) return vkm_fail(&ctx->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY, "layer %u: MiKV data too large", l);
    return vkm_kv_alloc(ctx, &ml->aux, at * 4, "MiKV tiers", l);
}

void vkm_mikv_destroy(vkm_device *dev, vkm_kv_cache *c)
{
    mikv_dev *m = dev_of(c);
    if (!m) return;
    if (m->layer)
        for (uint32_t l = 0; l < c->n_layer; l++) vkm_buffer_destroy(dev, &m->layer[l].aux);
    vkm_buffer_destroy(dev, &m->sc);
    vkm_buffer_destroy(dev, &m->stk);
    vkm_buffer_destroy(dev, &m->shk);
    vkm_buffer_destroy(dev, &m->shv);
    free(m->layer);
    free(m);
    c->policy_state = NULL;
}

vkmix_error vkm_mikv_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp)
{
    vkmix_error e;
    int any = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if ((e = side_create(ctx, c, hp, l, 0, &c->k[l])) != VKMIX_OK) return e;
        if ((e = side_create(ctx, c, hp, l, 1, &c->v[l])) != VKMIX_OK) return e;
        any |= layer_on(c, l);
    }
    if (!c->cfg.quantized || !any) return VKMIX_OK;
    mikv_dev *m = calloc(1, sizeof *m);
    if (!m) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    c->policy_state = m;
    if (!(m->layer = calloc(hp->n_layer, sizeof *m->layer))) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    const uint64_t H = c->n_kv_head, D = c->head_dim, G = c->cfg.group;
    m->kh = vkm_mikv_high_rows(&c->cfg);
    m->nst = KVL_CHUNK / c->cfg.group + 1; /* blocks one step can age: n <= KVL_CHUNK tokens */
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if (layer_on(c, l) && (e = layer_create(ctx, c, m, l)) != VKMIX_OK) return e;
    const uint64_t sc = (uint64_t)KVL_CHUNK * c->n_q_head * c->cfg.ring, ml = (uint64_t)KVL_CHUNK * c->n_q_head * 2;
    const uint64_t parts = (uint64_t)MAX_PARTS * c->n_q_head * (D + 2);
    m->o_ml = (uint32_t)sc;
    m->o_part = (uint32_t)(sc + ml);
    if ((e = vkm_kv_alloc(ctx, &m->sc, (sc + ml + parts) * 4, "MiKV scores", 0)) != VKMIX_OK) return e;
    if ((e = vkm_kv_alloc(ctx, &m->stk, H * m->nst * G * D * 2, "MiKV staging", 0)) != VKMIX_OK) return e;
    const uint64_t hi = H * m->nst * (m->kh ? m->kh : 1) * D * 2;
    if ((e = vkm_kv_alloc(ctx, &m->shk, hi, "MiKV staging", 0)) != VKMIX_OK) return e;
    return vkm_kv_alloc(ctx, &m->shv, hi, "MiKV staging", 0);
}

vkmix_error vkm_mikv_fill_synthetic(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t seed)
{
    mikv_dev *m = dev_of(c);
    if (!m) return VKMIX_OK;
    vkmix_error e = vkm_cmd_begin(cmd);
    for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++)
        if (m->layer[l].aux.buf) vkm_cmd_fill(cmd, &m->layer[l].aux, 0);
    if (e == VKMIX_OK) e = vkm_cmd_submit(cmd);
    const uint64_t hd = (uint64_t)c->n_kv_head * c->head_dim;
    /* tier masks: high_rows random tokens of every block are high, as after the age step */
    const uint32_t G = c->cfg.group, kh = vkm_mikv_high_rows(&c->cfg);
    const uint64_t nhb = (uint64_t)c->n_kv_head * c->n_blocks, mw = kvl_mikv_mask(nhb, 0, G);
    float *one = malloc(hd * 4);
    uint32_t *mask = calloc(mw, 4);
    if (!one || !mask) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint64_t i = 0; one && i < hd; i++) one[i] = 1.0f;
    uint64_t st = 0x9e3779b97f4a7c15ull ^ seed;
    for (uint64_t hb = 0; mask && hb < nhb; hb++)
        for (uint32_t j = 0; j < kh;) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            uint32_t t = (uint32_t)((st >> 33) % G), *w = &mask[kvl_mikv_mask(hb, t / 32, G)];
            if (*w & (1u << (t % 32))) continue;
            *w |= 1u << (t % 32);
            j++;
        }
    for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++) {
        if (!m->layer[l].aux.buf) continue;
        if (c->k[l].bits < 16 && c->cfg.mikv.outlier_balancer)
            e = vkm_buffer_upload(cmd, &m->layer[l].aux, (uint64_t)m->layer[l].o_bal * 4, one, hd * 4);
        if (e == VKMIX_OK) e = vkm_buffer_upload(cmd, &m->layer[l].aux, (uint64_t)m->layer[l].o_mask * 4, mask, mw * 4);
    }
    free(one);
    free(mask);
    return e;
}

void vkm_mikv_bytes(const vkm_kv_cache *c, uint64_t *data, uint64_t *work)
{
    const mikv_dev *m = dev_of(c);
    *data = *work = 0;
    if (!m) return;
    for (uint32_t l = 0; l < c->n_layer; l++) *data += m->layer[l].aux.size;
    *work = m->sc.size + m->stk.size + m->shk.size + m->shv.size;
}

const vkm_buffer *vkm_mikv_aux(const vkm_kv_cache *c, uint32_t layer, uint32_t *mask_off, uint32_t *score_off)
{
    const mikv_dev *m = dev_of(c);
    if (!m || layer >= c->n_layer || !m->layer[layer].aux.buf) return NULL;
    if (mask_off) *mask_off = m->layer[layer].o_mask;
    if (score_off) *score_off = m->layer[layer].o_score;
    return &m->layer[layer].aux;
}

/* ------------------------------------------------------------------ steps */

vkmix_error vkm_mikv_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                           uint32_t pos0)
{
    /* the importance of a reused ring slot restarts in mikv_importance.comp */
    return vkm_kv_store_layer(cmd, c, layer, k, v, n, pos0);
}

static const vkm_buffer *sinks_or_ring(const vkm_kv_side *s) { return s->sinks.buf ? &s->sinks : &s->ring; }
static const vkm_buffer *codes_or_ring(const vkm_buffer *b, const vkm_kv_side *s) { return b->buf ? b : &s->ring; }

static uint32_t wg_of(const vkmix_context *ctx, uint32_t want)
{
    while (want > ctx->dev.caps.max_wg_invocations) want /= 2;
    return want;
}

vkmix_error vkm_mikv_prefill(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t l, vkm_binding q, vkm_binding out,
                             vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_kv_side *K = &c->k[l], *V = &c->v[l];
    mikv_dev *m = dev_of(c);
    if (!m || !layer_on(c, l)) return vkm_kv_attention_linear(cmd, c, q, &K->ring, &V->ring, out, scratch, n, pos0);
    if (n > KVL_CHUNK)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INTERNAL, "MiKV attention: %u query rows (at most %u)", n, KVL_CHUNK);
    const mikv_layer *ml = &m->layer[l];
    const vkm_kv_config *cf = &c->cfg;
    const uint32_t G = cf->group, D = c->head_dim, nrep = c->n_q_head / c->n_kv_head, H = c->n_kv_head;
    const uint32_t nq = vkm_kv_blocks_at(cf, pos0);
    const int bal = K->bits < 16 && cf->mikv.outlier_balancer;
    const vkm_pipeline *p;
    vkmix_error e;
    uint32_t wg = wg_of(ctx, 64);
    uint32_t spec[9] = { wg, K->bits, V->bits, G, D, cf->v_group, nrep, m->kh, cf->mikv.high_bits >= 16 ? 16 : 8 };
    if ((e = vkm_pipe(ctx, VKM_SH_MIKV_ATTN, spec, 9, &p)) != VKMIX_OK) return e;
    /* splits: a decode row in at most MAX_PARTS (or VKMIX_POLICY_SPLITS) splits of at least
     * SPLIT_MIN tokens; n rows: the longest (pos0 + n positions) in at most PREFILL_PARTS / n
     * splits of at least PREFILL_SPLIT_MIN; a multiple of the workgroup (a function of the row
     * count and position only) */
    const uint32_t cap = ctx->tune.policy_splits && ctx->tune.policy_splits < MAX_PARTS ? ctx->tune.policy_splits : MAX_PARTS;
    const uint32_t p_max = pos0 + n;
    const uint32_t max_splits = n == 1 ? cap : PREFILL_PARTS / n ? PREFILL_PARTS / n : 1;
    uint32_t split_len = (p_max + max_splits - 1) / max_splits;
    if (split_len < (n == 1 ? SPLIT_MIN : PREFILL_SPLIT_MIN)) split_len = n == 1 ? SPLIT_MIN : PREFILL_SPLIT_MIN;
    split_len = (split_len + wg - 1) / wg * wg;
    const uint32_t n_splits = (p_max + split_len - 1) / split_len;
    struct {
        uint32_t S, ring, nq, n_blocks, pos0, n_head, n_ctx, bal_on;
        uint32_t o_mask, o_bal, o_hk, o_hkm, o_hv, o_hvm, o_part;
        float scale;
        uint32_t split_len, n_splits;
    } push = { cf->sinks, cf->ring, nq, c->n_blocks, pos0, c->n_q_head, c->n_ctx, bal && nq > 0,
               ml->o_mask, ml->o_bal, ml->o_hk, ml->o_hkm, ml->o_hv, ml->o_hvm, m->o_part, 1.0f / sqrtf((float)D),
               split_len, n_splits };
    vkm_binding b[12] = { q, out,
                          VKM_BIND(*codes_or_ring(&K->codes, K)), VKM_BIND(*codes_or_ring(&K->meta, K)),
                          VKM_BIND(K->ring), VKM_BIND(*sinks_or_ring(K)),
                          VKM_BIND(*codes_or_ring(&V->codes, V)), VKM_BIND(*codes_or_ring(&V->meta, V)),
                          VKM_BIND(V->ring), VKM_BIND(*sinks_or_ring(V)),
                          VKM_BIND(ml->aux), VKM_BIND(m->sc) };
    vkm_cmd_dispatch(cmd, p, b, 12, &push, sizeof push, c->n_kv_head, n, n_splits);
    vkm_cmd_barrier(cmd);
    uint32_t specc[2] = { wg, D };
    if ((e = vkm_pipe(ctx, VKM_SH_MIKV_COMBINE, specc, 2, &p)) != VKMIX_OK) return e;
    struct { uint32_t n_head, n_splits, o_part, o_ml; } pushc = { c->n_q_head, n_splits, m->o_part, m->o_ml };
    vkm_binding bc[2] = { VKM_BIND(m->sc), out };
    vkm_cmd_dispatch(cmd, p, bc, 2, &pushc, sizeof pushc, c->n_q_head, n, 1);
    vkm_cmd_barrier(cmd);
    /* importance of the ring's tokens */
    uint32_t wg2 = wg_of(ctx, 64), spec2[2] = { wg2, nrep };
    if ((e = vkm_pipe(ctx, VKM_SH_MIKV_IMPORTANCE, spec2, 2, &p)) != VKMIX_OK) return e;
    struct { uint32_t S, R, G, ring, nq, pos0, n_rows, n_head, n_kv, o_score, o_ml; } push2 = {
        cf->sinks, cf->window, G, cf->ring, nq, pos0, n, c->n_q_head, H, ml->o_score, m->o_ml
    };
    vkm_binding b2[2] = { VKM_BIND(m->sc), VKM_BIND(ml->aux) };
    vkm_cmd_dispatch(cmd, p, b2, 2, &push2, sizeof push2, vkm_groups_for(ctx, (uint64_t)H * cf->ring, wg2), 1, 1);
    /* the balancer's max|q| over the first window */
    if (bal && pos0 < cf->sinks + cf->window + G && pos0 + n > cf->sinks) {
        uint32_t spec3[3] = { wg2, nrep, D };
        if ((e = vkm_pipe(ctx, VKM_SH_MIKV_QMAX, spec3, 3, &p)) != VKMIX_OK) return e;
        struct { uint32_t S, R, G, pos0, n_rows, n_head, n_kv, o_qmax; } push3 = {
            cf->sinks, cf->window, G, pos0, n, c->n_q_head, H, ml->o_qmax
        };
        vkm_binding b3[2] = { q, VKM_BIND(ml->aux) };
        vkm_cmd_dispatch(cmd, p, b3, 2, &push3, sizeof push3, vkm_groups_for(ctx, (uint64_t)H * D, wg2), 1, 1);
    }
    return VKMIX_OK;
}

vkmix_error vkm_mikv_decode(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                            vkm_binding scratch, uint32_t pos0)
{
    return vkm_mikv_prefill(cmd, c, layer, q, out, scratch, 1, pos0);
}

vkmix_error vkm_mikv_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t l, uint32_t n, uint32_t pos0, int *recorded)
{
    vkmix_context *ctx = cmd->ctx;
    mikv_dev *m = dev_of(c);
    if (!m || !layer_on(c, l)) return VKMIX_OK;
    const vkm_kv_config *cf = &c->cfg;
    const uint32_t nq = vkm_kv_blocks_at(cf, pos0), nq_new = vkm_kv_blocks_at(cf, pos0 + n);
    if (nq_new <= nq) return VKMIX_OK;
    const uint32_t nb = nq_new - nq, G = cf->group, D = c->head_dim, H = c->n_kv_head, VG = cf->v_group, kh = m->kh;
    if (nb > m->nst)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INTERNAL, "MiKV: %u blocks aged in one step (at most %u)", nb, m->nst);
    vkm_kv_side *K = &c->k[l], *V = &c->v[l];
    const mikv_layer *ml = &m->layer[l];
    const int bal = K->bits < 16 && cf->mikv.outlier_balancer, hb8 = cf->mikv.high_bits < 16;
    const vkm_pipeline *p;
    vkmix_error e;
    if (bal && nq == 0) { /* the first block leaves the window: fix the balancer */
        uint32_t wg = wg_of(ctx, 64), spec[2] = { wg, D };
        if ((e = vkm_pipe(ctx, VKM_SH_MIKV_BALANCE, spec, 2, &p)) != VKMIX_OK) return e;
        struct { uint32_t S, R, G, ring, n_kv, o_bal, o_qmax, o_kmax; } push = {
            cf->sinks, cf->window, G, cf->ring, H, ml->o_bal, ml->o_qmax, ml->o_kmax
        };
        vkm_binding b[2] = { VKM_BIND(K->ring), VKM_BIND(ml->aux) };
        vkm_cmd_dispatch(cmd, p, b, 2, &push, sizeof push, vkm_groups_for(ctx, (uint64_t)H * D, wg), 1, 1);
        vkm_cmd_barrier(cmd);
    }
    uint32_t wg = wg_of(ctx, 128);
    uint32_t spec[7] = { wg, K->bits, V->bits, G, D, kh, hb8 ? 8 : 16 };
    if ((e = vkm_pipe(ctx, VKM_SH_MIKV_AGE, spec, 7, &p)) != VKMIX_OK) return e;
    struct { uint32_t S, ring, b0, n_blocks, nst, n_kv, bal_on, o_mask, o_score, o_bal, o_hk, o_hv; } push = {
        cf->sinks, cf->ring, nq, c->n_blocks, m->nst, H, (uint32_t)bal, ml->o_mask, ml->o_score, ml->o_bal, ml->o_hk,
        ml->o_hv
    };
    vkm_binding b[6] = { VKM_BIND(K->ring), VKM_BIND(V->ring), VKM_BIND(ml->aux),
                         VKM_BIND(m->stk), VKM_BIND(m->shk), VKM_BIND(m->shv) };
    vkm_cmd_dispatch(cmd, p, b, 6, &push, sizeof push, nb, H, 1);
    /* low values straight from the ring, per block (a block never wraps: ring % G == 0) */
    if (V->bits < 16)
        for (uint32_t blk = nq; blk < nq_new; blk++) {
            vkmix_kvq_shape sh = { VKMIX_KV_VALUES, V->bits, VG, D, H, G };
            vkm_kvq_range r = { cf->ring, (uint32_t)kvl_ring_slot(cf->sinks + blk * G, cf->sinks, cf->ring),
                                c->n_blocks * G, blk * G };
            if ((e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(V->ring), VKM_BIND(V->codes), VKM_BIND(V->meta))) !=
                VKMIX_OK)
                return e;
        }
    vkm_cmd_barrier(cmd);
    if (K->bits < 16) {
        vkmix_kvq_shape sh = { VKMIX_KV_KEYS, K->bits, G, D, H, nb * G };
        vkm_kvq_range r = { m->nst * G, 0, c->n_blocks, nq };
        if ((e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(m->stk), VKM_BIND(K->codes), VKM_BIND(K->meta))) != VKMIX_OK)
            return e;
    }
    if (hb8 && kh) {
        vkmix_kvq_shape sh = { VKMIX_KV_VALUES, 8, VG, D, H, nb * kh };
        vkm_kvq_range r = { m->nst * kh, 0, c->n_blocks * kh, nq * kh };
        if (K->bits < 16 &&
            (e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(m->shk), VKM_BIND_RANGE(ml->aux, (uint64_t)ml->o_hk * 4, ml->w_hk * 4),
                                      VKM_BIND_RANGE(ml->aux, (uint64_t)ml->o_hkm * 4, ml->w_hkm * 4))) != VKMIX_OK)
            return e;
        if (V->bits < 16 &&
            (e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(m->shv), VKM_BIND_RANGE(ml->aux, (uint64_t)ml->o_hv * 4, ml->w_hv * 4),
                                      VKM_BIND_RANGE(ml->aux, (uint64_t)ml->o_hvm * 4, ml->w_hvm * 4))) != VKMIX_OK)
            return e;
    }
    if (recorded) *recorded = 1;
    return VKMIX_OK;
}
