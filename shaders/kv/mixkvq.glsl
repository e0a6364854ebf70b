// MixKVQ (src/kv/kv_policy_mixkvq.c, docs/KVCACHE.md "MixKVQ"): what its kernels
// share. The layout of the policy's data is in src/kv/kv_layout.h (kvl_mix_*):
// a key block is a region of budget G / 32 words (FP16 channels, then 4-bit, then
// 2-bit, each channel-minor and in channel order), its scale/min per permuted
// position, and a tier map of two D-bit masks (FP16, 4-bit).
#extension GL_GOOGLE_include_directive : require
#include "kv/kv_layout.h"

float mixkvq_h2f(uint h) { return unpackHalf2x16(h).x; }

// The smallest FP16 value >= v (v >= 0, finite), whatever rounding packHalf2x16 uses
// (vkm_f16_ceil on the CPU).
uint mixkvq_f16_ceil(float v)
{
    uint h = packHalf2x16(vec2(v, 0.0)) & 0xffffu;
    if (mixkvq_h2f(h) < v) h += 1u;
    else if (h > 0u && mixkvq_h2f(h - 1u) >= v) h -= 1u;
    return h;
}

// 1 / (2^b - 1) in fp32, as the CPU's table (kvquant_ref.c): b = 2 or 4.
float mixkvq_inv_maxq(uint b) { return b == 2u ? uintBitsToFloat(0x3eaaaaabu) : uintBitsToFloat(0x3d888889u); }

// One value's code at b bits given the stored scale and min (vkm_kvq_code; the rule of
// shaders/kv/kvq.glsl with the width as an argument).
uint mixkvq_code(float x, float s, float m, uint b)
{
    if (s == 0.0) return 0u;
    const int maxq = int((1u << b) - 1u);
    float inv = 1.0 / s;
    precise float d = x - m;
    int q = int(floor(d * inv + 0.5));
    q = clamp(q, 0, maxq);
    precise float lo = (float(q) - 0.5) * s;
    precise float hi = (float(q) + 0.5) * s;
    if (q > 0 && d < lo) q -= 1;
    else if (q < maxq && d >= hi) q += 1;
    return uint(q);
}
