// Decoding of ggml weight blocks (layouts: src/ggml_types.h), shared by the
// matvec, matmul and get_rows shaders. Bit-exact with vkm_ggml_dequantize_row
// up to fp32 rounding of d*q (the CPU computes the same products in fp32).
//
// The including shader defines W_BINDING (the binding of the weight buffer)
// and gets three read-only views of it (aliasing is fine: all are read-only):
//   w4[]  uvec4 : 16-byte loads (F32, F16, BF16 rows; Q4_K super-blocks are 144 = 9*16 bytes)
//   w32[] uint  : 4-byte loads
//   w16[] uint16: 2-byte loads (Q8_0 34-byte, Q4_0 18-byte and Q6_K 210-byte blocks are only 2-aligned)
// Byte offsets are relative to the binding. Row r of a weight starts at
// r * row_bytes; the wrappers in src/ops.c guarantee the alignment each type
// needs (n_in a multiple of 8 for float types, of the block size otherwise).
//
// Spec constant 1 is the weight type (ggml type id) in every shader that
// includes this file.
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require

#ifndef W_BINDING
#error "define W_BINDING before including ggml_blocks.glsl"
#endif

layout(constant_id = 1) const uint WTYPE = 0;

const uint T_F32 = 0u, T_F16 = 1u, T_Q4_0 = 2u, T_Q8_0 = 8u, T_Q4_K = 12u, T_Q6_K = 14u, T_BF16 = 30u;

layout(std430, binding = W_BINDING) restrict readonly buffer WV4 { uvec4 w4[]; };
layout(std430, binding = W_BINDING) restrict readonly buffer WV32 { uint w32[]; };
layout(std430, binding = W_BINDING) restrict readonly buffer WV16 { uint16_t w16[]; };

// Elements per block, bytes per block.
const uint QK = (WTYPE == T_Q4_0 || WTYPE == T_Q8_0) ? 32u : (WTYPE == T_Q4_K || WTYPE == T_Q6_K) ? 256u : 1u;
const uint QB = WTYPE == T_F32 ? 4u : (WTYPE == T_F16 || WTYPE == T_BF16) ? 2u : WTYPE == T_Q4_0 ? 18u
              : WTYPE == T_Q8_0 ? 34u : WTYPE == T_Q4_K ? 144u : 210u;

float h2f(uint h) { return unpackHalf2x16(h).x; }
uint ld16(uint byte_off) { return uint(w16[byte_off >> 1]); }
// 4 bytes at a 2-aligned byte offset, little-endian
uint ld16x2(uint byte_off) { uint i = byte_off >> 1; return uint(w16[i]) | (uint(w16[i + 1u]) << 16); }
// byte k (0..3) of a word, as unsigned / signed
uint ubyte(uint w, uint k) { return bitfieldExtract(w, int(8u * k), 8); }
int sbyte(uint w, uint k) { return bitfieldExtract(int(w), int(8u * k), 8); }
vec4 ubytes4(uint w) { return vec4(w & 0xffu, (w >> 8) & 0xffu, (w >> 16) & 0xffu, w >> 24); }
vec4 sbytes4(uint w)
{
    return vec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8), bitfieldExtract(int(w), 16, 8),
                bitfieldExtract(int(w), 24, 8));
}
vec2 bf2(uint w) { return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u)); }

// Q4_K: 6-bit scale and min of sub-block j (0..7) from the 12 scale bytes held in s (bytes 0-3, 4-7, 8-11).
uint q4k_byte(uvec3 s, uint i) { return ubyte(i < 4u ? s.x : i < 8u ? s.y : s.z, i & 3u); }
void q4k_scale_min(uvec3 s, uint j, out float sc, out float m)
{
    if (j < 4u) {
        sc = float(q4k_byte(s, j) & 63u);
        m = float(q4k_byte(s, j + 4u) & 63u);
    } else {
        sc = float((q4k_byte(s, j + 4u) & 15u) | ((q4k_byte(s, j - 4u) >> 6) << 4));
        m = float((q4k_byte(s, j + 4u) >> 4) | ((q4k_byte(s, j) >> 6) << 4));
    }
}

