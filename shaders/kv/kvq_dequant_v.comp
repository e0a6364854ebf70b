#version 450
// Values: dequantize. One invocation per 8 consecutive channels of a token:
// their 8*BITS bits span at most two words; one uvec4 store of 8 FP16 values.
// in : the value store of src/kv/kv_layout.h, token slots in_off.. of in_stride per head
// out: y[head][out_stride][HEAD_DIM] fp16 at tokens out_off.. (HEAD_DIM % 8 == 0)
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer C { uint codes[]; };
layout(std430, binding = 1) restrict readonly buffer M { uint meta[]; };
layout(std430, binding = 2) restrict writeonly buffer Y { uvec4 y4[]; };

const uint WPT = (HEAD_DIM * BITS + 31u) / 32u;   // kvl_v_wpt
const uint OCT = HEAD_DIM / 8u;

void main()
{
    uint total = pc.n_heads * pc.n_tokens * OCT;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint o = i % OCT;
        uint t = (i / OCT) % pc.n_tokens, head = i / OCT / pc.n_tokens;
        uint ht = kvl_v_slot(head, pc.in_off + t, pc.in_stride);     // input token slot
        uint yo = kvl_f16(head, pc.out_off + t, o * 8u, pc.out_stride, HEAD_DIM) / 8u;
        uint mv = meta[kvl_v_meta(ht, (o * 8u) / GROUP, HEAD_DIM, GROUP)];
        float s = kvq_scale(mv), m = kvq_min(mv);
        uint bit0 = kvl_v_bit(o * 8u, BITS);
        uint k = bit0 >> 5u;
        uint w0 = codes[kvl_v_code(ht, k, BITS, HEAD_DIM)];
        uint w1 = k + 1u < WPT ? codes[kvl_v_code(ht, k + 1u, BITS, HEAD_DIM)] : 0u;
        uint off0 = bit0 & 31u;
        float v[8];
        [[unroll]] for (uint j = 0u; j < 8u; j++) {
            uint bp = off0 + j * BITS;               // < 64 + 8*BITS
            uint q = bp < 32u ? kvq_extract(w0, w1, bp) : ((w1 >> (bp - 32u)) & MAXQ);
            v[j] = float(q) * s + m;
        }
        y4[yo] = uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                      packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
    }
}
