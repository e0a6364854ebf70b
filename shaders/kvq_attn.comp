#version 450
// Fused decode attention over the mixed-precision cache of one layer (split-K,
// flash-decoding): one workgroup per (split of the sequence, KV head). It reads
// the packed keys and values with their scales and mins, the FP16 sinks and the
// FP16 ring, and computes softmax(q K^T * scale) V for the NREP query heads that
// share the KV head (GQA: each key and value is read once for all of them).
// Splits 0..n_splits-2 cover the quantized groups; the last split covers the
// FP16 tokens (sinks and ring). The partial results (running max, sum of
// exponentials, weighted values) are combined by kvq_attn_reduce.comp.
//
// Workgroup size = GROUP. For scores, invocation t owns token t of a group;
// for the weighted sum it owns channels d = t, t + GROUP, ...
//
// Key score with per-channel scale s_c and min m_c:
//   q.k_t = sum_c (q_c s_c) code_{c,t} + sum_c q_c m_c
// so q*s and q.m are computed once per group.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KBITS = 2;
layout(constant_id = 2) const uint VBITS = 2;
layout(constant_id = 3) const uint GROUP = 32;
layout(constant_id = 4) const uint HEAD_DIM = 128;
layout(constant_id = 5) const uint VGROUP = 32;
layout(constant_id = 6) const uint NREP = 1;

const uint KMAX = (1u << KBITS) - 1u;
const uint VMAX = (1u << VBITS) - 1u;
const uint WPCK = GROUP * KBITS / 32u;              // key words per channel per group
const uint WPTV = (HEAD_DIM * VBITS + 31u) / 32u;   // value words per token
const uint NGV = HEAD_DIM / VGROUP;                 // value groups per token
const uint DPT = (HEAD_DIM + GROUP - 1u) / GROUP;   // channels per invocation in the weighted sum

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };          // [n_head][D]
layout(std430, binding = 1) restrict readonly buffer KC { uint kcodes[]; };
layout(std430, binding = 2) restrict readonly buffer KM { uint kmeta[]; };
layout(std430, binding = 3) restrict readonly buffer VC { uint vcodes[]; };
layout(std430, binding = 4) restrict readonly buffer VM { uint vmeta[]; };
layout(std430, binding = 5) restrict readonly buffer KS { float16_t ksinks[]; }; // [H][S][D]
layout(std430, binding = 6) restrict readonly buffer KR { float16_t kring[]; };  // [H][RING][D]
layout(std430, binding = 7) restrict readonly buffer VS { float16_t vsinks[]; };
layout(std430, binding = 8) restrict readonly buffer VR { float16_t vring[]; };
layout(std430, binding = 9) restrict writeonly buffer O { float part[]; };      // [n_head][n_splits][D + 2]

layout(push_constant) uniform P {
    uint n_sinks;          // S
    uint n_ring;           // ring slots
    uint nq;               // quantized groups
    uint n_blocks;         // group capacity of the store (per head)
    uint p_end;            // positions 0..p_end-1 are visible
    uint blocks_per_split;
    uint n_splits;
    float scale;
} pc;

shared float s_q[NREP * HEAD_DIM];
shared float s_qs[NREP * HEAD_DIM];     // q * key scale of the group
shared float s_p[NREP * GROUP];         // probabilities of the group's tokens
shared float s_red[NREP * GROUP];       // reductions
shared float s_vs[NREP * GROUP * NGV];  // p * value scale
shared float s_pm[NREP * NGV];          // sum_t p * value min

float h2f(uint h) { return unpackHalf2x16(h).x; }

uint extract(uint w0, uint w1, uint off, uint bits, uint mask)
{
    uint v = w0 >> off;
    if (off + bits > 32u) v |= w1 << (32u - off);
    return v & mask;
}

float acc[NREP][DPT];
float run_max[NREP], run_sum[NREP];

// Max over the group of each head's score (scores[r] of this invocation), in shared memory.
void group_max(in float sc[NREP], out float m[NREP])
{
    uint t = gl_LocalInvocationID.x;
    [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * GROUP + t] = sc[r];
    barrier();
    for (uint w = GROUP / 2u; w > 0u; w >>= 1u) {
        if (t < w)
            [[unroll]] for (uint r = 0u; r < NREP; r++)
                s_red[r * GROUP + t] = max(s_red[r * GROUP + t], s_red[r * GROUP + t + w]);
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < NREP; r++) m[r] = s_red[r * GROUP];
    barrier();
}

