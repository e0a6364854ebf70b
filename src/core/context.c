/* Public context API. */
#include "core/context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t env_u32(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? (uint32_t)strtoul(v, NULL, 10) : 0;
}

void vkmix_context_default_params(vkmix_context_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->device_index = -1;
    p->log_level = VKMIX_LOG_WARN;
}

vkmix_error vkmix_context_create(const vkmix_context_params *params, vkmix_context **out)
{
    if (!out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkmix_context_params def;
    if (!params) {
        vkmix_context_default_params(&def);
        params = &def;
    }
    vkmix_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = vkm_device_create(&ctx->dev, params, vkm_err_buf(), VKM_ERR_SIZE);
    if (e == VKMIX_OK) e = vkm_pipeline_set_init(&ctx->dev, &ctx->pipes);
    if (e != VKMIX_OK) {
        if (params->error_buf && params->error_buf_size)
            snprintf(params->error_buf, params->error_buf_size, "%s", vkm_err_buf());
        vkm_pipeline_set_destroy(&ctx->dev, &ctx->pipes);
        vkm_device_destroy(&ctx->dev);
        free(ctx);
        return e;
    }
    ctx->tune.kvq_wg = env_u32("VKMIX_KVQ_WG");
    ctx->tune.kvq_tile = env_u32("VKMIX_KVQ_TILE");
    ctx->tune.kvq_splits = env_u32("VKMIX_KVQ_SPLITS");
    ctx->tune.kvq_f32 = env_u32("VKMIX_KVQ_F32");
    ctx->tune.kvq_kp = env_u32("VKMIX_KVQ_KP");
    ctx->tune.kvq_vp = env_u32("VKMIX_KVQ_VP");
    ctx->tune.attn_split_batch = env_u32("VKMIX_ATTN_SPLIT_BATCH");
    ctx->tune.policy_splits = env_u32("VKMIX_POLICY_SPLITS");
    const char *mm = getenv("VKMIX_MATMUL");
    ctx->tune.matmul = mm && !strcmp(mm, "coopmat") ? 1 : mm && !strcmp(mm, "scalar") ? 2 : 0;
    vkm_err_clear();
    *out = ctx;
    return VKMIX_OK;
}

void vkmix_context_free(vkmix_context *ctx)
{
    if (!ctx) return;
    vkm_pipeline_set_destroy(&ctx->dev, &ctx->pipes);
    vkm_device_destroy(&ctx->dev);
    free(ctx);
}

/* The calling thread's last message (core/error.h): per thread, not per context. */
const char *vkmix_context_last_error(const vkmix_context *ctx)
{
    (void)ctx;
    return vkm_err_buf();
}

uint32_t vkmix_context_validation_messages(const vkmix_context *ctx)
{
    return ctx ? __atomic_load_n(&ctx->dev.validation_messages, __ATOMIC_RELAXED) : 0;
}

void vkmix_context_lock_queue(vkmix_context *ctx)
{
    if (ctx && ctx->dev.queue_lock_ok) pthread_mutex_lock(&ctx->dev.queue_lock);
}

void vkmix_context_unlock_queue(vkmix_context *ctx)
{
    if (ctx && ctx->dev.queue_lock_ok) pthread_mutex_unlock(&ctx->dev.queue_lock);
}

vkmix_error vkmix_context_device_info(const vkmix_context *ctx, vkmix_device_info *info)
{
    if (!ctx || !info) return VKMIX_ERROR_INVALID_ARGUMENT;
    const vkm_caps *c = &ctx->dev.caps;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", c->device_name);
    info->vendor_id = c->vendor_id;
    info->device_id = c->device_id;
    info->type = c->type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU     ? VKMIX_DEVICE_DISCRETE
                 : c->type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? VKMIX_DEVICE_INTEGRATED
                 : c->type == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU    ? VKMIX_DEVICE_VIRTUAL
                 : c->type == VK_PHYSICAL_DEVICE_TYPE_CPU            ? VKMIX_DEVICE_CPU
                                                                     : VKMIX_DEVICE_OTHER;
    info->api_version = c->api_version;
    info->device_local_bytes = c->device_local_bytes;
    info->usable = 1;
    return VKMIX_OK;
}

vkmix_error vkmix_context_describe(const vkmix_context *ctx, char *buf, size_t n)
{
    if (!ctx || !buf || !n) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_caps_describe(&ctx->dev.caps, buf, n);
    return VKMIX_OK;
}

vkmix_error vkmix_list_devices(vkmix_device_info *out, uint32_t cap, uint32_t *count, char *err, size_t errlen)
{
    return vkm_list_devices(out, cap, count, err, errlen);
}
