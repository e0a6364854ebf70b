/* MiKV's device operations (mikv_device.c): the entries of vkm_kv_policy_mikv
 * that record GPU work. The rules they follow are kv_policy_mikv.c's. */
#ifndef VKM_MIKV_DEVICE_H
#define VKM_MIKV_DEVICE_H

#include "kv/kv.h"

vkmix_error vkm_mikv_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp);
void vkm_mikv_destroy(vkm_device *dev, vkm_kv_cache *c);
vkmix_error vkm_mikv_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                           uint32_t pos0);
vkmix_error vkm_mikv_decode(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                            vkm_binding scratch, uint32_t pos0);
vkmix_error vkm_mikv_prefill(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                             vkm_binding scratch, uint32_t n, uint32_t pos0);
vkmix_error vkm_mikv_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded);

/* Device bytes: the policy's data (masks, importance, balancer, high rows: part of the
 * cache) and its working memory (scores of a step, staging of the age step). */
void vkm_mikv_bytes(const vkm_kv_cache *c, uint64_t *data, uint64_t *work);

/* The benchmark's synthetic cache (random codes written straight into the store): in every
 * block, vkm_mikv_high_rows random tokens are marked high (as the age step would; their
 * high rows hold zeros), the balancer at 1, so that decode reads both tiers as it would
 * after a real prefill. Records and submits on cmd. */
vkmix_error vkm_mikv_fill_synthetic(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t seed);

/* Test access: the tier mask words of (layer, KV head, block) are at word
 * *mask_off + kvl_mikv_mask(hb, w, G) of *aux (NULL when the layer keeps no MiKV state). */
const vkm_buffer *vkm_mikv_aux(const vkm_kv_cache *c, uint32_t layer, uint32_t *mask_off, uint32_t *score_off);

#endif
