/* Sessions and their KV cache. */
#ifndef VKM_SESSION_H
#define VKM_SESSION_H

#include "model.h"

/* What the cache stores per layer. Today: FP16 (the mixed-precision cache
 * extends this with per-layer K/V widths, the ring and the sinks). */
typedef struct vkm_kv_config {
    int quantized;           /* 0: FP16 everywhere */
    char name[64];           /* "f16", ... */
} vkm_kv_config;

typedef struct vkm_kv_cache {
    vkm_kv_config cfg;
    uint32_t n_layer, n_ctx, n_q_head, n_kv_head, head_dim;
    vkm_buffer *k, *v;       /* [n_layer] each [n_kv_head][n_ctx][head_dim] f16 */
} vkm_kv_cache;

vkmix_error vkm_kv_config_parse(const char *spec, const vkm_hparams *hp, vkm_kv_config *cfg, char *err, size_t errlen);
uint64_t vkm_kv_cache_bytes(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx);
vkmix_error vkm_kv_cache_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx);
void vkm_kv_cache_free(vkm_device *dev, vkm_kv_cache *c);
void vkm_kv_cache_reset(vkm_kv_cache *c);
void vkm_kv_cache_memory(const vkm_kv_cache *c, const vkm_hparams *hp, uint32_t n_ctx, vkmix_kv_memory *out);
/* Stores k, v ([n][n_kv_head*head_dim] f32, after RoPE) of positions pos0.. for
 * `layer`, then computes causal attention of q over everything cached. */
vkmix_error vkm_kv_cache_attend(vkmix_context *ctx, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding k,
                                vkm_binding v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0);

#define VKM_SESSION_N_SCRATCH 13
struct vkmix_session {
    vkmix_model *model;
    uint32_t n_ctx, n_batch, n_past, n_logit_rows;
    /* scratch, in this order (freed as an array): */
    vkm_buffer x;            /* [n_batch][n_embd] residual stream */
    vkm_buffer h;            /* [n_batch][max(n_embd, n_ff)] normed input */
    vkm_buffer q;            /* [n_batch][n_head*head_dim] */
    vkm_buffer k, v;         /* [n_batch][n_head_kv*head_dim] */
    vkm_buffer att;          /* [n_batch][n_head*head_dim] attention output */
    vkm_buffer o;            /* [n_batch][n_embd] block output */
    vkm_buffer g, u;         /* [n_batch][n_ff] gate, up */
    vkm_buffer ids;          /* [n_batch] int32, host-visible */
    vkm_buffer logits;       /* [n_logit_rows][n_vocab] f32, host-readable */
    vkm_buffer freqs;        /* [head_dim/2] RoPE frequencies */
    vkm_buffer attn_scratch; /* split-K partials */
    vkm_kv_cache cache;
};

#endif
