#version 450
// Decode attention over FP16 keys and values: the whole cache of an FP16 layer,
// or the FP16 part (sinks and the ring's newest tokens) of a packed layer. One
// workgroup per (split, KV head, sequence of the batch); the NR query heads that
// share the KV head are computed together, so every key and value is read once
// for all of them. FP32 arithmetic (the bytes, not the instructions, bound it).
// Partials (acc, max, sum) go to the same buffer as kvq_decode.comp's and are
// combined by attn_combine.comp.
//
// A split is fp16_per_split consecutive FP16 tokens of the sequence (sinks
// first, then positions S + nq*G ..), processed in tiles of WG tokens:
//   keys:   invocation i owns token i of the tile and walks its D channels
//           (uvec4 loads, 8 in flight);
//   values: invocation = (token lane, 8-channel chunk); each lane walks the
//           tile's tokens with a stride.
// Spec constants: 0 WG, 1 HEAD_DIM (a multiple of 8), 2 NREP, 3 NR, 4 GROUP, 5 SG_OPS.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_arithmetic : enable
#extension GL_GOOGLE_include_directive : require
#include "attn_seq.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(constant_id = 2) const uint NREP = 4;
layout(constant_id = 3) const uint NR = 4;
layout(constant_id = 4) const uint GROUP = 32;
layout(constant_id = 5) const uint SG_OPS = 0;

layout(std430, binding = 1) restrict readonly buffer Q { float q[]; };       // [rows][n_head][D]
layout(std430, binding = 2) restrict writeonly buffer Part { float part[]; }; // [split][n_head][D + 2]

layout(buffer_reference, std430, buffer_reference_align = 16) restrict readonly buffer Rows { uvec4 w[]; };

layout(push_constant) uniform P {
    uint seq0;
    uint n_head;
    float scale;
} pc;

const uint WG = gl_WorkGroupSize.x;
const uint D = HEAD_DIM;
const uint C8 = D / 8u;                    // uvec4 chunks per row
const uint VL = WG / C8;                   // value token lanes (WG is a multiple of C8)
const uint TILE = WG;

shared vec4 s_q[C8 * 2u * NR];             // [chunk][half][head]: the scaled query
shared float s_p[TILE * NR];               // probabilities of the tile
const uint RED_FLOATS = NR > 8u ? NR * WG : WG * 8u;
shared float s_red[RED_FLOATS];

vec4 lo4(uvec4 w) { return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); }
vec4 hi4(uvec4 w) { return vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)); }

void wg_reduce(inout float v[NR], bool is_max)
{
    const uint t = gl_LocalInvocationID.x;
    if (SG_OPS != 0u) {
        [[unroll]] for (uint r = 0u; r < NR; r++) v[r] = is_max ? subgroupMax(v[r]) : subgroupAdd(v[r]);
        barrier();
        if (subgroupElect())
            [[unroll]] for (uint r = 0u; r < NR; r++) s_red[r * WG + gl_SubgroupID] = v[r];
        barrier();
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            float a = s_red[r * WG];
            for (uint i = 1u; i < gl_NumSubgroups; i++) a = is_max ? max(a, s_red[r * WG + i]) : a + s_red[r * WG + i];
            v[r] = a;
        }
        barrier();
        return;
    }
    barrier();
    [[unroll]] for (uint r = 0u; r < NR; r++) s_red[r * WG + t] = v[r];
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1u) {
        if (t < w)
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                float a = s_red[r * WG + t], b = s_red[r * WG + t + w];
                s_red[r * WG + t] = is_max ? max(a, b) : a + b;
            }
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < NR; r++) v[r] = s_red[r * WG];
    barrier();
}

// uvec4 index of chunk 0 of the row holding position p of KV head h
uint row_of(AttnSeq sq, uint h, uint p, bool is_v, out Rows buf)
{
    bool sink = p < sq.n_sinks;
    buf = Rows(sink ? (is_v ? sq.vsink : sq.ksink) : (is_v ? sq.vring : sq.kring));
    uint row = sink ? h * sq.n_sinks + p : h * sq.n_ring + (p - sq.n_sinks) % sq.n_ring;
    return row * C8;
}

// Chunk vch of the value rows of tokens i0, i0 + VL, i0 + 2 VL, i0 + 3 VL of the tile (clamped to the tile).
void load_values(AttnSeq sq, uint kvh, uint tile0, uint i0, uint vch, uint n_here, out uvec4 w[4])
{
    [[unroll]] for (uint k = 0u; k < 4u; k++) {
        Rows vb;
        uint i = min(i0 + k * VL, n_here - 1u);
        uint rb = row_of(sq, kvh, fp16_pos(sq, tile0 + i, GROUP), true, vb);
        w[k] = vb.w[rb + vch];
    }
}

