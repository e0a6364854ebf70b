#version 450
// dst[i] = src[i], n floats (any count; the copy kernel copy.comp needs whole uvec4s).
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) restrict readonly buffer S { float s[]; };
layout(std430, binding = 1) restrict writeonly buffer D { float d[]; };
layout(push_constant) uniform P { uint n; } pc;
void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) d[i] = s[i];
}
