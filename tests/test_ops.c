/* GPU ops of the forward pass (src/ops.c, shaders/) against the CPU
 * references, on odd sizes with fixed seeds. Outputs are poisoned with a NaN
 * pattern before every run, so an element the GPU does not write fails.
 *
 *   fp32 ops:          ||gpu - ref|| / ||ref|| <= 1e-4 (ref in double where it matters)
 *   matmul / matvec:   ref = vkm_ggml_dequantize_row of the same quantized data,
 *                      double-precision dot products; bound 1e-3
 *   attention:         vkm_ref_attention on the same FP16 K/V; bound 1e-4
 *
 * Weights/caches larger than the storage range are tested by shrinking
 * ctx->dev.caps.max_storage_range (and raising storage_align) for a while.
 *
 * VKMIX_OPS_BENCH=1 runs the kernel benchmark instead (bandwidth of matvec per
 * type and configuration, attention decode, prefill matmul), see bench(). */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/context.h"
#include "gguf/ggml_types.h"
#include "ops/ops.h"
#include "ops/wlayout.h"
#include "ref/ref_model.h"
#include "testutil.h"

#define POISON 0x7fc0deadu /* a quiet NaN */

static vkmix_context *g_ctx;
static vkm_cmd g_cmd; /* the test's recording target (with timestamps for the benchmark) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ buffers */

static vkm_buffer buf_new(uint64_t bytes)
{
    vkm_buffer b;
    vkmix_error e = vkm_buffer_create(&g_ctx->dev, &b, bytes, VKM_MEM_DEVICE);
    if (e != VKMIX_OK) {
        fprintf(stderr, "buffer of %llu bytes: %s: %s\n", (unsigned long long)bytes, vkmix_strerror(e),
                vkmix_context_last_error(g_ctx));
        exit(1);
    }
    return b;
}

static vkm_buffer buf_from(const void *data, uint64_t bytes)
{
    vkm_buffer b = buf_new(bytes);
    if (vkm_buffer_upload(&g_cmd, &b, 0, data, bytes) != VKMIX_OK) {
        fprintf(stderr, "upload failed\n");
        exit(1);
    }
    return b;
}

static void buf_get(const vkm_buffer *b, void *dst, uint64_t bytes)
{
    if (vkm_buffer_download(&g_cmd, b, 0, dst, bytes) != VKMIX_OK) {
        fprintf(stderr, "download failed\n");
        exit(1);
    }
}

static void buf_free(vkm_buffer *b) { vkm_buffer_destroy(&g_ctx->dev, b); }

static void begin(void)
{
    if (vkm_cmd_begin(&g_cmd) != VKMIX_OK) {
        fprintf(stderr, "vkm_cmd_begin failed\n");
        exit(1);
    }
}

static void poison(const vkm_buffer *b)
{
    vkm_cmd_fill(&g_cmd, b, POISON);
}

/* End the recording: barrier-free poison fills are ordered by one barrier
 * recorded by the caller before the op. */
static int submit(vkmix_error rec, const char *what)
{
    vkmix_error e = vkm_cmd_submit(&g_cmd);
    if (rec != VKMIX_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, vkmix_strerror(rec), vkmix_context_last_error(g_ctx));
        tu_failures++;
        return 0;
    }
    if (e != VKMIX_OK) {
        fprintf(stderr, "%s: submit: %s\n", what, vkmix_strerror(e));
        tu_failures++;
        return 0;
    }
    return 1;
}

/* ||a - b|| / ||b||, infinite when a has a NaN */
static double rel_err(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isinf(a[i])) return INFINITY;
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double rel_errf(const float *a, const float *b, size_t n)
{
    double *bd = malloc(n * sizeof *bd);
    for (size_t i = 0; i < n; i++) bd[i] = b[i];
    double r = rel_err(a, bd, n);
    free(bd);
    return r;
}

static void fill_normal(tu_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = tu_rng_normal(r) * scale;
}

/* ------------------------------------------------------------------ rmsnorm, element-wise */

static void test_rmsnorm(void)
{
    static const uint32_t sizes[][2] = { { 3, 1001 }, { 1, 4096 }, { 5, 7 }, { 2, 288 } };
    tu_rng r;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint32_t rows = sizes[si][0], n = sizes[si][1];
        tu_rng_seed(&r, 100 + si);
        size_t N = (size_t)rows * n;
        float *x = malloc(N * 4), *w = malloc(n * 4), *ref = malloc(N * 4), *got = malloc(N * 4);
        fill_normal(&r, x, N, 3.0f);
        fill_normal(&r, w, n, 1.0f);
        vkm_buffer bx = buf_from(x, N * 4), bw = buf_from(w, n * 4), bo = buf_new(N * 4);
        for (int mode = 0; mode < 3; mode++) { /* 0: with weight, 1: no weight, 2: in place */
            for (uint32_t i = 0; i < rows; i++)
                vkm_ref_rmsnorm(ref + (size_t)i * n, x + (size_t)i * n, mode == 1 ? NULL : w, n, 1e-5f);
            if (mode == 2) vkm_buffer_upload(&g_cmd, &bx, 0, x, N * 4);
            begin();
            if (mode != 2) poison(&bo);
            vkm_cmd_barrier(&g_cmd);
            vkm_binding out = mode == 2 ? VKM_BIND(bx) : VKM_BIND(bo);
            vkm_binding wb = mode == 1 ? (vkm_binding){ NULL, 0, 0 } : VKM_BIND(bw);
            vkmix_error e = vkm_op_rmsnorm(&g_cmd, VKM_BIND(bx), wb, out, rows, n, 1e-5f);
            if (!submit(e, "rmsnorm")) continue;
            buf_get(mode == 2 ? &bx : &bo, got, N * 4);
            double err = rel_errf(got, ref, N);
            CHECK(err <= 1e-4, "rmsnorm rows %u n %u mode %d: rel err %g", rows, n, mode, err);
        }
        buf_free(&bx);
        buf_free(&bw);
        buf_free(&bo);
        free(x), free(w), free(ref), free(got);
    }
}

