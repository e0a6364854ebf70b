/* KV quantization: CPU reference against hand-computed values, and the GPU
 * kernels against the CPU reference (codes and meta bit-exact, dequantized
 * values within scale/2 plus FP16 rounding), on odd sizes with fixed seeds. */
#include <math.h>
#include <string.h>

#include "kv/kv.h"
#include "testutil.h"
#include "vkmix_bench.h"

static float f16ulp(float v)
{
    float a = fabsf(v);
    if (a < 6.103515625e-05f) return 5.9604645e-08f;
    int e;
    frexpf(a, &e);
    return ldexpf(1.0f, e - 11);
}

/* Fill x with data of varied character: normal, some constant groups, some large or tiny. */
static void fill(tu_rng *r, uint16_t *x, size_t n, int style)
{
    for (size_t i = 0; i < n; i++) {
        float v = tu_rng_normal(r);
        if (style == 1) v *= 300.0f;                   /* large */
        if (style == 2) v *= 1e-4f;                    /* tiny, subnormal scales */
        if (style == 3) v = (i % 97 < 40) ? 0.5f : v;  /* runs of constants */
        if (style == 4) v = v * 20000.0f;              /* near the FP16 range */
        if (v > 60000.f) v = 60000.f;
        if (v < -60000.f) v = -60000.f;
        x[i] = vkmix_f32_to_f16(v);
    }
}

/* Bound check of y against x for one shape; returns the number of violations. */
static int check_bound(const vkmix_kvq_shape *s, const uint16_t *x, const uint32_t *meta, const uint16_t *y)
{
    int bad = 0;
    const uint32_t D = s->head_dim, G = s->group, T = s->n_tokens;
    for (uint32_t h = 0; h < s->n_heads; h++)
        for (uint32_t t = 0; t < T; t++)
            for (uint32_t d = 0; d < D; d++) {
                uint64_t i = ((uint64_t)h * T + t) * D + d;
                uint64_t mi = s->kind == VKMIX_KV_KEYS ? ((uint64_t)h * (T / G) + t / G) * D + d
                                                       : ((uint64_t)h * T + t) * (D / G) + d / G;
                float sc = vkmix_f16_to_f32((uint16_t)(meta[mi] & 0xffff));
                float xv = vkmix_f16_to_f32(x[i]), yv = vkmix_f16_to_f32(y[i]);
                float bound = sc * 0.5f * (1.0f + 1e-5f) + f16ulp(xv) + 1e-7f;
                if (!(fabsf(xv - yv) <= bound) || isnan(yv)) {
                    if (bad < 5)
                        fprintf(stderr, "  bound: h%u t%u d%u x=%g y=%g scale=%g\n", h, t, d, xv, yv, sc);
                    bad++;
                }
            }
    return bad;
}

