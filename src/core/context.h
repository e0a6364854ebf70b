/* The context: one device and its pipelines. Error messages are per thread
 * (core/error.h). Everything here may be used by several threads at once:
 * the device's queue and the pipeline set are locked; each session or call
 * records into its own vkm_cmd. */
#ifndef VKM_CONTEXT_H
#define VKM_CONTEXT_H

#include "gpu/pipelines.h"
#include "gpu/vk_device.h"

/* Tuning knobs for experiments (docs/PERFORMANCE.md), read from the
 * environment once, at context creation; 0 means the library's default. */
typedef struct vkm_tuning {
    uint32_t kvq_wg;         /* VKMIX_KVQ_WG: invocations of the fused decode attention */
    uint32_t kvq_tile;       /* VKMIX_KVQ_TILE: tokens per tile */
    uint32_t kvq_splits;     /* VKMIX_KVQ_SPLITS: splits of the packed history */
    uint32_t kvq_kp, kvq_vp; /* VKMIX_KVQ_KP / VKMIX_KVQ_VP: token / channel pairs per invocation */
    uint32_t kvq_f32;        /* VKMIX_KVQ_F32=1: the packed decode attention in FP32 arithmetic (default: FP16 for 2/4-bit keys) */
    uint32_t matmul;         /* VKMIX_MATMUL=coopmat (1) or scalar (2): the prefill product's kernel */
    uint32_t attn_split_batch; /* VKMIX_ATTN_SPLIT_BATCH=1: a batched decode shares the target number of
                                  workgroups among its rows (fewer splits per row; a row's result then
                                  differs from the same row alone by rounding, not only by nothing) */
    uint32_t policy_splits;  /* VKMIX_POLICY_SPLITS: most splits of one decode row in the MiKV and MixKVQ
                                attention (0: their default, 512) */
} vkm_tuning;

struct vkmix_context {
    vkm_device dev;
    vkm_pipeline_set pipes;
    vkm_tuning tune;
};

/* Shorthand used across the library. */
static inline vkmix_error vkm_pipe(vkmix_context *ctx, vkm_shader sh, const uint32_t *spec, uint32_t n,
                                   const vkm_pipeline **out)
{
    return vkm_pipeline_get(&ctx->dev, &ctx->pipes, sh, spec, n, out);
}

/* A workgroup size that suits the device for simple element-wise kernels. */
static inline uint32_t vkm_default_wg(const vkmix_context *ctx)
{
    uint32_t wg = 256;
    if (wg > ctx->dev.caps.max_wg_invocations) wg = ctx->dev.caps.max_wg_invocations;
    return wg;
}

/* Number of workgroups for a grid-stride loop over n items. */
static inline uint32_t vkm_groups_for(const vkmix_context *ctx, uint64_t n, uint32_t wg)
{
    uint64_t g = (n + wg - 1) / wg;
    uint64_t cap = ctx->dev.caps.max_wg_count[0];
    if (cap > 65535u * 16u) cap = 65535u * 16u;
    if (g > cap) g = cap;
    return g ? (uint32_t)g : 1;
}
#endif