static void test_elementwise(void)
{
    const uint32_t n = 1001;
    tu_rng r;
    tu_rng_seed(&r, 7);
    float *a = malloc(n * 4), *b = malloc(n * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
    fill_normal(&r, a, n, 4.0f);
    fill_normal(&r, b, n, 2.0f);
    a[0] = -100.0f; /* silu far in the negative tail */
    a[1] = 90.0f;
    vkm_buffer ba = buf_from(a, n * 4), bb = buf_from(b, n * 4), bo = buf_new(n * 4);

    /* silu_mul */
    vkm_ref_silu_mul(ref, a, b, n);
    begin();
    poison(&bo);
    vkm_cmd_barrier(&g_cmd);
    if (submit(vkm_op_silu_mul(&g_cmd, VKM_BIND(ba), VKM_BIND(bb), VKM_BIND(bo), n), "silu_mul")) {
        buf_get(&bo, got, n * 4);
        double err = rel_errf(got, ref, n);
        CHECK(err <= 1e-4, "silu_mul rel err %g", err);
    }
    /* add, out-of-place then in place (out == a) */
    for (uint32_t i = 0; i < n; i++) ref[i] = a[i] + b[i];
    for (int inplace = 0; inplace < 2; inplace++) {
        begin();
        if (!inplace) poison(&bo);
        vkm_cmd_barrier(&g_cmd);
        vkm_binding out = inplace ? VKM_BIND(ba) : VKM_BIND(bo);
        if (!submit(vkm_op_add(&g_cmd, VKM_BIND(ba), VKM_BIND(bb), out, n), "add")) continue;
        buf_get(inplace ? &ba : &bo, got, n * 4);
        CHECK(memcmp(got, ref, n * 4) == 0, "add (in place %d) not exact", inplace);
    }
    /* copy: an odd count into the middle of a poisoned buffer */
    vkm_buffer bc = buf_new(2 * n * 4);
    begin();
    poison(&bc);
    vkm_cmd_barrier(&g_cmd);
    if (submit(vkm_op_copy_f32(&g_cmd, VKM_BIND(bb), VKM_BIND_RANGE(bc, 256, (n - 2) * 4), n - 2), "copy_f32")) {
        uint32_t *raw = malloc(2 * n * 4);
        buf_get(&bc, raw, 2 * n * 4);
        CHECK(memcmp(raw + 64, b, (n - 2) * 4) == 0, "copy_f32 data");
        CHECK(raw[63] == POISON && raw[64 + n - 2] == POISON, "copy_f32 wrote outside its range");
        free(raw);
    }
    buf_free(&bc);
    buf_free(&ba);
    buf_free(&bb);
    buf_free(&bo);
    free(a), free(b), free(ref), free(got);
}

/* ------------------------------------------------------------------ weights */

typedef struct {
    uint32_t type, n_in, n_out;
    uint8_t *q;         /* quantized rows */
    float *deq;         /* dequantized [n_out][n_in] */
    uint64_t row_bytes;
} weight;

static weight make_weight(tu_rng *r, uint32_t type, uint32_t n_in, uint32_t n_out)
{
    weight w = { type, n_in, n_out, NULL, NULL, 0 };
    vkm_ggml_row_size(type, n_in, &w.row_bytes);
    w.q = malloc(w.row_bytes * n_out);
    w.deq = malloc((size_t)n_in * n_out * 4);
    float *src = malloc((size_t)n_in * 4);
    for (uint32_t o = 0; o < n_out; o++) {
        /* rows of varied scale, some with an offset (exercises Q4_K mins) */
        float sc = 0.02f + 0.1f * tu_rng_uniform(r), off = (o % 3 == 0) ? 0.05f : 0.0f;
        for (uint32_t i = 0; i < n_in; i++) src[i] = tu_rng_normal(r) * sc + off;
        vkm_ggml_quantize_row(type, src, w.q + o * w.row_bytes, n_in);
        vkm_ggml_dequantize_row(type, w.q + o * w.row_bytes, w.deq + (size_t)o * n_in, n_in);
    }
    free(src);
    return w;
}

static void free_weight(weight *w)
{
    free(w->q);
    free(w->deq);
}

/* The weight on the device, in its GPU layout (as a model upload does). */
static vkm_buffer weight_buf(const weight *w)
{
    vkm_buffer b = buf_new(vkm_wlayout_row_bytes(w->type, w->n_in) * w->n_out);
    if (vkm_wlayout_upload(&g_cmd, &b, w->type, w->q, w->n_in, w->n_out) != VKMIX_OK) {
        fprintf(stderr, "weight upload failed: %s\n", vkmix_context_last_error(g_ctx));
        exit(1);
    }
    return b;
}

static void ref_matmul(const weight *w, const float *x, const float *bias, uint32_t n_tok, double *y)
{
    for (uint32_t t = 0; t < n_tok; t++)
        for (uint32_t o = 0; o < w->n_out; o++) {
            double s = bias ? bias[o] : 0.0;
            const float *wr = w->deq + (size_t)o * w->n_in, *xr = x + (size_t)t * w->n_in;
            for (uint32_t i = 0; i < w->n_in; i++) s += (double)wr[i] * xr[i];
            y[(size_t)t * w->n_out + o] = s;
        }
}

static const uint32_t k_types[] = { VKM_GGML_F32, VKM_GGML_F16, VKM_GGML_BF16, VKM_GGML_Q8_0,
                                    VKM_GGML_Q4_0, VKM_GGML_Q4_K, VKM_GGML_Q6_K };
#define N_TYPES (sizeof k_types / sizeof k_types[0])

static int is_kquant(uint32_t t) { return t == VKM_GGML_Q4_K || t == VKM_GGML_Q6_K; }

/* One matmul case; returns the relative error (INFINITY on failure). With
 * cfg->add the product is added to a random y. */
static double run_matmul(const weight *w, uint32_t n_tok, int use_bias, tu_rng *r, const vkm_matmul_cfg *cfg)
{
    size_t nx = (size_t)n_tok * w->n_in, ny = (size_t)n_tok * w->n_out;
    float *x = malloc(nx * 4), *bias = malloc(w->n_out * 4), *got = malloc(ny * 4), *y0 = malloc(ny * 4);
    double *ref = malloc(ny * sizeof *ref);
    fill_normal(r, x, nx, 1.0f);
    fill_normal(r, bias, w->n_out, 0.5f);
    fill_normal(r, y0, ny, 2.0f);
    ref_matmul(w, x, use_bias ? bias : NULL, n_tok, ref);
    int add = cfg && cfg->add;
    if (add)
        for (size_t i = 0; i < ny; i++) ref[i] += y0[i];
    vkm_buffer bw = weight_buf(w), bx = buf_from(x, nx * 4), bb = buf_from(bias, w->n_out * 4);
    vkm_buffer by = add ? buf_from(y0, ny * 4) : buf_new(ny * 4);
    begin();
    if (!add) poison(&by);
    vkm_cmd_barrier(&g_cmd);
    vkm_binding bias_b = use_bias ? VKM_BIND(bb) : (vkm_binding){ NULL, 0, 0 };
    vkmix_error e = vkm_op_matmul_cfg(&g_cmd, VKM_BIND(bw), w->type, VKM_BIND(bx), VKM_BIND(by), bias_b, w->n_in,
                                      w->n_out, n_tok, cfg);
    double err = INFINITY;
    if (submit(e, "matmul")) {
        buf_get(&by, got, ny * 4);
        err = rel_err(got, ref, ny);
    }
    buf_free(&bw), buf_free(&bx), buf_free(&bb), buf_free(&by);
    free(x), free(bias), free(got), free(ref), free(y0);
    return err;
}

static void test_matmul(void)
{
    static const uint32_t toks[] = { 1, 2, 9, 67 };
    tu_rng r;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = k_types[ti];
        uint32_t sizes[2] = { is_kquant(type) ? 256 * 3 : 32 * 7, 256 * 3 };
        for (int si = 0; si < (is_kquant(type) ? 1 : 2); si++) {
            tu_rng_seed(&r, 1000 + ti * 10 + (uint64_t)si);
            weight w = make_weight(&r, type, sizes[si], 37);
            for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
                double t0 = now_s();
                double err = run_matmul(&w, toks[k], (int)((k + ti) % 2), &r, NULL);
                if (getenv("VKMIX_TEST_VERBOSE"))
                    printf("  matmul %-5s n_in %4u n_tok %2zu err %.3g  %.3f s\n", vkm_ggml_type_name(type), w.n_in,
                           (size_t)toks[k], err, now_s() - t0);
                CHECK(err <= 1e-3, "matmul %s n_in %u n_out 37 n_tok %u: rel err %g", vkm_ggml_type_name(type),
                      w.n_in, toks[k], err);
            }
            free_weight(&w);
        }
    }
    /* other kernel shapes on every integer type: emulated integer dot products
     * (the module for devices without them), 16 tokens at once (the most the
     * matrix-vector kernel takes), y += W x; 16-token tiles and other matvec
     * grids on two (pipelines are slow to compile on lavapipe) */
    static const vkm_matmul_cfg cfgs[] = {
        { .mv_idot = 2 },                              { .add = 1 },
        { .mv_wg = 32, .mv_rows = 1, .mv_unroll = 1 }, { .mv_wg = 64, .mv_rows = 3, .mv_unroll = 4 },
        { .mv_wg = 256, .mv_rows = 8 },                { .mv_wg = 128, .mv_rows = 16, .mv_unroll = 1 },
        { .mm_bn = 16 },                               { .mm_bn = 64, .add = 1 },
    };
    static const uint32_t cfg_toks[] = { 1, 16, 2, 1, 3, 1, 70, 70 };
    static const uint32_t cfg_types[] = { VKM_GGML_Q4_0, VKM_GGML_Q8_0, VKM_GGML_Q6_K, VKM_GGML_Q4_K, VKM_GGML_F16 };
    for (size_t ti = 0; ti < sizeof cfg_types / sizeof cfg_types[0]; ti++) {
        tu_rng_seed(&r, 2000 + ti);
        weight w = make_weight(&r, cfg_types[ti], 256 * 3, 53);
        size_t nc = ti < 2 ? sizeof cfgs / sizeof cfgs[0] : 2;
        for (size_t c = 0; c < nc; c++) {
            if (cfg_types[ti] == VKM_GGML_F16 && c == 0) continue;   /* no integer dot products */
            double t0 = now_s();
            /* 16 tokens (slow to compile on lavapipe) on Q4_0 only */
            uint32_t nt = cfg_toks[c] == 16 && ti ? 3 : cfg_toks[c];
            double err = run_matmul(&w, nt, 1, &r, &cfgs[c]);
            if (getenv("VKMIX_TEST_VERBOSE"))
                printf("  matmul cfg %-5s n_tok %2u wg %3u rows %2u unroll %u idot %u add %u bn %2u err %.3g  %.3f s\n",
                       vkm_ggml_type_name(cfg_types[ti]), nt, cfgs[c].mv_wg, cfgs[c].mv_rows,
                       cfgs[c].mv_unroll, cfgs[c].mv_idot, cfgs[c].add, cfgs[c].mm_bn, err, now_s() - t0);
            CHECK(err <= 1e-3, "matmul %s cfg %zu n_tok %u: rel err %g", vkm_ggml_type_name(cfg_types[ti]), c, nt, err);
        }
        free_weight(&w);
    }
}

/* The gated linear unit: gate and up rows interleaved in one weight; one
 * product for up to 16 tokens, the tiled product plus vkm_op_glu beyond. */
static void test_glu(void)
{
    static const uint32_t types[] = { VKM_GGML_Q4_0, VKM_GGML_F16 };
    static const uint32_t toks[] = { 1, 2, 7, 20 };
    tu_rng r;
    for (size_t ti = 0; ti < 2; ti++) {
        uint32_t type = types[ti], n_in = is_kquant(type) ? 256 : 96, n_ff = 45;
        tu_rng_seed(&r, 2800 + ti);
        weight g = make_weight(&r, type, n_in, n_ff), u = make_weight(&r, type, n_in, n_ff);
        uint64_t rb = vkm_wlayout_row_bytes(type, n_in);
        vkm_buffer bw = buf_new(rb * 2 * n_ff);
        CHECK(vkm_wlayout_upload_interleaved(&g_cmd, &bw, type, g.q, u.q, n_in, n_ff) == VKMIX_OK, "interleave");
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
            uint32_t nt = toks[k];
            float *x = malloc((size_t)nt * n_in * 4), *got = malloc((size_t)nt * n_ff * 4);
            double *rg = malloc((size_t)nt * n_ff * 8), *ru = malloc((size_t)nt * n_ff * 8), *ref = malloc((size_t)nt * n_ff * 8);
            fill_normal(&r, x, (size_t)nt * n_in, 1.0f);
            ref_matmul(&g, x, NULL, nt, rg);
            ref_matmul(&u, x, NULL, nt, ru);
            for (size_t i = 0; i < (size_t)nt * n_ff; i++) ref[i] = rg[i] / (1.0 + exp(-rg[i])) * ru[i];
            vkm_buffer bx = buf_from(x, (size_t)nt * n_in * 4), by = buf_new((size_t)nt * n_ff * 4);
            vkm_buffer bq = buf_new(nt * vkm_act_q_bytes(n_in)), bt = buf_new((size_t)nt * 2 * n_ff * 4);
            begin();
            poison(&by);
            vkm_act a = { VKM_BIND(bx), VKM_BIND(bq) };
            vkmix_error e = VKMIX_OK;
            if (vkm_matmul_uses_q(type, nt)) {
                e = vkm_op_act_quant(&g_cmd, VKM_BIND(bx), (vkm_binding){ NULL, 0, 0 }, VKM_BIND(bq), nt, n_in, 0.0f);
            }
            vkm_cmd_barrier(&g_cmd);
            if (e == VKMIX_OK && nt <= VKM_MATVEC_MAX_COLS) {
                e = vkm_op_matmul_glu(&g_cmd, VKM_BIND(bw), type, a, VKM_BIND(by), n_in, n_ff, nt, NULL);
            } else if (e == VKMIX_OK) {
                e = vkm_op_matmul_x(&g_cmd, VKM_BIND(bw), type, a, VKM_BIND(bt), (vkm_binding){ NULL, 0, 0 }, n_in,
                                    2 * n_ff, nt, NULL);
                vkm_cmd_barrier(&g_cmd);
                if (e == VKMIX_OK) e = vkm_op_glu(&g_cmd, VKM_BIND(bt), VKM_BIND(by), nt, n_ff);
            }
            if (submit(e, "glu")) {
                buf_get(&by, got, (size_t)nt * n_ff * 4);
                double err = rel_err(got, ref, (size_t)nt * n_ff);
                CHECK(err <= 1e-3, "glu %s n_tok %u: rel err %g", vkm_ggml_type_name(type), nt, err);
            }
            buf_free(&bx), buf_free(&by), buf_free(&bq), buf_free(&bt);
            free(x), free(got), free(rg), free(ru), free(ref);
        }
        buf_free(&bw);
        free_weight(&g), free_weight(&u);
    }
}

