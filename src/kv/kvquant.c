/* Recording the KV quantization kernels (shaders/kv/kvq_*.comp). */
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"

static uint32_t round_up(uint32_t v, uint32_t m) { return (v + m - 1) / m * m; }

/* Push constants of the kvq kernels (struct KvqPush in shaders/kv/kvq.glsl). */
static void kvq_push(const vkmix_kvq_shape *s, const vkm_kvq_range *r, int quant, uint32_t push[8])
{
    uint32_t per_head_store = s->kind == VKMIX_KV_KEYS ? s->n_tokens / s->group : s->n_tokens;
    push[0] = s->n_heads;
    push[1] = s->n_tokens;
    if (r) {
        push[2] = r->in_stride;
        push[3] = r->in_off;
        push[4] = r->out_stride;
        push[5] = r->out_off;
    } else {
        push[2] = quant ? s->n_tokens : per_head_store;
        push[3] = 0;
        push[4] = quant ? per_head_store : s->n_tokens;
        push[5] = 0;
    }
    push[6] = push[7] = 0;
}

vkmix_error vkm_kvq_quant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r, vkm_binding x,
                                 vkm_binding codes, vkm_binding meta)
{
    vkmix_context *ctx = cmd->ctx;
    vkmix_error e = vkm_kvq_check(s, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    const vkm_pipeline *p;
    uint32_t push[8];
    kvq_push(s, r, 1, push);
    vkm_binding b[3] = { x, codes, meta };
    if (s->kind == VKMIX_KV_KEYS) {
        uint32_t sg = ctx->dev.caps.subgroup_size ? ctx->dev.caps.subgroup_size : 32;
        uint32_t wg = round_up(s->head_dim, sg);
        if (wg > 256) wg = 256;
        uint32_t spec[4] = { wg, s->bits, s->group, s->head_dim };
        e = vkm_pipe(ctx, VKM_SH_KVQ_QUANT_K, spec, 4, &p);
        if (e != VKMIX_OK) return e;
        if (s->n_tokens / s->group)
            vkm_cmd_dispatch(cmd, p, b, 3, push, sizeof push, s->n_tokens / s->group, s->n_heads, 1);
    } else {
        uint32_t wg = vkm_default_wg(ctx);
        uint32_t spec[4] = { wg, s->bits, s->group, s->head_dim };
        e = vkm_pipe(ctx, VKM_SH_KVQ_QUANT_V, spec, 4, &p);
        if (e != VKMIX_OK) return e;
        uint64_t n = (uint64_t)s->n_heads * s->n_tokens * (s->head_dim / s->group);
        if (n) vkm_cmd_dispatch(cmd, p, b, 3, push, sizeof push, vkm_groups_for(ctx, n, wg), 1, 1);
    }
    return VKMIX_OK;
}

vkmix_error vkm_kvq_dequant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r,
                                   vkm_binding codes, vkm_binding meta, vkm_binding y)
{
    vkmix_context *ctx = cmd->ctx;
    vkmix_error e = vkm_kvq_check(s, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    const vkm_pipeline *p;
    uint32_t wg = vkm_default_wg(ctx);
    uint32_t spec[4] = { wg, s->bits, s->group, s->head_dim };
    uint32_t push[8];
    kvq_push(s, r, 0, push);
    vkm_binding b[3] = { codes, meta, y };
    uint64_t n;
    if (s->kind == VKMIX_KV_KEYS) {
        e = vkm_pipe(ctx, VKM_SH_KVQ_DEQUANT_K, spec, 4, &p);
        n = (uint64_t)s->n_heads * (s->n_tokens / 8) * (s->head_dim / 8);
    } else {
        e = vkm_pipe(ctx, VKM_SH_KVQ_DEQUANT_V, spec, 4, &p);
        n = (uint64_t)s->n_heads * s->n_tokens * (s->head_dim / 8);
    }
    if (e != VKMIX_OK) return e;
    if (n) vkm_cmd_dispatch(cmd, p, b, 3, push, sizeof push, vkm_groups_for(ctx, n, wg), 1, 1);
    return VKMIX_OK;
}
