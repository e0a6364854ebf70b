#version 450
// Keys: dequantize. One invocation per (8 channels, 8 tokens): the 8 tokens'
// codes of one channel span at most two words, read for 8 channels with uvec4
// loads (coalesced across invocations); 8 rows of 8 FP16 values are written
// as uvec4 stores.
// in : the key store of src/kv/kv_layout.h, blocks in_off.. of in_stride per head
// out: y[head][out_stride][HEAD_DIM] fp16 at tokens out_off.. (HEAD_DIM % 8 == 0: the
//      words and meta of 8 neighbouring channels are 8 neighbouring words)
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#include "kvq.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer C { uvec4 codes4[]; };
layout(std430, binding = 1) restrict readonly buffer M { uvec4 meta4[]; };
layout(std430, binding = 2) restrict writeonly buffer Y { uvec4 y4[]; };

const uint WPC = GROUP * BITS / 32u;   // words per channel in a block (kvl_k_wpc)
const uint SUBS = GROUP / 8u;          // runs of 8 tokens in a block
const uint OCT = HEAD_DIM / 8u;

void main()
{
    uint n_blocks = pc.n_tokens / GROUP;
    uint total = pc.n_heads * n_blocks * SUBS * OCT;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint o = i % OCT;
        uint r = i / OCT;
        uint sub = r % SUBS;
        uint blk = (r / SUBS) % n_blocks, head = r / SUBS / n_blocks;
        uint hb = kvl_k_block(head, pc.in_off + blk, pc.in_stride);   // input head-block
        uint mi = kvl_k_meta(hb, o * 8u, HEAD_DIM) / 4u;
        uvec4 ma = meta4[mi], mb = meta4[mi + 1u];
        uint mv[8] = uint[8](ma.x, ma.y, ma.z, ma.w, mb.x, mb.y, mb.z, mb.w);
        uint bit0 = kvl_k_bit(sub * 8u, BITS);
        uint k0 = bit0 >> 5u, off0 = bit0 & 31u;
        uint k1 = min(k0 + 1u, WPC - 1u);
        uint c0 = kvl_k_code(hb, k0, o * 8u, BITS, GROUP, HEAD_DIM) / 4u;
        uint c1 = kvl_k_code(hb, k1, o * 8u, BITS, GROUP, HEAD_DIM) / 4u;
        uvec4 a0 = codes4[c0], a1 = codes4[c0 + 1u];
        uvec4 b0 = codes4[c1], b1 = codes4[c1 + 1u];
        uint w0[8] = uint[8](a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w);
        uint w1[8] = uint[8](b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w);
        uint t0 = blk * GROUP + sub * 8u;
        uint ybase = kvl_f16(head, pc.out_off + t0, o * 8u, pc.out_stride, HEAD_DIM) / 8u;
        [[unroll]] for (uint t = 0u; t < 8u; t++) {
            uint bp = off0 + t * BITS;               // < 32 + 8*BITS
            float v[8];
            [[unroll]] for (uint j = 0u; j < 8u; j++) {
                uint q = bp < 32u ? kvq_extract(w0[j], w1[j], bp) : ((w1[j] >> (bp - 32u)) & MAXQ);
                v[j] = float(q) * kvq_scale(mv[j]) + kvq_min(mv[j]);
            }
            y4[ybase + t * OCT] = uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                                        packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
        }
    }
}
