#version 450
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias
// gate or up (same element, same invocation): no restrict.
// PAIRS = 1 (a gated linear unit whose gate and up values are interleaved, as
// the product over interleaved gate/up rows writes them): out[i] =
// silu(gate[2i]) * up[2i + 1], gate and up bound to the same buffer (out must
// not alias it).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint PAIRS = 0;
layout(std430, binding = 0) readonly buffer G { float gate[]; };
layout(std430, binding = 1) readonly buffer U { float up[]; };
layout(std430, binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; } pc;
void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        float g = PAIRS != 0u ? gate[2u * i] : gate[i];
        o[i] = g / (1.0 + exp(-g)) * (PAIRS != 0u ? up[2u * i + 1u] : up[i]);
    }
}