/* Q, K and V as one product: stacked weights and biases, three outputs, for
 * the matrix-vector and the tiled kernels. */
static void test_qkv(void)
{
    static const uint32_t types[] = { VKM_GGML_Q8_0, VKM_GGML_F16 };
    static const uint32_t toks[] = { 1, 2, 6, 40 };
    const uint32_t n_in = 128, nq = 48, nkv = 16, n_out = nq + 2 * nkv;
    tu_rng r;
    for (size_t ti = 0; ti < 2; ti++) {
        uint32_t type = types[ti];
        tu_rng_seed(&r, 2900 + ti);
        weight w[3] = { make_weight(&r, type, n_in, nq), make_weight(&r, type, n_in, nkv), make_weight(&r, type, n_in, nkv) };
        uint64_t rb = vkm_wlayout_row_bytes(type, n_in);
        vkm_buffer bw = buf_new(rb * n_out);
        CHECK(vkm_wlayout_upload_at(&g_cmd, &bw, type, w[0].q, n_in, nq, 0) == VKMIX_OK &&
                  vkm_wlayout_upload_at(&g_cmd, &bw, type, w[1].q, n_in, nkv, nq) == VKMIX_OK &&
                  vkm_wlayout_upload_at(&g_cmd, &bw, type, w[2].q, n_in, nkv, nq + nkv) == VKMIX_OK,
              "stacked upload");
        float bias[80];
        fill_normal(&r, bias, n_out, 0.5f);
        vkm_buffer bb = buf_from(bias, n_out * 4);
        for (size_t k = 0; k < sizeof toks / sizeof toks[0]; k++) {
            uint32_t nt = toks[k];
            float *x = malloc((size_t)nt * n_in * 4), *got = malloc((size_t)nt * n_out * 4);
            double *ref = malloc((size_t)nt * n_out * 8);
            fill_normal(&r, x, (size_t)nt * n_in, 1.0f);
            ref_matmul(&w[0], x, bias, nt, ref);
            ref_matmul(&w[1], x, bias + nq, nt, ref + (size_t)nt * nq);
            ref_matmul(&w[2], x, bias + nq + nkv, nt, ref + (size_t)nt * (nq + nkv));
            vkm_buffer bx = buf_from(x, (size_t)nt * n_in * 4), by = buf_new((size_t)nt * n_out * 4);
            vkm_buffer yk = buf_new((size_t)nt * nkv * 4), yv = buf_new((size_t)nt * nkv * 4);
            vkm_buffer bq = buf_new(nt * vkm_act_q_bytes(n_in));
            begin();
            poison(&by), poison(&yk), poison(&yv);
            vkmix_error e = VKMIX_OK;
            if (vkm_matmul_uses_q(type, nt))
                e = vkm_op_act_quant(&g_cmd, VKM_BIND(bx), (vkm_binding){ NULL, 0, 0 }, VKM_BIND(bq), nt, n_in, 0.0f);
            vkm_cmd_barrier(&g_cmd);
            vkm_act a = { VKM_BIND(bx), VKM_BIND(bq) };
            if (e == VKMIX_OK)
                e = vkm_op_matmul_qkv(&g_cmd, VKM_BIND(bw), type, a, VKM_BIND(by), VKM_BIND(yk), VKM_BIND(yv), VKM_BIND(bb),
                                      n_in, nq, nkv, nt, NULL);
            if (submit(e, "qkv")) {
                buf_get(&by, got, (size_t)nt * nq * 4);
                buf_get(&yk, got + (size_t)nt * nq, (size_t)nt * nkv * 4);
                buf_get(&yv, got + (size_t)nt * (nq + nkv), (size_t)nt * nkv * 4);
                double err = rel_err(got, ref, (size_t)nt * n_out);
                CHECK(err <= 1e-3, "qkv %s n_tok %u: rel err %g", vkm_ggml_type_name(type), nt, err);
            }
            buf_free(&bx), buf_free(&by), buf_free(&bq), buf_free(&yk), buf_free(&yv);
            free(x), free(got), free(ref);
        }
        buf_free(&bw), buf_free(&bb);
        for (int i = 0; i < 3; i++) free_weight(&w[i]);
    }
}

/* Rows that are not a whole number of 32-element slices (F16, BF16: multiples
 * of 8) in the tiled kernel and the matrix-vector one. */
static void test_matmul_rows8(void)
{
    tu_rng r;
    tu_rng_seed(&r, 2400);
    static const uint32_t types[] = { VKM_GGML_F16, VKM_GGML_BF16 };
    for (int ti = 0; ti < 2; ti++) {
        weight w = make_weight(&r, types[ti], 200, 37);
        for (uint32_t nt = 1; nt <= 40; nt += 39) {
            double err = run_matmul(&w, nt, 1, &r, NULL);
            CHECK(err <= 1e-3, "matmul %s n_in 200 n_tok %u: rel err %g", vkm_ggml_type_name(types[ti]), nt, err);
        }
        free_weight(&w);
    }
}

/* The GPU layouts: pack then unpack gives the file's bytes back; a packed
 * row is 16-byte aligned and holds the same bytes. */
static void test_wlayout(void)
{
    tu_rng r;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = k_types[ti], n_in = is_kquant(type) ? 512 : 96;
        tu_rng_seed(&r, 2500 + ti);
        weight w = make_weight(&r, type, n_in, 5);
        uint64_t gb = vkm_wlayout_row_bytes(type, n_in);
        CHECK(gb % 16 == 0 && gb >= w.row_bytes && gb < w.row_bytes + 16, "%s: GPU row of %llu bytes for %llu",
              vkm_ggml_type_name(type), (unsigned long long)gb, (unsigned long long)w.row_bytes);
        uint8_t *g = malloc(gb * 5), *back = malloc(w.row_bytes * 5);
        CHECK(vkm_wlayout_pack(type, w.q, n_in, 5, g) == VKMIX_OK, "pack");
        CHECK(vkm_wlayout_unpack(type, g, n_in, 5, back) == VKMIX_OK, "unpack");
        CHECK(memcmp(back, w.q, w.row_bytes * 5) == 0, "%s: unpack(pack(x)) != x", vkm_ggml_type_name(type));
        if (type == VKM_GGML_Q4_0) /* row 1: qs of block 1 at 16, d of block 0 at n_in/2 */
            CHECK(!memcmp(g + gb + 16, w.q + w.row_bytes + 18 + 2, 16) && !memcmp(g + gb + n_in / 2, w.q + w.row_bytes, 2),
                  "Q4_0 planes");
        free(g), free(back);
        free_weight(&w);
    }
    CHECK(vkm_wlayout_row_bytes(VKM_GGML_Q4_K, 100) == 0 && vkm_wlayout_row_bytes(VKM_GGML_Q5_0, 64) == 0,
          "row bytes of bad shapes");
}

/* Quantized activations against a CPU quantization: 16-bit values within 1 of
 * the reference (the scale may differ by an ulp), block sums, sums of squares,
 * the norm's flag and eps. */
