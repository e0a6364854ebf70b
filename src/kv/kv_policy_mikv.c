/* MiKV (arXiv 2402.18096): importance-aware mixed precision per token, no eviction.
 * This file has the host side that does not depend on the attention kernels: the
 * parameters' checks, the accounting of everything the policy stores, the
 * selection rules, and the CPU simulation (the reference the GPU will be tested
 * against). The device operations are not written yet (create == NULL), so
 * sessions refuse the policy. docs/KVCACHE.md, "MiKV", has the rules and the
 * GPU data; in short:
 *
 *   importance   imp(p) = sum of the softmax probabilities token p received from the query
 *                heads of its KV head, over the queries j < S + R + (block(p) + 1) G (those
 *                asked while p's block was still in the FP16 window), per layer and KV head
 *   tiers        when a block of G tokens leaves the window, its high_rows = round(frac G)
 *                most important tokens (ties: the earlier) keep high_bits (8: per token in
 *                groups of VG channels, or 16: FP16); the others take the layer's widths; the
 *                decision is final (a token that becomes important later stays low: its low
 *                codes cannot be re-expanded; the window gives every token R queries first)
 *   low keys     quantized per channel over the block with the important tokens replaced by
 *                the block's first unimportant token, so they do not widen the range
 *   balancer     b(h, d) = sqrt(max|q_d| / max|k_d|) over the positions [S, S + R + G) (the
 *                first window, measured when the first block leaves it; the query max over the
 *                GQA group's heads), clamped to [2^-8, 2^8]; packed keys (both tiers) store
 *                fp16(k b) quantized, the attention reads them with q / b; FP16 window and
 *                sinks stay unbalanced
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/mikv_device.h"

static vkmix_error mikv_check(const vkmix_kv_config *c, const vkm_hparams *hp, char *err, size_t errlen)
{
    (void)hp;
    const vkmix_kv_mikv_params *m = &c->mikv;
    const char *why = NULL;
    char buf[160];
    if (!(m->important_fraction > 0.0f && m->important_fraction < 1.0f)) {
        snprintf(buf, sizeof buf, "mikv important_fraction %g must be in (0, 1)", (double)m->important_fraction);
        why = buf;
    } else if (m->high_bits != 8 && m->high_bits != 16) {
        snprintf(buf, sizeof buf, "mikv high_bits %u must be 8 or 16", m->high_bits);
        why = buf;
    } else if (m->outlier_balancer != 0 && m->outlier_balancer != 1)
        why = "mikv outlier_balancer must be 0 or 1";
    if (!why) return VKMIX_OK;
    if (err && errlen) snprintf(err, errlen, "KV configuration '%s': %s", c->name, why);
    return VKMIX_ERROR_BAD_PROFILE;
}

/* ------------------------------------------------------------------ rules */

uint32_t vkm_mikv_high_rows(const vkm_kv_config *c)
{
    uint32_t k = (uint32_t)(c->mikv.important_fraction * (float)c->group + 0.5f);
    return k > c->group ? c->group : k;
}

void vkm_mikv_select(const float *imp, uint32_t n, uint32_t k, uint32_t *mask)
{
    memset(mask, 0, (n + 31) / 32 * 4);
    if (k > n) k = n;
    for (uint32_t r = 0; r < k; r++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t t = 0; t < n; t++) {
            if (mask[t / 32] >> (t % 32) & 1u) continue;
            if (best == UINT32_MAX || imp[t] > imp[best]) best = t; /* strict: ties keep the earlier token */
        }
        mask[best / 32] |= 1u << (best % 32);
    }
}

float vkm_mikv_balance(float qmax, float kmax)
{
    if (!(qmax > 0.0f) || !(kmax > 0.0f) || isinf(qmax) || isinf(kmax)) return 1.0f;
    float b = sqrtf(qmax / kmax);
    if (b < 1.0f / 256.0f) b = 1.0f / 256.0f;
    if (b > 256.0f) b = 256.0f;
    return b;
}

