/* Recording the KV quantization kernels into the caller's recording target. */
#ifndef VKM_KVQUANT_GPU_H
#define VKM_KVQUANT_GPU_H
#include "gpu/vk_device.h"
#include "vkmix.h"

/* Where to read and write (see the push constants in shaders/kvq.glsl): per-head
 * strides and offsets in tokens, or in blocks of `group` tokens for key codes.
 * NULL: the contiguous layouts of src/kvquant.h with shape->n_tokens per head. */
typedef struct vkm_kvq_range {
    uint32_t in_stride, in_off, out_stride, out_off;
} vkm_kvq_range;

vkmix_error vkm_kvq_quant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r, vkm_binding x,
                                 vkm_binding codes, vkm_binding meta);
vkmix_error vkm_kvq_dequant_record(vkm_cmd *cmd, const vkmix_kvq_shape *s, const vkm_kvq_range *r,
                                   vkm_binding codes, vkm_binding meta, vkm_binding y);
#endif
