#version 450
// MiKV, blocks leaving the FP16 window: one workgroup per (aged block, KV head).
//  1. tiers: the KH tokens of the block with the highest importance (ties: the
//     earlier token; vkm_mikv_select) form the tier mask, written to aux;
//  2. staging: the block's keys as the low-tier quantizer must read them, fp16(k b)
//     with the masked tokens replaced by the first unmasked one, into stk
//     ([H][nst G][D], block i at token i G); the masked tokens' rows (keys fp16(k b),
//     values as stored) into FP16 high rows of aux (HB 16) or, for the 8-bit
//     quantizer, into shk and shv ([H][nst KH][D], block i at row i KH).
// The quantize kernels (kvq_quant_k / kvq_quant_v) then pack stk, shk and shv; the low
// values are packed straight from the ring (masked tokens' low codes are unused).
// Every rounding to FP16 is to nearest even (the CPU's vkmix_f32_to_f16).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KB = 2;
layout(constant_id = 2) const uint VB = 2;
layout(constant_id = 3) const uint G = 32;
layout(constant_id = 4) const uint D = 64;
layout(constant_id = 5) const uint KH = 3;
layout(constant_id = 6) const uint HB = 8;

const uint WG = gl_WorkGroupSize.x;
const uint MW = (G + 31u) / 32u;

layout(std430, binding = 0) restrict readonly buffer KR { float16_t kring[]; };
layout(std430, binding = 1) restrict readonly buffer VR { float16_t vring[]; };
layout(std430, binding = 2) restrict buffer A { uint aux[]; };
layout(std430, binding = 3) restrict writeonly buffer SK { float16_t stk[]; };
layout(std430, binding = 4) restrict writeonly buffer SHK { float16_t shk[]; };
layout(std430, binding = 5) restrict writeonly buffer SHV { float16_t shv[]; };

layout(push_constant) uniform P {
    uint S, ring, b0, n_blocks, nst, n_kv, bal_on, o_mask, o_score, o_bal, o_hk, o_hv;
} pc;

shared uint s_mask[MW];
shared uint s_first;

bool masked(uint t) { return (s_mask[t / 32u] >> (t % 32u) & 1u) != 0u; }

float score(uint h, uint slot) { return uintBitsToFloat(aux[pc.o_score + kvl_ring_score(h, slot, pc.ring)]); }

void main()
{
    const uint i = gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint b = pc.b0 + i, hb = kvl_k_block(h, b, pc.n_blocks), slot0 = (b * G) % pc.ring;   // ring % G == 0
    if (tid == 0u) {
        for (uint w = 0u; w < MW; w++) s_mask[w] = 0u;
        for (uint r = 0u; r < KH; r++) {
            uint best = G;
            float bv = 0.0;
            for (uint t = 0u; t < G; t++) {
                if (masked(t)) continue;
                float v = score(h, slot0 + t);
                if (best == G || v > bv) { best = t; bv = v; }   // strict: ties keep the earlier token
            }
            s_mask[best / 32u] |= 1u << (best % 32u);
        }
        uint first = G;
        for (uint t = 0u; t < G && first == G; t++)
            if (!masked(t)) first = t;
        s_first = first;
        for (uint w = 0u; w < MW; w++) aux[pc.o_mask + kvl_mikv_mask(hb, w, G)] = s_mask[w];
    }
    barrier();
    const uint first = s_first;
    for (uint x = tid; x < G * (D / 2u); x += WG) {
        const uint t = x / (D / 2u), d = 2u * (x % (D / 2u)), slot = slot0 + t;
        const bool m = masked(t);
        uint row = 0u;
        if (m) {
            row = bitCount(s_mask[t / 32u] & ((1u << (t % 32u)) - 1u));
            for (uint w = 0u; w < t / 32u; w++) row += bitCount(s_mask[w]);
        }
        if (KB < 16u) {
            float b0 = 1.0, b1 = 1.0;
            if (pc.bal_on != 0u) {
                b0 = uintBitsToFloat(aux[pc.o_bal + kvl_head_channel(h, d, D)]);
                b1 = uintBitsToFloat(aux[pc.o_bal + kvl_head_channel(h, d + 1u, D)]);
            }
            const uint src = m && first < G ? slot0 + first : slot;
            precise float l0 = float(kring[kvl_f16(h, src, d, pc.ring, D)]) * b0;
            precise float l1 = float(kring[kvl_f16(h, src, d + 1u, pc.ring, D)]) * b1;
            stk[kvl_f16(h, i * G + t, d, pc.nst * G, D)] = float16_t(mikv_h2f(mikv_f16_rte(l0)));
            stk[kvl_f16(h, i * G + t, d + 1u, pc.nst * G, D)] = float16_t(mikv_h2f(mikv_f16_rte(l1)));
            if (m) {
                precise float k0 = float(kring[kvl_f16(h, slot, d, pc.ring, D)]) * b0;
                precise float k1 = float(kring[kvl_f16(h, slot, d + 1u, pc.ring, D)]) * b1;
                const uint h0 = mikv_f16_rte(k0), h1 = mikv_f16_rte(k1);
                if (HB >= 16u) aux[pc.o_hk + kvl_v_code(kvl_mikv_row(hb, row, KH), d / 2u, 16u, D)] = h0 | h1 << 16u;
                else {
                    shk[kvl_f16(h, i * KH + row, d, pc.nst * KH, D)] = float16_t(mikv_h2f(h0));
                    shk[kvl_f16(h, i * KH + row, d + 1u, pc.nst * KH, D)] = float16_t(mikv_h2f(h1));
                }
            }
        }
        if (VB < 16u && m) {
            const float16_t v0 = vring[kvl_f16(h, slot, d, pc.ring, D)], v1 = vring[kvl_f16(h, slot, d + 1u, pc.ring, D)];
            if (HB >= 16u)
                aux[pc.o_hv + kvl_v_code(kvl_mikv_row(hb, row, KH), d / 2u, 16u, D)] =
                    packHalf2x16(vec2(float(v0), float(v1)));
            else {
                shv[kvl_f16(h, i * KH + row, d, pc.nst * KH, D)] = v0;
                shv[kvl_f16(h, i * KH + row, d + 1u, pc.nst * KH, D)] = v1;
            }
        }
    }
}
