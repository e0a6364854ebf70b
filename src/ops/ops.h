/* GPU operations of the forward pass. Each function records one (or a few)
 * dispatches into the caller's recording target `cmd` (between vkm_cmd_begin
 * and vkm_cmd_submit; cmd->ctx gives the context: pipelines, capabilities,
 * error buffer); the caller inserts vkm_cmd_barrier between dependent ops.
 * Activations are fp32 (quantized to 16 bits for the integer weight
 * products); weights keep their GGUF type, in a GPU layout of its blocks
 * (ops/wlayout.h), and are decoded in the shader. Shapes are given in elements. Every op has a CPU reference in
 * ref_model.c / ggml_types.c and a test on odd sizes (tests/test_ops.c).
 *
 * Weight matrices follow GGUF: W[n_out][n_in] (row r is n_in contiguous
 * elements of type `wtype`, stored in blocks). Weights larger than the
 * device's maxStorageBufferRange are split into several dispatches by rows
 * (so are embedding tables, and KV caches by heads).
 *
 * Common rules: bindings may be VK_WHOLE_SIZE or larger than needed (each op
 * binds exactly the bytes it uses); offsets must be multiples of
 * caps.storage_align. n_in / n_embd must be a multiple of the type's block
 * size (32 for Q4_0/Q8_0, 256 for Q4_K/Q6_K) and of 8 for F32/F16/BF16.
 * Errors: VKMIX_ERROR_INVALID_ARGUMENT (shapes, short bindings),
 * VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, VKMIX_ERROR_CONTEXT_OVERFLOW (positions
 * past n_ctx), VKMIX_ERROR_UNSUPPORTED_DEVICE (a binding that cannot be split
 * to fit the storage range); the detail is in the context's error buffer.
 * Reductions use shared memory only (no subgroup arithmetic is required). */
#ifndef VKM_OPS_H
#define VKM_OPS_H

#include "core/context.h"

/* out[r][:] = x[r][:] / sqrt(mean(x[r]^2) + eps) * w[:]      x, out: [n_rows][n]; w: [n] f32 */
vkmix_error vkm_op_rmsnorm(vkm_cmd *cmd, vkm_binding x, vkm_binding w, vkm_binding out, uint32_t n_rows,
                           uint32_t n, float eps);

/* Weights are in their GPU layout (ops/wlayout.h: vkm_wlayout_pack at upload).
 *
 * The integer products (Q4_0, Q8_0, Q4_K, Q6_K weights with at most
 * VKM_MATVEC_MAX_COLS tokens) read the activations quantized to 16 bits per
 * 32-element block (shaders/ops/act_q.glsl; vkm_op_act_quant writes them);
 * the float products (F32, F16, BF16) and the tiled prefill product read fp32. */
#define VKM_MATVEC_MAX_COLS 16

/* Bytes of one token of n quantized activations: 2.5 n + 16 (n a multiple of 32). */
uint64_t vkm_act_q_bytes(uint32_t n);

/* xq[t] = the token row x[t][0..n) quantized (act_q.glsl), n a multiple of 32,
 * one invocation per 32-element block. With a norm weight w ([n] f32, may be
 * { NULL }) the products compute W (x * w / sqrt(mean(x^2) + eps)): the blocks
 * hold x * w and their sums of x^2, and the product applies the factor.
 * x: [n_tok][n] f32; xq: n_tok * vkm_act_q_bytes(n) bytes. */
vkmix_error vkm_op_act_quant(vkm_cmd *cmd, vkm_binding x, vkm_binding w, vkm_binding xq, uint32_t n_tok,
                             uint32_t n, float eps);

/* The x of a weight product: fp32 rows (f) and, for the integer products,
 * their quantization (q, from vkm_op_act_quant); vkm_matmul_uses_q says which
 * one a product reads (the other may be { NULL }). */
typedef struct vkm_act {
    vkm_binding f, q;
} vkm_act;
int vkm_matmul_uses_q(uint32_t wtype, uint32_t n_tok);

/* y[t][o] = sum_i W[o][i] * x[t][i] (+ bias[o])     x: [n_tok][n_in] f32, y: [n_tok][n_out] f32
 * bias may be { NULL } (no bias). Up to VKM_MATVEC_MAX_COLS tokens use the
 * matrix-vector kernel (decode, batched decode: each weight is read once for
 * all tokens), more the tiled matrix-matrix kernel (prefill). wtype: a
 * supported vkm_ggml_type. For the integer products this records a
 * quantization of x into a scratch buffer of the recording target (cmd->scratch),
 * with a barrier before and after it; vkm_op_matmul_x takes the quantized x instead. */
vkmix_error vkm_op_matmul(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_binding x, vkm_binding y,
                          vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok);

