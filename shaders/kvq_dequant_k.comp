#version 450
// Keys: dequantize. One invocation per (8 channels, chunk of 32 tokens): it
// reads the BITS words of each of its 8 channels with uvec4 loads (coalesced
// across invocations) and writes 32 rows of 8 FP16 values as uvec4 stores.
// in : codes[head][block][GROUP*BITS/32][HEAD_DIM], meta[head][block][HEAD_DIM]
// out: y[head][token][HEAD_DIM] fp16 (HEAD_DIM % 8 == 0)
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer C { uvec4 codes4[]; };
layout(std430, binding = 1) readonly buffer M { uvec4 meta4[]; };
layout(std430, binding = 2) writeonly buffer Y { uvec4 y4[]; };
layout(push_constant) uniform P { uint n_heads; uint n_tokens; uint pad0; uint pad1; } pc;

const uint WPC = GROUP * BITS / 32u;
const uint CHUNKS = GROUP / 32u;
const uint OCT = HEAD_DIM / 8u;

void main()
{
    uint n_blocks = pc.n_tokens / GROUP;
    uint total = pc.n_heads * n_blocks * CHUNKS * OCT;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint o = i % OCT;
        uint r = i / OCT;
        uint chunk = r % CHUNKS;
        uint hb = r / CHUNKS;                       // head * n_blocks + block
        uint mi = (hb * HEAD_DIM + o * 8u) / 4u;
        uvec4 ma = meta4[mi], mb = meta4[mi + 1u];
        uint mv[8] = uint[8](ma.x, ma.y, ma.z, ma.w, mb.x, mb.y, mb.z, mb.w);
        float s[8], m[8];
        [[unroll]] for (uint j = 0u; j < 8u; j++) { s[j] = h2f(mv[j] & 0xffffu); m[j] = h2f(mv[j] >> 16); }
        uint w[8][8];                               // [word k][channel j]
        uint cb = (hb * WPC * HEAD_DIM + chunk * BITS * HEAD_DIM + o * 8u) / 4u;
        [[unroll]] for (uint k = 0u; k < BITS; k++) {
            uvec4 a = codes4[cb + k * OCT * 2u], b = codes4[cb + k * OCT * 2u + 1u];
            w[k][0] = a.x; w[k][1] = a.y; w[k][2] = a.z; w[k][3] = a.w;
            w[k][4] = b.x; w[k][5] = b.y; w[k][6] = b.z; w[k][7] = b.w;
        }
        uint t0 = (hb % n_blocks) * GROUP + chunk * 32u;
        uint ybase = (((hb / n_blocks) * pc.n_tokens + t0) * HEAD_DIM + o * 8u) / 8u;
        [[unroll]] for (uint t = 0u; t < 32u; t++) {
            const uint bitpos = t * BITS, k = bitpos >> 5u, off = bitpos & 31u;
            const uint k1 = min(k + 1u, BITS - 1u);
            float v[8];
            [[unroll]] for (uint j = 0u; j < 8u; j++)
                v[j] = float(kvq_extract(w[k][j], w[k1][j], off)) * s[j] + m[j];
            y4[ybase + t * OCT] = uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                                        packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
        }
    }
}
