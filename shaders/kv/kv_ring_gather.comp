#version 450
// Copy the FP16 tokens of positions [p_begin, p_end) from the sinks and the ring
// into a linear FP16 buffer lin[n_heads][lin_stride][HEAD_DIM] at the same positions.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "kv/kv_layout.h"
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint HEAD_DIM = 128;
layout(std430, binding = 0) restrict readonly buffer Sinks { float16_t sinks[]; };
layout(std430, binding = 1) restrict readonly buffer Ring { float16_t ring[]; };
layout(std430, binding = 2) restrict writeonly buffer Lin { float16_t lin[]; };
layout(push_constant) uniform P { uint n_heads, n_sinks, n_ring, p_begin, p_end, lin_stride; } pc;

void main()
{
    uint n = pc.p_end - pc.p_begin;
    uint total = n * pc.n_heads * HEAD_DIM;
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint d = i % HEAD_DIM, p = pc.p_begin + (i / HEAD_DIM) % n, h = i / HEAD_DIM / n;
        float16_t v = p < pc.n_sinks ? sinks[kvl_f16(h, p, d, pc.n_sinks, HEAD_DIM)]
                                     : ring[kvl_f16(h, kvl_ring_slot(p, pc.n_sinks, pc.n_ring), d, pc.n_ring, HEAD_DIM)];
        lin[kvl_f16(h, p, d, pc.lin_stride, HEAD_DIM)] = v;
    }
}