void main()
{
    const uint t = gl_LocalInvocationID.x;
    const uint hchunks = NREP / NR;
    const uint kvh = gl_WorkGroupID.y / hchunks, h0 = kvh * NREP + (gl_WorkGroupID.y % hchunks) * NR;
    AttnSeq sq = seqs[pc.seq0 + gl_WorkGroupID.z];
    if (gl_WorkGroupID.x >= sq.n_fsplits) return;
    const uint split = sq.n_qsplits + gl_WorkGroupID.x;   // FP16 splits follow the packed ones
    const float NEG = -1.0 / 0.0;

    for (uint i = t; i < C8 * 2u * NR; i += WG) {
        uint r = i % NR, hf = (i / NR) % 2u, ch = i / (2u * NR);
        uint qb = (sq.q_row * pc.n_head + h0 + r) * D + ch * 8u + hf * 4u;
        s_q[i] = vec4(q[qb], q[qb + 1u], q[qb + 2u], q[qb + 3u]) * pc.scale;
    }

    const uint n_fp16 = fp16_count(sq, GROUP);
    const uint first = (split - sq.n_qsplits) * sq.fp16_per_split;
    const uint count = first < n_fp16 ? min(sq.fp16_per_split, n_fp16 - first) : 0u;
    const uint vlane = t / C8, vch = t % C8;

    float run_max[NR], run_sum[NR];
    vec4 acc_lo[NR], acc_hi[NR];
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        run_max[r] = NEG;
        run_sum[r] = 0.0;
        acc_lo[r] = acc_hi[r] = vec4(0.0);
    }
    barrier();

    for (uint base = 0u; base < count; base += TILE) {
        const uint n_here = min(TILE, count - base);
        // ---------------- keys: token t of the tile
        float sc[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) sc[r] = 0.0;
        {
            Rows kb;
            uint p = fp16_pos(sq, first + base + min(t, n_here - 1u), GROUP);
            uint rb = row_of(sq, kvh, p, false, kb);
            for (uint c0 = 0u; c0 < C8; c0 += 16u) {   // 16 loads in flight (256 bytes: a row of 128 channels)
                uvec4 w[16];
                [[unroll]] for (uint k = 0u; k < 16u; k++)
                    if (c0 + k < C8) w[k] = kb.w[rb + c0 + k];
                [[unroll]] for (uint k = 0u; k < 16u; k++) {
                    if (c0 + k >= C8) break;
                    vec4 a = lo4(w[k]), b = hi4(w[k]);
                    [[unroll]] for (uint r = 0u; r < NR; r++)
                        sc[r] += dot(a, s_q[((c0 + k) * 2u) * NR + r]) + dot(b, s_q[((c0 + k) * 2u + 1u) * NR + r]);
                }
            }
        }
        float lmax[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            if (t >= n_here) sc[r] = NEG;
            lmax[r] = sc[r];
        }
        wg_reduce(lmax, true);
        float nm[NR], lsum[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            nm[r] = max(run_max[r], lmax[r]);
            float p = t < n_here ? exp(sc[r] - nm[r]) : 0.0;
            s_p[t * NR + r] = p;
            lsum[r] = p;
        }
        wg_reduce(lsum, false);   // its barriers also publish s_p
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            float corr = exp(run_max[r] - nm[r]);
            run_sum[r] = run_sum[r] * corr + lsum[r];
            run_max[r] = nm[r];
            acc_lo[r] *= corr;
            acc_hi[r] *= corr;
        }
        // ---------------- values: lane vlane, chunk vch
        if (vlane < VL) {
            // batches of 4 tokens; the next batch is loaded before this one is used
            uvec4 nw[4];
            load_values(sq, kvh, first + base, vlane, vch, n_here, nw);
            for (uint i0 = vlane; i0 < n_here; i0 += 4u * VL) {
                uvec4 w[4];
                [[unroll]] for (uint k = 0u; k < 4u; k++) w[k] = nw[k];
                if (i0 + 4u * VL < n_here) load_values(sq, kvh, first + base, i0 + 4u * VL, vch, n_here, nw);
                [[unroll]] for (uint k = 0u; k < 4u; k++) {
                    uint i = i0 + k * VL;
                    if (i >= n_here) break;
                    vec4 a = lo4(w[k]), b = hi4(w[k]);
                    [[unroll]] for (uint r = 0u; r < NR; r++) {
                        float p = s_p[i * NR + r];
                        acc_lo[r] += p * a;
                        acc_hi[r] += p * b;
                    }
                }
            }
        }
        barrier();
    }

    // ---------------- partials: add the lanes, one head at a time
    const uint gsplit = sq.part_base + split;
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        if (vlane < VL) {
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                s_red[vlane * D + vch * 8u + e] = acc_lo[r][e];
                s_red[vlane * D + vch * 8u + 4u + e] = acc_hi[r][e];
            }
        }
        barrier();
        const uint ob = (gsplit * pc.n_head + h0 + r) * (D + 2u);
        for (uint d = t; d < D; d += WG) {
            float v = 0.0;
            for (uint l = 0u; l < VL; l++) v += s_red[l * D + d];
            part[ob + d] = v;
        }
        if (t == 0u) {
            part[ob + D] = run_max[r];
            part[ob + D + 1u] = run_sum[r];
        }
        barrier();
    }
}
