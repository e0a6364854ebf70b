/* GPU operations of the forward pass: argument checks, the choice of
 * workgroup sizes and specialization constants from the device capabilities,
 * and the splitting of weights and caches larger than the storage range.
 * The kernels are shaders/{rmsnorm,matvec,matmul,get_rows,rope,silu_mul,add,
 * copy_f32,kv_store,attn,attn_reduce}.comp.
 *
 * Measured on an H100 80GB HBM3 (tests/test_ops.c with VKMIX_OPS_BENCH=1;
 * copy kernel 3.0 TB/s read + write), default configurations, GB/s of weight
 * bytes for 4096x4096 / 14336x4096 / 4096x14336 (out x in):
 *   matvec F16  2240 / 2860 / 2700     Q8_0 1560 / 2200 / 2070
 *          Q4_0  855 / 1310 / 1280     Q4_K  690 /  960 /  890    Q6_K 970 / 1370 / 1240
 *   attention decode, 32/8 heads, head_dim 128: 10 us at 512 positions (latency),
 *          920 GB/s of K+V at 4096, 1910 GB/s at 32768
 *   matmul (prefill, 4096x4096, 512 tokens): 14 (Q4_0) - 18 (F16) TFLOP/s
 * The quantized matvecs are bound by instruction issue (about 2e12 weights/s
 * whatever the type), not by bandwidth; see the notes in shaders/matvec.comp. */
#include "ops/ops.h"

#include <stdlib.h>
#include <string.h>

#include "core/hparams.h"
#include "gguf/ggml_types.h"
#include "ops/wlayout.h"

/* ------------------------------------------------------------------ helpers */

static uint64_t bind_size(vkm_binding b)
{
    if (!b.buf) return 0;
    if (b.size != VK_WHOLE_SIZE) return b.size;
    return b.buf->size > b.offset ? b.buf->size - b.offset : 0;
}

static vkm_binding sub_binding(vkm_binding b, uint64_t off, uint64_t size)
{
    return (vkm_binding){ b.buf, b.offset + off, size };
}

/* The binding cut to exactly `bytes` (so that a VK_WHOLE_SIZE binding of a big
 * buffer never exceeds the storage range), after checking that it holds them. */
static vkmix_error fit(vkmix_context *ctx, vkm_binding b, uint64_t bytes, const char *what, vkm_binding *out)
{
    if (!b.buf || !b.buf->buf) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: no buffer", what);
    uint64_t have = bind_size(b);
    if (have < bytes)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: binding holds %llu bytes, %llu needed", what,
                        (unsigned long long)have, (unsigned long long)bytes);
    if (bytes > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE,
                        "%s: %llu bytes exceed the device's storage buffer range (%llu)", what,
                        (unsigned long long)bytes, (unsigned long long)ctx->dev.caps.max_storage_range);
    if (ctx->dev.caps.storage_align && b.offset % ctx->dev.caps.storage_align)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: offset %llu is not a multiple of %u", what,
                        (unsigned long long)b.offset, ctx->dev.caps.storage_align);
    *out = sub_binding(b, 0, bytes ? bytes : 4);
    return VKMIX_OK;
}

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* How many items of `item_bytes` one binding may cover: all n when they fit in
 * the storage range, else the largest count that fits and keeps every chunk's
 * offset a multiple of the storage alignment. 0 (with an error) when none. */
static vkmix_error chunk_items(vkmix_context *ctx, uint64_t item_bytes, uint64_t n, const char *what, uint64_t *per)
{
    const vkm_caps *c = &ctx->dev.caps;
    uint64_t range = c->max_storage_range > 16 ? c->max_storage_range - 16 : c->max_storage_range; /* slack for rounding */
    *per = 0;
    if (item_bytes * n <= range) {
        *per = n;
        return VKMIX_OK;
    }
    uint64_t align = c->storage_align ? c->storage_align : 1;
    uint64_t granule = align / gcd64(item_bytes, align);   /* items per aligned step */
    uint64_t fit_n = range / item_bytes;
    fit_n -= fit_n % granule;
    if (!fit_n)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE,
                        "%s: cannot split %llu items of %llu bytes into aligned chunks of at most %llu bytes", what,
                        (unsigned long long)n, (unsigned long long)item_bytes, (unsigned long long)range);
    *per = fit_n;
    return VKMIX_OK;
}

static uint32_t pow2_floor(uint32_t v)
{
    uint32_t p = 1;
    while (p * 2 <= v) p *= 2;
    return p;
}

/* A power-of-two workgroup size for reductions: `want`, capped by the device,
 * at least one subgroup. */
static uint32_t reduce_wg(const vkmix_context *ctx, uint32_t want)
{
    const vkm_caps *c = &ctx->dev.caps;
    uint32_t wg = pow2_floor(want ? want : 1);
    if (wg > c->max_wg_invocations) wg = pow2_floor(c->max_wg_invocations);
    uint32_t sg = c->subgroup_size ? pow2_floor(c->subgroup_size) : 1;
    if (wg < sg && sg <= c->max_wg_invocations) wg = sg;
    return wg;
}

static vkmix_error elementwise(vkm_cmd *cmd, vkm_shader sh, const vkm_binding *b, uint32_t nb, uint32_t n)
{
    vkmix_context *ctx = cmd->ctx;
    uint32_t wg = vkm_default_wg(ctx);
    const vkm_pipeline *p;
    vkmix_error e = vkm_pipe(ctx, sh, &wg, 1, &p);
    if (e != VKMIX_OK) return e;
    if (n) vkm_cmd_dispatch(cmd, p, b, nb, &n, sizeof n, vkm_groups_for(ctx, n, wg), 1, 1);
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ rmsnorm */

vkmix_error vkm_op_rmsnorm(vkm_cmd *cmd, vkm_binding x, vkm_binding w, vkm_binding out, uint32_t n_rows,
                           uint32_t n, float eps)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n_rows || !n) return VKMIX_OK;
    uint64_t bytes = (uint64_t)n_rows * n * 4;
    vkm_binding bx, bw, bo;
    vkmix_error e;
    if ((e = fit(ctx, x, bytes, "rmsnorm x", &bx)) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, bytes, "rmsnorm out", &bo)) != VKMIX_OK) return e;
    uint32_t has_w = w.buf != NULL;
    if (has_w) {
        if ((e = fit(ctx, w, (uint64_t)n * 4, "rmsnorm weight", &bw)) != VKMIX_OK) return e;
    } else {
        bw = bx;
    }
    uint32_t wg = reduce_wg(ctx, n >= 1024 ? 256 : n >= 256 ? 128 : 64);
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_RMSNORM, &wg, 1, &p)) != VKMIX_OK) return e;
    struct { uint32_t n_rows, n; float eps; uint32_t has_w; } pc = { n_rows, n, eps, has_w };
    vkm_binding b[3] = { bx, bw, bo };
    uint32_t groups = n_rows < ctx->dev.caps.max_wg_count[0] ? n_rows : ctx->dev.caps.max_wg_count[0];
    vkm_cmd_dispatch(cmd, p, b, 3, &pc, sizeof pc, groups, 1, 1);
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ quantized activations */

