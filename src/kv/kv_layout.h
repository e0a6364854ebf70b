/* The packed layout of the KV cache: the ONE definition of where every code,
 * scale/min pair and FP16 element lives, included by the C code (src/kv, the
 * CPU reference, the benchmarks) and by the kernels of shaders/kv (glslang
 * runs with -I src). A change of layout (interleaving codes, another meta packing) is a
 * change of this file; tests/test_kvquant.c and tests/test_kv_cache.c check the
 * GPU against the CPU through it.
 *
 * It is written in the common subset of C11 and GLSL 4.50: integer functions
 * only, every literal unsigned. KVL_IDX is a word or element index (uint64_t
 * in C, so sizes do not overflow; uint in GLSL, where a buffer is smaller than
 * 4 GiB anyway); KVL_U32 is a 32-bit word.
 *
 * Names (per layer, for K and for V of the packed widths 2, 3, 4, 8):
 *   H heads (KV heads), D head_dim, G group (tokens per key block),
 *   VG value group (channels per value scale: G, or D when G does not divide D),
 *   S sinks, R window, NB blocks of the store per head, b bits.
 *
 * Keys, quantized per channel over blocks of G tokens.
 *   codes  [H][NB][G*b/32][D] u32: head-block hb = h*NB + block; the words of
 *          channel c are strided by D (channel-minor: invocations that own
 *          neighbouring channels read neighbouring words). Token t of the
 *          block is at bit t*b of the concatenation of the channel's G*b/32
 *          words (3-bit codes cross word boundaries).
 *   meta   [H][NB][D] u32: FP16 scale | FP16 min << 16 of (block, channel).
 * Values, quantized per token over groups of VG channels.
 *   codes  [H][NB*G][ceil(D*b/32)] u32: token slot ht = h*NB*G + t;
 *          channel d at bit d*b of the token's words.
 *   meta   [H][NB*G][D/VG] u32: FP16 scale | FP16 min << 16.
 * FP16 parts (and a whole side at 16 bits), element (h, slot, d):
 *   sinks  [H][S][D]     position p < S at slot p
 *   ring   [H][ring][D]  position p >= S at slot (p - S) % ring
 *   f16    [H][n_ctx][D] a 16-bit side: position p at slot p
 * Store token t (t = p - S) is in block t / G: blocks [0, NB) hold positions
 * S .. S + NB*G - 1.
 */
#ifndef VKM_KV_LAYOUT_H
#define VKM_KV_LAYOUT_H

#if defined(__STDC__) || defined(__cplusplus)
#include <stdint.h>
#define KVL_FN static inline
#define KVL_IDX uint64_t
#define KVL_U32 uint32_t
#else
#define KVL_FN
#define KVL_IDX uint
#define KVL_U32 uint
#endif

/* Prefill chunks of a quantized cache are at most this many tokens: the FP16
 * ring holds the window, one group being aged and one chunk. */
#define KVL_CHUNK 64u

/* ------------------------------------------------------------ token bookkeeping */

/* Blocks of G tokens the store needs for n_ctx positions. */
KVL_FN KVL_IDX kvl_blocks(KVL_IDX n_ctx, KVL_IDX sinks, KVL_IDX group)
{
    return n_ctx <= sinks ? 0u : (n_ctx - sinks + group - 1u) / group;
}

/* Blocks that are packed once n tokens are cached: the FP16 tail keeps at
 * least R and fewer than R + G tokens. */
KVL_FN KVL_IDX kvl_blocks_at(KVL_IDX n, KVL_IDX sinks, KVL_IDX window, KVL_IDX group)
{
    return n < sinks + window + group ? 0u : (n - sinks - window) / group;
}

/* Ring slots: R + G + KVL_CHUNK rounded up to a multiple of G. */
KVL_FN KVL_IDX kvl_ring_slots(KVL_IDX window, KVL_IDX group)
{
    return (window + group + KVL_CHUNK + group - 1u) / group * group;
}

/* Ring slot of position p >= S. */
KVL_FN KVL_IDX kvl_ring_slot(KVL_IDX p, KVL_IDX sinks, KVL_IDX ring)
{
    return (p - sinks) % ring;
}

/* Element (h, slot, d) of an FP16 array [H][n_slots][D] (sinks, ring, f16 side, linear copy). */
KVL_FN KVL_IDX kvl_f16(KVL_IDX h, KVL_IDX slot, KVL_IDX d, KVL_IDX n_slots, KVL_IDX head_dim)
{
    return (h * n_slots + slot) * head_dim + d;
}

