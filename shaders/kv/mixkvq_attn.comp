#version 450
// MixKVQ attention over one layer: one workgroup per (KV head, query row, split): it serves
// the NREP query heads of the KV head's GQA group, so every key and value is read once; row i
// is the query of position pos0 + i and sees positions 0 .. pos0 + i (decode is the
// case of one row; prefill runs one row per workgroup: the history as packed before
// the step, the step's own tokens in FP16 as the ring holds them).
// The workgroup has G invocations and walks tiles of at most G tokens: the sinks, each
// packed key block, the ring. A packed block is read in one pass over its three tiers:
// the invocations first permute q by the block's tier map (FP16 channels, then 4-bit,
// then 2-bit, each in channel order) and load the scale/min of each permuted position;
// then each invocation (one token) runs three partial dot products of uniform width over
// the tiers' words (each word dequantized once for the NREP heads). Values are per token at the layer's width (the per-layer format).
// Softmax online over the tiles. A side of 16 bits (KB or VB 16) is one FP16 array of
// n_ctx positions. Split-K: workgroup z takes tiles [z tps, (z + 1) tps) of its row; with
// one split it writes the output, with several a partial that mixkvq_combine.comp merges.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "mixkvq.glsl"

layout(local_size_x_id = 0) in;                 // G invocations
layout(constant_id = 1) const uint KB = 2;      // the layer's key width (16: an FP16 side)
layout(constant_id = 2) const uint VB = 2;      // value bits
layout(constant_id = 3) const uint G = 32;      // group
layout(constant_id = 4) const uint D = 64;      // head_dim
layout(constant_id = 5) const uint VG = 32;     // value group (channels per scale)
layout(constant_id = 6) const uint NREP = 1;    // query heads per KV head

const uint WG = gl_WorkGroupSize.x;
const uint MW = (D + 31u) / 32u;
const uint DPT = (D + WG - 1u) / WG;

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };            // [rows][n_head][D]
layout(std430, binding = 1) restrict writeonly buffer O { float o[]; };           // [rows][n_head][D]
layout(std430, binding = 2) restrict readonly buffer KC { uint kcodes[]; };       // key regions
layout(std430, binding = 3) restrict readonly buffer KM { uint kmeta[]; };        // kvl_mix_meta
layout(std430, binding = 4) restrict readonly buffer KR { float16_t kring[]; };
layout(std430, binding = 5) restrict readonly buffer KS { float16_t ksinks[]; };
layout(std430, binding = 6) restrict readonly buffer VC { uint vcodes[]; };
layout(std430, binding = 7) restrict readonly buffer VM { uint vmeta[]; };
layout(std430, binding = 8) restrict readonly buffer VR { float16_t vring[]; };
layout(std430, binding = 9) restrict readonly buffer VS { float16_t vsinks[]; };
layout(std430, binding = 10) restrict readonly buffer MP { uint kmap[]; };        // kvl_mix_map
layout(std430, binding = 11) restrict writeonly buffer PT { float part[]; };      // [rows][n_head][n_splits][D + 2]

layout(push_constant) uniform P {
    uint S, ring, nq, n_blocks, pos0, n_head, n_ctx, region_words, n_splits, tiles_per_split;
    float scale;
} pc;

shared float s_q[NREP * D];
shared float s_qp[NREP * D];   // q permuted by the current block's tiers, per head
shared float s_sc[D];          // scale of permuted position p (4- and 2-bit tiers)
shared float s_mn[D];          // min of permuted position p
shared uint s_map[2u * MW];
shared float s_p[NREP * WG];   // probabilities of the tile's tokens, per head
shared float s_red[NREP * WG];

float value_at(uint h, uint p, uint d)
{
    if (VB >= 16u) return float(vring[kvl_f16(h, p, d, pc.n_ctx, D)]);
    if (p < pc.S) return float(vsinks[kvl_f16(h, p, d, pc.S, D)]);
    const uint t = p - pc.S;
    if (t >= pc.nq * G) return float(vring[kvl_f16(h, t % pc.ring, d, pc.ring, D)]);
    const uint ht = uint(kvl_v_slot(h, t, pc.n_blocks * G));
    const uint bit = uint(kvl_v_bit(d, VB)), w = bit / 32u, off = bit % 32u;
    const uint w0 = vcodes[kvl_v_code(ht, w, VB, D)];
    const uint w1 = off + VB > 32u ? vcodes[kvl_v_code(ht, w + 1u, VB, D)] : 0u;
    const uint mv = vmeta[kvl_v_meta(ht, d / VG, D, VG)];
    return float(kvl_extract(w0, w1, off, VB)) * mixkvq_h2f(kvl_meta_scale(mv)) + mixkvq_h2f(kvl_meta_min(mv));
}

