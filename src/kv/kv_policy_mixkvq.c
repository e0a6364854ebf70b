/* MixKVQ (arXiv 2512.19206): query-aware key-channel precision. This file has the
 * host side that does not depend on the attention kernels: checks, accounting,
 * the tier rules, the packed block format on the CPU, and the CPU simulation.
 * The device operations are in mixkvq_device.c. docs/KVCACHE.md, "MixKVQ", has the
 * rules and the GPU data; in short:
 *
 *   importance   I_d = mean |q_d| over the Q recent query positions [e - Q, e) and the GQA
 *                group's heads, e = S + R + (b + 1) G the token count at which block b leaves
 *                the window (Q = recent_queries, or R; a multiple of G, at most R + G); the
 *                mean is the sum times fp32(1 / (Q NREP))
 *   sensitivity  S_d = (max_d - min_d) * fp32(1 / 3) over the block's G keys (the 2-bit step)
 *                (products by fp32 reciprocals, not divisions: Vulkan rounds products exactly
 *                and divisions not, and the GPU must reproduce these values bit for bit)
 *   salience     A_d = I_d S_d
 *   tiers        FP16 / 4 / 2 bits per channel, at most `budget` code bits per token
 *                (floor(T D), T the target or the layer's key width), chosen by
 *                vkm_mixkvq_tiers; values keep the layer's width, per token
 *   format       per head-block: FP16 channels, then 4-bit, then 2-bit (each in channel
 *                order) in a region of budget G / 32 words; scale/min per permuted position;
 *                a tier map of two D-bit masks (the permutation is implied by it)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "kv/mixkvq_device.h"

static vkmix_error mixkvq_check(const vkmix_kv_config *c, const vkm_hparams *hp, char *err, size_t errlen)
{
    (void)hp;
    const vkmix_kv_mixkvq_params *m = &c->mixkvq;
    const uint32_t G = c->group ? c->group : 32, R = c->window ? c->window : 128;
    const uint32_t Q = m->recent_queries ? m->recent_queries : R;
    char why[200];
    why[0] = 0;
    if (m->target_key_bits != 0.0f && !(m->target_key_bits >= 2.0f && m->target_key_bits <= 16.0f))
        snprintf(why, sizeof why, "mixkvq target_key_bits %g must be in [2, 16] (0: the layer's key width)",
                 (double)m->target_key_bits);
    else if (!(m->threshold_fp16 >= 0.0f) || !(m->threshold_4bit >= 0.0f) || isinf(m->threshold_fp16) ||
             isinf(m->threshold_4bit))
        snprintf(why, sizeof why, "mixkvq thresholds must be finite and >= 0");
    else if (m->threshold_fp16 > 0.0f && m->threshold_fp16 < m->threshold_4bit)
        snprintf(why, sizeof why, "mixkvq threshold_fp16 %g is below threshold_4bit %g", (double)m->threshold_fp16,
                 (double)m->threshold_4bit);
    else if (m->threshold_4bit > 0.0f && m->threshold_fp16 == 0.0f)
        snprintf(why, sizeof why, "mixkvq threshold_4bit needs threshold_fp16 too");
    else if (m->block % G)
        snprintf(why, sizeof why, "mixkvq block %u must be a multiple of the group (%u)", m->block, G);
    else if (m->block && m->block != G)
        snprintf(why, sizeof why, "mixkvq block %u: only blocks of one group (%u) are supported", m->block, G);
    else if (R % G)
        snprintf(why, sizeof why, "mixkvq needs a window (%u) that is a multiple of the group (%u)", R, G);
    else if (Q % G || Q > R + G)
        snprintf(why, sizeof why, "mixkvq recent_queries %u must be a multiple of the group (%u), at most window + group (%u)",
                 Q, G, R + G);
    if (!why[0]) return VKMIX_OK;
    if (err && errlen) snprintf(err, errlen, "KV configuration '%s': %s", c->name, why);
    return VKMIX_ERROR_BAD_PROFILE;
}

/* ------------------------------------------------------------------ rules */

uint32_t vkm_mixkvq_budget(const vkm_kv_config *c, uint32_t l, uint32_t head_dim)
{
    float T = c->mixkvq.target_key_bits > 0.0f ? c->mixkvq.target_key_bits : (float)c->k_bits[l];
    return (uint32_t)floorf(T * (float)head_dim);
}

