/* CPU simulation of the mixed-precision cache on the fp32 reference model: the
 * same groups are quantized at the same steps with the same rounding, so the
 * reference computes exactly the quantized math of the GPU cache. The math is
 * the configured policy's (vkm_kv_policy_ops.sim_age, on the state's arrays). */
#ifndef VKM_KV_SIM_H
#define VKM_KV_SIM_H
#include "kv/kv.h"
#include "ref/ref_model.h"

/* Call after a step moved the cache from n_old to n_new tokens (the reference
 * state must store K/V in FP16: kv_fp16 = 1). Quantizes, in place, the groups
 * that aged out of the window. Dequantized values stay fp32 (code * scale + min:
 * the fused decode attention's math) or, with fp16_dequant, are rounded to FP16
 * (the prefill path, which attends over an FP16 copy of the history). */
vkmix_error vkm_kv_sim_step(const vkm_kv_config *cfg, vkm_ref_state *st, uint32_t n_old, uint32_t n_new, int fp16_dequant);
#endif
