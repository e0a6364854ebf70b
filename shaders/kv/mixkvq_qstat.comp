#version 450
// MixKVQ query statistics: for every query row of a step (positions pos0 .. pos0 + n - 1,
// after RoPE), per (KV head, channel), the sum of |q_d| over the NREP heads of its GQA
// group (in head order) is added to the sum of its query block (G positions after the
// sinks; positions in order). The first position of a block starts its sum, so a ring
// slot of kvl_mix_qstat is reused without clearing. Positions < S are not counted.
// One invocation per (KV head, channel); the CPU's order of additions (sim_observe).
#extension GL_GOOGLE_include_directive : require
#include "mixkvq.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NREP = 1;
layout(constant_id = 2) const uint D = 64;

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };   // [n][n_head][D]
layout(std430, binding = 1) restrict buffer QS { float qstat[]; };      // kvl_mix_qstat

layout(push_constant) uniform P { uint S, G, pos0, n, n_head, n_kv, n_qblocks; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n_kv * D) return;
    const uint h = i / D, d = i % D;
    for (uint r = 0u; r < pc.n; r++) {
        const uint j = pc.pos0 + r;
        if (j < pc.S) continue;
        precise float a = 0.0;
        for (uint k = 0u; k < NREP; k++) a += abs(q[(r * pc.n_head + h * NREP + k) * D + d]);
        const uint qb = (j - pc.S) / pc.G, at = uint(kvl_mix_qstat(h, qb, d, pc.n_qblocks, D));
        if ((j - pc.S) % pc.G == 0u) {
            qstat[at] = a;
        } else {
            precise float s = qstat[at] + a;
            qstat[at] = s;
        }
    }
}
