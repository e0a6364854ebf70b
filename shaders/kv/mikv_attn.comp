#version 450
// MiKV attention over one layer: one workgroup per (KV head, query row, split),
// serving the NREP query heads of the KV head (each key and value is read once);
// row i is the query of position pos0 + i and sees positions 0 .. pos0 + i (the
// decode step is the case of one row; prefill runs one row per workgroup row, the
// history as packed before the step, its own tokens in FP16 as the ring holds
// them). Split z covers positions [z split_len, (z + 1) split_len) and writes its
// partial (max, sum, unnormalized weighted values) for mikv_combine.comp.
// Both tiers in one pass: a packed token reads its block's tier mask; high: its
// row (8 bits per token in groups of VG channels, or FP16), low: the layer's
// codes. Packed keys hold fp16(k b) (the outlier balancer), so they are read
// with q / b; the sinks and the ring are read with q.
// Softmax online over tiles of WG tokens (one score per invocation, then each
// invocation accumulates its channels). For the importance kernel
// (mikv_importance.comp) the raw scores of the ring tokens go to sc[row][head][slot]
// (mikv_combine.comp writes the row's final max and sum).
// A side of 16 bits (KB or VB 16) is one FP16 array of n_ctx positions.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KB = 2;      // key bits (16: FP16 side)
layout(constant_id = 2) const uint VB = 2;      // value bits
layout(constant_id = 3) const uint G = 32;      // group
layout(constant_id = 4) const uint D = 64;      // head_dim
layout(constant_id = 5) const uint VG = 32;     // value group (channels per scale)
layout(constant_id = 6) const uint NREP = 1;    // query heads per KV head
layout(constant_id = 7) const uint KH = 3;      // high rows per (head, block)
layout(constant_id = 8) const uint HB = 8;      // high bits: 8 or 16

const uint WG = gl_WorkGroupSize.x;
const uint MW = (G + 31u) / 32u;
const uint CW = D < WG ? D : WG;          // values: channels side by side
const uint TPC = WG / CW;                  // values: token parts per channel (heads smaller than WG)
const uint DPT = (D + CW - 1u) / CW;       // values: channels per invocation (1 when TPC > 1)

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };            // [rows][n_head][D]
layout(std430, binding = 1) restrict writeonly buffer O { float o[]; };           // unused (mikv_combine writes the output)
layout(std430, binding = 2) restrict readonly buffer KC { uint kcodes[]; };
layout(std430, binding = 3) restrict readonly buffer KM { uint kmeta[]; };
layout(std430, binding = 4) restrict readonly buffer KR { float16_t kring[]; };
layout(std430, binding = 5) restrict readonly buffer KS { float16_t ksinks[]; };
layout(std430, binding = 6) restrict readonly buffer VC { uint vcodes[]; };
layout(std430, binding = 7) restrict readonly buffer VM { uint vmeta[]; };
layout(std430, binding = 8) restrict readonly buffer VR { float16_t vring[]; };
layout(std430, binding = 9) restrict readonly buffer VS { float16_t vsinks[]; };
layout(std430, binding = 10) restrict readonly buffer A { uint aux[]; };
layout(std430, binding = 11) restrict writeonly buffer SC { float sc[]; };

layout(push_constant) uniform P {
    uint S, ring, nq, n_blocks, pos0, n_head, n_ctx, bal_on;
    uint o_mask, o_bal, o_hk, o_hkm, o_hv, o_hvm, o_part;
    float scale;
    uint split_len, n_splits;
} pc;

shared float s_q[NREP * D];     // [head][channel]
shared float s_qb[NREP * D];    // q / b (packed keys)
shared float s_p[NREP * WG];    // [head][token]: the tile's probabilities
shared float s_red[NREP * WG];  // [head][token]: reductions
shared int s_row[WG];
shared float s_acc[TPC > 1u ? NREP * WG : 1u];   // the values' token parts, summed at the end   // the tile's tokens: high row, -1 low tier, -2 FP16

// The high row of token t of head-block hb, or -1 when the token is in the low tier.
int high_row(uint hb, uint t)
{
    uint w = t / 32u, m = aux[pc.o_mask + kvl_mikv_mask(hb, w, G)];
    if ((m >> (t % 32u) & 1u) == 0u) return -1;
    uint r = bitCount(m & ((1u << (t % 32u)) - 1u));
    for (uint i = 0u; i < w; i++) r += bitCount(aux[pc.o_mask + kvl_mikv_mask(hb, i, G)]);
    return int(r);
}

float deq(uint code, uint mv) { return float(code) * mikv_h2f(kvl_meta_scale(mv)) + mikv_h2f(kvl_meta_min(mv)); }

