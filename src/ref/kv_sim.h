/* CPU simulation of the mixed-precision cache on the fp32 reference model: the
 * same groups are quantized at the same steps with the same rounding, so the
 * reference computes exactly the quantized math of the GPU cache. The math is
 * the configured policy's (vkm_kv_policy_ops.sim_*, on the state's arrays). */
#ifndef VKM_KV_SIM_H
#define VKM_KV_SIM_H
#include "kv/kv.h"
#include "ref/ref_model.h"

/* Call after a step moved the cache from n_old to n_new tokens (the reference
 * state must store K/V in FP16: kv_fp16 = 1). Quantizes, in place, the groups
 * that aged out of the window. Dequantized values stay fp32 (code * scale + min:
 * the fused decode attention's math) or, with fp16_dequant, are rounded to FP16
 * (the prefill path, which attends over an FP16 copy of the history).
 * For policies without state (the per-layer one); others need a vkm_kv_sim. */
vkmix_error vkm_kv_sim_step(const vkm_kv_config *cfg, vkm_ref_state *st, uint32_t n_old, uint32_t n_new, int fp16_dequant);

/* A simulation with the policy's state (importance, statistics) for one sequence.
 * create installs st->kv_hook (which must be free), so vkm_ref_forward feeds every
 * query to the policy; callers that run attention themselves call observe. */
typedef struct vkm_kv_sim vkm_kv_sim;
vkmix_error vkm_kv_sim_create(const vkm_kv_config *cfg, vkm_ref_state *st, vkm_kv_sim **out);
void vkm_kv_sim_free(vkm_kv_sim *s);
/* q [n_head*head_dim] of `pos` (after RoPE) is about to attend over the layer's cache. */
vkmix_error vkm_kv_sim_observe(vkm_kv_sim *s, uint32_t layer, uint32_t pos, const float *q);
/* The policy's simulation state (tests look into it: vkm_mikv_sim_importance). */
void *vkm_kv_sim_state(vkm_kv_sim *s);
/* As vkm_kv_sim_step. */
vkmix_error vkm_kv_sim_advance(vkm_kv_sim *s, uint32_t n_old, uint32_t n_new, int fp16_dequant);
#endif