/* ------------------------------------------------------------ keys */

/* Words of one channel in one block. */
KVL_FN KVL_IDX kvl_k_wpc(KVL_IDX bits, KVL_IDX group)
{
    return group * bits / 32u;
}

/* Head-block index of block `block` of head h. */
KVL_FN KVL_IDX kvl_k_block(KVL_IDX h, KVL_IDX block, KVL_IDX n_blocks)
{
    return h * n_blocks + block;
}

/* Word w of channel c of head-block hb. */
KVL_FN KVL_IDX kvl_k_code(KVL_IDX hb, KVL_IDX w, KVL_IDX c, KVL_IDX bits, KVL_IDX group, KVL_IDX head_dim)
{
    return (hb * kvl_k_wpc(bits, group) + w) * head_dim + c;
}

/* Scale/min word of channel c of head-block hb. */
KVL_FN KVL_IDX kvl_k_meta(KVL_IDX hb, KVL_IDX c, KVL_IDX head_dim)
{
    return hb * head_dim + c;
}

/* Bit of token t (0 .. G-1 of its block) in its channel's words. */
KVL_FN KVL_IDX kvl_k_bit(KVL_IDX t, KVL_IDX bits)
{
    return t * bits;
}

KVL_FN KVL_IDX kvl_k_code_words(KVL_IDX n_heads, KVL_IDX n_blocks, KVL_IDX bits, KVL_IDX group, KVL_IDX head_dim)
{
    return kvl_k_code(n_heads * n_blocks, 0u, 0u, bits, group, head_dim);
}

KVL_FN KVL_IDX kvl_k_meta_words(KVL_IDX n_heads, KVL_IDX n_blocks, KVL_IDX head_dim)
{
    return kvl_k_meta(n_heads * n_blocks, 0u, head_dim);
}

/* ------------------------------------------------------------ values */

/* Words of one token's codes. */
KVL_FN KVL_IDX kvl_v_wpt(KVL_IDX bits, KVL_IDX head_dim)
{
    return (head_dim * bits + 31u) / 32u;
}

/* Token slot of store token t of head h (n_slots = NB*G per head). */
KVL_FN KVL_IDX kvl_v_slot(KVL_IDX h, KVL_IDX t, KVL_IDX n_slots)
{
    return h * n_slots + t;
}

/* Word w of the codes of token slot ht. */
KVL_FN KVL_IDX kvl_v_code(KVL_IDX ht, KVL_IDX w, KVL_IDX bits, KVL_IDX head_dim)
{
    return ht * kvl_v_wpt(bits, head_dim) + w;
}

/* Bit of channel d in its token's words. */
KVL_FN KVL_IDX kvl_v_bit(KVL_IDX d, KVL_IDX bits)
{
    return d * bits;
}

/* Scale/min word of channel group g (channels g*VG ..) of token slot ht. */
KVL_FN KVL_IDX kvl_v_meta(KVL_IDX ht, KVL_IDX g, KVL_IDX head_dim, KVL_IDX v_group)
{
    return ht * (head_dim / v_group) + g;
}

KVL_FN KVL_IDX kvl_v_code_words(KVL_IDX n_heads, KVL_IDX n_slots, KVL_IDX bits, KVL_IDX head_dim)
{
    return kvl_v_code(n_heads * n_slots, 0u, bits, head_dim);
}

KVL_FN KVL_IDX kvl_v_meta_words(KVL_IDX n_heads, KVL_IDX n_slots, KVL_IDX head_dim, KVL_IDX v_group)
{
    return kvl_v_meta(n_heads * n_slots, 0u, head_dim, v_group);
}

/* Value channels per scale: G when it divides D, else the whole head. */
KVL_FN KVL_IDX kvl_v_group(KVL_IDX group, KVL_IDX head_dim)
{
    return head_dim % group == 0u ? group : head_dim;
}

/* ------------------------------------------------------------ policy data (issue 11: MiKV, MixKVQ) */

/* Per (KV head, channel) data: balancer factors, statistics. */
KVL_FN KVL_IDX kvl_head_channel(KVL_IDX h, KVL_IDX d, KVL_IDX head_dim)
{
    return h * head_dim + d;
}

/* Per (KV head, ring slot) data: MiKV's attention received by the FP16 tokens. */
KVL_FN KVL_IDX kvl_ring_score(KVL_IDX h, KVL_IDX slot, KVL_IDX ring)
{
    return h * ring + slot;
}

