/* KV cache configuration: per-layer key/value widths, group, FP16 window and sinks;
 * parsed from a "kXvY" shortcut or a JSON profile; exact memory accounting. */
#ifndef VKM_KV_CONFIG_H
#define VKM_KV_CONFIG_H

#include <stdint.h>

#include "core/hparams.h"
#include "vkmix.h"

#define VKM_KV_MAX_LAYERS 512
/* Prefill chunks of a quantized cache are at most this many tokens: the FP16
 * ring holds the window, one group being aged, and one chunk. */
#define VKM_KV_CHUNK 64

typedef struct vkm_kv_config {
    int quantized;                          /* 0: FP16 everywhere */
    char name[64];                          /* "f16", "k4v2", or the profile's file name */
    uint32_t n_layer;
    uint8_t k_bits[VKM_KV_MAX_LAYERS];      /* 2, 3, 4, 8 or 16 per layer */
    uint8_t v_bits[VKM_KV_MAX_LAYERS];
    uint32_t group;                         /* G: tokens per key group */
    uint32_t v_group;                       /* channels per value group (G, or head_dim) */
    uint32_t window;                        /* R: newest tokens in FP16 */
    uint32_t sinks;                         /* S: first tokens in FP16 */
    uint32_t ring;                          /* ring slots: R + G + VKM_KV_CHUNK rounded up to a multiple of G */
    char provenance[512];
} vkm_kv_config;

/* Per layer sizes of one of K or V (bits < 16: packed store + ring + sinks; 16: FP16 for n_ctx). */
typedef struct vkm_kv_sizes {
    uint64_t code_bytes, meta_bytes, ring_bytes, sink_bytes, fp16_bytes;
} vkm_kv_sizes;

/* From params (kv / kv_profile / group / window / sinks) for a model. */
vkmix_error vkm_kv_config_from_params(const vkmix_session_params *p, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *cfg, char *err, size_t errlen);
/* Blocks of G tokens the packed store needs for n_ctx tokens. */
uint32_t vkm_kv_blocks(const vkm_kv_config *cfg, uint32_t n_ctx);
/* Blocks that are quantized once n tokens are cached. */
uint32_t vkm_kv_blocks_at(const vkm_kv_config *cfg, uint32_t n);
void vkm_kv_layer_sizes(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx, uint32_t layer, int is_v,
                        vkm_kv_sizes *out);
/* Memory at n_tokens cached (bytes that hold data) of a cache allocated for n_ctx. */
void vkm_kv_memory(const vkm_kv_config *cfg, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens,
                   vkmix_kv_memory *out);
#endif
