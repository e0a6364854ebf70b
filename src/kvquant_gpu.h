/* Recording the KV quantization kernels into the context's command buffer. */
#ifndef VKM_KVQUANT_GPU_H
#define VKM_KVQUANT_GPU_H
#include "vk_device.h"
#include "vkmix.h"

vkmix_error vkm_kvq_quant_record(vkmix_context *ctx, const vkmix_kvq_shape *s, vkm_binding x, vkm_binding codes,
                                 vkm_binding meta);
vkmix_error vkm_kvq_dequant_record(vkmix_context *ctx, const vkmix_kvq_shape *s, vkm_binding codes, vkm_binding meta,
                                   vkm_binding y);
#endif