static void test_act_quant(void)
{
    static const uint32_t sizes[][2] = { { 3, 96 }, { 1, 4096 }, { 2, 32 } };
    tu_rng r;
    for (size_t si = 0; si < 3; si++)
        for (int norm = 0; norm < 2; norm++) {
            uint32_t nt = sizes[si][0], n = sizes[si][1];
            tu_rng_seed(&r, 2600 + si * 2 + (uint64_t)norm);
            float *x = malloc((size_t)nt * n * 4), *w = malloc(n * 4);
            fill_normal(&r, x, (size_t)nt * n, 2.0f);
            fill_normal(&r, w, n, 1.0f);
            x[5] = 300.0f;   /* an outlier in block 0 */
            if (n > 64) for (uint32_t i = 32; i < 64; i++) x[i] = 0.0f;   /* an all-zero block */
            uint64_t tb = vkm_act_q_bytes(n);
            uint8_t *got = malloc(tb * nt);
            vkm_buffer bx = buf_from(x, (size_t)nt * n * 4), bw = buf_from(w, n * 4), bq = buf_new(tb * nt);
            begin();
            poison(&bq);
            vkm_cmd_barrier(&g_cmd);
            vkm_binding wb = norm ? VKM_BIND(bw) : (vkm_binding){ NULL, 0, 0 };
            if (!submit(vkm_op_act_quant(&g_cmd, VKM_BIND(bx), wb, VKM_BIND(bq), nt, n, 1e-5f), "act_quant")) goto next;
            buf_get(&bq, got, tb * nt);
            int bad = 0;
            double worst = 0;
            for (uint32_t t = 0; t < nt; t++) {
                const uint8_t *q = got + t * tb;
                const float *xt = x + (size_t)t * n;
                double ss = 0;
                for (uint32_t i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
                uint32_t tail[2];
                memcpy(tail, q + 2 * n + n / 2, 8);
                float teps;
                memcpy(&teps, &tail[1], 4);
                if (tail[0] != (uint32_t)norm || teps != 1e-5f) bad++;
                double want_r = norm ? 1.0 / sqrt(ss / n + 1e-5) : 1.0, rr = want_r;
                for (uint32_t b = 0; b < n / 32; b++) {
                    float sc, bss;
                    int32_t sum[2];
                    memcpy(&sc, q + 2 * n + 16 * b, 4);
                    memcpy(sum, q + 2 * n + 16 * b + 4, 8);
                    memcpy(&bss, q + 2 * n + 16 * b + 12, 4);
                    double wss = 0;
                    for (uint32_t i = 0; i < 32; i++) wss += (double)xt[32 * b + i] * xt[32 * b + i];
                    if (fabs(bss - wss) > 1e-5 * wss + 1e-30) bad++;
                    double amax = 0;
                    for (uint32_t i = 0; i < 32; i++) {
                        double v = (double)xt[32 * b + i] * (norm ? w[32 * b + i] : 1.0f);
                        if (fabs(v) > amax) amax = fabs(v);
                    }
                    if (fabs(sc - amax / 32767.0) > 1e-6 * amax / 32767.0) bad++;
                    int32_t s2[2] = { 0, 0 };
                    for (uint32_t i = 0; i < 32; i++) {
                        int32_t X = (int32_t)(int8_t)q[32 * b + i] * 256 + q[n + 32 * b + i];
                        s2[i / 16] += X;
                        double v = (double)xt[32 * b + i] * (norm ? w[32 * b + i] : 1.0f);
                        double want = amax > 0 ? v / (amax / 32767.0) : 0;
                        /* round(v * (32767 / amax)): Vulkan allows a division and a product a few
                         * ulp off, ~4e-7 relative (at 32767 about 0.01: on the H200 one value of
                         * 4096 was rounded to the other side of a .5) */
                        if (fabs(X - want) > 0.5 + 1e-3 + 4e-7 * fabs(want)) bad++;
                        /* the value it stands for */
                        double e = fabs(rr * sc * X - v * (norm ? want_r : 1.0));
                        if (amax > 0 && e / (amax * (norm ? want_r : 1.0)) > worst) worst = e / (amax * (norm ? want_r : 1.0));
                    }
                    if (s2[0] != sum[0] || s2[1] != sum[1]) bad++;
                }
            }
            CHECK(bad == 0, "act_quant %u x %u norm %d: %d values off", nt, n, norm, bad);
            CHECK(worst <= 1.6e-5, "act_quant %u x %u norm %d: error %.3g of the block's max", nt, n, norm, worst);
        next:
            buf_free(&bx), buf_free(&bw), buf_free(&bq);
            free(x), free(w), free(got);
        }
}

/* A normalized, quantized x feeding a product (what the forward pass does):
 * W (rmsnorm(x) * w) against the CPU, for one and for 3 tokens. */
static void test_matmul_normed(void)
{
    tu_rng r;
    tu_rng_seed(&r, 2700);
    const uint32_t n_in = 256, n_out = 29;
    weight W = make_weight(&r, VKM_GGML_Q4_K, n_in, n_out);
    for (uint32_t nt = 1; nt <= 3; nt += 2) {
        float *x = malloc((size_t)nt * n_in * 4), *w = malloc(n_in * 4), *xn = malloc((size_t)nt * n_in * 4);
        float *got = malloc((size_t)nt * n_out * 4);
        double *ref = malloc((size_t)nt * n_out * sizeof *ref);
        fill_normal(&r, x, (size_t)nt * n_in, 3.0f);
        fill_normal(&r, w, n_in, 1.0f);
        for (uint32_t t = 0; t < nt; t++) vkm_ref_rmsnorm(xn + (size_t)t * n_in, x + (size_t)t * n_in, w, n_in, 1e-5f);
        ref_matmul(&W, xn, NULL, nt, ref);
        vkm_buffer bw = weight_buf(&W), bx = buf_from(x, (size_t)nt * n_in * 4), bn = buf_from(w, n_in * 4);
        vkm_buffer bq = buf_new(nt * vkm_act_q_bytes(n_in)), by = buf_new((size_t)nt * n_out * 4);
        begin();
        poison(&by);
        vkmix_error e = vkm_op_act_quant(&g_cmd, VKM_BIND(bx), VKM_BIND(bn), VKM_BIND(bq), nt, n_in, 1e-5f);
        vkm_cmd_barrier(&g_cmd);
        vkm_act a = { { NULL, 0, 0 }, VKM_BIND(bq) };
        if (e == VKMIX_OK)
            e = vkm_op_matmul_x(&g_cmd, VKM_BIND(bw), W.type, a, VKM_BIND(by), (vkm_binding){ NULL, 0, 0 }, n_in, n_out,
                                nt, NULL);
        if (submit(e, "normed matmul")) {
            buf_get(&by, got, (size_t)nt * n_out * 4);
            double err = rel_err(got, ref, (size_t)nt * n_out);
            CHECK(err <= 1e-3, "rmsnorm + quantize + Q4_K product, %u tokens: rel err %g", nt, err);
        }
        buf_free(&bw), buf_free(&bx), buf_free(&bn), buf_free(&bq), buf_free(&by);
        free(x), free(w), free(xn), free(got), free(ref);
    }
    free_weight(&W);
}

static void test_get_rows(void)
{
    tu_rng r;
    const int32_t ids[] = { 3, 0, 28, 3, 17, -1, 29, 11 };
    const uint32_t n_ids = sizeof ids / sizeof ids[0], n_vocab = 29;
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        uint32_t type = k_types[ti], n_embd = is_kquant(type) ? 512 : 96;
        tu_rng_seed(&r, 3000 + ti);
        weight w = make_weight(&r, type, n_embd, n_vocab);
        size_t no = (size_t)n_ids * n_embd;
        float *ref = calloc(no, 4), *got = malloc(no * 4);
        for (uint32_t t = 0; t < n_ids; t++)
            if (ids[t] >= 0 && (uint32_t)ids[t] < n_vocab)
                memcpy(ref + (size_t)t * n_embd, w.deq + (size_t)ids[t] * n_embd, n_embd * 4);
        vkm_buffer bt = weight_buf(&w), bi = buf_from(ids, sizeof ids), bo = buf_new(no * 4);
        begin();
        poison(&bo);
        vkm_cmd_barrier(&g_cmd);
        vkmix_error e = vkm_op_get_rows(&g_cmd, VKM_BIND_RANGE(bt, 0, vkm_wlayout_row_bytes(type, n_embd) * n_vocab), type, VKM_BIND(bi),
                                        VKM_BIND(bo), n_embd, n_ids);
        if (submit(e, "get_rows")) {
            buf_get(&bo, got, no * 4);
            double err = rel_errf(got, ref, no);
            /* float types are exact; quantized ones up to fp32 rounding of d*q (fma) */
            CHECK(err <= (type == VKM_GGML_F32 || type == VKM_GGML_F16 || type == VKM_GGML_BF16 ? 0.0 : 1e-6),
                  "get_rows %s: rel err %g", vkm_ggml_type_name(type), err);
            for (uint32_t t = 0; t < n_ids; t++)
                if (ids[t] < 0 || (uint32_t)ids[t] >= n_vocab)
                    for (uint32_t i = 0; i < n_embd; i++)
                        if (got[(size_t)t * n_embd + i] != 0.0f) {
                            CHECK(0, "get_rows %s: invalid id %d not zeroed", vkm_ggml_type_name(type), ids[t]);
                            break;
                        }
        }
        buf_free(&bt), buf_free(&bi), buf_free(&bo);
        free(ref), free(got);
        free_weight(&w);
    }
}

/* ------------------------------------------------------------------ rope */

static void test_rope(void)
{
    static const struct { uint32_t head_dim, pos0; int llama3; float theta; } cases[] = {
        { 64, 0, 0, 10000.0f }, { 128, 293, 1, 500000.0f }, { 16, 7, 0, 10000.0f }, { 64, 100000, 0, 10000.0f },
        { 128, 131000, 1, 500000.0f },
    };
    tu_rng r;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (uint32_t type = 0; type < 2; type++) {
            const uint32_t n_tok = 5, n_heads = 3, hd = cases[ci].head_dim;
            vkm_hparams hp = { 0 };
            hp.head_dim = hd;
            hp.rope_theta = cases[ci].theta;
            if (cases[ci].llama3) {
                hp.rope_scale_factor = 8.0f;
                hp.rope_low_freq_factor = 1.0f;
                hp.rope_high_freq_factor = 4.0f;
                hp.rope_orig_ctx = 8192;
            }
            float *freqs = malloc(hd / 2 * 4);
            vkm_rope_freqs(&hp, freqs);
            tu_rng_seed(&r, 4000 + ci * 2 + type);
            size_t n = (size_t)n_tok * n_heads * hd;
            float *x = malloc(n * 4), *ref = malloc(n * 4), *got = malloc(n * 4);
            fill_normal(&r, x, n, 1.0f);
            memcpy(ref, x, n * 4);
            for (uint32_t t = 0; t < n_tok; t++)
                vkm_ref_rope(ref + (size_t)t * n_heads * hd, n_heads, hd, cases[ci].pos0 + t, freqs, type);
            vkm_buffer bx = buf_from(x, n * 4), bf = buf_from(freqs, hd / 2 * 4);
            begin();
            vkmix_error e = vkm_op_rope(&g_cmd, VKM_BIND(bx), VKM_BIND(bf), n_tok, n_heads, hd, cases[ci].pos0, type);
            if (submit(e, "rope")) {
                buf_get(&bx, got, n * 4);
                double err = rel_errf(got, ref, n);
                CHECK(err <= 1e-4, "rope %s head_dim %u pos0 %u: rel err %g", type ? "neox" : "norm", hd,
                      cases[ci].pos0, err);
            }
            buf_free(&bx), buf_free(&bf);
            free(freqs), free(x), free(ref), free(got);
        }
}

