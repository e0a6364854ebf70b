/* MixKVQ on the device (the rules and the CPU simulation: kv_policy_mixkvq.c; the
 * data: docs/KVCACHE.md, "MixKVQ"). A layer with packed keys keeps, besides the FP16
 * ring and sinks, the key regions and their scale/min (the side's codes and meta, in
 * the kvl_mix_* layout), and two buffers of its own: the tier maps and the query
 * statistics (sums of |q_d| per query block, a ring of ring / G blocks per KV head).
 * Values are the per-layer policy's (per token at the layer's width). A step:
 *   store    the FP16 ring (vkm_kv_ring_store);
 *   attend   mixkvq_attn.comp, one workgroup per (KV head, query row, split of the
 *            history) serving the GQA group's query heads, every tier in one pass, then mixkvq_combine.comp merges the
 *            splits (when there are several); and mixkvq_qstat.comp adds the step's queries to the
 *            statistics (on the GPU, never read back). Prefill is this same kernel
 *            with one workgroup row per query row (no linear FP16 copy of the
 *            history): simple, and it reads exactly what decode reads, so the CPU
 *            simulation with fp32 dequantization serves both;
 *   age      mixkvq_age.comp: per (block, KV head) the salience, the tiers and the
 *            packed block; kvq_quant_v packs the values.
 * A layer whose keys are 16 bits has no MixKVQ state (values as the per-layer policy);
 * a layer with both sides at 16 bits, or an FP16 configuration, takes the plain FP16
 * attention. */
#include "kv/mixkvq_device.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct mixkvq_layer {
    vkm_buffer map;          /* kvl_mix_map: [H nb][2][ceil(D / 32)] u32 (NULL buf: keys not packed) */
    vkm_buffer qstat;        /* kvl_mix_qstat: [H][n_qb][D] f32 */
} mixkvq_layer;

typedef struct mixkvq_dev {
    mixkvq_layer *layer;     /* [n_layer] */
    vkm_buffer part;         /* [MIX_PART_SLOTS][D + 2] f32: split-K partials of the attention */
    uint32_t n_qb;           /* query blocks in the statistics ring: ring / G */
} mixkvq_dev;

/* Split-K of the attention: a decode row in up to MIX_SPLITS splits (VKMIX_POLICY_SPLITS) of
 * at least MIX_MIN_TILES tiles (of G tokens), at most MIX_PART_SLOTS (row, query head, split)
 * partials. 64 splits (the first version) left 512 workgroups of 32 invocations for a 32k
 * decode of 8 KV heads: 4 per SM on an H200, 648 us per layer (2026-12-02). */
#define MIX_SPLITS 512u
#define MIX_MIN_TILES 2u
#define MIX_PART_SLOTS 16384u
/* Several rows (prefill), as first written: about MIX_PREFILL_WGS workgroups, splits of at least
 * MIX_PREFILL_MIN_TILES tiles, rows x query heads x splits <= MIX_PREFILL_SLOTS (a chunk of 64
 * rows: one split per row). */
#define MIX_PREFILL_WGS 1024u
#define MIX_PREFILL_MIN_TILES 8u
#define MIX_PREFILL_SLOTS 2048u

static mixkvq_dev *dev_of(const vkm_kv_cache *c) { return c->policy_state; }
static int keys_on(const vkm_kv_cache *c, uint32_t l) { return c->cfg.quantized && c->k[l].bits < 16; }
static int any_on(const vkm_kv_cache *c, uint32_t l) { return c->cfg.quantized && (c->k[l].bits < 16 || c->v[l].bits < 16); }

static uint32_t wg_of(const vkmix_context *ctx, uint32_t want)
{
    while (want > ctx->dev.caps.max_wg_invocations) want /= 2;
    return want;
}

/* Shared memory of mixkvq_age.comp (min, max, salience, order, bits, positions) and
 * mixkvq_attn.comp (q, permuted q, scale, min, map, probabilities, reduction). */
static uint64_t age_shared(uint32_t D) { return (uint64_t)D * 4 * 7 + 8; }
static uint64_t attn_shared(uint32_t D, uint32_t G, uint32_t nrep)
{
    return (uint64_t)(2 * nrep + 2) * D * 4 + 8 * ((D + 31) / 32) + (uint64_t)8 * nrep * G;
}

/* ------------------------------------------------------------------ storage */

static vkmix_error side_create(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t l, int is_v,
                               vkm_kv_side *s, vkm_kv_sizes *z)
{
    vkm_kv_layer_sizes(&c->cfg, hp, c->n_ctx, 0, l, is_v, z); /* keys: mixkvq_sizes (regions, meta, maps, statistics) */
    return vkm_kv_side_alloc(ctx, c, z, l, is_v, s);
}

