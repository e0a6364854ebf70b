#version 450
// Random weights for synthetic models, written straight into the device buffer
// in the tensor's GGUF type: F32 (offset + scale * u), F16 (scale * u), Q4_0
// (a valid block: FP16 d = scale / 8, random nibbles), with u uniform in
// [-1, 1) from a hash of (seed, index). Never timed; never committed.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TYPE = 0;     // ggml type id: 0 F32, 1 F16, 2 Q4_0
layout(std430, binding = 0) restrict writeonly buffer W32 { float w32[]; };
layout(std430, binding = 1) restrict writeonly buffer W16 { uint16_t w16[]; };
layout(std430, binding = 2) restrict writeonly buffer W8 { uint8_t w8[]; };
layout(push_constant) uniform P { uint n; uint seed; float scale; float offset; } pc; // n: elements (F32/F16) or blocks (Q4_0)

uint hash(uint x)
{
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}

float uni(uint i) { return float(hash(i * 0x9E3779B9u ^ pc.seed) >> 8) * (2.0 / 16777216.0) - 1.0; }

void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        if (TYPE == 0u) {
            w32[i] = pc.offset + pc.scale * uni(i);
        } else if (TYPE == 1u) {
            w16[i] = uint16_t(packHalf2x16(vec2(pc.scale * uni(i), 0.0)) & 0xffffu);
        } else {
            uint b = i * 18u;
            uint d = packHalf2x16(vec2(pc.scale * 0.25, 0.0)) & 0xffffu;
            w8[b] = uint8_t(d & 0xffu);
            w8[b + 1u] = uint8_t(d >> 8);
            uint h = hash(i ^ pc.seed);
            for (uint k = 0u; k < 16u; k++) {
                if ((k & 3u) == 0u) h = hash(h + k);
                w8[b + 2u + k] = uint8_t((h >> ((k & 3u) * 8u)) & 0xffu);
            }
        }
    }
}
