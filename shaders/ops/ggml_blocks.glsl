// Decoding of weight rows in their GPU layouts (src/ops/wlayout.h: the GGUF
// blocks, with Q4_0, Q8_0 and Q6_K rearranged into 16-byte aligned planes per
// row), shared by the matvec, matmul and get_rows shaders. Bit-exact with
// vkm_ggml_dequantize_row up to fp32 rounding of d*q (the CPU computes the
// same products in fp32).
//
// The including shader defines W_BINDING (the binding of the weight buffer)
// and gets four read-only views of it (aliasing is fine: all are read-only):
//   w4[]  uvec4 : 16-byte loads
//   w8[]  uvec2 : 8-byte loads
//   w32[] uint  : 4-byte loads
//   w16[] uint16: 2-byte loads (fp16 scales)
// Byte offsets are relative to the binding. Row r of a weight starts at
// r * row_bytes (a multiple of 16); the planes of a row start at the offsets
// below (n_in elements per row):
//   Q4_0: qs at 0 (16 bytes per block), d at n_in/2
//   Q8_0: qs at 0 (32 bytes per block), d at n_in
//   Q6_K: ql at 0 (128 per super-block), qh at n_in/2 (64), scales at 3n_in/4 (16), d at 13n_in/16
//   Q4_K: the file's 144-byte super-blocks
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
layout(std430, binding = W_BINDING) restrict readonly buffer WV8 { uvec2 w8[]; };
layout(std430, binding = W_BINDING) restrict readonly buffer WV32 { uint w32[]; };
layout(std430, binding = W_BINDING) restrict readonly buffer WV16 { uint16_t w16[]; };

float h2f(uint h) { return unpackHalf2x16(h).x; }
uint ld16(uint byte_off) { return uint(w16[byte_off >> 1]); }
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

// Plane offsets of a GPU row of n_in elements (bytes).
uint q6k_qh(uint n_in) { return n_in / 2u; }
uint q6k_sc(uint n_in) { return (3u * n_in) / 4u; }
uint q6k_d(uint n_in) { return (13u * n_in) / 16u; }

// Elements e .. e+7 (e a multiple of 8) of the row of n_in elements starting at byte rb.
void deq8(uint rb, uint n_in, uint e, out vec4 lo, out vec4 hi)
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
        uint b = e >> 5;
        float d = h2f(ld16(rb + n_in + 2u * b));
        uint i = (rb + e) >> 2;                 // 8-aligned
        lo = d * sbytes4(w32[i]);
        hi = d * sbytes4(w32[i + 1u]);
    } else if (WTYPE == T_Q4_0) {
        uint b = e >> 5, j = e & 31u;
        float d = h2f(ld16(rb + n_in / 2u + 2u * b));
        uint i = (rb + 16u * b + (j & 15u)) >> 2;   // 8-aligned
        uint sh = j < 16u ? 0u : 4u;
        uint a = (w32[i] >> sh) & 0x0f0f0f0fu, c = (w32[i + 1u] >> sh) & 0x0f0f0f0fu;
        lo = d * (ubytes4(a) - 8.0);
        hi = d * (ubytes4(c) - 8.0);
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
        uint sb = e >> 8;
        uint j = e & 255u, hh = j >> 7, k = j & 127u, qt = k >> 5, l = k & 31u;
        uint qlo = rb + 128u * sb + 64u * hh + (qt & 1u) * 32u + l;   // 8-aligned
        uint qho = rb + q6k_qh(n_in) + 64u * sb + 32u * hh + l;
        uint ql0 = w32[qlo >> 2], ql1 = w32[(qlo >> 2) + 1u];
        uint qh0 = w32[qho >> 2], qh1 = w32[(qho >> 2) + 1u];
        uint nsh = (qt >> 1) * 4u, hsh = 2u * qt;
        uint so = rb + q6k_sc(n_in) + 16u * sb + 8u * hh + 2u * qt + (l >> 4);
        float d = h2f(ld16(rb + q6k_d(n_in) + 2u * sb)) * float(sbyte(ld16(so & ~1u), so & 1u));
        uint a = ((ql0 >> nsh) & 0x0f0f0f0fu) | (((qh0 >> hsh) & 0x03030303u) << 4);
        uint b = ((ql1 >> nsh) & 0x0f0f0f0fu) | (((qh1 >> hsh) & 0x03030303u) << 4);
        lo = d * (ubytes4(a) - 32.0);
        hi = d * (ubytes4(b) - 32.0);
    }
}
