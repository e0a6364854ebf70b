/* ggml types: table, hand-built blocks decoded exactly, quantize/dequantize
 * round trips with per-type error bounds, and a real Q8_0 GGUF tensor checked
 * against the F32 safetensors checkpoint it was converted from. */
#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static float h2f(const uint8_t *p) { return vkmix_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* ------------------------------------------------------------------ table */

static void test_table(void)
{
    static const struct { uint32_t id; const char *name; uint32_t bs, ts; int sup; } want[] = {
        {0, "f32", 1, 4, 1},        {1, "f16", 1, 2, 1},        {2, "q4_0", 32, 18, 1},
        {3, "q4_1", 32, 20, 0},     {6, "q5_0", 32, 22, 0},     {7, "q5_1", 32, 24, 0},
        {8, "q8_0", 32, 34, 1},     {9, "q8_1", 32, 36, 0},     {10, "q2_K", 256, 84, 0},
        {11, "q3_K", 256, 110, 0},  {12, "q4_K", 256, 144, 1},  {13, "q5_K", 256, 176, 0},
        {14, "q6_K", 256, 210, 1},  {15, "q8_K", 256, 292, 0},  {16, "iq2_xxs", 256, 66, 0},
        {17, "iq2_xs", 256, 74, 0}, {18, "iq3_xxs", 256, 98, 0}, {19, "iq1_s", 256, 50, 0},
        {20, "iq4_nl", 32, 18, 0},  {21, "iq3_s", 256, 110, 0}, {22, "iq2_s", 256, 82, 0},
        {23, "iq4_xs", 256, 136, 0}, {24, "i8", 1, 1, 0},       {25, "i16", 1, 2, 0},
        {26, "i32", 1, 4, 0},       {27, "i64", 1, 8, 0},       {28, "f64", 1, 8, 0},
        {29, "iq1_m", 256, 56, 0},  {30, "bf16", 1, 2, 1},      {34, "tq1_0", 256, 54, 0},
        {35, "tq2_0", 256, 66, 0},  {39, "mxfp4", 32, 17, 0},   {40, "nvfp4", 64, 36, 0},
        {41, "q1_0", 128, 18, 0},   {42, "q2_0", 64, 18, 0},
    };
    int known = 0, supported = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const vkm_ggml_type_info *t = vkm_ggml_type_get(want[i].id);
        CHECK(t != NULL, "type %u should be known", want[i].id);
        if (!t) continue;
        CHECK(strcmp(t->name, want[i].name) == 0, "type %u name %s, want %s", want[i].id, t->name, want[i].name);
        CHECK(t->block_size == want[i].bs && t->type_size == want[i].ts, "type %s geometry %u/%u, want %u/%u",
              want[i].name, t->block_size, t->type_size, want[i].bs, want[i].ts);
        CHECK(t->supported == want[i].sup, "type %s supported=%d", want[i].name, t->supported);
    }
    for (uint32_t id = 0; id < 200; id++) {
        if (vkm_ggml_type_get(id)) known++;
        if (vkm_ggml_type_supported(id)) supported++;
    }
    CHECK(known == (int)(sizeof want / sizeof want[0]), "%d known ids", known);
    CHECK(supported == 7, "%d supported ids", supported);
    static const uint32_t undefined[] = {4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof undefined / sizeof undefined[0]; i++) {
        CHECK(vkm_ggml_type_get(undefined[i]) == NULL, "type %u should be undefined", undefined[i]);
        CHECK(strcmp(vkm_ggml_type_name(undefined[i]), "unknown") == 0, "name of undefined %u", undefined[i]);
    }
    CHECK(VKM_GGML_BF16 == 30 && VKM_GGML_Q6_K == 14 && VKM_GGML_MXFP4 == 39, "enum values");

    uint64_t b = 0;
    CHECK(vkm_ggml_row_size(VKM_GGML_Q8_0, 64, &b) == VKMIX_OK && b == 68, "q8_0 row of 64: %llu", (unsigned long long)b);
    CHECK(vkm_ggml_row_size(VKM_GGML_Q4_K, 512, &b) == VKMIX_OK && b == 288, "q4_K row of 512");
    CHECK(vkm_ggml_row_size(VKM_GGML_Q6_K, 256, &b) == VKMIX_OK && b == 210, "q6_K row of 256");
    CHECK(vkm_ggml_row_size(VKM_GGML_Q4_K, 100, &b) == VKMIX_ERROR_GGUF_BAD_VALUE, "q4_K row of 100");
    CHECK(vkm_ggml_row_size(VKM_GGML_F32, -1, &b) == VKMIX_ERROR_GGUF_BAD_VALUE, "negative n");
    CHECK(vkm_ggml_row_size(VKM_GGML_F32, INT64_MAX, &b) == VKMIX_ERROR_GGUF_OVERFLOW, "f32 row overflow");
    CHECK(vkm_ggml_row_size(VKM_GGML_I8, INT64_MAX, &b) == VKMIX_OK && b == (uint64_t)INT64_MAX, "i8 max row");
    CHECK(vkm_ggml_row_size(4, 32, &b) == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "undefined type row");
    int64_t ne_ok[4] = {256, 3, 2, 1}, ne_big[4] = {1ll << 32, 1ll << 31, 1, 1}, ne_bytes[4] = {1ll << 40, 1ll << 22, 1, 1};
    CHECK(vkm_ggml_tensor_size(VKM_GGML_Q4_K, ne_ok, &b) == VKMIX_OK && b == 144 * 6, "q4_K tensor size");
    CHECK(vkm_ggml_tensor_size(VKM_GGML_F32, ne_big, &b) == VKMIX_ERROR_GGUF_OVERFLOW, "element overflow");
    CHECK(vkm_ggml_tensor_size(VKM_GGML_F64, ne_bytes, &b) == VKMIX_ERROR_GGUF_OVERFLOW, "byte overflow");
}

