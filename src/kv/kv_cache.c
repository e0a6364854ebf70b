/* The mixed-precision KV cache: per layer and per K/V a width from {2,3,4,8,16},
 * an FP16 ring of the newest tokens, optional FP16 sinks, and a packed store of
 * groups of G tokens. Everything is preallocated for the context; nothing is
 * copied per step and nothing grows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kvquant_gpu.h"
#include "ops/ops.h"
#include "kv/kv_cache.h"


static vkmix_error alloc(vkmix_context *ctx, vkm_buffer *b, uint64_t bytes, const char *what, uint32_t layer)
{
    if (bytes > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY,
                        "layer %u %s (%.1f MiB) exceeds the device's maxStorageBufferRange (%.1f MiB)", layer, what,
                        (double)bytes / 1048576.0, (double)ctx->dev.caps.max_storage_range / 1048576.0);
    return vkm_buffer_create(&ctx->dev, b, bytes, VKM_MEM_DEVICE);
}

static vkmix_error side_create(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t l, int is_v,
                               vkm_kv_side *s)
{
    vkm_kv_sizes z;
    vkm_kv_layer_sizes(&c->cfg, hp, c->n_ctx, l, is_v, &z);
    s->bits = is_v ? c->cfg.v_bits[l] : c->cfg.k_bits[l];
    const char *nm = is_v ? "values" : "keys";
    vkmix_error e;
    if (s->bits >= 16) return alloc(ctx, &s->ring, z.fp16_bytes, nm, l);
    if ((e = alloc(ctx, &s->codes, z.code_bytes, nm, l)) != VKMIX_OK) return e;
    if ((e = alloc(ctx, &s->meta, z.meta_bytes, nm, l)) != VKMIX_OK) return e;
    if ((e = alloc(ctx, &s->ring, z.ring_bytes, nm, l)) != VKMIX_OK) return e;
    if (z.sink_bytes && (e = alloc(ctx, &s->sinks, z.sink_bytes, nm, l)) != VKMIX_OK) return e;
    return VKMIX_OK;
}

vkmix_error vkm_kv_cache_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx)
{
    c->n_layer = hp->n_layer;
    c->n_ctx = n_ctx;
    c->n_q_head = hp->n_head;
    c->n_kv_head = hp->n_head_kv;
    c->head_dim = hp->head_dim;
    c->n_blocks = vkm_kv_blocks(&c->cfg, n_ctx);
    c->k = calloc(hp->n_layer, sizeof *c->k);
    c->v = calloc(hp->n_layer, sizeof *c->v);
    if (!c->k || !c->v) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if ((e = side_create(ctx, c, hp, l, 0, &c->k[l])) != VKMIX_OK) return e;
        if ((e = side_create(ctx, c, hp, l, 1, &c->v[l])) != VKMIX_OK) return e;
    }
    if (c->cfg.quantized) {
        /* klin / vlin (prefill only) are allocated at the first prefill */
        uint64_t part = (uint64_t)hp->n_head * (VKM_KVQ_SPLITS_CAP + 64) * (hp->head_dim + 2) * 4;
        if ((e = alloc(ctx, &c->part, part, "attention partials", 0)) != VKMIX_OK) return e;
        c->fused_decode = 1;
    }
    return VKMIX_OK;
}

static void side_free(vkm_device *dev, vkm_kv_side *s)
{
    vkm_buffer_destroy(dev, &s->codes);
    vkm_buffer_destroy(dev, &s->meta);
    vkm_buffer_destroy(dev, &s->ring);
    vkm_buffer_destroy(dev, &s->sinks);
}

void vkm_kv_cache_free(vkm_device *dev, vkm_kv_cache *c)
{
    for (uint32_t l = 0; l < c->n_layer; l++) {
        if (c->k) side_free(dev, &c->k[l]);
        if (c->v) side_free(dev, &c->v[l]);
    }
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
    vkm_buffer_destroy(dev, &c->klin);
    vkm_buffer_destroy(dev, &c->vlin);
    vkm_buffer_destroy(dev, &c->part);
}

/* ------------------------------------------------------------------ steps */

static uint32_t ring_slots(const vkm_kv_cache *c, const vkm_kv_side *s) { return s->bits >= 16 ? c->n_ctx : c->cfg.ring; }
static uint32_t sinks_of(const vkm_kv_cache *c, const vkm_kv_side *s) { return s->bits >= 16 ? 0 : c->cfg.sinks; }

/* src [n][H][D] f32 -> the side's FP16 storage at positions pos0.. */
static vkmix_error store(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_binding src, uint32_t n,
                         uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    const vkm_pipeline *p;
    uint32_t wg = vkm_default_wg(ctx), spec[2] = { wg, c->head_dim };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_KV_RING_STORE, spec, 2, &p);
    if (e != VKMIX_OK) return e;
    uint32_t push[5] = { n, c->n_kv_head, pos0, sinks_of(c, s), ring_slots(c, s) };
    vkm_binding b[3] = { src, VKM_BIND(*(s->sinks.buf ? &s->sinks : &s->ring)), VKM_BIND(s->ring) };
    vkm_cmd_dispatch(cmd, p, b, 3, push, sizeof push,
                     vkm_groups_for(ctx, (uint64_t)n * c->n_kv_head * c->head_dim, wg), 1, 1);
    return VKMIX_OK;
}

