/* The mixed-precision KV cache subsystem: every type and function of src/kv.
 *
 *   kv_layout.h        the packed layout (C and GLSL share it)
 *   kvquant_ref.c      the quantization format on the CPU (bit-exact with the shaders)
 *   kvquant.c          recording the quantize / dequantize kernels
 *   kv_config.c        the public typed configuration, its parser, checks and profiles;
 *                      the resolved configuration of a session; memory accounting
 *   kv_policy.c        the table of cache policies
 *   kv_policy_layer.c  the per-layer policy (the first entry)
 *   kv_policy_mikv.c, kv_policy_mixkvq.c   MiKV and MixKVQ: checks, accounting, rules and
 *                      CPU simulation
 *   mikv_device.c      MiKV's device operations (mikv_device.h)
 *   mixkvq_device.c    MixKVQ's device operations (mixkvq_device.h)
 *   kv_cache.c         a session's cache: storage and the three phases of a step,
 *                      dispatched to the configured policy
 *   kv_attn.c          the fused decode attention
 *
 * The cache depends on core/, gpu/ and ops/ only (never on runtime/ or ref/):
 * the CPU reference calls the policies' simulations (vkm_kv_policy_ops.sim_age)
 * on plain arrays. docs/KVCACHE.md describes the format and how to add a policy. */
#ifndef VKM_KV_H
#define VKM_KV_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"
#include "core/hparams.h"
#include "kv/kv_layout.h"
#include "vkmix.h"

/* ================================================================== the quantization format */

/* Checks bits/group/head_dim; writes why into err (may be NULL). */
vkmix_error vkm_kvq_check(const vkmix_kvq_shape *s, char *err, size_t errlen);
/* One value's code under the rounding rule (shaders/kv/kvq.glsl). s, m are the FP16-decoded scale and min. */
uint32_t vkm_kvq_code(float x, float s, float m, uint32_t bits);
/* Dequantize to fp32 (code * scale + min, not rounded to FP16): the math of the fused attention. */
vkmix_error vkm_kvq_dequantize_f32(const vkmix_kvq_shape *s, const uint32_t *codes, const uint32_t *meta, float *y);
/* Smallest FP16 >= v (v >= 0). */
uint16_t vkm_f16_ceil(float v);
/* Scale/min of a group given its min and max (both FP16 values), packed as in meta. */
uint32_t vkm_kvq_meta(float mn, float mx, uint32_t bits);

/* Recording the quantize / dequantize kernels into the caller's recording target.
 * vkm_kvq_range says where they read and write (the push constants of
 * shaders/kv/kvq.glsl): per-head strides and offsets in tokens, or in blocks of
 * `group` tokens for key codes. NULL: the contiguous layouts with shape->n_tokens
 * per head. */
typedef struct vkm_kvq_range {
    uint32_t in_stride, in_off, out_stride, out_off;
} vkm_kvq_range;

vkmix_error vkm_kvq_quant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r, vkm_binding x,
                                 vkm_binding codes, vkm_binding meta);
vkmix_error vkm_kvq_dequant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r,
                                   vkm_binding codes, vkm_binding meta, vkm_binding y);

/* ================================================================== configuration */

#define VKM_KV_MAX_LAYERS VKMIX_KV_MAX_LAYERS
#define VKM_KV_CHUNK KVL_CHUNK

/* A session's configuration, resolved for a model and a context: defaults
 * applied, checked, derived sizes filled. */
typedef struct vkm_kv_config {
    vkmix_kv_policy policy;
    int quantized;                          /* 0: FP16 everywhere */
    char name[64];                          /* "f16", "k4v2", or the profile's file name */
    uint32_t n_layer;
    uint8_t k_bits[VKM_KV_MAX_LAYERS];      /* 2, 3, 4, 8 or 16 per layer */
    uint8_t v_bits[VKM_KV_MAX_LAYERS];
    uint32_t group;                         /* G: tokens per key group */
    uint32_t v_group;                       /* channels per value group (G, or head_dim) */
    uint32_t window;                        /* R: newest tokens in FP16 */
    uint32_t sinks;                         /* S: first tokens in FP16 */
    uint32_t ring;                          /* ring slots: kvl_ring_slots(R, G) */
    vkmix_kv_mikv_params mikv;
    vkmix_kv_mixkvq_params mixkvq;
} vkm_kv_config;