uint64_t vkm_act_q_bytes(uint32_t n) { return (uint64_t)n * 5 / 2 + 16; }

vkmix_error vkm_op_act_quant(vkm_cmd *cmd, vkm_binding x, vkm_binding w, vkm_binding xq, uint32_t n_tok,
                             uint32_t n, float eps)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n || n % 32)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "act_quant: %u elements per token (a multiple of 32)", n);
    if (!n_tok) return VKMIX_OK;
    vkm_binding bx, bw, bq;
    vkmix_error e;
    if ((e = fit(ctx, x, (uint64_t)n_tok * n * 4, "act_quant x", &bx)) != VKMIX_OK) return e;
    if ((e = fit(ctx, xq, n_tok * vkm_act_q_bytes(n), "act_quant out", &bq)) != VKMIX_OK) return e;
    uint32_t has_w = w.buf != NULL;
    if (has_w) {
        if ((e = fit(ctx, w, (uint64_t)n * 4, "act_quant weight", &bw)) != VKMIX_OK) return e;
    } else {
        bw = bx;
    }
    /* one invocation per 32-element block, small workgroups: a decode token of
     * 4096 elements is 128 blocks, spread over a few workgroups */
    uint64_t blocks = (uint64_t)n_tok * (n / 32);
    uint32_t wg = reduce_wg(ctx, 64);
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_ACT_QUANT, &wg, 1, &p)) != VKMIX_OK) return e;
    struct { uint32_t n, n_tok, has_w; float eps; } pc = { n, n_tok, has_w, eps };
    vkm_binding b[3] = { bx, bw, bq };
    vkm_cmd_dispatch(cmd, p, b, 3, &pc, sizeof pc, vkm_groups_for(ctx, blocks, wg), 1, 1);
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ matmul / matvec */

static int int_type(uint32_t wtype)
{
    return wtype == VKM_GGML_Q4_0 || wtype == VKM_GGML_Q8_0 || wtype == VKM_GGML_Q4_K || wtype == VKM_GGML_Q6_K;
}

int vkm_matmul_uses_q(uint32_t wtype, uint32_t n_tok)
{
    return int_type(wtype) && n_tok >= 1 && n_tok <= VKM_MATVEC_MAX_COLS;
}

/* Elements per matvec unit of each type (see shaders/ops/matvec.comp). */
static uint32_t mv_unit(uint32_t wtype)
{
    switch (wtype) {
    case VKM_GGML_F32: return 4;
    case VKM_GGML_F16: case VKM_GGML_BF16: return 8;
    case VKM_GGML_Q4_K: case VKM_GGML_Q6_K: return 64;
    default: return 32;
    }
}

/* Where the outputs go (shaders/ops/out_seg.glsl): rows [0, seg_a) to y[0],
 * [seg_a, seg_b) to y[1], [seg_b, n_out) to y[2], each token-major; a single
 * output has seg_a = seg_b = n_out and y[1] = y[2] = y[0]. add: y += W x. */
typedef struct out_layout {
    vkm_binding y[3];
    uint32_t seg_a, seg_b, add;
} out_layout;

/* The outputs fitted to their sizes (n_tok tokens of n_out rows). */
static vkmix_error fit_outputs(vkmix_context *ctx, out_layout *ol, uint32_t n_out, uint32_t n_tok)
{
    uint32_t len[3] = { ol->seg_a, ol->seg_b - ol->seg_a, n_out - ol->seg_b };
    static const char *what[3] = { "matmul y", "matmul y (second output)", "matmul y (third output)" };
    for (int i = 0; i < 3; i++) {
        if (!len[i]) {
            ol->y[i] = ol->y[0];
            continue;
        }
        vkmix_error e = fit(ctx, ol->y[i], (uint64_t)n_tok * len[i] * 4, what[i], &ol->y[i]);
        if (e != VKMIX_OK) return e;
    }
    return VKMIX_OK;
}

struct mm_push {
    uint32_t n_in, n_rows, row_base, has_bias, row_bytes, n_tok, n_out, seg_a, seg_b;
};

static vkmix_error check_weight(vkmix_context *ctx, uint32_t wtype, uint32_t n_in, uint64_t *row_bytes)
{
    if (!vkm_ggml_type_supported(wtype))
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "weight type %u (%s) is not supported", wtype,
                        vkm_ggml_type_name(wtype));
    const vkm_ggml_type_info *ti = vkm_ggml_type_get(wtype);
    /* F32 rows are read in vec4 units, the other types in units of 8 or whole blocks */
    uint32_t mult = wtype == VKM_GGML_F32 ? 4 : ti->block_size > 8 ? ti->block_size : 8;
    if (n_in == 0 || n_in % mult)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rows of %u %s elements: need a multiple of %u", n_in,
                        ti->name, mult);
    *row_bytes = vkm_wlayout_row_bytes(wtype, n_in);
    if (!*row_bytes || *row_bytes > UINT32_MAX)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rows of %u %s elements are too long", n_in, ti->name);
    return VKMIX_OK;
}

/* The matrix-vector kernel for n_tok <= VKM_MATVEC_MAX_COLS tokens: x is the
 * fp32 binding (float weights) or the quantized one (integer weights). */