/* ------------------------------------------------------------------ hand-built blocks */

static void test_known_blocks(void)
{
    float y[256];
    /* Q8_0: d = 0.5, qs[j] = j - 16 */
    uint8_t q8[2 * VKM_Q8_0_BYTES + 1];
    for (int b = 0; b < 2; b++) {
        uint8_t *p = q8 + 1 + b * VKM_Q8_0_BYTES; /* odd address on purpose */
        put16(p, b == 0 ? 0x3800 : 0xc000);        /* 0.5 and -2.0 */
        for (int j = 0; j < 32; j++) p[2 + j] = (uint8_t)(int8_t)(j - 16);
    }
    float y64[64];
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q8_0, q8 + 1, y64, 64) == VKMIX_OK, "q8_0 dequant");
    for (int j = 0; j < 32; j++) {
        CHECK(y64[j] == 0.5f * (float)(j - 16), "q8_0[%d] = %g", j, y64[j]);
        CHECK(y64[32 + j] == -2.0f * (float)(j - 16), "q8_0[%d] = %g", 32 + j, y64[32 + j]);
    }
    CHECK(y64[0] == -8.0f && y64[31] == 7.5f && y64[63] == -30.0f, "q8_0 spot values");

    /* Q4_0: d = 2, qs[j] = (j & 15) | ((15 - j) << 4): low nibbles are elements 0..15 */
    uint8_t q4[VKM_Q4_0_BYTES];
    put16(q4, 0x4000);
    for (int j = 0; j < 16; j++) q4[2 + j] = (uint8_t)((j & 15) | ((15 - j) << 4));
    float y32[32];
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q4_0, q4, y32, 32) == VKMIX_OK, "q4_0 dequant");
    for (int j = 0; j < 16; j++) {
        CHECK(y32[j] == 2.0f * (float)(j - 8), "q4_0[%d] = %g", j, y32[j]);
        CHECK(y32[16 + j] == 2.0f * (float)(7 - j), "q4_0[%d] = %g", 16 + j, y32[16 + j]);
    }
    CHECK(y32[0] == -16.0f && y32[15] == 14.0f && y32[16] == 14.0f && y32[31] == -16.0f, "q4_0 spot values");

    /* Q4_K: d = 1, dmin = 0.5, scales sc = {1,2,3,4,17,33,50,63}, mins m = {0,5,10,63,16,32,48,7}
     * packed by hand (see ggml_types.h): */
    static const uint8_t scales[12] = {0x41, 0x82, 0xC3, 0xC4, 0x40, 0x85, 0xCA, 0x3F, 0x01, 0x01, 0x02, 0x7F};
    static const int sc[8] = {1, 2, 3, 4, 17, 33, 50, 63}, mn[8] = {0, 5, 10, 63, 16, 32, 48, 7};
    uint8_t qk[VKM_Q4_K_BYTES];
    put16(qk, 0x3c00);
    put16(qk + 2, 0x3800);
    memcpy(qk + 4, scales, 12);
    for (int i = 0; i < 128; i++) qk[16 + i] = (uint8_t)((i % 16) | (((i * 7) % 16) << 4));
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q4_K, qk, y, 256) == VKMIX_OK, "q4_K dequant");
    for (int e = 0; e < 256; e++) {
        int c = e / 64, r = e % 64;
        int q = r < 32 ? (qk[16 + 32 * c + r] & 15) : (qk[16 + 32 * c + r - 32] >> 4);
        int j = 2 * c + (r >= 32);
        float want = 1.0f * (float)sc[j] * (float)q - 0.5f * (float)mn[j];
        CHECK(y[e] == want, "q4_K[%d] = %g, want %g", e, y[e], want);
    }
    CHECK(y[0] == 0.0f && y[33] == 11.5f && y[200] == 376.0f && y[255] == 563.5f,
          "q4_K spot values %g %g %g %g", y[0], y[33], y[200], y[255]);

    /* Q6_K: d = 0.25, scales[j] = j even ? j+1 : -(j+1), ql[i] = 13i, qh[i] = 29i (mod 256) */
    uint8_t q6[VKM_Q6_K_BYTES];
    for (int i = 0; i < 128; i++) q6[i] = (uint8_t)(i * 13);
    for (int i = 0; i < 64; i++) q6[128 + i] = (uint8_t)(i * 29);
    for (int j = 0; j < 16; j++) q6[192 + j] = (uint8_t)(int8_t)(j % 2 ? -(j + 1) : j + 1);
    put16(q6 + 208, 0x3400);
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q6_K, q6, y, 256) == VKMIX_OK, "q6_K dequant");
    /* values worked out by hand from ggml's dequantize_row_q6_K */
    CHECK(y[0] == -8.0f, "q6_K[0] = %g", y[0]);
    CHECK(y[5] == -3.75f, "q6_K[5] = %g", y[5]);
    CHECK(y[37] == -23.25f, "q6_K[37] = %g", y[37]);
    CHECK(y[101] == 24.5f, "q6_K[101] = %g", y[101]);
    CHECK(y[200] == -71.5f, "q6_K[200] = %g", y[200]);
    CHECK(y[255] == 100.0f, "q6_K[255] = %g", y[255]);

    /* F16 / BF16 */
    uint8_t h[8];
    put16(h, 0x3c00); put16(h + 2, 0xc000); put16(h + 4, 0x7bff); put16(h + 6, 0x0001);
    float yh[4];
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_F16, h, yh, 4) == VKMIX_OK, "f16 dequant");
    CHECK(yh[0] == 1.0f && yh[1] == -2.0f && yh[2] == 65504.0f && yh[3] == ldexpf(1.0f, -24), "f16 values");
    put16(h, 0x3f80); put16(h + 2, 0xc000); put16(h + 4, 0x4049); put16(h + 6, 0xff80);
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_BF16, h, yh, 4) == VKMIX_OK, "bf16 dequant");
    CHECK(yh[0] == 1.0f && yh[1] == -2.0f && yh[2] == 3.140625f && isinf(yh[3]) && yh[3] < 0, "bf16 values");
    CHECK(vkm_f32_to_bf16(1.0f) == 0x3f80, "bf16(1)");
    CHECK(vkm_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 tie to even (down)");
    CHECK(vkm_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 tie to even (up)");
    {
        uint32_t u = 0x3f808001u; /* just above the tie */
        float f;
        memcpy(&f, &u, 4);
        CHECK(vkm_f32_to_bf16(f) == 0x3f81, "bf16 above tie rounds up");
    }
    CHECK((vkm_f32_to_bf16(NAN) & 0x7fc0) == 0x7fc0, "bf16 NaN stays quiet NaN");

    /* unsupported types and bad lengths */
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q5_K, qk, y, 256) == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "q5_K");
    CHECK(vkm_ggml_dequantize_row(VKM_GGML_Q8_0, q8, y, 33) == VKMIX_ERROR_INVALID_ARGUMENT, "partial block");
    CHECK(vkm_ggml_quantize_row(77, y, q8, 32) == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "undefined quantize");
}