// Channel d of high row r (keys: o_c = o_hk, o_m = o_hkm; values: o_hv, o_hvm).
float high_at(uint oc, uint om, uint r, uint d)
{
    if (HB >= 16u) {
        vec2 x = unpackHalf2x16(aux[oc + kvl_v_code(r, d / 2u, 16u, D)]);
        return (d & 1u) == 0u ? x.x : x.y;
    }
    uint code = aux[oc + kvl_v_code(r, d / 4u, 8u, D)] >> (8u * (d % 4u)) & 255u;
    return deq(code, aux[om + kvl_v_meta(r, d / VG, D, VG)]);
}

// The token's raw scores for the NREP heads into s_red[r WG + tid] (times scale); sets row to
// its high row, -1 (low tier) or -2 (FP16: sinks, ring, a 16-bit side).
void key_dots(uint h, uint p, uint tid, out int row)
{
    float acc[NREP];
    for (uint r = 0u; r < NREP; r++) acc[r] = 0.0;
    row = -2;
    if (KB < 16u || VB < 16u) {
        if (p >= pc.S && p - pc.S < pc.nq * G) {
            uint t = p - pc.S;
            row = high_row(kvl_k_block(h, t / G, pc.n_blocks), t % G);
        }
    }
    if (KB >= 16u) {
        for (uint d = 0u; d < D; d++) {
            float x = float(kring[kvl_f16(h, p, d, pc.n_ctx, D)]);
            for (uint r = 0u; r < NREP; r++) acc[r] += s_q[r * D + d] * x;
        }
    } else if (p < pc.S) {
        for (uint d = 0u; d < D; d++) {
            float x = float(ksinks[kvl_f16(h, p, d, pc.S, D)]);
            for (uint r = 0u; r < NREP; r++) acc[r] += s_q[r * D + d] * x;
        }
    } else if (p - pc.S >= pc.nq * G) {
        uint slot = (p - pc.S) % pc.ring;
        for (uint d = 0u; d < D; d++) {
            float x = float(kring[kvl_f16(h, slot, d, pc.ring, D)]);
            for (uint r = 0u; r < NREP; r++) acc[r] += s_q[r * D + d] * x;
        }
    } else {
        uint t = p - pc.S, b = t / G, tt = t % G, hb = kvl_k_block(h, b, pc.n_blocks);
        if (row >= 0) {
            uint hr = uint(kvl_mikv_row(hb, uint(row), KH));
            for (uint d = 0u; d < D; d++) {
                float x = high_at(pc.o_hk, pc.o_hkm, hr, d);
                for (uint r = 0u; r < NREP; r++) acc[r] += s_qb[r * D + d] * x;
            }
        } else {
            uint bit = uint(kvl_k_bit(tt, KB)), w = bit / 32u, off = bit % 32u;
            for (uint d = 0u; d < D; d++) {
                uint w0 = kcodes[kvl_k_code(hb, w, d, KB, G, D)];
                uint w1 = off + KB > 32u ? kcodes[kvl_k_code(hb, w + 1u, d, KB, G, D)] : 0u;
                float x = deq(kvl_extract(w0, w1, off, KB), kmeta[kvl_k_meta(hb, d, D)]);
                for (uint r = 0u; r < NREP; r++) acc[r] += s_qb[r * D + d] * x;
            }
        }
    }
    for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] = acc[r] * pc.scale;
}

float value_at(uint h, uint p, uint d, int row)
{
    if (VB >= 16u) return float(vring[kvl_f16(h, p, d, pc.n_ctx, D)]);
    if (p < pc.S) return float(vsinks[kvl_f16(h, p, d, pc.S, D)]);
    uint t = p - pc.S;
    if (t >= pc.nq * G) return float(vring[kvl_f16(h, t % pc.ring, d, pc.ring, D)]);
    uint b = t / G, tt = t % G, hb = kvl_k_block(h, b, pc.n_blocks);
    if (row >= 0) return high_at(pc.o_hv, pc.o_hvm, uint(kvl_mikv_row(hb, uint(row), KH)), d);
    uint ht = kvl_v_slot(h, b * G + tt, pc.n_blocks * G);
    uint bit = uint(kvl_v_bit(d, VB)), w = bit / 32u, off = bit % 32u;
    uint w0 = vcodes[kvl_v_code(ht, w, VB, D)];
    uint w1 = off + VB > 32u ? vcodes[kvl_v_code(ht, w + 1u, VB, D)] : 0u;
    return deq(kvl_extract(w0, w1, off, VB), vmeta[kvl_v_meta(ht, d / VG, D, VG)]);
}