static vkmix_error matvec(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, uint64_t row_bytes, uint64_t rows_per,
                          vkm_binding x, vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok,
                          uint32_t epi, const out_layout *ol, const vkm_matmul_cfg *cfg)
{
    vkmix_context *ctx = cmd->ctx;
    const vkm_caps *c = &ctx->dev.caps;
    /* More tokens than the kernel keeps in registers: several dispatches of at most max_tok tokens,
     * each reading the weights again (mostly from L2). On the H200 (2026-12-02, 14336x4096) a Q4_0
     * product took 32.4 us for 4 tokens but 103.9 for 8 and 281 for 16; F16 70.6 for 4, 133.7 for 8. */
    uint32_t max_tok = cfg && cfg->mv_max_tok ? cfg->mv_max_tok : int_type(wtype) ? 4 : 8;
    if (n_tok > max_tok) {
        const uint64_t xs = int_type(wtype) ? vkm_act_q_bytes(n_in) : (uint64_t)n_in * 4;
        const uint32_t out_tok = epi == 2 ? n_out / 2 : n_out;   /* output floats per token, all segments */
        const uint64_t len[3] = { ol->seg_a, ol->seg_b - ol->seg_a, out_tok - ol->seg_b };
        const uint64_t al = c->storage_align ? c->storage_align : 1;
        int aligned = (max_tok * xs) % al == 0;
        for (int i = 0; i < 3; i++) aligned &= (max_tok * len[i] * 4) % al == 0;
        if (aligned) {
            for (uint32_t t = 0; t < n_tok; t += max_tok) {
                const uint32_t nt = n_tok - t < max_tok ? n_tok - t : max_tok;
                vkm_binding xt = { x.buf, x.offset + t * xs, nt * xs };
                out_layout ot = *ol;
                for (int i = 0; i < 3; i++)
                    ot.y[i] = len[i] ? (vkm_binding){ ol->y[i].buf, ol->y[i].offset + t * len[i] * 4, nt * len[i] * 4 }
                                     : (vkm_binding){ NULL, 0, 0 };
                for (int i = 1; i < 3; i++)
                    if (!len[i]) ot.y[i] = ot.y[0];
                vkm_matmul_cfg one = cfg ? *cfg : (vkm_matmul_cfg){ 0 };
                one.mv_max_tok = VKM_MATVEC_MAX_COLS;
                vkmix_error e = matvec(cmd, W, wtype, row_bytes, rows_per, xt, bias, n_in, n_out, nt, epi, &ot, &one);
                if (e != VKMIX_OK) return e;
            }
            return VKMIX_OK;
        }
    }
    /* Defaults (predictions for an H200, see docs/PERFORMANCE.md; vkmix-bench
     * matvec --sweep measures the others): 64 invocations; float weights one
     * row per workgroup (bandwidth-bound already), quantized ones 2-4 rows so
     * that each invocation keeps 4-8 16-byte loads in flight and reuses each
     * x load for several rows. More tokens: fewer rows (the sums and the x
     * words of every token live in registers). */
    uint32_t d_wg = 64, d_rows = 4, d_unr = 2;
    switch (wtype) {
    case VKM_GGML_F32: case VKM_GGML_F16: case VKM_GGML_BF16: d_rows = 1; break;
    case VKM_GGML_Q8_0: d_rows = 2; break;
    case VKM_GGML_Q4_K: case VKM_GGML_Q6_K: d_unr = 1; break;
    default: break;
    }
    if (n_tok >= 4 && d_rows > 2) d_rows = 2;
    if (n_tok >= 8) d_rows = 1;
    uint32_t units = n_in / mv_unit(wtype);
    uint32_t wg = cfg && cfg->mv_wg ? cfg->mv_wg : d_wg;
    if (wg > units) wg = units;
    wg = reduce_wg(ctx, wg);
    uint32_t rows = cfg && cfg->mv_rows ? cfg->mv_rows : d_rows;
    if (rows > 16) rows = 16;
    /* shared memory of the reduction: (rows + 1) * n_tok * (wg + 1) floats */
    while (rows > 1 && (uint64_t)(rows + 1) * n_tok * (wg + 1) * 4 > c->max_shared_bytes) rows /= 2;
    if (epi == 2) rows = rows < 2 ? 2 : rows & ~1u;   /* gate and up rows in pairs */
    while (wg > 1 && (uint64_t)(rows + 1) * n_tok * (wg + 1) * 4 > c->max_shared_bytes) wg /= 2;
    uint32_t unr = cfg && cfg->mv_unroll ? cfg->mv_unroll : d_unr;
    if (unr > 4) unr = 4;
    vkm_shader sh = int_type(wtype) && ctx->dev.int_dot_on && !(cfg && cfg->mv_idot == 2) ? VKM_SH_MATVEC_IDOT
                                                                                           : VKM_SH_MATVEC;
    uint32_t spec[6] = { wg, wtype, rows, n_tok, unr, epi };
    const vkm_pipeline *p;
    vkmix_error e = vkm_pipe(ctx, sh, spec, 6, &p);
    if (e != VKMIX_OK) return e;
    uint32_t x_stride = (uint32_t)(int_type(wtype) ? vkm_act_q_bytes(n_in) / 16 : n_in / 4);
    for (uint64_t r0 = 0; r0 < n_out; r0 += rows_per) {
        uint32_t nr = (uint32_t)(n_out - r0 < rows_per ? n_out - r0 : rows_per);
        struct { uint32_t n_in, n_rows, row_base, has_bias, row_bytes, x_stride, n_out, seg_a, seg_b; } pc = {
            n_in, nr, (uint32_t)r0, bias.buf != NULL, (uint32_t)row_bytes, x_stride, epi == 2 ? n_out / 2 : n_out,
            ol->seg_a, ol->seg_b
        };
        vkm_binding b[6] = { sub_binding(W, r0 * row_bytes, nr * row_bytes), x, ol->y[0], bias.buf ? bias : ol->y[0],
                             ol->y[1], ol->y[2] };
        uint32_t groups = (nr + rows - 1) / rows;
        vkm_cmd_dispatch(cmd, p, b, 6, &pc, sizeof pc, groups < c->max_wg_count[0] ? groups : c->max_wg_count[0],
                         1, 1);
    }
    return VKMIX_OK;
}

/* The cooperative-matrix shape for fp16 x fp16 + fp32: 16x8x16 when listed,
 * else the first that fits the tiles (M, N dividing 64 and 32, K dividing 32). */
static const struct vkm_coopmat_shape *coopmat_shape(const vkm_caps *c)
{
    const struct vkm_coopmat_shape *best = NULL;
    for (uint32_t i = 0; i < c->n_coopmat; i++) {
        const struct vkm_coopmat_shape *s = &c->coopmat[i];
        if (s->a_type != VK_COMPONENT_TYPE_FLOAT16_NV || s->c_type != VK_COMPONENT_TYPE_FLOAT32_NV) continue;
        if (!s->m || !s->n || !s->k || 64 % s->m || 32 % s->n || 32 % s->k) continue;
        if (s->m == 16 && s->n == 8 && s->k == 16) return s;
        if (!best) best = s;
    }
    return best;
}

/* The tiled prefill kernel: the cooperative-matrix one where the device has it
 * (BM 128 rows x BN 64 or 128 tokens, subgroups of 64 x 32), else the scalar
 * one (BM 64 x BN 16 or 64, 256 invocations of 4 x 4 outputs). */
