/* The per-layer policy (KVmix): each layer has a key and a value width from
 * {2, 3, 4, 8, 16}. A packed side keeps the newest tokens in an FP16 ring (and
 * the first S in FP16 sinks) and packs groups of G tokens as they leave the
 * window; a 16-bit side is one FP16 array for the context. Decode reads the
 * packed store directly (kv_attn.c); prefill attends over an FP16 copy of the
 * history. */
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"

/* ------------------------------------------------------------------ accounting */

void vkm_kv_sizes_layer(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t l,
                        int is_v, vkm_kv_sizes *o)
{
    memset(o, 0, sizeof *o);
    const uint64_t H = hp->n_head_kv, D = hp->head_dim, G = c->group, S = c->sinks;
    const uint32_t b = is_v ? c->v_bits[l] : c->k_bits[l];
    if (b >= 16) {
        o->fp16_bytes = 2 * kvl_f16(H, 0, 0, n_tokens ? n_tokens : n_ctx, D);
        return;
    }
    /* allocated: the whole store, ring and sinks; at n_tokens: the packed
     * blocks, the sinks and the FP16 tail that hold data */
    const uint64_t nb = n_tokens ? vkm_kv_blocks_at(c, n_tokens) : vkm_kv_blocks(c, n_ctx);
    if (!is_v) {
        o->code_bytes = 4 * kvl_k_code_words(H, nb, b, G, D);
        o->meta_bytes = 4 * kvl_k_meta_words(H, nb, D);
    } else {
        o->code_bytes = 4 * kvl_v_code_words(H, nb * G, b, D);
        o->meta_bytes = 4 * kvl_v_meta_words(H, nb * G, D, c->v_group);
    }
    if (!n_tokens) {
        o->ring_bytes = 2 * kvl_f16(H, 0, 0, c->ring, D);
        o->sink_bytes = 2 * kvl_f16(H, 0, 0, S, D);
    } else {
        const uint64_t sinks = n_tokens < S ? n_tokens : S, tail = n_tokens - sinks - nb * G;
        o->ring_bytes = 2 * kvl_f16(H, 0, 0, tail, D);
        o->sink_bytes = 2 * kvl_f16(H, 0, 0, sinks, D);
    }
}

/* ------------------------------------------------------------------ storage */

vkmix_error vkm_kv_side_alloc(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_kv_sizes *zp, uint32_t l, int is_v,
                              vkm_kv_side *s)
{
    const vkm_kv_sizes z = *zp;
    s->bits = is_v ? c->cfg.v_bits[l] : c->cfg.k_bits[l];
    const char *nm = is_v ? "values" : "keys";
    vkmix_error e;
    if (s->bits >= 16) return vkm_kv_alloc(ctx, &s->ring, z.fp16_bytes, nm, l);
    if ((e = vkm_kv_alloc(ctx, &s->codes, z.code_bytes, nm, l)) != VKMIX_OK) return e;
    if ((e = vkm_kv_alloc(ctx, &s->meta, z.meta_bytes, nm, l)) != VKMIX_OK) return e;
    if ((e = vkm_kv_alloc(ctx, &s->ring, z.ring_bytes, nm, l)) != VKMIX_OK) return e;
    if (z.sink_bytes && (e = vkm_kv_alloc(ctx, &s->sinks, z.sink_bytes, nm, l)) != VKMIX_OK) return e;
    return VKMIX_OK;
}

static vkmix_error side_create(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t l, int is_v,
                               vkm_kv_side *s)
{
    vkm_kv_sizes z;
    vkm_kv_layer_sizes(&c->cfg, hp, c->n_ctx, 0, l, is_v, &z);
    return vkm_kv_side_alloc(ctx, c, &z, l, is_v, s);
}

static vkmix_error layer_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp)
{
    vkmix_error e;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if ((e = side_create(ctx, c, hp, l, 0, &c->k[l])) != VKMIX_OK) return e;
        if ((e = side_create(ctx, c, hp, l, 1, &c->v[l])) != VKMIX_OK) return e;
    }
    if (c->cfg.quantized) {
        /* klin / vlin (prefill only) are allocated at the first prefill */
        uint64_t part = (uint64_t)hp->n_head * (VKM_KVQ_SPLITS_CAP + 64) * (hp->head_dim + 2) * 4;
        if ((e = vkm_kv_alloc(ctx, &c->part, part, "attention partials", 0)) != VKMIX_OK) return e;
        c->fused_decode = 1;
    }
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ steps */

static vkmix_kvq_shape shape_of(const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t n_tokens)
{
    vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, s->bits, is_v ? c->cfg.v_group : c->cfg.group,
                           c->head_dim, c->n_kv_head, n_tokens };
    return sh;
}