/* Bytes of one side (K or V) of one layer. */
typedef struct vkm_kv_sizes {
    uint64_t code_bytes, meta_bytes, ring_bytes, sink_bytes, fp16_bytes, aux_bytes;
} vkm_kv_sizes;

/* vkmix_kv_config_parse and vkmix_kv_profile_read without the final check (the
 * session applies its overrides first; tests read policies not implemented yet). */
vkmix_error vkm_kv_config_parse(const char *spec, vkmix_kv_config *c, char *err, size_t errlen);
vkmix_error vkm_kv_profile_read(const char *path, vkmix_kv_config *c, char *err, size_t errlen);
/* The checks of vkmix_kv_config_check with the model's shapes (hp may be NULL). */
vkmix_error vkm_kv_config_check(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, char *err,
                                size_t errlen);
/* A public configuration, checked and resolved for a model. */
vkmix_error vkm_kv_config_resolve(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, vkm_kv_config *out,
                                  char *err, size_t errlen);
/* As vkm_kv_config_resolve, also for policies without device operations (their CPU
 * simulation and accounting work: tests, and the reference model). */
vkmix_error vkm_kv_config_resolve_sim(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *out, char *err, size_t errlen);
/* From session params (kv_config / kv_profile / kv, then the group / window / sinks overrides). */
vkmix_error vkm_kv_config_from_params(const vkmix_session_params *p, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *cfg, char *err, size_t errlen);
/* Blocks of G tokens the packed store needs for n_ctx tokens. */
uint32_t vkm_kv_blocks(const vkm_kv_config *cfg, uint32_t n_ctx);
/* Blocks that are quantized once n tokens are cached. */
uint32_t vkm_kv_blocks_at(const vkm_kv_config *cfg, uint32_t n);
/* Sizes of one side of one layer: allocated for n_ctx (n_tokens = 0), or the
 * bytes that hold data once n_tokens are cached. */
void vkm_kv_layer_sizes(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens,
                        uint32_t layer, int is_v, vkm_kv_sizes *out);
/* Memory at n_tokens cached (0: allocated) of a cache allocated for n_ctx. */
void vkm_kv_memory(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens,
                   vkmix_kv_memory *out);

/* ================================================================== the cache */

/* K or V of one layer. bits < 16: packed store + FP16 ring (+ sinks);
 * bits 16: one FP16 array for the whole context (`ring` with n_ctx slots).
 * Layouts: kv/kv_layout.h. */
typedef struct vkm_kv_side {
    uint32_t bits;
    vkm_buffer codes;        /* keys: [H][n_blocks][G*bits/32][D]; values: [H][n_blocks*G][ceil(D*bits/32)] u32 */
    vkm_buffer meta;         /* keys: [H][n_blocks][D]; values: [H][n_blocks*G][D/v_group] (f16 scale | f16 min << 16) */
    vkm_buffer ring;         /* [H][ring or n_ctx][D] f16 */
    vkm_buffer sinks;        /* [H][S][D] f16 (S > 0 only) */
} vkm_kv_side;

