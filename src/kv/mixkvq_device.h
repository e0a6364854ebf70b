/* MixKVQ's device operations (mixkvq_device.c): the entries of vkm_kv_policy_mixkvq
 * that record GPU work. The rules they follow are kv_policy_mixkvq.c's. */
#ifndef VKM_MIXKVQ_DEVICE_H
#define VKM_MIXKVQ_DEVICE_H

#include "kv/kv.h"

vkmix_error vkm_mixkvq_create(vkmix_context *ctx, vkm_kv_cache *c, const vkm_hparams *hp);
void vkm_mixkvq_destroy(vkm_device *dev, vkm_kv_cache *c);
vkmix_error vkm_mixkvq_store(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding k, vkm_binding v, uint32_t n,
                             uint32_t pos0);
vkmix_error vkm_mixkvq_decode(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                              vkm_binding scratch, uint32_t pos0);
vkmix_error vkm_mixkvq_prefill(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, vkm_binding q, vkm_binding out,
                               vkm_binding scratch, uint32_t n, uint32_t pos0);
vkmix_error vkm_mixkvq_age(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t layer, uint32_t n, uint32_t pos0, int *recorded);

/* Device bytes of the policy's own data (tier maps, query statistics): part of the cache. */
uint64_t vkm_mixkvq_bytes(const vkm_kv_cache *c);
/* Device bytes of its working memory (the attention's split-K partials). */
uint64_t vkm_mixkvq_work_bytes(const vkm_kv_cache *c);

/* Benchmarks: tier maps as the age step would write them for random salience (seeded),
 * within each layer's key budget, for a cache whose codes were filled with random bits. */
vkmix_error vkm_mixkvq_fill_synthetic(vkm_cmd *cmd, vkm_kv_cache *c, uint32_t seed);

/* Test access: the tier maps of a layer (kvl_mix_map, NULL when its keys are not packed). */
const vkm_buffer *vkm_mixkvq_map(const vkm_kv_cache *c, uint32_t layer);

#endif
