/* A session's KV cache: its storage and the three phases of a step, dispatched
 * to the configured policy (kv_policy.c), and the building blocks the policies
 * share (the FP16 ring, the linear attention of prefill). Everything is
 * preallocated for the context; nothing is copied per step and nothing grows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "ops/ops.h"

static const vkm_kv_policy_ops *ops_of(const vkm_kv_cache *c) { return vkm_kv_policy(c->cfg.policy); }

vkmix_error vkm_kv_alloc(vkmix_context *ctx, vkm_buffer *b, uint64_t bytes, const char *what, uint32_t layer)
{
    if (bytes > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY,
                        "layer %u %s (%.1f MiB) exceeds the device's maxStorageBufferRange (%.1f MiB)", layer, what,
                        (double)bytes / 1048576.0, (double)ctx->dev.caps.max_storage_range / 1048576.0);
    return vkm_buffer_create(&ctx->dev, b, bytes, VKM_MEM_DEVICE);
}

vkmix_error vkm_kv_cache_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx)
{
    const vkm_kv_policy_ops *ops = ops_of(c);
    if (!vkm_kv_policy_implemented(c->cfg.policy))
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INTERNAL, "KV cache: the %s policy has no device implementation",
                        vkm_kv_policy_name(c->cfg.policy));
    c->n_layer = hp->n_layer;
    c->n_ctx = n_ctx;
    c->n_q_head = hp->n_head;
    c->n_kv_head = hp->n_head_kv;
    c->head_dim = hp->head_dim;
    c->n_blocks = vkm_kv_blocks(&c->cfg, n_ctx);
    c->k = calloc(hp->n_layer, sizeof *c->k);
    c->v = calloc(hp->n_layer, sizeof *c->v);
    if (!c->k || !c->v) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    return ops->create(ctx, c, hp);
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
    const vkm_kv_policy_ops *ops = ops_of(c);
    if (ops && ops->destroy) ops->destroy(dev, c);
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

/* ------------------------------------------------------------------ shared building blocks */

static uint32_t ring_slots(const vkm_kv_cache *c, const vkm_kv_side *s) { return s->bits >= 16 ? c->n_ctx : c->cfg.ring; }
static uint32_t sinks_of(const vkm_kv_cache *c, const vkm_kv_side *s) { return s->bits >= 16 ? 0 : c->cfg.sinks; }

vkmix_error vkm_kv_ring_store(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_binding src,
                              uint32_t n, uint32_t pos0)
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

vkmix_error vkm_kv_ring_gather(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_buffer *lin,
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

vkmix_error vkm_kv_attention_linear(vkm_cmd *cmd, const vkm_kv_cache *c, vkm_binding q, const vkm_buffer *k,
                                    const vkm_buffer *v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    return vkm_op_attention(cmd, q, VKM_BIND(*k), VKM_BIND(*v), out, scratch, n, c->n_q_head, c->n_kv_head,
                            c->head_dim, c->n_ctx, pos0, 1.0f / sqrtf((float)c->head_dim));
}

/* ------------------------------------------------------------------ steps, through the policy */

vkmix_error vkm_kv_cache_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v,
                               uint32_t n, uint32_t pos0)
{
    return ops_of(c)->store(cmd, c, layer, k, v, n, pos0);
}

vkmix_error vkm_kv_cache_attention(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                                   vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    const vkm_kv_policy_ops *ops = ops_of(c);
    return n == 1 ? ops->decode(cmd, c, layer, q, out, scratch, pos0)
                  : ops->prefill(cmd, c, layer, q, out, scratch, n, pos0);
}

vkmix_error vkm_kv_cache_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded)
{
    return ops_of(c)->age(cmd, c, layer, n, pos0, recorded);
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