typedef struct vkm_kv_cache {
    vkm_kv_config cfg;
    uint32_t n_layer, n_ctx, n_q_head, n_kv_head, head_dim, n_blocks;
    vkm_kv_side *k, *v;      /* [n_layer] */
    vkm_buffer klin, vlin;   /* [H][n_ctx][D] f16: the history of one layer made linear for prefill
                              * attention; allocated at the first prefill (decode never needs it) */
    vkm_buffer part;         /* [n_head][VKM_KVQ_MAX_SPLITS + 1][D + 2] f32: fused decode partials */
    int fused_decode;        /* 1: decode uses kvq_attn.comp where both K and V are packed */
    void *policy_state;      /* a policy's own host-side state (NULL for the per-layer policy) */
} vkm_kv_cache;

#define VKM_KVQ_MAX_SPLITS 256   /* default split count of the fused decode attention */
#define VKM_KVQ_SPLITS_CAP 1024  /* the partials buffer holds this many */

/* c->cfg must be resolved. */
vkmix_error vkm_kv_cache_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx);
void vkm_kv_cache_free(vkm_device *dev, vkm_kv_cache *c);
/* One step of `layer`, in three phases that the caller separates with barriers
 * (so that the rows of a batch run side by side):
 *   store:     k, v ([n][n_kv_head*head_dim] f32, after RoPE) of positions pos0..
 *   attention: causal attention of q; the step's queries see the history as
 *              quantized before the step and the step's own tokens in FP16
 *   age:       quantize the groups that aged out of the window */
vkmix_error vkm_kv_cache_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v,
                               uint32_t n, uint32_t pos0);
vkmix_error vkm_kv_cache_attention(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                                   vkm_binding scratch, uint32_t n, uint32_t pos0);
vkmix_error vkm_kv_cache_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded);
/* The three phases with barriers, for one sequence. */
vkmix_error vkm_kv_cache_attend(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding k,
                                vkm_binding v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0);

/* Building blocks the policies share (kv_cache.c). */
/* Allocates a buffer, refusing one larger than the device's maxStorageBufferRange (names layer and what). */
vkmix_error vkm_kv_alloc(vkmix_context *ctx, vkm_buffer *b, uint64_t bytes, const char *what, uint32_t layer);
/* src [n][H][D] f32 -> the side's FP16 sinks and ring at positions pos0.. */
vkmix_error vkm_kv_ring_store(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_binding src,
                              uint32_t n, uint32_t pos0);
/* FP16 positions [p0, p1) (sinks and ring) -> lin [H][n_ctx][D] at the same positions. */
vkmix_error vkm_kv_ring_gather(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *s, vkm_buffer *lin,
                               uint32_t p0, uint32_t p1);
/* Plain FP16 attention over linear K and V (the prefill path). */
vkmix_error vkm_kv_attention_linear(vkm_cmd *cmd, const vkm_kv_cache *c, vkm_binding q, const vkm_buffer *k,
                                    const vkm_buffer *v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0);

/* The per-layer policy's pieces that other policies reuse: the device buffers of one side of a
 * layer sized by z (codes, meta, ring, sinks; a 16-bit side: its FP16 store), and the step's
 * store of k and v into the FP16 rings (kv_policy_layer.c). */
vkmix_error vkm_kv_side_alloc(vkmix_context *ctx, const vkm_kv_cache *c, const vkm_kv_sizes *z, uint32_t l, int is_v,
                              vkm_kv_side *s);
vkmix_error vkm_kv_store_layer(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                               uint32_t pos0);
/* The per-layer accounting (codes, meta, ring, sinks, FP16 sides), which other policies extend. */
void vkm_kv_sizes_layer(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t layer,
                        int is_v, vkm_kv_sizes *out);
/* CPU: one head's rows x[n][D] (FP16 values) through the packed format at `bits` (keys: per
 * channel over the n tokens, n a multiple of group; values: per token in groups of `group`
 * channels), replaced by code * scale + min (rounded to FP16 with fp16). */
vkmix_error vkm_kv_sim_quantize(float *x, uint32_t n, uint32_t D, int is_v, uint32_t bits, uint32_t group, int fp16);

