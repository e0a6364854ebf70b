// Shared definitions of the KV quantization format; the layouts are in src/kv/kv_layout.h.
//
// Rounding rule (identical in src/kv/kvquant_ref.c):
//   m = min of the group (an FP16 value, stored exactly)
//   s = the smallest FP16 value >= (max - min) * (1 / (2^b - 1)), computed in fp32
//   q = the integer k in [0, 2^b-1] with (k - 0.5)*s <= x - m < (k + 0.5)*s  (round half up),
//       every product and difference evaluated in fp32, which Vulkan rounds exactly;
//       q = 0 when s == 0 (a constant group reconstructs exactly).
//   x' = q*s + m
// The reciprocal 1/s is only an estimate (GPU division is not exact); one
// correction step against the exact thresholds makes the result deterministic.

#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "kv/kv_layout.h"

layout(constant_id = 1) const uint BITS = 2;
layout(constant_id = 2) const uint GROUP = 32;
layout(constant_id = 3) const uint HEAD_DIM = 128;

const uint MAXQ = (1u << BITS) - 1u;

// Where the kernels read and write, so that the cache can quantize from its
// FP16 ring and dequantize into any token range (all counts in tokens, or in
// blocks of GROUP tokens for the key store):
//   n_tokens   tokens to process per head (a multiple of GROUP for keys)
//   in_stride  per-head stride of the input:  tokens (FP16 x, value codes) or blocks (key codes)
//   in_off     first input token / block of each head
//   out_stride per-head stride of the output: tokens (FP16 y, value codes) or blocks (key codes)
//   out_off    first output token / block of each head
layout(push_constant) uniform KvqPush {
    uint n_heads, n_tokens, in_stride, in_off, out_stride, out_off, pad0, pad1;
} pc;

float kvq_inv_maxq()
{
    return BITS == 2u ? (1.0 / 3.0) : BITS == 3u ? (1.0 / 7.0) : BITS == 4u ? (1.0 / 15.0) : (1.0 / 255.0);
}

float h2f(uint h) { return unpackHalf2x16(h).x; }

// The smallest FP16 value >= v (v >= 0, finite), whatever rounding packHalf2x16 uses.
uint f16_ceil(float v)
{
    uint h = packHalf2x16(vec2(v, 0.0)) & 0xffffu;
    if (h2f(h) < v) h += 1u;
    else if (h > 0u && h2f(h - 1u) >= v) h -= 1u;
    return h;
}

// Quantize one value given the stored scale/min.
uint kvq_code(float x, float s, float m, float inv)
{
    if (s == 0.0) return 0u;
    precise float d = x - m;
    int q = int(floor(d * inv + 0.5));
    q = clamp(q, 0, int(MAXQ));
    precise float lo = (float(q) - 0.5) * s;
    precise float hi = (float(q) + 0.5) * s;
    if (q > 0 && d < lo) q -= 1;
    else if (q < int(MAXQ) && d >= hi) q += 1;
    return uint(q);
}

// `bits` bits starting at bit `off` (0..31) of the pair (w0, w1).
uint kvq_extract(uint w0, uint w1, uint off)
{
    return kvl_extract(w0, w1, off, BITS);
}

// FP16 scale and min of a meta word, as floats.
float kvq_scale(uint mv) { return h2f(kvl_meta_scale(mv)); }
float kvq_min(uint mv) { return h2f(kvl_meta_min(mv)); }
