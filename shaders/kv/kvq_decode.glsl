// Decode attention over the packed part of the cache (2, 4 or 8-bit keys and
// values), flash-decoding style: one workgroup per (split of a sequence's
// packed groups, KV head, sequence of the batch). The NR query heads that share
// the KV head are computed together: every packed word is loaded and unpacked
// once for all of them. Partials (acc, max, sum) go to kvq_combine / attn_combine.
//
// The math (docs/KVCACHE.md, "decode attention"):
//   keys, per channel c in groups of G tokens:  k_tc = s_gc * code_tc + m_gc
//     q.k_t = sum_c (q_c s_gc) code_tc + sum_c q_c m_gc
//   values, per token t in groups of VG channels: v_td = s_tg * code_td + m_tg
//     o_d = sum_t (p_t s_tg) code_td + sum_t p_t m_tg
// Codes are centred (code - M, M = 2^(B-1)) so that the per-group constant is the
// middle of the group's range (m + M s) rather than its minimum: the two sums
// then stay small and lose less in FP16.
// Codes become numbers by bit tricks, never by integer-to-float conversion:
// (w >> (B*i)) & mask | 0x64006400, read as two halves, is (1024 + code_a,
// 1024 + code_b) for the two codes B*i and B*i + 16 bits into the word; one
// f16vec2 subtraction of 1024 + M gives the exact centred codes, and each
// f16vec2 FMA then serves two elements of one head. Products accumulate in
// FP16 over at most 32 channels (keys) or one tile of tokens (values) and are
// flushed to FP32. Query heads travel in pairs (f16vec2) where the math allows.
//
// Work split (WG invocations, TILE tokens per tile):
//   keys:   invocation = (word row, pair group, channel slice): a word row is the
//           32/KB tokens one code word holds; an invocation takes KP of its
//           16/KB token pairs over D/CS channels. Partial scores of the slices
//           meet in shared memory.
//   values: invocation = (token lane, word, pair group): word w of a token holds
//           32/VB channels; an invocation takes VP of its 16/VB channel pairs and
//           walks the tile's tokens with a stride of the lane count.
// Spec constants: 0 WG, 1 KBITS, 2 VBITS (2, 4, 8), 3 GROUP, 4 HEAD_DIM,
// 5 VGROUP, 6 NREP (query heads per KV head), 7 NR (heads per workgroup), 8 TILE,
// 9 KP, 10 VP (pairs per invocation), 11 SG_OPS (1: subgroup reductions).
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : enable
#include "attn_seq.glsl"

// ACC_F32 (kvq_decode_f32.comp): the same kernel in FP32 arithmetic, for widths
// where FP16 rounding would be as large as the quantization error itself (8 bits).
#ifdef ACC_F32
#define V2 vec2
#define S1 float
#define UNPACK2(x) unpackHalf2x16(x)
#else
#define V2 f16vec2
#define S1 float16_t
#define UNPACK2(x) unpackFloat2x16(x)
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KBITS = 2;
layout(constant_id = 2) const uint VBITS = 2;
layout(constant_id = 3) const uint GROUP = 32;
layout(constant_id = 4) const uint HEAD_DIM = 128;
layout(constant_id = 5) const uint VGROUP = 32;
layout(constant_id = 6) const uint NREP = 4;
layout(constant_id = 7) const uint NR = 4;
layout(constant_id = 8) const uint TILE = 512;
layout(constant_id = 9) const uint KP = 4;
layout(constant_id = 10) const uint VP = 4;
layout(constant_id = 11) const uint SG_OPS = 0;

layout(std430, binding = 1) restrict readonly buffer Q { float q[]; };       // [rows][n_head][D]
layout(std430, binding = 2) restrict writeonly buffer Part { float part[]; }; // [split][n_head][D + 2]

layout(buffer_reference, std430, buffer_reference_align = 16) restrict readonly buffer Words4 { uvec4 w[]; };
layout(buffer_reference, std430, buffer_reference_align = 4) restrict readonly buffer Words { uint w[]; };

layout(push_constant) uniform P {
    uint seq0;       // first table entry of this dispatch
    uint n_head;     // query heads of the model
    float scale;     // 1 / sqrt(head_dim)
} pc;

