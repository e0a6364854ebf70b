#version 450
// MixKVQ: key blocks leave the FP16 window. One workgroup per (block, KV head):
//   1. per channel: min and max over the block's G keys (FP16, from the ring), the
//      importance I_d = (sum of the query blocks of positions [e_b - Q, e_b)) * rcp,
//      rcp = fp32(1 / (Q NREP)), and the salience A_d = I_d ((max - min) * fp32(1/3));
//   2. the tiers (vkm_mixkvq_tiers): the 2D upgrades (2->4: key 12 A_d, 2 bits; 4->16:
//      key A_d, 12 bits) ranked in parallel by the CPU's order (decreasing key, then
//      2->4 first, then the lower channel), then taken in that order by one invocation
//      while they fit in the budget (and, with thresholds, when they allow them);
//   3. the packed block: tier map, scale/min per permuted position, codes (FP16
//      channels: the FP16 bit patterns).
// Every fp32 operation is `precise` and in the CPU's order, so the tiers match the CPU
// simulation bit for bit.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "mixkvq.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint G = 32;
layout(constant_id = 2) const uint D = 64;

const uint WG = gl_WorkGroupSize.x;
const uint MW = (D + 31u) / 32u;

layout(std430, binding = 0) restrict readonly buffer KR { float16_t kring[]; };  // [H][ring][D]
layout(std430, binding = 1) restrict readonly buffer QS { float qstat[]; };      // kvl_mix_qstat
layout(std430, binding = 2) restrict writeonly buffer KC { uint kcodes[]; };     // regions
layout(std430, binding = 3) restrict writeonly buffer KM { uint kmeta[]; };      // kvl_mix_meta
layout(std430, binding = 4) restrict writeonly buffer MP { uint kmap[]; };       // kvl_mix_map

layout(push_constant) uniform P {
    uint S, ring, b0, n_blocks, R, Q, n_qblocks, budget, region_words;
    float rcp, t16, t4;
} pc;

shared float s_mn[D];
shared float s_mx[D];
shared float s_A[D];
shared uint s_ord[2u * D];   // upgrade index (2 d + step) by rank
shared uint s_bits[D];
shared uint s_pos[D];        // permuted position of channel d
shared uint s_n16, s_n4;

float up_key(uint u) { return (u & 1u) == 0u ? 12.0 * s_A[u >> 1u] : s_A[u >> 1u]; }

// Upgrade x before upgrade y in the CPU's order (upgrade_cmp).
bool before(uint x, uint y)
{
    precise float kx = up_key(x), ky = up_key(y);
    if (kx != ky) return kx > ky;
    if ((x & 1u) != (y & 1u)) return (x & 1u) < (y & 1u);
    return (x >> 1u) < (y >> 1u);
}

