#version 450
// Values: dequantize. One invocation per output element; neighbouring
// invocations read the same or neighbouring words (coalesced).
// in : codes[head][token][WPT], meta[head][token][HEAD_DIM/GROUP]
// out: y[head][token][HEAD_DIM] fp16
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer C { uint codes[]; };
layout(std430, binding = 1) readonly buffer M { uint meta[]; };
layout(std430, binding = 2) writeonly buffer Y { float16_t y[]; };
layout(push_constant) uniform P { uint n_heads; uint n_tokens; uint pad0; uint pad1; } pc;

const uint WPT = (HEAD_DIM * BITS + 31u) / 32u;
const uint NG = HEAD_DIM / GROUP;

void main()
{
    uint total = pc.n_heads * pc.n_tokens * HEAD_DIM;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint d = i % HEAD_DIM;
        uint ht = i / HEAD_DIM;
        uint mv = meta[ht * NG + d / GROUP];
        uint bitpos = d * BITS;
        uint k = bitpos >> 5u;
        uint w0 = codes[ht * WPT + k];
        uint w1 = k + 1u < WPT ? codes[ht * WPT + k + 1u] : 0u;
        uint q = kvq_extract(w0, w1, bitpos & 31u);
        y[i] = float16_t(float(q) * h2f(mv & 0xffffu) + h2f(mv >> 16));
    }
}