float sc[NREP];   // this invocation's token's scores, per head

// q . k of an FP16 token (sinks, ring, or a 16-bit side), for the NREP heads.
void fp16_dot(uint h, uint p)
{
    for (uint r = 0u; r < NREP; r++) sc[r] = 0.0;
    for (uint d = 0u; d < D; d++) {
        float k;
        if (KB >= 16u) k = float(kring[kvl_f16(h, p, d, pc.n_ctx, D)]);
        else if (p < pc.S) k = float(ksinks[kvl_f16(h, p, d, pc.S, D)]);
        else k = float(kring[kvl_f16(h, (p - pc.S) % pc.ring, d, pc.ring, D)]);
        for (uint r = 0u; r < NREP; r++) sc[r] += s_q[r * D + d] * k;
    }
}

// q . k of token t of packed head-block hb for the NREP heads: three uniform partial dot
// products over the permuted channels (s_qp, s_sc, s_mn hold the block's permutation).
void packed_dot(uint hb, uint t, uint n16, uint n4)
{
    const uint n2 = D - n16 - n4;
    for (uint r = 0u; r < NREP; r++) sc[r] = 0.0;
    uint base = uint(kvl_mix_tier_base(hb, pc.region_words, 0u, n16, n4, G));
    {   // FP16: token t at bit 16 t
        const uint w = t / 2u, sh = 16u * (t % 2u);
        for (uint j = 0u; j < n16; j++) {
            const float k = mixkvq_h2f(kcodes[kvl_mix_code(base, w, j, n16)] >> sh & 0xffffu);
            for (uint r = 0u; r < NREP; r++) sc[r] += s_qp[r * D + j] * k;
        }
    }
    base = uint(kvl_mix_tier_base(hb, pc.region_words, 1u, n16, n4, G));
    {   // 4 bits
        const uint w = t / 8u, sh = 4u * (t % 8u);
        for (uint j = 0u; j < n4; j++) {
            const uint p = n16 + j;
            const float k = float(kcodes[kvl_mix_code(base, w, j, n4)] >> sh & 15u) * s_sc[p] + s_mn[p];
            for (uint r = 0u; r < NREP; r++) sc[r] += s_qp[r * D + p] * k;
        }
    }
    base = uint(kvl_mix_tier_base(hb, pc.region_words, 2u, n16, n4, G));
    {   // 2 bits
        const uint w = t / 16u, sh = 2u * (t % 16u);
        for (uint j = 0u; j < n2; j++) {
            const uint p = n16 + n4 + j;
            const float k = float(kcodes[kvl_mix_code(base, w, j, n2)] >> sh & 3u) * s_sc[p] + s_mn[p];
            for (uint r = 0u; r < NREP; r++) sc[r] += s_qp[r * D + p] * k;
        }
    }
}

float M[NREP], L[NREP];     // the running max and sum of each head's softmax
float acc[NREP * DPT];      // the weighted values of this invocation's channels, per head

// The online softmax over one tile of nt tokens starting at position p0 (sc: the scores of
// this invocation's token, unscaled; none when tid >= nt).
void tile_update(uint h, uint p0, uint nt)
{
    const uint tid = gl_LocalInvocationID.x;
    for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] = tid < nt ? sc[r] * pc.scale : -1.0 / 0.0;
    barrier();
    for (uint w = WG / 2u; w > 0u; w /= 2u) {
        if (tid < w)
            for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] = max(s_red[r * WG + tid], s_red[r * WG + tid + w]);
        barrier();
    }
    float Mn[NREP];
    for (uint r = 0u; r < NREP; r++) Mn[r] = max(M[r], s_red[r * WG]);
    barrier();
    for (uint r = 0u; r < NREP; r++) {
        const float e = tid < nt ? exp(sc[r] * pc.scale - Mn[r]) : 0.0;
        s_p[r * WG + tid] = e;
        s_red[r * WG + tid] = e;
    }
    barrier();
    for (uint w = WG / 2u; w > 0u; w /= 2u) {
        if (tid < w)
            for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] += s_red[r * WG + tid + w];
        barrier();
    }
    float alpha[NREP];
    for (uint r = 0u; r < NREP; r++) {
        alpha[r] = exp(M[r] - Mn[r]);
        L[r] = L[r] * alpha[r] + s_red[r * WG];
        M[r] = Mn[r];
    }
    for (uint k = 0u; k < DPT; k++) {
        const uint d = tid + k * WG;
        if (d >= D) break;
        float a[NREP];
        for (uint r = 0u; r < NREP; r++) a[r] = acc[r * DPT + k] * alpha[r];
        for (uint j = 0u; j < nt; j++) {
            const float v = value_at(h, p0 + j, d);
            for (uint r = 0u; r < NREP; r++) a[r] += s_p[r * WG + j] * v;
        }
        for (uint r = 0u; r < NREP; r++) acc[r * DPT + k] = a[r];
    }
    barrier();
}

