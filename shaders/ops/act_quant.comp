#version 450
// Activations for the integer weight products (layout: act_q.glsl): each
// token row x[t][0..n) is quantized per 32-element block into 16-bit
// integers; with a norm weight w the row is RMS-normalized on the way
// (X from x*w, and r = 1/sqrt(mean(x^2) + eps) kept for the product to apply).
// One workgroup per token; invocation i takes blocks i, i+NT, ...
// Spec constants: 0 NT (a power of two).
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

const uint NT = gl_WorkGroupSize.x;
shared float red[NT];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint nb = pc.n / 32u;
    const uint tok_q4 = act_q_words(pc.n) / 4u;   // uvec4 per token
    for (uint t = gl_WorkGroupID.x; t < pc.n_tok; t += gl_NumWorkGroups.x) {
        const uint xb = t * (pc.n / 4u), qb = t * tok_q4;
        float ss = 0.0;
        for (uint b = tid; b < nb; b += NT) {
            vec4 v[8];
            [[unroll]] for (uint i = 0u; i < 8u; i++) {
                vec4 x = x4[xb + 8u * b + i];
                ss += dot(x, x);
                v[i] = pc.has_w != 0u ? x * w4[8u * b + i] : x;
            }
            uvec4 hi[2], lo[2], meta;
            act_q_block(v, hi, lo, meta);
            q4[qb + 2u * b] = hi[0];
            q4[qb + 2u * b + 1u] = hi[1];
            q4[qb + pc.n / 16u + 2u * b] = lo[0];
            q4[qb + pc.n / 16u + 2u * b + 1u] = lo[1];
            q4[qb + pc.n / 8u + b] = meta;
        }
        // r: the norm's factor (1 without a norm)
        red[tid] = ss;
        barrier();
        for (uint s = NT / 2u; s > 0u; s >>= 1) {
            if (tid < s) red[tid] += red[tid + s];
            barrier();
        }
        if (tid == 0u) {
            float r = pc.has_w != 0u ? inversesqrt(red[0] / float(pc.n) + pc.eps) : 1.0;
            q4[qb + (pc.n * 5u) / 32u] = uvec4(floatBitsToUint(r), 0u, 0u, 0u);
        }
        barrier();
    }
}