/* RoPE and the cache store in one dispatch: q rotated in place, RoPE(k) and
 * v as FP16 into sinks and ring (positions from a buffer, in any order), the
 * rest of the cache untouched. */
static void test_rope_store(void)
{
    static const struct { uint32_t hd, neox, sinks, ring; uint32_t pos[3]; } cases[] = {
        { 16, 0, 4, 8, { 2, 9, 30 } }, { 64, 1, 0, 37, { 36, 0, 100 } }, { 128, 0, 2, 5, { 1, 131000, 7 } },
    };
    const uint32_t n_head = 4, n_kv = 2, n_tok = 3;
    tu_rng r;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint32_t hd = cases[ci].hd, S = cases[ci].sinks, R = cases[ci].ring;
        tu_rng_seed(&r, 4500 + ci);
        vkm_hparams hp = { 0 };
        hp.head_dim = hd;
        hp.rope_theta = 10000.0f;
        size_t nq = (size_t)n_tok * n_head * hd, nk = (size_t)n_tok * n_kv * hd;
        size_t ns = (size_t)n_kv * (S ? S : 1) * hd, nr = (size_t)n_kv * R * hd;
        float *freqs = malloc(hd / 2 * 4), *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
        vkm_rope_freqs(&hp, freqs);
        fill_normal(&r, q, nq, 1.5f);
        fill_normal(&r, k, nk, 1.5f);
        fill_normal(&r, v, nk, 1.5f);
        float *qref = malloc(nq * 4), *kref = malloc(nk * 4), *qgot = malloc(nq * 4);
        memcpy(qref, q, nq * 4);
        memcpy(kref, k, nk * 4);
        for (uint32_t t = 0; t < n_tok; t++) {
            vkm_ref_rope(qref + (size_t)t * n_head * hd, n_head, hd, cases[ci].pos[t], freqs, cases[ci].neox);
            vkm_ref_rope(kref + (size_t)t * n_kv * hd, n_kv, hd, cases[ci].pos[t], freqs, cases[ci].neox);
        }
        vkm_buffer bq = buf_from(q, nq * 4), bk = buf_from(k, nk * 4), bv = buf_from(v, nk * 4);
        vkm_buffer bf = buf_from(freqs, hd / 2 * 4), bp = buf_from(cases[ci].pos, sizeof cases[ci].pos);
        vkm_buffer ks = buf_new(ns * 2), kr = buf_new(nr * 2), vs = buf_new(ns * 2), vr = buf_new(nr * 2);
        begin();
        poison(&ks), poison(&kr), poison(&vs), poison(&vr);
        vkm_cmd_barrier(&g_cmd);
        vkm_binding none = { NULL, 0, 0 };
        vkmix_error e = vkm_op_rope_store(&g_cmd, VKM_BIND(bq), VKM_BIND(bk), VKM_BIND(bv), VKM_BIND(bf), VKM_BIND(bp),
                                          S ? VKM_BIND(ks) : none, VKM_BIND(kr), S ? VKM_BIND(vs) : none, VKM_BIND(vr),
                                          n_tok, n_head, n_kv, hd, S, R, cases[ci].neox);
        if (submit(e, "rope_store")) {
            buf_get(&bq, qgot, nq * 4);
            double err = rel_errf(qgot, qref, nq);
            CHECK(err <= 1e-4, "rope_store case %zu: q rel err %g", ci, err);
            uint16_t *c[4];
            size_t cn[4] = { ns, nr, ns, nr };
            const vkm_buffer *cb[4] = { &ks, &kr, &vs, &vr };
            for (int i = 0; i < 4; i++) {
                c[i] = malloc(cn[i] * 2);
                buf_get(cb[i], c[i], cn[i] * 2);
            }
            int bad = 0, written = 0, touched = 0;
            for (int kv = 0; kv < 2; kv++)
                for (int part = 0; part < 2; part++) {   /* sinks, ring */
                    uint32_t slots = part ? R : S;
                    const uint16_t *cache = c[2 * kv + part];
                    for (uint32_t h = 0; h < n_kv; h++)
                        for (uint32_t sl = 0; sl < slots; sl++) {
                            int tok = -1;
                            for (uint32_t t = 0; t < n_tok; t++) {
                                uint32_t p = cases[ci].pos[t];
                                if ((part == 0 && p < S && p == sl) || (part == 1 && p >= S && (p - S) % R == sl)) tok = (int)t;
                            }
                            for (uint32_t d = 0; d < hd; d++) {
                                uint16_t got = cache[((size_t)h * slots + sl) * hd + d];
                                if (tok < 0) {
                                    uint16_t want = (uint16_t)((d & 1) ? (POISON >> 16) : (POISON & 0xffff));
                                    touched += got != want;
                                    continue;
                                }
                                written++;
                                size_t si = ((size_t)tok * n_kv + h) * hd + d;
                                uint16_t w16 = vkmix_f32_to_f16(kv ? v[si] : kref[si]);
                                /* v: exact conversion; k: rounded after a RoPE that differs from the CPU's in the last bits */
                                int diff = (int)got - (int)w16;
                                if (kv ? diff != 0 : (diff > 1 || diff < -1)) bad++;
                            }
                        }
                }
            CHECK(written == (int)(2 * n_tok * n_kv * hd), "rope_store case %zu: %d values stored", ci, written);
            CHECK(bad == 0, "rope_store case %zu: %d cache values differ", ci, bad);
            CHECK(touched == 0, "rope_store case %zu: %d other cache values changed", ci, touched);
            for (int i = 0; i < 4; i++) free(c[i]);
        }
        buf_free(&bq), buf_free(&bk), buf_free(&bv), buf_free(&bf), buf_free(&bp);
        buf_free(&ks), buf_free(&kr), buf_free(&vs), buf_free(&vr);
        free(freqs), free(q), free(k), free(v), free(qref), free(kref), free(qgot);
    }
}

/* ------------------------------------------------------------------ KV cache and attention */

static void test_kv_store(void)
{
    const uint32_t n_tok = 5, n_kv = 3, hd = 64, n_ctx = 37, pos0 = 30;
    tu_rng r;
    tu_rng_seed(&r, 5000);
    size_t n_in = (size_t)n_tok * n_kv * hd, n_cache = (size_t)n_kv * n_ctx * hd;
    float *k = malloc(n_in * 4), *v = malloc(n_in * 4);
    fill_normal(&r, k, n_in, 2.0f);
    fill_normal(&r, v, n_in, 2.0f);
    k[0] = 70000.0f; /* overflows FP16 */
    k[1] = 1e-6f;    /* subnormal in FP16 */
    vkm_buffer bk = buf_from(k, n_in * 4), bv = buf_from(v, n_in * 4);
    vkm_buffer kc = buf_new(n_cache * 2), vc = buf_new(n_cache * 2);
    begin();
    poison(&kc);
    poison(&vc);
    vkm_cmd_barrier(&g_cmd);
    vkmix_error e = vkm_op_kv_store(&g_cmd, VKM_BIND(bk), VKM_BIND(bv), VKM_BIND(kc), VKM_BIND(vc), n_tok, n_kv, hd,
                                    n_ctx, pos0);
    if (submit(e, "kv_store")) {
        uint16_t *gk = malloc(n_cache * 2), *gv = malloc(n_cache * 2);
        buf_get(&kc, gk, n_cache * 2);
        buf_get(&vc, gv, n_cache * 2);
        int bad = 0, touched = 0;
        for (uint32_t h = 0; h < n_kv; h++)
            for (uint32_t p = 0; p < n_ctx; p++)
                for (uint32_t d = 0; d < hd; d++) {
                    size_t ci = ((size_t)h * n_ctx + p) * hd + d;
                    if (p < pos0 || p >= pos0 + n_tok) {
                        uint16_t want = (uint16_t)((d & 1) ? (POISON >> 16) : (POISON & 0xffff));
                        if (gk[ci] != want || gv[ci] != want) touched++;
                        continue;
                    }
                    size_t si = ((size_t)(p - pos0) * n_kv + h) * hd + d;
                    if (gk[ci] != vkmix_f32_to_f16(k[si]) || gv[ci] != vkmix_f32_to_f16(v[si])) {
                        if (bad < 3)
                            fprintf(stderr, "  kv_store h%u p%u d%u: %04x/%04x want %04x/%04x\n", h, p, d, gk[ci],
                                    gv[ci], vkmix_f32_to_f16(k[si]), vkmix_f32_to_f16(v[si]));
                        bad++;
                    }
                }
        CHECK(bad == 0, "kv_store: %d values differ from round-to-nearest-even FP16", bad);
        CHECK(touched == 0, "kv_store: %d elements outside the written positions changed", touched);
        free(gk), free(gv);
    }
    /* positions past the cache */
    begin();
    e = vkm_op_kv_store(&g_cmd, VKM_BIND(bk), VKM_BIND(bv), VKM_BIND(kc), VKM_BIND(vc), n_tok, n_kv, hd, n_ctx, 33);
    vkm_cmd_submit(&g_cmd);
    CHECK(e == VKMIX_ERROR_CONTEXT_OVERFLOW, "kv_store past n_ctx: %s", vkmix_strerror(e));
    buf_free(&bk), buf_free(&bv), buf_free(&kc), buf_free(&vc);
    free(k), free(v);
}

