#version 450
// y[c][row_base + r] = sum_i W[r][i] * x[c][i] (+ bias), for NCOL tokens c at
// once: decode (NCOL 1) and batched decode (2..16), each weight read once for
// all tokens. W is in its GPU layout (src/ops/wlayout.h).
//
// Work split: a workgroup owns ROWS consecutive rows at a time (grid-stride
// over row groups). A row is cut into units of UNIT elements; invocation t
// takes units t, t+NT, ... of all ROWS rows, so that consecutive invocations
// read consecutive 16-byte words of a row, and a unit's x is loaded once for
// the ROWS rows. Each loop iteration issues the weight loads of UNR units x
// ROWS rows before any arithmetic, to keep that many 16-byte loads in flight
// per invocation. The ROWS x NCOL sums are reduced once per row group.
//
// Float weights (F32, F16, BF16) multiply fp32 x (binding 1 as vec4) with FMAs.
// Integer weights (Q4_0, Q8_0, Q4_K, Q6_K) multiply the 16-bit quantized
// activations of act_q.glsl (binding 1 as uvec4) with 4-lane integer dot
// products (idot.glsl): sum_i q_i X_i = 256 sudot(hi, q) + udot(lo, q) over 4
// weights at a time, so no weight is ever converted to a float; the scales
// are applied once per 16 or 32 weights. Work per 4 weights and row (the
// activation side is shared by the ROWS rows):
//   type   UNIT  weight loads per unit                     per 4 weights
//   F32      4   1 uvec4                                    4 FMA
//   F16      8   1 uvec4                                    2 cvt + 4 FMA
//   BF16     8   1 uvec4                                    2 shift/mask + 4 FMA
//   Q8_0    32   2 uvec4 (qs), fp16 d                       2 dot
//   Q4_0    32   1 uvec4 (qs), fp16 d                       1.5 mask + 2 dot
//   Q4_K    64   2 uvec4 (qs), uvec4 super-block header     1.5 mask + 2 dot
//   Q6_K    64   2 uvec4 (ql), 1 uvec4 (qh), 8 B scales, d  4 mask + 2 dot
// plus, per block of 32 (16 for Q6_K): combine the two sums, offset, convert,
// 2 multiply-adds; per Q4_K unit: decoding 4 six-bit scales.
//
// Spec constants: 0 NT (a power of two), 1 WTYPE, 2 ROWS, 3 NCOL, 4 UNR,
// 5 EPI: 0 y = result; 1 y += result (a residual add); 2 gated linear unit:
// the weight holds the rows of two matrices interleaved (gate row i at 2i, up
// row i at 2i+1; ROWS and row_base even) and y[c][(row_base + r) / 2] =
// silu(gate . x) * (up . x), silu(g) = g / (1 + exp(-g)).
#extension GL_GOOGLE_include_directive : require
#define W_BINDING 0
#include "ggml_blocks.glsl"
#include "idot.glsl"
#include "act_q.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint ROWS = 4;
layout(constant_id = 3) const uint NCOL = 1;
layout(constant_id = 4) const uint UNR = 1;
layout(constant_id = 5) const uint EPI = 0;

layout(std430, binding = 1) restrict readonly buffer XF { vec4 xf[]; };   // float weights: fp32 x
layout(std430, binding = 1) restrict readonly buffer XQ { uvec4 xq[]; };  // integer weights: act_q
layout(std430, binding = 2) buffer Y0 { float y0[]; };
layout(std430, binding = 3) restrict readonly buffer B { float bias[]; };
layout(std430, binding = 4) buffer Y1 { float y1[]; };
layout(std430, binding = 5) buffer Y2 { float y2[]; };
layout(push_constant) uniform P {
    uint n_in;       // elements per row
    uint n_rows;     // rows in this dispatch (bound weight range)
    uint row_base;   // index of the first bound row in y and bias
    uint has_bias;
    uint row_bytes;
    uint x_stride;   // uvec4 between tokens in x
    uint n_out;      // output rows of all dispatches (out_seg.glsl)
    uint seg_a, seg_b;
} pc;

#include "out_seg.glsl"

const uint NT = gl_WorkGroupSize.x;
const bool FLOATW = WTYPE == T_F32 || WTYPE == T_F16 || WTYPE == T_BF16;
const uint UNIT = WTYPE == T_F32 ? 4u : (WTYPE == T_F16 || WTYPE == T_BF16) ? 8u
                : (WTYPE == T_Q4_K || WTYPE == T_Q6_K) ? 64u : 32u;
const uint M4 = 0x0f0f0f0fu, M30 = 0x30303030u;