const uint WG = gl_WorkGroupSize.x;
const uint D = HEAD_DIM;
// keys
const uint KTPW = 32u / KBITS;            // tokens per code word
const uint KPPW = 16u / KBITS;            // token pairs per code word
const uint WPCK = GROUP * KBITS / 32u;    // words per channel per group
const uint KGRP = KPPW / KP;              // pair groups per word row
const uint KROWS = TILE / KTPW;           // word rows per tile
const uint CS = WG / (KROWS * KGRP);      // channel slices per word row
const uint CPS = D / CS;                  // channels per slice
const uint KMASK = (1u << KBITS) - 1u;
// values
const uint VTPW = 32u / VBITS;            // channels per code word
const uint VPPW = 16u / VBITS;            // channel pairs per code word
const uint WPTV = (D * VBITS + 31u) / 32u; // words per token (the last may be partial)
const uint VGRP = VPPW / VP;              // pair groups per word
const uint VLANES = WG / (WPTV * VGRP);   // token lanes
const uint NGV = D / VGROUP;              // value groups per token
const uint VMASK = (1u << VBITS) - 1u;

// shared: partial scores of the channel slices, reused at the end for the value lanes
const uint NRP = (NR + 1u) / 2u;          // head pairs (an odd NR gets a dummy head)
const uint RED_A = CS * TILE * NR, RED_B = VLANES * WPTV * VTPW;
const uint RED_FLOATS = RED_A > RED_B ? RED_A : RED_B;
shared float s_red[RED_FLOATS];
shared V2 s_p[TILE * NRP];           // probabilities of the tile, FP16, head pairs
shared V2 s_q[D * NRP];              // query (scaled), [channel][head pair], FP16

// centred codes of the pair (i, i + 16/bits) of a word
V2 pair_of(uint w, uint i, uint bits, uint mask)
{
    uint m2 = mask | (mask << 16);
#ifdef ACC_F32
    uint c = (w >> (bits * i)) & m2;   // code_a | code_b << 16, each below 2^23: the mantissa of 2^23 + code
    return vec2(uintBitsToFloat(0x4B000000u | (c & 0xffffu)), uintBitsToFloat(0x4B000000u | (c >> 16))) -
           vec2(float(8388608u + (1u << (bits - 1u))));
#else
    return unpackFloat2x16(((w >> (bits * i)) & m2) | 0x64006400u) - f16vec2(float16_t(1024u + (1u << (bits - 1u))));
#endif
}

// max or sum over the workgroup of v[r] for each head r (result in every invocation)
void wg_reduce(inout float v[NR], bool is_max)
{
    const uint t = gl_LocalInvocationID.x;
    if (SG_OPS != 0u) {
        [[unroll]] for (uint r = 0u; r < NR; r++) v[r] = is_max ? subgroupMax(v[r]) : subgroupAdd(v[r]);
        barrier();
        if (subgroupElect())
            [[unroll]] for (uint r = 0u; r < NR; r++) s_red[r * WG + gl_SubgroupID] = v[r];
        barrier();
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            float a = s_red[r * WG];
            for (uint i = 1u; i < gl_NumSubgroups; i++) a = is_max ? max(a, s_red[r * WG + i]) : a + s_red[r * WG + i];
            v[r] = a;
        }
        barrier();
        return;
    }
    barrier();
    [[unroll]] for (uint r = 0u; r < NR; r++) s_red[r * WG + t] = v[r];
    barrier();
    for (uint w = WG / 2u; w > 0u; w >>= 1u) {
        if (t < w)
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                float a = s_red[r * WG + t], b = s_red[r * WG + t + w];
                s_red[r * WG + t] = is_max ? max(a, b) : a + b;
            }
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < NR; r++) v[r] = s_red[r * WG];
    barrier();
}