static vkmix_error matmul_pipeline(vkmix_context *ctx, uint32_t wtype, uint32_t n_tok, uint32_t add,
                                   const vkm_matmul_cfg *cfg, const vkm_pipeline **p, uint32_t *bm, uint32_t *bn)
{
    const vkm_caps *c = &ctx->dev.caps;
    uint32_t want = cfg ? cfg->mm_coopmat : 0;
    if (!want) want = ctx->tune.matmul;   /* VKMIX_MATMUL, read at context creation */
    const struct vkm_coopmat_shape *cs = ctx->dev.coopmat_on ? coopmat_shape(c) : NULL;
    if (want != 2 && cs) {
        uint32_t wm = 4 * cs->m, wn = 4 * cs->n;
        *bm = 2 * wm;
        *bn = cfg && cfg->mm_bn >= 2 * wn ? cfg->mm_bn / wn * wn : n_tok > 64 ? 4 * wn : 2 * wn;
        uint32_t nw = (*bm / wm) * (*bn / wn), nt = nw * c->subgroup_size;
        uint64_t shared = 32ull * (*bm + 8) * 2 + 32ull * (*bn + 8) * 2 + (uint64_t)nw * cs->m * cs->n * 4;
        if (nt <= c->max_wg_invocations && (4 * *bm) % nt == 0 && (8 * *bn) % nt == 0 && shared <= c->max_shared_bytes) {
            uint32_t spec[10] = { nt, wtype, *bm, *bn, wm, wn, cs->m, cs->n, cs->k, add };
            return vkm_pipe(ctx, VKM_SH_MATMUL_COOPMAT, spec, 10, p);
        }
    }
    if (want == 1)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE,
                        "matmul: the cooperative-matrix kernel was asked for, but the device has no usable "
                        "VK_NV_cooperative_matrix fp16 shape (or its subgroups do not fit the tiles)");
    /* small batches use 16-token tiles (less padding), except on CPU devices
     * where every extra pipeline costs a long compile and nothing is gained */
    *bn = cfg && cfg->mm_bn ? cfg->mm_bn : (n_tok <= 16 && !c->quirk_cpu_device ? 16 : 64);
    uint32_t tn = *bn / 16, tm = 4;
    *bm = 64;
    uint32_t spec[7] = { (*bm / tm) * (*bn / tn), wtype, *bm, *bn, tm, tn, add };
    return vkm_pipe(ctx, VKM_SH_MATMUL, spec, 7, p);
}

static vkmix_error product(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding bias, uint32_t n_in,
                           uint32_t n_out, uint32_t n_tok, out_layout ol, const vkm_matmul_cfg *cfg)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n_out || !n_tok) return VKMIX_OK;
    uint64_t row_bytes;
    vkmix_error e = check_weight(ctx, wtype, n_in, &row_bytes);
    if (e != VKMIX_OK) return e;
    const vkm_caps *c = &ctx->dev.caps;
    int use_q = vkm_matmul_uses_q(wtype, n_tok);
    vkm_binding bx, bb;
    if (use_q) e = fit(ctx, x.q, n_tok * vkm_act_q_bytes(n_in), "matmul x (quantized)", &bx);
    else e = fit(ctx, x.f, (uint64_t)n_tok * n_in * 4, "matmul x", &bx);
    if (e != VKMIX_OK) return e;
    if ((e = fit_outputs(ctx, &ol, n_out, n_tok)) != VKMIX_OK) return e;
    uint32_t has_bias = bias.buf != NULL;
    if (has_bias) {
        if ((e = fit(ctx, bias, (uint64_t)n_out * 4, "matmul bias", &bb)) != VKMIX_OK) return e;
    } else {
        bb = (vkm_binding){ NULL, 0, 0 };
    }
    if (!W.buf || !W.buf->buf) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: no weight buffer");
    if (bind_size(W) < row_bytes * n_out)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: weight binding holds %llu bytes, %llu needed",
                        (unsigned long long)bind_size(W), (unsigned long long)(row_bytes * n_out));
    if (c->storage_align && W.offset % c->storage_align)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: weight offset not aligned");
    uint64_t rows_per;
    if ((e = chunk_items(ctx, row_bytes, n_out, "matmul weight", &rows_per)) != VKMIX_OK) return e;

    if (n_tok <= VKM_MATVEC_MAX_COLS)
        return matvec(cmd, W, wtype, row_bytes, rows_per, bx, bb, n_in, n_out, n_tok, ol.add, &ol, cfg);
    if (!has_bias) bb = ol.y[0];   /* never read */

    /* F32 rows that are not a multiple of 8 (e.g. stories260K's n_ff = 172) are
     * outside the tiled kernel's reach: matrix-vector products of up to 16 tokens */
    const vkm_pipeline *p;
    uint32_t gx_max = c->max_wg_count[0];
    if (wtype == VKM_GGML_F32 && n_in % 8) {
        uint64_t xs = (uint64_t)n_in * 4, ys = (uint64_t)n_out * 4, al = c->storage_align ? c->storage_align : 1;
        if (xs % al || ys % al || ol.seg_a != n_out)
            return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: F32 rows of %u with %u outputs", n_in, n_out);
        for (uint32_t t = 0; t < n_tok; t += VKM_MATVEC_MAX_COLS) {
            uint32_t nt = n_tok - t < VKM_MATVEC_MAX_COLS ? n_tok - t : VKM_MATVEC_MAX_COLS;
            vkm_act xt = { { bx.buf, bx.offset + t * xs, nt * xs }, { NULL, 0, 0 } };
            out_layout ot = ol;
            ot.y[0] = ot.y[1] = ot.y[2] = (vkm_binding){ ol.y[0].buf, ol.y[0].offset + t * ys, nt * ys };
            if ((e = product(cmd, W, wtype, xt, bias, n_in, n_out, nt, ot, cfg)) != VKMIX_OK) return e;
        }
        return VKMIX_OK;
    }

    uint32_t bm = 64, bn = 64;
    if ((e = matmul_pipeline(ctx, wtype, n_tok, ol.add, cfg, &p, &bm, &bn)) != VKMIX_OK) return e;
    uint32_t gy = (n_tok + bn - 1) / bn;
    if (gy > c->max_wg_count[1])
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: %u tokens are too many at once", n_tok);
    for (uint64_t r0 = 0; r0 < n_out; r0 += rows_per) {
        uint32_t nr = (uint32_t)(n_out - r0 < rows_per ? n_out - r0 : rows_per);
        struct mm_push pc = { n_in, nr, (uint32_t)r0, has_bias, (uint32_t)row_bytes, n_tok, n_out, ol.seg_a, ol.seg_b };
        vkm_binding b[6] = { sub_binding(W, r0 * row_bytes, nr * row_bytes), bx, ol.y[0], bb, ol.y[1], ol.y[2] };
        uint32_t gx = (nr + bm - 1) / bm;
        if (gx > gx_max) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul: too many rows");
        vkm_cmd_dispatch(cmd, p, b, 6, &pc, sizeof pc, gx, gy, 1);
    }
    return VKMIX_OK;
}

