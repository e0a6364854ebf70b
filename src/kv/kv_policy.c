/* The table of cache policies: a policy is an entry of vkm_kv_policy_ops
 * (kv/kv.h); docs/KVCACHE.md says how to add one. */
#include <string.h>

#include "kv/kv.h"

static const char *const names[VKMIX_KV_POLICY_COUNT_] = { "layer", "mikv", "mixkvq" };

/* Indexed by vkmix_kv_policy; NULL: reserved, not implemented yet. */
static const vkm_kv_policy_ops *const table[VKMIX_KV_POLICY_COUNT_] = {
    [VKMIX_KV_POLICY_LAYER] = &vkm_kv_policy_layer,
    [VKMIX_KV_POLICY_MIKV] = NULL,
    [VKMIX_KV_POLICY_MIXKVQ] = NULL,
};

const vkm_kv_policy_ops *vkm_kv_policy(vkmix_kv_policy id)
{
    return (unsigned)id < VKMIX_KV_POLICY_COUNT_ ? table[id] : NULL;
}

int vkm_kv_policy_by_name(const char *name)
{
    for (int i = 0; name && i < VKMIX_KV_POLICY_COUNT_; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *vkm_kv_policy_name(vkmix_kv_policy id)
{
    return (unsigned)id < VKMIX_KV_POLICY_COUNT_ ? names[id] : "unknown";
}
