/* The packed KV quantization format, shared by the CPU reference (kvquant_ref.c),
 * the GPU ops (kvquant.c, shaders/kvq_*.comp) and the cache.
 *
 * Keys   (per channel, groups of G tokens), per head h and block b of G tokens:
 *   codes[h][b][w][c]  uint32, w < G*bits/32, c < head_dim
 *     token t of the block is at bit t*bits of the concatenation of words
 *     w = 0.. of channel c (3-bit codes cross word boundaries).
 *     Channel-minor words let a warp read one word per channel with a
 *     coalesced (or uvec4-wide) load; a block is one contiguous run.
 *   meta[h][b][c]      uint32 = FP16 scale | FP16 min << 16
 * Values (per token, groups of G channels), per head h and token t:
 *   codes[h][t][w]     uint32, w < ceil(head_dim*bits/32); channel d at bit d*bits
 *   meta[h][t][g]      uint32 = FP16 scale | FP16 min << 16, g < head_dim/G
 *
 * The rounding rule is written out in shaders/kvq.glsl. */
#ifndef VKM_KVQUANT_H
#define VKM_KVQUANT_H

#include <stdint.h>

#include "vkmix.h"

/* Words per channel in one key block, and per token in the value codes. */
static inline uint32_t vkm_kvq_k_words_per_block(uint32_t bits, uint32_t group, uint32_t head_dim)
{
    return group * bits / 32u * head_dim;
}
static inline uint32_t vkm_kvq_v_words_per_token(uint32_t bits, uint32_t head_dim)
{
    return (head_dim * bits + 31u) / 32u;
}

/* Checks bits/group/head_dim; writes why into err (may be NULL). */
vkmix_error vkm_kvq_check(const vkmix_kvq_shape *s, char *err, size_t errlen);

/* One value's code under the rounding rule. s, m are the FP16-decoded scale and min. */
uint32_t vkm_kvq_code(float x, float s, float m, uint32_t bits);
/* Dequantize to fp32 (code * scale + min, not rounded to FP16): the math of the fused attention. */
vkmix_error vkm_kvq_dequantize_f32(const vkmix_kvq_shape *s, const uint32_t *codes, const uint32_t *meta, float *y);
/* Smallest FP16 >= v (v >= 0). */
uint16_t vkm_f16_ceil(float v);
/* Scale/min of a group given its min and max (both FP16 values), packed as in meta. */
uint32_t vkm_kvq_meta(float mn, float mx, uint32_t bits);

#endif
