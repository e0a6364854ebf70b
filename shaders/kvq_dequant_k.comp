#version 450
// Keys: dequantize. One invocation per (channel, chunk of 32 tokens): it reads
// the BITS words that hold the chunk's 32 codes (coalesced across channels) and
// writes 32 FP16 values.
// in : codes[head][block][GROUP*BITS/32][HEAD_DIM], meta[head][block][HEAD_DIM]
// out: y[head][token][HEAD_DIM] fp16
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer C { uint codes[]; };
layout(std430, binding = 1) readonly buffer M { uint meta[]; };
layout(std430, binding = 2) writeonly buffer Y { float16_t y[]; };
layout(push_constant) uniform P { uint n_heads; uint n_tokens; uint pad0; uint pad1; } pc;

const uint WPC = GROUP * BITS / 32u;
const uint CHUNKS = GROUP / 32u;

void main()
{
    uint n_blocks = pc.n_tokens / GROUP;
    uint total = pc.n_heads * n_blocks * CHUNKS * HEAD_DIM;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint c = i % HEAD_DIM;
        uint r = i / HEAD_DIM;
        uint chunk = r % CHUNKS;
        uint hb = r / CHUNKS;                 // head * n_blocks + block
        uint mv = meta[hb * HEAD_DIM + c];
        float s = h2f(mv & 0xffffu), m = h2f(mv >> 16);
        uint cb = hb * WPC * HEAD_DIM + chunk * BITS * HEAD_DIM + c;
        uint w[8];
        for (uint k = 0u; k < BITS; k++) w[k] = codes[cb + k * HEAD_DIM];
        uint t0 = (hb % n_blocks) * GROUP + chunk * 32u;
        uint ybase = ((hb / n_blocks) * pc.n_tokens + t0) * HEAD_DIM + c;
        for (uint t = 0u; t < 32u; t++) {
            uint bitpos = t * BITS;
            uint k = bitpos >> 5u;
            uint q = kvq_extract(w[k], w[min(k + 1u, BITS - 1u)], bitpos & 31u);
            y[ybase + t * HEAD_DIM] = float16_t(float(q) * s + m);
        }
    }
}
