/* ggml tensor types: geometry table, CPU dequantizers, reference quantizers.
 * Layouts are documented in ggml_types.h. */
#include "gguf/ggml_types.h"

#include <math.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vkmix assumes a little-endian host (GGUF data is little-endian)"
#endif

/* ---------------------------------------------------------------- type table */

static const vkm_ggml_type_info k_types[VKM_GGML_TYPE_COUNT] = {
    [VKM_GGML_F32] = {"f32", 1, 4, 1},
    [VKM_GGML_F16] = {"f16", 1, 2, 1},
    [VKM_GGML_Q4_0] = {"q4_0", 32, 18, 1},
    [VKM_GGML_Q4_1] = {"q4_1", 32, 20, 0},
    [VKM_GGML_Q5_0] = {"q5_0", 32, 22, 0},
    [VKM_GGML_Q5_1] = {"q5_1", 32, 24, 0},
    [VKM_GGML_Q8_0] = {"q8_0", 32, 34, 1},
    [VKM_GGML_Q8_1] = {"q8_1", 32, 36, 0},
    [VKM_GGML_Q2_K] = {"q2_K", 256, 84, 0},
    [VKM_GGML_Q3_K] = {"q3_K", 256, 110, 0},
    [VKM_GGML_Q4_K] = {"q4_K", 256, 144, 1},
    [VKM_GGML_Q5_K] = {"q5_K", 256, 176, 0},
    [VKM_GGML_Q6_K] = {"q6_K", 256, 210, 1},
    [VKM_GGML_Q8_K] = {"q8_K", 256, 292, 0},
    [VKM_GGML_IQ2_XXS] = {"iq2_xxs", 256, 66, 0},
    [VKM_GGML_IQ2_XS] = {"iq2_xs", 256, 74, 0},
    [VKM_GGML_IQ3_XXS] = {"iq3_xxs", 256, 98, 0},
    [VKM_GGML_IQ1_S] = {"iq1_s", 256, 50, 0},
    [VKM_GGML_IQ4_NL] = {"iq4_nl", 32, 18, 0},
    [VKM_GGML_IQ3_S] = {"iq3_s", 256, 110, 0},
    [VKM_GGML_IQ2_S] = {"iq2_s", 256, 82, 0},
    [VKM_GGML_IQ4_XS] = {"iq4_xs", 256, 136, 0},
    [VKM_GGML_I8] = {"i8", 1, 1, 0},
    [VKM_GGML_I16] = {"i16", 1, 2, 0},
    [VKM_GGML_I32] = {"i32", 1, 4, 0},
    [VKM_GGML_I64] = {"i64", 1, 8, 0},
    [VKM_GGML_F64] = {"f64", 1, 8, 0},
    [VKM_GGML_IQ1_M] = {"iq1_m", 256, 56, 0},
    [VKM_GGML_BF16] = {"bf16", 1, 2, 1},
    [VKM_GGML_TQ1_0] = {"tq1_0", 256, 54, 0},
    [VKM_GGML_TQ2_0] = {"tq2_0", 256, 66, 0},
    [VKM_GGML_MXFP4] = {"mxfp4", 32, 17, 0},
    [VKM_GGML_NVFP4] = {"nvfp4", 64, 36, 0},
    [VKM_GGML_Q1_0] = {"q1_0", 128, 18, 0},
    [VKM_GGML_Q2_0] = {"q2_0", 64, 18, 0},
    /* ids 4, 5, 31..33, 36..38 stay zeroed: undefined */
};

const vkm_ggml_type_info *vkm_ggml_type_get(uint32_t type)
{
    if (type >= VKM_GGML_TYPE_COUNT || k_types[type].block_size == 0) return NULL;
    return &k_types[type];
}

const char *vkm_ggml_type_name(uint32_t type)
{
    const vkm_ggml_type_info *t = vkm_ggml_type_get(type);
    return t ? t->name : "unknown";
}