void main()
{
    const uint blk = pc.b0 + gl_WorkGroupID.x, h = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint hb = uint(kvl_k_block(h, blk, pc.n_blocks));
    const uint slot0 = uint(kvl_ring_slot(pc.S + blk * G, pc.S, pc.ring));   // a block never wraps: ring % G == 0
    const uint last_qb = blk + pc.R / G, first_qb = last_qb + 1u - pc.Q / G;
    // 1. statistics and salience
    for (uint d = tid; d < D; d += WG) {
        float mn = float(kring[kvl_f16(h, slot0, d, pc.ring, D)]), mx = mn;
        for (uint t = 1u; t < G; t++) {
            float v = float(kring[kvl_f16(h, slot0 + t, d, pc.ring, D)]);
            mn = min(mn, v);
            mx = max(mx, v);
        }
        precise float a = 0.0;
        for (uint qb = first_qb; qb <= last_qb; qb++) a += qstat[uint(kvl_mix_qstat(h, qb, d, pc.n_qblocks, D))];
        precise float imp = a * pc.rcp;
        precise float sens = (mx - mn) * uintBitsToFloat(0x3eaaaaabu);
        precise float A = imp * sens;
        s_mn[d] = mn;
        s_mx[d] = mx;
        s_A[d] = A;
    }
    barrier();
    // 2. the order of the upgrades, then the greedy walk
    for (uint u = tid; u < 2u * D; u += WG) {
        uint r = 0u;
        for (uint x = 0u; x < 2u * D; x++)
            if (x != u && before(x, u)) r++;
        s_ord[r] = u;
    }
    barrier();
    if (tid == 0u) {
        for (uint d = 0u; d < D; d++) s_bits[d] = 2u;
        uint used = 2u * D;
        for (uint i = 0u; i < 2u * D; i++) {
            const uint u = s_ord[i], d = u >> 1u, step = u & 1u, cost = step != 0u ? 12u : 2u;
            const float A = s_A[d];
            if (pc.t16 > 0.0 && !(step != 0u ? A >= pc.t16 : A >= pc.t16 || (pc.t4 > 0.0 && A >= pc.t4))) continue;
            if (used + cost > pc.budget) continue;
            if (step == 0u && s_bits[d] == 2u) {
                s_bits[d] = 4u;
                used += cost;
            } else if (step == 1u && s_bits[d] == 4u) {
                s_bits[d] = 16u;
                used += cost;
            }
        }
        // the permutation the tier map implies: FP16, then 4-bit, then 2-bit, each in channel order
        uint n16 = 0u, n4 = 0u;
        for (uint d = 0u; d < D; d++) {
            n16 += s_bits[d] == 16u ? 1u : 0u;
            n4 += s_bits[d] == 4u ? 1u : 0u;
        }
        uint p16 = 0u, p4 = n16, p2 = n16 + n4;
        for (uint d = 0u; d < D; d++) {
            const uint b = s_bits[d];
            s_pos[d] = b == 16u ? p16++ : b == 4u ? p4++ : p2++;
        }
        s_n16 = n16;
        s_n4 = n4;
    }
    barrier();
    // 3. the packed block
    const uint n16 = s_n16, n4 = s_n4;
    for (uint w = tid; w < 2u * MW; w += WG) {
        const uint which = w / MW, ww = w % MW, want = which == 0u ? 16u : 4u;
        uint m = 0u;
        for (uint i = 0u; i < 32u && ww * 32u + i < D; i++)
            if (s_bits[ww * 32u + i] == want) m |= 1u << i;
        kmap[uint(kvl_mix_map(hb, which, ww, D))] = m;
    }
    for (uint d = tid; d < D; d += WG) {
        const uint b = s_bits[d], p = s_pos[d];
        const uint tier = b == 16u ? 0u : b == 4u ? 1u : 2u;
        const uint j = tier == 0u ? p : tier == 1u ? p - n16 : p - n16 - n4;
        const uint n_t = tier == 0u ? n16 : tier == 1u ? n4 : D - n16 - n4;
        const uint base = uint(kvl_mix_tier_base(hb, pc.region_words, tier, n16, n4, G));
        if (b == 16u) {
            kmeta[uint(kvl_mix_meta(hb, p, D))] = 0u;
            for (uint w = 0u; w < G / 2u; w++) {
                const float x0 = float(kring[kvl_f16(h, slot0 + 2u * w, d, pc.ring, D)]);
                const float x1 = float(kring[kvl_f16(h, slot0 + 2u * w + 1u, d, pc.ring, D)]);
                kcodes[uint(kvl_mix_code(base, w, j, n_t))] = packHalf2x16(vec2(x0, x1));   // exact: FP16 values
            }
            continue;
        }
        const float mn = s_mn[d], mx = s_mx[d];
        precise float range = mx - mn;
        precise float sv = range * mixkvq_inv_maxq(b);
        const uint sh = mixkvq_f16_ceil(sv);
        const uint mh = packHalf2x16(vec2(mn, 0.0)) & 0xffffu;   // exact: mn is an FP16 value
        const float s = mixkvq_h2f(sh), m = mixkvq_h2f(mh);
        kmeta[uint(kvl_mix_meta(hb, p, D))] = kvl_meta(sh, mh);
        const uint per = 32u / b;   // codes per word: b divides 32, no code crosses a word
        for (uint w = 0u; w < G * b / 32u; w++) {
            uint word = 0u;
            for (uint i = 0u; i < per; i++) {
                const float x = float(kring[kvl_f16(h, slot0 + w * per + i, d, pc.ring, D)]);
                word |= mixkvq_code(x, s, m, b) << (i * b);
            }
            kcodes[uint(kvl_mix_code(base, w, j, n_t))] = word;
        }
    }
}
