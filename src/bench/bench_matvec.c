/* Benchmarks of the decode weight products (vkmix_bench.h): the matrix-vector
 * kernel per weight type against the read ceiling of the same device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "gguf/ggml_types.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ops/wlayout.h"
#include "vkmix_bench.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Records one repetition (rep counts from 0). */
typedef vkmix_error (*rec_fn)(vkm_cmd *cmd, void *user, uint32_t rep);

/* At least ~50 ms of warm-up (clocks ramp up under load; one submit on a CPU
 * device), then reps timed repetitions in one submit, a barrier after each;
 * the median in microseconds. */
static vkmix_error time_reps(vkm_cmd *cmd, rec_fn fn, void *user, uint32_t reps, double *us)
{
    if (reps > VKM_MAX_TIMESTAMPS - 1) reps = VKM_MAX_TIMESTAMPS - 1;
    if (reps < 1) reps = 1;
    double warm = 0;
    for (int k = 0; k < 50 && warm < 50e6; k++) {
        vkmix_error e = vkm_cmd_begin(cmd);
        if (e != VKMIX_OK) return e;
        vkm_cmd_timestamp(cmd, 0);
        for (uint32_t i = 0; i < reps && e == VKMIX_OK; i++) {
            e = fn(cmd, user, i);
            vkm_cmd_barrier(cmd);
        }
        vkm_cmd_timestamp(cmd, 1);
        vkmix_error s = vkm_cmd_submit(cmd);
        if (e != VKMIX_OK) return e;
        if (s != VKMIX_OK) return s;
        double ns;
        if ((e = vkm_timestamp_ns(cmd, 0, 1, &ns)) != VKMIX_OK) return e;
        warm += ns;
        if (cmd->dev->caps.quirk_cpu_device) break;
    }
    vkmix_error e = vkm_cmd_begin(cmd);
    if (e != VKMIX_OK) return e;
    vkm_cmd_timestamp(cmd, 0);
    for (uint32_t i = 0; i < reps && e == VKMIX_OK; i++) {
        e = fn(cmd, user, i);
        vkm_cmd_barrier(cmd);
        vkm_cmd_timestamp(cmd, i + 1);
    }
    vkmix_error s = vkm_cmd_submit(cmd);
    if (e != VKMIX_OK) return e;
    if (s != VKMIX_OK) return s;
    double t[VKM_MAX_TIMESTAMPS];
    for (uint32_t i = 0; i < reps; i++)
        if ((e = vkm_timestamp_ns(cmd, i, i + 1, &t[i])) != VKMIX_OK) return e;
    qsort(t, reps, sizeof t[0], cmp_double);
    *us = t[reps / 2] * 1e-3;
    return VKMIX_OK;
}

static bool can_time(const vkmix_context *ctx)
{
    return ctx->dev.caps.timestamp_period_ns > 0 && ctx->dev.caps.timestamp_valid_bits;
}

/* ------------------------------------------------------------------ the read ceiling */

typedef struct {
    vkm_buffer src, dst;
    uint32_t n4, wg, items;
} read_arg;