uint32_t vkm_mixkvq_queries(const vkm_kv_config *c)
{
    return c->mixkvq.recent_queries ? c->mixkvq.recent_queries : c->window;
}

float vkm_mixkvq_rcp(const vkm_kv_config *c, const vkm_hparams *hp)
{
    return 1.0f / (float)(vkm_mixkvq_queries(c) * (hp->n_head / hp->n_head_kv));
}

void vkm_mixkvq_salience(const float *imp, const float *mn, const float *mx, uint32_t D, float *A)
{
    for (uint32_t d = 0; d < D; d++) A[d] = imp[d] * ((mx[d] - mn[d]) * (1.0f / 3.0f));
}

/* An upgrade of one channel: 2 -> 4 bits (step 0) or 4 -> 16 (step 1). */
typedef struct upgrade { float key; uint16_t d; uint8_t step; } upgrade;

/* Decreasing key; ties: 2 -> 4 first, then the lower channel. */
static int upgrade_cmp(const void *a, const void *b)
{
    const upgrade *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return x->d < y->d ? -1 : x->d > y->d;
}

uint32_t vkm_mixkvq_tiers(const float *A, uint32_t D, uint32_t budget, float t16, float t4, uint8_t *bits)
{
    upgrade *u = malloc((size_t)2 * D * sizeof *u);
    for (uint32_t d = 0; d < D; d++) bits[d] = 2;
    uint32_t used = 2 * D;
    if (!u) return used; /* out of memory: every channel at 2 bits, still within the budget */
    for (uint32_t d = 0; d < D; d++) {
        /* (A 3/3)^2 - (A 3/15)^2 per 2 bits against (A 3/15)^2 per 12 bits: 12 A against A */
        u[2 * d] = (upgrade){ 12.0f * A[d], (uint16_t)d, 0 };
        u[2 * d + 1] = (upgrade){ A[d], (uint16_t)d, 1 };
    }
    qsort(u, (size_t)2 * D, sizeof *u, upgrade_cmp);
    for (uint32_t i = 0; i < 2 * D; i++) {
        const uint32_t d = u[i].d, cost = u[i].step ? 12 : 2;
        /* with thresholds, only the upgrades they allow: 2 -> 4 from t4 (or t16), 4 -> 16 from t16 */
        if (t16 > 0.0f && !(u[i].step ? A[d] >= t16 : A[d] >= t16 || (t4 > 0.0f && A[d] >= t4))) continue;
        if (used + cost > budget) continue;
        if (u[i].step == 0 && bits[d] == 2) {
            bits[d] = 4;
            used += cost;
        } else if (u[i].step == 1 && bits[d] == 4) {
            bits[d] = 16;
            used += cost;
        }
    }
    free(u);
    return used;
}

void vkm_mixkvq_permutation(const uint8_t *bits, uint32_t D, uint16_t *perm, uint32_t *n16, uint32_t *n4)
{
    static const uint8_t order[3] = { 16, 4, 2 };
    uint32_t p = 0, count[3] = { 0, 0, 0 };
    for (int t = 0; t < 3; t++)
        for (uint32_t d = 0; d < D; d++)
            if (bits[d] == order[t]) {
                perm[p++] = (uint16_t)d;
                count[t]++;
            }
    if (n16) *n16 = count[0];
    if (n4) *n4 = count[1];
}

/* ------------------------------------------------------------------ the packed block on the CPU */

/* Scale/min and codes of one channel (x[G], FP16 values) at `bits` < 16: the format's rule. */
static uint32_t channel_meta(const float *x, uint32_t stride, uint32_t G, uint32_t bits)
{
    float mn = x[0], mx = x[0];
    for (uint32_t t = 1; t < G; t++) {
        mn = fminf(mn, x[(size_t)t * stride]);
        mx = fmaxf(mx, x[(size_t)t * stride]);
    }
    return vkm_kvq_meta(mn, mx, bits);
}

static float meta_scale(uint32_t mv) { return vkmix_f16_to_f32((uint16_t)kvl_meta_scale(mv)); }
static float meta_min(uint32_t mv) { return vkmix_f16_to_f32((uint16_t)kvl_meta_min(mv)); }

/* One head-block (hb = 0): x[G][D] FP16 values, bits[D] -> region (budget G / 32 words),
 * meta[D], map[kvl_mix_map_words(D)]. Reads back with vkm_mixkvq_unpack. */
