#version 450
// RoPE of q and k and the store of K and V into the FP16 part of a KV cache,
// in one dispatch:
//   q [n_tok][n_head][hd] f32: rotated in place (for attention)
//   k, v [n_tok][n_kv][hd] f32: rope(k) and v as FP16 to position p = pos[t]:
//   p < n_sinks into the sinks [n_kv][n_sinks][hd], later ones into ring slot
//   (p - n_sinks) % n_ring of [n_kv][n_ring][hd] (a full FP16 cache: n_sinks 0,
//   n_ring n_ctx), as kv_ring_store.comp does.
// Positions come from a buffer (one per token), so that a recorded step can
// be replayed with new positions. One invocation per pair of elements (the
// pairs RoPE turns: NORM (2i, 2i+1), NEOX (i, i + hd/2); v pairs alike).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "rope.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict buffer Q { float q[]; };
layout(std430, binding = 1) restrict readonly buffer K { float k[]; };
layout(std430, binding = 2) restrict readonly buffer V { float v[]; };
layout(std430, binding = 3) restrict readonly buffer F { float freqs[]; };
layout(std430, binding = 4) restrict readonly buffer Pos { uint pos[]; };
layout(std430, binding = 5) writeonly buffer KS { float16_t k_sinks[]; };
layout(std430, binding = 6) writeonly buffer KR { float16_t k_ring[]; };
layout(std430, binding = 7) writeonly buffer VS { float16_t v_sinks[]; };
layout(std430, binding = 8) writeonly buffer VR { float16_t v_ring[]; };
layout(push_constant) uniform P {
    uint n_tok, n_head, n_kv, head_dim, n_sinks, n_ring, neox;
} pc;

void main()
{
    const uint half_ = pc.head_dim / 2u;
    const uint per_tok = (pc.n_head + 2u * pc.n_kv) * half_;   // pairs per token: q, then k, then v
    const uint total = pc.n_tok * per_tok;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint idx = gl_GlobalInvocationID.x; idx < total; idx += stride) {
        uint t = idx / per_tok, j = idx - t * per_tok;
        uint hh = j / half_, i = j - hh * half_;           // head among the q, k, v heads; pair i
        uint ia = pc.neox != 0u ? i : 2u * i;
        uint ib = pc.neox != 0u ? i + half_ : 2u * i + 1u;
        bool is_q = hh < pc.n_head, is_v = hh >= pc.n_head + pc.n_kv;
        uint hk = is_v ? hh - pc.n_head - pc.n_kv : hh - pc.n_head;   // k or v head
        uint src = is_q ? (t * pc.n_head + hh) * pc.head_dim : (t * pc.n_kv + hk) * pc.head_dim;
        float a = is_q ? q[src + ia] : is_v ? v[src + ia] : k[src + ia];
        float b = is_q ? q[src + ib] : is_v ? v[src + ib] : k[src + ib];
        uint p = pos[t];
        if (!is_v) {
            precise float ang = float(p) * freqs[i];
            vec2 sc = sincos_(ang);
            float ra = a * sc.y - b * sc.x, rb = a * sc.x + b * sc.y;
            a = ra;
            b = rb;
        }
        if (is_q) {
            q[src + ia] = a;
            q[src + ib] = b;
            continue;
        }
        uint h = hk;
        bool sink = p < pc.n_sinks;
        uint o = sink ? (h * pc.n_sinks + p) * pc.head_dim : (h * pc.n_ring + (p - pc.n_sinks) % pc.n_ring) * pc.head_dim;
        if (is_v) {
            if (sink) { v_sinks[o + ia] = float16_t(a); v_sinks[o + ib] = float16_t(b); }
            else { v_ring[o + ia] = float16_t(a); v_ring[o + ib] = float16_t(b); }
        } else {
            if (sink) { k_sinks[o + ia] = float16_t(a); k_sinks[o + ib] = float16_t(b); }
            else { k_ring[o + ia] = float16_t(a); k_ring[o + ib] = float16_t(b); }
        }
    }
}
