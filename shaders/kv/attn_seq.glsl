// The sequence table of the decode attention kernels (kvq_decode.comp,
// attn_decode.comp, attn_combine.comp): one entry per (row of the batch) for
// the layer being computed, written by the host before the submit (src/kv/kv_attn.c,
// struct vkm_attn_seq, which must match this layout: tests/test_kv_attn.c checks
// the size). Cache buffers are reached through buffer device addresses, so one
// dispatch serves every sequence of a batch whatever its buffers.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

struct AttnSeq {
    uint64_t kcodes, kmeta, vcodes, vmeta;   // packed store (0 when the layer is FP16)
    uint64_t ksink, kring, vsink, vring;     // FP16: sinks [H][S][D] and ring [H][ring][D]; a full FP16 cache is the ring
    uint n_sinks;        // S (0 for a full FP16 cache)
    uint n_ring;         // ring slots (n_ctx for a full FP16 cache)
    uint nq;             // quantized groups (blocks of G tokens) visible
    uint n_blocks;       // group capacity of the store per head
    uint p_end;          // positions 0 .. p_end-1 are visible
    uint q_row;          // row of q / out in the batch activations
    uint blocks_per_split;
    uint n_qsplits;      // splits 0 .. n_qsplits-1: packed groups
    uint fp16_per_split; // FP16 tokens (sinks, then ring positions) per FP16 split
    uint n_fsplits;      // splits n_qsplits .. n_qsplits + n_fsplits - 1: FP16 tokens
    uint part_base;      // first split of this sequence in the partials
    uint pad0;
};

layout(std430, binding = 0) restrict readonly buffer SeqTable { AttnSeq seqs[]; };

// Position of the i-th FP16 token of a sequence: sinks first, then the tail of
// the ring (positions S + nq*G .. p_end-1).
uint fp16_pos(AttnSeq s, uint i, uint group)
{
    uint S = min(s.n_sinks, s.p_end);
    return i < S ? i : s.n_sinks + s.nq * group + (i - S);
}
uint fp16_count(AttnSeq s, uint group)
{
    uint S = min(s.n_sinks, s.p_end), r0 = s.n_sinks + s.nq * group;
    return S + (s.p_end > r0 ? s.p_end - r0 : 0u);
}
