#version 450
// Values: quantize per token, in groups of GROUP channels along head_dim.
// One invocation per (group, token, head).
// in : x[head][token][HEAD_DIM] fp16
// out: the value store of src/kv/kv_layout.h, token slots out_off.. of out_stride per head
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer X { float16_t x[]; };
layout(std430, binding = 1) restrict buffer C { uint codes[]; };
layout(std430, binding = 2) restrict writeonly buffer M { uint meta[]; };

const uint NG = HEAD_DIM / GROUP;

void main()
{
    uint total = pc.n_heads * pc.n_tokens * NG;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint g = i % NG;
        uint t = (i / NG) % pc.n_tokens, head = i / NG / pc.n_tokens;
        uint xb = kvl_f16(head, pc.in_off + t, g * GROUP, pc.in_stride, HEAD_DIM);
        uint ht = kvl_v_slot(head, pc.out_off + t, pc.out_stride);   // output token slot
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
        meta[kvl_v_meta(ht, g, HEAD_DIM, GROUP)] = kvl_meta(sh, mh);
        // this group owns its words: GROUP*BITS is a multiple of 32 when NG > 1
        uint wbase = kvl_v_code(ht, kvl_v_bit(g * GROUP, BITS) / 32u, BITS, HEAD_DIM);
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