// The raw weights of one unit of one row.
struct WU { uvec4 a, b, c; uvec2 s; uint d, u; };
// The x of one unit of one token: fp32 bits in h (float weights), or the
// hi/lo words of 4 elements each and the meta of the blocks involved.
struct XU { uvec4 h[4]; uvec4 l[4]; uvec4 m[4]; };

WU load_w(uint rb, uint u)
{
    WU w;
    w.u = u;
    const uint r4 = rb >> 4;
    if (FLOATW) {
        w.a = w4[r4 + u];
    } else if (WTYPE == T_Q4_0) {
        w.a = w4[r4 + u];
        w.d = uint(w16[((rb + pc.n_in / 2u) >> 1) + u]);
    } else if (WTYPE == T_Q8_0) {
        w.a = w4[r4 + 2u * u];
        w.b = w4[r4 + 2u * u + 1u];
        w.d = uint(w16[((rb + pc.n_in) >> 1) + u]);
    } else if (WTYPE == T_Q4_K) {            // unit: chunk u & 3 of super-block u >> 2
        uint sb = r4 + 9u * (u >> 2);
        w.c = w4[sb];
        w.a = w4[sb + 1u + 2u * (u & 3u)];
        w.b = w4[sb + 2u + 2u * (u & 3u)];
    } else {                                 // Q6_K: half hh = (u >> 1) & 1, quarter hp = u & 1 of super-block u >> 2
        uint sb = u >> 2, hh = (u >> 1) & 1u, hp = u & 1u;
        uint ql = rb + 128u * sb + 64u * hh + 16u * hp;
        w.a = w4[ql >> 4];
        w.b = w4[(ql >> 4) + 2u];
        w.c = w4[(rb + q6k_qh(pc.n_in) + 64u * sb + 32u * hh + 16u * hp) >> 4];
        w.s = w8[(rb + q6k_sc(pc.n_in) + 16u * sb + 8u * hh) >> 3];
        w.d = uint(w16[((rb + q6k_d(pc.n_in)) >> 1) + sb]);
    }
    return w;
}

XU load_x(uint col, uint u)
{
    XU x;
    const uint base = col * pc.x_stride;
    if (FLOATW) {
        if (WTYPE == T_F32) {
            x.h[0] = floatBitsToUint(xf[base + u]);
        } else {
            x.h[0] = floatBitsToUint(xf[base + 2u * u]);
            x.h[1] = floatBitsToUint(xf[base + 2u * u + 1u]);
        }
    } else {
        const uint lo = base + pc.n_in / 16u, me = base + pc.n_in / 8u;
        if (WTYPE == T_Q4_0 || WTYPE == T_Q8_0) {
            [[unroll]] for (uint i = 0u; i < 2u; i++) {
                x.h[i] = xq[base + 2u * u + i];
                x.l[i] = xq[lo + 2u * u + i];
            }
            x.m[0] = xq[me + u];
        } else if (WTYPE == T_Q4_K) {
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                x.h[i] = xq[base + 4u * u + i];
                x.l[i] = xq[lo + 4u * u + i];
            }
            x.m[0] = xq[me + 2u * u];
            x.m[1] = xq[me + 2u * u + 1u];
        } else {  // Q6_K: 4 groups of 16 elements, 32 apart
            uint e0 = 256u * (u >> 2) + 128u * ((u >> 1) & 1u) + 16u * (u & 1u);
            [[unroll]] for (uint g = 0u; g < 4u; g++) {
                uint e = e0 + 32u * g;
                x.h[g] = xq[base + e / 16u];
                x.l[g] = xq[lo + e / 16u];
                x.m[g] = xq[me + e / 32u];
            }
        }
    }
    return x;
}

// sum_i q_i X_i over 4 weights q (unsigned bytes) and 4 activations (hi, lo words)
int qdot(uint q, uint h, uint l) { return 256 * sudot4(h, q) + udot4(l, q); }