void vkm_mixkvq_destroy(vkm_device *dev, vkm_kv_cache *c)
{
    mixkvq_dev *m = dev_of(c);
    if (!m) return;
    if (m->layer)
        for (uint32_t l = 0; l < c->n_layer; l++) {
            vkm_buffer_destroy(dev, &m->layer[l].map);
            vkm_buffer_destroy(dev, &m->layer[l].qstat);
        }
    vkm_buffer_destroy(dev, &m->part);
    free(m->layer);
    free(m);
    c->policy_state = NULL;
}

vkmix_error vkm_mixkvq_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp)
{
    vkmix_error e;
    vkm_kv_sizes z;
    int any = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if ((e = side_create(ctx, c, hp, l, 0, &c->k[l], &z)) != VKMIX_OK) return e;
        if ((e = side_create(ctx, c, hp, l, 1, &c->v[l], &z)) != VKMIX_OK) return e;
        any |= any_on(c, l);
    }
    if (!any) return VKMIX_OK;
    const uint32_t D = c->head_dim, G = c->cfg.group;
    const uint32_t nrep = c->n_q_head / c->n_kv_head;
    const uint64_t shared = age_shared(D) > attn_shared(D, G, nrep) ? age_shared(D) : attn_shared(D, G, nrep);
    if (shared > ctx->dev.caps.max_shared_bytes || G > ctx->dev.caps.max_wg_invocations)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE,
                        "MixKVQ: head_dim %u and group %u need %llu bytes of shared memory and %u invocations per "
                        "workgroup (the device has %llu and %u)",
                        D, G, (unsigned long long)shared, G, (unsigned long long)ctx->dev.caps.max_shared_bytes,
                        ctx->dev.caps.max_wg_invocations);
    mixkvq_dev *m = calloc(1, sizeof *m);
    if (!m) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    c->policy_state = m;
    if (!(m->layer = calloc(hp->n_layer, sizeof *m->layer))) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    m->n_qb = c->cfg.ring / G;
    const uint64_t H = c->n_kv_head;
    if ((e = vkm_kv_alloc(ctx, &m->part, (uint64_t)MIX_PART_SLOTS * (D + 2) * 4, "MixKVQ attention partials", 0)) !=
        VKMIX_OK)
        return e;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if (!keys_on(c, l)) continue;
        /* the two parts of mixkvq_sizes' aux_bytes */
        if ((e = vkm_kv_alloc(ctx, &m->layer[l].map, 4 * kvl_mix_map(H * c->n_blocks, 0, 0, D), "MixKVQ tier maps", l)) !=
            VKMIX_OK)
            return e;
        if ((e = vkm_kv_alloc(ctx, &m->layer[l].qstat, 4 * kvl_mix_qstat(H, 0, 0, m->n_qb, D), "MixKVQ query statistics",
                              l)) != VKMIX_OK)
            return e;
    }
    return VKMIX_OK;
}

uint64_t vkm_mixkvq_bytes(const vkm_kv_cache *c)
{
    const mixkvq_dev *m = dev_of(c);
    uint64_t n = 0;
    for (uint32_t l = 0; m && l < c->n_layer; l++) n += m->layer[l].map.size + m->layer[l].qstat.size;
    return n;
}

uint64_t vkm_mixkvq_work_bytes(const vkm_kv_cache *c)
{
    const mixkvq_dev *m = dev_of(c);
    return m ? m->part.size : 0;
}

const vkm_buffer *vkm_mixkvq_map(const vkm_kv_cache *c, uint32_t layer)
{
    const mixkvq_dev *m = dev_of(c);
    if (!m || layer >= c->n_layer || !m->layer[layer].map.buf) return NULL;
    return &m->layer[layer].map;
}

vkmix_error vkm_mixkvq_fill_synthetic(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t seed)
{
    const mixkvq_dev *m = dev_of(c);
    if (!m) return VKMIX_OK;
    const uint32_t D = c->head_dim;
    const uint64_t nhb = (uint64_t)c->n_kv_head * c->n_blocks, words = kvl_mix_map(nhb, 0, 0, D);
    uint32_t *map = malloc(words * 4);
    float *A = malloc(D * sizeof *A);
    uint8_t *bits = malloc(D);
    vkmix_error e = map && A && bits ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    uint64_t st = 0x9e3779b97f4a7c15ull ^ seed;
    for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++) {
        if (!m->layer[l].map.buf) continue;
        const uint32_t budget = vkm_mixkvq_budget(&c->cfg, l, D);
        memset(map, 0, words * 4);
        for (uint64_t hb = 0; hb < nhb; hb++) {
            for (uint32_t d = 0; d < D; d++) { /* salience with a heavy tail, as outlier channels give */
                st ^= st << 13; st ^= st >> 7; st ^= st << 17;
                float u = (float)(st >> 40) / 16777216.0f;
                A[d] = u * u * u * u;
            }
            vkm_mixkvq_tiers(A, D, budget, c->cfg.mixkvq.threshold_fp16, c->cfg.mixkvq.threshold_4bit, bits);
            for (uint32_t d = 0; d < D; d++) {
                if (bits[d] == 16) map[kvl_mix_map(hb, 0, d / 32, D)] |= 1u << (d % 32);
                if (bits[d] == 4) map[kvl_mix_map(hb, 1, d / 32, D)] |= 1u << (d % 32);
            }
        }
        e = vkm_buffer_upload(cmd, &m->layer[l].map, 0, map, words * 4);
    }
    free(map);
    free(A);
    free(bits);
    return e;
}