vkmix_error vkm_op_matmul_x(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding y,
                            vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok,
                            const vkm_matmul_cfg *cfg)
{
    out_layout ol = { { y, y, y }, n_out, n_out, cfg && cfg->add ? 1u : 0u };
    return product(cmd, W, wtype, x, bias, n_in, n_out, n_tok, ol, cfg);
}

vkmix_error vkm_op_matmul_qkv(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding q, vkm_binding k,
                              vkm_binding v, vkm_binding bias, uint32_t n_in, uint32_t n_q, uint32_t n_kv,
                              uint32_t n_tok, const vkm_matmul_cfg *cfg)
{
    if (!n_q || !n_kv)
        return vkm_fail(cmd->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul_qkv: %u query and %u key rows", n_q, n_kv);
    out_layout ol = { { q, k, v }, n_q, n_q + n_kv, 0 };
    return product(cmd, W, wtype, x, bias, n_in, n_q + 2 * n_kv, n_tok, ol, cfg);
}

vkmix_error vkm_op_matmul_glu(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding y,
                              uint32_t n_in, uint32_t n_out, uint32_t n_tok, const vkm_matmul_cfg *cfg)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n_out || !n_tok) return VKMIX_OK;
    if (n_tok > VKM_MATVEC_MAX_COLS)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul_glu: %u tokens (at most %u)", n_tok,
                        VKM_MATVEC_MAX_COLS);
    uint64_t row_bytes;
    vkmix_error e = check_weight(ctx, wtype, n_in, &row_bytes);
    if (e != VKMIX_OK) return e;
    vkm_binding bx;
    if (vkm_matmul_uses_q(wtype, n_tok)) e = fit(ctx, x.q, n_tok * vkm_act_q_bytes(n_in), "matmul_glu x (quantized)", &bx);
    else e = fit(ctx, x.f, (uint64_t)n_tok * n_in * 4, "matmul_glu x", &bx);
    if (e != VKMIX_OK) return e;
    out_layout ol = { { y, y, y }, n_out, n_out, 0 };
    if ((e = fit_outputs(ctx, &ol, n_out, n_tok)) != VKMIX_OK) return e;
    if (!W.buf || !W.buf->buf || bind_size(W) < row_bytes * 2 * n_out)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul_glu: the weight binding holds %llu bytes, %llu needed",
                        (unsigned long long)bind_size(W), (unsigned long long)(row_bytes * 2 * n_out));
    if (ctx->dev.caps.storage_align && W.offset % ctx->dev.caps.storage_align)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "matmul_glu: weight offset not aligned");
    uint64_t rows_per;
    if ((e = chunk_items(ctx, 2 * row_bytes, n_out, "matmul_glu weight", &rows_per)) != VKMIX_OK) return e;
    return matvec(cmd, W, wtype, row_bytes, 2 * rows_per, bx, (vkm_binding){ NULL, 0, 0 }, n_in, 2 * n_out, n_tok, 2,
                  &ol, cfg);
}

/* The recording target's scratch for quantized activations, at least `bytes`
 * long; an outgrown one stays alive until the target is destroyed (commands
 * recorded before may still read it). */
static vkmix_error act_scratch(vkm_cmd *cmd, uint64_t bytes, vkm_binding *out)
{
    vkm_buffer *s = &cmd->scratch;
    if (!s->buf || s->size < bytes) {
        if (s->buf) {
            if (cmd->n_scratch_old == sizeof cmd->scratch_old / sizeof cmd->scratch_old[0])
                return vkm_fail(cmd->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY, "activation scratch: too many sizes");
            cmd->scratch_old[cmd->n_scratch_old++] = *s;
            memset(s, 0, sizeof *s);
        }
        uint64_t want = bytes < (1u << 20) ? (1u << 20) : bytes;
        vkmix_error e = vkm_buffer_create(cmd->dev, s, want, VKM_MEM_DEVICE);
        if (e != VKMIX_OK) return e;
    }
    *out = (vkm_binding){ s, 0, bytes };
    return VKMIX_OK;
}

vkmix_error vkm_op_matmul_cfg(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_binding x, vkm_binding y,
                              vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok,
                              const vkm_matmul_cfg *cfg)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_act a = { x, { NULL, 0, 0 } };
    if (n_out && vkm_matmul_uses_q(wtype, n_tok)) {
        uint64_t row_bytes;
        vkmix_error e = check_weight(ctx, wtype, n_in, &row_bytes);
        if (e != VKMIX_OK) return e;
        if ((e = act_scratch(cmd, n_tok * vkm_act_q_bytes(n_in), &a.q)) != VKMIX_OK) return e;
        vkm_cmd_barrier(cmd);   /* earlier products may still read the scratch */
        if ((e = vkm_op_act_quant(cmd, x, (vkm_binding){ NULL, 0, 0 }, a.q, n_tok, n_in, 0.0f)) != VKMIX_OK) return e;
        vkm_cmd_barrier(cmd);
    }
    return vkm_op_matmul_x(cmd, W, wtype, a, y, bias, n_in, n_out, n_tok, cfg);
}

vkmix_error vkm_op_matmul(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_binding x, vkm_binding y,
                          vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok)
{
    return vkm_op_matmul_cfg(cmd, W, wtype, x, y, bias, n_in, n_out, n_tok, NULL);
}

/* ------------------------------------------------------------------ get_rows */