void vkm_mikv_accumulate(const vkm_kv_config *c, float *imp, const float *probs, uint32_t nrep, uint32_t j)
{
    const uint32_t S = c->sinks, R = c->window, G = c->group;
    for (uint32_t p = S; p <= j; p++) {
        if (j >= S + R + ((p - S) / G + 1) * G) continue; /* p's block has left the window */
        float acc = 0.0f;
        for (uint32_t r = 0; r < nrep; r++) acc += probs[(size_t)r * (j + 1) + p];
        imp[p] += acc;
    }
}

/* ------------------------------------------------------------------ accounting */

/* The side that carries the per-token state (tier masks, importance): K when packed, else V. */
static int owns_token_state(const vkm_kv_config *c, uint32_t l, int is_v)
{
    return is_v ? c->k_bits[l] >= 16 : 1;
}

static void mikv_sizes(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t l,
                       int is_v, vkm_kv_sizes *o)
{
    vkm_kv_sizes_layer(c, hp, n_ctx, n_tokens, l, is_v, o); /* the low tier, ring and sinks */
    const uint32_t b = is_v ? c->v_bits[l] : c->k_bits[l];
    if (b >= 16) return;
    const uint64_t H = hp->n_head_kv, D = hp->head_dim, G = c->group;
    const uint64_t nb = n_tokens ? vkm_kv_blocks_at(c, n_tokens) : vkm_kv_blocks(c, n_ctx);
    const uint64_t kh = vkm_mikv_high_rows(c), rows = H * nb * kh;
    if (c->mikv.high_bits >= 16) o->fp16_bytes += 2 * kvl_f16(0, rows, 0, 0, D);
    else {
        o->code_bytes += 4 * kvl_v_code_words(1, rows, 8, D);
        o->meta_bytes += 4 * kvl_v_meta_words(1, rows, D, c->v_group);
    }
    if (owns_token_state(c, l, is_v)) {
        o->aux_bytes += 4 * kvl_mikv_mask(H * nb, 0, G);            /* tier masks */
        o->aux_bytes += 4 * kvl_ring_score(H, 0, c->ring);          /* importance of the FP16 tokens */
    }
    if (!is_v && c->mikv.outlier_balancer) o->aux_bytes += 3 * 4 * kvl_head_channel(H, 0, D); /* b, max|q|, max|k| */
}

/* ------------------------------------------------------------------ CPU simulation */

typedef struct mikv_sim {
    uint32_t n_ctx, L, H, D, nrep;
    float *imp;        /* [L][H][n_ctx] attention received */
    float *qmax;       /* [L][H][D] max |q| over the first window */
    float *bal;        /* [L][H][D] balancer factors (1 until the first block leaves the window) */
    uint8_t *frozen;   /* [L] balancer measured */
    float *probs;      /* [nrep][n_ctx] scratch */
    float *tmp;        /* [G][D] scratch */
} mikv_sim;

const float *vkm_mikv_sim_importance(const void *state, uint32_t layer, uint32_t head)
{
    const mikv_sim *s = state;
    if (!s || layer >= s->L || head >= s->H) return NULL;
    return s->imp + ((size_t)layer * s->H + head) * s->n_ctx;
}

static void mikv_sim_free(void *state)
{
    mikv_sim *s = state;
    if (!s) return;
    free(s->imp);
    free(s->qmax);
    free(s->bal);
    free(s->frozen);
    free(s->probs);
    free(s->tmp);
    free(s);
}