/* Tuning knobs of the products (benchmarks, tests); 0 means the default. */
typedef struct vkm_matmul_cfg {
    uint32_t mv_wg;    /* matvec: invocations per workgroup (rounded down to a power of two) */
    uint32_t mv_rows;  /* matvec: rows per workgroup (1..16) */
    uint32_t mv_unroll;/* matvec: units per invocation per loop iteration (1..4) */
    uint32_t mv_idot;  /* matvec: 1 native integer dot products (when the device has them), 2 emulated */
    uint32_t mv_max_tok; /* matvec: tokens per dispatch (0: 4 for integer weights, 8 for float ones;
                          * more tokens run as several dispatches); 16: all in one */
    uint32_t add;      /* 1: the product is added into y (y += W x, a residual add) instead of stored */
    uint32_t mm_bn;    /* matmul: tokens per tile (scalar 16 or 64; cooperative matrix 64 or 128) */
    uint32_t mm_coopmat; /* matmul: 1 the cooperative-matrix kernel (an error without it), 2 the scalar one;
                          * default: the environment variable VKMIX_MATMUL=coopmat|scalar, else the
                          * cooperative-matrix kernel when the device has it */
} vkm_matmul_cfg;
/* vkm_op_matmul with explicit tuning (cfg may be NULL). */
vkmix_error vkm_op_matmul_cfg(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_binding x, vkm_binding y,
                              vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok,
                              const vkm_matmul_cfg *cfg);
/* The product on explicit activations: x.q is required when
 * vkm_matmul_uses_q(wtype, n_tok), x.f otherwise. */
vkmix_error vkm_op_matmul_x(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding y,
                            vkm_binding bias, uint32_t n_in, uint32_t n_out, uint32_t n_tok,
                            const vkm_matmul_cfg *cfg);

/* Q, K and V as one product: W holds the rows of Wq (n_q), Wk (n_kv) and Wv
 * (n_kv) stacked (vkm_wlayout_upload_at), bias likewise (or { NULL }); the
 * rows go to q [n_tok][n_q], k and v [n_tok][n_kv], as three products would
 * have written them. */
vkmix_error vkm_op_matmul_qkv(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding q, vkm_binding k,
                              vkm_binding v, vkm_binding bias, uint32_t n_in, uint32_t n_q, uint32_t n_kv,
                              uint32_t n_tok, const vkm_matmul_cfg *cfg);

/* The feed-forward's gated linear unit as one product: W holds the rows of
 * the gate and up matrices interleaved (gate row i at row 2i, up row i at
 * 2i+1; vkm_wlayout_upload_interleaved), and
 *   y[t][i] = silu(W[2i] . x[t]) * (W[2i+1] . x[t])      y: [n_tok][n_out] f32
 * for up to VKM_MATVEC_MAX_COLS tokens (longer batches: vkm_op_matmul_x over
 * the 2 n_out rows, then vkm_op_glu). */
vkmix_error vkm_op_matmul_glu(vkm_cmd *cmd, vkm_binding W, uint32_t wtype, vkm_act x, vkm_binding y,
                              uint32_t n_in, uint32_t n_out, uint32_t n_tok, const vkm_matmul_cfg *cfg);
/* out[t][i] = silu(in[t][2i]) * in[t][2i+1]     in: [n_tok][2n], out: [n_tok][n] f32 */
vkmix_error vkm_op_glu(vkm_cmd *cmd, vkm_binding in, vkm_binding out, uint32_t n_tok, uint32_t n);

/* out[t][:] = dequant(table[ids[t]][:])          ids: [n_ids] int32, table: [n_vocab][n_embd] of wtype
 * n_vocab is the table binding's size / row size. An id outside [0, n_vocab) gives a row of zeros. */
vkmix_error vkm_op_get_rows(vkm_cmd *cmd, vkm_binding table, uint32_t wtype, vkm_binding ids,
                            vkm_binding out, uint32_t n_embd, uint32_t n_ids);

/* In-place RoPE on x: [n_tok][n_heads][head_dim] f32, token t at position pos0 + t.
 * freqs: [head_dim/2] f32 (theta^(-2i/d) with llama3 scaling applied, see vkm_rope_freqs).
 * rope_type: VKM_ROPE_NORM (adjacent pairs) or VKM_ROPE_NEOX (halves). */
vkmix_error vkm_op_rope(vkm_cmd *cmd, vkm_binding x, vkm_binding freqs, uint32_t n_tok, uint32_t n_heads,
                        uint32_t head_dim, uint32_t pos0, uint32_t rope_type);