/* Fused decode attention (kv_attn.c): one query position straight from the
 * packed store. VKMIX_ERROR_UNSUPPORTED_DEVICE (nothing recorded) when the
 * kernel does not fit the device; the caller then takes the linear path. */
vkmix_error vkm_kv_fused_decode(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *K, const vkm_kv_side *V,
                                vkm_binding q, vkm_binding out, uint32_t nq, uint32_t pos0);

/* ---- decode attention v2 (kv_attn.c): every row of a batch in one dispatch per layer shape */

/* One row of the sequence table (AttnSeq in shaders/kv/attn_seq.glsl). */
typedef struct vkm_attn_seq {
    uint64_t kcodes, kmeta, vcodes, vmeta;
    uint64_t ksink, kring, vsink, vring;
    uint32_t n_sinks, n_ring, nq, n_blocks, p_end, q_row, blocks_per_split, n_qsplits, fp16_per_split, n_fsplits,
        part_base, pad0;
} vkm_attn_seq;

/* The table and partials of decode attention for up to cap_rows rows and every layer. */
typedef struct vkm_attn_work {
    uint32_t cap_rows;       /* rows whose partials fit at once (larger batches run in chunks of these) */
    uint32_t table_rows;     /* rows per layer the table holds: the most rows one call may pass */
    uint32_t n_layer, n_head, head_dim, cap_splits, max_splits_row;
    int use_f16;             /* FP16 arithmetic for 2/4-bit keys (the default, on heads of 64+ channels; VKMIX_KVQ_F32=1 turns it off) */
    vkm_buffer table;        /* [n_layer][table_rows] vkm_attn_seq, host-visible, written while recording */
    vkm_buffer part;         /* [cap_splits][n_head][head_dim + 2] f32 partials */
} vkm_attn_work;

/* cap_rows: rows computed by one set of dispatches; table_rows: the most rows one call may pass. */
vkmix_error vkm_attn_work_create(vkmix_context *ctx, vkm_attn_work *w, const vkm_kv_cache *c, uint32_t cap_rows,
                                 uint32_t table_rows);
void vkm_attn_work_free(vkm_device *dev, vkm_attn_work *w);
/* Splits one row may need (partials are sized from it). */
uint32_t vkm_attn_max_splits(const vkmix_context *ctx, const vkm_kv_cache *c);

/* A row of a decode step: the cache of its sequence, its row in q/out, its position. */
typedef struct vkm_attn_row {
    vkm_kv_cache *c;
    uint32_t q_row, pos0;
    vkm_binding scratch;     /* the per-row fallback path's split-K scratch (FP16 attention) */
} vkm_attn_row;

/* Decode attention of `layer` for n rows, after their K/V were stored:
 * q, out: [rows][n_head][head_dim] f32. Rows whose layer the v2 kernels take
 * (FP16, or packed 2/4/8-bit keys and values) share dispatches; the others
 * (3-bit or mixed FP16/packed layers, devices without buffer device
 * addresses) go through vkm_kv_cache_attention one by one. */
vkmix_error vkm_kv_decode(vkm_cmd *cmd, vkm_attn_work *w, uint32_t layer, const vkm_attn_row *rows, uint32_t n,
                          vkm_binding q, vkm_binding out);


/* ================================================================== cache policies */

/* What a cache policy provides (docs/KVCACHE.md, "Adding a policy"). The cache
 * (kv_cache.c) calls these through vkm_kv_policy(cfg->policy); a policy sees
 * only src/kv, core/, gpu/ and ops/. */
