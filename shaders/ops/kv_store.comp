#version 450
// Store K and V of n_tok tokens into the FP16 cache of one layer:
//   k, v:           [n_tok][n_kv_head][head_dim] f32
//   kcache, vcache: [n_kv_head][n_ctx][head_dim] f16, token t at position pos0 + t.
// One invocation per pair of elements (head_dim is even), K and V in one
// grid: pairs [0, n) are keys, [n, 2n) values. f32 -> f16 with packHalf2x16.
// A cache larger than the storage range is bound per chunk of KV heads: this
// dispatch writes heads [h_begin, h_begin + h_count), whose first one sits at
// the start of the cache bindings.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer K { vec2 k[]; };
layout(std430, binding = 1) restrict readonly buffer V { vec2 v[]; };
layout(std430, binding = 2) restrict writeonly buffer KC { uint kc[]; };
layout(std430, binding = 3) restrict writeonly buffer VC { uint vc[]; };
layout(push_constant) uniform P { uint n_tok; uint n_kv_head; uint head_dim; uint n_ctx; uint pos0; uint h_begin; uint h_count; } pc;
void main()
{
    const uint hp = pc.head_dim / 2u;
    const uint n = pc.n_tok * pc.h_count * hp;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < 2u * n; i += stride) {
        uint j = i < n ? i : i - n;
        uint p = j % hp;
        uint th = j / hp;                 // t * h_count + local head
        uint hl = th % pc.h_count, t = th / pc.h_count;
        uint dst = (hl * pc.n_ctx + pc.pos0 + t) * hp + p;
        uint src = (t * pc.n_kv_head + pc.h_begin + hl) * hp + p;
        if (i < n) kc[dst] = packHalf2x16(k[src]);
        else vc[dst] = packHalf2x16(v[src]);
    }
}