/* Per-head stride of the packed store in the units of vkm_kvq_range: blocks for key codes, tokens for values. */
static uint32_t store_stride(const vkm_kv_cache *c, int is_v) { return is_v ? c->n_blocks * c->cfg.group : c->n_blocks; }

/* The history of positions [0, p_end) as one FP16 array: nq dequantized groups, the rest from sinks and ring. */
static vkmix_error linearize(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, int is_v,
                             vkm_buffer *lin, uint32_t nq, uint32_t p_end)
{
    const uint32_t S = c->cfg.sinks, G = c->cfg.group;
    vkmix_error e;
    if (nq) {
        vkmix_kvq_shape sh = shape_of(c, s, is_v, nq * G);
        vkm_kvq_range r = { store_stride(c, is_v), 0, c->n_ctx, S };
        if ((e = vkm_kvq_dequant_record(cmd, &sh, &r, VKM_BIND(s->codes), VKM_BIND(s->meta), VKM_BIND(*lin))) != VKMIX_OK)
            return e;
    }
    if ((e = vkm_kv_ring_gather(cmd, c, s, lin, 0, S < p_end ? S : p_end)) != VKMIX_OK) return e;
    return vkm_kv_ring_gather(cmd, c, s, lin, S + nq * G, p_end);
}

/* Groups [nq_old, nq_new) leave the ring for the packed store. */
static vkmix_error quantize_aged(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, int is_v,
                                 uint32_t nq_old, uint32_t nq_new)
{
    const uint32_t G = c->cfg.group, S = c->cfg.sinks;
    for (uint32_t b = nq_old; b < nq_new; b++) {
        vkmix_kvq_shape sh = shape_of(c, s, is_v, G);
        uint32_t slot0 = (uint32_t)kvl_ring_slot(S + b * G, S, c->cfg.ring);
        vkm_kvq_range r = { c->cfg.ring, slot0, store_stride(c, is_v), is_v ? b * G : b };
        vkmix_error e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(s->ring), VKM_BIND(s->codes), VKM_BIND(s->meta));
        if (e != VKMIX_OK) return e;
    }
    return VKMIX_OK;
}

vkmix_error vkm_kv_store_layer(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                               uint32_t pos0)
{
    vkmix_error e = vkm_kv_ring_store(cmd, c, &c->k[layer], k, n, pos0);
    return e == VKMIX_OK ? vkm_kv_ring_store(cmd, c, &c->v[layer], v, n, pos0) : e;
}

static vkmix_error layer_prefill(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                                 vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_kv_side *K = &c->k[layer], *V = &c->v[layer];
    const uint32_t nq = c->cfg.quantized ? vkm_kv_blocks_at(&c->cfg, pos0) : 0;
    vkm_buffer *kb = &K->ring, *vb = &V->ring;
    vkmix_error e;
    if (!c->klin.buf && (K->bits < 16 || V->bits < 16)) {
        uint64_t lin = 2 * kvl_f16(c->n_kv_head, 0, 0, c->n_ctx, c->head_dim);
        if ((e = vkm_kv_alloc(ctx, &c->klin, lin, "linear keys", layer)) != VKMIX_OK) return e;
        if ((e = vkm_kv_alloc(ctx, &c->vlin, lin, "linear values", layer)) != VKMIX_OK) return e;
    }
    if (K->bits < 16) {
        if ((e = linearize(cmd, c, K, 0, &c->klin, nq, pos0 + n)) != VKMIX_OK) return e;
        kb = &c->klin;
    }
    if (V->bits < 16) {
        if ((e = linearize(cmd, c, V, 1, &c->vlin, nq, pos0 + n)) != VKMIX_OK) return e;
        vb = &c->vlin;
    }
    if (kb != &K->ring || vb != &V->ring) vkm_cmd_barrier(cmd);
    return vkm_kv_attention_linear(cmd, c, q, kb, vb, out, scratch, n, pos0);
}

static vkmix_error layer_decode(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                                vkm_binding scratch, uint32_t pos0)
{
    vkm_kv_side *K = &c->k[layer], *V = &c->v[layer];
    if (c->fused_decode && K->bits < 16 && V->bits < 16) {
        const uint32_t nq = vkm_kv_blocks_at(&c->cfg, pos0);
        vkmix_error fe = vkm_kv_fused_decode(cmd, c, K, V, q, out, nq, pos0);
        if (fe != VKMIX_ERROR_UNSUPPORTED_DEVICE) return fe;
    }
    return layer_prefill(cmd, c, layer, q, out, scratch, 1, pos0);
}

