/* The table of cache policies: a policy is an entry of vkm_kv_policy_ops
 * (kv/kv.h); docs/KVCACHE.md says how to add one. */
#include <string.h>

#include "kv/kv.h"

/* Indexed by vkmix_kv_policy. */
static const vkm_kv_policy_ops *const table[VKMIX_KV_POLICY_COUNT_] = {
    [VKMIX_KV_POLICY_LAYER] = &vkm_kv_policy_layer,
    [VKMIX_KV_POLICY_MIKV] = &vkm_kv_policy_mikv,
    [VKMIX_KV_POLICY_MIXKVQ] = &vkm_kv_policy_mixkvq,
};

const vkm_kv_policy_ops *vkm_kv_policy(vkmix_kv_policy id)
{
    return (unsigned)id < VKMIX_KV_POLICY_COUNT_ ? table[id] : NULL;
}

int vkm_kv_policy_implemented(vkmix_kv_policy id)
{
    const vkm_kv_policy_ops *ops = vkm_kv_policy(id);
    return ops && ops->create && ops->store && ops->decode && ops->prefill && ops->age;
}

int vkm_kv_policy_by_name(const char *name)
{
    for (int i = 0; name && i < VKMIX_KV_POLICY_COUNT_; i++)
        if (!strcmp(name, table[i]->name)) return i;
    return -1;
}

const char *vkm_kv_policy_name(vkmix_kv_policy id)
{
    const vkm_kv_policy_ops *ops = vkm_kv_policy(id);
    return ops ? ops->name : "unknown";
}