/* Attention of n_tok queries at positions pos0.. over a cache of n_ctx
 * positions, compared with vkm_ref_attention per token. */
static const vkm_attn_cfg *g_attn_cfg; /* tuning used by run_attention (NULL: defaults) */

static double run_attention(uint32_t n_head, uint32_t n_kv, uint32_t hd, uint32_t n_ctx, uint32_t n_tok, uint32_t pos0,
                            uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    size_t nq = (size_t)n_tok * n_head * hd, nc = (size_t)n_kv * n_ctx * hd;
    float *q = malloc(nq * 4), *got = malloc(nq * 4), *ref = malloc(nq * 4);
    uint16_t *kh = malloc(nc * 2), *vh = malloc(nc * 2);
    fill_normal(&r, q, nq, 1.0f);
    uint32_t n_used = pos0 + n_tok;
    for (size_t i = 0; i < nc; i++) {
        size_t p = (i / hd) % n_ctx;
        /* positions never attended to hold NaN: reading them fails the test */
        kh[i] = p < n_used ? vkmix_f32_to_f16(tu_rng_normal(&r) * 1.5f) : 0x7e00;
        vh[i] = p < n_used ? vkmix_f32_to_f16(tu_rng_normal(&r)) : 0x7e00;
    }
    /* reference: position-major float caches */
    size_t kvd = (size_t)n_kv * hd;
    float *kf = malloc((size_t)n_used * kvd * 4), *vf = malloc((size_t)n_used * kvd * 4);
    for (uint32_t p = 0; p < n_used; p++)
        for (uint32_t h = 0; h < n_kv; h++)
            for (uint32_t d = 0; d < hd; d++) {
                kf[p * kvd + h * hd + d] = vkmix_f16_to_f32(kh[((size_t)h * n_ctx + p) * hd + d]);
                vf[p * kvd + h * hd + d] = vkmix_f16_to_f32(vh[((size_t)h * n_ctx + p) * hd + d]);
            }
    vkm_hparams hp = { 0 };
    hp.n_head = n_head;
    hp.n_head_kv = n_kv;
    hp.head_dim = hd;
    float *scores = malloc((size_t)n_used * 4);
    for (uint32_t t = 0; t < n_tok; t++)
        vkm_ref_attention(ref + (size_t)t * n_head * hd, q + (size_t)t * n_head * hd, kf, vf, pos0 + t + 1, &hp,
                          scores);

    vkm_buffer bq = buf_from(q, nq * 4), bk = buf_from(kh, nc * 2), bv = buf_from(vh, nc * 2), bo = buf_new(nq * 4);
    uint64_t ss = vkm_op_attention_scratch(g_ctx, n_head, hd, n_ctx);
    vkm_buffer bs = buf_new(ss);
    begin();
    poison(&bo);
    poison(&bs);
    vkm_cmd_barrier(&g_cmd);
    vkmix_error e = vkm_op_attention_cfg(&g_cmd, VKM_BIND(bq), VKM_BIND(bk), VKM_BIND(bv), VKM_BIND(bo), VKM_BIND(bs),
                                         n_tok, n_head, n_kv, hd, n_ctx, pos0, 1.0f / sqrtf((float)hd), g_attn_cfg);
    double err = INFINITY;
    if (submit(e, "attention")) {
        buf_get(&bo, got, nq * 4);
        err = rel_errf(got, ref, nq);
    }
    buf_free(&bq), buf_free(&bk), buf_free(&bv), buf_free(&bo), buf_free(&bs);
    free(q), free(got), free(ref), free(kh), free(vh), free(kf), free(vf), free(scores);
    return err;
}

static void test_attention(void)
{
    static const uint32_t heads[][2] = { { 8, 4 }, { 6, 2 }, { 4, 4 } };
    static const uint32_t dims[] = { 8, 16, 64, 128 };
    static const uint32_t ctxs[] = { 1, 37, 300 };
    int n = 0;
    for (size_t hi = 0; hi < 3; hi++)
        for (size_t di = 0; di < 4; di++)
            for (size_t ci = 0; ci < 3; ci++) {
                uint32_t nh = heads[hi][0], nkv = heads[hi][1], hd = dims[di], ctx = ctxs[ci];
                uint64_t seed = 6000 + hi * 100 + di * 10 + ci;
                /* decode: the last position of a cache with 3 spare slots */
                double err = run_attention(nh, nkv, hd, ctx + 3, 1, ctx - 1, seed);
                CHECK(err <= 1e-4, "attention decode %u/%u hd %u ctx %u: rel err %g", nh, nkv, hd, ctx, err);
                /* prefill: a chunk of 5 after ctx-5 earlier positions, or a whole prompt */
                uint32_t nt = ctx >= 5 ? 5 : ctx;
                err = run_attention(nh, nkv, hd, ctx + 3, nt, ctx - nt, seed + 5);
                CHECK(err <= 1e-4, "attention chunk %u/%u hd %u n_tok %u pos0 %u: rel err %g", nh, nkv, hd, nt,
                      ctx - nt, err);
                if (ci == 1) {
                    err = run_attention(nh, nkv, hd, ctx, ctx, 0, seed + 7);
                    CHECK(err <= 1e-4, "attention prompt %u/%u hd %u n_tok %u: rel err %g", nh, nkv, hd, ctx, err);
                }
                n++;
            }
    /* head_dim 80 and 256, GQA 16/2 (8 heads per workgroup), a long decode */
    double err = run_attention(4, 2, 80, 70, 1, 69, 6900);
    CHECK(err <= 1e-4, "attention hd 80: rel err %g", err);
    err = run_attention(2, 1, 256, 130, 3, 127, 6901);
    CHECK(err <= 1e-4, "attention hd 256 prefill: rel err %g", err);
    err = run_attention(2, 1, 256, 130, 1, 129, 6902);
    CHECK(err <= 1e-4, "attention hd 256 decode: rel err %g", err);
    err = run_attention(16, 2, 64, 2100, 1, 2099, 6903);
    CHECK(err <= 1e-4, "attention 16/2 hd 64 decode ctx 2100: rel err %g", err);
    /* other tile shapes: keys per lane, no prefetch, many splits */
    static const vkm_attn_cfg cfgs[] = { { .kt = 1 }, { .kt = 4 }, { .kt = 3, .prefetch = 2 }, { .target_wgs = 4096 } };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        g_attn_cfg = &cfgs[i];
        err = run_attention(8, 2, 128, 300, 1, 299, 6910 + i);
        CHECK(err <= 1e-4, "attention cfg %zu decode: rel err %g", i, err);
        err = run_attention(8, 2, 64, 300, 7, 200, 6920 + i);
        CHECK(err <= 1e-4, "attention cfg %zu prefill: rel err %g", i, err);
    }
    g_attn_cfg = NULL;
    printf("attention: %d shape/context cases\n", n);
}

/* ------------------------------------------------------------------ storage range splitting */

static void test_split(void)
{
    vkm_caps saved = g_ctx->dev.caps;
    /* pretend a 32 KiB storage range and 64-byte offset alignment (a multiple of the real one) */
    g_ctx->dev.caps.max_storage_range = 32768;
    if (g_ctx->dev.caps.storage_align < 64) g_ctx->dev.caps.storage_align = 64;
    tu_rng r;
    static const uint32_t types[] = { VKM_GGML_Q4_0, VKM_GGML_Q8_0, VKM_GGML_F16, VKM_GGML_Q6_K, VKM_GGML_Q4_K };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti], n_in = is_kquant(type) ? 768 : 224;
        tu_rng_seed(&r, 7000 + ti);
        weight w = make_weight(&r, type, n_in, 301);
        CHECK(w.row_bytes * 301 > 32768, "split test weight too small");
        for (uint32_t n_tok = 1; n_tok <= 2; n_tok++) {   /* (pipelines of test_matmul: quick on lavapipe) */
            double err = run_matmul(&w, n_tok, 1, &r, NULL);
            CHECK(err <= 1e-3, "split matmul %s n_tok %u: rel err %g", vkm_ggml_type_name(type), n_tok, err);
        }
        /* get_rows over the chunked table */
        const int32_t ids[] = { 300, 0, 150, 299, 37 };
        size_t no = 5 * (size_t)n_in;
        float *got = malloc(no * 4), *ref = malloc(no * 4);
        for (int t = 0; t < 5; t++) memcpy(ref + (size_t)t * n_in, w.deq + (size_t)ids[t] * n_in, n_in * 4);
        vkm_buffer bt = weight_buf(&w), bi = buf_from(ids, sizeof ids), bo = buf_new(no * 4);
        begin();
        poison(&bo);
        vkm_cmd_barrier(&g_cmd);
        vkmix_error e = vkm_op_get_rows(&g_cmd, VKM_BIND_RANGE(bt, 0, vkm_wlayout_row_bytes(type, n_in) * 301), type, VKM_BIND(bi),
                                        VKM_BIND(bo), n_in, 5);
        if (submit(e, "split get_rows")) {
            buf_get(&bo, got, no * 4);
            double err = rel_errf(got, ref, no);
            CHECK(err <= 1e-6, "split get_rows %s: rel err %g", vkm_ggml_type_name(type), err);
        }
        buf_free(&bt), buf_free(&bi), buf_free(&bo);
        free(got), free(ref);
        free_weight(&w);
    }
    /* caches split by KV heads: 8 KiB per head, 32 KiB range -> chunks of 4 heads */
    double err = run_attention(16, 8, 64, 64, 1, 63, 7100);
    CHECK(err <= 1e-4, "split attention decode: rel err %g", err);
    err = run_attention(16, 8, 64, 64, 4, 50, 7101);
    CHECK(err <= 1e-4, "split attention prefill: rel err %g", err);
    g_ctx->dev.caps = saved;
}

