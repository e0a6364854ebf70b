#version 450
// Keys: quantize per channel, in groups of GROUP consecutive tokens.
// One workgroup per (block of GROUP tokens, head); threads stride over channels.
// in : x[head][in_stride][HEAD_DIM] fp16, tokens in_off..
// out: the key store of src/kv/kv_layout.h, blocks out_off.. of out_stride per head
// (token t of the block at bit kvl_k_bit(t) of its channel's words, filled in order)
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { float16_t x[]; };
layout(std430, binding = 1) restrict writeonly buffer C { uint codes[]; };
layout(std430, binding = 2) restrict writeonly buffer M { uint meta[]; };

void main()
{
    uint block = gl_WorkGroupID.x, head = gl_WorkGroupID.y;
    uint t0 = pc.in_off + block * GROUP;                            // first input token
    uint ob = kvl_k_block(head, pc.out_off + block, pc.out_stride); // output head-block
    for (uint c = gl_LocalInvocationID.x; c < HEAD_DIM; c += gl_WorkGroupSize.x) {
        float mn = float(x[kvl_f16(head, t0, c, pc.in_stride, HEAD_DIM)]), mx = mn;
        for (uint t = 1u; t < GROUP; t++) {
            float v = float(x[kvl_f16(head, t0 + t, c, pc.in_stride, HEAD_DIM)]);
            mn = min(mn, v);
            mx = max(mx, v);
        }
        uint sh = f16_ceil((mx - mn) * kvq_inv_maxq());
        uint mh = packHalf2x16(vec2(mn, 0.0)) & 0xffffu;   // exact: mn is an FP16 value
        float s = h2f(sh), m = h2f(mh);
        float inv = s > 0.0 ? 1.0 / s : 0.0;
        meta[kvl_k_meta(ob, c, HEAD_DIM)] = kvl_meta(sh, mh);
        uint word = 0u, bit = 0u, w = 0u;
        for (uint t = 0u; t < GROUP; t++) {
            uint q = kvq_code(float(x[kvl_f16(head, t0 + t, c, pc.in_stride, HEAD_DIM)]), s, m, inv);
            word |= q << bit;
            bit += BITS;
            if (bit >= 32u) {
                codes[kvl_k_code(ob, w, c, BITS, GROUP, HEAD_DIM)] = word;
                w++;
                bit -= 32u;
                word = bit > 0u ? q >> (BITS - bit) : 0u;
            }
        }
    }
}