void main()
{
    const uint h = gl_WorkGroupID.x, row = gl_WorkGroupID.y, z = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    const uint p_end = pc.pos0 + row + 1u, hq0 = h * NREP;
    const uint t_begin = z * pc.split_len, t_end = min(t_begin + pc.split_len, p_end);
    // partial of query head hq0 + r at pbase + r n_splits (D + 2)
    const uint pbase = pc.o_part + ((row * pc.n_head + hq0) * pc.n_splits + z) * (D + 2u);
    const uint pstride = pc.n_splits * (D + 2u);
    if (t_begin >= p_end) {   // a split past this row's end (prefill rows are of different lengths)
        for (uint i = tid; i < NREP * (D + 2u); i += WG) {
            const uint r = i / (D + 2u), d = i % (D + 2u);
            sc[pbase + r * pstride + d] = d == 0u ? -1.0 / 0.0 : 0.0;
        }
        return;
    }
    for (uint i = tid; i < NREP * D; i += WG) {
        const uint r = i / D, d = i % D;
        float x = q[(row * pc.n_head + hq0 + r) * D + d];
        s_q[i] = x;
        s_qb[i] = KB < 16u && pc.bal_on != 0u ? x / uintBitsToFloat(aux[pc.o_bal + kvl_head_channel(h, d, D)]) : x;
    }
    barrier();
    const uint tail0 = pc.S + pc.nq * G;   // the ring's tokens: positions >= tail0
    float M[NREP], L[NREP], alpha[NREP];
    float acc[NREP * DPT];                 // [head][k]: channel tid % CW + k CW, tokens tid / CW + i TPC
    for (uint r = 0u; r < NREP; r++) {
        M[r] = -1.0 / 0.0;
        L[r] = 0.0;
    }
    for (uint i = 0u; i < NREP * DPT; i++) acc[i] = 0.0;
    for (uint t0 = t_begin; t0 < t_end; t0 += WG) {
        const uint p = t0 + tid;
        int rw = -2;
        if (p < t_end) {
            key_dots(h, p, tid, rw);
            if (p >= tail0)
                for (uint r = 0u; r < NREP; r++)
                    sc[(row * pc.n_head + hq0 + r) * pc.ring + (p - pc.S) % pc.ring] = s_red[r * WG + tid];
        } else
            for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] = -1.0 / 0.0;
        s_row[tid] = rw;
        for (uint r = 0u; r < NREP; r++) s_p[r * WG + tid] = s_red[r * WG + tid];   // the raw scores
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
            const float e = p < t_end ? exp(s_p[r * WG + tid] - Mn[r]) : 0.0;
            s_p[r * WG + tid] = e;
            s_red[r * WG + tid] = e;
        }
        barrier();
        for (uint w = WG / 2u; w > 0u; w /= 2u) {
            if (tid < w)
                for (uint r = 0u; r < NREP; r++) s_red[r * WG + tid] += s_red[r * WG + tid + w];
            barrier();
        }
        for (uint r = 0u; r < NREP; r++) {
            alpha[r] = exp(M[r] - Mn[r]);
            L[r] = L[r] * alpha[r] + s_red[r * WG];
            M[r] = Mn[r];
        }
        const uint nt = min(WG, t_end - t0), part = tid / CW;
        for (uint k = 0u; k < DPT; k++) {
            const uint d = tid % CW + k * CW;
            // (a loop condition `k < DPT && part < TPC` computed wrong results on lavapipe: a break)
            if (d >= D || part >= TPC) break;
            for (uint r = 0u; r < NREP; r++) acc[r * DPT + k] *= alpha[r];
            for (uint j = part; j < nt; j += TPC) {
                const float v = value_at(h, t0 + j, d, s_row[j]);
                for (uint r = 0u; r < NREP; r++) acc[r * DPT + k] += s_p[r * WG + j] * v;
            }
        }
        barrier();
    }
    if (TPC > 1u) {   // DPT == 1: the token parts' sums
        for (uint r = 0u; r < NREP; r++) s_acc[r * WG + tid] = tid / CW < TPC ? acc[r] : 0.0;
        barrier();
        if (tid < CW)
            for (uint r = 0u; r < NREP; r++) {
                float a = 0.0;
                for (uint i = 0u; i < TPC; i++) a += s_acc[r * WG + i * CW + tid];
                acc[r] = a;
            }
    }
    for (uint r = 0u; r < NREP; r++)
        for (uint k = 0u; k < DPT; k++) {
            const uint d = tid + k * CW;
            if (tid < CW && d < D) sc[pbase + r * pstride + 2u + d] = acc[r * DPT + k];
        }
    if (tid == 0u)
        for (uint r = 0u; r < NREP; r++) {
            sc[pbase + r * pstride] = M[r];
            sc[pbase + r * pstride + 1u] = L[r];
        }
}
