#version 450
// Keys: quantize per channel, in groups of GROUP consecutive tokens.
// One workgroup per (block of GROUP tokens, head); threads stride over channels.
// in : x[head][in_stride][HEAD_DIM] fp16, tokens in_off..
// out: codes[head][out_stride blocks][GROUP*BITS/32][HEAD_DIM] uint, meta[head][block][HEAD_DIM] (half2 scale,min)
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { float16_t x[]; };
layout(std430, binding = 1) restrict writeonly buffer C { uint codes[]; };
layout(std430, binding = 2) restrict writeonly buffer M { uint meta[]; };

const uint WPC = GROUP * BITS / 32u;   // words per channel per block

void main()
{
    uint block = gl_WorkGroupID.x, head = gl_WorkGroupID.y;
    uint xbase = (head * pc.in_stride + pc.in_off + block * GROUP) * HEAD_DIM;
    uint ob = head * pc.out_stride + pc.out_off + block;    // output block
    uint cbase = ob * WPC * HEAD_DIM;
    uint mbase = ob * HEAD_DIM;
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