/* ------------------------------------------------------------------ steps */

vkmix_error vkm_mixkvq_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                             uint32_t pos0)
{
    return vkm_kv_store_layer(cmd, c, layer, k, v, n, pos0);
}

static const vkm_buffer *sinks_or_ring(const vkm_kv_side *s) { return s->sinks.buf ? &s->sinks : &s->ring; }
/* A buffer a 16-bit side does not have: bound to something valid, never read. */
static const vkm_buffer *or_ring(const vkm_buffer *b, const vkm_kv_side *s) { return b->buf ? b : &s->ring; }

vkmix_error vkm_mixkvq_prefill(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t l, vkm_binding q, vkm_binding out,
                               vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_kv_side *K = &c->k[l], *V = &c->v[l];
    if (!any_on(c, l)) return vkm_kv_attention_linear(cmd, c, q, &K->ring, &V->ring, out, scratch, n, pos0);
    if (n > KVL_CHUNK)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INTERNAL, "MixKVQ attention: %u query rows (at most %u)", n, KVL_CHUNK);
    const mixkvq_dev *m = dev_of(c);
    const vkm_kv_config *cf = &c->cfg;
    const uint32_t G = cf->group, D = c->head_dim, nrep = c->n_q_head / c->n_kv_head, H = c->n_kv_head;
    const int kon = keys_on(c, l);
    const vkm_buffer *map = kon ? &m->layer[l].map : &K->ring;
    const vkm_pipeline *p;
    vkmix_error e;
    /* the tiles of the last row (the longest history): sinks, packed blocks, ring (mixkvq_attn.comp) */
    const uint32_t nq = vkm_kv_blocks_at(cf, pos0), p_end = pos0 + n;
    uint32_t n_tiles;
    if (K->bits >= 16) n_tiles = (p_end + G - 1) / G;
    else {
        const uint32_t ns = cf->sinks < p_end ? cf->sinks : p_end, r0 = cf->sinks + nq * G;
        n_tiles = (ns + G - 1) / G + nq + (p_end > r0 ? (p_end - r0 + G - 1) / G : 0);
    }
    /* workgroups: one per (KV head, row, split); partials: one per (query head, row, split) */
    uint32_t want, min_tiles;
    if (n == 1) {
        want = ctx->tune.policy_splits ? ctx->tune.policy_splits : MIX_SPLITS;
        if (want > MIX_PART_SLOTS / c->n_q_head) want = MIX_PART_SLOTS / c->n_q_head;
        min_tiles = MIX_MIN_TILES;
    } else {
        want = MIX_PREFILL_WGS / (n * c->n_kv_head);
        if (want > MIX_PREFILL_SLOTS / (n * c->n_q_head)) want = MIX_PREFILL_SLOTS / (n * c->n_q_head);
        min_tiles = MIX_PREFILL_MIN_TILES;
    }
    if (want < 1) want = 1;
    uint32_t tps = (n_tiles + want - 1) / want;
    if (tps < min_tiles) tps = min_tiles;
    const uint32_t n_splits = n_tiles > tps ? (n_tiles + tps - 1) / tps : 1;
    uint32_t spec[7] = { G, K->bits, V->bits, G, D, cf->v_group, nrep };
    if ((e = vkm_pipe(ctx, VKM_SH_MIXKVQ_ATTN, spec, 7, &p)) != VKMIX_OK) return e;
    struct {
        uint32_t S, ring, nq, n_blocks, pos0, n_head, n_ctx, region_words, n_splits, tiles_per_split;
        float scale;
    } push = { cf->sinks, cf->ring, nq, c->n_blocks, pos0, c->n_q_head, c->n_ctx,
               kon ? (uint32_t)kvl_mix_words(vkm_mixkvq_budget(cf, l, D), G) : 0, n_splits, tps,
               1.0f / sqrtf((float)D) };
    vkm_binding b[12] = { q, out,
                          VKM_BIND(*or_ring(&K->codes, K)), VKM_BIND(*or_ring(&K->meta, K)),
                          VKM_BIND(K->ring), VKM_BIND(*sinks_or_ring(K)),
                          VKM_BIND(*or_ring(&V->codes, V)), VKM_BIND(*or_ring(&V->meta, V)),
                          VKM_BIND(V->ring), VKM_BIND(*sinks_or_ring(V)), VKM_BIND(*map), VKM_BIND(m->part) };
    vkm_cmd_dispatch(cmd, p, b, 12, &push, sizeof push, c->n_kv_head, n, n_splits);
    if (n_splits > 1) {
        vkm_cmd_barrier(cmd);
        uint32_t wg = wg_of(ctx, 64), spec3[2] = { wg, D };
        if ((e = vkm_pipe(ctx, VKM_SH_MIXKVQ_COMBINE, spec3, 2, &p)) != VKMIX_OK) return e;
        struct { uint32_t n_head, n_splits; } push3 = { c->n_q_head, n_splits };
        vkm_binding b3[2] = { VKM_BIND(m->part), out };
        vkm_cmd_dispatch(cmd, p, b3, 2, &push3, sizeof push3, c->n_q_head, n, 1);
    }
    if (!kon) return VKMIX_OK;
    /* the step's queries into the statistics (independent of the attention: both only read q) */
    uint32_t wg = wg_of(ctx, 64), spec2[3] = { wg, nrep, D };
    if ((e = vkm_pipe(ctx, VKM_SH_MIXKVQ_QSTAT, spec2, 3, &p)) != VKMIX_OK) return e;
    struct { uint32_t S, G, pos0, n, n_head, n_kv, n_qblocks; } push2 = { cf->sinks, G, pos0, n, c->n_q_head, H, m->n_qb };
    vkm_binding b2[2] = { q, VKM_BIND(m->layer[l].qstat) };
    vkm_cmd_dispatch(cmd, p, b2, 2, &push2, sizeof push2, vkm_groups_for(ctx, (uint64_t)H * D, wg), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkm_mixkvq_decode(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                              vkm_binding scratch, uint32_t pos0)
{
    return vkm_mixkvq_prefill(cmd, c, layer, q, out, scratch, 1, pos0);
}

vkmix_error vkm_mixkvq_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t l, uint32_t n, uint32_t pos0, int *recorded)
{
    vkmix_context *ctx = cmd->ctx;
    if (!any_on(c, l)) return VKMIX_OK;
    const vkm_kv_config *cf = &c->cfg;
    const uint32_t nq = vkm_kv_blocks_at(cf, pos0), nq_new = vkm_kv_blocks_at(cf, pos0 + n);
    if (nq_new <= nq) return VKMIX_OK;
    const uint32_t G = cf->group, D = c->head_dim, H = c->n_kv_head;
    vkm_kv_side *K = &c->k[l], *V = &c->v[l];
    vkmix_error e;
    if (keys_on(c, l)) {
        const mixkvq_dev *m = dev_of(c);
        const vkm_pipeline *p;
        uint32_t wg = wg_of(ctx, 128), spec[3] = { wg, G, D };
        if ((e = vkm_pipe(ctx, VKM_SH_MIXKVQ_AGE, spec, 3, &p)) != VKMIX_OK) return e;
        const uint32_t budget = vkm_mixkvq_budget(cf, l, D);
        struct {
            uint32_t S, ring, b0, n_blocks, R, Q, n_qblocks, budget, region_words;
            float rcp, t16, t4;
        } push = { cf->sinks, cf->ring, nq, c->n_blocks, cf->window, vkm_mixkvq_queries(cf), m->n_qb, budget,
                   (uint32_t)kvl_mix_words(budget, G), vkm_mixkvq_rcp(cf, &(vkm_hparams){ .n_head = c->n_q_head,
                                                                                          .n_head_kv = H }),
                   cf->mixkvq.threshold_fp16, cf->mixkvq.threshold_4bit };
        vkm_binding b[5] = { VKM_BIND(K->ring), VKM_BIND(m->layer[l].qstat), VKM_BIND(K->codes), VKM_BIND(K->meta),
                             VKM_BIND(m->layer[l].map) };
        vkm_cmd_dispatch(cmd, p, b, 5, &push, sizeof push, nq_new - nq, H, 1);
    }
    /* values straight from the ring, per block (a block never wraps: ring % G == 0) */
    if (V->bits < 16)
        for (uint32_t blk = nq; blk < nq_new; blk++) {
            vkmix_kvq_shape sh = { VKMIX_KV_VALUES, V->bits, cf->v_group, D, H, G };
            vkm_kvq_range r = { cf->ring, (uint32_t)kvl_ring_slot(cf->sinks + blk * G, cf->sinks, cf->ring),
                                c->n_blocks * G, blk * G };
            if ((e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(V->ring), VKM_BIND(V->codes), VKM_BIND(V->meta))) !=
                VKMIX_OK)
                return e;
        }
    if (recorded) *recorded = 1;
    return VKMIX_OK;
}