static vkmix_error layer_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0,
                             int *recorded)
{
    if (!c->cfg.quantized) return VKMIX_OK;
    vkm_kv_side *K = &c->k[layer], *V = &c->v[layer];
    uint32_t nq = vkm_kv_blocks_at(&c->cfg, pos0), nq_new = vkm_kv_blocks_at(&c->cfg, pos0 + n);
    if (nq_new <= nq) return VKMIX_OK;
    vkmix_error e;
    if (K->bits < 16 && (e = quantize_aged(cmd, c, K, 0, nq, nq_new)) != VKMIX_OK) return e;
    if (V->bits < 16 && (e = quantize_aged(cmd, c, V, 1, nq, nq_new)) != VKMIX_OK) return e;
    if (recorded) *recorded = 1;
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ CPU simulation */

vkmix_error vkm_kv_sim_quantize(float *x, uint32_t n, uint32_t D, int is_v, uint32_t bits, uint32_t group, int fp16)
{
    const size_t m = (size_t)n * D;
    uint16_t *x16 = malloc(m * 2);
    uint32_t *codes = malloc(m * 4 + 4), *meta = malloc(m * 4 + 4);
    vkmix_error e = x16 && codes && meta ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (e == VKMIX_OK) {
        for (size_t i = 0; i < m; i++) x16[i] = vkmix_f32_to_f16(x[i]);
        vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, bits, group, D, 1, n };
        e = vkmix_kvq_quantize_cpu(&sh, x16, codes, meta);
        if (e == VKMIX_OK) e = vkm_kvq_dequantize_f32(&sh, codes, meta, x);
        if (e == VKMIX_OK && fp16)
            for (size_t i = 0; i < m; i++) x[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(x[i]));
    }
    free(x16);
    free(codes);
    free(meta);
    return e;
}

/* Rows pos .. pos+G-1 of x ([pos][H*D]) through the format: FP16 in, packed, dequantized. */
static vkmix_error roundtrip(float *x, uint32_t H, uint32_t D, int is_v, uint32_t bits, uint32_t group, uint32_t pos,
                             uint32_t G, uint16_t *x16, float *y, uint32_t *codes, uint32_t *meta, int fp16)
{
    const uint64_t row = (uint64_t)H * D;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t t = 0; t < G; t++)
            for (uint32_t d = 0; d < D; d++)
                x16[kvl_f16(h, t, d, G, D)] = vkmix_f32_to_f16(x[(pos + t) * row + (uint64_t)h * D + d]);
    vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, bits, group, D, H, G };
    vkmix_error e = vkmix_kvq_quantize_cpu(&sh, x16, codes, meta);
    if (e == VKMIX_OK) e = vkm_kvq_dequantize_f32(&sh, codes, meta, y);
    if (e != VKMIX_OK) return e;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t t = 0; t < G; t++)
            for (uint32_t d = 0; d < D; d++) {
                float v = y[kvl_f16(h, t, d, G, D)];
                x[(pos + t) * row + (uint64_t)h * D + d] = fp16 ? vkmix_f16_to_f32(vkmix_f32_to_f16(v)) : v;
            }
    return VKMIX_OK;
}

static vkmix_error layer_sim_age(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t l, float *k, float *v,
                                 uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    (void)state;
    if (!c->quantized) return VKMIX_OK;
    const uint32_t G = c->group, H = hp->n_head_kv, D = hp->head_dim;
    const uint32_t b0 = vkm_kv_blocks_at(c, n_old), b1 = vkm_kv_blocks_at(c, n_new);
    if (b1 <= b0 || (c->k_bits[l] >= 16 && c->v_bits[l] >= 16)) return VKMIX_OK;
    const size_t n = (size_t)H * G * D;
    uint16_t *x16 = malloc(n * 2);
    float *y = malloc(n * 4);
    uint32_t *codes = malloc(n * 4), *meta = malloc(n * 4);
    vkmix_error e = x16 && y && codes && meta ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t b = b0; b < b1 && e == VKMIX_OK; b++) {
        const uint32_t pos = c->sinks + b * G;
        if (c->k_bits[l] < 16) e = roundtrip(k, H, D, 0, c->k_bits[l], G, pos, G, x16, y, codes, meta, fp16_dequant);
        if (e == VKMIX_OK && c->v_bits[l] < 16)
            e = roundtrip(v, H, D, 1, c->v_bits[l], c->v_group, pos, G, x16, y, codes, meta, fp16_dequant);
    }
    free(x16);
    free(y);
    free(codes);
    free(meta);
    return e;
}

const vkm_kv_policy_ops vkm_kv_policy_layer = {
    .id = VKMIX_KV_POLICY_LAYER,
    .name = "layer",
    .check = NULL, /* nothing beyond the widths and the geometry */
    .sizes = vkm_kv_sizes_layer,
    .create = layer_create,
    .destroy = NULL, /* the cache frees the sides' buffers */
    .store = vkm_kv_store_layer,
    .decode = layer_decode,
    .prefill = layer_prefill,
    .age = layer_age,
    .sim_create = NULL, /* no state: the decisions follow from the token count */
    .sim_free = NULL,
    .sim_observe = NULL,
    .sim_age = layer_sim_age,
};
