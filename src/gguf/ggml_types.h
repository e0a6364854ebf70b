/* ggml tensor types: pinned ids, block geometry, CPU dequantizers and
 * reference quantizers for the types vkmix runs.
 *
 * Type ids are ggml's (ggml/include/ggml.h), which are written into GGUF files
 * and never change. Ids ggml retired (4, 5, 31-33, 36-38) are "undefined": a
 * GGUF tensor with such a type, or with an id past the last one listed here, is
 * rejected by the reader. Every other id is "known": the reader accepts it and
 * knows its block geometry, but only the "supported" ones can be dequantized
 * here or loaded by vkmix (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K).
 *
 * Block layouts (all little-endian, packed, no padding; "half" is IEEE fp16):
 *   Q8_0  32 elems, 34 B: half d; int8 qs[32];               x[i] = d*qs[i]
 *   Q4_0  32 elems, 18 B: half d; uint8 qs[16];              x[i]    = d*((qs[i] & 15) - 8)
 *                                                            x[i+16] = d*((qs[i] >> 4) - 8)   (i < 16)
 *   Q4_K 256 elems, 144 B: half d; half dmin; uint8 scales[12]; uint8 qs[128];
 *         eight sub-blocks of 32 with a 6-bit scale sc[j] and 6-bit min m[j]:
 *           j < 4:  sc[j] = scales[j] & 63,               m[j] = scales[j+4] & 63
 *           j >= 4: sc[j] = (scales[j+4] & 15) | ((scales[j-4] >> 6) << 4)
 *                   m[j]  = (scales[j+4] >> 4) | ((scales[j]   >> 6) << 4)
 *         for c in 0..3 (64-element chunks), l in 0..31, q = qs + 32*c:
 *           x[64c + l]      = d*sc[2c]   * (q[l] & 15) - dmin*m[2c]
 *           x[64c + 32 + l] = d*sc[2c+1] * (q[l] >> 4) - dmin*m[2c+1]
 *   Q6_K 256 elems, 210 B: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d;
 *         for h in 0..1 (128-element halves), l in 0..31, with
 *         L = ql + 64h, H = qh + 32h, S = scales + 8h, y = x + 128h, s = l/16:
 *           y[l]      = d*S[s]   * (((L[l]    & 15) | (((H[l] >> 0) & 3) << 4)) - 32)
 *           y[l + 32] = d*S[s+2] * (((L[l+32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32)
 *           y[l + 64] = d*S[s+4] * (((L[l]    >> 4) | (((H[l] >> 4) & 3) << 4)) - 32)
 *           y[l + 96] = d*S[s+6] * (((L[l+32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32)
 *         (so element e of the block uses scales[e/16]).
 *   F32 4 B, F16 2 B, BF16 2 B (the top 16 bits of an fp32) per element.
 *
 * Blocks in a file are only 2-byte aligned at best (34-byte Q8_0 blocks), and
 * a file with general.alignment = 1 gives no alignment at all: the functions
 * here read bytes, never cast to wider types, so any source address works.
 */
#ifndef VKM_GGML_TYPES_H
#define VKM_GGML_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"

typedef enum vkm_ggml_type {
    VKM_GGML_F32 = 0,
    VKM_GGML_F16 = 1,
    VKM_GGML_Q4_0 = 2,
    VKM_GGML_Q4_1 = 3,
    /* 4 (Q4_2) and 5 (Q4_3) were removed from ggml */
    VKM_GGML_Q5_0 = 6,
    VKM_GGML_Q5_1 = 7,
    VKM_GGML_Q8_0 = 8,
    VKM_GGML_Q8_1 = 9,
    VKM_GGML_Q2_K = 10,
    VKM_GGML_Q3_K = 11,
    VKM_GGML_Q4_K = 12,
    VKM_GGML_Q5_K = 13,
    VKM_GGML_Q6_K = 14,
    VKM_GGML_Q8_K = 15,
    VKM_GGML_IQ2_XXS = 16,
    VKM_GGML_IQ2_XS = 17,
    VKM_GGML_IQ3_XXS = 18,
    VKM_GGML_IQ1_S = 19,
    VKM_GGML_IQ4_NL = 20,
    VKM_GGML_IQ3_S = 21,
    VKM_GGML_IQ2_S = 22,
    VKM_GGML_IQ4_XS = 23,
    VKM_GGML_I8 = 24,
    VKM_GGML_I16 = 25,
    VKM_GGML_I32 = 26,
    VKM_GGML_I64 = 27,
    VKM_GGML_F64 = 28,
    VKM_GGML_IQ1_M = 29,
    VKM_GGML_BF16 = 30,
    /* 31-33 (Q4_0_4_4, Q4_0_4_8, Q4_0_8_8) were removed from GGUF files */
    VKM_GGML_TQ1_0 = 34,
    VKM_GGML_TQ2_0 = 35,
    /* 36-38 (IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8) were removed */
    VKM_GGML_MXFP4 = 39,
    VKM_GGML_NVFP4 = 40,
    VKM_GGML_Q1_0 = 41,
    VKM_GGML_Q2_0 = 42,
    VKM_GGML_TYPE_COUNT = 43  /* one past the last id this table knows */
} vkm_ggml_type;