int vkm_ggml_type_supported(uint32_t type)
{
    const vkm_ggml_type_info *t = vkm_ggml_type_get(type);
    return t ? t->supported : 0;
}

vkmix_error vkm_ggml_row_size(uint32_t type, int64_t n, uint64_t *bytes)
{
    const vkm_ggml_type_info *t = vkm_ggml_type_get(type);
    if (!t) return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    if (n < 0 || (uint64_t)n % t->block_size != 0) return VKMIX_ERROR_GGUF_BAD_VALUE;
    uint64_t blocks = (uint64_t)n / t->block_size;
    if (blocks > UINT64_MAX / t->type_size) return VKMIX_ERROR_GGUF_OVERFLOW;
    if (bytes) *bytes = blocks * t->type_size;
    return VKMIX_OK;
}

vkmix_error vkm_ggml_tensor_size(uint32_t type, const int64_t ne[4], uint64_t *bytes)
{
    if (!ne) return VKMIX_ERROR_INVALID_ARGUMENT;
    uint64_t elems = 1, rows = 1;
    for (int i = 0; i < 4; i++) {
        if (ne[i] < 1) return VKMIX_ERROR_GGUF_OVERFLOW;
        if ((uint64_t)ne[i] > (uint64_t)INT64_MAX / elems) return VKMIX_ERROR_GGUF_OVERFLOW;
        elems *= (uint64_t)ne[i];
        if (i > 0) rows *= (uint64_t)ne[i];
    }
    uint64_t row = 0;
    vkmix_error e = vkm_ggml_row_size(type, ne[0], &row);
    if (e != VKMIX_OK) return e;
    if (row != 0 && rows > UINT64_MAX / row) return VKMIX_ERROR_GGUF_OVERFLOW;
    if (bytes) *bytes = row * rows;
    return VKMIX_OK;
}

/* ---------------------------------------------------------------- helpers */

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}
static inline float h2f(const uint8_t *p) { return vkmix_f16_to_f32(rd16(p)); }

uint16_t vkm_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float vkm_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round to nearest and clamp to [lo, hi]; NaN gives lo. Never casts an
 * out-of-range float to int. */
static inline int round_clamp(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)floorf(v + 0.5f);
}

/* Smallest positive-or-zero fp16 whose value is >= v (v >= 0), capped at the
 * largest finite fp16. */
static uint16_t f16_round_up(float v)
{
    if (!(v > 0.0f)) return 0;
    uint16_t h = vkmix_f32_to_f16(v);
    if (h >= 0x7c00u) return 0x7bffu;
    if (vkmix_f16_to_f32(h) < v && h < 0x7bffu) h++;
    return h;
}

/* ---------------------------------------------------------------- dequantize */

static void deq_q8_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q8_0_BYTES, y += 32) {
        float d = h2f(b);
        for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
    }
}

static void deq_q4_0(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q4_0_BYTES, y += 32) {
        float d = h2f(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)((int)(qs[j] & 15) - 8);
            y[j + 16] = d * (float)((int)(qs[j] >> 4) - 8);
        }
    }
}

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void q4k_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void deq_q4_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q4_K_BYTES, y += 256) {
        float d = h2f(b), dmin = h2f(b + 2);
        const uint8_t *scales = b + 4, *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            int sc0, m0, sc1, m1;
            q4k_scale_min(scales, 2 * c, &sc0, &m0);
            q4k_scale_min(scales, 2 * c + 1, &sc1, &m1);
            float d0 = d * (float)sc0, o0 = dmin * (float)m0;
            float d1 = d * (float)sc1, o1 = dmin * (float)m1;
            const uint8_t *q = qs + 32 * c;
            float *yc = y + 64 * c;
            for (int l = 0; l < 32; l++) {
                yc[l] = d0 * (float)(q[l] & 15) - o0;
                yc[l + 32] = d1 * (float)(q[l] >> 4) - o1;
            }
        }
    }
}

