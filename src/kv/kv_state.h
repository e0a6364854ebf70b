/* The cache as state (kv_state.c): the buffer regions that hold the data of n
 * tokens (save / restore), the rewind of the FP16 window, what the cache
 * allocates up front, and its device bytes. Positions are the session's. */
#ifndef VKM_KV_STATE_H
#define VKM_KV_STATE_H

#include "kv/kv_cache.h"

/* Bytes [h * stride, h * stride + bytes) of buf for every h < n_heads. */
typedef struct vkm_kv_region {
    const vkm_buffer *buf;
    uint32_t n_heads;
    uint64_t stride, bytes;
} vkm_kv_region;

/* The regions that hold the data of a cache with n tokens, in a fixed order
 * (layer; K then V; codes, meta, ring, sinks): packed groups that are
 * quantized at n, the whole FP16 ring and sinks, the first n positions of an
 * FP16 side. The bytes per head do not depend on n_ctx, so a state moves
 * between caches of one configuration and different lengths. out may be NULL
 * (count only); returns the count (at most 4 per layer and side). */
uint32_t vkm_kv_state_regions(const vkm_kv_cache *c, uint32_t n, vkm_kv_region *out, uint32_t cap);

/* Rewinding a quantized cache to n tokens. The FP16 window at n is
 * [S + blocks_at(n) G, n); a ring slot holds its own position's value for
 * positions >= ring_from (the session's bookkeeping: slots of older positions
 * were overwritten, and those positions are in packed groups). The groups of
 * the window that start below ring_from are refilled from their packed codes:
 * [*b0, *b1), empty when the rewind is exact. */
void vkm_kv_rewind_span(const vkm_kv_cache *c, uint32_t n, uint32_t ring_from, uint32_t *b0, uint32_t *b1);
/* Records the refill of groups [b0, b1) (dequantized codes into their ring slots) of every quantized side. */
vkmix_error vkm_kv_refill(vkm_cmd *cmd, const vkm_kv_cache *c, uint32_t b0, uint32_t b1);

/* Allocates now what the cache would otherwise allocate at first use (the
 * linear FP16 history a quantized cache's prefill attends over). */
vkmix_error vkm_kv_cache_reserve(vkmix_context *ctx, vkm_kv_cache *c);
/* Device bytes held: the cache proper (codes, meta, ring, sinks or the FP16
 * cache), the linear prefill history, the fused decode's partials. */
void vkm_kv_cache_bytes(const vkm_kv_cache *c, uint64_t *cache, uint64_t *linear, uint64_t *partials);

#endif
