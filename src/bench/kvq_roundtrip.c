/* Test support: a KV quantize -> dequantize round trip on the GPU. */
#include "core/context.h"
#include "kv/kv.h"
#include "vkmix_bench.h"

vkmix_error vkmix_kvq_roundtrip_gpu(vkmix_context *ctx, const vkmix_kvq_shape *s, const uint16_t *x, uint32_t *codes,
                                    uint32_t *meta, uint16_t *y)
{
    if (!ctx || !s || !x) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkmix_error e = vkm_kvq_check(s, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    vkmix_kvq_sizes sz;
    vkmix_kvq_sizes_for(s, &sz);
    uint64_t xbytes = (uint64_t)s->n_heads * s->n_tokens * s->head_dim * 2;
    vkm_device *dev = &ctx->dev;
    vkm_buffer bx = { 0 }, bc = { 0 }, bm = { 0 }, by = { 0 };
    vkm_cmd cmd;
    if ((e = vkm_cmd_create(&cmd, dev, ctx, false)) != VKMIX_OK) return e;
    if ((e = vkm_buffer_create(dev, &bx, xbytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &bc, sz.code_bytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &bm, sz.meta_bytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_create(dev, &by, xbytes, VKM_MEM_DEVICE)) != VKMIX_OK) goto done;
    if ((e = vkm_buffer_upload(&cmd, &bx, 0, x, xbytes)) != VKMIX_OK) goto done;
    if ((e = vkm_cmd_begin(&cmd)) != VKMIX_OK) goto done;
    /* codes of a small value head end in a partial word: start from zeros */
    vkm_cmd_fill(&cmd, &bc, 0);
    vkm_cmd_barrier(&cmd);
    if ((e = vkm_kvq_quant_record(&cmd, s, NULL, VKM_BIND(bx), VKM_BIND(bc), VKM_BIND(bm))) != VKMIX_OK) goto done;
    vkm_cmd_barrier(&cmd);
    if ((e = vkm_kvq_dequant_record(&cmd, s, NULL, VKM_BIND(bc), VKM_BIND(bm), VKM_BIND(by))) != VKMIX_OK) goto done;
    if ((e = vkm_cmd_submit(&cmd)) != VKMIX_OK) goto done;
    if (codes && (e = vkm_buffer_download(&cmd, &bc, 0, codes, sz.code_bytes)) != VKMIX_OK) goto done;
    if (meta && (e = vkm_buffer_download(&cmd, &bm, 0, meta, sz.meta_bytes)) != VKMIX_OK) goto done;
    if (y && (e = vkm_buffer_download(&cmd, &by, 0, y, xbytes)) != VKMIX_OK) goto done;
done:
    vkm_cmd_destroy(&cmd);
    vkm_buffer_destroy(dev, &bx);
    vkm_buffer_destroy(dev, &bc);
    vkm_buffer_destroy(dev, &bm);
    vkm_buffer_destroy(dev, &by);
    return e;
}
