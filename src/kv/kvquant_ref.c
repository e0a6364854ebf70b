/* CPU reference of the KV quantization format: bit-exact with the shaders. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kv/kv.h"

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
    const uint64_t H = s->n_heads, T = s->n_tokens, D = s->head_dim;
    if (s->kind == VKMIX_KV_KEYS) {
        out->code_bytes = 4 * kvl_k_code_words(H, T / s->group, s->bits, s->group, D);
        out->meta_bytes = 4 * kvl_k_meta_words(H, T / s->group, D);
    } else {
        out->code_bytes = 4 * kvl_v_code_words(H, T, s->bits, D);
        out->meta_bytes = 4 * kvl_v_meta_words(H, T, D, s->group);
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
    return kvl_meta(sh, mh);
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

/* Places a code at bit `bitpos` of `words` (the inverse of kvl_extract). */
static inline void put_code(uint32_t *words, uint64_t bitpos, uint32_t q, uint32_t bits)
{
    uint64_t k = bitpos >> 5;
    uint32_t off = (uint32_t)(bitpos & 31);
    words[k] |= q << off;
    if (off + bits > 32) words[k + 1] |= q >> (32 - off);
}

static inline uint32_t get_code(const uint32_t *words, uint64_t bitpos, uint32_t bits, uint64_t n_words)
{
    uint64_t k = bitpos >> 5;
    return kvl_extract(words[k], k + 1 < n_words ? words[k + 1] : 0, (uint32_t)(bitpos & 31), bits);
}

static inline float meta_scale(uint32_t mv) { return vkmix_f16_to_f32((uint16_t)kvl_meta_scale(mv)); }
static inline float meta_min(uint32_t mv) { return vkmix_f16_to_f32((uint16_t)kvl_meta_min(mv)); }

vkmix_error vkmix_kvq_quantize_cpu(const vkmix_kvq_shape *s, const uint16_t *x, uint32_t *codes, uint32_t *meta)
{
    vkmix_error e = vkm_kvq_check(s, NULL, 0);
    if (e != VKMIX_OK) return e;
    if (!x || !codes || !meta) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint32_t D = s->head_dim, G = s->group, b = s->bits, T = s->n_tokens, H = s->n_heads;
    if (s->kind == VKMIX_KV_KEYS) {
        const uint32_t wpc = (uint32_t)kvl_k_wpc(b, G), nb = T / G;
        memset(codes, 0, 4 * kvl_k_code_words(H, nb, b, G, D));
        uint32_t tmp[32];
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t blk = 0; blk < nb; blk++)
                for (uint32_t c = 0; c < D; c++) {
                    const uint64_t hb = kvl_k_block(h, blk, nb);
                    float mn = vkmix_f16_to_f32(x[kvl_f16(h, blk * G, c, T, D)]), mx = mn;
                    for (uint32_t t = 1; t < G; t++) {
                        float v = vkmix_f16_to_f32(x[kvl_f16(h, blk * G + t, c, T, D)]);
                        mn = fminf(mn, v);
                        mx = fmaxf(mx, v);
                    }
                    uint32_t mv = vkm_kvq_meta(mn, mx, b);
                    meta[kvl_k_meta(hb, c, D)] = mv;
                    memset(tmp, 0, sizeof tmp);
                    for (uint32_t t = 0; t < G; t++)
                        put_code(tmp, kvl_k_bit(t, b),
                                 vkm_kvq_code(vkmix_f16_to_f32(x[kvl_f16(h, blk * G + t, c, T, D)]), meta_scale(mv),
                                              meta_min(mv), b),
                                 b);
                    for (uint32_t w = 0; w < wpc; w++) codes[kvl_k_code(hb, w, c, b, G, D)] = tmp[w];
                }
    } else {
        const uint32_t ng = D / G;
        memset(codes, 0, 4 * kvl_v_code_words(H, T, b, D));
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t t = 0; t < T; t++)
                for (uint32_t g = 0; g < ng; g++) {
                    const uint64_t ht = kvl_v_slot(h, t, T);
                    const uint16_t *xg = x + kvl_f16(h, t, (uint64_t)g * G, T, D);
                    float mn = vkmix_f16_to_f32(xg[0]), mx = mn;
                    for (uint32_t j = 1; j < G; j++) {
                        float v = vkmix_f16_to_f32(xg[j]);
                        mn = fminf(mn, v);
                        mx = fmaxf(mx, v);
                    }
                    uint32_t mv = vkm_kvq_meta(mn, mx, b);
                    meta[kvl_v_meta(ht, g, D, G)] = mv;
                    for (uint32_t j = 0; j < G; j++)
                        put_code(codes + kvl_v_code(ht, 0, b, D), kvl_v_bit((uint64_t)g * G + j, b),
                                 vkm_kvq_code(vkmix_f16_to_f32(xg[j]), meta_scale(mv), meta_min(mv), b), b);
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
    const uint32_t D = s->head_dim, G = s->group, b = s->bits, T = s->n_tokens, H = s->n_heads;
#define PUT(i, v) do { float v_ = (v); if (yh) yh[i] = vkmix_f32_to_f16(v_); else yf[i] = v_; } while (0)
    if (s->kind == VKMIX_KV_KEYS) {
        const uint32_t wpc = (uint32_t)kvl_k_wpc(b, G), nb = T / G;
        uint32_t tmp[32];
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t blk = 0; blk < nb; blk++)
                for (uint32_t c = 0; c < D; c++) {
                    const uint64_t hb = kvl_k_block(h, blk, nb);
                    uint32_t mv = meta[kvl_k_meta(hb, c, D)];
                    for (uint32_t w = 0; w < wpc; w++) tmp[w] = codes[kvl_k_code(hb, w, c, b, G, D)];
                    for (uint32_t t = 0; t < G; t++) {
                        uint32_t q = get_code(tmp, kvl_k_bit(t, b), b, wpc);
                        PUT(kvl_f16(h, blk * G + t, c, T, D), (float)q * meta_scale(mv) + meta_min(mv));
                    }
                }
    } else {
        const uint64_t wpt = kvl_v_wpt(b, D);
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t t = 0; t < T; t++)
                for (uint32_t d = 0; d < D; d++) {
                    const uint64_t ht = kvl_v_slot(h, t, T);
                    uint32_t mv = meta[kvl_v_meta(ht, d / G, D, G)];
                    uint32_t q = get_code(codes + kvl_v_code(ht, 0, b, D), kvl_v_bit(d, b), b, wpt);
                    PUT(kvl_f16(h, t, d, T, D), (float)q * meta_scale(mv) + meta_min(mv));
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