void vkm_mixkvq_pack(const float *x, const uint8_t *bits, uint32_t G, uint32_t D, uint32_t budget, uint32_t *region,
                     uint32_t *meta, uint32_t *map)
{
    uint16_t perm[1024];
    uint32_t n16, n4;
    vkm_mixkvq_permutation(bits, D, perm, &n16, &n4);
    const uint32_t n_t[3] = { n16, n4, D - n16 - n4 }, width[3] = { 16, 4, 2 };
    memset(region, 0, 4 * kvl_mix_words(budget, G));
    memset(meta, 0, 4 * (size_t)D);
    memset(map, 0, 4 * kvl_mix_map_words(D));
    for (uint32_t d = 0; d < D; d++) {
        if (bits[d] == 16) map[kvl_mix_map(0, 0, d / 32, D)] |= 1u << (d % 32);
        if (bits[d] == 4) map[kvl_mix_map(0, 1, d / 32, D)] |= 1u << (d % 32);
    }
    uint32_t p = 0;
    for (uint32_t t = 0; t < 3; t++) {
        const uint64_t base = kvl_mix_tier_base(0, 0, t, n16, n4, G);
        const uint32_t b = width[t];
        for (uint32_t j = 0; j < n_t[t]; j++, p++) {
            const uint32_t d = perm[p];
            uint32_t mv = b < 16 ? channel_meta(x + d, D, G, b) : 0;
            meta[kvl_mix_meta(0, p, D)] = mv;
            for (uint32_t i = 0; i < G; i++) {
                float v = x[(size_t)i * D + d];
                uint32_t q = b == 16 ? vkmix_f32_to_f16(v) : vkm_kvq_code(v, meta_scale(mv), meta_min(mv), b);
                uint64_t bit = kvl_k_bit(i, b);
                region[kvl_mix_code(base, bit / 32, j, n_t[t])] |= q << (bit % 32);
            }
        }
    }
}

/* The inverse: y[G][D] = what the attention reads (FP16 channels exact, the others code * scale + min). */
void vkm_mixkvq_unpack(const uint32_t *region, const uint32_t *meta, const uint32_t *map, uint32_t G, uint32_t D, float *y)
{
    uint8_t bits[1024];
    for (uint32_t d = 0; d < D; d++)
        bits[d] = map[kvl_mix_map(0, 0, d / 32, D)] >> (d % 32) & 1u   ? 16
                  : map[kvl_mix_map(0, 1, d / 32, D)] >> (d % 32) & 1u ? 4
                                                                       : 2;
    uint16_t perm[1024];
    uint32_t n16, n4;
    vkm_mixkvq_permutation(bits, D, perm, &n16, &n4);
    const uint32_t n_t[3] = { n16, n4, D - n16 - n4 }, width[3] = { 16, 4, 2 };
    uint32_t p = 0;
    for (uint32_t t = 0; t < 3; t++) {
        const uint64_t base = kvl_mix_tier_base(0, 0, t, n16, n4, G);
        const uint32_t b = width[t];
        for (uint32_t j = 0; j < n_t[t]; j++, p++) {
            const uint32_t d = perm[p], mv = meta[kvl_mix_meta(0, p, D)];
            for (uint32_t i = 0; i < G; i++) {
                uint64_t bit = kvl_k_bit(i, b);
                uint32_t w = region[kvl_mix_code(base, bit / 32, j, n_t[t])];
                uint32_t q = kvl_extract(w, 0, (uint32_t)(bit % 32), b); /* codes never cross words: b divides 32 */
                y[(size_t)i * D + d] = b == 16 ? vkmix_f16_to_f32((uint16_t)q) : (float)q * meta_scale(mv) + meta_min(mv);
            }
        }
    }
}

/* ------------------------------------------------------------------ accounting */

static uint32_t query_blocks(const vkm_kv_config *c) { return c->ring / c->group; }

