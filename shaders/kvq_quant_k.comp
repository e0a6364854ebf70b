#version 450
// Keys: quantize per channel, in groups of GROUP consecutive tokens.
// One workgroup per (block of GROUP tokens, head); threads stride over channels.
// in : x[head][token][HEAD_DIM] fp16
// out: codes[head][block][GROUP*BITS/32][HEAD_DIM] uint, meta[head][block][HEAD_DIM] (half2 scale,min)
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { float16_t x[]; };
layout(std430, binding = 1) restrict writeonly buffer C { uint codes[]; };
layout(std430, binding = 2) restrict writeonly buffer M { uint meta[]; };
layout(push_constant) uniform P { uint n_heads; uint n_tokens; uint token0; uint pad; } pc;

const uint WPC = GROUP * BITS / 32u;   // words per channel per block

void main()
{
    uint block = gl_WorkGroupID.x, head = gl_WorkGroupID.y;
    uint n_blocks = pc.n_tokens / GROUP;
    uint xbase = (head * pc.n_tokens + block * GROUP) * HEAD_DIM;
    uint cbase = (head * n_blocks + block) * WPC * HEAD_DIM;
    uint mbase = (head * n_blocks + block) * HEAD_DIM;
    for (uint c = gl_LocalInvocationID.x; c < HEAD_DIM; c += gl_WorkGroupSize.x) {
        float mn = float(x[xbase + c]), mx = mn;
        for (uint t = 1u; t < GROUP; t++) {
            float v = float(x[xbase + t * HEAD_DIM + c]);
            mn = min(mn, v);
            mx = max(mx, v);
        }
        uint sh = f16_ceil((mx - mn) * kvq_inv_maxq());
        uint mh = packHalf2x16(vec2(mn, 0.0)) & 0xffffu;   // exact: mn is an FP16 value
        float s = h2f(sh), m = h2f(mh);
        float inv = s > 0.0 ? 1.0 / s : 0.0;
        meta[mbase + c] = sh | (mh << 16);
        uint word = 0u, bit = 0u, w = 0u;
        for (uint t = 0u; t < GROUP; t++) {
            uint q = kvq_code(float(x[xbase + t * HEAD_DIM + c]), s, m, inv);
            word |= q << bit;
            bit += BITS;
            if (bit >= 32u) {
                codes[cbase + w * HEAD_DIM + c] = word;
                w++;
                bit -= 32u;
                word = bit > 0u ? q >> (BITS - bit) : 0u;
            }
        }
    }
}