// Elements e .. e+7 (e a multiple of 8) of the row starting at byte rb.
void deq8(uint rb, uint e, out vec4 lo, out vec4 hi)
{
    if (WTYPE == T_F32) {
        uint i = (rb >> 4) + (e >> 2);          // rows of a multiple of 8 floats: 16-aligned
        lo = uintBitsToFloat(w4[i]);
        hi = uintBitsToFloat(w4[i + 1u]);
    } else if (WTYPE == T_F16) {
        uvec4 w = w4[(rb >> 4) + (e >> 3)];
        lo = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
        hi = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
    } else if (WTYPE == T_BF16) {
        uvec4 w = w4[(rb >> 4) + (e >> 3)];
        lo = vec4(bf2(w.x), bf2(w.y));
        hi = vec4(bf2(w.z), bf2(w.w));
    } else if (WTYPE == T_Q8_0) {
        uint o = rb + (e >> 5) * 34u;
        float d = h2f(ld16(o));
        o += 2u + (e & 31u);
        lo = d * sbytes4(ld16x2(o));
        hi = d * sbytes4(ld16x2(o + 4u));
    } else if (WTYPE == T_Q4_0) {
        uint o = rb + (e >> 5) * 18u;
        float d = h2f(ld16(o));
        uint i = e & 31u;
        o += 2u + (i & 15u);
        uint sh = i < 16u ? 0u : 4u;
        uint a = (ld16x2(o) >> sh) & 0x0f0f0f0fu, b = (ld16x2(o + 4u) >> sh) & 0x0f0f0f0fu;
        lo = d * (ubytes4(a) - 8.0);
        hi = d * (ubytes4(b) - 8.0);
    } else if (WTYPE == T_Q4_K) {
        uint sb = rb + (e >> 8) * 144u;         // 144-byte super-blocks: 16-aligned
        uvec4 h = w4[sb >> 4];
        uint j = e & 255u, c = j >> 6, w = j & 63u, l = w & 31u;
        uint sub = 2u * c + (w >> 5);
        float sc, m;
        q4k_scale_min(h.yzw, sub, sc, m);
        float d = h2f(h.x & 0xffffu) * sc, dm = h2f(h.x >> 16) * m;
        uint qi = (sb + 16u + 32u * c + l) >> 2;  // 8-aligned
        uint sh = (w >> 5) * 4u;
        uint a = (w32[qi] >> sh) & 0x0f0f0f0fu, b = (w32[qi + 1u] >> sh) & 0x0f0f0f0fu;
        lo = d * ubytes4(a) - dm;
        hi = d * ubytes4(b) - dm;
    } else { // Q6_K
        uint sb = rb + (e >> 8) * 210u;
        uint j = e & 255u, hh = j >> 7, k = j & 127u, qt = k >> 5, l = k & 31u;
        uint qlo = sb + 64u * hh + (qt & 1u) * 32u + l;
        uint qho = sb + 128u + 32u * hh + l;
        uint ql0 = ld16x2(qlo), ql1 = ld16x2(qlo + 4u);
        uint qh0 = ld16x2(qho), qh1 = ld16x2(qho + 4u);
        uint nsh = (qt >> 1) * 4u, hsh = 2u * qt;
        uint so = sb + 192u + 8u * hh + 2u * qt + (l >> 4);
        float d = h2f(ld16(sb + 208u)) * float(sbyte(ld16(so & ~1u), so & 1u));
        uint a = ((ql0 >> nsh) & 0x0f0f0f0fu) | (((qh0 >> hsh) & 0x03030303u) << 4);
        uint b = ((ql1 >> nsh) & 0x0f0f0f0fu) | (((qh1 >> hsh) & 0x03030303u) << 4);
        lo = d * (ubytes4(a) - 32.0);
        hi = d * (ubytes4(b) - 32.0);
    }
}
