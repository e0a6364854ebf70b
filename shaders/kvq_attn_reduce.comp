#version 450
// Combine the split-K partials of kvq_attn.comp: one workgroup per query head.
//   M = max_s m_s,  out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s
// in : part[n_head][n_splits][HEAD_DIM + 2] (acc, m, l)    out: o[n_head][HEAD_DIM] f32
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(std430, binding = 0) restrict readonly buffer Part { float part[]; };
layout(std430, binding = 1) restrict writeonly buffer Out { float o[]; };
layout(push_constant) uniform P { uint n_splits; } pc;

void main()
{
    uint qh = gl_WorkGroupID.x;
    uint base = qh * pc.n_splits * (HEAD_DIM + 2u);
    float M = -1.0 / 0.0;
    for (uint s = 0u; s < pc.n_splits; s++) M = max(M, part[base + s * (HEAD_DIM + 2u) + HEAD_DIM]);
    float L = 0.0;
    for (uint s = 0u; s < pc.n_splits; s++) {
        uint b = base + s * (HEAD_DIM + 2u);
        float m = part[b + HEAD_DIM];
        if (m > -1.0 / 0.0) L += exp(m - M) * part[b + HEAD_DIM + 1u];
    }
    for (uint d = gl_LocalInvocationID.x; d < HEAD_DIM; d += gl_WorkGroupSize.x) {
        float a = 0.0;
        for (uint s = 0u; s < pc.n_splits; s++) {
            uint b = base + s * (HEAD_DIM + 2u);
            float m = part[b + HEAD_DIM];
            if (m > -1.0 / 0.0) a += exp(m - M) * part[b + d];
        }
        o[qh * HEAD_DIM + d] = a / L;
    }
}