/* Quantizing values that are exactly representable must reproduce them. */
static void test_exact_quantize(void)
{
    float x[32], y[32];
    uint8_t b[VKM_Q8_0_BYTES];
    for (int j = 0; j < 32; j++) x[j] = 0.25f * (float)((j * 37) % 255 - 127); /* amax 31.75 -> d = 0.25 */
    x[5] = 31.75f;
    CHECK(vkm_ggml_quantize_row(VKM_GGML_Q8_0, x, b, 32) == VKMIX_OK, "q8_0 quantize");
    CHECK(h2f(b) == 0.25f, "q8_0 d = %g", h2f(b));
    vkm_ggml_dequantize_row(VKM_GGML_Q8_0, b, y, 32);
    for (int j = 0; j < 32; j++) CHECK(y[j] == x[j], "q8_0 exact [%d] %g != %g", j, y[j], x[j]);

    uint8_t b4[VKM_Q4_0_BYTES];
    for (int j = 0; j < 32; j++) x[j] = 0.5f * (float)((j % 16) - 8); /* -4 is the extreme: d = 0.5 */
    CHECK(vkm_ggml_quantize_row(VKM_GGML_Q4_0, x, b4, 32) == VKMIX_OK, "q4_0 quantize");
    CHECK(h2f(b4) == 0.5f, "q4_0 d = %g", h2f(b4));
    vkm_ggml_dequantize_row(VKM_GGML_Q4_0, b4, y, 32);
    for (int j = 0; j < 32; j++) CHECK(y[j] == x[j], "q4_0 exact [%d] %g != %g", j, y[j], x[j]);
    CHECK((b4[2] & 15) == 0 && (b4[2] >> 4) == 0, "q4_0 element 0 and 16 are level 0: %02x", b4[2]);

    float z[256] = {0}, yz[256];
    uint8_t bk[VKM_Q6_K_BYTES];
    CHECK(vkm_ggml_quantize_row(VKM_GGML_Q4_K, z, bk, 256) == VKMIX_OK, "q4_K zeros");
    vkm_ggml_dequantize_row(VKM_GGML_Q4_K, bk, yz, 256);
    for (int j = 0; j < 256; j++) CHECK(yz[j] == 0.0f, "q4_K zero [%d] = %g", j, yz[j]);
    CHECK(vkm_ggml_quantize_row(VKM_GGML_Q6_K, z, bk, 256) == VKMIX_OK, "q6_K zeros");
    vkm_ggml_dequantize_row(VKM_GGML_Q6_K, bk, yz, 256);
    for (int j = 0; j < 256; j++) CHECK(yz[j] == 0.0f, "q6_K zero [%d] = %g", j, yz[j]);
}

