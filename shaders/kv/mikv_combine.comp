#version 450
// MiKV attention, the splits merged: one workgroup per (query head, query row)
// reads the n_splits partials of mikv_attn.comp (max, sum, unnormalized weighted
// values), writes the output row and the row's final max and sum (for the
// importance kernel) at sc[o_ml + (row n_head + head) 2].
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;

const uint WG = gl_WorkGroupSize.x;

layout(std430, binding = 0) restrict buffer SC { float sc[]; };
layout(std430, binding = 1) restrict writeonly buffer O { float o[]; };   // [rows][n_head][D]

layout(push_constant) uniform P { uint n_head, n_splits, o_part, o_ml; } pc;

void main()
{
    const uint hq = gl_WorkGroupID.x, row = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint base = pc.o_part + (row * pc.n_head + hq) * pc.n_splits * (D + 2u);
    float M = -1.0 / 0.0;
    for (uint z = 0u; z < pc.n_splits; z++) M = max(M, sc[base + z * (D + 2u)]);
    float L = 0.0;
    for (uint z = 0u; z < pc.n_splits; z++) {
        const float l = sc[base + z * (D + 2u) + 1u];
        if (l > 0.0) L += l * exp(sc[base + z * (D + 2u)] - M);
    }
    for (uint d = tid; d < D; d += WG) {
        float a = 0.0;
        for (uint z = 0u; z < pc.n_splits; z++) {
            const uint zb = base + z * (D + 2u);
            if (sc[zb + 1u] > 0.0) a += sc[zb + 2u + d] * exp(sc[zb] - M);
        }
        o[(row * pc.n_head + hq) * D + d] = a / L;
    }
    if (tid == 0u) {
        sc[pc.o_ml + (row * pc.n_head + hq) * 2u] = M;
        sc[pc.o_ml + (row * pc.n_head + hq) * 2u + 1u] = L;
    }
}
