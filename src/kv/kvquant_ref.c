/* CPU reference of the KV quantization format: bit-exact with the shaders. */
#include "kv/kvquant.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const float inv_maxq[9] = { 0, 0, 1.0f / 3.0f, 1.0f / 7.0f, 1.0f / 15.0f, 0, 0, 0, 1.0f / 255.0f };

vkmix_error vkm_kvq_check(const vkmix_kvq_shape *s, char *err, size_t errlen)
{
    const char *why = NULL;
    if (!s) why = "no shape";
    else if (s->bits != 2 && s->bits != 3 && s->bits != 4 && s->bits != 8) why = "bits must be 2, 3, 4 or 8";
    else if (s->head_dim == 0 || s->head_dim > 1024 || s->head_dim % 8) why = "head_dim must be a multiple of 8, at most 1024";
    else if (s->kind == VKMIX_KV_KEYS) {
        if (s->group != 32 && s->group != 64 && s->group != 128) why = "key group must be 32, 64 or 128 tokens";
        else if (s->n_tokens % s->group) why = "key token count must be a multiple of the group";
    } else if (s->kind == VKMIX_KV_VALUES) {
        if (s->group != 32 && s->group != 64 && s->group != 128 && s->group != s->head_dim)
            why = "value group must be 32, 64, 128 or head_dim";
        else if (s->head_dim % s->group) why = "value group must divide head_dim (use group = head_dim)";
    } else why = "kind must be keys or values";
    if (why) {
        if (err && errlen) snprintf(err, errlen, "kv quantization: %s", why);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    return VKMIX_OK;
}

vkmix_error vkmix_kvq_sizes_for(const vkmix_kvq_shape *s, vkmix_kvq_sizes *out)
{
    if (!out) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_error e = vkm_kvq_check(s, NULL, 0);
    if (e != VKMIX_OK) return e;
    uint64_t ht = (uint64_t)s->n_heads * s->n_tokens;
    if (s->kind == VKMIX_KV_KEYS) {
        out->code_bytes = ht * s->head_dim * s->bits / 8;
        out->meta_bytes = (uint64_t)s->n_heads * (s->n_tokens / s->group) * s->head_dim * 4;
    } else {
        out->code_bytes = ht * vkm_kvq_v_words_per_token(s->bits, s->head_dim) * 4;
        out->meta_bytes = ht * (s->head_dim / s->group) * 4;
    }
    return VKMIX_OK;
}

uint16_t vkm_f16_ceil(float v)
{
    uint16_t h = vkmix_f32_to_f16(v);
    if (vkmix_f16_to_f32(h) < v) h++;
    else if (h > 0 && vkmix_f16_to_f32((uint16_t)(h - 1)) >= v) h--;
    return h;
}

uint32_t vkm_kvq_meta(float mn, float mx, uint32_t bits)
{
    uint16_t sh = vkm_f16_ceil((mx - mn) * inv_maxq[bits]);
    uint16_t mh = vkmix_f32_to_f16(mn);
    return (uint32_t)sh | ((uint32_t)mh << 16);
}

uint32_t vkm_kvq_code(float x, float s, float m, uint32_t bits)
{
    if (s == 0.0f) return 0;
    int maxq = (1 << bits) - 1;
    float inv = 1.0f / s;
    volatile float d = x - m; /* volatile: no contraction with what follows */
    int q = (int)floorf(d * inv + 0.5f);
    if (q < 0) q = 0;
    if (q > maxq) q = maxq;
    volatile float lo = ((float)q - 0.5f) * s;
    volatile float hi = ((float)q + 0.5f) * s;
    if (q > 0 && d < lo) q--;
    else if (q < maxq && d >= hi) q++;
    return (uint32_t)q;
}

static inline void put_code(uint32_t *words, uint32_t bitpos, uint32_t q, uint32_t bits)
{
    uint32_t k = bitpos >> 5, off = bitpos & 31;
    words[k] |= q << off;
    if (off + bits > 32) words[k + 1] |= q >> (32 - off);
}

static inline uint32_t get_code(const uint32_t *words, uint32_t bitpos, uint32_t bits, uint32_t n_words)
{
    uint32_t k = bitpos >> 5, off = bitpos & 31;
    uint32_t v = words[k] >> off;
    if (off + bits > 32 && k + 1 < n_words) v |= words[k + 1] << (32 - off);
    return v & ((1u << bits) - 1);
}

vkmix_error vkmix_kvq_quantize_cpu(const vkmix_kvq_shape *s, const uint16_t *x, uint32_t *codes, uint32_t *meta)
{
    vkmix_error e = vkm_kvq_check(s, NULL, 0);
    if (e != VKMIX_OK) return e;
    if (!x || !codes || !meta) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint32_t D = s->head_dim, G = s->group, b = s->bits, T = s->n_tokens;
    if (s->kind == VKMIX_KV_KEYS) {
        const uint32_t wpc = G * b / 32, nb = T / G;
        memset(codes, 0, (uint64_t)s->n_heads * nb * wpc * D * 4);
        uint32_t tmp[32];
        for (uint32_t h = 0; h < s->n_heads; h++)
            for (uint32_t blk = 0; blk < nb; blk++)
                for (uint32_t c = 0; c < D; c++) {
                    const uint16_t *xc = x + ((uint64_t)h * T + (uint64_t)blk * G) * D + c;
                    float mn = vkmix_f16_to_f32(xc[0]), mx = mn;
                    for (uint32_t t = 1; t < G; t++) {
                        float v = vkmix_f16_to_f32(xc[(uint64_t)t * D]);
                        mn = fminf(mn, v);
                        mx = fmaxf(mx, v);
                    }
                    uint32_t mv = vkm_kvq_meta(mn, mx, b);
                    meta[((uint64_t)h * nb + blk) * D + c] = mv;
                    float sc = vkmix_f16_to_f32((uint16_t)(mv & 0xffff)), m = vkmix_f16_to_f32((uint16_t)(mv >> 16));
                    memset(tmp, 0, sizeof tmp);
                    for (uint32_t t = 0; t < G; t++)
                        put_code(tmp, t * b, vkm_kvq_code(vkmix_f16_to_f32(xc[(uint64_t)t * D]), sc, m, b), b);
                    uint32_t *cb = codes + ((uint64_t)h * nb + blk) * wpc * D + c;
                    for (uint32_t w = 0; w < wpc; w++) cb[(uint64_t)w * D] = tmp[w];
                }
    } else {
        const uint32_t wpt = vkm_kvq_v_words_per_token(b, D), ng = D / G;
        memset(codes, 0, (uint64_t)s->n_heads * T * wpt * 4);
        for (uint64_t ht = 0; ht < (uint64_t)s->n_heads * T; ht++)
            for (uint32_t g = 0; g < ng; g++) {
                const uint16_t *xg = x + ht * D + (uint64_t)g * G;
                float mn = vkmix_f16_to_f32(xg[0]), mx = mn;
                for (uint32_t j = 1; j < G; j++) {
                    float v = vkmix_f16_to_f32(xg[j]);
                    mn = fminf(mn, v);
                    mx = fmaxf(mx, v);
                }
                uint32_t mv = vkm_kvq_meta(mn, mx, b);
                meta[ht * ng + g] = mv;
                float sc = vkmix_f16_to_f32((uint16_t)(mv & 0xffff)), m = vkmix_f16_to_f32((uint16_t)(mv >> 16));
                for (uint32_t j = 0; j < G; j++)
                    put_code(codes + ht * wpt, (g * G + j) * b, vkm_kvq_code(vkmix_f16_to_f32(xg[j]), sc, m, b), b);
            }
    }
    return VKMIX_OK;
}

/* Dequantize into FP16 (yh) or fp32 (yf): value = code * scale + min. */
static vkmix_error dequantize(const vkmix_kvq_shape *s, const uint32_t *codes, const uint32_t *meta, uint16_t *yh,
                              float *yf)
{
    vkmix_error e = vkm_kvq_check(s, NULL, 0);
    if (e != VKMIX_OK) return e;
    if (!codes || !meta || (!yh && !yf)) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint32_t D = s->head_dim, G = s->group, b = s->bits, T = s->n_tokens;
#define PUT(i, v) do { float v_ = (v); if (yh) yh[i] = vkmix_f32_to_f16(v_); else yf[i] = v_; } while (0)
    if (s->kind == VKMIX_KV_KEYS) {
        const uint32_t wpc = G * b / 32, nb = T / G;
        uint32_t tmp[32];
        for (uint32_t h = 0; h < s->n_heads; h++)
            for (uint32_t blk = 0; blk < nb; blk++)
                for (uint32_t c = 0; c < D; c++) {
                    uint32_t mv = meta[((uint64_t)h * nb + blk) * D + c];
                    float sc = vkmix_f16_to_f32((uint16_t)(mv & 0xffff)), m = vkmix_f16_to_f32((uint16_t)(mv >> 16));
                    const uint32_t *cb = codes + ((uint64_t)h * nb + blk) * wpc * D + c;
                    for (uint32_t w = 0; w < wpc; w++) tmp[w] = cb[(uint64_t)w * D];
                    for (uint32_t t = 0; t < G; t++) {
                        uint32_t q = get_code(tmp, t * b, b, wpc);
                        PUT(((uint64_t)h * T + (uint64_t)blk * G + t) * D + c, (float)q * sc + m);
                    }
                }
    } else {
        const uint32_t wpt = vkm_kvq_v_words_per_token(b, D), ng = D / G;
        for (uint64_t ht = 0; ht < (uint64_t)s->n_heads * T; ht++)
            for (uint32_t d = 0; d < D; d++) {
                uint32_t mv = meta[ht * ng + d / G];
                float sc = vkmix_f16_to_f32((uint16_t)(mv & 0xffff)), m = vkmix_f16_to_f32((uint16_t)(mv >> 16));
                uint32_t q = get_code(codes + ht * wpt, d * b, b, wpt);
                PUT(ht * D + d, (float)q * sc + m);
            }
    }
#undef PUT
    return VKMIX_OK;
}

vkmix_error vkmix_kvq_dequantize_cpu(const vkmix_kvq_shape *s, const uint32_t *codes, const uint32_t *meta, uint16_t *y)
{
    return dequantize(s, codes, meta, y, NULL);
}

vkmix_error vkm_kvq_dequantize_f32(const vkmix_kvq_shape *s, const uint32_t *codes, const uint32_t *meta, float *y)
{
    return dequantize(s, codes, meta, NULL, y);
}
