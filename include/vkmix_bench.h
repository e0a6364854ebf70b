/*
 * vkmix_bench.h: EXPERIMENTAL benchmark and test hooks (libvkmix_bench.a).
 *
 * Not part of the stable API of vkmix.h: these functions time kernels, fill a
 * cache with random data and expose GPU round trips for tests. They may change
 * between releases. Link libvkmix_bench.a before libvkmix.a.
 */
#ifndef VKMIX_BENCH_H
#define VKMIX_BENCH_H

#include "vkmix.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Benchmark support: fill the cache with random keys and values for positions
 * [0, n_tokens) (quantized groups, FP16 ring and sinks alike) and set n_past to
 * n_tokens, so that decode can be timed at a depth without a long prefill. */
vkmix_error vkmix_session_fill_synthetic(vkmix_session *s, uint32_t n_tokens, uint64_t seed);

/* Times decode attention alone (every layer, one query position at each
 * session's depth n_past) with GPU timestamps, and the read and copy kernels in
 * the same run. Before timing, layer 0's attention output of (up to the first
 * four) sessions is checked against a CPU reference computed from the cache's
 * own contents; a mismatch fails with VKMIX_ERROR_INTERNAL.
 * n sessions of one model form one batch: the v2 kernels serve all of them with
 * one set of dispatches per layer; the legacy kernels run one per session. */
typedef enum vkmix_attn_variant {
    VKMIX_ATTN_V2 = 0,        /* the library's decode attention (kvq_decode / attn_decode / attn_combine) */
    VKMIX_ATTN_V1 = 1,        /* the previous kernels (kvq_attn.comp, attn.comp), one session at a time */
    VKMIX_ATTN_V2_F32 = 2,    /* v2 with FP32 arithmetic in the packed kernel (the default is FP16 for 2/4-bit keys on heads of 64+ channels) */
    VKMIX_ATTN_VARIANTS_ = 3
} vkmix_attn_variant;
/* "v2", "v1", "v2-f32"; NULL for an unknown value. */
const char *vkmix_attn_variant_name(vkmix_attn_variant v);

typedef struct vkmix_attn_bench {
    double us_per_layer;     /* median over reps, for the whole batch */
    double bytes_per_layer;  /* cache bytes the attention must read (codes, scales and mins, FP16), whole batch */
    double gbps;             /* bytes_per_layer / time */
    double read_gbps;        /* the read kernel (uvec4 loads), same run: the ceiling */
    double copy_gbps;        /* the copy kernel, bytes read + written, same run */
    double cache_read_gbps;  /* the read kernel over the caches' own buffers (all layers), same run */
    double check_rel_err;    /* layer 0 against the CPU reference (worst of the checked sessions); -1: not checked here (a MiKV or MixKVQ cache: its own tests check it against its CPU simulation) */
    double check_bound;      /* the bound the check used */
    uint32_t dispatches_per_layer;
} vkmix_attn_bench;
vkmix_error vkmix_bench_attention(vkmix_session *const *ss, uint32_t n, uint32_t reps, vkmix_attn_variant variant,
                                  vkmix_attn_bench *out);

/* Dispatches and barriers the session's last forward step recorded (one chunk
 * of vkmix_session_eval, or one step of vkmix_batch_decode led by this session:
 * its first session). */
vkmix_error vkmix_session_step_counts(const vkmix_session *s, uint32_t *dispatches, uint32_t *barriers);

/* Round trip through the GPU: quantize `x` (FP16 bits) into codes + meta, then
 * dequantize back to FP16 in `y`. Any of codes/meta/y may be NULL when not
 * wanted. Used by the tests and the benchmark. */
vkmix_error vkmix_kvq_roundtrip_gpu(vkmix_context *ctx, const vkmix_kvq_shape *shape,
                                    const uint16_t *x, uint32_t *codes, uint32_t *meta,
                                    uint16_t *y);

/* Kernel benchmark: times the plain copy kernel, quantize and dequantize on the
 * context's device with GPU timestamps (median of `reps`, after a warm-up). The copy
 * figure is the best of several workgroup sizes and uvec4 counts per invocation.
 * Bytes are counted as read + written, once each. */
typedef struct vkmix_kvq_bench {
    double copy_ms, copy_bytes;      /* the best of several copy kernel shapes */
    double read_ms, read_bytes;      /* the best read-only kernel */
    double quant_ms, quant_bytes;
    double dequant_ms, dequant_bytes;
} vkmix_kvq_bench;
vkmix_error vkmix_kvq_bench_run(vkmix_context *ctx, const vkmix_kvq_shape *shape, uint32_t reps,
                                vkmix_kvq_bench *out);

/* Weight product benchmark, on the context's device with GPU timestamps: a
 * rows x cols matrix of random weights of wtype ("q4_0", "q8_0", "q4_k",
 * "q6_k", "f16", "bf16", "f32") in its GPU layout times `tokens` vectors
 * (1: decode; up to 16: batched decode with the matrix-vector kernel, each
 * weight read once for all of them; more: the tiled prefill kernel). Enough copies of the matrix are rotated
 * to defeat the L2 cache (at least 256 MiB in all, at most 16 copies). The
 * median of reps runs is reported; GB/s counts the weight bytes of the GGUF
 * file once per run. The integer products multiply activations quantized once
 * beforehand (vkm_op_act_quant), timed apart. Before timing, 16 rows of the
 * result (token 0) are checked against a CPU product of the dequantized weights. */
typedef struct vkmix_matvec_opts {
    const char *wtype;
    uint32_t rows, cols, tokens, reps;
    uint32_t wg, rows_per_wg, unroll;  /* kernel shape; 0: the library's choice */
    uint32_t emulate_idot;             /* 1: integer dot products in plain arithmetic */
    uint32_t tiled;                    /* more than 16 tokens: 0 default, 1 cooperative matrix, 2 scalar */
    uint32_t max_tok;                  /* up to 16 tokens: tokens per dispatch (0: the library's choice) */
} vkmix_matvec_opts;
typedef struct vkmix_matvec_bench {
    double us, weight_bytes, gbps;
    double tflops;          /* 2 rows cols tokens / time */
    double copy_gbps;       /* vkmix_bench_matvec only: the copy kernel in the same call */
    double quant_us;        /* integer types: quantizing the activations (not in us) */
    double check_rel_err;   /* the checked rows against the CPU reference */
    uint32_t copies;
} vkmix_matvec_bench;
vkmix_error vkmix_bench_matvec_run(vkmix_context *ctx, const vkmix_matvec_opts *opts, vkmix_matvec_bench *out);
/* The read ceiling: the best bytes-read rate (GB/s) of a uvec4 read kernel over
 * 9 shapes (128/256/512 invocations x 1/2/4 loads each) on `bytes` of data. */
vkmix_error vkmix_bench_read(vkmix_context *ctx, uint64_t bytes, uint32_t reps, double *gbps);
/* The former entry point: one type, decode, plus the copy kernel (copy_gbps). */
vkmix_error vkmix_bench_matvec(vkmix_context *ctx, const char *wtype, uint32_t rows, uint32_t cols, uint32_t reps,
                               uint32_t mv_wg, uint32_t mv_rows, vkmix_matvec_bench *out);

#ifdef __cplusplus
}
#endif
#endif /* VKMIX_BENCH_H */
