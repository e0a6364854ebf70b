#version 450
// y[row_base + r] = sum_i W[r][i] * x[i] (+ bias[row_base + r]), one token (decode).
//
// Work split: a workgroup owns ROWS consecutive rows. A row is cut into
// "units" (a few bytes of weights and the x values they multiply, see below);
// invocation t takes units t, t+NT, ... of all ROWS rows at once, so that
// consecutive invocations read consecutive bytes of a row (coalesced) and
// every x value is loaded once (vec4 loads) for ROWS rows. The ROWS partial
// sums are then reduced across the workgroup in shared memory.
//
// Units (UNIT elements, wide loads; offsets in bytes from the row start):
//   F32   4 el: one uvec4
//   F16   8 el: one uvec4          BF16 8 el: one uvec4
//   Q8_0  8 el: quarter block: d + 8 int8 (2-aligned: five 16-bit loads)
//   Q4_0  8 el: quarter block: d + 4 bytes of qs (low nibbles: el 4l..4l+3,
//               high: 16+4l..): three 16-bit loads for 8 weights
//   Q4_K 32 el: one uvec4 of qs (16 bytes, aligned) + the 16-byte header (d, dmin, scales)
//   Q6_K 16 el: l = 4j..4j+3 of one 128-element half: 4 ql + 4 ql + 4 qh bytes, 4 scales, d
// Integer weights can be turned into floats without int->float conversions
// (quarter- or eighth-rate instructions on many GPUs): a byte v < 128 OR'ed
// into the mantissa of 0.5 is exactly 0.5 + v/256 (bits 16..22) or 0.5 + v/512
// (bits 15..22), so one integer op and one FMA per weight; the constant parts
// are removed once per unit with the sum of the unit's x values (exact enough:
// the offset is only 2-4x the value range, not 2^23 as with the usual magic
// number; relative error ~3e-6). DECODE = 1 selects it: on an H100 it gained
// 5-10% for Q4_0, Q4_K and Q6_K and lost 5% for Q8_0, so src/ops.c picks per
// type. (The quantized kernels there run at about 2e12 weights/s whatever the
// type: instruction issue, not conversions or bandwidth, is the limit.)
// Each loop iteration handles UNR units per invocation with unconditional
// loads (indices clamped, x zeroed past the end), so that several loads are in
// flight at once.
// (Measured on an H100 and dropped: whole Q4_0 blocks per invocation read as
// five 32-bit words, within 4%; rows staged through shared memory with
// coalesced uvec4 loads, 25% slower. Numbers in src/ops.c.)
// Spec constants: 0 NT (local size, a power of two), 1 WTYPE, 2 ROWS, 3 UNR, 4 DECODE.
#extension GL_GOOGLE_include_directive : require
#define W_BINDING 0
#include "ggml_blocks.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint ROWS = 4;
layout(constant_id = 3) const uint UNR = 1;
layout(constant_id = 4) const uint DECODE = 1;

layout(std430, binding = 1) restrict readonly buffer X { vec4 x4[]; };
layout(std430, binding = 2) restrict writeonly buffer Y { float y[]; };
layout(std430, binding = 3) restrict readonly buffer B { float bias[]; };
layout(push_constant) uniform P {
    uint n_in;       // elements per row
    uint n_rows;     // rows in this dispatch (bound weight range)
    uint row_base;   // index of the first bound row in y and bias
    uint has_bias;
    uint row_bytes;
    uint n_tok;      // unused here (1)
} pc;

const uint NT = gl_WorkGroupSize.x;
const uint UNIT = WTYPE == T_F32 ? 4u : WTYPE == T_Q4_K ? 32u : WTYPE == T_Q6_K ? 16u : 8u;
const uint NRUN = UNIT / 4u;   // vec4 runs of x per unit (at most 8: arrays below have 8)

shared float red[ROWS * NT];

// index into x4 of run i of unit u
uint xrun(uint u, uint i)
{
    if (WTYPE == T_F32) return u;
    if (WTYPE == T_F16 || WTYPE == T_BF16 || WTYPE == T_Q8_0) return 2u * u + i;
    if (WTYPE == T_Q4_0) return 8u * (u >> 2) + (u & 3u) + 4u * i;       // cols 32b+4l, 32b+16+4l
    if (WTYPE == T_Q4_K) {                                                // cols 256s+64c+16h (+32)
        uint s = u >> 3, c = (u >> 1) & 3u, h = u & 1u;
        return 64u * s + 16u * c + 4u * h + (i & 3u) + 8u * (i >> 2);
    }
    // Q6_K: cols 256s + 128hh + 4j + 32q
    uint s = u >> 4, hh = (u >> 3) & 1u, j = u & 7u;
    return 64u * s + 32u * hh + j + 8u * i;
}

