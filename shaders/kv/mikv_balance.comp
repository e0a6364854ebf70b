#version 450
// MiKV outlier balancer, fixed when the first block leaves the window: one
// invocation per (KV head, channel) takes max |k_d| over the FP16 ring's positions
// [S, S + R + G) and sets b = sqrt(max|q_d| / max|k_d|) (vkm_mikv_balance: 1 when
// either is 0 or not finite, clamped to [2^-8, 2^8]).
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 64;

layout(std430, binding = 0) restrict readonly buffer KR { float16_t kring[]; };
layout(std430, binding = 1) restrict buffer A { uint aux[]; };

layout(push_constant) uniform P { uint S, R, G, ring, n_kv, o_bal, o_qmax, o_kmax; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n_kv * D) return;
    const uint h = i / D, d = i % D, hc = kvl_head_channel(h, d, D);
    float km = 0.0;
    for (uint t = 0u; t < pc.R + pc.G; t++) km = max(km, abs(float(kring[kvl_f16(h, t % pc.ring, d, pc.ring, D)])));
    const float qm = uintBitsToFloat(aux[pc.o_qmax + hc]);
    float b = 1.0;
    if (qm > 0.0 && km > 0.0 && !isinf(qm) && !isinf(km)) b = clamp(sqrt(qm / km), 1.0 / 256.0, 256.0);
    aux[pc.o_bal + hc] = floatBitsToUint(b);
    aux[pc.o_kmax + hc] = floatBitsToUint(km);
}