/* Errors instead of crashes on bad arguments. */
static void test_errors(void)
{
    vkm_buffer b = buf_new(4096);
    vkm_binding nb = { NULL, 0, 0 };
    begin();
    vkmix_error e = vkm_op_matmul(&g_cmd, VKM_BIND(b), VKM_GGML_Q5_0, VKM_BIND(b), VKM_BIND(b), nb, 32, 4, 1);
    CHECK(e == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported type: %s", vkmix_strerror(e));
    e = vkm_op_matmul(&g_cmd, VKM_BIND(b), VKM_GGML_Q4_K, VKM_BIND(b), VKM_BIND(b), nb, 128, 4, 1);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "Q4_K with 128 columns: %s", vkmix_strerror(e));
    e = vkm_op_matmul(&g_cmd, VKM_BIND(b), VKM_GGML_F16, VKM_BIND(b), VKM_BIND(b), nb, 1024, 4, 1);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "weight binding too small: %s", vkmix_strerror(e));
    e = vkm_op_attention(&g_cmd, VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), 1, 6, 4, 8, 8, 0,
                         1.0f);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "6 heads over 4 KV heads: %s", vkmix_strerror(e));
    e = vkm_op_attention(&g_cmd, VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), 1, 4, 4, 12, 8, 0,
                         1.0f);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "head_dim 12: %s", vkmix_strerror(e));
    e = vkm_op_attention(&g_cmd, VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), VKM_BIND(b), 2, 1, 1, 8, 8, 7,
                         1.0f);
    CHECK(e == VKMIX_ERROR_CONTEXT_OVERFLOW, "attention past n_ctx: %s", vkmix_strerror(e));
    vkm_cmd_submit(&g_cmd);
    buf_free(&b);
}

/* ------------------------------------------------------------------ a weight over 128 MiB */

/* A real weight larger than lavapipe's 128 MiB storage range: Q8_0 blocks of
 * random bytes (no quantizer needed), 4096 x 33280 ~ 135 MiB, one matvec. */
static void test_big_weight(void)
{
    const uint32_t n_in = 4096, n_out = 33280;
    uint64_t row_bytes = n_in / 32 * 34, total = row_bytes * n_out;
    if (total <= g_ctx->dev.caps.max_storage_range) {
        printf("big weight: skipped (storage range %llu MiB covers it)\n",
               (unsigned long long)(g_ctx->dev.caps.max_storage_range >> 20));
        return;
    }
    uint8_t *q = malloc(total);
    float *x = malloc(n_in * 4), *got = malloc(n_out * 4);
    double *ref = malloc(n_out * sizeof *ref);
    if (!q || !x || !got || !ref) {
        CHECK(0, "big weight: out of host memory");
        return;
    }
    tu_rng r;
    tu_rng_seed(&r, 8000);
    for (uint64_t i = 0; i < total; i += 4) {
        uint32_t v = tu_rng_u32(&r);
        memcpy(q + i, &v, total - i < 4 ? total - i : 4);
    }
    float dtab[16];
    for (int i = 0; i < 16; i++) dtab[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(ldexpf(1.0f + i / 16.0f, -9)));
    for (uint64_t b = 0; b < total / 34; b++) {
        uint16_t h = vkmix_f32_to_f16(dtab[b % 16]);
        memcpy(q + b * 34, &h, 2);
    }
    fill_normal(&r, x, n_in, 1.0f);
    for (uint32_t o = 0; o < n_out; o++) {
        double s = 0;
        const uint8_t *row = q + (uint64_t)o * row_bytes;
        for (uint32_t bk = 0; bk < n_in / 32; bk++) {
            const uint8_t *blk = row + bk * 34;
            double d = vkmix_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8)), p = 0;
            for (int j = 0; j < 32; j++) p += (double)(int8_t)blk[2 + j] * x[bk * 32 + j];
            s += d * p;
        }
        ref[o] = s;
    }
    vkm_buffer bw = buf_new(vkm_wlayout_row_bytes(VKM_GGML_Q8_0, n_in) * n_out), bx = buf_from(x, n_in * 4),
               by = buf_new(n_out * 4);
    if (vkm_wlayout_upload(&g_cmd, &bw, VKM_GGML_Q8_0, q, n_in, n_out) != VKMIX_OK) CHECK(0, "big weight upload");
    free(q);
    begin();
    poison(&by);
    vkm_cmd_barrier(&g_cmd);
    vkm_binding nb = { NULL, 0, 0 };
    vkmix_error e = vkm_op_matmul(&g_cmd, VKM_BIND(bw), VKM_GGML_Q8_0, VKM_BIND(bx), VKM_BIND(by), nb, n_in, n_out, 1);
    if (submit(e, "big weight")) {
        buf_get(&by, got, n_out * 4);
        double err = rel_err(got, ref, n_out);
        CHECK(err <= 1e-3, "big weight (%llu MiB): rel err %g", (unsigned long long)(total >> 20), err);
    }
    buf_free(&bw), buf_free(&bx), buf_free(&by);
    free(x), free(got), free(ref);
}

/* ------------------------------------------------------------------ benchmark */

/* Kernel benchmark (VKMIX_OPS_BENCH=1): GPU timestamps around `reps`
 * back-to-back runs (with barriers, as in a forward pass), rotating over
 * enough weight copies to defeat the L2 cache. Bandwidth counts the bytes an
 * op must move (weights + activations, or K/V). VKMIX_OPS_BENCH=quick runs
 * the default configurations only. */
static vkm_buffer rand_buf(uint64_t bytes, tu_rng *r)
{
    vkm_buffer b = buf_new(bytes);
    uint64_t chunk = 16u << 20;
    uint32_t *tmp = malloc(chunk);
    for (uint64_t off = 0; off < bytes; off += chunk) {
        uint64_t n = bytes - off < chunk ? bytes - off : chunk;
        for (uint64_t i = 0; i < n / 4; i++) {
            /* random bits whose halves are finite fp16 and whose words are finite fp32 */
            tmp[i] = tu_rng_u32(r) & 0x3bff3bffu;
        }
        vkm_buffer_upload(&g_cmd, &b, off, tmp, n);
    }
    free(tmp);
    return b;
}

typedef vkmix_error (*bench_fn)(void *arg, uint32_t rep);
static double g_warm_ms = 50; /* GPU warm-up before a measurement; longer right after allocations */