vkmix_error vkm_op_get_rows(vkm_cmd *cmd, vkm_binding table, uint32_t wtype, vkm_binding ids,
                            vkm_binding out, uint32_t n_embd, uint32_t n_ids)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n_ids) return VKMIX_OK;
    uint64_t row_bytes;
    vkmix_error e = check_weight(ctx, wtype, n_embd, &row_bytes);
    if (e != VKMIX_OK) return e;
    vkm_binding bi, bo;
    if ((e = fit(ctx, ids, (uint64_t)n_ids * 4, "get_rows ids", &bi)) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, (uint64_t)n_ids * n_embd * 4, "get_rows out", &bo)) != VKMIX_OK) return e;
    if (!table.buf || !table.buf->buf) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "get_rows: no table");
    uint64_t n_vocab = bind_size(table) / row_bytes;
    if (!n_vocab || n_vocab > UINT32_MAX)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "get_rows: the table binding holds %llu rows",
                        (unsigned long long)n_vocab);
    uint64_t rows_per;
    if ((e = chunk_items(ctx, row_bytes, n_vocab, "get_rows table", &rows_per)) != VKMIX_OK) return e;
    uint32_t wg = vkm_default_wg(ctx);
    uint32_t spec[2] = { wg, wtype };
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_GET_ROWS, spec, 2, &p)) != VKMIX_OK) return e;
    uint32_t groups = vkm_groups_for(ctx, (uint64_t)n_ids * (n_embd / 8), wg);
    for (uint64_t r0 = 0; r0 < n_vocab; r0 += rows_per) {
        uint32_t nr = (uint32_t)(n_vocab - r0 < rows_per ? n_vocab - r0 : rows_per);
        struct { uint32_t n_embd, n_ids, row_base, n_rows, n_vocab, first, row_bytes, pad; } pc = {
            n_embd, n_ids, (uint32_t)r0, nr, (uint32_t)n_vocab, r0 == 0, (uint32_t)row_bytes, 0
        };
        vkm_binding b[3] = { sub_binding(table, r0 * row_bytes, nr * row_bytes), bi, bo };
        vkm_cmd_dispatch(cmd, p, b, 3, &pc, sizeof pc, groups, 1, 1);
    }
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ rope, element-wise */

vkmix_error vkm_op_rope(vkm_cmd *cmd, vkm_binding x, vkm_binding freqs, uint32_t n_tok, uint32_t n_heads,
                        uint32_t head_dim, uint32_t pos0, uint32_t rope_type)
{
    vkmix_context *ctx = cmd->ctx;
    if (head_dim == 0 || head_dim % 2)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rope: head_dim %u must be even", head_dim);
    if (rope_type != VKM_ROPE_NORM && rope_type != VKM_ROPE_NEOX)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rope: unknown type %u", rope_type);
    if (!n_tok || !n_heads) return VKMIX_OK;
    vkm_binding bx, bf;
    vkmix_error e;
    if ((e = fit(ctx, x, (uint64_t)n_tok * n_heads * head_dim * 4, "rope x", &bx)) != VKMIX_OK) return e;
    if ((e = fit(ctx, freqs, (uint64_t)head_dim / 2 * 4, "rope freqs", &bf)) != VKMIX_OK) return e;
    uint32_t wg = vkm_default_wg(ctx);
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_ROPE, &wg, 1, &p)) != VKMIX_OK) return e;
    struct { uint32_t n_tok, n_heads, head_dim, pos0, neox; } pc = { n_tok, n_heads, head_dim, pos0,
                                                                    rope_type == VKM_ROPE_NEOX };
    vkm_binding b[2] = { bx, bf };
    uint64_t n = (uint64_t)n_tok * n_heads * (head_dim / 2);
    vkm_cmd_dispatch(cmd, p, b, 2, &pc, sizeof pc, vkm_groups_for(ctx, n, wg), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkm_op_rope_store(vkm_cmd *cmd, vkm_binding q, vkm_binding k, vkm_binding v, vkm_binding freqs,
                              vkm_binding pos, vkm_binding k_sinks, vkm_binding k_ring, vkm_binding v_sinks,
                              vkm_binding v_ring, uint32_t n_tok, uint32_t n_head, uint32_t n_kv, uint32_t head_dim,
                              uint32_t n_sinks, uint32_t n_ring, uint32_t rope_type)
{
    vkmix_context *ctx = cmd->ctx;
    if (head_dim == 0 || head_dim % 2 || !n_head || !n_kv || !n_ring)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rope_store: %u / %u heads of %u, ring of %u", n_head,
                        n_kv, head_dim, n_ring);
    if (rope_type != VKM_ROPE_NORM && rope_type != VKM_ROPE_NEOX)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "rope_store: unknown type %u", rope_type);
    if (!n_tok) return VKMIX_OK;
    vkm_binding b[9];
    vkmix_error e;
    uint64_t ring = (uint64_t)n_kv * n_ring * head_dim * 2, sinks = (uint64_t)n_kv * n_sinks * head_dim * 2;
    uint64_t kvb = (uint64_t)n_tok * n_kv * head_dim * 4;
    if ((e = fit(ctx, q, (uint64_t)n_tok * n_head * head_dim * 4, "rope_store q", &b[0])) != VKMIX_OK) return e;
    if ((e = fit(ctx, k, kvb, "rope_store k", &b[1])) != VKMIX_OK) return e;
    if ((e = fit(ctx, v, kvb, "rope_store v", &b[2])) != VKMIX_OK) return e;
    if ((e = fit(ctx, freqs, (uint64_t)head_dim / 2 * 4, "rope_store freqs", &b[3])) != VKMIX_OK) return e;
    if ((e = fit(ctx, pos, (uint64_t)n_tok * 4, "rope_store positions", &b[4])) != VKMIX_OK) return e;
    if ((e = fit(ctx, k_ring, ring, "rope_store key ring", &b[6])) != VKMIX_OK) return e;
    if ((e = fit(ctx, v_ring, ring, "rope_store value ring", &b[8])) != VKMIX_OK) return e;
    if (n_sinks) {
        if ((e = fit(ctx, k_sinks, sinks, "rope_store key sinks", &b[5])) != VKMIX_OK) return e;
        if ((e = fit(ctx, v_sinks, sinks, "rope_store value sinks", &b[7])) != VKMIX_OK) return e;
    } else {
        b[5] = b[6], b[7] = b[8];   /* unused */
    }
    uint32_t wg = vkm_default_wg(ctx);
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_ROPE_STORE, &wg, 1, &p)) != VKMIX_OK) return e;
    struct { uint32_t n_tok, n_head, n_kv, head_dim, n_sinks, n_ring, neox; } pc = {
        n_tok, n_head, n_kv, head_dim, n_sinks, n_ring, rope_type == VKM_ROPE_NEOX
    };
    uint64_t n = (uint64_t)n_tok * (n_head + 2 * n_kv) * (head_dim / 2);
    vkm_cmd_dispatch(cmd, p, b, 9, &pc, sizeof pc, vkm_groups_for(ctx, n, wg), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkm_op_silu_mul(vkm_cmd *cmd, vkm_binding gate, vkm_binding up, vkm_binding out, uint32_t n)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_binding b[3];
    vkmix_error e;
    if ((e = fit(ctx, gate, (uint64_t)n * 4, "silu_mul gate", &b[0])) != VKMIX_OK) return e;
    if ((e = fit(ctx, up, (uint64_t)n * 4, "silu_mul up", &b[1])) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, (uint64_t)n * 4, "silu_mul out", &b[2])) != VKMIX_OK) return e;
    return elementwise(cmd, VKM_SH_SILU_MUL, b, 3, n);
}

