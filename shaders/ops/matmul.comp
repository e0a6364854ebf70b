#version 450
// Y[t][row_base + r] = sum_i W[r][i] * X[t][i] (+ bias), many tokens (prefill).
//
// Tiled: a workgroup computes a BM (rows) x BN (tokens) tile of Y, stepping
// through n_in in slices of BK = 32. For each slice, a BM x 32 tile of W is
// dequantized (8 elements per deq8 call) and a BN x 32 tile of X converted
// into shared memory, both k-major (Ws[k][m], Xs[k][n]). The global loads of
// the next slice are issued into registers before the arithmetic of the
// current one, so that they are in flight meanwhile (tile_load / tile_store;
// one shared buffer).
// Two modules share all of that code and differ only in the arithmetic:
//  - scalar (matmul): fp32 tiles; each invocation accumulates TM x TN outputs,
//    strided by BM/TM rows and BN/TN tokens so that shared reads are
//    conflict-free (broadcast along the subgroup for W, consecutive for X).
//  - cooperative matrix (matmul_coopmat, compiled with VKM_COOPMAT; built and
//    used only on devices with VK_NV_cooperative_matrix): fp16 tiles; subgroup
//    s accumulates a WM x WN block of the tile in fp32 matrices of lM x lN,
//    multiplying lM x lK fragments of Ws (read column-major: Ws is k-major) by
//    lK x lN fragments of Xs (row-major), lK at a time.
// Spec constants: 0 NT, 1 WTYPE, 2 BM, 3 BN, then 4 TM, 5 TN, 6 ADD (scalar)
// or 4 WM, 5 WN, 6 lM, 7 lN, 8 lK, 9 ADD (cooperative matrix; NT =
// (BM/WM)(BN/WN) subgroups of the device's size). ADD = 1: y += result.
// The rows may go to up to three outputs (out_seg.glsl: the fused Q/K/V product).
#extension GL_GOOGLE_include_directive : require
#define W_BINDING 0
#include "ggml_blocks.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint BM = 64;
layout(constant_id = 3) const uint BN = 64;
#ifdef VKM_COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(constant_id = 4) const uint WM = 64;
layout(constant_id = 5) const uint WN = 32;
layout(constant_id = 6) const uint lM = 16;
layout(constant_id = 7) const uint lN = 8;
layout(constant_id = 8) const uint lK = 16;
layout(constant_id = 9) const uint ADD = 0;    // 1: y += result (a residual add)
#define SH_T float16_t
const uint PAD = 8u;   // fp16: rows stay multiples of 16 bytes (fragment loads)
#else
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;
layout(constant_id = 6) const uint ADD = 0;    // 1: y += result (a residual add)
#define SH_T float
const uint PAD = 4u;
#endif

layout(std430, binding = 1) restrict readonly buffer X { vec4 x4[]; };
layout(std430, binding = 2) buffer Y0 { float y0[]; };
layout(std430, binding = 3) restrict readonly buffer B { float bias[]; };
layout(std430, binding = 4) buffer Y1 { float y1[]; };
layout(std430, binding = 5) buffer Y2 { float y2[]; };
layout(push_constant) uniform P {
    uint n_in, n_rows, row_base, has_bias, row_bytes, n_tok;
    uint n_out, seg_a, seg_b;   // the outputs (out_seg.glsl)
} pc;
#include "out_seg.glsl"

const uint NT = gl_WorkGroupSize.x;
const uint BK = 32u;
const uint SW = BM + PAD, SX = BN + PAD;   // row strides of the shared tiles
const uint WJ = (BM * 4u + NT - 1u) / NT;  // deq8 calls per invocation per slice (W: BM x 4 groups of 8)
const uint XJ = (BN * 8u + NT - 1u) / NT;  // vec4 loads per invocation per slice (X: BN x 8 vec4)

shared SH_T Ws[BK * SW];
shared SH_T Xs[BK * SX];

// ---- the slice of W and X: global -> registers -> shared (both modules)
vec4 wlo[WJ], whi[WJ], xv[XJ];

void tile_load(uint m0, uint n0, uint k0)
{
    const uint tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint j = 0u; j < WJ; j++) {
        uint i = min(tid + j * NT, BM * 4u - 1u), m = i % BM, q = i / BM;   // (a copy of the last item when NT does not divide 4 BM)
        uint row = min(m0 + m, pc.n_rows - 1u);   // past the end: re-read the last row (never stored)
        uint k = min(k0 + 8u * q, pc.n_in - 8u);  // past n_in (rows of 8k elements): zeros below
        deq8(row * pc.row_bytes, pc.n_in, k, wlo[j], whi[j]);
        if (k0 + 8u * q >= pc.n_in) wlo[j] = whi[j] = vec4(0.0);
    }
    [[unroll]] for (uint j = 0u; j < XJ; j++) {
        uint i = min(tid + j * NT, BN * 8u - 1u), n = i % BN, q = i / BN, t = n0 + n;
        xv[j] = t < pc.n_tok && k0 + 4u * q < pc.n_in ? x4[(t * pc.n_in + k0) / 4u + q] : vec4(0.0);
    }
}

