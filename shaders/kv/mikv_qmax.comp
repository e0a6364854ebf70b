#version 450
// MiKV outlier balancer, query side: one invocation per (KV head, channel) keeps
// max |q_d| over the query heads of the GQA group and the query positions
// [S, S + R + G) (the first window). Position S starts the maximum from 0.
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NREP = 1;
layout(constant_id = 2) const uint D = 64;

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };   // [rows][n_head][D]
layout(std430, binding = 1) restrict buffer A { uint aux[]; };

layout(push_constant) uniform P { uint S, R, G, pos0, n_rows, n_head, n_kv, o_qmax; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n_kv * D) return;
    const uint h = i / D, d = i % D, at = pc.o_qmax + kvl_head_channel(h, d, D);
    bool any = false;
    float m = 0.0;
    for (uint r = 0u; r < pc.n_rows; r++) {
        const uint j = pc.pos0 + r;
        if (j < pc.S || j >= pc.S + pc.R + pc.G) continue;
        if (!any) m = j == pc.S ? 0.0 : uintBitsToFloat(aux[at]);
        any = true;
        for (uint k = 0u; k < NREP; k++) m = max(m, abs(q[(r * pc.n_head + h * NREP + k) * D + d]));
    }
    if (any) aux[at] = floatBitsToUint(m);
}