// The code and scale words of value batch k0 (8 tokens of a lane); past the end, the last token again.
void load_values(Words vc, Words vm, uint tok0, uint vlane, uint vword, uint vg, uint k0, uint n_here,
                 out uint cw[8], out uint mw[8])
{
    [[unroll]] for (uint k = 0u; k < 8u; k++) {
        uint i = min(vlane + (k0 + k) * VLANES, n_here - 1u);
        cw[k] = vc.w[(tok0 + i) * WPTV + vword];
        mw[k] = vm.w[(tok0 + i) * NGV + vg];
    }
}

void main()
{
    const uint t = gl_LocalInvocationID.x;
    const uint hchunks = NREP / NR;
    const uint kvh = gl_WorkGroupID.y / hchunks, h0 = kvh * NREP + (gl_WorkGroupID.y % hchunks) * NR;
    const uint split = gl_WorkGroupID.x;
    AttnSeq sq = seqs[pc.seq0 + gl_WorkGroupID.z];
    if (split >= sq.n_qsplits) return;
    const float NEG = -1.0 / 0.0;

    // the query, scaled, [channel][head]
    for (uint i = t; i < D * NRP; i += WG) {
        uint rp = i / D, c = i % D, r = 2u * rp;
        float a = q[(sq.q_row * pc.n_head + h0 + r) * D + c] * pc.scale;
        float b = r + 1u < NR ? q[(sq.q_row * pc.n_head + h0 + r + 1u) * D + c] * pc.scale : 0.0;
        s_q[c * NRP + rp] = V2(a, b);
    }

    const uint b0 = split * sq.blocks_per_split, b1 = min(sq.nq, b0 + sq.blocks_per_split);
    const uint first = b0 * GROUP, count = (b1 - b0) * GROUP;   // store tokens of this split
    Words4 kc4 = Words4(sq.kcodes);
    Words4 km4 = Words4(sq.kmeta);
    Words vc = Words(sq.vcodes);
    Words vm = Words(sq.vmeta);

    // per-invocation roles
    const uint kslice = t % CS, kpg = (t / CS) % KGRP, krow = t / (CS * KGRP);   // keys: slice, pair group, word row
    const uint vpg = t % VGRP, vword = (t / VGRP) % WPTV, vlane = t / (VGRP * WPTV); // values: pair group, word, lane
    const uint vg = vword * VTPW / VGROUP;              // value group of the word

    float run_max[NR], run_sum[NR];
    float acc[NR][VP][2];                               // values: this invocation's channel pairs
    float vbias[NR];                                    // sum_t p_t m_tg of this word's group
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        run_max[r] = NEG;
        run_sum[r] = 0.0;
        vbias[r] = 0.0;
        [[unroll]] for (uint j = 0u; j < VP; j++) acc[r][j][0] = acc[r][j][1] = 0.0;
    }
    barrier();

    for (uint base = 0u; base < count; base += TILE) {
        const uint n_here = min(TILE, count - base);
        // the first batch of value words is loaded now, to arrive during the key phase
        const uint vtok0 = kvh * sq.n_blocks * GROUP + first + base;   // store token of tile index 0
        uint vcw[8], vmw[8];
        if (vlane < VLANES) load_values(vc, vm, vtok0, vlane, vword, vg, 0u, n_here, vcw, vmw);
        // ---------------- keys: partial scores of KTPW tokens x NR heads over CPS channels
        {
            const uint tok = first + base + krow * KTPW;          // first store token of the row
            const bool live = krow * KTPW < n_here;
            const uint blk = min(tok, first + count - 1u) / GROUP;
            const uint wrow = (tok % GROUP) / KTPW;
            const uint hb = kvh * sq.n_blocks + blk;
            const uint wbase = ((hb * WPCK + wrow) * D + kslice * CPS) / 4u;   // uvec4 index
            const uint mbase = (hb * D + kslice * CPS) / 4u;
            float sc[NR][2u * KP];   // tokens kpg*KP + j (low halves) and kpg*KP + j + KPPW (high)
            [[unroll]] for (uint r = 0u; r < NR; r++)
                [[unroll]] for (uint i = 0u; i < 2u * KP; i++) sc[r][i] = 0.0;
            for (uint c0 = 0u; c0 < CPS; c0 += 32u) {
                const uint nc = min(32u, CPS - c0);          // channels this chunk (a multiple of 4)
                V2 a[NR][KP];
                [[unroll]] for (uint r = 0u; r < NR; r++)
                    [[unroll]] for (uint j = 0u; j < KP; j++) a[r][j] = V2(0.0);
                V2 bias[NRP];                           // sum_c q_c (m + M s), head pairs
                [[unroll]] for (uint rp = 0u; rp < NRP; rp++) bias[rp] = V2(0.0);
                uvec4 wv[8], mv[8];
                [[unroll]] for (uint k = 0u; k < 8u; k++)
                    if (k * 4u < nc) {
                        wv[k] = kc4.w[wbase + (c0 >> 2) + k];
                        mv[k] = km4.w[mbase + (c0 >> 2) + k];
                    }
                [[unroll]] for (uint k = 0u; k < 8u; k++) {
                    if (k * 4u >= nc) break;
                    [[unroll]] for (uint e = 0u; e < 4u; e++) {
                        const uint c = kslice * CPS + c0 + k * 4u + e;
                        const uint w = wv[k][e];
                        const V2 sm = UNPACK2(mv[k][e]);   // (scale, min)
                        const S1 mid = fma(sm.x, S1(1u << (KBITS - 1u)), sm.y);   // m + M s
                        V2 qs[NRP];
                        [[unroll]] for (uint rp = 0u; rp < NRP; rp++) {
                            const V2 q2 = s_q[c * NRP + rp];
                            qs[rp] = q2 * sm.x;
                            bias[rp] = fma(q2, V2(mid), bias[rp]);
                        }
                        [[unroll]] for (uint j = 0u; j < KP; j++) {
                            const V2 x = pair_of(w, kpg * KP + j, KBITS, KMASK);
                            [[unroll]] for (uint r = 0u; r < NR; r++)
                                a[r][j] = fma(V2(qs[r / 2u][r % 2u]), x, a[r][j]);
                        }
                    }
                }
                [[unroll]] for (uint r = 0u; r < NR; r++) {
                    const float b = float(bias[r / 2u][r % 2u]);
                    [[unroll]] for (uint j = 0u; j < KP; j++) {
                        sc[r][j] += float(a[r][j].x) + b;
                        sc[r][j + KP] += float(a[r][j].y) + b;
                    }
                }
            }
            // partial scores of this slice: s_red[slice][token][head]
            barrier();
            [[unroll]] for (uint r = 0u; r < NR; r++)
                [[unroll]] for (uint j = 0u; j < KP; j++) {
                    const uint i = krow * KTPW + kpg * KP + j;
                    s_red[(kslice * TILE + i) * NR + r] = live ? sc[r][j] : 0.0;
                    s_red[(kslice * TILE + i + KPPW) * NR + r] = live ? sc[r][j + KP] : 0.0;
                }
            barrier();
        }
        // ---------------- scores of the tile: invocation t sums the slices of tokens t, t + WG, ...
        float lmax[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) lmax[r] = NEG;
        const uint TPI = TILE / WG;
        float s[TPI][NR];
        [[unroll]] for (uint k = 0u; k < TPI; k++) {
            uint i = t + k * WG;
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                float v = 0.0;
                [[unroll]] for (uint x = 0u; x < CS; x++) v += s_red[(x * TILE + i) * NR + r];
                s[k][r] = i < n_here ? v : NEG;
                lmax[r] = max(lmax[r], s[k][r]);
            }
        }
        wg_reduce(lmax, true);
        float nm[NR], lsum[NR], corr[NR];
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            nm[r] = max(run_max[r], lmax[r]);
            lsum[r] = 0.0;
        }
        [[unroll]] for (uint k = 0u; k < TPI; k++) {
            uint i = t + k * WG;
            float p[2 * NRP];
            p[2u * NRP - 1u] = 0.0;
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                p[r] = i < n_here ? exp(s[k][r] - nm[r]) : 0.0;
                lsum[r] += p[r];
            }
            [[unroll]] for (uint rp = 0u; rp < NRP; rp++) s_p[i * NRP + rp] = V2(p[2u * rp], p[2u * rp + 1u]);
        }
        wg_reduce(lsum, false);   // its barriers also publish s_p
        [[unroll]] for (uint r = 0u; r < NR; r++) {
            corr[r] = exp(run_max[r] - nm[r]);   // 0 while run_max is -inf
            run_sum[r] = run_sum[r] * corr[r] + lsum[r];
            run_max[r] = nm[r];
            vbias[r] *= corr[r];
            [[unroll]] for (uint j = 0u; j < VP; j++) {
                acc[r][j][0] *= corr[r];
                acc[r][j][1] *= corr[r];
            }
        }
        // ---------------- values: this lane's tokens of the tile, one code word each
        if (vlane < VLANES) {
            V2 a[NR][VP];
            [[unroll]] for (uint r = 0u; r < NR; r++)
                [[unroll]] for (uint j = 0u; j < VP; j++) a[r][j] = V2(0.0);
            V2 b16[NRP];
            [[unroll]] for (uint rp = 0u; rp < NRP; rp++) b16[rp] = V2(0.0);
            // batches of 8 tokens; the next batch's words are loaded before this one is used
            for (uint k0 = 0u; k0 * VLANES < n_here; k0 += 8u) {
                uint cw[8], mw[8];
                [[unroll]] for (uint k = 0u; k < 8u; k++) {
                    cw[k] = vcw[k];
                    mw[k] = vmw[k];
                }
                if ((k0 + 8u) * VLANES < n_here) load_values(vc, vm, vtok0, vlane, vword, vg, k0 + 8u, n_here, vcw, vmw);
                [[unroll]] for (uint k = 0u; k < 8u; k++) {
                    const uint i = vlane + (k0 + k) * VLANES;
                    if (i >= n_here) break;
                    const V2 sm = UNPACK2(mw[k]);
                    const S1 mid = fma(sm.x, S1(1u << (VBITS - 1u)), sm.y);
                    V2 ps[NRP];
                    [[unroll]] for (uint rp = 0u; rp < NRP; rp++) {
                        const V2 p2 = s_p[i * NRP + rp];
                        ps[rp] = p2 * sm.x;
                        b16[rp] = fma(p2, V2(mid), b16[rp]);
                    }
                    [[unroll]] for (uint j = 0u; j < VP; j++) {
                        const V2 x = pair_of(cw[k], vpg * VP + j, VBITS, VMASK);
                        [[unroll]] for (uint r = 0u; r < NR; r++)
                            a[r][j] = fma(V2(ps[r / 2u][r % 2u]), x, a[r][j]);
                    }
                }
            }
            [[unroll]] for (uint r = 0u; r < NR; r++) {
                vbias[r] += float(b16[r / 2u][r % 2u]);
                [[unroll]] for (uint j = 0u; j < VP; j++) {
                    acc[r][j][0] += float(a[r][j].x);
                    acc[r][j][1] += float(a[r][j].y);
                }
            }
        }
        barrier();   // s_p and s_red are rewritten by the next tile
    }

    // ---------------- partials: sum the token lanes, one head at a time
    const uint gsplit = sq.part_base + split;
    [[unroll]] for (uint r = 0u; r < NR; r++) {
        // channel d = vword * VTPW + j (low half) or + j + VPPW (high half)
        // channel d of word w: pair p = d % VTPW: low half p < VPPW, high half p - VPPW
        if (vlane < VLANES)
            [[unroll]] for (uint j = 0u; j < VP; j++) {
                const uint p = vpg * VP + j;
                s_red[(vlane * WPTV + vword) * VTPW + p] = acc[r][j][0] + vbias[r];
                s_red[(vlane * WPTV + vword) * VTPW + p + VPPW] = acc[r][j][1] + vbias[r];
            }
        barrier();
        const uint ob = (gsplit * pc.n_head + h0 + r) * (D + 2u);
        for (uint d = t; d < D; d += WG) {
            float v = 0.0;
            for (uint l = 0u; l < VLANES; l++) v += s_red[l * WPTV * VTPW + d];
            part[ob + d] = v;
        }
        if (t == 0u) {
            part[ob + D] = run_max[r];
            part[ob + D + 1u] = run_sum[r];
        }
        barrier();
    }
}