static vkmix_error rec_read(vkm_cmd *cmd, void *u, uint32_t rep)
{
    (void)rep;
    vkmix_context *ctx = cmd->ctx;
    read_arg *a = u;
    uint32_t spec[3] = { a->wg, a->items, 1 };
    const vkm_pipeline *p;
    vkmix_error e = vkm_pipe(ctx, VKM_SH_COPY, spec, 3, &p);
    if (e != VKMIX_OK) return e;
    vkm_binding b[2] = { VKM_BIND(a->src), VKM_BIND(a->dst) };
    vkm_cmd_dispatch(cmd, p, b, 2, &a->n4, 4, vkm_groups_for(ctx, (a->n4 + a->items - 1) / a->items, a->wg), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkmix_bench_read(vkmix_context *ctx, uint64_t bytes, uint32_t reps, double *gbps)
{
    if (!ctx || !gbps || bytes < 16) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    *gbps = 0;
    if (!can_time(ctx)) return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the device's queue has no timestamps");
    if (bytes > ctx->dev.caps.max_storage_range) bytes = ctx->dev.caps.max_storage_range;
    bytes &= ~(uint64_t)15;
    read_arg a;
    memset(&a, 0, sizeof a);
    a.n4 = (uint32_t)(bytes / 16);
    vkm_device *dev = &ctx->dev;
    vkm_cmd cmd; /* this call's own recording target, with timestamps */
    vkmix_error e = vkm_cmd_create(&cmd, dev, ctx, true);
    if (e != VKMIX_OK) return e;
    /* random contents (as the weights): fill_random's F32 pattern */
    e = vkm_fill_random_weight(&cmd, &a.src, VKM_GGML_F32, 4, bytes / 16, 1.0f, 0.0f, 77);
    if (e == VKMIX_OK) e = vkm_buffer_create(dev, &a.dst, 4096, VKM_MEM_DEVICE);
    static const uint32_t wgs[3] = { 128, 256, 512 }, items[3] = { 1, 2, 4 };
    double best = 0;
    for (int i = 0; i < 3 && e == VKMIX_OK; i++)
        for (int j = 0; j < 3 && e == VKMIX_OK; j++) {
            a.wg = wgs[i] <= dev->caps.max_wg_invocations ? wgs[i] : vkm_default_wg(ctx);
            a.items = items[j];
            double us;
            if ((e = time_reps(&cmd, rec_read, &a, reps, &us)) == VKMIX_OK && us > 0 && bytes / (us * 1e3) > best)
                best = (double)bytes / (us * 1e3);
        }
    vkm_cmd_destroy(&cmd);
    vkm_buffer_destroy(dev, &a.src);
    vkm_buffer_destroy(dev, &a.dst);
    *gbps = best;
    return e;
}

/* ------------------------------------------------------------------ the product */

typedef struct {
    vkm_buffer w[16], x, xq, y;
    uint32_t n_w, type, rows, cols, tokens;
    vkm_matmul_cfg cfg;
} mv_arg;

static vkmix_error rec_matvec(vkm_cmd *cmd, void *u, uint32_t rep)
{
    mv_arg *a = u;
    vkm_act x = { VKM_BIND(a->x), VKM_BIND(a->xq) };
    vkm_binding none = { NULL, 0, 0 };
    return vkm_op_matmul_x(cmd, VKM_BIND(a->w[rep % a->n_w]), a->type, x, VKM_BIND(a->y), none, a->cols, a->rows,
                           a->tokens, &a->cfg);
}

static vkmix_error rec_quant(vkm_cmd *cmd, void *u, uint32_t rep)
{
    (void)rep;
    mv_arg *a = u;
    vkm_binding none = { NULL, 0, 0 };
    return vkm_op_act_quant(cmd, VKM_BIND(a->x), none, VKM_BIND(a->xq), a->tokens, a->cols, 0.0f);
}

/* Rows `check` of copy `wi` (token 0) against a CPU product of the dequantized rows. */
static vkmix_error check(vkm_cmd *cmd, mv_arg *a, uint32_t wi, double *rel)
{
    uint64_t gpu_rb = vkm_wlayout_row_bytes(a->type, a->cols), file_rb;
    vkm_ggml_row_size(a->type, a->cols, &file_rb);
    float *x = malloc((size_t)a->cols * 4), *y = malloc((size_t)a->rows * 4), *deq = malloc((size_t)a->cols * 4);
    uint8_t *gpu = malloc(gpu_rb), *file = malloc(file_rb);
    vkmix_error e = x && y && deq && gpu && file ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (e == VKMIX_OK) e = vkm_buffer_download(cmd, &a->x, 0, x, (uint64_t)a->cols * 4);
    if (e == VKMIX_OK) e = vkm_buffer_download(cmd, &a->y, 0, y, (uint64_t)a->rows * 4);
    double num = 0, den = 0;
    for (uint32_t k = 0; k < 16 && e == VKMIX_OK; k++) {
        uint32_t r = (uint32_t)((uint64_t)k * (a->rows - 1) / 15);
        if ((e = vkm_buffer_download(cmd, &a->w[wi], r * gpu_rb, gpu, gpu_rb)) != VKMIX_OK) break;
        vkm_wlayout_unpack(a->type, gpu, a->cols, 1, file);
        if ((e = vkm_ggml_dequantize_row(a->type, file, deq, a->cols)) != VKMIX_OK) break;
        double s = 0;
        for (uint32_t i = 0; i < a->cols; i++) s += (double)deq[i] * x[i];
        num += (y[r] - s) * (y[r] - s);
        den += s * s;
        if (isnan(y[r])) num = INFINITY;
    }
    *rel = den > 0 ? sqrt(num / den) : sqrt(num);
    free(x), free(y), free(deq), free(gpu), free(file);
    return e;
}

vkmix_error vkmix_bench_matvec_run(vkmix_context *ctx, const vkmix_matvec_opts *o, vkmix_matvec_bench *out)
{
    if (!ctx || !o || !out || !o->rows || !o->cols) return VKMIX_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    vkm_err_clear();
    vkm_device *dev = &ctx->dev;
    if (!can_time(ctx)) return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "the device's queue has no timestamps");
    mv_arg a;
    memset(&a, 0, sizeof a);
    if (vkm_weight_type_from_name(o->wtype, &a.type) != VKMIX_OK)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "matvec benchmark: weight type '%s'", o->wtype ? o->wtype : "");
    a.rows = o->rows;
    a.cols = o->cols;
    a.tokens = o->tokens ? o->tokens : 1;
    if (a.tokens > 65536)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "matvec benchmark: %u tokens", a.tokens);
    a.cfg.mm_coopmat = o->tiled;
    a.cfg.mv_wg = o->wg;
    a.cfg.mv_rows = o->rows_per_wg;
    a.cfg.mv_unroll = o->unroll;
    a.cfg.mv_max_tok = o->max_tok;
    a.cfg.mv_idot = o->emulate_idot ? 2 : 0;
    uint64_t file_rb, gpu_rb = vkm_wlayout_row_bytes(a.type, a.cols);
    if (!gpu_rb || vkm_ggml_row_size(a.type, a.cols, &file_rb) != VKMIX_OK)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "matvec benchmark: %u columns of %s", a.cols, o->wtype);
    uint64_t wbytes = gpu_rb * a.rows;
    uint64_t want = dev->caps.quirk_cpu_device ? wbytes : (256ull << 20);
    a.n_w = (uint32_t)((want + wbytes - 1) / wbytes);
    if (a.n_w > 16) a.n_w = 16;
    if (a.n_w < 1) a.n_w = 1;
    vkm_cmd cmd; /* this call's own recording target, with timestamps */
    vkmix_error e = vkm_cmd_create(&cmd, dev, ctx, true);
    if (e != VKMIX_OK) return e;
    uint32_t made = 0;
    for (; made < a.n_w && e == VKMIX_OK; made++)
        e = vkm_fill_random_weight(&cmd, &a.w[made], a.type, a.cols, a.rows, 0.05f, 0.0f, 1000u + made);
    if (e == VKMIX_OK) e = vkm_fill_random_weight(&cmd, &a.x, VKM_GGML_F32, a.cols, a.tokens, 1.0f, 0.0f, 9);
    if (e == VKMIX_OK && vkm_matmul_uses_q(a.type, a.tokens))
        e = vkm_buffer_create(dev, &a.xq, a.tokens * vkm_act_q_bytes(a.cols), VKM_MEM_DEVICE);
    if (e == VKMIX_OK) e = vkm_buffer_create(dev, &a.y, (uint64_t)a.tokens * a.rows * 4, VKM_MEM_DEVICE);
    if (e == VKMIX_OK && a.xq.buf) e = time_reps(&cmd, rec_quant, &a, 5, &out->quant_us);
    uint32_t reps = o->reps ? o->reps : 20;
    if (reps > VKM_MAX_TIMESTAMPS - 1) reps = VKM_MAX_TIMESTAMPS - 1;
    double us = 0;
    if (e == VKMIX_OK) e = time_reps(&cmd, rec_matvec, &a, reps, &us);
    /* the last repetition used copy (reps - 1) % n_w */
    if (e == VKMIX_OK) e = check(&cmd, &a, (reps - 1) % a.n_w, &out->check_rel_err);
    out->us = us;
    out->weight_bytes = (double)file_rb * a.rows;
    out->gbps = us > 0 ? out->weight_bytes / (us * 1e3) : 0;
    out->tflops = us > 0 ? 2.0 * a.rows * a.cols * a.tokens / (us * 1e6) : 0;
    out->copies = a.n_w;
    vkm_cmd_destroy(&cmd);
    for (uint32_t i = 0; i < made; i++) vkm_buffer_destroy(dev, &a.w[i]);
    vkm_buffer_destroy(dev, &a.x);
    vkm_buffer_destroy(dev, &a.xq);
    vkm_buffer_destroy(dev, &a.y);
    return e;
}

vkmix_error vkmix_bench_matvec(vkmix_context *ctx, const char *wtype, uint32_t rows, uint32_t cols, uint32_t reps,
                               uint32_t mv_wg, uint32_t mv_rows, vkmix_matvec_bench *out)
{
    vkmix_matvec_opts o = { wtype, rows, cols, 1, reps, mv_wg, mv_rows, 0, 0, 0 };
    vkmix_error e = vkmix_bench_matvec_run(ctx, &o, out);
    if (e != VKMIX_OK) return e;
    vkmix_kvq_shape cs = { VKMIX_KV_KEYS, 2, 32, 128, 8, ctx->dev.caps.quirk_cpu_device ? 4096 : 131072 };
    vkmix_kvq_bench kb;
    if ((e = vkmix_kvq_bench_run(ctx, &cs, reps, &kb)) != VKMIX_OK) return e;
    out->copy_gbps = kb.copy_bytes / (kb.copy_ms * 1e6);
    return VKMIX_OK;
}