/* ------------------------------------------------------------------ round trips */

/* 6-bit scale of Q4_K sub-block j, restated from ggml's get_scale_min_k4. */
static int q4k_sc(const uint8_t *s, int j)
{
    return j < 4 ? (s[j] & 63) : ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
}

static void gen(tu_rng *r, float *x, int64_t n, int kind)
{
    for (int64_t i = 0; i < n; i++) {
        float v = tu_rng_normal(r);
        if (kind == 1) v *= 1e-3f;
        if (kind == 2) v = 100.0f * v + 20.0f;        /* offset: exercises Q4_K mins */
        if (kind == 3) v = (i % 97 == 0) ? 25.0f * v : v; /* outliers */
        x[i] = v;
    }
}

static void test_roundtrip(void)
{
    static const int64_t lens_32[] = {32, 96, 4096, 11 * 32};
    static const int64_t lens_256[] = {256, 768, 4096};
    const uint32_t types[] = {VKM_GGML_F32, VKM_GGML_F16, VKM_GGML_BF16, VKM_GGML_Q8_0, VKM_GGML_Q4_0,
                              VKM_GGML_Q4_K, VKM_GGML_Q6_K};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        const vkm_ggml_type_info *info = vkm_ggml_type_get(type);
        int kblock = info->block_size == 256;
        const int64_t *lens = kblock ? lens_256 : lens_32;
        int nlen = kblock ? 3 : 4;
        for (int li = 0; li < nlen; li++) {
            for (int kind = 0; kind < 4; kind++) {
                int64_t n = lens[li];
                tu_rng r;
                tu_rng_seed(&r, 1000 + 17 * ti + 5 * (uint64_t)li + (uint64_t)kind);
                float *x = malloc((size_t)n * 4), *y = malloc((size_t)n * 4);
                uint64_t bytes = 0;
                vkm_ggml_row_size(type, n, &bytes);
                uint8_t *q = malloc((size_t)bytes + 1);
                gen(&r, x, n, kind);
                CHECK(vkm_ggml_quantize_row(type, x, q + 1, n) == VKMIX_OK, "%s quantize", info->name);
                CHECK(vkm_ggml_dequantize_row(type, q + 1, y, n) == VKMIX_OK, "%s dequantize", info->name);
                double se = 0, sx = 0, worst = 0; /* worst: max err / allowed */
                for (int64_t i = 0; i < n; i++) {
                    double e = fabs((double)x[i] - (double)y[i]);
                    se += e * e;
                    sx += (double)x[i] * x[i];
                    double allowed;
                    const uint8_t *blk = q + 1 + (i / info->block_size) * info->type_size;
                    switch (type) {
                    case VKM_GGML_F32: allowed = 0; break;
                    case VKM_GGML_F16: allowed = fabs(x[i]) * ldexp(1, -11) + ldexp(1, -25); break;
                    case VKM_GGML_BF16: allowed = fabs(x[i]) * ldexp(1, -8); break;
                    /* Q8_0: round to nearest level: half a step */
                    case VKM_GGML_Q8_0: allowed = 0.5 * h2f(blk) * (1 + 1e-5); break;
                    /* Q4_0: the extreme maps exactly to level 0; the opposite side may clamp at
                     * level 15 (7d instead of 8d): one full step */
                    case VKM_GGML_Q4_0: allowed = fabs(h2f(blk)) * (1 + 1e-5); break;
                    /* K-types: the quantizer rounds scales up so nothing clamps: half a step
                     * of the element's sub-block, plus float rounding of the min offset */
                    case VKM_GGML_Q4_K: {
                        int j = (int)(i % 256) / 32;
                        double step = h2f(blk) * q4k_sc(blk + 4, j);
                        allowed = 0.5 * step * (1 + 1e-4) + 1e-6 * (fabs(x[i]) + 1);
                        break;
                    }
                    default: { /* Q6_K */
                        int j = (int)(i % 256) / 16;
                        double step = h2f(blk + 208) * (int8_t)blk[192 + j];
                        allowed = 0.5 * step * (1 + 1e-4) + 1e-7 * fabs(x[i]);
                        break;
                    }
                    }
                    if (e > allowed) {
                        double ratio = allowed > 0 ? e / allowed : INFINITY;
                        if (ratio > worst) worst = ratio;
                    }
                }
                double rel_rms = sqrt(se / (sx > 0 ? sx : 1));
                CHECK(worst == 0, "%s n=%lld kind=%d: error exceeds the per-element bound (x%.3f)", info->name,
                      (long long)n, kind, worst);
                /* Relative RMS bounds. For N(0,1) data a uniform quantizer with step s has RMS error
                 * s/sqrt(12). Q8_0: s = max|x|/127 over 32 values (max ~2.5) -> ~0.006.
                 * Q4_0: s = max/8 -> ~0.09. Q4_K: s >= range/15 over 32 values (range ~4.1),
                 * rounded up to a 6-bit scale -> ~0.08. Q6_K: s = max|x|/31 over 16 values (max ~2)
                 * -> ~0.019. Measured: 0.0055, 0.08-0.10, 0.08, 0.020. Outliers (kind 3: one value in 97
                 * is 25x larger) inflate the step of their block, hence looser bounds there. */
                double bound;
                switch (type) {
                case VKM_GGML_F32: bound = 0; break;
                case VKM_GGML_F16: bound = 4e-4; break;
                case VKM_GGML_BF16: bound = 3e-3; break;
                case VKM_GGML_Q8_0: bound = kind == 3 ? 0.02 : 0.008; break;
                case VKM_GGML_Q4_0: bound = kind == 3 ? 0.25 : 0.12; break;
                case VKM_GGML_Q4_K: bound = kind == 3 ? 0.15 : 0.10; break;
                default: bound = kind == 3 ? 0.05 : 0.025; break;
                }
                CHECK(rel_rms <= bound, "%s n=%lld kind=%d: relative RMS error %.5f > %.5f", info->name, (long long)n,
                      kind, rel_rms, bound);
                if (getenv("VKMIX_TEST_VERBOSE"))
                    printf("%-5s n=%-5lld kind=%d rel_rms=%.5f\n", info->name, (long long)n, kind, rel_rms);
                free(x);
                free(y);
                free(q);
            }
        }
    }
}