static void mixkvq_sizes(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t l,
                         int is_v, vkm_kv_sizes *o)
{
    vkm_kv_sizes_layer(c, hp, n_ctx, n_tokens, l, is_v, o); /* values, ring, sinks; keys replaced below */
    if (is_v || c->k_bits[l] >= 16) return;
    const uint64_t H = hp->n_head_kv, D = hp->head_dim, G = c->group;
    const uint64_t nb = n_tokens ? vkm_kv_blocks_at(c, n_tokens) : vkm_kv_blocks(c, n_ctx);
    o->code_bytes = 4 * H * nb * kvl_mix_words(vkm_mixkvq_budget(c, l, (uint32_t)D), G);
    o->meta_bytes = 4 * kvl_mix_meta(H * nb, 0, D);
    o->aux_bytes += 4 * kvl_mix_map(H * nb, 0, 0, D);                      /* tier maps */
    o->aux_bytes += 4 * kvl_mix_qstat(H, 0, 0, query_blocks(c), D);        /* query statistics */
}

/* ------------------------------------------------------------------ CPU simulation */

typedef struct mixkvq_sim {
    uint32_t L, H, D, nrep, n_qb;
    float *qsum;       /* [L][H][n_qb][D]: sum |q_d| per query block (positions S + i G ..) */
    float *scratch;    /* [G][D] + [4][D] */
    uint8_t *bits;     /* [D] */
    uint32_t *maps;    /* [L][H][n_qb][kvl_mix_map_words(D)]: the tier map of each packed block */
} mixkvq_sim;

const uint32_t *vkm_mixkvq_sim_map(const void *state, uint32_t layer, uint32_t head, uint32_t block)
{
    const mixkvq_sim *s = state;
    if (!s || layer >= s->L || head >= s->H || block >= s->n_qb) return NULL;
    return s->maps + (((size_t)layer * s->H + head) * s->n_qb + block) * kvl_mix_map_words(s->D);
}

static void mixkvq_sim_free(void *state)
{
    mixkvq_sim *s = state;
    if (!s) return;
    free(s->qsum);
    free(s->scratch);
    free(s->bits);
    free(s->maps);
    free(s);
}