// 0.5 + v/256 for the byte v (< 128) at byte j of w, exactly
float mg(uint w, uint j) { return uintBitsToFloat((((w >> (8u * j)) & 0xffu) << 16) | 0x3f000000u); }
// 0.5 + v/512 for the byte v (any) at byte j of w, exactly
float mg8(uint w, uint j) { return uintBitsToFloat((((w >> (8u * j)) & 0xffu) << 15) | 0x3f000000u); }
float mdot(uint w, vec4 x) { return dot(vec4(mg(w, 0u), mg(w, 1u), mg(w, 2u), mg(w, 3u)), x); }
float mdot8(uint w, vec4 x) { return dot(vec4(mg8(w, 0u), mg8(w, 1u), mg8(w, 2u), mg8(w, 3u)), x); }

float unit_dot(uint rb, uint u, vec4 xr[8], vec4 xs)
{
    if (WTYPE == T_F32) {
        return dot(uintBitsToFloat(w4[(rb >> 4) + u]), xr[0]);
    } else if (WTYPE == T_F16) {
        uvec4 w = w4[(rb >> 4) + u];
        return dot(vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)), xr[0]) +
               dot(vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)), xr[1]);
    } else if (WTYPE == T_BF16) {
        uvec4 w = w4[(rb >> 4) + u];
        return dot(vec4(bf2(w.x), bf2(w.y)), xr[0]) + dot(vec4(bf2(w.z), bf2(w.w)), xr[1]);
    } else if (WTYPE == T_Q8_0) {
        uint o = rb + (u >> 2) * 34u;
        uint i = o >> 1;
        float d = h2f(uint(w16[i]));
        i += 1u + 4u * (u & 3u);
        uint a = uint(w16[i]) | (uint(w16[i + 1u]) << 16);
        uint b = uint(w16[i + 2u]) | (uint(w16[i + 3u]) << 16);
        if (DECODE == 1u) // int8 b = u - 128 with u = b ^ 0x80: sum b x = 512 S - 384 sum x
            return d * (512.0 * (mdot8(a ^ 0x80808080u, xr[0]) + mdot8(b ^ 0x80808080u, xr[1])) - 384.0 * xs.x);
        return d * (dot(sbytes4(a), xr[0]) + dot(sbytes4(b), xr[1]));
    } else if (WTYPE == T_Q4_0) {
        uint i = (rb + (u >> 2) * 18u) >> 1;
        float d = h2f(uint(w16[i]));
        i += 1u + 2u * (u & 3u);
        uint q = uint(w16[i]) | (uint(w16[i + 1u]) << 16);
        // sum (q-8) x = sum q x - 8 sum x; xs.x holds sum of the unit's 8 x values
        if (DECODE == 1u) // sum q x = 256 S - 128 sum x
            return d * (256.0 * (mdot(q & 0x0f0f0f0fu, xr[0]) + mdot((q >> 4) & 0x0f0f0f0fu, xr[1])) - 136.0 * xs.x);
        return d * (dot(ubytes4(q & 0x0f0f0f0fu), xr[0]) + dot(ubytes4((q >> 4) & 0x0f0f0f0fu), xr[1]) - 8.0 * xs.x);
    } else if (WTYPE == T_Q4_K) {
        uint sb = (rb >> 4) + (u >> 3) * 9u;
        uint c = (u >> 1) & 3u;
        uvec4 h = w4[sb];
        uvec4 q = w4[sb + 1u + (u & 7u)];
        float sc0, m0, sc1, m1;
        q4k_scale_min(h.yzw, 2u * c, sc0, m0);
        q4k_scale_min(h.yzw, 2u * c + 1u, sc1, m1);
        float d = h2f(h.x & 0xffffu), dmin = h2f(h.x >> 16);
        if (DECODE == 1u) {
            float slo = mdot(q.x & 0x0f0f0f0fu, xr[0]) + mdot(q.y & 0x0f0f0f0fu, xr[1]) +
                        mdot(q.z & 0x0f0f0f0fu, xr[2]) + mdot(q.w & 0x0f0f0f0fu, xr[3]);
            float shi = mdot((q.x >> 4) & 0x0f0f0f0fu, xr[4]) + mdot((q.y >> 4) & 0x0f0f0f0fu, xr[5]) +
                        mdot((q.z >> 4) & 0x0f0f0f0fu, xr[6]) + mdot((q.w >> 4) & 0x0f0f0f0fu, xr[7]);
            return d * (sc0 * (256.0 * slo - 128.0 * xs.x) + sc1 * (256.0 * shi - 128.0 * xs.y)) -
                   dmin * (m0 * xs.x + m1 * xs.y);
        }
        float lo = dot(ubytes4(q.x & 0x0f0f0f0fu), xr[0]) + dot(ubytes4(q.y & 0x0f0f0f0fu), xr[1]) +
                   dot(ubytes4(q.z & 0x0f0f0f0fu), xr[2]) + dot(ubytes4(q.w & 0x0f0f0f0fu), xr[3]);
        float hi = dot(ubytes4((q.x >> 4) & 0x0f0f0f0fu), xr[4]) + dot(ubytes4((q.y >> 4) & 0x0f0f0f0fu), xr[5]) +
                   dot(ubytes4((q.z >> 4) & 0x0f0f0f0fu), xr[6]) + dot(ubytes4((q.w >> 4) & 0x0f0f0f0fu), xr[7]);
        // xs.x, xs.y: sums of the low / high x runs
        return d * (sc0 * lo + sc1 * hi) - dmin * (m0 * xs.x + m1 * xs.y);
    } else { // Q6_K
        uint sb = rb + (u >> 4) * 210u;
        uint hh = (u >> 3) & 1u, j = u & 7u;
        uint qlo = sb + 64u * hh + 4u * j;
        uint ql0 = ld16x2(qlo), ql1 = ld16x2(qlo + 32u);
        uint qh = ld16x2(sb + 128u + 32u * hh + 4u * j);
        uint so = sb + 192u + 8u * hh + (j >> 2);  // scales so, so+2, so+4, so+6 (same byte parity)
        uint k = so & 1u;
        float s0 = float(sbyte(ld16(so), k)), s1 = float(sbyte(ld16(so + 2u), k));
        float s2 = float(sbyte(ld16(so + 4u), k)), s3 = float(sbyte(ld16(so + 6u), k));
        float d = h2f(ld16(sb + 208u));
        uint q0 = (ql0 & 0x0f0f0f0fu) | ((qh & 0x03030303u) << 4);
        uint q1 = (ql1 & 0x0f0f0f0fu) | (((qh >> 2) & 0x03030303u) << 4);
        uint q2 = ((ql0 >> 4) & 0x0f0f0f0fu) | (((qh >> 4) & 0x03030303u) << 4);
        uint q3 = ((ql1 >> 4) & 0x0f0f0f0fu) | (((qh >> 6) & 0x03030303u) << 4);
        // xs: sums of the four runs (for the -32 offset)
        if (DECODE == 1u) // sum (q-32) x = 256 S - 160 sum x
            return d * (s0 * (256.0 * mdot(q0, xr[0]) - 160.0 * xs.x) + s1 * (256.0 * mdot(q1, xr[1]) - 160.0 * xs.y) +
                        s2 * (256.0 * mdot(q2, xr[2]) - 160.0 * xs.z) + s3 * (256.0 * mdot(q3, xr[3]) - 160.0 * xs.w));
        return d * (s0 * (dot(ubytes4(q0), xr[0]) - 32.0 * xs.x) + s1 * (dot(ubytes4(q1), xr[1]) - 32.0 * xs.y) +
                    s2 * (dot(ubytes4(q2), xr[2]) - 32.0 * xs.z) + s3 * (dot(ubytes4(q3), xr[3]) - 32.0 * xs.w));
    }
}

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint n_units = pc.n_in / UNIT;
    const uint n_groups = (pc.n_rows + ROWS - 1u) / ROWS;
    for (uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; g < n_groups;
         g += gl_NumWorkGroups.x * gl_NumWorkGroups.y) {
        uint rb[ROWS];
        [[unroll]] for (uint r = 0u; r < ROWS; r++)
            rb[r] = min(g * ROWS + r, pc.n_rows - 1u) * pc.row_bytes;  // past the end: re-read the last row
        float acc[ROWS];
        [[unroll]] for (uint r = 0u; r < ROWS; r++) acc[r] = 0.0;

        for (uint u0 = tid; u0 < n_units; u0 += NT * UNR) {
            [[unroll]] for (uint k = 0u; k < UNR; k++) {
                uint u = u0 + k * NT;
                bool ok = u < n_units;
                u = min(u, n_units - 1u);
                vec4 xr[8];
                [[unroll]] for (uint i = 0u; i < NRUN; i++) {
                    vec4 v = x4[xrun(u, i)];
                    xr[i] = ok ? v : vec4(0.0);   // every term is linear in x: a unit past the end adds 0
                }
                vec4 xs = vec4(0.0);
                if (WTYPE == T_Q4_0 || WTYPE == T_Q8_0) xs.x = dot(xr[0] + xr[1], vec4(1.0));
                if (WTYPE == T_Q4_K) {
                    xs.x = dot(xr[0] + xr[1] + xr[2] + xr[3], vec4(1.0));
                    xs.y = dot(xr[4] + xr[5] + xr[6] + xr[7], vec4(1.0));
                }
                if (WTYPE == T_Q6_K)
                    xs = vec4(dot(xr[0], vec4(1.0)), dot(xr[1], vec4(1.0)), dot(xr[2], vec4(1.0)), dot(xr[3], vec4(1.0)));
                [[unroll]] for (uint r = 0u; r < ROWS; r++) acc[r] += unit_dot(rb[r], u, xr, xs);
            }
        }

        // reduce ROWS values across the workgroup
        [[unroll]] for (uint r = 0u; r < ROWS; r++) red[r * NT + tid] = acc[r];
        barrier();
        for (uint s = NT / 2u; s > 0u; s >>= 1) {
            for (uint i = tid; i < ROWS * s; i += NT) {
                uint r = i / s, k = i - r * s;
                red[r * NT + k] += red[r * NT + k + s];
            }
            barrier();
        }
        if (tid < ROWS && g * ROWS + tid < pc.n_rows) {
            uint row = pc.row_base + g * ROWS + tid;
            float v = red[tid * NT];
            if (pc.has_bias != 0u) v += bias[row];
            y[row] = v;
        }
        barrier();
    }
}
