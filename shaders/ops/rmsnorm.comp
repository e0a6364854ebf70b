#version 450
// out[r][:] = x[r][:] / sqrt(mean(x[r]^2) + eps) * w[:]. One workgroup per row
// (grid-stride over rows), sum of squares reduced in shared memory (NT a power
// of two). out may alias x: every element is read and written by the same
// invocation, so the buffers are not declared restrict.
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Xb { float x[]; };
layout(std430, binding = 1) restrict readonly buffer Wb { float w[]; };
layout(std430, binding = 2) writeonly buffer Ob { float o[]; };
layout(push_constant) uniform P { uint n_rows; uint n; float eps; uint has_w; } pc;

const uint NT = gl_WorkGroupSize.x;
shared float red[NT];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < pc.n_rows; row += gl_NumWorkGroups.x) {
        uint base = row * pc.n;
        float s = 0.0;
        for (uint i = tid; i < pc.n; i += NT) s += x[base + i] * x[base + i];
        red[tid] = s;
        barrier();
        for (uint k = NT / 2u; k > 0u; k >>= 1) {
            if (tid < k) red[tid] += red[tid + k];
            barrier();
        }
        float inv = inversesqrt(red[0] / float(pc.n) + pc.eps);
        barrier();  // red[0] is read by all before the next row overwrites it
        for (uint i = tid; i < pc.n; i += NT) o[base + i] = x[base + i] * inv * (pc.has_w != 0u ? w[i] : 1.0);
    }
}
