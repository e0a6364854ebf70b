/* The cache as state: regions for save/restore, the rewind of the FP16 window,
 * allocation up front, device bytes (see kv_state.h). */
#include "kv/kv_state.h"

#include "kv/kv.h"
#include "kv/mikv_device.h"
#include "kv/mixkvq_device.h"

static uint32_t side_regions(const vkm_kv_cache *c, const vkm_kv_side *s, int is_v, uint32_t n, vkm_kv_region *out,
                             uint32_t k, uint32_t cap)
{
    const uint32_t H = c->n_kv_head;
#define PUT(b, st, by)                                                                                                 \
    do {                                                                                                               \
        if (out && k < cap) out[k] = (vkm_kv_region){ &(b), H, (st), (by) };                                           \
        k++;                                                                                                           \
    } while (0)
    if (s->bits >= 16) {
        /* [H][n_ctx][D] f16: the first n positions of each head */
        uint64_t per_pos = (uint64_t)c->head_dim * 2;
        PUT(s->ring, (uint64_t)c->n_ctx * per_pos, (uint64_t)n * per_pos);
        return k;
    }
    /* packed store (kv/kv_layout.h), head-major with whole groups contiguous: per head, the quantized groups */
    const uint64_t G = c->cfg.group, D = c->head_dim, nq = vkm_kv_blocks_at(&c->cfg, n);
    uint64_t code_group = is_v ? G * kvl_v_wpt(s->bits, c->head_dim) * 4
                               : (uint64_t)kvl_k_wpc(s->bits, c->cfg.group) * D * 4;
    uint64_t meta_group = is_v ? G * (D / c->cfg.v_group) * 4 : D * 4;
    PUT(s->codes, c->n_blocks * code_group, nq * code_group);
    PUT(s->meta, c->n_blocks * meta_group, nq * meta_group);
    PUT(s->ring, (uint64_t)c->cfg.ring * D * 2, (uint64_t)c->cfg.ring * D * 2);
    if (c->cfg.sinks) PUT(s->sinks, (uint64_t)c->cfg.sinks * D * 2, (uint64_t)c->cfg.sinks * D * 2);
#undef PUT
    return k;
}

uint32_t vkm_kv_state_regions(const vkm_kv_cache *c, uint32_t n, vkm_kv_region *out, uint32_t cap)
{
    uint32_t k = 0;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        k = side_regions(c, &c->k[l], 0, n, out, k, cap);
        k = side_regions(c, &c->v[l], 1, n, out, k, cap);
    }
    return k;
}

void vkm_kv_rewind_span(const vkm_kv_cache *c, uint32_t n, uint32_t ring_from, uint32_t *b0, uint32_t *b1)
{
    *b0 = *b1 = 0;
    if (!c->cfg.quantized) return;
    const uint32_t S = c->cfg.sinks, G = c->cfg.group;
    uint32_t lo = vkm_kv_blocks_at(&c->cfg, n);      /* the window starts at S + lo G */
    uint32_t end = ring_from < n ? ring_from : n;     /* positions below this lost their slot */
    if (end <= S + lo * G) return;
    *b0 = lo;
    *b1 = (end - S + G - 1) / G;
}

vkmix_error vkm_kv_refill(vkm_cmd *cmd, const vkm_kv_cache *c, uint32_t b0, uint32_t b1)
{
    const uint32_t G = c->cfg.group;
    for (uint32_t l = 0; l < c->n_layer; l++)
        for (int is_v = 0; is_v < 2; is_v++) {
            const vkm_kv_side *s = is_v ? &c->v[l] : &c->k[l];
            if (s->bits >= 16) continue;
            for (uint32_t b = b0; b < b1; b++) {
                vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, s->bits, is_v ? c->cfg.v_group : G,
                                       c->head_dim, c->n_kv_head, G };
                /* in: group b of the packed store; out: its G ring slots (a group never wraps: ring % G == 0) */
                vkm_kvq_range r = { is_v ? c->n_blocks * G : c->n_blocks, is_v ? b * G : b, c->cfg.ring,
                                    (b * G) % c->cfg.ring };
                vkmix_error e = vkm_kvq_dequant_record(cmd, &sh, &r, VKM_BIND(s->codes), VKM_BIND(s->meta),
                                                       VKM_BIND(s->ring));
                if (e != VKMIX_OK) return e;
            }
        }
    return VKMIX_OK;
}

vkmix_error vkm_kv_cache_reserve(vkmix_context *ctx, vkm_kv_cache *c)
{
    int any = 0;
    for (uint32_t l = 0; l < c->n_layer; l++) any |= c->k[l].bits < 16 || c->v[l].bits < 16;
    /* MiKV's and MixKVQ's prefill read the packed store: no linear copy */
    if (c->cfg.policy == VKMIX_KV_POLICY_MIKV || c->cfg.policy == VKMIX_KV_POLICY_MIXKVQ) any = 0;
    if (!any || c->klin.buf) return VKMIX_OK;
    uint64_t lin = (uint64_t)c->n_kv_head * c->n_ctx * c->head_dim * 2;
    if (lin > ctx->dev.caps.max_storage_range)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_OUT_OF_DEVICE_MEMORY,
                        "the linear history for prefill (%.1f MiB) exceeds the device's maxStorageBufferRange",
                        (double)lin / 1048576.0);
    vkmix_error e = vkm_buffer_create(&ctx->dev, &c->klin, lin, VKM_MEM_DEVICE);
    if (e == VKMIX_OK) e = vkm_buffer_create(&ctx->dev, &c->vlin, lin, VKM_MEM_DEVICE);
    return e;
}

void vkm_kv_cache_bytes(const vkm_kv_cache *c, uint64_t *cache, uint64_t *linear, uint64_t *partials)
{
    uint64_t kv = 0;
    for (uint32_t l = 0; l < c->n_layer; l++)
        for (int is_v = 0; is_v < 2; is_v++) {
            const vkm_kv_side *s = is_v ? &c->v[l] : &c->k[l];
            kv += s->codes.size + s->meta.size + s->ring.size + s->sinks.size;
        }
    uint64_t pdata = 0, pwork = 0;
    if (c->cfg.policy == VKMIX_KV_POLICY_MIKV) vkm_mikv_bytes(c, &pdata, &pwork);
    if (c->cfg.policy == VKMIX_KV_POLICY_MIXKVQ) {
        pdata = vkm_mixkvq_bytes(c);       /* tier maps, query statistics */
        pwork = vkm_mixkvq_work_bytes(c);
    }
    *cache = kv + pdata;
    *linear = c->klin.size + c->vlin.size;
    *partials = c->part.size + pwork;
}
