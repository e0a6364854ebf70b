#version 450
// out[t][:] = dequant(table[ids[t]][:]): embedding lookup for any weight type.
// One invocation per 8 elements (deq8), grid-stride. A table larger than the
// device's storage range is bound in row chunks, one dispatch per chunk; a
// dispatch writes only the ids that fall in its chunk [row_base, row_base+n_rows).
// Ids outside [0, n_vocab) give a row of zeros (written by the first chunk).
// Spec constants: 0 NT, 1 WTYPE.
#extension GL_GOOGLE_include_directive : require
#define W_BINDING 0
#include "ggml_blocks.glsl"

layout(local_size_x_id = 0) in;
layout(std430, binding = 1) restrict readonly buffer I { int ids[]; };
layout(std430, binding = 2) restrict writeonly buffer O { vec4 out4[]; };
layout(push_constant) uniform P {
    uint n_embd, n_ids, row_base, n_rows, n_vocab, first, row_bytes, pad;
} pc;

void main()
{
    const uint per_row = pc.n_embd / 8u;
    const uint total = pc.n_ids * per_row;
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < total; i += stride) {
        uint t = i / per_row, q = i - t * per_row;
        int id = ids[t];
        uint o = (t * pc.n_embd) / 4u + 2u * q;
        if (id < 0 || uint(id) >= pc.n_vocab) {
            if (pc.first != 0u) {
                out4[o] = vec4(0.0);
                out4[o + 1u] = vec4(0.0);
            }
            continue;
        }
        uint r = uint(id) - pc.row_base;   // wraps for ids below the chunk
        if (uint(id) < pc.row_base || r >= pc.n_rows) continue;
        vec4 lo, hi;
        deq8(r * pc.row_bytes, pc.n_embd, 8u * q, lo, hi);
        out4[o] = lo;
        out4[o + 1u] = hi;
    }
}
