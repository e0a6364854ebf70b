#version 450
// Combine the split-K partials of kvq_decode.comp and attn_decode.comp:
//   M = max_s m_s,  w_s = e^(m_s - M),  out = sum_s w_s acc_s / sum_s w_s l_s
// One workgroup per (query head, chunk of CW channels, sequence of the batch).
// The workgroup is LANES x CW: lane j takes the splits j, j + LANES, ... and
// issues 4 loads before using them (the loads of one split are coalesced
// across the CW channels); the lanes meet in shared memory at the end.
// in : part[split][n_head][HEAD_DIM + 2] (acc, m, l), the sequence's splits from
//      part_base on          out: o[row][n_head][HEAD_DIM] f32
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "attn_seq.glsl"

layout(local_size_x_id = 0) in;                  // a multiple of CW, power of two
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(constant_id = 2) const uint MAX_SPLITS = 257;
layout(constant_id = 3) const uint CW = 32;      // channels per workgroup (divides HEAD_DIM or equals it)
layout(std430, binding = 1) restrict readonly buffer Part { float part[]; };
layout(std430, binding = 2) restrict writeonly buffer Out { float o[]; };
layout(push_constant) uniform P { uint seq0, n_head; } pc;

const uint WG = gl_WorkGroupSize.x;
const uint LANES = WG / CW;

shared float s_w[MAX_SPLITS];
shared float s_red[WG];

void main()
{
    const uint qh = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    AttnSeq sq = seqs[pc.seq0 + gl_WorkGroupID.z];
    const uint n = min(sq.n_qsplits + sq.n_fsplits, MAX_SPLITS);
    const uint stride = pc.n_head * (HEAD_DIM + 2u), base = sq.part_base * stride + qh * (HEAD_DIM + 2u);
    const float NEG = -1.0 / 0.0;
    // M
    float m = NEG;
    for (uint s = t; s < n; s += WG) m = max(m, part[base + s * stride + HEAD_DIM]);
    s_red[t] = m;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1u) {
        if (t < w) s_red[t] = max(s_red[t], s_red[t + w]);
        barrier();
    }
    const float M = s_red[0];
    barrier();
    // weights and L
    float l = 0.0;
    for (uint s = t; s < n; s += WG) {
        float ms = part[base + s * stride + HEAD_DIM];
        float w = ms > NEG ? exp(ms - M) : 0.0;
        s_w[s] = w;
        l += w * part[base + s * stride + HEAD_DIM + 1u];
    }
    s_red[t] = l;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1u) {
        if (t < w) s_red[t] += s_red[t + w];
        barrier();
    }
    const float L = s_red[0];
    barrier();
    // weighted sum of the accumulators: lane j, channel d of the chunk
    const uint lane = t / CW, d = gl_WorkGroupID.y * CW + t % CW;
    float a = 0.0;
    if (d < HEAD_DIM) {
        uint s = lane;
        for (; s + 3u * LANES < n; s += 4u * LANES) {
            float v0 = part[base + s * stride + d], v1 = part[base + (s + LANES) * stride + d];
            float v2 = part[base + (s + 2u * LANES) * stride + d], v3 = part[base + (s + 3u * LANES) * stride + d];
            a += s_w[s] * v0 + s_w[s + LANES] * v1 + s_w[s + 2u * LANES] * v2 + s_w[s + 3u * LANES] * v3;
        }
        for (; s < n; s += LANES) a += s_w[s] * part[base + s * stride + d];
    }
    s_red[t] = a;
    barrier();
    if (lane == 0u && d < HEAD_DIM) {
        float sum = 0.0;
        for (uint j = 0u; j < LANES; j++) sum += s_red[j * CW + t];
        o[(sq.q_row * pc.n_head + qh) * HEAD_DIM + d] = L > 0.0 ? sum / L : 0.0;
    }
}