vkmix_error vkm_op_glu(vkm_cmd *cmd, vkm_binding in, vkm_binding out, uint32_t n_tok, uint32_t n)
{
    vkmix_context *ctx = cmd->ctx;
    uint64_t total = (uint64_t)n_tok * n;
    if (total > UINT32_MAX) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "glu: too many elements");
    vkm_binding b[3];
    vkmix_error e;
    if ((e = fit(ctx, in, total * 8, "glu in", &b[0])) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, total * 4, "glu out", &b[2])) != VKMIX_OK) return e;
    b[1] = b[0];
    uint32_t spec[2] = { vkm_default_wg(ctx), 1 };
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_SILU_MUL, spec, 2, &p)) != VKMIX_OK) return e;
    uint32_t nn = (uint32_t)total;
    if (nn) vkm_cmd_dispatch(cmd, p, b, 3, &nn, sizeof nn, vkm_groups_for(ctx, nn, spec[0]), 1, 1);
    return VKMIX_OK;
}

vkmix_error vkm_op_add(vkm_cmd *cmd, vkm_binding a, vkm_binding bb, vkm_binding out, uint32_t n)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_binding b[3];
    vkmix_error e;
    if ((e = fit(ctx, a, (uint64_t)n * 4, "add a", &b[0])) != VKMIX_OK) return e;
    if ((e = fit(ctx, bb, (uint64_t)n * 4, "add b", &b[1])) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, (uint64_t)n * 4, "add out", &b[2])) != VKMIX_OK) return e;
    return elementwise(cmd, VKM_SH_ADD, b, 3, n);
}

vkmix_error vkm_op_copy_f32(vkm_cmd *cmd, vkm_binding src, vkm_binding dst, uint32_t n)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_binding b[2];
    vkmix_error e;
    if ((e = fit(ctx, src, (uint64_t)n * 4, "copy src", &b[0])) != VKMIX_OK) return e;
    if ((e = fit(ctx, dst, (uint64_t)n * 4, "copy dst", &b[1])) != VKMIX_OK) return e;
    return elementwise(cmd, VKM_SH_COPY_F32, b, 2, n);
}

/* ------------------------------------------------------------------ KV cache, attention */

/* KV heads per dispatch so that the caches' bindings fit the storage range. */
static vkmix_error kv_heads_per(vkmix_context *ctx, vkm_binding kc, vkm_binding vc, uint32_t n_kv_head,
                                uint64_t head_bytes, uint32_t *per)
{
    const char *what = "KV cache";
    uint64_t need = head_bytes * n_kv_head;
    if (!kc.buf || !kc.buf->buf || !vc.buf || !vc.buf->buf)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: no buffer", what);
    if (bind_size(kc) < need || bind_size(vc) < need)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: bindings hold %llu / %llu bytes, %llu needed",
                        what, (unsigned long long)bind_size(kc), (unsigned long long)bind_size(vc),
                        (unsigned long long)need);
    uint32_t al = ctx->dev.caps.storage_align;
    if (al && (kc.offset % al || vc.offset % al))
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "%s: offsets not aligned", what);
    uint64_t p;
    vkmix_error e = chunk_items(ctx, head_bytes, n_kv_head, what, &p);
    if (e != VKMIX_OK) return e;
    if (p < n_kv_head && al && head_bytes % al)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE,
                        "%s: one head (%llu bytes) is not a multiple of the storage alignment %u, cannot split", what,
                        (unsigned long long)head_bytes, al);
    *per = (uint32_t)p;
    return VKMIX_OK;
}

vkmix_error vkm_op_kv_store(vkm_cmd *cmd, vkm_binding k, vkm_binding v, vkm_binding kcache, vkm_binding vcache,
                            uint32_t n_tok, uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    if (head_dim == 0 || head_dim % 2 || !n_kv_head || !n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "kv_store: bad shape");
    if ((uint64_t)pos0 + n_tok > n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW, "kv_store: positions %u..%u past the cache (%u)",
                        pos0, pos0 + n_tok, n_ctx);
    if (!n_tok) return VKMIX_OK;
    vkm_binding bk, bv;
    vkmix_error e;
    uint64_t in_bytes = (uint64_t)n_tok * n_kv_head * head_dim * 4;
    if ((e = fit(ctx, k, in_bytes, "kv_store k", &bk)) != VKMIX_OK) return e;
    if ((e = fit(ctx, v, in_bytes, "kv_store v", &bv)) != VKMIX_OK) return e;
    uint64_t head_bytes = (uint64_t)n_ctx * head_dim * 2;
    uint32_t per;
    if ((e = kv_heads_per(ctx, kcache, vcache, n_kv_head, head_bytes, &per)) != VKMIX_OK) return e;
    uint32_t wg = vkm_default_wg(ctx);
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_KV_STORE, &wg, 1, &p)) != VKMIX_OK) return e;
    for (uint32_t h0 = 0; h0 < n_kv_head; h0 += per) {
        uint32_t nh = n_kv_head - h0 < per ? n_kv_head - h0 : per;
        struct { uint32_t n_tok, n_kv_head, head_dim, n_ctx, pos0, h_begin, h_count; } pc = {
            n_tok, n_kv_head, head_dim, n_ctx, pos0, h0, nh
        };
        vkm_binding b[4] = { bk, bv, sub_binding(kcache, h0 * head_bytes, nh * head_bytes),
                             sub_binding(vcache, h0 * head_bytes, nh * head_bytes) };
        uint64_t n = 2ull * n_tok * nh * (head_dim / 2);
        vkm_cmd_dispatch(cmd, p, b, 4, &pc, sizeof pc, vkm_groups_for(ctx, n, wg), 1, 1);
    }
    return VKMIX_OK;
}

#define ATTN_MAX_SPLIT 64u
#define ATTN_MIN_SPLIT_LEN 64u

static uint32_t attn_max_splits(uint32_t n_ctx)
{
    uint32_t s = (n_ctx + ATTN_MIN_SPLIT_LEN - 1) / ATTN_MIN_SPLIT_LEN;
    if (s > ATTN_MAX_SPLIT) s = ATTN_MAX_SPLIT;
    return s ? s : 1;
}