static vkmix_error mikv_sim_create(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, void **state)
{
    mikv_sim *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    s->n_ctx = n_ctx;
    s->L = hp->n_layer;
    s->H = hp->n_head_kv;
    s->D = hp->head_dim;
    s->nrep = hp->n_head / hp->n_head_kv;
    const size_t hd = (size_t)s->L * s->H * s->D;
    s->imp = calloc((size_t)s->L * s->H * n_ctx, sizeof *s->imp);
    s->qmax = calloc(hd, sizeof *s->qmax);
    s->bal = malloc(hd * sizeof *s->bal);
    s->frozen = calloc(s->L, 1);
    s->probs = malloc((size_t)s->nrep * n_ctx * sizeof *s->probs);
    s->tmp = malloc((size_t)c->group * s->D * sizeof *s->tmp);
    if (!s->imp || !s->qmax || !s->bal || !s->frozen || !s->probs || !s->tmp) {
        mikv_sim_free(s);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    for (size_t i = 0; i < hd; i++) s->bal[i] = 1.0f;
    *state = s;
    return VKMIX_OK;
}

static int layer_packed(const vkm_kv_config *c, uint32_t l) { return c->k_bits[l] < 16 || c->v_bits[l] < 16; }

static vkmix_error mikv_sim_observe(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t l, uint32_t j,
                                    const float *q, const float *k, const float *v)
{
    (void)v;
    mikv_sim *s = state;
    if (!c->quantized || !layer_packed(c, l)) return VKMIX_OK;
    if (j >= s->n_ctx) return VKMIX_ERROR_CONTEXT_OVERFLOW;
    const uint32_t H = s->H, D = s->D, nrep = s->nrep, S = c->sinks, kv_dim = H * D;
    const float scale = 1.0f / sqrtf((float)D);
    /* the balancer's query statistics over the first window */
    if (c->mikv.outlier_balancer && j >= S && j < S + c->window + c->group)
        for (uint32_t h = 0; h < hp->n_head; h++) {
            float *qm = s->qmax + ((size_t)l * H + h / nrep) * D;
            for (uint32_t d = 0; d < D; d++) qm[d] = fmaxf(qm[d], fabsf(q[(size_t)h * D + d]));
        }
    /* the probabilities of this query's attention, per KV head */
    for (uint32_t kh = 0; kh < H; kh++) {
        for (uint32_t r = 0; r < nrep; r++) {
            const float *qh = q + (size_t)(kh * nrep + r) * D;
            float *pr = s->probs + (size_t)r * (j + 1), mx = -INFINITY, sum = 0.0f;
            for (uint32_t t = 0; t <= j; t++) {
                const float *kt = k + (size_t)t * kv_dim + (size_t)kh * D;
                float dot = 0.0f;
                for (uint32_t d = 0; d < D; d++) dot += qh[d] * kt[d];
                pr[t] = dot * scale;
                mx = fmaxf(mx, pr[t]);
            }
            for (uint32_t t = 0; t <= j; t++) sum += pr[t] = expf(pr[t] - mx);
            for (uint32_t t = 0; t <= j; t++) pr[t] /= sum;
        }
        vkm_mikv_accumulate(c, s->imp + ((size_t)l * H + kh) * s->n_ctx, s->probs, nrep, j);
    }
    return VKMIX_OK;
}

/* The balancer of layer l from the first window [S, S + R + G) of keys k. */
static void measure_balancer(mikv_sim *s, const vkm_kv_config *c, uint32_t l, const float *k)
{
    const uint32_t H = s->H, D = s->D, S = c->sinks, end = S + c->window + c->group;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t d = 0; d < D; d++) {
            float km = 0.0f;
            for (uint32_t p = S; p < end; p++) km = fmaxf(km, fabsf(k[(size_t)p * H * D + (size_t)h * D + d]));
            const size_t i = ((size_t)l * H + h) * D + d;
            s->bal[i] = c->mikv.outlier_balancer ? vkm_mikv_balance(s->qmax[i], km) : 1.0f;
        }
    s->frozen[l] = 1;
}

static int masked(const uint32_t *mask, uint32_t t) { return mask[t / 32] >> (t % 32) & 1u; }

/* One head of one block: keys (is_v 0) or values through the two tiers, in place in x
 * (rows pos.. of [n][H*D]). */