/* ------------------------------------------------------------------ real model */

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = n > 0 ? malloc((size_t)n) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *size = b ? (size_t)n : 0;
    return b;
}

/* Returns 0 on success, 1 on failure, 77 when the files are missing. */
static int test_tinystories(void)
{
    char *gpath = tu_shared_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
    char *spath = tu_shared_path("models/tinystories-656k/hf/model.safetensors");
    if (!gpath || !spath) {
        free(gpath);
        free(spath);
        fprintf(stderr, "tinystories files missing: skipping that part\n");
        return 77;
    }
    char err[256];
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open(gpath, &g, err, sizeof err);
    CHECK(e == VKMIX_OK, "open %s: %s", gpath, err);
    size_t ssize = 0;
    unsigned char *st = read_all(spath, &ssize);
    CHECK(st != NULL && ssize > 8, "read %s", spath);
    int rc = 0;
    if (e == VKMIX_OK && st && ssize > 8) {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st[i];
        CHECK(hlen <= ssize - 8, "safetensors header length %llu", (unsigned long long)hlen);
        cJSON *j = hlen <= ssize - 8 ? cJSON_ParseWithLength((const char *)st + 8, (size_t)hlen) : NULL;
        CHECK(j != NULL, "safetensors JSON header parses");
        cJSON *lm = j ? cJSON_GetObjectItemCaseSensitive(j, "lm_head.weight") : NULL;
        cJSON *dtype = lm ? cJSON_GetObjectItemCaseSensitive(lm, "dtype") : NULL;
        cJSON *shape = lm ? cJSON_GetObjectItemCaseSensitive(lm, "shape") : NULL;
        cJSON *offs = lm ? cJSON_GetObjectItemCaseSensitive(lm, "data_offsets") : NULL;
        CHECK(lm && cJSON_IsString(dtype) && strcmp(dtype->valuestring, "F32") == 0, "lm_head.weight is F32");
        CHECK(cJSON_GetArraySize(shape) == 2 && cJSON_GetArraySize(offs) == 2, "lm_head shape/offsets");
        const vkm_gguf_tensor *t = NULL;
        CHECK(vkm_gguf_get_tensor(g, "token_embd.weight", &t, err, sizeof err) == VKMIX_OK, "%s", err);
        if (t && cJSON_GetArraySize(shape) == 2 && cJSON_GetArraySize(offs) == 2) {
            int64_t rows = (int64_t)cJSON_GetArrayItem(shape, 0)->valuedouble;
            int64_t cols = (int64_t)cJSON_GetArrayItem(shape, 1)->valuedouble;
            uint64_t b0 = (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
            uint64_t b1 = (uint64_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
            CHECK(t->type == VKM_GGML_Q8_0, "token_embd type %u", t->type);
            CHECK(rows == 2048 && cols == 128, "lm_head shape %lld x %lld", (long long)rows, (long long)cols);
            CHECK(t->ne[0] == cols && t->ne[1] == rows, "token_embd ne %lld x %lld", (long long)t->ne[0],
                  (long long)t->ne[1]);
            CHECK(b1 - b0 == (uint64_t)(rows * cols * 4) && 8 + hlen + b1 <= ssize, "lm_head byte range");
            if (t->type == VKM_GGML_Q8_0 && t->ne[0] == cols && t->ne[1] == rows &&
                b1 - b0 == (uint64_t)(rows * cols * 4) && 8 + hlen + b1 <= ssize) {
                const unsigned char *ref = st + 8 + hlen + b0;
                float *row = malloc((size_t)cols * 4);
                uint64_t row_bytes = 0;
                vkm_ggml_row_size(t->type, cols, &row_bytes);
                double max_diff = 0, max_ratio = 0;
                for (int64_t rr = 0; rr < rows; rr++) {
                    const uint8_t *src = (const uint8_t *)t->data + rr * row_bytes;
                    CHECK(vkm_ggml_dequantize_row(t->type, src, row, cols) == VKMIX_OK, "dequant row");
                    for (int64_t c = 0; c < cols; c++) {
                        float want;
                        memcpy(&want, ref + 4 * (rr * cols + c), 4);
                        double diff = fabs((double)row[c] - want);
                        double d = h2f(src + (c / 32) * VKM_Q8_0_BYTES);
                        if (diff > max_diff) max_diff = diff;
                        /* llama.cpp's converters compute q = round(x / d) with the fp32 d and
                         * then store d rounded to fp16 (relative error <= 2^-11), so an element
                         * with |q| <= 127 may be off by d/2 + 127 * d * 2^-11. */
                        double allowed = d * (0.5 + 127.0 / 2048.0) * 1.001;
                        if (d > 0 && diff / allowed > max_ratio) max_ratio = diff / allowed;
                    }
                }
                printf("tinystories token_embd vs lm_head: max abs diff %.3g, max diff / bound %.4f\n", max_diff,
                       max_ratio);
                CHECK(max_ratio <= 1.0, "Q8_0 token_embd differs from lm_head.weight by %.4f x the bound",
                      max_ratio);
                CHECK(max_diff > 0, "a Q8_0 tensor that equals its F32 source exactly is suspicious");
                free(row);
            }
        }
        cJSON_Delete(j);
    }
    (void)rc;
    free(st);
    vkm_gguf_close(g);
    free(gpath);
    free(spath);
    return 0;
}

int main(void)
{
    test_table();
    test_known_blocks();
    test_exact_quantize();
    test_roundtrip();
    int ts = test_tinystories();
    if (ts == 77) /* everything else ran; the shared model part could not */
        printf("test_ggml_types: skipped the TinyStories-656K part: it needs ../shared's GGUF and its "
               "safetensors checkpoint\n");
    return tu_finish("test_ggml_types");
}
