/* Decode attention over the packed cache: the fused kernels and their dispatch. */
#include <math.h>
#include <stdlib.h>

#include "kv/kv_cache.h"

/* Decode (one query position) straight from the packed store: kvq_attn + reduce.
 * Returns VKMIX_ERROR_UNSUPPORTED_DEVICE (nothing recorded) when the kernel's
 * shared memory does not fit the device; the caller then takes the linear path. */
vkmix_error vkm_kv_fused_decode(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *K, const vkm_kv_side *V,
                                vkm_binding q, vkm_binding out, uint32_t nq, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    const uint32_t G = c->cfg.group, nrep = c->n_q_head / c->n_kv_head, D = c->head_dim;
    /* tuning knobs for experiments (docs/PERFORMANCE.md), read at context creation */
    uint32_t wg = ctx->tune.kvq_wg ? ctx->tune.kvq_wg : 128, tile = ctx->tune.kvq_tile ? ctx->tune.kvq_tile : 128;
    uint32_t max_splits = ctx->tune.kvq_splits ? ctx->tune.kvq_splits : VKM_KVQ_MAX_SPLITS;
    if (max_splits < 1 || max_splits > VKM_KVQ_SPLITS_CAP) max_splits = VKM_KVQ_MAX_SPLITS;
    if (wg & (wg - 1) || wg < 32) wg = 128;
    while (wg > ctx->dev.caps.max_wg_invocations) wg /= 2;
    if (tile < G) tile = G;
    const uint64_t ngv = D / c->cfg.v_group;
#define KVQ_SHARED(tl) ((uint64_t)nrep * (D + (tl) + wg) * 4 + (uint64_t)(tl) / G * D * 8 + (uint64_t)(tl) * ngv * 8 + \
                        (uint64_t)wg * ((D + wg - 1) / wg + 1) * 4)
    while (tile > G && KVQ_SHARED(tile) > ctx->dev.caps.max_shared_bytes) tile /= 2;
    if (KVQ_SHARED(tile) > ctx->dev.caps.max_shared_bytes) return VKMIX_ERROR_UNSUPPORTED_DEVICE;
#undef KVQ_SHARED
    uint32_t bps = (nq + max_splits - 1) / max_splits;
    if (bps < 1) bps = 1;
    /* the FP16 tokens (sinks + ring tail) are split too: one workgroup walking a
     * couple of hundred FP16 tokens serially was the critical path */
    const uint32_t fp16_chunk = 32;
    uint32_t S = c->cfg.sinks < pos0 + 1 ? c->cfg.sinks : pos0 + 1, r0 = c->cfg.sinks + nq * G;
    uint32_t n_fp16 = S + (pos0 + 1 > r0 ? pos0 + 1 - r0 : 0);
    uint32_t n_qsplits = (nq + bps - 1) / bps, n_fsplits = (n_fp16 + fp16_chunk - 1) / fp16_chunk;
    if (!n_fsplits) n_fsplits = 1;
    uint32_t n_splits = n_qsplits + n_fsplits;
    if (n_splits > VKM_KVQ_SPLITS_CAP + 64) return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    const vkm_pipeline *p, *pr;
    uint32_t spec[8] = { wg, K->bits, V->bits, G, D, c->cfg.v_group, nrep, tile };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_KVQ_ATTN, spec, 8, &p);
    if (e != VKMIX_OK) return e;
    struct { uint32_t S, ring, nq, n_blocks, p_end, bps, n_splits; float scale; uint32_t n_qsplits, fp16_chunk; } push = {
        c->cfg.sinks, c->cfg.ring, nq, c->n_blocks, pos0 + 1, bps, n_splits, 1.0f / sqrtf((float)D), n_qsplits, fp16_chunk
    };
    const vkm_buffer *ks = K->sinks.buf ? &K->sinks : &K->ring, *vs = V->sinks.buf ? &V->sinks : &V->ring;
    vkm_binding b[10] = { q, VKM_BIND(K->codes), VKM_BIND(K->meta), VKM_BIND(V->codes), VKM_BIND(V->meta),
                          VKM_BIND(*ks), VKM_BIND(K->ring), VKM_BIND(*vs), VKM_BIND(V->ring), VKM_BIND(c->part) };
    vkm_cmd_dispatch(cmd, p, b, 10, &push, sizeof push, n_splits, c->n_kv_head, 1);
    vkm_cmd_barrier(cmd);
    uint32_t wg2 = 512;
    while (wg2 > ctx->dev.caps.max_wg_invocations) wg2 /= 2;
    uint32_t spec2[3] = { wg2, D, VKM_KVQ_SPLITS_CAP + 64 };
    if ((e = vkm_pipe(ctx, VKM_SH_KVQ_ATTN_REDUCE, spec2, 3, &pr)) != VKMIX_OK) return e;
    vkm_binding b2[2] = { VKM_BIND(c->part), out };
    vkm_cmd_dispatch(cmd, pr, b2, 2, &n_splits, 4, c->n_q_head, 1, 1);
    return VKMIX_OK;
}