// Online softmax: fold this group's scores in, leave p in s_p, rescale acc.
void fold_scores(in float sc[NREP])
{
    uint t = gl_LocalInvocationID.x;
    float m[NREP];
    group_max(sc, m);
    [[unroll]] for (uint r = 0u; r < NREP; r++) {
        float nm = max(run_max[r], m[r]);
        float corr = exp(run_max[r] - nm);   // run_max = -inf at first: corr = 0
        run_max[r] = nm;
        run_sum[r] *= corr;
        [[unroll]] for (uint j = 0u; j < DPT; j++) acc[r][j] *= corr;
        float p = exp(sc[r] - nm);
        s_p[r * GROUP + t] = p;
        run_sum[r] += p;                     // per-invocation partial, summed at the end
    }
    barrier();
}

void main()
{
    const uint split = gl_WorkGroupID.x, h = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    const uint n_kv = gl_NumWorkGroups.y;
    const float NEG = -1.0 / 0.0;
    for (uint i = t; i < NREP * HEAD_DIM; i += GROUP) s_q[i] = q[(h * NREP) * HEAD_DIM + i];
    [[unroll]] for (uint r = 0u; r < NREP; r++) {
        run_max[r] = NEG;
        run_sum[r] = 0.0;
        [[unroll]] for (uint j = 0u; j < DPT; j++) acc[r][j] = 0.0;
    }
    barrier();

    if (split + 1u < pc.n_splits) {
        // ---------------- quantized groups
        uint b0 = split * pc.blocks_per_split, b1 = min(pc.nq, b0 + pc.blocks_per_split);
        for (uint b = b0; b < b1; b++) {
            uint hb = h * pc.n_blocks + b;
            // q * scale per channel, and q . min per head
            for (uint c = t; c < HEAD_DIM; c += GROUP) {
                float s = h2f(kmeta[hb * HEAD_DIM + c] & 0xffffu);
                [[unroll]] for (uint r = 0u; r < NREP; r++) s_qs[r * HEAD_DIM + c] = s_q[r * HEAD_DIM + c] * s;
            }
            float qm[NREP];
            [[unroll]] for (uint r = 0u; r < NREP; r++) qm[r] = 0.0;
            barrier();
            // scores of token t
            uint bit = t * KBITS, w = bit >> 5u, off = bit & 31u;
            uint kb = hb * WPCK * HEAD_DIM;
            float sc[NREP];
            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = 0.0;
            for (uint c = 0u; c < HEAD_DIM; c++) {
                uint w0 = kcodes[kb + w * HEAD_DIM + c];
                uint w1 = (off + KBITS > 32u) ? kcodes[kb + (w + 1u) * HEAD_DIM + c] : 0u;
                float code = float(extract(w0, w1, off, KBITS, KMAX));
                float mn = h2f(kmeta[hb * HEAD_DIM + c] >> 16);
                [[unroll]] for (uint r = 0u; r < NREP; r++) {
                    sc[r] += s_qs[r * HEAD_DIM + c] * code;
                    qm[r] += s_q[r * HEAD_DIM + c] * mn;
                }
            }
            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = (sc[r] + qm[r]) * pc.scale;
            fold_scores(sc);
            // value scales and mins folded with p: s_vs[r][t][g] = p * s, s_pm[r][g] = sum_t p * m
            uint tok = hb * GROUP + t;
            [[unroll]] for (uint g = 0u; g < NGV; g++) {
                uint mv = vmeta[tok * NGV + g];
                float s = h2f(mv & 0xffffu), m = h2f(mv >> 16);
                [[unroll]] for (uint r = 0u; r < NREP; r++) {
                    float p = s_p[r * GROUP + t];
                    s_vs[(r * GROUP + t) * NGV + g] = p * s;
                    s_red[r * GROUP + t] = p * m;    // reduced below per group g
                }
                barrier();
                for (uint w2 = GROUP / 2u; w2 > 0u; w2 >>= 1u) {
                    if (t < w2)
                        [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * GROUP + t] += s_red[r * GROUP + t + w2];
                    barrier();
                }
                if (t == 0u) [[unroll]] for (uint r = 0u; r < NREP; r++) s_pm[r * NGV + g] = s_red[r * GROUP];
                barrier();
            }
            // weighted sum of the dequantized values: acc[r][d] += sum_t (p s)_t code_{t,d} + (sum_t p m)
            [[unroll]] for (uint j = 0u; j < DPT; j++) {
                uint d = t + j * GROUP;
                if (d < HEAD_DIM) {
                    uint g = d / VGROUP, vbit = d * VBITS, vw = vbit >> 5u, voff = vbit & 31u;
                    float a[NREP];
                    [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] = s_pm[r * NGV + g];
                    for (uint tt = 0u; tt < GROUP; tt++) {
                        uint vb = (hb * GROUP + tt) * WPTV;
                        uint w0 = vcodes[vb + vw];
                        uint w1 = (voff + VBITS > 32u) ? vcodes[vb + vw + 1u] : 0u;
                        float code = float(extract(w0, w1, voff, VBITS, VMAX));
                        [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] += s_vs[(r * GROUP + tt) * NGV + g] * code;
                    }
                    [[unroll]] for (uint r = 0u; r < NREP; r++) acc[r][j] += a[r];
                }
            }
            barrier();
        }
    } else {
        // ---------------- FP16 tokens: sinks [0, S) and the ring [S + nq*G, p_end), in tiles of GROUP
        uint S = min(pc.n_sinks, pc.p_end);
        uint r0 = pc.n_sinks + pc.nq * GROUP;
        uint n_tail = pc.p_end > r0 ? pc.p_end - r0 : 0u;
        uint n_fp16 = S + n_tail;
        for (uint base = 0u; base < n_fp16; base += GROUP) {
            uint i = base + t;
            bool valid = i < n_fp16;
            uint p = i < S ? i : r0 + (i - S);
            float sc[NREP];
            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = NEG;
            if (valid) {
                uint kb = p < pc.n_sinks ? (h * pc.n_sinks + p) * HEAD_DIM
                                         : (h * pc.n_ring + (p - pc.n_sinks) % pc.n_ring) * HEAD_DIM;
                bool sink = p < pc.n_sinks;
                [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = 0.0;
                for (uint c = 0u; c < HEAD_DIM; c++) {
                    float k = sink ? float(ksinks[kb + c]) : float(kring[kb + c]);
                    [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] += s_q[r * HEAD_DIM + c] * k;
                }
                [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] *= pc.scale;
            }
            fold_scores(sc);   // invalid tokens get p = exp(-inf) = 0
            uint n_here = min(GROUP, n_fp16 - base);
            [[unroll]] for (uint j = 0u; j < DPT; j++) {
                uint d = t + j * GROUP;
                if (d < HEAD_DIM) {
                    float a[NREP];
                    [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] = 0.0;
                    for (uint tt = 0u; tt < n_here; tt++) {
                        uint ii = base + tt;
                        uint pp = ii < S ? ii : r0 + (ii - S);
                        float v = pp < pc.n_sinks ? float(vsinks[(h * pc.n_sinks + pp) * HEAD_DIM + d])
                                                  : float(vring[(h * pc.n_ring + (pp - pc.n_sinks) % pc.n_ring) * HEAD_DIM + d]);
                        [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] += s_p[r * GROUP + tt] * v;
                    }
                    [[unroll]] for (uint r = 0u; r < NREP; r++) acc[r][j] += a[r];
                }
            }
            barrier();
        }
    }

    // ---------------- write the partials: sum of exponentials reduced over invocations
    [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * GROUP + t] = run_sum[r];
    barrier();
    for (uint w = GROUP / 2u; w > 0u; w >>= 1u) {
        if (t < w) [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * GROUP + t] += s_red[r * GROUP + t + w];
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < NREP; r++) {
        uint qh = h * NREP + r;
        uint ob = (qh * pc.n_splits + split) * (HEAD_DIM + 2u);
        [[unroll]] for (uint j = 0u; j < DPT; j++) {
            uint d = t + j * GROUP;
            if (d < HEAD_DIM) part[ob + d] = acc[r][j];
        }
        if (t == 0u) {
            part[ob + HEAD_DIM] = run_max[r];
            part[ob + HEAD_DIM + 1u] = s_red[r * GROUP];
        }
    }
}