// The unit's contribution sum_i W_i x_i (before the activations' factor r).
float unit_dot(WU w, XU x)
{
    if (WTYPE == T_F32) {
        return dot(uintBitsToFloat(w.a), uintBitsToFloat(x.h[0]));
    } else if (WTYPE == T_F16) {
        return dot(vec4(unpackHalf2x16(w.a.x), unpackHalf2x16(w.a.y)), uintBitsToFloat(x.h[0])) +
               dot(vec4(unpackHalf2x16(w.a.z), unpackHalf2x16(w.a.w)), uintBitsToFloat(x.h[1]));
    } else if (WTYPE == T_BF16) {
        return dot(vec4(bf2(w.a.x), bf2(w.a.y)), uintBitsToFloat(x.h[0])) +
               dot(vec4(bf2(w.a.z), bf2(w.a.w)), uintBitsToFloat(x.h[1]));
    } else if (WTYPE == T_Q4_0) {
        // word k of qs: low nibbles are elements 4k.., high nibbles 16+4k..
        int ih = 0, il = 0;
        [[unroll]] for (uint k = 0u; k < 4u; k++) {
            uint lo = w.a[k] & M4, hi = (w.a[k] >> 4) & M4;
            ih += sudot4(x.h[0][k], lo) + sudot4(x.h[1][k], hi);
            il += udot4(x.l[0][k], lo) + udot4(x.l[1][k], hi);
        }
        int i = 256 * ih + il - 8 * (int(x.m[0].y) + int(x.m[0].z));   // sum (q - 8) X
        return h2f(w.d) * uintBitsToFloat(x.m[0].x) * float(i);
    } else if (WTYPE == T_Q8_0) {
        int ih = 0, il = 0;
        [[unroll]] for (uint k = 0u; k < 4u; k++) {
            ih += sdot4(x.h[0][k], w.a[k]) + sdot4(x.h[1][k], w.b[k]);
            il += sudot4(w.a[k], x.l[0][k]) + sudot4(w.b[k], x.l[1][k]);
        }
        return h2f(w.d) * uintBitsToFloat(x.m[0].x) * float(256 * ih + il);
    } else if (WTYPE == T_Q4_K) {
        // chunk c: low nibbles are sub-block 2c (elements 0..31 of the unit), high ones 2c+1
        uint c = w.u & 3u;
        uvec4 h = w.c;
        uint sh = 16u * (c & 1u);
        uint A = h.y >> sh, B = h.z >> sh, C = h.w >> sh;
        uint sc0, sc1, m0, m1;
        if (c < 2u) {
            sc0 = A & 63u; sc1 = (A >> 8) & 63u; m0 = B & 63u; m1 = (B >> 8) & 63u;
        } else {
            sc0 = (C & 15u) | ((A >> 2) & 48u); sc1 = ((C >> 8) & 15u) | ((A >> 10) & 48u);
            m0 = ((C >> 4) & 15u) | ((B >> 2) & 48u); m1 = ((C >> 12) & 15u) | ((B >> 10) & 48u);
        }
        int i0 = 0, i1 = 0;
        [[unroll]] for (uint k = 0u; k < 8u; k++) {
            uint q = k < 4u ? w.a[k] : w.b[k - 4u];
            i0 += qdot(q & M4, x.h[k >> 2][k & 3u], x.l[k >> 2][k & 3u]);
            i1 += qdot((q >> 4) & M4, x.h[2u + (k >> 2)][k & 3u], x.l[2u + (k >> 2)][k & 3u]);
        }
        float d = h2f(h.x & 0xffffu), dmin = h2f(h.x >> 16);
        float X0 = float(int(x.m[0].y) + int(x.m[0].z)), X1 = float(int(x.m[1].y) + int(x.m[1].z));
        return uintBitsToFloat(x.m[0].x) * (d * float(sc0) * float(i0) - dmin * float(m0) * X0) +
               uintBitsToFloat(x.m[1].x) * (d * float(sc1) * float(i1) - dmin * float(m1) * X1);
    } else {  // Q6_K: group g holds 16 elements 32g.. of the quarter; scale byte 2g + hp of the half
        uint hp = w.u & 1u;
        float acc = 0.0;
        [[unroll]] for (uint g = 0u; g < 4u; g++) {
            int i = 0;
            [[unroll]] for (uint j = 0u; j < 4u; j++) {
                uint A = w.a[j], B = w.b[j], C = w.c[j], q;
                if (g == 0u) q = (A & M4) | ((C << 4) & M30);
                else if (g == 1u) q = (B & M4) | ((C << 2) & M30);
                else if (g == 2u) q = ((A >> 4) & M4) | (C & M30);
                else q = ((B >> 4) & M4) | ((C >> 2) & M30);
                i += qdot(q, x.h[g][j], x.l[g][j]);
            }
            i -= 32 * int(hp == 0u ? x.m[g].y : x.m[g].z);     // sum (q - 32) X
            float sc = float(bitfieldExtract(int(w.s[g >> 1]), int(16u * (g & 1u) + 8u * hp), 8));
            acc += sc * uintBitsToFloat(x.m[g].x) * float(i);
        }
        return h2f(w.d) * acc;
    }
}

// The blocks' sums of x^2 a unit covers, each block counted by one unit
// (Q6_K: the unit of the first 16 elements of its quarter).
float unit_ss(XU x, uint u)
{
    if (WTYPE == T_Q4_0 || WTYPE == T_Q8_0) return uintBitsToFloat(x.m[0].w);
    if (WTYPE == T_Q4_K) return uintBitsToFloat(x.m[0].w) + uintBitsToFloat(x.m[1].w);
    if ((u & 1u) != 0u) return 0.0;
    return uintBitsToFloat(x.m[0].w) + uintBitsToFloat(x.m[1].w) + uintBitsToFloat(x.m[2].w) + uintBitsToFloat(x.m[3].w);
}

