/* CPU simulation of the cache's quantization (see kv_sim.h). */
#include "ref/kv_sim.h"
#include "kv/kvquant.h"

#include <stdlib.h>

static vkmix_error roundtrip(vkm_ref_state *st, uint32_t l, int is_v, uint32_t bits, uint32_t group, uint32_t pos,
                             uint32_t G, uint16_t *x, float *y, uint32_t *codes, uint32_t *meta, int fp16)
{
    const uint32_t H = st->hp.n_head_kv, D = st->hp.head_dim;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t t = 0; t < G; t++) {
            const float *row = is_v ? vkm_ref_v_at(st, l, pos + t) : vkm_ref_k_at(st, l, pos + t);
            for (uint32_t d = 0; d < D; d++) x[((size_t)h * G + t) * D + d] = vkmix_f32_to_f16(row[h * D + d]);
        }
    vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, bits, group, D, H, G };
    vkmix_error e = vkmix_kvq_quantize_cpu(&sh, x, codes, meta);
    if (e == VKMIX_OK) e = vkm_kvq_dequantize_f32(&sh, codes, meta, y);
    if (e != VKMIX_OK) return e;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t t = 0; t < G; t++) {
            float *row = is_v ? vkm_ref_v_at(st, l, pos + t) : vkm_ref_k_at(st, l, pos + t);
            for (uint32_t d = 0; d < D; d++) {
                float v = y[((size_t)h * G + t) * D + d];
                row[h * D + d] = fp16 ? vkmix_f16_to_f32(vkmix_f32_to_f16(v)) : v;
            }
        }
    return VKMIX_OK;
}

vkmix_error vkm_kv_sim_step(const vkm_kv_config *cfg, vkm_ref_state *st, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    if (!cfg->quantized) return VKMIX_OK;
    const uint32_t G = cfg->group, H = st->hp.n_head_kv, D = st->hp.head_dim;
    uint32_t b0 = vkm_kv_blocks_at(cfg, n_old), b1 = vkm_kv_blocks_at(cfg, n_new);
    if (b1 <= b0) return VKMIX_OK;
    uint16_t *x = malloc((size_t)H * G * D * 2);
    float *y = malloc((size_t)H * G * D * 4);
    uint32_t *codes = malloc((size_t)H * G * D * 4), *meta = malloc((size_t)H * G * D * 4);
    vkmix_error e = x && y && codes && meta ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t b = b0; b < b1 && e == VKMIX_OK; b++)
        for (uint32_t l = 0; l < st->hp.n_layer && e == VKMIX_OK; l++) {
            uint32_t pos = cfg->sinks + b * G;
            if (cfg->k_bits[l] < 16) e = roundtrip(st, l, 0, cfg->k_bits[l], G, pos, G, x, y, codes, meta, fp16_dequant);
            if (e == VKMIX_OK && cfg->v_bits[l] < 16) e = roundtrip(st, l, 1, cfg->v_bits[l], cfg->v_group, pos, G, x, y, codes, meta, fp16_dequant);
        }
    free(x);
    free(y);
    free(codes);
    free(meta);
    return e;
}