typedef struct vkm_kv_policy_ops {
    vkmix_kv_policy id;
    const char *name;        /* as in specs and profiles: "layer" */
    /* configuration: the policy's own parameters (the widths and geometry are checked before) */
    vkmix_error (*check)(const vkmix_kv_config *c, const vkm_hparams *hp, char *err, size_t errlen);
    /* accounting: one side of one layer, allocated for n_ctx (n_tokens = 0) or holding data at n_tokens;
     * everything counts (codes, scales and mins, FP16 parts, the policy's own state) */
    void (*sizes)(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t layer,
                  int is_v, vkm_kv_sizes *out);
    /* device storage of every layer (sizes as above), and its release (also of a half-built cache) */
    vkmix_error (*create)(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp);
    void (*destroy)(vkm_device *dev, vkm_kv_cache *c);
    /* the phases of a step (vkm_kv_cache_store, _attention, _age) */
    vkmix_error (*store)(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                         uint32_t pos0);
    /* one query position at pos0 (a decode step, and each row of a batched decode) */
    vkmix_error (*decode)(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                          vkm_binding scratch, uint32_t pos0);
    /* n query positions pos0.. (prefill chunks, n <= VKM_KV_CHUNK when quantized) */
    vkmix_error (*prefill)(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                           vkm_binding scratch, uint32_t n, uint32_t pos0);
    /* the cache moved from pos0 to pos0 + n tokens: pack what left the window; *recorded = 1 when work was recorded */
    vkmix_error (*age)(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded);
    /* CPU simulation of one sequence, on plain arrays (src/ref/kv_sim.c drives it; no device).
     * sim_create / sim_free: the policy's host state for a context of n_ctx tokens (importance,
     * statistics); both NULL when the policy keeps none. */
    vkmix_error (*sim_create)(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, void **state);
    void (*sim_free)(void *state);
    /* sim_observe (may be NULL): the key and value of `pos` are stored and q ([n_head*head_dim],
     * after RoPE) is about to attend over k, v ([pos + 1][n_kv_head*head_dim] of one layer, as the
     * attention reads them): record what the policy needs (attention received, query statistics) */
    vkmix_error (*sim_observe)(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t layer, uint32_t pos,
                               const float *q, const float *k, const float *v);
    /* sim_age: k, v are [n_new][n_kv_head*head_dim] fp32 rows of one layer (position p at row p,
     * FP16 values); what left the window between n_old and n_new tokens is replaced in place by
     * what the GPU attention reads: fp32 dequantized values, or, with fp16_dequant, rounded to
     * FP16 (the prefill path, which attends over an FP16 copy) */
    vkmix_error (*sim_age)(void *state, const vkm_kv_config *c, const vkm_hparams *hp, uint32_t layer, float *k,
                           float *v, uint32_t n_old, uint32_t n_new, int fp16_dequant);
} vkm_kv_policy_ops;

/* The policy's operations (kv_policy.c), NULL for an unknown id. A policy whose
 * device operations are not written yet has create == NULL: its configuration,
 * accounting and CPU simulation work, sessions refuse it. */
const vkm_kv_policy_ops *vkm_kv_policy(vkmix_kv_policy id);
/* 1 when sessions can use the policy. */
int vkm_kv_policy_implemented(vkmix_kv_policy id);
/* The policy named `name` ("layer", "mikv", "mixkvq"), or -1. */
int vkm_kv_policy_by_name(const char *name);
const char *vkm_kv_policy_name(vkmix_kv_policy id);

/* The entries (kv_policy_<name>.c). */
extern const vkm_kv_policy_ops vkm_kv_policy_layer;
extern const vkm_kv_policy_ops vkm_kv_policy_mikv;
extern const vkm_kv_policy_ops vkm_kv_policy_mixkvq;

/* ------------------------------------------------------------------ MiKV host logic (kv_policy_mikv.c) */

/* High-precision rows per block of G tokens (per KV head): round(important_fraction * G). */
uint32_t vkm_mikv_high_rows(const vkm_kv_config *c);
/* The k most important of n tokens (imp[n]): bit t of mask[t / 32] set; ties go to the
 * earlier token. mask has ceil(n / 32) words. */
void vkm_mikv_select(const float *imp, uint32_t n, uint32_t k, uint32_t *mask);
/* The outlier balancer factor of one channel: sqrt(qmax / kmax), 1 when either is 0 or not
 * finite, clamped to [2^-8, 2^8]. */