static vkmix_error mixkvq_sim_create(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, void **state)
{
    mixkvq_sim *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    s->L = hp->n_layer;
    s->H = hp->n_head_kv;
    s->D = hp->head_dim;
    s->nrep = hp->n_head / hp->n_head_kv;
    s->n_qb = n_ctx > c->sinks ? (n_ctx - c->sinks + c->group - 1) / c->group : 1;
    s->qsum = calloc((size_t)s->L * s->H * s->n_qb * s->D, sizeof *s->qsum);
    s->scratch = malloc(((size_t)c->group + 4) * s->D * sizeof *s->scratch);
    s->bits = malloc(s->D);
    s->maps = calloc((size_t)s->L * s->H * s->n_qb * kvl_mix_map_words(s->D), sizeof *s->maps);
    if (!s->qsum || !s->scratch || !s->bits || !s->maps) {
        mixkvq_sim_free(s);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    *state = s;
    return VKMIX_OK;
}

static vkmix_error mixkvq_sim_observe(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t l,
                                      uint32_t j, const float *q, const float *k, const float *v)
{
    (void)hp;
    (void)k;
    (void)v;
    mixkvq_sim *s = state;
    if (!c->quantized || c->k_bits[l] >= 16 || j < c->sinks) return VKMIX_OK;
    const uint32_t qb = (j - c->sinks) / c->group;
    if (qb >= s->n_qb) return VKMIX_ERROR_CONTEXT_OVERFLOW;
    for (uint32_t kh = 0; kh < s->H; kh++) {
        float *acc = s->qsum + (((size_t)l * s->H + kh) * s->n_qb + qb) * s->D;
        for (uint32_t d = 0; d < s->D; d++) {
            float a = 0.0f; /* the group's heads first, then into the block's sum (positions in order) */
            for (uint32_t r = 0; r < s->nrep; r++) a += fabsf(q[(size_t)(kh * s->nrep + r) * s->D + d]);
            acc[d] += a;
        }
    }
    return VKMIX_OK;
}

static vkmix_error mixkvq_sim_age(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t l, float *k,
                                  float *v, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    mixkvq_sim *s = state;
    if (!s) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (!c->quantized) return VKMIX_OK;
    const uint32_t G = c->group, D = s->D, H = s->H, S = c->sinks;
    const uint32_t b0 = vkm_kv_blocks_at(c, n_old), b1 = vkm_kv_blocks_at(c, n_new);
    if (b1 <= b0) return VKMIX_OK;
    vkmix_error e = VKMIX_OK;
    /* values: the per-layer format */
    if (c->v_bits[l] < 16) {
        float *row = s->scratch;
        for (uint32_t blk = b0; blk < b1 && e == VKMIX_OK; blk++)
            for (uint32_t i = 0; i < G && e == VKMIX_OK; i++)
                for (uint32_t h = 0; h < H && e == VKMIX_OK; h++) {
                    float *x = v + (size_t)(S + blk * G + i) * H * D + (size_t)h * D;
                    memcpy(row, x, D * sizeof *row);
                    e = vkm_kv_sim_quantize(row, 1, D, 1, c->v_bits[l], c->v_group, fp16_dequant);
                    memcpy(x, row, D * sizeof *row);
                }
    }
    if (c->k_bits[l] >= 16 || e != VKMIX_OK) return e;
    const uint32_t Q = vkm_mixkvq_queries(c), budget = vkm_mixkvq_budget(c, l, D);
    const float rcp = vkm_mixkvq_rcp(c, hp);
    float *x = s->scratch, *imp = x + (size_t)G * D, *mn = imp + D, *mx = mn + D, *A = mx + D;
    for (uint32_t blk = b0; blk < b1; blk++) {
        const uint32_t pos = S + blk * G, last_qb = blk + c->window / G, first_qb = last_qb + 1 - Q / G;
        for (uint32_t h = 0; h < H; h++) {
            for (uint32_t d = 0; d < D; d++) {
                float a = 0.0f;
                for (uint32_t qb = first_qb; qb <= last_qb; qb++)
                    a += s->qsum[(((size_t)l * H + h) * s->n_qb + qb) * D + d];
                imp[d] = a * rcp;
            }
            for (uint32_t i = 0; i < G; i++)
                memcpy(x + (size_t)i * D, k + (size_t)(pos + i) * H * D + (size_t)h * D, D * sizeof *x);
            for (uint32_t d = 0; d < D; d++) {
                mn[d] = mx[d] = x[d];
                for (uint32_t i = 1; i < G; i++) {
                    mn[d] = fminf(mn[d], x[(size_t)i * D + d]);
                    mx[d] = fmaxf(mx[d], x[(size_t)i * D + d]);
                }
            }
            vkm_mixkvq_salience(imp, mn, mx, D, A);
            vkm_mixkvq_tiers(A, D, budget, c->mixkvq.threshold_fp16, c->mixkvq.threshold_4bit, s->bits);
            if (blk < s->n_qb) {
                uint32_t *map = s->maps + (((size_t)l * H + h) * s->n_qb + blk) * kvl_mix_map_words(D);
                memset(map, 0, 4 * kvl_mix_map_words(D));
                for (uint32_t d = 0; d < D; d++) {
                    if (s->bits[d] == 16) map[kvl_mix_map(0, 0, d / 32, D)] |= 1u << (d % 32);
                    if (s->bits[d] == 4) map[kvl_mix_map(0, 1, d / 32, D)] |= 1u << (d % 32);
                }
            }
            for (uint32_t d = 0; d < D; d++) {
                const uint32_t b = s->bits[d];
                uint32_t mv = b < 16 ? channel_meta(x + d, D, G, b) : 0;
                for (uint32_t i = 0; i < G; i++) {
                    float y = x[(size_t)i * D + d];
                    if (b < 16) y = (float)vkm_kvq_code(y, meta_scale(mv), meta_min(mv), b) * meta_scale(mv) + meta_min(mv);
                    k[(size_t)(pos + i) * H * D + (size_t)h * D + d] = fp16_dequant ? vkmix_f16_to_f32(vkmix_f32_to_f16(y)) : y;
                }
            }
        }
    }
    return VKMIX_OK;
}

const vkm_kv_policy_ops vkm_kv_policy_mixkvq = {
    .id = VKMIX_KV_POLICY_MIXKVQ,
    .name = "mixkvq",
    .check = mixkvq_check,
    .sizes = mixkvq_sizes,
    .create = vkm_mixkvq_create,
    .destroy = vkm_mixkvq_destroy,
    .store = vkm_mixkvq_store,
    .decode = vkm_mixkvq_decode,
    .prefill = vkm_mixkvq_prefill,
    .age = vkm_mixkvq_age,
    .sim_create = mixkvq_sim_create,
    .sim_free = mixkvq_sim_free,
    .sim_observe = mixkvq_sim_observe,
    .sim_age = mixkvq_sim_age,
};