/* MiKV tier mask: word w of head-block hb, bit t % 32 of word t / 32 for token t of the block. */
KVL_FN KVL_IDX kvl_mikv_mask(KVL_IDX hb, KVL_IDX w, KVL_IDX group)
{
    return hb * ((group + 31u) / 32u) + w;
}

/* MiKV high-precision row j (0 .. high_rows-1) of head-block hb: the j-th masked token in
 * token order. Its data: codes at kvl_v_code(row, w, 8, D) and meta at kvl_v_meta(row, g, D, VG)
 * (8 bits), or FP16 at kvl_f16(0, row, d, 0, D). */
KVL_FN KVL_IDX kvl_mikv_row(KVL_IDX hb, KVL_IDX j, KVL_IDX high_rows)
{
    return hb * high_rows + j;
}

/* MixKVQ key block: a region of `budget * G / 32` words per head-block (budget = code bits per
 * token). Tiers in order FP16 (n16 channels), 4 bits (n4), 2 bits (the rest); tier t of width b
 * holds [G*b/32][n_t] words (channel-minor, as the per-layer key store); FP16 codes are the
 * FP16 bit patterns (token t at bit 16 t). */
KVL_FN KVL_IDX kvl_mix_words(KVL_IDX budget, KVL_IDX group)
{
    return budget * group / 32u;
}
KVL_FN KVL_IDX kvl_mix_tier_base(KVL_IDX hb, KVL_IDX region_words, KVL_IDX tier, KVL_IDX n16, KVL_IDX n4,
                                 KVL_IDX group)
{
    KVL_IDX off = tier == 0u ? 0u : tier == 1u ? n16 * group / 2u : n16 * group / 2u + n4 * group / 8u;
    return hb * region_words + off;
}
/* Word w of the j-th channel (in channel order) of a tier with n_t channels. */
KVL_FN KVL_IDX kvl_mix_code(KVL_IDX tier_base, KVL_IDX w, KVL_IDX j, KVL_IDX n_t)
{
    return tier_base + w * n_t + j;
}
/* Scale/min of the channel at permuted position p (FP16 channels first) of head-block hb. */
KVL_FN KVL_IDX kvl_mix_meta(KVL_IDX hb, KVL_IDX p, KVL_IDX head_dim)
{
    return hb * head_dim + p;
}
/* Tier map: two masks of D bits per head-block (which 0: FP16 channels, 1: 4-bit channels). */
KVL_FN KVL_IDX kvl_mix_map_words(KVL_IDX head_dim)
{
    return 2u * ((head_dim + 31u) / 32u);
}
KVL_FN KVL_IDX kvl_mix_map(KVL_IDX hb, KVL_IDX which, KVL_IDX w, KVL_IDX head_dim)
{
    return hb * kvl_mix_map_words(head_dim) + which * ((head_dim + 31u) / 32u) + w;
}
/* Query statistics: sum of |q_d| of query block qb (G positions after the sinks, the GQA group's
 * heads), kept in a ring of n_qblocks blocks per KV head. */
KVL_FN KVL_IDX kvl_mix_qstat(KVL_IDX h, KVL_IDX qb, KVL_IDX d, KVL_IDX n_qblocks, KVL_IDX head_dim)
{
    return (h * n_qblocks + qb % n_qblocks) * head_dim + d;
}

/* ------------------------------------------------------------ codes and meta words */

/* The `bits`-bit code at bit `off` (0..31) of the word pair (w0, w1). */
KVL_FN KVL_U32 kvl_extract(KVL_U32 w0, KVL_U32 w1, KVL_U32 off, KVL_U32 bits)
{
    KVL_U32 v = w0 >> off;
    if (off + bits > 32u) v |= w1 << (32u - off);
    return v & ((1u << bits) - 1u);
}

/* A scale/min word from the FP16 bit patterns, and back. */
KVL_FN KVL_U32 kvl_meta(KVL_U32 scale_f16, KVL_U32 min_f16)
{
    return (scale_f16 & 0xffffu) | (min_f16 << 16u);
}
KVL_FN KVL_U32 kvl_meta_scale(KVL_U32 mv)
{
    return mv & 0xffffu;
}
KVL_FN KVL_U32 kvl_meta_min(KVL_U32 mv)
{
    return mv >> 16u;
}

#endif
