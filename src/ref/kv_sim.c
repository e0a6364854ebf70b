/* CPU simulation of the cache's quantization (see kv_sim.h). */
#include "ref/kv_sim.h"

vkmix_error vkm_kv_sim_step(const vkm_kv_config *cfg, vkm_ref_state *st, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    const vkm_kv_policy_ops *ops = vkm_kv_policy(cfg->policy);
    if (!ops) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (n_new > st->n_ctx) return VKMIX_ERROR_CONTEXT_OVERFLOW;
    vkmix_error e = VKMIX_OK;
    for (uint32_t l = 0; l < st->hp.n_layer && e == VKMIX_OK; l++)
        e = ops->sim_age(cfg, &st->hp, l, vkm_ref_k_at(st, l, 0), vkm_ref_v_at(st, l, 0), n_old, n_new, fp16_dequant);
    return e;
}