uint64_t vkm_op_attention_scratch(const vkmix_context *ctx, uint32_t n_head, uint32_t head_dim, uint32_t n_ctx)
{
    (void)ctx;
    return (uint64_t)n_head * attn_max_splits(n_ctx) * (head_dim + 2) * 4;
}

vkmix_error vkm_op_attention(vkm_cmd *cmd, vkm_binding q, vkm_binding kcache, vkm_binding vcache,
                             vkm_binding out, vkm_binding scratch, uint32_t n_tok, uint32_t n_head,
                             uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0, float scale)
{
    return vkm_op_attention_cfg(cmd, q, kcache, vcache, out, scratch, n_tok, n_head, n_kv_head, head_dim, n_ctx, pos0,
                                scale, NULL);
}

vkmix_error vkm_op_attention_cfg(vkm_cmd *cmd, vkm_binding q, vkm_binding kcache, vkm_binding vcache,
                                 vkm_binding out, vkm_binding scratch, uint32_t n_tok, uint32_t n_head,
                                 uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0, float scale,
                                 const vkm_attn_cfg *cfg)
{
    vkmix_context *ctx = cmd->ctx;
    if (!n_head || !n_kv_head || n_head % n_kv_head || !head_dim || head_dim % 8 || head_dim > 256)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "attention: n_head %u / n_kv_head %u / head_dim %u (a multiple of 8, at most 256)", n_head,
                        n_kv_head, head_dim);
    if ((uint64_t)pos0 + n_tok > n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW, "attention: positions past the cache (%u)", n_ctx);
    if (!n_tok) return VKMIX_OK;
    const vkm_caps *c = &ctx->dev.caps;
    vkmix_error e;
    vkm_binding bq, bo, bs;
    uint64_t qbytes = (uint64_t)n_tok * n_head * head_dim * 4;
    if ((e = fit(ctx, q, qbytes, "attention q", &bq)) != VKMIX_OK) return e;
    if ((e = fit(ctx, out, qbytes, "attention out", &bo)) != VKMIX_OK) return e;
    uint64_t head_bytes = (uint64_t)n_ctx * head_dim * 2;
    uint32_t per;
    if ((e = kv_heads_per(ctx, kcache, vcache, n_kv_head, head_bytes, &per)) != VKMIX_OK) return e;

    /* heads per workgroup: the largest divisor of the GQA group that is <= 8 */
    uint32_t grp = n_head / n_kv_head, G = 1;
    for (uint32_t d = 1; d <= 8 && d <= grp; d++)
        if (grp % d == 0) G = d;
    /* C chunk lanes (8 dims each) x kp key lanes, about 128 invocations; kt keys per lane per tile */
    uint32_t C = head_dim / 8;
    uint32_t kp = 128 / C;
    if (!kp) kp = 1;
    while (C * kp > c->max_wg_invocations && kp > 1) kp /= 2;
    uint32_t kt = cfg && cfg->kt ? cfg->kt : (C == 1 ? 1 : 2);
    if (kt > 8) kt = 8;
    for (;;) {
        uint64_t sh = (C > 1 ? (uint64_t)G * kt * kp * (C + 1) : 2) + (uint64_t)kp * head_dim + 2ull * kp;
        if (sh * 4 <= c->max_shared_bytes) break;
        if (kt > 1) kt /= 2;
        else if (kp > 1) kp /= 2;
        else return vkm_fail(&ctx->dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "attention: not enough shared memory");
    }
    uint32_t pf = cfg && cfg->prefetch == 2 ? 0 : 1;
    uint32_t spec[6] = { C * kp, head_dim, G, kp, kt, pf };
    const vkm_pipeline *p;
    if ((e = vkm_pipe(ctx, VKM_SH_ATTN, spec, 6, &p)) != VKMIX_OK) return e;

    uint32_t n_split = 1, split_len = n_ctx, mode = 1;
    if (n_tok == 1) {
        /* split-K: about `target` workgroups to fill a big GPU, splits of >= 64
         * keys; on an H100, 256 workgroups were best below 8k keys, 512 above */
        uint32_t n_kv = pos0 + 1;
        uint32_t groups = n_head / G;
        uint32_t target = cfg && cfg->target_wgs ? cfg->target_wgs : (n_kv < 8192 ? 256 : 512);
        uint32_t want = (target + groups - 1) / groups;
        uint32_t maxs = attn_max_splits(n_ctx);
        if (want > maxs) want = maxs;
        split_len = (n_kv + want - 1) / want;
        if (split_len < ATTN_MIN_SPLIT_LEN) split_len = ATTN_MIN_SPLIT_LEN;
        split_len = (split_len + kp * kt - 1) / (kp * kt) * (kp * kt);
        n_split = (n_kv + split_len - 1) / split_len;
        mode = n_split > 1 ? 0 : 1;
    }
    if (mode == 0) {
        if ((e = fit(ctx, scratch, (uint64_t)n_head * n_split * (head_dim + 2) * 4, "attention scratch", &bs)) !=
            VKMIX_OK)
            return e;
    } else {
        bs = bo;   /* not written in mode 1 */
    }
    if (n_tok > c->max_wg_count[2])
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "attention: too many tokens at once");
    for (uint32_t h0 = 0; h0 < n_kv_head; h0 += per) {
        uint32_t nh = n_kv_head - h0 < per ? n_kv_head - h0 : per;
        struct { uint32_t n_head, n_kv_head, n_ctx, pos0, split_len, n_split, mode; float scale; uint32_t hg_base, kv_base; } pc = {
            n_head, n_kv_head, n_ctx, pos0, split_len, n_split, mode, scale, h0 * grp / G, h0
        };
        vkm_binding b[5] = { bq, sub_binding(kcache, h0 * head_bytes, nh * head_bytes),
                             sub_binding(vcache, h0 * head_bytes, nh * head_bytes), bo, bs };
        vkm_cmd_dispatch(cmd, p, b, 5, &pc, sizeof pc, n_split, nh * grp / G, n_tok);
    }
    if (mode == 0) {
        vkm_cmd_barrier(cmd);
        uint32_t wg = reduce_wg(ctx, head_dim < 128 ? head_dim : 128);
        uint32_t rspec[2] = { wg, head_dim };
        if ((e = vkm_pipe(ctx, VKM_SH_ATTN_REDUCE, rspec, 2, &p)) != VKMIX_OK) return e;
        struct { uint32_t n_head, n_split; } pc = { n_head, n_split };
        vkm_binding b[2] = { bs, bo };
        vkm_cmd_dispatch(cmd, p, b, 2, &pc, sizeof pc, n_head, 1, 1);
    }
    return VKMIX_OK;
}