static vkmix_error gather(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_buffer *lin,
                          uint32_t p0, uint32_t p1)
{
    vkmix_context *ctx = cmd->ctx;
    if (p1 <= p0) return VKMIX_OK;
    const vkm_pipeline *p;
    uint32_t wg = vkm_default_wg(ctx), spec[2] = { wg, c->head_dim };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_KV_RING_GATHER, spec, 2, &p);
    if (e != VKMIX_OK) return e;
    uint32_t push[6] = { c->n_kv_head, sinks_of(c, s), ring_slots(c, s), p0, p1, c->n_ctx };
    vkm_binding b[3] = { VKM_BIND(*(s->sinks.buf ? &s->sinks : &s->ring)), VKM_BIND(s->ring), VKM_BIND(*lin) };
    vkm_cmd_dispatch(cmd, p, b, 3, push, sizeof push,
                     vkm_groups_for(ctx, (uint64_t)(p1 - p0) * c->n_kv_head * c->head_dim, wg), 1, 1);
    return VKMIX_OK;
}

static vkmix_kvq_shape shape_of(const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t n_tokens)
{
    vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, s->bits, is_v ? c->cfg.v_group : c->cfg.group,
                           c->head_dim, c->n_kv_head, n_tokens };
    return sh;
}

/* The history of positions [0, p_end) as one FP16 array: nq dequantized groups, the rest from sinks and ring. */
static vkmix_error linearize(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, int is_v,
                             vkm_buffer *lin, uint32_t nq, uint32_t p_end)
{
    const uint32_t S = c->cfg.sinks, G = c->cfg.group;
    vkmix_error e;
    if (nq) {
        vkmix_kvq_shape sh = shape_of(c, s, is_v, nq * G);
        vkm_kvq_range r = { is_v ? c->n_blocks * G : c->n_blocks, 0, c->n_ctx, S };
        if ((e = vkm_kvq_dequant_record(cmd, &sh, &r, VKM_BIND(s->codes), VKM_BIND(s->meta), VKM_BIND(*lin))) != VKMIX_OK)
            return e;
    }
    if ((e = gather(cmd, c, s, lin, 0, S < p_end ? S : p_end)) != VKMIX_OK) return e;
    return gather(cmd, c, s, lin, S + nq * G, p_end);
}

/* Groups [nq_old, nq_new) leave the ring for the packed store. */
static vkmix_error quantize_aged(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, int is_v,
                                 uint32_t nq_old, uint32_t nq_new)
{
    const uint32_t G = c->cfg.group;
    for (uint32_t b = nq_old; b < nq_new; b++) {
        vkmix_kvq_shape sh = shape_of(c, s, is_v, G);
        uint32_t slot0 = (b * G) % c->cfg.ring;
        vkm_kvq_range r = { c->cfg.ring, slot0, is_v ? c->n_blocks * G : c->n_blocks, is_v ? b * G : b };
        vkmix_error e = vkm_kvq_quant_record(cmd, &sh, &r, VKM_BIND(s->ring), VKM_BIND(s->codes), VKM_BIND(s->meta));
        if (e != VKMIX_OK) return e;
    }
    return VKMIX_OK;
}

vkmix_error vkm_kv_cache_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v,
                               uint32_t n, uint32_t pos0)
{
    vkmix_error e = store(cmd, c, &c->k[layer], k, n, pos0);
    return e == VKMIX_OK ? store(cmd, c, &c->v[layer], v, n, pos0) : e;
}

vkmix_error vkm_kv_cache_attention(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                                   vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_kv_side *K = &c->k[layer], *V = &c->v[layer];
    const uint32_t nq = c->cfg.quantized ? vkm_kv_blocks_at(&c->cfg, pos0) : 0;
    if (n == 1 && c->fused_decode && K->bits < 16 && V->bits < 16) {
        vkmix_error fe = vkm_kv_fused_decode(cmd, c, K, V, q, out, nq, pos0);
        if (fe != VKMIX_ERROR_UNSUPPORTED_DEVICE) return fe;
    }
    vkm_buffer *kb = &K->ring, *vb = &V->ring;
    vkmix_error e;
    if (!c->klin.buf && (K->bits < 16 || V->bits < 16)) {
        uint64_t lin = (uint64_t)c->n_kv_head * c->n_ctx * c->head_dim * 2;
        if ((e = alloc(ctx, &c->klin, lin, "linear keys", layer)) != VKMIX_OK) return e;
        if ((e = alloc(ctx, &c->vlin, lin, "linear values", layer)) != VKMIX_OK) return e;
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
    return vkm_op_attention(cmd, q, VKM_BIND(*kb), VKM_BIND(*vb), out, scratch, n, c->n_q_head, c->n_kv_head,
                            c->head_dim, c->n_ctx, pos0, 1.0f / sqrtf((float)c->head_dim));
}

vkmix_error vkm_kv_cache_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded)
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

vkmix_error vkm_kv_cache_attend(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding k,
                                vkm_binding v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_error e = vkm_kv_cache_store(cmd, c, layer, k, v, n, pos0);
    if (e != VKMIX_OK) return e;
    vkm_cmd_barrier(cmd);
    if ((e = vkm_kv_cache_attention(cmd, c, layer, q, out, scratch, n, pos0)) != VKMIX_OK) return e;
    vkm_cmd_barrier(cmd);
    int aged = 0;
    if ((e = vkm_kv_cache_age(cmd, c, layer, n, pos0, &aged)) != VKMIX_OK) return e;
    if (aged) vkm_cmd_barrier(cmd);
    return VKMIX_OK;
}