static void deq_q6_k(const uint8_t *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q6_K_BYTES, y += 256) {
        float d = h2f(b + 208);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
            float *yh = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                int s = l / 16;
                int q1 = ((ql[l] & 15) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                yh[l] = d * (float)sc[s] * (float)q1;
                yh[l + 32] = d * (float)sc[s + 2] * (float)q2;
                yh[l + 64] = d * (float)sc[s + 4] * (float)q3;
                yh[l + 96] = d * (float)sc[s + 6] * (float)q4;
            }
        }
    }
}

vkmix_error vkm_ggml_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    if (!vkm_ggml_type_supported(type)) return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    const vkm_ggml_type_info *t = &k_types[type];
    if (n < 0 || n % t->block_size != 0) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (n == 0) return VKMIX_OK;
    if (!src || !dst) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint8_t *b = src;
    int64_t nb = n / t->block_size;
    switch (type) {
    case VKM_GGML_F32: memcpy(dst, b, (size_t)n * 4); break;
    case VKM_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = h2f(b + 2 * i);
        break;
    case VKM_GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = vkm_bf16_to_f32(rd16(b + 2 * i));
        break;
    case VKM_GGML_Q8_0: deq_q8_0(b, dst, nb); break;
    case VKM_GGML_Q4_0: deq_q4_0(b, dst, nb); break;
    case VKM_GGML_Q4_K: deq_q4_k(b, dst, nb); break;
    case VKM_GGML_Q6_K: deq_q6_k(b, dst, nb); break;
    default: return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    }
    return VKMIX_OK;
}

/* ---------------------------------------------------------------- quantize */

static void q_q8_0(const float *x, uint8_t *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q8_0_BYTES, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        uint16_t dh = vkmix_f32_to_f16(amax / 127.0f);
        if (dh >= 0x7c00u) dh = 0x7bffu;
        float d = vkmix_f16_to_f32(dh);
        float id = d > 0.0f ? 1.0f / d : 0.0f;
        wr16(b, dh);
        for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)round_clamp(x[j] * id, -127, 127);
    }
}

static void q_q4_0(const float *x, uint8_t *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q4_0_BYTES, x += 32) {
        float amax = 0.0f, m = 0.0f;
        for (int j = 0; j < 32; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                m = x[j];
            }
        }
        /* the largest-magnitude element maps to level 0: -8*d == m */
        uint16_t dh = vkmix_f32_to_f16(m / -8.0f);
        if ((dh & 0x7fffu) >= 0x7c00u) dh = (uint16_t)((dh & 0x8000u) | 0x7bffu);
        float d = vkmix_f16_to_f32(dh);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        wr16(b, dh);
        uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            int lo = round_clamp(x[j] * id + 8.0f, 0, 15);
            int hi = round_clamp(x[j + 16] * id + 8.0f, 0, 15);
            qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