static void hand_checks(void)
{
    /* bits 2, values 0..3 along tokens (every channel of a head_dim-8 head):
     * scale 1, min 0, codes 0,1,2,3,... Words are channel-minor: codes[w][c]. */
    vkmix_kvq_shape s = { VKMIX_KV_KEYS, 2, 32, 8, 1, 32 };
    uint16_t x[32 * 8];
    for (int t = 0; t < 32; t++)
        for (int c = 0; c < 8; c++) x[t * 8 + c] = vkmix_f32_to_f16((float)(t % 4));
    uint32_t codes[2 * 8], meta[8];
    CHECK(vkmix_kvq_quantize_cpu(&s, x, codes, meta) == VKMIX_OK, "quantize");
    CHECK(meta[3] == ((uint32_t)vkmix_f32_to_f16(1.0f) | ((uint32_t)vkmix_f32_to_f16(0.0f) << 16)), "meta %08x", meta[3]);
    CHECK(codes[0 * 8 + 5] == 0xE4E4E4E4u && codes[1 * 8 + 5] == 0xE4E4E4E4u, "codes %08x %08x", codes[5], codes[13]);

    /* bits 3: code of token 10 sits at bits 30..32 and crosses into word 1 */
    vkmix_kvq_shape s3 = { VKMIX_KV_KEYS, 3, 32, 8, 1, 32 };
    for (int t = 0; t < 32; t++)
        for (int c = 0; c < 8; c++) x[t * 8 + c] = vkmix_f32_to_f16(t == 10 ? 7.0f : (t == 0 ? 0.0f : 1.0f));
    uint32_t c3[3 * 8];
    CHECK(vkmix_kvq_quantize_cpu(&s3, x, c3, meta) == VKMIX_OK, "quantize 3-bit");
    /* scale = 7/7 = 1, token 10 -> code 7 = bits 30,31 of word 0 and bit 0 of word 1 */
    CHECK((c3[0 * 8 + 2] >> 30) == 3u && (c3[1 * 8 + 2] & 1u) == 1u, "3-bit crossing %08x %08x", c3[2], c3[10]);
    CHECK(((c3[2] >> 3) & 7u) == 1u && (c3[2] & 7u) == 0u, "3-bit codes t0/t1 %08x", c3[2]);

    /* constant group: exact reconstruction, scale 0 */
    vkmix_kvq_shape sv = { VKMIX_KV_VALUES, 4, 8, 8, 1, 1 };
    uint16_t xc[8], yc[8];
    for (int i = 0; i < 8; i++) xc[i] = vkmix_f32_to_f16(-3.140625f);
    uint32_t cv[1], mv[1];
    CHECK(vkmix_kvq_quantize_cpu(&sv, xc, cv, mv) == VKMIX_OK, "quantize const");
    CHECK(vkmix_kvq_dequantize_cpu(&sv, cv, mv, yc) == VKMIX_OK, "dequantize const");
    CHECK((mv[0] & 0xffff) == 0, "constant group scale %04x", mv[0] & 0xffff);
    for (int i = 0; i < 8; i++) CHECK(yc[i] == xc[i], "constant group element %d: %04x vs %04x", i, yc[i], xc[i]);

    /* rounding rule: half rounds up: x - m = 0.5 * s exactly -> code 1 */
    CHECK(vkm_kvq_code(0.5f, 1.0f, 0.0f, 2) == 1, "half rounds up");
    CHECK(vkm_kvq_code(0.49999997f, 1.0f, 0.0f, 2) == 0, "just under half rounds down");
    CHECK(vkm_kvq_code(2.5f, 1.0f, 0.0f, 2) == 3, "2.5 -> 3");
    CHECK(vkm_kvq_code(100.0f, 1.0f, 0.0f, 2) == 3, "clamp high");
    CHECK(vkm_f16_ceil(1.0f / 3.0f) == 0x3556, "ceil(1/3) = %04x", vkm_f16_ceil(1.0f / 3.0f));

    /* bad shapes */
    vkmix_kvq_shape bad = { VKMIX_KV_KEYS, 5, 32, 8, 1, 32 };
    vkmix_kvq_shape bad_d = { VKMIX_KV_VALUES, 2, 12, 12, 1, 3 };
    vkmix_kvq_sizes sz;
    CHECK(vkmix_kvq_sizes_for(&bad, &sz) == VKMIX_ERROR_INVALID_ARGUMENT, "bits 5 rejected");
    CHECK(vkmix_kvq_sizes_for(&bad_d, &sz) == VKMIX_ERROR_INVALID_ARGUMENT, "head_dim 12 rejected");
    bad.bits = 2; bad.n_tokens = 33;
    CHECK(vkmix_kvq_sizes_for(&bad, &sz) == VKMIX_ERROR_INVALID_ARGUMENT, "partial key block rejected");
    vkmix_kvq_shape badv = { VKMIX_KV_VALUES, 2, 32, 80, 1, 3 };
    CHECK(vkmix_kvq_sizes_for(&badv, &sz) == VKMIX_ERROR_INVALID_ARGUMENT, "group 32 on head_dim 80 rejected");
}

