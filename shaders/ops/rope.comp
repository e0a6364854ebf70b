#version 450
// In-place RoPE: x [n_tok][n_heads][head_dim], token t at position pos0 + t.
// Pair i of a head turns by angle (pos * freqs[i]) (fp32 product, as the CPU
// reference computes it): NORM pairs (2i, 2i+1), NEOX pairs (i, i + head_dim/2).
// sin/cos are computed here with an explicit range reduction (pi/2 split in
// parts of 7 significant bits, exact products for |k| < 2^17) and
// minimax polynomials: the built-in sin/cos of GPUs lose absolute accuracy
// proportional to the argument (positions reach 10^5 radians).
#extension GL_GOOGLE_include_directive : require
#include "rope.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Xs { float x[]; };
layout(std430, binding = 1) restrict readonly buffer F { float freqs[]; };
layout(push_constant) uniform P { uint n_tok; uint n_heads; uint head_dim; uint pos0; uint neox; } pc;

void main()
{
    const uint half_ = pc.head_dim / 2u;
    const uint total = pc.n_tok * pc.n_heads * half_;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += stride) {
        uint i = idx % half_;
        uint th = idx / half_;            // token * n_heads + head
        uint t = th / pc.n_heads;
        precise float ang = float(pc.pos0 + t) * freqs[i];
        vec2 sc = sincos_(ang);
        uint base = th * pc.head_dim;
        uint ia = base + (pc.neox != 0u ? i : 2u * i);
        uint ib = base + (pc.neox != 0u ? i + half_ : 2u * i + 1u);
        float a = x[ia], b = x[ib];
        x[ia] = a * sc.y - b * sc.x;
        x[ib] = a * sc.x + b * sc.y;
    }
}
