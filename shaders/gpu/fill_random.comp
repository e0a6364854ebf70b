#version 450
// Random weights for synthetic models and benchmarks, written straight into
// the device buffer in the tensor's GPU layout (src/ops/wlayout.h), with u
// uniform in [-1, 1) from a hash of (seed, index):
//   F32 offset + scale * u, F16 / BF16 scale * u      (n = elements)
//   Q4_0, Q8_0, Q4_K, Q6_K: random quantized values and fp16 scales chosen so
//   that the weights stay within about +-scale       (n = 32-bit words)
// Never timed; never committed.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int8 : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint TYPE = 0;     // ggml type id
layout(std430, binding = 0) restrict writeonly buffer W32 { uint w32[]; };
layout(std430, binding = 1) restrict writeonly buffer W16 { uint16_t w16[]; };
layout(std430, binding = 2) restrict writeonly buffer W8 { uint8_t w8[]; };
layout(push_constant) uniform P {
    uint n;          // elements (float types) or 32-bit words (quantized types)
    uint seed;
    float scale;
    float offset;
    uint n_in;       // quantized types: elements per row
    uint row_words;  // quantized types: 32-bit words per row
} pc;

uint hash(uint x)
{
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}

float uni(uint i) { return float(hash(i * 0x9E3779B9u ^ pc.seed) >> 8) * (2.0 / 16777216.0) - 1.0; }

uint h2(float d) { return packHalf2x16(vec2(d, d)); }   // two fp16 scales in one word

void main()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        if (TYPE == 0u) {
            w32[i] = floatBitsToUint(pc.offset + pc.scale * uni(i));
        } else if (TYPE == 1u) {
            w16[i] = uint16_t(packHalf2x16(vec2(pc.scale * uni(i), 0.0)) & 0xffffu);
        } else if (TYPE == 30u) {
            w16[i] = uint16_t(floatBitsToUint(pc.scale * uni(i)) >> 16);
        } else {
            uint w = i % pc.row_words, byte = 4u * w, v = hash(i ^ pc.seed);
            if (TYPE == 2u) {            // Q4_0: d plane at n_in/2; q - 8 in [-8, 7]
                if (byte >= pc.n_in / 2u) v = h2(pc.scale / 8.0);
            } else if (TYPE == 8u) {     // Q8_0: d plane at n_in
                if (byte >= pc.n_in) v = h2(pc.scale / 127.0);
            } else if (TYPE == 12u) {    // Q4_K: d, dmin at the start of each 144-byte super-block
                if (byte % 144u == 0u) v = packHalf2x16(vec2(pc.scale / 512.0, pc.scale / 1024.0));
            } else if (TYPE == 14u) {    // Q6_K: d plane at 13 n_in / 16
                if (byte >= (13u * pc.n_in) / 16u) v = h2(pc.scale / 2048.0);
            }
            w32[i] = v;
        }
    }
}