static vkmix_error age_head(mikv_sim *s, const vkm_kv_config *c, uint32_t l, uint32_t h, int is_v, float *x,
                            uint32_t pos, const uint32_t *mask, int fp16)
{
    const uint32_t G = c->group, D = s->D, H = s->H, bits = is_v ? c->v_bits[l] : c->k_bits[l];
    const float *b = s->bal + ((size_t)l * H + h) * D;
    float *t = s->tmp;
    uint32_t first_low = G;
    for (uint32_t i = 0; i < G && first_low == G; i++)
        if (!masked(mask, i)) first_low = i;
    /* the rows as the quantizer reads them: FP16, keys balanced (fp16(k b)) */
    for (uint32_t i = 0; i < G; i++)
        for (uint32_t d = 0; d < D; d++) {
            float v = x[(size_t)(pos + i) * H * D + (size_t)h * D + d];
            t[(size_t)i * D + d] = is_v ? v : vkmix_f16_to_f32(vkmix_f32_to_f16(v * b[d]));
        }
    vkmix_error e = VKMIX_OK;
    /* high tier: per token */
    for (uint32_t i = 0; i < G && e == VKMIX_OK; i++)
        if (masked(mask, i) && c->mikv.high_bits < 16) e = vkm_kv_sim_quantize(t + (size_t)i * D, 1, D, 1, 8, c->v_group, 0);
    /* low tier: values per token; keys per channel over the block, important tokens replaced */
    if (is_v) {
        for (uint32_t i = 0; i < G && e == VKMIX_OK; i++)
            if (!masked(mask, i)) e = vkm_kv_sim_quantize(t + (size_t)i * D, 1, D, 1, bits, c->v_group, 0);
    } else if (first_low < G) {
        float *low = malloc((size_t)G * D * sizeof *low);
        if (!low) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        for (uint32_t i = 0; i < G; i++)
            memcpy(low + (size_t)i * D, t + (size_t)(masked(mask, i) ? first_low : i) * D, D * sizeof *low);
        e = vkm_kv_sim_quantize(low, G, D, 0, bits, G, 0);
        for (uint32_t i = 0; i < G && e == VKMIX_OK; i++)
            if (!masked(mask, i)) memcpy(t + (size_t)i * D, low + (size_t)i * D, D * sizeof *low);
        free(low);
    }
    if (e != VKMIX_OK) return e;
    for (uint32_t i = 0; i < G; i++)
        for (uint32_t d = 0; d < D; d++) {
            float v = t[(size_t)i * D + d];
            if (!is_v) v /= b[d]; /* what q . k reads: (q / b) . deq = q . (deq / b) */
            x[(size_t)(pos + i) * H * D + (size_t)h * D + d] = fp16 ? vkmix_f16_to_f32(vkmix_f32_to_f16(v)) : v;
        }
    return VKMIX_OK;
}

static vkmix_error mikv_sim_age(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t l, float *k,
                                float *v, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    (void)hp;
    mikv_sim *s = state;
    if (!s) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (!c->quantized || !layer_packed(c, l)) return VKMIX_OK;
    const uint32_t G = c->group, b0 = vkm_kv_blocks_at(c, n_old), b1 = vkm_kv_blocks_at(c, n_new);
    if (b1 <= b0) return VKMIX_OK;
    if (!s->frozen[l]) measure_balancer(s, c, l, k);
    const uint32_t kh = vkm_mikv_high_rows(c);
    uint32_t mask[4];
    vkmix_error e = VKMIX_OK;
    for (uint32_t blk = b0; blk < b1 && e == VKMIX_OK; blk++) {
        const uint32_t pos = c->sinks + blk * G;
        for (uint32_t h = 0; h < s->H && e == VKMIX_OK; h++) {
            vkm_mikv_select(s->imp + ((size_t)l * s->H + h) * s->n_ctx + pos, G, kh, mask);
            if (c->k_bits[l] < 16) e = age_head(s, c, l, h, 0, k, pos, mask, fp16_dequant);
            if (e == VKMIX_OK && c->v_bits[l] < 16) e = age_head(s, c, l, h, 1, v, pos, mask, fp16_dequant);
        }
    }
    return e;
}

const vkm_kv_policy_ops vkm_kv_policy_mikv = {
    .id = VKMIX_KV_POLICY_MIKV,
    .name = "mikv",
    .check = mikv_check,
    .sizes = mikv_sizes,
    .create = vkm_mikv_create,
    .destroy = vkm_mikv_destroy,
    .store = vkm_mikv_store,
    .decode = vkm_mikv_decode,
    .prefill = vkm_mikv_prefill,
    .age = vkm_mikv_age,
    .sim_create = mikv_sim_create,
    .sim_free = mikv_sim_free,
    .sim_observe = mikv_sim_observe,
    .sim_age = mikv_sim_age,
};
