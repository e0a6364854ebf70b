#version 450
// Second pass of split-K decode attention: combine the n_split partials of
// each head (scratch[h][split][D + 2]: acc[D], m, l) into
//   out[h][:] = sum_s exp(m_s - M) acc_s / sum_s exp(m_s - M) l_s,  M = max_s m_s.
// One workgroup per head. Spec constants: 0 NT, 1 D.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 128;
layout(std430, binding = 0) restrict readonly buffer S { float part[]; };
layout(std430, binding = 1) restrict writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n_head; uint n_split; } pc;
void main()
{
    const uint h = gl_WorkGroupID.x;
    const uint base = h * pc.n_split * (D + 2u);
    float M = -1.0e30;
    for (uint s = 0u; s < pc.n_split; s++) M = max(M, part[base + s * (D + 2u) + D]);
    float L = 0.0;
    for (uint s = 0u; s < pc.n_split; s++) {
        uint b = base + s * (D + 2u);
        L += exp(part[b + D] - M) * part[b + D + 1u];
    }
    float inv = 1.0 / L;
    for (uint i = gl_LocalInvocationID.x; i < D; i += gl_WorkGroupSize.x) {
        float a = 0.0;
        for (uint s = 0u; s < pc.n_split; s++) {
            uint b = base + s * (D + 2u);
            a += exp(part[b + D] - M) * part[b + i];
        }
        o[h * D + i] = a * inv;
    }
}
