/* Timing of the KV quantization kernels against a plain copy kernel. */
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "kv/kv.h"
#include "vkmix_bench.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs `reps` timed repetitions of one kernel (each between two timestamps in
 * one command buffer) after one warm-up submit; returns the median in ms. */
typedef vkmix_error (*record_fn)(vkm_cmd *cmd, void *user);

static vkmix_error time_kernel(vkm_cmd *cmd, record_fn fn, void *user, uint32_t reps, double *ms)
{
    if (reps > VKM_MAX_TIMESTAMPS - 1) reps = VKM_MAX_TIMESTAMPS - 1;
    if (reps < 1) reps = 1;
    vkmix_error e = vkm_cmd_begin(cmd);
    if (e != VKMIX_OK) return e;
    /* a sustained warm-up right before the timed submit: clocks ramp up under load */
    for (int w = 0; w < 20 && e == VKMIX_OK; w++) { e = fn(cmd, user); vkm_cmd_barrier(cmd); }
    if (e != VKMIX_OK) return e;
    if ((e = vkm_cmd_submit(cmd)) != VKMIX_OK) return e;
    if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) return e;
    vkm_cmd_timestamp(cmd, 0);
    for (uint32_t i = 0; i < reps && e == VKMIX_OK; i++) {
        e = fn(cmd, user);
        vkm_cmd_barrier(cmd);
        vkm_cmd_timestamp(cmd, i + 1);
    }
    if (e != VKMIX_OK) return e;
    if ((e = vkm_cmd_submit(cmd)) != VKMIX_OK) return e;
    double t[VKM_MAX_TIMESTAMPS];
    for (uint32_t i = 0; i < reps; i++) {
        if ((e = vkm_timestamp_ns(cmd, i, i + 1, &t[i])) != VKMIX_OK) return e;
        t[i] *= 1e-6;
    }
    qsort(t, reps, sizeof t[0], cmp_double);
    *ms = t[reps / 2];
    return VKMIX_OK;
}

typedef struct {
    const vkmix_kvq_shape *s;
    vkm_buffer x, codes, meta, y, copy_dst;
    uint64_t xbytes;
} bench_bufs;

/* The copy yardstick: several shapes of the same copy, the best one counts. */
static uint32_t copy_items = 1, copy_wg = 256, copy_read_only = 0;

static vkmix_error rec_copy(vkm_cmd *cmd, void *u)
{
    vkmix_context *ctx = cmd->ctx;
    bench_bufs *b = u;
    const vkm_pipeline *p;
    uint32_t wg = copy_wg <= ctx->dev.caps.max_wg_invocations ? copy_wg : vkm_default_wg(ctx);
    uint32_t spec[3] = { wg, copy_items, copy_read_only };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_COPY, spec, 3, &p);
    if (e != VKMIX_OK) return e;
    uint32_t n = (uint32_t)(b->xbytes / 16);
    vkm_binding bind[2] = { VKM_BIND(b->x), VKM_BIND(b->copy_dst) };
    uint32_t groups = vkm_groups_for(ctx, (n + copy_items - 1) / copy_items, wg);
    vkm_cmd_dispatch(cmd, p, bind, 2, &n, 4, groups, 1, 1);
    return VKMIX_OK;
}

/* Best copy (bytes read + written per ms) over workgroup sizes and items per
 * invocation; with read_only, the best read kernel (bytes read). */
static vkmix_error best_copy(vkm_cmd *cmd, bench_bufs *b, uint32_t reps, int read_only, double *ms_out)
{
    static const uint32_t wgs[3] = { 128, 256, 512 }, items[3] = { 1, 2, 4 };
    double best = 0;
    copy_read_only = (uint32_t)read_only;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            copy_wg = wgs[i];
            copy_items = items[j];
            double ms;
            vkmix_error e = time_kernel(cmd, rec_copy, b, reps, &ms);
            if (e != VKMIX_OK) return e;
            if (best == 0 || ms < best) best = ms;
        }
    copy_read_only = 0;
    *ms_out = best;
    return VKMIX_OK;
}