#define VKM_QK8_0 32
#define VKM_QK4_0 32
#define VKM_QK_K 256
#define VKM_Q8_0_BYTES 34   /* half d; int8 qs[32] */
#define VKM_Q4_0_BYTES 18   /* half d; uint8 qs[16] */
#define VKM_Q4_K_BYTES 144  /* half d, dmin; uint8 scales[12]; uint8 qs[128] */
#define VKM_Q6_K_BYTES 210  /* uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d */

typedef struct vkm_ggml_type_info {
    const char *name;     /* ggml's name: "f32", "q8_0", "q4_K", ... */
    uint32_t block_size;  /* elements per block */
    uint32_t type_size;   /* bytes per block */
    int supported;        /* 1: vkmix can load, dequantize and quantize it */
} vkm_ggml_type_info;

/* Geometry of a type id; NULL when ggml does not define the id. */
const vkm_ggml_type_info *vkm_ggml_type_get(uint32_t type);
/* Name of a type id; "unknown" when ggml does not define it. */
const char *vkm_ggml_type_name(uint32_t type);
/* 1 when vkmix supports the type (see the list above), else 0. */
int vkm_ggml_type_supported(uint32_t type);

/* Bytes of a row of n elements of `type`.
 * VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE: the id is undefined;
 * VKMIX_ERROR_GGUF_BAD_VALUE: n < 0 or n is not a multiple of the block size;
 * VKMIX_ERROR_GGUF_OVERFLOW: the byte count does not fit in uint64. */
vkmix_error vkm_ggml_row_size(uint32_t type, int64_t n, uint64_t *bytes);

/* Bytes of a tensor of shape ne[0..3] (every ne[i] >= 1; rows are ne[0] long),
 * with the same errors as vkm_ggml_row_size, plus OVERFLOW when the element
 * count does not fit in int64 or the byte count in uint64. */
vkmix_error vkm_ggml_tensor_size(uint32_t type, const int64_t ne[4], uint64_t *bytes);

/* Dequantize n elements (a whole number of blocks) starting at src into dst.
 * src holds vkm_ggml_row_size(type, n) bytes in the file layout; any alignment.
 * VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE for a type that is not supported,
 * VKMIX_ERROR_INVALID_ARGUMENT for NULL pointers or a bad n. */
vkmix_error vkm_ggml_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Reference quantizer: n elements of fp32 (a whole number of blocks) into the
 * file layout of `type` (vkm_ggml_row_size bytes at dst, any alignment).
 * Same errors as vkm_ggml_dequantize_row. Non-finite inputs give unspecified
 * (but memory-safe) output. Fitting:
 *   F16/BF16: round to nearest even.
 *   Q8_0: d = max|x|/127 (fp16), q = round(x/d).
 *   Q4_0: as ggml: d = -m/8 where m is the element of largest magnitude,
 *         q = clamp(round(x/d) + 8, 0, 15).
 *   Q4_K: per sub-block min/max, min clamped to <= 0; 6-bit scales and mins
 *         rounded up so that every value is inside the representable range;
 *         error <= d*sc/2 per element.
 *   Q6_K: per 16-element sub-block symmetric abs-max; scale rounded up so
 *         |q| <= 31; error <= d*sc/2 per element. */
vkmix_error vkm_ggml_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* fp32 <-> bf16 (round to nearest even; NaN stays a quiet NaN). */
uint16_t vkm_f32_to_bf16(float f);
float vkm_bf16_to_f32(uint16_t h);

#endif /* VKM_GGML_TYPES_H */
