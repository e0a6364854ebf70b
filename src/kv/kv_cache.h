/* The mixed-precision KV cache of one sequence: storage and the three phases of
 * a step (store, attention, age). */
#ifndef VKM_KV_CACHE_H
#define VKM_KV_CACHE_H

#include "core/context.h"
#include "core/hparams.h"
#include "kv/kv_config.h"

/* K or V of one layer. bits < 16: packed store + FP16 ring (+ sinks);
 * bits 16: one FP16 array for the whole context (`ring` with n_ctx slots). */
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
} vkm_kv_cache;

#define VKM_KVQ_MAX_SPLITS 256   /* default split count of the fused decode attention */
#define VKM_KVQ_SPLITS_CAP 1024  /* the partials buffer holds this many */

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
/* Fused decode attention (kv_attn.c): one query position straight from the
 * packed store. VKMIX_ERROR_UNSUPPORTED_DEVICE (nothing recorded) when the
 * kernel does not fit the device; the caller then takes the linear path. */
vkmix_error vkm_kv_fused_decode(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *K, const vkm_kv_side *V,
                                vkm_binding q, vkm_binding out, uint32_t nq, uint32_t pos0);
/* The three phases with barriers, for one sequence. */
vkmix_error vkm_kv_cache_attend(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding k,
                                vkm_binding v, vkm_binding out, vkm_binding scratch, uint32_t n, uint32_t pos0);

#endif
