#version 450
// Fused decode attention over the mixed-precision cache of one layer (split-K,
// flash-decoding): one workgroup per (split of the sequence, KV head). It reads
// the packed keys and values with their scales and mins, the FP16 sinks and the
// FP16 ring, and computes softmax(q K^T * scale) V for the NREP query heads that
// share the KV head (GQA: each key and value is read once for all of them).
// Splits 0..n_qsplits-1 cover the quantized groups; the others cover the FP16
// tokens (sinks and ring), fp16_chunk tokens each. The partial results (running max, sum of
// exponentials, weighted values) are combined by kvq_attn_reduce.comp.
//
// A split is processed in tiles of TILE tokens, each in two passes:
//   1. scores: invocation i owns tokens i, i + WG, ...; for each it walks the
//      channels, dequantizes k = code * scale + min and accumulates q . k for the
//      NREP heads. One max and one sum per tile (shared-memory reductions).
//   2. weighted values: invocation i owns channels i, i + WG, ...; for each token
//      it dequantizes v = code * scale + min once and adds p * v for the NREP heads.
// Reads in both passes are broadcast-friendly: neighbouring invocations read the
// same or neighbouring words. The workgroup size WG is a power of two; no
// subgroup size is assumed.
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KBITS = 2;
layout(constant_id = 2) const uint VBITS = 2;
layout(constant_id = 3) const uint GROUP = 32;
layout(constant_id = 4) const uint HEAD_DIM = 128;
layout(constant_id = 5) const uint VGROUP = 32;
layout(constant_id = 6) const uint NREP = 1;
layout(constant_id = 7) const uint TILE = 256;      // tokens per tile, a multiple of GROUP

const uint WG = gl_WorkGroupSize.x;
const uint KMAX = (1u << KBITS) - 1u;
const uint VMAX = (1u << VBITS) - 1u;
const uint WPCK = GROUP * KBITS / 32u;              // key words per channel per group
const uint WPTV = (HEAD_DIM * VBITS + 31u) / 32u;   // value words per token
const uint NGV = HEAD_DIM / VGROUP;                 // value groups per token
const uint CW = HEAD_DIM < WG ? HEAD_DIM : WG;      // pass 2: channels side by side
const uint TPC = WG / CW;                           // pass 2: token parts per channel
const uint DPT = (HEAD_DIM + CW - 1u) / CW;         // pass 2: channels per invocation
const uint TPT = (TILE + WG - 1u) / WG;             // tokens per invocation in pass 1

layout(std430, binding = 0) restrict readonly buffer Q { float q[]; };          // [n_head][D]
layout(std430, binding = 1) restrict readonly buffer KC { uint kcodes[]; };
layout(std430, binding = 2) restrict readonly buffer KM { uint kmeta[]; };
layout(std430, binding = 3) restrict readonly buffer VC { uint vcodes[]; };
layout(std430, binding = 4) restrict readonly buffer VM { uint vmeta[]; };
layout(std430, binding = 5) restrict readonly buffer KS { float16_t ksinks[]; }; // [H][S][D]
layout(std430, binding = 6) restrict readonly buffer KR { float16_t kring[]; };  // [H][RING][D]
layout(std430, binding = 7) restrict readonly buffer VS { float16_t vsinks[]; };
layout(std430, binding = 8) restrict readonly buffer VR { float16_t vring[]; };
layout(std430, binding = 9) restrict writeonly buffer O { float part[]; };      // [n_head][n_splits][D + 2]

layout(push_constant) uniform P {
    uint n_sinks;          // S
    uint n_ring;           // ring slots
    uint nq;               // quantized groups
    uint n_blocks;         // group capacity of the store (per head)
    uint p_end;            // positions 0..p_end-1 are visible
    uint blocks_per_split;
    uint n_splits;
    float scale;
    uint n_qsplits;        // splits 0..n_qsplits-1: packed groups; the rest: FP16 tokens
    uint fp16_chunk;       // FP16 tokens per FP16 split
} pc;