const uint V = ROWS * NCOL + (FLOATW ? 0u : NCOL);   // sums per invocation (+ the norm's per token)
const uint SEG = V >= NT ? 1u : NT / V;  // reduction: segments per sum
const uint SEGL = (NT + SEG - 1u) / SEG; // partials per segment
shared float red[V * NT];
shared float part[V * SEG];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint n_units = pc.n_in / UNIT;
    const uint n_groups = (pc.n_rows + ROWS - 1u) / ROWS;
    for (uint g = gl_WorkGroupID.x; g < n_groups; g += gl_NumWorkGroups.x) {
        uint rb[ROWS];
        [[unroll]] for (uint r = 0u; r < ROWS; r++)
            rb[r] = min(g * ROWS + r, pc.n_rows - 1u) * pc.row_bytes;  // past the end: re-read the last row
        float acc[ROWS][NCOL], ss[NCOL];   // ss: the norm's sum of x^2 over the blocks this invocation read
        [[unroll]] for (uint r = 0u; r < ROWS; r++)
            [[unroll]] for (uint c = 0u; c < NCOL; c++) acc[r][c] = 0.0;
        [[unroll]] for (uint c = 0u; c < NCOL; c++) ss[c] = 0.0;

        for (uint u0 = tid; u0 < n_units; u0 += NT * UNR) {
            WU w[UNR][ROWS];
            [[unroll]] for (uint k = 0u; k < UNR; k++)
                [[unroll]] for (uint r = 0u; r < ROWS; r++) w[k][r] = load_w(rb[r], min(u0 + k * NT, n_units - 1u));
            [[unroll]] for (uint k = 0u; k < UNR; k++) {
                uint u = u0 + k * NT;
                [[unroll]] for (uint c = 0u; c < NCOL; c++) {
                    // a unit past the end of the row re-reads the last one (finite values) and adds 0
                    XU x = load_x(c, min(u, n_units - 1u));
                    [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                        float d = unit_dot(w[k][r], x);
                        acc[r][c] += u < n_units ? d : 0.0;
                    }
                    if (!FLOATW && u < n_units) ss[c] += unit_ss(x, u);
                }
            }
        }

        // reduce the V sums over the NT invocations: NT partials per sum into
        // SEG segment sums, then those into the result
        [[unroll]] for (uint r = 0u; r < ROWS; r++)
            [[unroll]] for (uint c = 0u; c < NCOL; c++) red[(r * NCOL + c) * NT + tid] = acc[r][c];
        if (!FLOATW)
            [[unroll]] for (uint c = 0u; c < NCOL; c++) red[(ROWS * NCOL + c) * NT + tid] = ss[c];
        barrier();
        for (uint i = tid; i < V * SEG; i += NT) {
            uint v = i / SEG, s = i - v * SEG;
            float t = 0.0;
            for (uint j = s * SEGL; j < min(NT, s * SEGL + SEGL); j++) t += red[v * NT + j];
            part[i] = t;
        }
        barrier();
        for (uint v = tid; v < ROWS * NCOL; v += NT) {
            uint r = v / NCOL, c = v - r * NCOL, row = g * ROWS + r;
            if (row >= pc.n_rows || (EPI == 2u && (r & 1u) != 0u)) continue;
            float rn = 1.0;   // the norm's factor 1 / sqrt(mean(x^2) + eps)
            if (!FLOATW) {
                uvec4 nm = xq[c * pc.x_stride + (5u * pc.n_in) / 32u];
                float sq = 0.0;
                for (uint s = 0u; s < SEG; s++) sq += part[(ROWS * NCOL + c) * SEG + s];
                if (nm.x != 0u) rn = inversesqrt(sq / float(pc.n_in) + uintBitsToFloat(nm.y));
            }
            float t = 0.0, u = 0.0;
            for (uint s = 0u; s < SEG; s++) t += part[v * SEG + s];
            t *= rn;
            row += pc.row_base;
            if (pc.has_bias != 0u) t += bias[row];
            if (EPI == 2u) {   // the up row follows its gate row
                for (uint s = 0u; s < SEG; s++) u += part[(v + NCOL) * SEG + s];
                u *= rn;
                if (pc.has_bias != 0u) u += bias[row + 1u];
                t = t / (1.0 + exp(-t)) * u;
                row /= 2u;
            }
            out_store(row, c, t, EPI == 1u, pc.n_out, pc.seg_a, pc.seg_b);
        }
        barrier();
    }
}