/* median of 3 timings of `reps` runs; microseconds per run */
static double time_us(bench_fn fn, void *arg, uint32_t reps)
{
    if (g_ctx->dev.caps.quirk_cpu_device) reps = 1; /* a smoke test there */
    double best[3];
    /* warm-up: at least 50 ms of GPU work, so that clocks are up after the
     * CPU-side pipeline compilation that precedes a new configuration */
    double warm = 0;
    for (int k = 0; k < 400 && warm < g_warm_ms * 1e6; k++) {
        begin();
        vkm_cmd_timestamp(&g_cmd, 0);
        for (uint32_t i = 0; i < reps; i++) {
            vkmix_error e = fn(arg, i);
            if (e != VKMIX_OK) {
                vkm_cmd_submit(&g_cmd);
                fprintf(stderr, "bench: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(g_ctx));
                return -1;
            }
            vkm_cmd_barrier(&g_cmd);
        }
        vkm_cmd_timestamp(&g_cmd, 1);
        if (vkm_cmd_submit(&g_cmd) != VKMIX_OK) return -1;
        double ns;
        if (vkm_timestamp_ns(&g_cmd, 0, 1, &ns) != VKMIX_OK) return -1;
        warm += ns;
        if (g_ctx->dev.caps.quirk_cpu_device) break;
    }
    for (int k = 0; k < 3; k++) {
        begin();
        vkm_cmd_timestamp(&g_cmd, 0);
        for (uint32_t i = 0; i < reps; i++) {
            fn(arg, i);
            vkm_cmd_barrier(&g_cmd);
        }
        vkm_cmd_timestamp(&g_cmd, 1);
        if (vkm_cmd_submit(&g_cmd) != VKMIX_OK) return -1;
        double ns;
        if (vkm_timestamp_ns(&g_cmd, 0, 1, &ns) != VKMIX_OK) return -1;
        best[k] = ns / 1e3 / reps;
    }
    for (int i = 0; i < 2; i++)
        for (int j = i + 1; j < 3; j++)
            if (best[j] < best[i]) {
                double t = best[i];
                best[i] = best[j];
                best[j] = t;
            }
    return best[1];
}

typedef struct {
    vkm_buffer *w;
    uint32_t n_w, type, n_in, n_out, n_tok;
    vkm_buffer x, y;
    vkm_matmul_cfg cfg;
} mm_arg;

static vkmix_error mm_run(void *a, uint32_t rep)
{
    mm_arg *m = a;
    vkm_binding nb = { NULL, 0, 0 };
    return vkm_op_matmul_cfg(&g_cmd, VKM_BIND(m->w[rep % m->n_w]), m->type, VKM_BIND(m->x), VKM_BIND(m->y), nb,
                             m->n_in, m->n_out, m->n_tok, &m->cfg);
}

typedef struct {
    vkm_buffer src, dst;
    uint32_t n4;
} copy_arg;

static vkmix_error copy_run(void *a, uint32_t rep)
{
    copy_arg *c = a;
    uint32_t wg = 256;
    const vkm_pipeline *p;
    vkmix_error e = vkm_pipe(g_ctx, VKM_SH_COPY, &wg, 1, &p);
    if (e != VKMIX_OK) return e;
    vkm_binding b[2] = { VKM_BIND(c->src), VKM_BIND(c->dst) };
    vkm_cmd_dispatch(&g_cmd, p, b, 2, &c->n4, 4, vkm_groups_for(g_ctx, c->n4, wg), 1, 1);
    return VKMIX_OK;
}

typedef struct {
    vkm_buffer q, k, v, o, s;
    uint32_t n_head, n_kv, hd, n_ctx, pos;
    vkm_attn_cfg cfg;
} attn_arg;

static vkmix_error attn_run(void *a, uint32_t rep)
{
    attn_arg *t = a;
    return vkm_op_attention_cfg(&g_cmd, VKM_BIND(t->q), VKM_BIND(t->k), VKM_BIND(t->v), VKM_BIND(t->o),
                                VKM_BIND(t->s), 1, t->n_head, t->n_kv, t->hd, t->n_ctx, t->pos, 0.088f, &t->cfg);
}

static int bench(vkmix_context *ctx)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char desc[2048];
    vkmix_context_describe(ctx, desc, sizeof desc);
    printf("%s", desc);
    if (ctx->dev.caps.timestamp_period_ns <= 0) {
        printf("no timestamps on this queue\n");
        return 77;
    }
    const char *mode = getenv("VKMIX_OPS_BENCH");
    int quick = mode && !strcmp(mode, "quick");
    tu_rng r;
    tu_rng_seed(&r, 42);
    const uint64_t l2_defeat = ctx->dev.caps.quirk_cpu_device ? (64u << 20) : (256u << 20);

    /* copy: the bandwidth yardstick (read + write) */
    {
        uint64_t bytes = ctx->dev.caps.quirk_cpu_device ? (64u << 20) : (512u << 20);
        copy_arg c = { rand_buf(bytes, &r), buf_new(bytes), (uint32_t)(bytes / 16) };
        double us = time_us(copy_run, &c, 20);
        printf("copy %llu MiB: %.1f us, %.1f GB/s (read + write)\n", (unsigned long long)(bytes >> 20), us,
               2.0 * bytes / us / 1e3);
        buf_free(&c.src), buf_free(&c.dst);
    }

    /* matvec */
    static const uint32_t types[] = { VKM_GGML_Q4_0, VKM_GGML_F16, VKM_GGML_Q8_0, VKM_GGML_Q4_K, VKM_GGML_Q6_K };
    static const uint32_t shapes[][2] = { { 4096, 4096 }, { 4096, 14336 }, { 14336, 4096 } };
    static const uint32_t wgs[] = { 64, 128, 256 }, rows[] = { 1, 2, 4 };
    printf("\nmatvec (n_tok 1): GB/s of weight bytes (+x, y)\n");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t si = 0; si < 3; si++) {
            mm_arg m = { 0 };
            m.type = types[ti];
            m.n_in = shapes[si][0];
            m.n_out = shapes[si][1];
            m.n_tok = 1;
            uint64_t rb;
            rb = vkm_wlayout_row_bytes(m.type, m.n_in);
            uint64_t wbytes = rb * m.n_out;
            m.n_w = (uint32_t)((l2_defeat + wbytes - 1) / wbytes);
            if (m.n_w > 32) m.n_w = 32;
            m.w = malloc(m.n_w * sizeof *m.w);
            for (uint32_t i = 0; i < m.n_w; i++) m.w[i] = rand_buf(wbytes, &r);
            m.x = rand_buf((uint64_t)m.n_in * 4, &r);
            m.y = buf_new((uint64_t)m.n_out * 4);
            double bytes = (double)wbytes + m.n_in * 4.0 + m.n_out * 4.0;
            printf("%-5s %5u x %5u (%6.1f MiB):", vkm_ggml_type_name(m.type), m.n_out, m.n_in, wbytes / 1048576.0);
            g_warm_ms = 400; /* fresh allocations: the driver seems to work on them for a while */
            double us = time_us(mm_run, &m, 64);
            g_warm_ms = 50;
            printf(" default %.1f us %.0f GB/s", us, bytes / us / 1e3);

            if (!quick) {
                double best = 0;
                uint32_t bw = 0, br = 0, bu = 0;
                fprintf(stderr, "%s %ux%u:", vkm_ggml_type_name(m.type), m.n_out, m.n_in);
                for (size_t wi = 0; wi < 3; wi++)
                    for (size_t ri = 0; ri < 3; ri++)
                        for (uint32_t un = 1; un <= 4; un *= 2) {
                            m.cfg.mv_wg = wgs[wi];
                            m.cfg.mv_rows = rows[ri];
                            m.cfg.mv_unroll = un;
                            us = time_us(mm_run, &m, 64);
                            double gbs = bytes / us / 1e3;
                            fprintf(stderr, " %u/%u/%u:%.0f", wgs[wi], rows[ri], un, gbs);
                            if (gbs > best) best = gbs, bw = wgs[wi], br = rows[ri], bu = un;
                        }
                fprintf(stderr, "\n");
                printf(" | best %.0f GB/s (wg %u rows %u unroll %u)", best, bw, br, bu);
                memset(&m.cfg, 0, sizeof m.cfg);
            }
            printf("\n");
            fflush(stdout);
            for (uint32_t i = 0; i < m.n_w; i++) buf_free(&m.w[i]);
            free(m.w);
            buf_free(&m.x), buf_free(&m.y);
        }

    /* attention decode */
    printf("\nattention decode (32 heads / 8 KV heads, head_dim 128): GB/s of K+V bytes; kt/target_wgs:GB/s\n");
    static const uint32_t ctxs[] = { 512, 4096, 32768 };
    for (size_t ci = 0; ci < 3; ci++) {
        attn_arg a = { 0 };
        a.n_head = 32, a.n_kv = 8, a.hd = 128, a.n_ctx = ctxs[ci], a.pos = ctxs[ci] - 1;
        uint64_t cb = (uint64_t)a.n_kv * a.n_ctx * a.hd * 2;
        a.q = rand_buf((uint64_t)a.n_head * a.hd * 4, &r);
        a.k = rand_buf(cb, &r);
        a.v = rand_buf(cb, &r);
        a.o = buf_new((uint64_t)a.n_head * a.hd * 4);
        a.s = buf_new(vkm_op_attention_scratch(g_ctx, a.n_head, a.hd, a.n_ctx));
        double us = time_us(attn_run, &a, 32);
        printf("ctx %5u: %.1f us, %.0f GB/s |", a.n_ctx, us, 2.0 * cb / us / 1e3);
        if (!quick)
            for (uint32_t pf = 1; pf <= 2; pf++)
                for (uint32_t kt = 1; kt <= 8; kt *= 2)
                    for (uint32_t tg = 256; tg <= 1024; tg *= 2) {
                        a.cfg.kt = kt;
                        a.cfg.target_wgs = tg;
                        a.cfg.prefetch = pf;
                        us = time_us(attn_run, &a, 32);
                        printf(" %s%u/%u:%.0f", pf == 2 ? "np" : "", kt, tg, 2.0 * cb / us / 1e3);
                    }
        memset(&a.cfg, 0, sizeof a.cfg);
        printf("\n");
        buf_free(&a.q), buf_free(&a.k), buf_free(&a.v), buf_free(&a.o), buf_free(&a.s);
    }

    /* prefill matmul */
    printf("\nmatmul (prefill): TFLOP/s\n");
    static const uint32_t mm_types[] = { VKM_GGML_Q4_0, VKM_GGML_F16, VKM_GGML_Q4_K };
    static const uint32_t mm_toks[] = { 8, 64, 512 };
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t k = 0; k < 3; k++) {
            mm_arg m = { 0 };
            m.type = mm_types[ti];
            m.n_in = 4096, m.n_out = 4096, m.n_tok = mm_toks[k];
            uint64_t rb;
            rb = vkm_wlayout_row_bytes(m.type, m.n_in);
            m.n_w = 1;
            m.w = malloc(sizeof *m.w);
            m.w[0] = rand_buf(rb * m.n_out, &r);
            m.x = rand_buf((uint64_t)m.n_in * m.n_tok * 4, &r);
            m.y = buf_new((uint64_t)m.n_out * m.n_tok * 4);
            double us = time_us(mm_run, &m, 8);
            printf("%-5s 4096 x 4096, %3u tokens: %.1f us, %.2f TFLOP/s\n", vkm_ggml_type_name(m.type), m.n_tok, us,
                   2.0 * m.n_in * m.n_out * m.n_tok / us / 1e6);
            buf_free(&m.w[0]);
            free(m.w);
            buf_free(&m.x), buf_free(&m.y);
        }
    return 0;
}

int main(void)
{
    g_ctx = tu_context();
    REQUIRE(g_ctx, "no Vulkan context");
    REQUIRE(vkm_cmd_create(&g_cmd, &g_ctx->dev, g_ctx, true) == VKMIX_OK, "vkm_cmd_create: %s",
            vkmix_context_last_error(g_ctx));
    const char *bench_env = getenv("VKMIX_OPS_BENCH");
    if (bench_env && *bench_env && *bench_env != '0') {
        int rc = bench(g_ctx);
        vkm_cmd_destroy(&g_cmd);
        return tu_context_done(g_ctx) ? 1 : rc;
    }
    struct { const char *name; void (*fn)(void); } tests[] = {
        { "rmsnorm", test_rmsnorm }, { "elementwise", test_elementwise }, { "matmul", test_matmul },
        { "matmul_rows8", test_matmul_rows8 }, { "glu", test_glu }, { "qkv", test_qkv }, { "rope_store", test_rope_store }, { "wlayout", test_wlayout }, { "act_quant", test_act_quant }, { "matmul_normed", test_matmul_normed },
        { "get_rows", test_get_rows }, { "rope", test_rope }, { "kv_store", test_kv_store },
        { "attention", test_attention }, { "split", test_split }, { "errors", test_errors },
        { "big_weight", test_big_weight },
    };
    double t_all = now_s();
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        double t0 = now_s();
        int f0 = tu_failures;
        tests[i].fn();
        printf("%-12s %s  %.2f s\n", tests[i].name, tu_failures == f0 ? "ok  " : "FAIL", now_s() - t0);
        fflush(stdout);
    }
    printf("total %.2f s\n", now_s() - t_all);
    vkm_cmd_destroy(&g_cmd);
    CHECK(tu_context_done(g_ctx) == 0, "validation messages");
    return tu_finish("test_ops");
}
