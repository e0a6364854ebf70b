#version 450
// Activations for the integer weight products (layout: act_q.glsl): each
// token row x[t][0..n) is quantized per 32-element block into 16-bit
// integers; with a norm weight w the values quantized are x*w and the block
// keeps the sum of x^2 for the product to compute the norm's factor. One
// invocation per block of every token: no pass over a whole row.
// Spec constants: 0 NT.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "act_q.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { vec4 x4[]; };
layout(std430, binding = 1) restrict readonly buffer W { vec4 w4[]; };
layout(std430, binding = 2) restrict writeonly buffer Q { uvec4 q4[]; };
layout(push_constant) uniform P {
    uint n;       // elements per token (a multiple of 32)
    uint n_tok;
    uint has_w;   // 1: RMS norm with weight w
    float eps;
} pc;

void main()
{
    const uint nb = pc.n / 32u, tok_q4 = act_q_words(pc.n) / 4u;   // blocks, uvec4 per token
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n_tok * nb; i += stride) {
        uint t = i / nb, b = i - t * nb;
        uint xb = t * (pc.n / 4u) + 8u * b, qb = t * tok_q4;
        vec4 v[8];
        float ss = 0.0;
        [[unroll]] for (uint k = 0u; k < 8u; k++) {
            vec4 x = x4[xb + k];
            ss += dot(x, x);
            v[k] = pc.has_w != 0u ? x * w4[8u * b + k] : x;
        }
        uvec4 hi[2], lo[2], meta;
        act_q_block(v, ss, hi, lo, meta);
        q4[qb + 2u * b] = hi[0];
        q4[qb + 2u * b + 1u] = hi[1];
        q4[qb + pc.n / 16u + 2u * b] = lo[0];
        q4[qb + pc.n / 16u + 2u * b + 1u] = lo[1];
        q4[qb + pc.n / 8u + b] = meta;
        if (b == 0u) q4[qb + (pc.n * 5u) / 32u] = uvec4(pc.has_w, floatBitsToUint(pc.eps), 0u, 0u);
    }
}