static void q_q4_k(const float *x, uint8_t *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q4_K_BYTES, x += 256) {
        float neg[8], mx[8];
        float max_neg = 0.0f;
        for (int j = 0; j < 8; j++) {
            float lo = 0.0f, hi = -INFINITY;
            for (int l = 0; l < 32; l++) {
                float v = x[32 * j + l];
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            neg[j] = -lo;     /* >= 0: mins are subtracted */
            mx[j] = hi;
            if (neg[j] > max_neg) max_neg = neg[j];
        }
        /* mins: dmin*m[j] >= neg[j], m[j] <= 63 */
        uint16_t dminh = f16_round_up(max_neg / 63.0f);
        float dmin = vkmix_f16_to_f32(dminh);
        int m[8], sc[8];
        float off[8], need[8], max_need = 0.0f;
        for (int j = 0; j < 8; j++) {
            m[j] = dmin > 0.0f ? round_clamp(ceilf(neg[j] / dmin), 0, 63) : 0;
            off[j] = dmin * (float)m[j];
            float range = mx[j] + off[j];
            need[j] = range > 0.0f ? range / 15.0f : 0.0f;
            if (need[j] > max_need) max_need = need[j];
        }
        /* scales: d*sc[j] >= need[j], sc[j] <= 63 */
        uint16_t dh = f16_round_up(max_need / 63.0f);
        float d = vkmix_f16_to_f32(dh);
        for (int j = 0; j < 8; j++) sc[j] = d > 0.0f ? round_clamp(ceilf(need[j] / d), 0, 63) : 0;

        wr16(b, dh);
        wr16(b + 2, dminh);
        uint8_t *s = b + 4, *qs = b + 16;
        for (int j = 0; j < 4; j++) {
            s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
            s[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
            s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
        }
        memset(qs, 0, 128);
        for (int e = 0; e < 256; e++) {
            int j = e / 32;
            float step = d * (float)sc[j];
            int q = step > 0.0f ? round_clamp((x[e] + off[j]) / step, 0, 15) : 0;
            int c = e / 64, hi = (e / 32) & 1, l = e & 31;
            qs[32 * c + l] |= (uint8_t)(q << (4 * hi));
        }
    }
}

static void q_q6_k(const float *x, uint8_t *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, b += VKM_Q6_K_BYTES, x += 256) {
        float need[16], max_need = 0.0f;
        for (int j = 0; j < 16; j++) {
            float amax = 0.0f;
            for (int l = 0; l < 16; l++) amax = fmaxf(amax, fabsf(x[16 * j + l]));
            need[j] = amax / 31.0f; /* levels -31..31 cover [-amax, amax] */
            if (need[j] > max_need) max_need = need[j];
        }
        uint16_t dh = f16_round_up(max_need / 127.0f);
        float d = vkmix_f16_to_f32(dh);
        int sc[16];
        for (int j = 0; j < 16; j++) sc[j] = d > 0.0f ? round_clamp(ceilf(need[j] / d), 0, 127) : 0;

        uint8_t *ql = b, *qh = b + 128;
        int8_t scb[16];
        memset(ql, 0, 128);
        memset(qh, 0, 64);
        for (int e = 0; e < 256; e++) {
            float step = d * (float)sc[e / 16];
            int q = step > 0.0f ? round_clamp(x[e] / step, -32, 31) : 0;
            int u = q + 32; /* 0..63 */
            int h = e / 128, r = e % 128, g = r / 32, l = r % 32;
            ql[64 * h + l + 32 * (g & 1)] |= (uint8_t)((u & 15) << (4 * (g >> 1)));
            qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * g));
        }
        for (int j = 0; j < 16; j++) scb[j] = (int8_t)sc[j];
        memcpy(b + 192, scb, 16);
        wr16(b + 208, dh);
    }
}

vkmix_error vkm_ggml_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    if (!vkm_ggml_type_supported(type)) return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    const vkm_ggml_type_info *t = &k_types[type];
    if (n < 0 || n % t->block_size != 0) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (n == 0) return VKMIX_OK;
    if (!src || !dst) return VKMIX_ERROR_INVALID_ARGUMENT;
    uint8_t *b = dst;
    int64_t nb = n / t->block_size;
    switch (type) {
    case VKM_GGML_F32: memcpy(b, src, (size_t)n * 4); break;
    case VKM_GGML_F16:
        for (int64_t i = 0; i < n; i++) wr16(b + 2 * i, vkmix_f32_to_f16(src[i]));
        break;
    case VKM_GGML_BF16:
        for (int64_t i = 0; i < n; i++) wr16(b + 2 * i, vkm_f32_to_bf16(src[i]));
        break;
    case VKM_GGML_Q8_0: q_q8_0(src, b, nb); break;
    case VKM_GGML_Q4_0: q_q4_0(src, b, nb); break;
    case VKM_GGML_Q4_K: q_q4_k(src, b, nb); break;
    case VKM_GGML_Q6_K: q_q6_k(src, b, nb); break;
    default: return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    }
    return VKMIX_OK;
}
