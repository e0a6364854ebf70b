/* The KV cache: preallocated per layer for the whole context, no per-token copies. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "session.h"

vkmix_error vkm_kv_config_parse(const char *spec, const vkm_hparams *hp, vkm_kv_config *cfg, char *err, size_t errlen)
{
    (void)hp;
    memset(cfg, 0, sizeof *cfg);
    if (!spec || !*spec || !strcmp(spec, "f16")) {
        snprintf(cfg->name, sizeof cfg->name, "f16");
        return VKMIX_OK;
    }
    snprintf(err, errlen, "KV configuration '%s' is not supported (this build supports f16)", spec);
    return VKMIX_ERROR_BAD_PROFILE;
}

uint64_t vkm_kv_cache_bytes(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx)
{
    (void)cfg;
    return 2ull * hp->n_layer * hp->n_head_kv * (uint64_t)n_ctx * hp->head_dim * 2;
}

vkmix_error vkm_kv_cache_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx)
{
    c->n_layer = hp->n_layer;
    c->n_ctx = n_ctx;
    c->n_kv_head = hp->n_head_kv;
    c->n_q_head = hp->n_head;
    c->head_dim = hp->head_dim;
    c->k = calloc(hp->n_layer, sizeof *c->k);
    c->v = calloc(hp->n_layer, sizeof *c->v);
    if (!c->k || !c->v) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    uint64_t bytes = (uint64_t)hp->n_head_kv * n_ctx * hp->head_dim * 2;
    if (bytes > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY,
                        "one layer's FP16 keys (%.1f MiB) exceed the device's maxStorageBufferRange (%.1f MiB)",
                        (double)bytes / 1048576.0, (double)ctx->dev.caps.max_storage_range / 1048576.0);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        vkmix_error e = vkm_buffer_create(&ctx->dev, &c->k[l], bytes, VKM_MEM_DEVICE);
        if (e == VKMIX_OK) e = vkm_buffer_create(&ctx->dev, &c->v[l], bytes, VKM_MEM_DEVICE);
        if (e != VKMIX_OK) return e;
    }
    return VKMIX_OK;
}

void vkm_kv_cache_free(vkm_device *dev, vkm_kv_cache *c)
{
    for (uint32_t l = 0; l < c->n_layer; l++) {
        if (c->k) vkm_buffer_destroy(dev, &c->k[l]);
        if (c->v) vkm_buffer_destroy(dev, &c->v[l]);
    }
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

void vkm_kv_cache_reset(vkm_kv_cache *c) { (void)c; /* positions >= n_past are never read */ }

void vkm_kv_cache_memory(const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx, vkmix_kv_memory *out)
{
    memset(out, 0, sizeof *out);
    out->total_bytes = vkm_kv_cache_bytes(&c->cfg, hp, n_ctx);
    out->fp16_bytes = out->total_bytes;
    out->k_bits = out->v_bits = 16.0;
}

vkmix_error vkm_kv_cache_attend(vkmix_context *ctx, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding k,
                                vkm_binding v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0)
{
    vkmix_error e = vkm_op_kv_store(ctx, k, v, VKM_BIND(c->k[layer]), VKM_BIND(c->v[layer]), n, c->n_kv_head,
                                    c->head_dim, c->n_ctx, pos0);
    if (e != VKMIX_OK) return e;
    vkm_cmd_barrier(&ctx->dev);
    e = vkm_op_attention(ctx, q, VKM_BIND(c->k[layer]), VKM_BIND(c->v[layer]), out, scratch, n, c->n_q_head,
                         c->n_kv_head, c->head_dim, c->n_ctx, pos0, 1.0f / sqrtf((float)c->head_dim));
    vkm_cmd_barrier(&ctx->dev);
    return e;
}
