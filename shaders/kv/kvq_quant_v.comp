#version 450
// Values: quantize per token, in groups of GROUP channels along head_dim.
// One invocation per (group, token, head).
// in : x[head][token][HEAD_DIM] fp16
// out: codes[head][token][ceil(HEAD_DIM*BITS/32)] uint, meta[head][token][HEAD_DIM/GROUP]
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { float16_t x[]; };
layout(std430, binding = 1) restrict buffer C { uint codes[]; };
layout(std430, binding = 2) restrict writeonly buffer M { uint meta[]; };

const uint WPT = (HEAD_DIM * BITS + 31u) / 32u;   // words per token
const uint NG = HEAD_DIM / GROUP;

void main()
{
    uint total = pc.n_heads * pc.n_tokens * NG;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint g = i % NG;
        uint t = (i / NG) % pc.n_tokens, head = i / NG / pc.n_tokens;
        uint xb = (head * pc.in_stride + pc.in_off + t) * HEAD_DIM + g * GROUP;
        uint ht = head * pc.out_stride + pc.out_off + t;   // output token
        float mn = float(x[xb]), mx = mn;
        for (uint j = 1u; j < GROUP; j++) {
            float v = float(x[xb + j]);
            mn = min(mn, v);
            mx = max(mx, v);
        }
        uint sh = f16_ceil((mx - mn) * kvq_inv_maxq());
        uint mh = packHalf2x16(vec2(mn, 0.0)) & 0xffffu;
        float s = h2f(sh), m = h2f(mh);
        float inv = s > 0.0 ? 1.0 / s : 0.0;
        meta[ht * NG + g] = sh | (mh << 16);
        // this group owns its words: GROUP*BITS is a multiple of 32 when NG > 1
        uint wbase = ht * WPT + (g * GROUP * BITS) / 32u;
        uint word = 0u, bit = 0u, w = 0u;
        for (uint j = 0u; j < GROUP; j++) {
            uint q = kvq_code(float(x[xb + j]), s, m, inv);
            word |= q << bit;
            bit += BITS;
            if (bit >= 32u) {
                codes[wbase + w] = word;
                w++;
                bit -= 32u;
                word = bit > 0u ? q >> (BITS - bit) : 0u;
            }
        }
        if (bit > 0u) codes[wbase + w] = word;   // the last, partial word of a small head
    }
}
