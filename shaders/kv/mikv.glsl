// MiKV (src/kv/kv_policy_mikv.c): what its kernels share. The layout of the
// policy's data is in src/kv/kv_layout.h (kvl_mikv_*, kvl_ring_score,
// kvl_head_channel); every MiKV array of a layer lives in one u32 buffer, `aux`,
// at word offsets the host passes in push constants.
#extension GL_GOOGLE_include_directive : require
#include "kv/kv_layout.h"

float mikv_h2f(uint h) { return unpackHalf2x16(h).x; }

// The FP16 bit pattern nearest to v, ties to even (vkmix_f32_to_f16 on the CPU),
// whatever rounding packHalf2x16 uses (Vulkan leaves it to the driver). v finite
// and within the FP16 range.
uint mikv_f16_rte(float v)
{
    uint h = packHalf2x16(vec2(v, 0.0)) & 0xffffu;
    float a = mikv_h2f(h);
    if (a == v) return h;
    // the other candidate: one step of magnitude towards v (sign-magnitude encoding)
    uint o = abs(v) > abs(a) ? h + 1u : h - 1u;   // |a| > |v| >= 0: a is not a zero
    precise float da = abs(v - a), db = abs(v - mikv_h2f(o));
    if (db < da || (db == da && (o & 1u) == 0u)) return o;
    return h;
}
