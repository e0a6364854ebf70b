/* The context: one device, its pipelines and the last error message. */
#ifndef VKM_CONTEXT_H
#define VKM_CONTEXT_H

#include "gpu/pipelines.h"
#include "gpu/vk_device.h"

struct vkmix_context {
    vkm_device dev;
    vkm_pipeline_set pipes;
    char err[1024];
    /* x of the integer products quantized by vkm_op_matmul (ops/ops.c); a
     * buffer outgrown while recording is kept until the context is freed */
    vkm_buffer act_scratch;
    vkm_buffer act_retired[16];
    uint32_t n_act_retired;
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