int main(void)
{
    hand_checks();
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "no Vulkan context");

    static const uint32_t bits_list[] = { 2, 3, 4, 8 };
    struct { uint32_t D, G_keys, G_vals, heads, tokens_v; } shapes[] = {
        { 8, 32, 8, 5, 37 },     /* stories260K: head_dim 8, whole-head value groups */
        { 16, 64, 16, 3, 29 },   /* TinyStories-656K: head_dim 16 */
        { 80, 32, 80, 3, 11 },   /* head_dim 80: whole-head values */
        { 96, 128, 32, 2, 13 },
        { 128, 32, 64, 3, 7 },
        { 256, 64, 128, 1, 5 },
    };
    tu_rng r;
    int n_cases = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t bi = 0; bi < 4; bi++)
            for (int kind = 0; kind < 2; kind++) {
                uint32_t b = bits_list[bi];
                vkmix_kvq_shape s = { kind ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, b,
                                      kind ? shapes[si].G_vals : shapes[si].G_keys, shapes[si].D, shapes[si].heads,
                                      kind ? shapes[si].tokens_v : shapes[si].G_keys * 3 };
                int style = (int)((si + bi + (size_t)kind) % 5);
                tu_rng_seed(&r, 1000 + si * 100 + bi * 10 + (uint64_t)kind);
                size_t n = (size_t)s.n_heads * s.n_tokens * s.head_dim;
                vkmix_kvq_sizes sz;
                REQUIRE(vkmix_kvq_sizes_for(&s, &sz) == VKMIX_OK, "sizes");
                uint16_t *x = malloc(n * 2), *y_cpu = malloc(n * 2), *y_gpu = malloc(n * 2);
                uint32_t *c_cpu = malloc(sz.code_bytes), *c_gpu = malloc(sz.code_bytes);
                uint32_t *m_cpu = malloc(sz.meta_bytes), *m_gpu = malloc(sz.meta_bytes);
                REQUIRE(x && y_cpu && y_gpu && c_cpu && c_gpu && m_cpu && m_gpu, "alloc");
                fill(&r, x, n, style);
                memset(y_gpu, 0xff, n * 2); /* poison: NaN pattern */
                REQUIRE(vkmix_kvq_quantize_cpu(&s, x, c_cpu, m_cpu) == VKMIX_OK, "cpu quantize");
                REQUIRE(vkmix_kvq_dequantize_cpu(&s, c_cpu, m_cpu, y_cpu) == VKMIX_OK, "cpu dequantize");
                vkmix_error e = vkmix_kvq_roundtrip_gpu(ctx, &s, x, c_gpu, m_gpu, y_gpu);
                REQUIRE(e == VKMIX_OK, "gpu roundtrip: %s: %s", vkmix_strerror(e), vkmix_context_last_error(ctx));
                size_t cd = 0, md = 0, yd = 0;
                for (size_t i = 0; i < sz.code_bytes / 4; i++) cd += c_cpu[i] != c_gpu[i];
                for (size_t i = 0; i < sz.meta_bytes / 4; i++) md += m_cpu[i] != m_gpu[i];
                for (size_t i = 0; i < n; i++) {
                    float a = vkmix_f16_to_f32(y_cpu[i]), g = vkmix_f16_to_f32(y_gpu[i]);
                    if (!(fabsf(a - g) <= f16ulp(a))) yd++;
                }
                const char *kn = kind ? "values" : "keys";
                CHECK(cd == 0, "%s b%u D%u G%u: %zu code words differ", kn, b, s.head_dim, s.group, cd);
                CHECK(md == 0, "%s b%u D%u G%u: %zu meta words differ", kn, b, s.head_dim, s.group, md);
                CHECK(yd == 0, "%s b%u D%u G%u: %zu dequantized values differ by > 1 ulp", kn, b, s.head_dim, s.group, yd);
                CHECK(check_bound(&s, x, m_cpu, y_cpu) == 0, "%s b%u D%u: CPU error bound", kn, b, s.head_dim);
                CHECK(check_bound(&s, x, m_gpu, y_gpu) == 0, "%s b%u D%u: GPU error bound", kn, b, s.head_dim);
                free(x); free(y_cpu); free(y_gpu); free(c_cpu); free(c_gpu); free(m_cpu); free(m_gpu);
                n_cases++;
            }
    printf("%d shape/bit/kind cases\n", n_cases);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_kvquant");
}
