/* CPU simulation of the cache's quantization (see kv_sim.h). */
#include "ref/kv_sim.h"

#include <stdlib.h>

struct vkm_kv_sim {
    const vkm_kv_policy_ops *ops;
    vkm_kv_config cfg;
    vkm_ref_state *st;
    void *state;
};

static vkmix_error age_all(const vkm_kv_policy_ops *ops, void *state, const vkm_kv_config *cfg, vkm_ref_state *st,
                           uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    if (n_new > st->n_ctx) return VKMIX_ERROR_CONTEXT_OVERFLOW;
    vkmix_error e = VKMIX_OK;
    for (uint32_t l = 0; l < st->hp.n_layer && e == VKMIX_OK; l++)
        e = ops->sim_age(state, cfg, &st->hp, l, vkm_ref_k_at(st, l, 0), vkm_ref_v_at(st, l, 0), n_old, n_new,
                         fp16_dequant);
    return e;
}

vkmix_error vkm_kv_sim_step(const vkm_kv_config *cfg, vkm_ref_state *st, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    const vkm_kv_policy_ops *ops = vkm_kv_policy(cfg->policy);
    if (!ops || ops->sim_create) return VKMIX_ERROR_INVALID_ARGUMENT; /* a policy with state needs vkm_kv_sim */
    return age_all(ops, NULL, cfg, st, n_old, n_new, fp16_dequant);
}

vkmix_error vkm_kv_sim_observe(vkm_kv_sim *s, uint32_t layer, uint32_t pos, const float *q)
{
    if (!s->ops->sim_observe) return VKMIX_OK;
    return s->ops->sim_observe(s->state, &s->cfg, &s->st->hp, layer, pos, q, vkm_ref_k_at(s->st, layer, 0),
                               vkm_ref_v_at(s->st, layer, 0));
}

static vkmix_error hook(void *user, vkm_ref_state *st, uint32_t layer, uint32_t pos)
{
    return vkm_kv_sim_observe(user, layer, pos, st->q);
}

vkmix_error vkm_kv_sim_create(const vkm_kv_config *cfg, vkm_ref_state *st, vkm_kv_sim **out)
{
    *out = NULL;
    const vkm_kv_policy_ops *ops = vkm_kv_policy(cfg->policy);
    if (!ops || st->kv_hook) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_kv_sim *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    s->ops = ops;
    s->cfg = *cfg;
    s->st = st;
    vkmix_error e = ops->sim_create ? ops->sim_create(cfg, &st->hp, st->n_ctx, &s->state) : VKMIX_OK;
    if (e != VKMIX_OK) {
        free(s);
        return e;
    }
    st->kv_hook = hook;
    st->kv_hook_user = s;
    *out = s;
    return VKMIX_OK;
}

void vkm_kv_sim_free(vkm_kv_sim *s)
{
    if (!s) return;
    if (s->st->kv_hook == hook) {
        s->st->kv_hook = NULL;
        s->st->kv_hook_user = NULL;
    }
    if (s->ops->sim_free) s->ops->sim_free(s->state);
    free(s);
}

vkmix_error vkm_kv_sim_advance(vkm_kv_sim *s, uint32_t n_old, uint32_t n_new, int fp16_dequant)
{
    return age_all(s->ops, s->state, &s->cfg, s->st, n_old, n_new, fp16_dequant);
}

void *vkm_kv_sim_state(vkm_kv_sim *s) { return s ? s->state : NULL; }
