#version 450
// Y[t][row_base + r] = sum_i W[r][i] * X[t][i] (+ bias), many tokens (prefill).
//
// Tiled: a workgroup computes a BM (rows) x BN (tokens) tile of Y, stepping
// through n_in in slices of BK = 32. Each step dequantizes a BM x 32 tile of
// W (8 elements per deq8 call, one 32-element Q4_0/Q8_0 block or a quarter of
// a K-quant sub-block per row) and a BN x 32 tile of X into shared memory,
// both stored k-major; each invocation accumulates TM x TN outputs in fp32,
// strided by BM/TM rows and BN/TN tokens so that shared reads are
// conflict-free (broadcast along the warp for W, consecutive for X).
// Spec constants: 0 NT = (BM/TM)*(BN/TN), 1 WTYPE, 2 BM, 3 BN, 4 TM, 5 TN.
#extension GL_GOOGLE_include_directive : require
#define W_BINDING 0
#include "ggml_blocks.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 2) const uint BM = 64;
layout(constant_id = 3) const uint BN = 64;
layout(constant_id = 4) const uint TM = 4;
layout(constant_id = 5) const uint TN = 4;

layout(std430, binding = 1) restrict readonly buffer X { vec4 x4[]; };
layout(std430, binding = 2) restrict writeonly buffer Y { float y[]; };
layout(std430, binding = 3) restrict readonly buffer B { float bias[]; };
layout(push_constant) uniform P {
    uint n_in, n_rows, row_base, has_bias, row_bytes, n_tok;
    uint y_stride;   // n_out: elements between tokens in y
} pc;

const uint NT = gl_WorkGroupSize.x;
const uint BK = 32u;
const uint MT = BM / TM, NTT = BN / TN;   // threads along rows / tokens
const uint PAD = 4u;

shared float Ws[BK * (BM + PAD)];
shared float Xs[BK * (BN + PAD)];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint tx = tid % NTT, ty = tid / NTT;
    const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;

    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < pc.n_in; k0 += BK) {
        // W tile: BM rows x 4 groups of 8
        for (uint i = tid; i < BM * 4u; i += NT) {
            uint m = i % BM, q = i / BM;
            uint row = min(m0 + m, pc.n_rows - 1u);
            vec4 lo, hi;
            deq8(row * pc.row_bytes, pc.n_in, k0 + 8u * q, lo, hi);
            uint base = (8u * q) * (BM + PAD) + m;
            [[unroll]] for (uint c = 0u; c < 4u; c++) {
                Ws[base + c * (BM + PAD)] = lo[c];
                Ws[base + (c + 4u) * (BM + PAD)] = hi[c];
            }
        }
        // X tile: BN tokens x 8 vec4
        for (uint i = tid; i < BN * 8u; i += NT) {
            uint n = i % BN, q = i / BN;
            uint t = n0 + n;
            vec4 v = t < pc.n_tok ? x4[(t * pc.n_in + k0) / 4u + q] : vec4(0.0);
            uint base = (4u * q) * (BN + PAD) + n;
            [[unroll]] for (uint c = 0u; c < 4u; c++) Xs[base + c * (BN + PAD)] = v[c];
        }
        barrier();
        for (uint k = 0u; k < BK; k++) {
            float a[TM], b[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++) a[i] = Ws[k * (BM + PAD) + ty + i * MT];
            [[unroll]] for (uint j = 0u; j < TN; j++) b[j] = Xs[k * (BN + PAD) + tx + j * NTT];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }

    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint r = m0 + ty + i * MT;
        if (r >= pc.n_rows) continue;
        float bv = pc.has_bias != 0u ? bias[pc.row_base + r] : 0.0;
        [[unroll]] for (uint j = 0u; j < TN; j++) {
            uint t = n0 + tx + j * NTT;
            if (t < pc.n_tok) y[t * pc.y_stride + pc.row_base + r] = acc[i][j] + bv;
        }
    }
}