static vkmix_error rec_quant(vkm_cmd *cmd, void *u)
{
    bench_bufs *b = u;
    return vkm_kvq_quant_record(cmd, b->s, NULL, VKM_BIND(b->x), VKM_BIND(b->codes), VKM_BIND(b->meta));
}

static vkmix_error rec_dequant(vkm_cmd *cmd, void *u)
{
    bench_bufs *b = u;
    return vkm_kvq_dequant_record(cmd, b->s, NULL, VKM_BIND(b->codes), VKM_BIND(b->meta), VKM_BIND(b->y));
}

vkmix_error vkmix_kvq_bench_run(vkmix_context *ctx, const vkmix_kvq_shape *s, uint32_t reps, vkmix_kvq_bench *out)
{
    if (!ctx || !s || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    vkm_err_clear();
    vkmix_error e = vkm_kvq_check(s, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    if (!(ctx->dev.caps.timestamp_period_ns > 0 && ctx->dev.caps.timestamp_valid_bits))
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the device's queue has no timestamps");
    vkmix_kvq_sizes sz;
    vkmix_kvq_sizes_for(s, &sz);
    bench_bufs b;
    memset(&b, 0, sizeof b);
    b.s = s;
    b.xbytes = (uint64_t)s->n_heads * s->n_tokens * s->head_dim * 2;
    if (b.xbytes > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "benchmark tensor of %llu MiB exceeds maxStorageBufferRange (%llu MiB)",
                        (unsigned long long)(b.xbytes >> 20), (unsigned long long)(ctx->dev.caps.max_storage_range >> 20));
    vkm_device *dev = &ctx->dev;
    vkm_cmd cmd; /* this call's own recording target, with timestamps */
    if ((e = vkm_cmd_create(&cmd, dev, ctx, true)) != VKMIX_OK) return e;
    if ((e = vkm_buffer_create(dev, &b.x, b.xbytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &b.y, b.xbytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &b.copy_dst, b.xbytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &b.codes, sz.code_bytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &b.meta, sz.meta_bytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    {
        /* random FP16 data (not zeros: zeros can run faster than real data) */
        uint16_t *h = malloc(b.xbytes);
        if (!h) { e = VKMIX_ERROR_OUT_OF_HOST_MEMORY; goto done; }
        uint64_t st = 0x9E3779B97F4A7C15ull;
        for (uint64_t i = 0; i < b.xbytes / 2; i++) {
            st ^= st << 13; st ^= st >> 7; st ^= st << 17;
            h[i] = vkmix_f32_to_f16(((float)(st >> 40) / 16777216.0f - 0.5f) * 4.0f);
        }
        e = vkm_buffer_upload(&cmd, &b.x, 0, h, b.xbytes);
        free(h);
        if (e != VKMIX_OK) goto done;
    }
    if ((e = best_copy(&cmd, &b, reps, 0, &out->copy_ms)) != VKMIX_OK) goto done;
    if ((e = best_copy(&cmd, &b, reps, 1, &out->read_ms)) != VKMIX_OK) goto done;
    if ((e = time_kernel(&cmd, rec_quant, &b, reps, &out->quant_ms)) != VKMIX_OK) goto done;
    if ((e = time_kernel(&cmd, rec_dequant, &b, reps, &out->dequant_ms)) != VKMIX_OK) goto done;
    out->copy_bytes = 2.0 * (double)(b.xbytes / 16 * 16);
    out->read_bytes = (double)(b.xbytes / 16 * 16);
    out->quant_bytes = (double)b.xbytes + (double)sz.code_bytes + (double)sz.meta_bytes;
    out->dequant_bytes = out->quant_bytes;
done:
    vkm_cmd_destroy(&cmd);
    vkm_buffer_destroy(dev, &b.x);
    vkm_buffer_destroy(dev, &b.y);
    vkm_buffer_destroy(dev, &b.copy_dst);
    vkm_buffer_destroy(dev, &b.codes);
    vkm_buffer_destroy(dev, &b.meta);
    return e;
}