float vkm_mikv_balance(float qmax, float kmax);
/* Importance accumulation of one query position j of a KV head: probs[nrep][j + 1] are the
 * softmax probabilities of its query heads; imp[p] (p < j + 1) gains sum_r probs[r][p] for the
 * tokens p >= S whose block has not left the window when j is queried: j < S + R + (block(p)+1) G. */
void vkm_mikv_accumulate(const vkm_kv_config *c, float *imp, const float *probs, uint32_t nrep, uint32_t j);
/* The simulation's importance of (layer, KV head): [n_ctx] by position (state from sim_create). */
const float *vkm_mikv_sim_importance(const void *state, uint32_t layer, uint32_t head);

/* ------------------------------------------------------------------ MixKVQ host logic (kv_policy_mixkvq.c) */

/* Code bits per token of a key block (the sum of the channels' widths): floor(T * D) with T
 * the target key width, or the layer's key width when the target is 0. */
uint32_t vkm_mixkvq_budget(const vkm_kv_config *c, uint32_t layer, uint32_t head_dim);
/* Recent query positions averaged into the channel importance (0 in the config: the window). */
uint32_t vkm_mixkvq_queries(const vkm_kv_config *c);
/* fp32(1 / (Q NREP)): the importance is the sum of |q_d| over the recent queries times this. */
float vkm_mixkvq_rcp(const vkm_kv_config *c, const vkm_hparams *hp);
/* Salience of each channel of a block: A_d = I_d * ((max_d - min_d) * fp32(1/3)), with I_d the
 * mean |q_d| (imp) and min/max over the block's tokens. */
void vkm_mixkvq_salience(const float *imp, const float *mn, const float *mx, uint32_t D, float *A);
/* Widths (2, 4, 16) per channel with sum <= budget bits: greedy on the error
 * sum_d (A_d * 3 / (2^b_d - 1))^2 (FP16: 0). Upgrades 2->4 (2 bits, key 12 A_d) and 4->16
 * (12 bits, key A_d) are taken in decreasing key order (ties: 2->4 first, then the lower
 * channel), each when it fits. With t16 > 0 only the upgrades the thresholds allow are taken
 * (4 -> 16 when A >= t16; 2 -> 4 when A >= t4 or A >= t16), in the same order: the thresholds
 * choose and the budget caps them. Returns the bits used. */
uint32_t vkm_mixkvq_tiers(const float *A, uint32_t D, uint32_t budget, float t16, float t4, uint8_t *bits);
/* The block's channel order: FP16 channels, then 4-bit, then 2-bit, each in increasing channel
 * index (the permutation the tier map implies). perm[D] out; n16, n4 out (may be NULL). */
void vkm_mixkvq_permutation(const uint8_t *bits, uint32_t D, uint16_t *perm, uint32_t *n16, uint32_t *n4);
/* The packed key block of one head on the CPU (the reference of the GPU format, kv_layout.h):
 * x[G][D] FP16 values and bits[D] -> region[kvl_mix_words(budget, G)], meta[D] (by permuted
 * position), map[kvl_mix_map_words(D)]; unpack gives y[G][D] as the attention reads it. */
void vkm_mixkvq_pack(const float *x, const uint8_t *bits, uint32_t G, uint32_t D, uint32_t budget, uint32_t *region,
                     uint32_t *meta, uint32_t *map);
/* The simulation's tier map of (layer, KV head, block) (kvl_mix_map_words(D) words, as
 * kvl_mix_map with hb = 0), set when the block was aged (state from sim_create). */
const uint32_t *vkm_mixkvq_sim_map(const void *state, uint32_t layer, uint32_t head, uint32_t block);
void vkm_mixkvq_unpack(const uint32_t *region, const uint32_t *meta, const uint32_t *map, uint32_t G, uint32_t D,
                       float *y);

#endif
