#version 450
// Plain copy kernel: the bandwidth yardstick for the benchmarks. One uvec4 per
// invocation (grid-stride only past the grid limit); restrict lets the
// compiler keep several loads in flight.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) restrict writeonly buffer Dst { uvec4 dst[]; };
layout(push_constant) uniform P { uint n; } pc;   // number of uvec4
void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride)
        dst[i] = src[i];
}
