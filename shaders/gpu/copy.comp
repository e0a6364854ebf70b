#version 450
// Plain copy kernel: the bandwidth yardstick for the benchmarks. Each invocation
// copies ITEMS uvec4 spaced one grid apart (all loads issued before the stores);
// restrict lets the compiler keep them in flight. READ_ONLY = 1 turns it into a
// read kernel (one word per invocation is written only if the sum is a marker).
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ITEMS = 1;
layout(constant_id = 2) const uint READ_ONLY = 0;
layout(std430, binding = 0) restrict readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) restrict writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform P { uint n; } pc;   // number of uvec4
void main()
{
    uint grid = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i0 = gl_GlobalInvocationID.x; i0 < pc.n; i0 += grid * ITEMS) {
        uvec4 v[ITEMS];
        [[unroll]] for (uint k = 0u; k < ITEMS; k++) {
            uint i = i0 + k * grid;
            v[k] = i < pc.n ? src[i] : uvec4(0u);
        }
        if (READ_ONLY == 1u) {
            uvec4 s = uvec4(0u);
            [[unroll]] for (uint k = 0u; k < ITEMS; k++) s ^= v[k];
            if (s == uvec4(0x9e3779b9u)) dst[i0] = s;
        } else {
            [[unroll]] for (uint k = 0u; k < ITEMS; k++) {
                uint i = i0 + k * grid;
                if (i < pc.n) dst[i] = v[k];
            }
        }
    }
}
