#version 450
// Store new keys or values (f32, straight from the projections) into the FP16
// part of the cache: position p < S goes to the sinks, later positions to ring
// slot (p - S) % RING. A full FP16 cache is the case S = 0, RING = n_ctx.
// in : src[n_tok][n_heads][HEAD_DIM] f32, token t at position pos0 + t
// out: sinks[n_heads][S][HEAD_DIM] f16, ring[n_heads][RING][HEAD_DIM] f16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "kv/kv_layout.h"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(std430, binding = 0) restrict readonly buffer Src { float src[]; };
layout(std430, binding = 1) restrict writeonly buffer Sinks { float16_t sinks[]; };
layout(std430, binding = 2) restrict writeonly buffer Ring { float16_t ring[]; };
layout(push_constant) uniform P { uint n_tok, n_heads, pos0, n_sinks, n_ring; } pc;

void main()
{
    uint total = pc.n_tok * pc.n_heads * HEAD_DIM;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint d = i % HEAD_DIM, h = (i / HEAD_DIM) % pc.n_heads, t = i / HEAD_DIM / pc.n_heads;
        uint p = pc.pos0 + t;
        float16_t v = float16_t(src[i]);
        if (p < pc.n_sinks) sinks[kvl_f16(h, p, d, pc.n_sinks, HEAD_DIM)] = v;
        else ring[kvl_f16(h, kvl_ring_slot(p, pc.n_sinks, pc.n_ring), d, pc.n_ring, HEAD_DIM)] = v;
    }
}