/* RoPE and the cache store of one sequence's rows in one dispatch:
 *   q:     [n_tok][n_head][head_dim] f32, rotated in place
 *   k, v:  [n_tok][n_kv][head_dim] f32 (read only)
 *   pos:   [n_tok] uint32, the position of each row (a device buffer: a recorded step can be replayed)
 *   rope(k) and v go to the FP16 part of the cache as kv_ring_store.comp lays it out: a position
 *   p < n_sinks into {k,v}_sinks [n_kv][n_sinks][head_dim], a later one into ring slot
 *   (p - n_sinks) % n_ring of {k,v}_ring [n_kv][n_ring][head_dim] (a full FP16 cache: n_sinks 0,
 *   n_ring n_ctx; the sinks bindings are then unused and may be { NULL }).
 * freqs and rope_type as in vkm_op_rope. One dispatch instead of rope(q), rope(k) and two stores. */
vkmix_error vkm_op_rope_store(vkm_cmd *cmd, vkm_binding q, vkm_binding k, vkm_binding v, vkm_binding freqs,
                              vkm_binding pos, vkm_binding k_sinks, vkm_binding k_ring, vkm_binding v_sinks,
                              vkm_binding v_ring, uint32_t n_tok, uint32_t n_head, uint32_t n_kv, uint32_t head_dim,
                              uint32_t n_sinks, uint32_t n_ring, uint32_t rope_type);

/* out[i] = silu(gate[i]) * up[i] (out may alias gate or up) */
vkmix_error vkm_op_silu_mul(vkm_cmd *cmd, vkm_binding gate, vkm_binding up, vkm_binding out, uint32_t n);
/* out[i] = a[i] + b[i] (out may be a) */
vkmix_error vkm_op_add(vkm_cmd *cmd, vkm_binding a, vkm_binding b, vkm_binding out, uint32_t n);

/* FP16 KV cache of one layer: cache[n_kv_head][n_ctx][head_dim] f16.
 * Writes k, v: [n_tok][n_kv_head][head_dim] f32 to positions pos0..pos0+n_tok-1.
 * head_dim even; f32 -> f16 with the device's conversion (round to nearest even on
 * the drivers tested). */
vkmix_error vkm_op_kv_store(vkm_cmd *cmd, vkm_binding k, vkm_binding v, vkm_binding kcache, vkm_binding vcache,
                            uint32_t n_tok, uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0);

/* Causal GQA attention over the FP16 cache of one layer.
 * q: [n_tok][n_head][head_dim] f32 (after RoPE); query t sits at position pos0 + t and
 * attends to cache positions 0..pos0+t. out: [n_tok][n_head][head_dim] f32.
 * Query head h reads KV head h / (n_head / n_kv_head). scale = 1/sqrt(head_dim).
 * n_tok == 1 uses split-K flash-decoding (partials + a reduction pass) so that one
 * sequence fills a big GPU; `scratch` holds the partials (size from vkm_op_attention_scratch).
 * The op records its own barrier between its two passes; scratch is unused when
 * n_tok > 1 (or the context is short) and may then be { NULL }.
 * head_dim: a multiple of 8, at most 256. Keys and values are read once for all
 * query heads that share them (up to 8 per workgroup). */
vkmix_error vkm_op_attention(vkm_cmd *cmd, vkm_binding q, vkm_binding kcache, vkm_binding vcache,
                             vkm_binding out, vkm_binding scratch, uint32_t n_tok, uint32_t n_head,
                             uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0, float scale);
/* Tuning knobs of vkm_op_attention (benchmarks, tests); 0 means the default. */
typedef struct vkm_attn_cfg {
    uint32_t kt;          /* keys per key lane per tile (1..8) */
    uint32_t target_wgs;  /* decode: split the keys until about this many workgroups run */
    uint32_t prefetch;    /* 1: load the next tile before computing the current one, 2: don't */
} vkm_attn_cfg;
vkmix_error vkm_op_attention_cfg(vkm_cmd *cmd, vkm_binding q, vkm_binding kcache, vkm_binding vcache,
                                 vkm_binding out, vkm_binding scratch, uint32_t n_tok, uint32_t n_head,
                                 uint32_t n_kv_head, uint32_t head_dim, uint32_t n_ctx, uint32_t pos0, float scale,
                                 const vkm_attn_cfg *cfg);
/* Bytes of scratch vkm_op_attention needs for n_head heads (decode split-K partials):
 * n_head * min(64, ceil(n_ctx / 64)) * (head_dim + 2) * 4. */
uint64_t vkm_op_attention_scratch(const vkmix_context *ctx, uint32_t n_head, uint32_t head_dim, uint32_t n_ctx);

/* logits helper: out[i] = x[i] (f32 copy between buffers, n elements) */
vkmix_error vkm_op_copy_f32(vkm_cmd *cmd, vkm_binding src, vkm_binding dst, uint32_t n);

#endif