shared float s_q[HEAD_DIM * NREP];     // [channel][head]: the NREP values of a channel are adjacent
shared float s_p[TILE * NREP];          // [token][head]: scores, then probabilities, of the tile
shared float s_red[NREP * WG];
shared vec2 s_km[(TILE / GROUP) * HEAD_DIM];   // key (scale, min) of the tile's groups, as floats
shared vec2 s_vm[TILE * NGV];                   // value (scale, min) of the tile's tokens
shared float s_acc[TPC > 1u ? WG * DPT : 1u];   // pass 2 partials of the token parts

float h2f(uint h) { return unpackHalf2x16(h).x; }

// float(code) for code < 2^23 without the (slow) integer conversion: the code
// becomes the mantissa of 2^23 + code.
float ufloat(uint code) { return uintBitsToFloat(0x4B000000u | code) - 8388608.0; }

uint extract(uint w0, uint w1, uint off, uint bits, uint mask)
{
    uint v = w0 >> off;
    if (off + bits > 32u) v |= w1 << (32u - off);
    return v & mask;
}

// Reduce s_red[r * WG + i] over i (max or sum) for every r; result in s_red[r * WG].
void reduce(bool is_max)
{
    uint t = gl_LocalInvocationID.x;
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1u) {
        if (t < w)
            [[unroll]] for (uint r = 0u; r < NREP; r++) {
                float a = s_red[r * WG + t], b = s_red[r * WG + t + w];
                s_red[r * WG + t] = is_max ? max(a, b) : a + b;
            }
        barrier();
    }
}

// Position of token i of the FP16 split: sinks first, then the ring's tokens.
uint fp16_pos(uint i, uint S, uint r0) { return i < S ? i : r0 + (i - S); }

