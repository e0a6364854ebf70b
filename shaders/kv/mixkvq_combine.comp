#version 450
// MixKVQ attention, split-K: merges the partials of mixkvq_attn.comp (per split: the
// unnormalized weighted values, the max and the sum of its online softmax; an empty split
// has max -inf and sum 0). One workgroup per (query head, query row).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;

layout(std430, binding = 0) restrict readonly buffer PT { float part[]; };   // [rows][n_head][n_splits][D + 2]
layout(std430, binding = 1) restrict writeonly buffer O { float o[]; };      // [rows][n_head][D]

layout(push_constant) uniform P { uint n_head, n_splits; } pc;

void main()
{
    const uint hq = gl_WorkGroupID.x, row = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
    const uint base = (row * pc.n_head + hq) * pc.n_splits * (D + 2u);
    float M = -1.0 / 0.0;
    for (uint k = 0u; k < pc.n_splits; k++)
        if (part[base + k * (D + 2u) + D + 1u] > 0.0) M = max(M, part[base + k * (D + 2u) + D]);
    float L = 0.0;
    for (uint k = 0u; k < pc.n_splits; k++) {
        const float l = part[base + k * (D + 2u) + D + 1u];
        if (l > 0.0) L += l * exp(part[base + k * (D + 2u) + D] - M);
    }
    for (uint d = tid; d < D; d += gl_WorkGroupSize.x) {
        float a = 0.0;
        for (uint k = 0u; k < pc.n_splits; k++) {
            const float l = part[base + k * (D + 2u) + D + 1u];
            if (l > 0.0) a += part[base + k * (D + 2u) + d] * exp(part[base + k * (D + 2u) + D] - M);
        }
        o[(row * pc.n_head + hq) * D + d] = a / L;
    }
}