void main()
{
    const uint h = gl_WorkGroupID.x, row = gl_WorkGroupID.y, split = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const uint p_end = pc.pos0 + row + 1u, qbase = (row * pc.n_head + h * NREP) * D;   // the group's heads are adjacent
    for (uint i = tid; i < NREP * D; i += WG) s_q[i] = q[qbase + i];
    for (uint r = 0u; r < NREP; r++) {
        M[r] = -1.0 / 0.0;
        L[r] = 0.0;
    }
    for (uint k = 0u; k < NREP * DPT; k++) acc[k] = 0.0;
    barrier();
    // the row's tiles: [sinks][packed blocks][ring] (a 16-bit key side: tiles of WG positions)
    const uint ns = KB >= 16u ? 0u : min(pc.S, p_end), n_s = (ns + WG - 1u) / WG;
    const uint nq = KB >= 16u ? 0u : pc.nq, r0 = KB >= 16u ? 0u : pc.S + nq * G;
    const uint n_r = p_end > r0 ? (p_end - r0 + WG - 1u) / WG : 0u, n_tiles = n_s + nq + n_r;
    const uint tau1 = min(n_tiles, (split + 1u) * pc.tiles_per_split);
    for (uint tau = split * pc.tiles_per_split; tau < tau1; tau++) {   // uniform in the workgroup
        if (tau < n_s) {                                                // sinks
            const uint t0 = tau * WG, nt = min(WG, ns - t0);
            if (tid < nt) fp16_dot(h, t0 + tid);
            tile_update(h, t0, nt);
        } else if (tau < n_s + nq) {                                    // a packed block: G tokens
            const uint b = tau - n_s, hb = uint(kvl_k_block(h, b, pc.n_blocks));
            for (uint w = tid; w < 2u * MW; w += WG) s_map[w] = kmap[kvl_mix_map(hb, w / MW, w % MW, D)];
            barrier();
            uint n16 = 0u, n4 = 0u;
            for (uint w = 0u; w < MW; w++) {
                n16 += bitCount(s_map[w]);
                n4 += bitCount(s_map[MW + w]);
            }
            for (uint d = tid; d < D; d += WG) {
                const uint w = d / 32u, below = (1u << (d % 32u)) - 1u;
                const uint m16 = s_map[w], m4 = s_map[MW + w];
                uint r16 = bitCount(m16 & below), r4 = bitCount(m4 & below);
                for (uint i = 0u; i < w; i++) {
                    r16 += bitCount(s_map[i]);
                    r4 += bitCount(s_map[MW + i]);
                }
                const bool is16 = (m16 >> (d % 32u) & 1u) != 0u, is4 = (m4 >> (d % 32u) & 1u) != 0u;
                const uint p = is16 ? r16 : is4 ? n16 + r4 : n16 + n4 + (d - r16 - r4);
                for (uint r = 0u; r < NREP; r++) s_qp[r * D + p] = s_q[r * D + d];
            }
            for (uint p = tid; p < D; p += WG) {
                const uint mv = kmeta[kvl_mix_meta(hb, p, D)];
                s_sc[p] = mixkvq_h2f(kvl_meta_scale(mv));
                s_mn[p] = mixkvq_h2f(kvl_meta_min(mv));
            }
            barrier();
            packed_dot(hb, tid, n16, n4);
            tile_update(h, pc.S + b * G, G);
        } else {                                                        // the ring (or a 16-bit side)
            const uint t0 = r0 + (tau - n_s - nq) * WG, nt = min(WG, p_end - t0);
            if (tid < nt) fp16_dot(h, t0 + tid);
            tile_update(h, t0, nt);
        }
    }
    if (pc.n_splits == 1u) {
        for (uint r = 0u; r < NREP; r++)
            for (uint k = 0u; k < DPT; k++) {
                const uint d = tid + k * WG;
                if (d < D) o[qbase + r * D + d] = acc[r * DPT + k] / L[r];
            }
        return;
    }
    // a split of several: its partial per head (unnormalized values, max, sum; an empty split: -inf, 0)
    for (uint r = 0u; r < NREP; r++) {
        const uint pbase = ((row * pc.n_head + h * NREP + r) * pc.n_splits + split) * (D + 2u);
        for (uint k = 0u; k < DPT; k++) {
            const uint d = tid + k * WG;
            if (d < D) part[pbase + d] = acc[r * DPT + k];
        }
        if (tid == 0u) {
            part[pbase + D] = M[r];
            part[pbase + D + 1u] = L[r];
        }
    }
}