void main()
{
    const uint split = gl_WorkGroupID.x, h = gl_WorkGroupID.y, t = gl_LocalInvocationID.x;
    const float NEG = -1.0 / 0.0;
    const bool quant = split < pc.n_qsplits;
    for (uint i = t; i < NREP * HEAD_DIM; i += WG) s_q[(i % HEAD_DIM) * NREP + i / HEAD_DIM] = q[(h * NREP) * HEAD_DIM + i];

    // token range of this split
    uint first, count;                      // quantized: first store token; FP16: first index
    const uint S = min(pc.n_sinks, pc.p_end), r0 = pc.n_sinks + pc.nq * GROUP;
    if (quant) {
        uint b0 = split * pc.blocks_per_split, b1 = min(pc.nq, b0 + pc.blocks_per_split);
        first = b0 * GROUP;
        count = b1 > b0 ? (b1 - b0) * GROUP : 0u;
    } else {
        uint n_fp16 = S + (pc.p_end > r0 ? pc.p_end - r0 : 0u);
        first = (split - pc.n_qsplits) * pc.fp16_chunk;
        count = first < n_fp16 ? min(pc.fp16_chunk, n_fp16 - first) : 0u;
    }

    float run_max[NREP], run_sum[NREP], acc[NREP][DPT];
    [[unroll]] for (uint r = 0u; r < NREP; r++) {
        run_max[r] = NEG;
        run_sum[r] = 0.0;
        [[unroll]] for (uint j = 0u; j < DPT; j++) acc[r][j] = 0.0;
    }
    barrier();

    for (uint base = 0u; base < count; base += TILE) {
        const uint n_here = min(TILE, count - base);
        if (quant) {
            // scales and mins of the tile as floats, converted once (not once per element)
            uint g0 = h * pc.n_blocks + (first + base) / GROUP;
            for (uint i = t; i < (n_here / GROUP) * HEAD_DIM; i += WG) {
                uint mv = kmeta[g0 * HEAD_DIM + i];
                s_km[i] = vec2(h2f(mv & 0xffffu), h2f(mv >> 16));
            }
            uint v0 = h * pc.n_blocks * GROUP + first + base;
            for (uint i = t; i < n_here * NGV; i += WG) {
                uint mv = vmeta[v0 * NGV + i];
                s_vm[i] = vec2(h2f(mv & 0xffffu), h2f(mv >> 16));
            }
            barrier();
        }
        // ---------------- pass 1: scores of the tile
        float lmax[NREP];
        [[unroll]] for (uint r = 0u; r < NREP; r++) lmax[r] = NEG;
        [[unroll]] for (uint k = 0u; k < TPT; k++) {
            uint i = t + k * WG;
            if (i >= TILE) break;
            float sc[NREP];
            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = NEG;
            if (i < n_here) {
                [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] = 0.0;
                if (quant) {
                    uint tok = first + base + i;                  // token of the store
                    uint hb = h * pc.n_blocks + tok / GROUP;      // its group
                    uint bit = (tok % GROUP) * KBITS, w = bit >> 5u, off = bit & 31u;
                    uint kb = (hb * WPCK + w) * HEAD_DIM, mb = (i / GROUP) * HEAD_DIM;   // tile-relative group
                    // 8 channels at a time: their loads are issued together (memory-level parallelism)
                    for (uint c0 = 0u; c0 < HEAD_DIM; c0 += 8u) {
                        uint w0[8], w1[8];
                        [[unroll]] for (uint k = 0u; k < 8u; k++) {
                            w0[k] = kcodes[kb + c0 + k];
                            w1[k] = (off + KBITS > 32u) ? kcodes[kb + HEAD_DIM + c0 + k] : 0u;
                        }
                        [[unroll]] for (uint k = 0u; k < 8u; k++) {
                            vec2 sm = s_km[mb + c0 + k];
                            float kv = ufloat(extract(w0[k], w1[k], off, KBITS, KMAX)) * sm.x + sm.y;
                            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] += s_q[(c0 + k) * NREP + r] * kv;
                        }
                    }
                } else {
                    uint p = fp16_pos(first + base + i, S, r0);
                    bool sink = p < pc.n_sinks;
                    uint kb = sink ? (h * pc.n_sinks + p) * HEAD_DIM
                                   : (h * pc.n_ring + (p - pc.n_sinks) % pc.n_ring) * HEAD_DIM;
                    for (uint c0 = 0u; c0 < HEAD_DIM; c0 += 8u) {
                        float kv[8];
                        [[unroll]] for (uint k = 0u; k < 8u; k++)
                            kv[k] = sink ? float(ksinks[kb + c0 + k]) : float(kring[kb + c0 + k]);
                        [[unroll]] for (uint k = 0u; k < 8u; k++)
                            [[unroll]] for (uint r = 0u; r < NREP; r++) sc[r] += s_q[(c0 + k) * NREP + r] * kv[k];
                    }
                }
                [[unroll]] for (uint r = 0u; r < NREP; r++) {
                    sc[r] *= pc.scale;
                    lmax[r] = max(lmax[r], sc[r]);
                }
            }
            [[unroll]] for (uint r = 0u; r < NREP; r++) s_p[i * NREP + r] = sc[r];
        }
        // tile max, new running max, probabilities, tile sum
        [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * WG + t] = lmax[r];
        reduce(true);
        float nm[NREP], lsum[NREP];
        [[unroll]] for (uint r = 0u; r < NREP; r++) {
            nm[r] = max(run_max[r], s_red[r * WG]);
            lsum[r] = 0.0;
        }
        barrier();
        [[unroll]] for (uint k = 0u; k < TPT; k++) {
            uint i = t + k * WG;
            if (i >= TILE) break;
            [[unroll]] for (uint r = 0u; r < NREP; r++) {
                float p = i < n_here ? exp(s_p[i * NREP + r] - nm[r]) : 0.0;
                s_p[i * NREP + r] = p;
                lsum[r] += p;
            }
        }
        [[unroll]] for (uint r = 0u; r < NREP; r++) s_red[r * WG + t] = lsum[r];
        reduce(false);
        [[unroll]] for (uint r = 0u; r < NREP; r++) {
            float corr = exp(run_max[r] - nm[r]);   // 0 while run_max is -inf
            run_sum[r] = run_sum[r] * corr + s_red[r * WG];
            run_max[r] = nm[r];
            [[unroll]] for (uint j = 0u; j < DPT; j++) acc[r][j] *= corr;
        }
        // ---------------- pass 2: weighted values
        const uint tpart = t / CW;           // this invocation's tokens: runs of 8, every TPC-th
        [[unroll]] for (uint j = 0u; j < DPT; j++) {
            uint d = t % CW + j * CW;
            if (d < HEAD_DIM) {
                float a[NREP];
                [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] = 0.0;
                if (quant) {
                    uint g = d / VGROUP, vbit = d * VBITS, vw = vbit >> 5u, voff = vbit & 31u;
                    uint tok0 = h * pc.n_blocks * GROUP + first + base;
                    // 8 tokens at a time (n_here is a multiple of GROUP >= 32 for packed tiles)
                    for (uint i0 = tpart * 8u; i0 < n_here; i0 += 8u * TPC) {
                        uint w0[8], w1[8];
                        [[unroll]] for (uint k = 0u; k < 8u; k++) {
                            uint vb = (tok0 + i0 + k) * WPTV + vw;
                            w0[k] = vcodes[vb];
                            w1[k] = (voff + VBITS > 32u) ? vcodes[vb + 1u] : 0u;
                        }
                        [[unroll]] for (uint k = 0u; k < 8u; k++) {
                            uint i = i0 + k;
                            vec2 sm = s_vm[i * NGV + g];
                            float v = ufloat(extract(w0[k], w1[k], voff, VBITS, VMAX)) * sm.x + sm.y;
                            [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] += s_p[i * NREP + r] * v;
                        }
                    }
                } else {
                    for (uint i0 = tpart * 8u; i0 < n_here; i0 += 8u * TPC) {
                        float v[8];
                        [[unroll]] for (uint k = 0u; k < 8u; k++) {
                            uint p = fp16_pos(first + base + min(i0 + k, n_here - 1u), S, r0);
                            v[k] = p < pc.n_sinks ? float(vsinks[(h * pc.n_sinks + p) * HEAD_DIM + d])
                                                  : float(vring[(h * pc.n_ring + (p - pc.n_sinks) % pc.n_ring) * HEAD_DIM + d]);
                        }
                        [[unroll]] for (uint k = 0u; k < 8u; k++)
                            if (i0 + k < n_here)
                                [[unroll]] for (uint r = 0u; r < NREP; r++) a[r] += s_p[(i0 + k) * NREP + r] * v[k];
                    }
                }
                [[unroll]] for (uint r = 0u; r < NREP; r++) acc[r][j] += a[r];
            }
        }
        barrier();
    }

    // ---------------- partials: (acc, max, sum) per query head; token parts added first
    [[unroll]] for (uint r = 0u; r < NREP; r++) {
        uint ob = ((h * NREP + r) * pc.n_splits + split) * (HEAD_DIM + 2u);
        if (TPC > 1u) {
            [[unroll]] for (uint j = 0u; j < DPT; j++) s_acc[t * DPT + j] = acc[r][j];
            barrier();
            if (t < CW)
                [[unroll]] for (uint j = 0u; j < DPT; j++) {
                    float a = 0.0;
                    for (uint k = 0u; k < TPC; k++) a += s_acc[(k * CW + t) * DPT + j];
                    acc[r][j] = a;
                }
            barrier();
        }
        [[unroll]] for (uint j = 0u; j < DPT; j++) {
            uint d = t + j * CW;
            if (t < CW && d < HEAD_DIM) part[ob + d] = acc[r][j];
        }
        if (t == 0u) {
            part[ob + HEAD_DIM] = run_max[r];
            part[ob + HEAD_DIM + 1u] = run_sum[r];
        }
    }
}