void tile_store()
{
    const uint tid = gl_LocalInvocationID.x;
    [[unroll]] for (uint j = 0u; j < WJ; j++) {
        uint i = tid + j * NT, m = i % BM, q = i / BM;
        if (i >= BM * 4u) break;
        uint base = (8u * q) * SW + m;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            Ws[base + c * SW] = SH_T(wlo[j][c]);
            Ws[base + (c + 4u) * SW] = SH_T(whi[j][c]);
        }
    }
    [[unroll]] for (uint j = 0u; j < XJ; j++) {
        uint i = tid + j * NT, n = i % BN, q = i / BN;
        if (i >= BN * 8u) break;
        uint base = (4u * q) * SX + n;
        [[unroll]] for (uint c = 0u; c < 4u; c++) Xs[base + c * SX] = SH_T(xv[j][c]);
    }
}

void store_y(uint row, uint t, float v)   // row, t: inside the tile's range of this dispatch
{
    if (row >= pc.n_rows || t >= pc.n_tok) return;
    row += pc.row_base;
    out_store(row, t, v + (pc.has_bias != 0u ? bias[row] : 0.0), ADD != 0u, pc.n_out, pc.seg_a, pc.seg_b);
}

#ifdef VKM_COOPMAT
// ---- cooperative matrices: subgroup s owns rows wm*WM.., tokens wn*WN.. of the tile
const uint FM = WM / lM, FN = WN / lN;
shared float Cs[(BM / WM) * (BN / WN) * lM * lN];   // per-subgroup staging of one result matrix

void main()
{
    const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    const uint s = gl_SubgroupID, wm = s % (BM / WM), wn = s / (BM / WM);
    fcoopmatNV<32, gl_ScopeSubgroup, lM, lN> acc[FM][FN];
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, lM, lN>(0.0);

    tile_load(m0, n0, 0u);
    for (uint k0 = 0u; k0 < pc.n_in; k0 += BK) {
        barrier();                       // the previous slice's arithmetic is done with the tiles
        tile_store();
        barrier();
        if (k0 + BK < pc.n_in) tile_load(m0, n0, k0 + BK);   // in flight during the arithmetic
        [[unroll]] for (uint kk = 0u; kk < BK; kk += lK) {
            fcoopmatNV<16, gl_ScopeSubgroup, lM, lK> a[FM];
            fcoopmatNV<16, gl_ScopeSubgroup, lK, lN> b[FN];
            [[unroll]] for (uint i = 0u; i < FM; i++) coopMatLoadNV(a[i], Ws, kk * SW + wm * WM + i * lM, SW, true);
            [[unroll]] for (uint j = 0u; j < FN; j++) coopMatLoadNV(b[j], Xs, kk * SX + wn * WN + j * lN, SX, false);
            [[unroll]] for (uint i = 0u; i < FM; i++)
                [[unroll]] for (uint j = 0u; j < FN; j++) acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
        }
    }

    // results: each matrix through the subgroup's staging area (column-major: m fastest)
    const uint cs = s * lM * lN;
    [[unroll]] for (uint i = 0u; i < FM; i++)
        [[unroll]] for (uint j = 0u; j < FN; j++) {
            coopMatStoreNV(acc[i][j], Cs, cs, lM, true);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = gl_SubgroupInvocationID; e < lM * lN; e += gl_SubgroupSize) {
                uint m = e % lM, n = e / lM;
                store_y(m0 + wm * WM + i * lM + m, n0 + wn * WN + j * lN + n, Cs[cs + e]);
            }
            subgroupBarrier();
        }
}
#else
// ---- scalar: invocation (ty, tx) owns rows ty + i*MT, tokens tx + j*NTT of the tile
const uint MT = BM / TM, NTT = BN / TN;

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint tx = tid % NTT, ty = tid / NTT;
    const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;

    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] = 0.0;

    tile_load(m0, n0, 0u);
    for (uint k0 = 0u; k0 < pc.n_in; k0 += BK) {
        barrier();                       // the previous slice's arithmetic is done with the tiles
        tile_store();
        barrier();
        if (k0 + BK < pc.n_in) tile_load(m0, n0, k0 + BK);   // in flight during the arithmetic
        for (uint k = 0u; k < BK; k++) {
            float a[TM], b[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++) a[i] = Ws[k * SW + ty + i * MT];
            [[unroll]] for (uint j = 0u; j < TN; j++) b[j] = Xs[k * SX + tx + j * NTT];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] += a[i] * b[j];
        }
    }

    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++) store_y(m0 + ty + i * MT, n0 + tx + j * NTT, acc[i][j]);
}
#endif
