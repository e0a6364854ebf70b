/* THE table of every compute shader vkmix has. Each row: the shader, how many
 * storage buffers it binds, the size of its push constants, and what its
 * specialization constants mean (constant 0 is always local_size_x). */
#include "gpu/pipelines.h"

#include <stdlib.h>
#include <string.h>

#include "spv_blobs.h"

#define SPV(n) vkm_spv_##n, &vkm_spv_##n##_size

const vkm_shader_desc vkm_shader_table[VKM_SH_COUNT_] = {
    [VKM_SH_COPY]          = { "copy",          SPV(copy),          2, 4,  { "local_size", "uvec4 per invocation", "read only" } },
    [VKM_SH_KVQ_QUANT_K]   = { "kvq_quant_k",   SPV(kvq_quant_k),   3, 32, { "local_size", "bits", "group", "head_dim" } },
    [VKM_SH_KVQ_QUANT_V]   = { "kvq_quant_v",   SPV(kvq_quant_v),   3, 32, { "local_size", "bits", "group", "head_dim" } },
    [VKM_SH_KVQ_DEQUANT_K] = { "kvq_dequant_k", SPV(kvq_dequant_k), 3, 32, { "local_size", "bits", "group", "head_dim" } },
    [VKM_SH_KVQ_DEQUANT_V] = { "kvq_dequant_v", SPV(kvq_dequant_v), 3, 32, { "local_size", "bits", "group", "head_dim" } },
    [VKM_SH_KV_RING_STORE] = { "kv_ring_store", SPV(kv_ring_store), 3, 20, { "local_size", "head_dim" } },
    [VKM_SH_KV_RING_GATHER] = { "kv_ring_gather", SPV(kv_ring_gather), 3, 24, { "local_size", "head_dim" } },
    [VKM_SH_KVQ_ATTN]      = { "kvq_attn",      SPV(kvq_attn),     10, 40,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "value group", "query heads per KV head", "tile tokens" } },
    [VKM_SH_KVQ_ATTN_REDUCE] = { "kvq_attn_reduce", SPV(kvq_attn_reduce), 2, 4, { "local_size", "head_dim", "max splits" } },
    [VKM_SH_FILL_RANDOM]   = { "fill_random",   SPV(fill_random),   3, 24, { "local_size", "ggml type" } },
    [VKM_SH_RMSNORM]       = { "rmsnorm",       SPV(rmsnorm),       3, 16, { "local_size" } },
    [VKM_SH_MATVEC]        = { "matvec",        SPV(matvec),        6, 36, { "local_size", "wtype", "rows", "columns", "unroll", "epilogue" } },
    [VKM_SH_MATVEC_IDOT]   = { "matvec_idot",   SPV(matvec_idot),   6, 36, { "local_size", "wtype", "rows", "columns", "unroll", "epilogue" } },
    [VKM_SH_ACT_QUANT]     = { "act_quant",     SPV(act_quant),     3, 16, { "local_size" } },
    [VKM_SH_MATMUL]        = { "matmul",        SPV(matmul),        6, 36, { "local_size", "wtype", "bm", "bn", "tm", "tn", "add" } },
    [VKM_SH_MATMUL_COOPMAT] = { "matmul_coopmat", SPV(matmul_coopmat), 6, 36, { "local_size", "wtype", "bm", "bn", "wm", "wn", "lm", "ln", "lk", "add" } },
    [VKM_SH_GET_ROWS]      = { "get_rows",      SPV(get_rows),      3, 32, { "local_size", "wtype" } },
    [VKM_SH_ROPE]          = { "rope",          SPV(rope),          2, 20, { "local_size" } },
    [VKM_SH_ROPE_STORE]    = { "rope_store",    SPV(rope_store),    9, 28, { "local_size" } },
    [VKM_SH_SILU_MUL]      = { "silu_mul",      SPV(silu_mul),      3, 4,  { "local_size", "pairs" } },
    [VKM_SH_ADD]           = { "add",           SPV(add),           3, 4,  { "local_size" } },
    [VKM_SH_COPY_F32]      = { "copy_f32",      SPV(copy_f32),      2, 4,  { "local_size" } },
    [VKM_SH_KV_STORE]      = { "kv_store",      SPV(kv_store),      4, 28, { "local_size" } },
    [VKM_SH_ATTN]          = { "attn",          SPV(attn),          5, 40, { "local_size", "head_dim", "heads_per_group", "key_lanes", "keys_per_lane", "prefetch" } },
    [VKM_SH_ATTN_REDUCE]   = { "attn_reduce",   SPV(attn_reduce),   2, 8,  { "local_size", "head_dim" } },
};

static void destroy_one(vkm_device *dev, vkm_pipeline *p)
{
    const vkm_vkd *vk = &dev->vk;
    if (p->pipeline) vk->vkDestroyPipeline(dev->device, p->pipeline, NULL);
    if (p->layout) vk->vkDestroyPipelineLayout(dev->device, p->layout, NULL);
    if (p->dsl) vk->vkDestroyDescriptorSetLayout(dev->device, p->dsl, NULL);
    if (p->module) vk->vkDestroyShaderModule(dev->device, p->module, NULL);
    free(p);
}

static vkmix_error build(vkm_device *dev, vkm_pipeline *p)
{
    const vkm_vkd *vk = &dev->vk;
    const vkm_shader_desc *d = &vkm_shader_table[p->shader];
    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = *d->spv_size,
        .pCode = d->spv,
    };
    VkResult r = vk->vkCreateShaderModule(dev->device, &mi, NULL, &p->module);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, d->name);

    VkDescriptorSetLayoutBinding b[VKM_MAX_BINDINGS];
    for (uint32_t i = 0; i < d->n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){ i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL };
    VkDescriptorSetLayoutCreateInfo li = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
        .bindingCount = d->n_bindings,
        .pBindings = b,
    };
    r = vk->vkCreateDescriptorSetLayout(dev->device, &li, NULL, &p->dsl);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr = { VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size };
    VkPipelineLayoutCreateInfo pli = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->dsl,
        .pushConstantRangeCount = d->push_size ? 1 : 0,
        .pPushConstantRanges = &pr,
    };
    r = vk->vkCreatePipelineLayout(dev->device, &pli, NULL, &p->layout);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreatePipelineLayout");

    VkSpecializationMapEntry me[VKM_MAX_SPEC];
    for (uint32_t i = 0; i < p->n_spec; i++) me[i] = (VkSpecializationMapEntry){ i, i * 4, 4 };
    VkSpecializationInfo si = { p->n_spec, me, p->n_spec * 4, p->spec };
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {
            .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
            .stage = VK_SHADER_STAGE_COMPUTE_BIT,
            .module = p->module,
            .pName = "main",
            .pSpecializationInfo = &si,
        },
        .layout = p->layout,
    };
    r = vk->vkCreateComputePipelines(dev->device, dev->pipeline_cache, 1, &ci, NULL, &p->pipeline);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, d->name);
    return VKMIX_OK;
}

vkmix_error vkm_pipeline_set_init(vkm_device *dev, vkm_pipeline_set *set)
{
    memset(set, 0, sizeof *set);
    if (pthread_mutex_init(&set->lock, NULL) != 0)
        return vkm_fail(dev, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "pthread_mutex_init failed");
    set->lock_ok = true;
    return VKMIX_OK;
}

static vkmix_error get_locked(vkm_device *dev, vkm_pipeline_set *set, vkm_shader shader, const uint32_t *spec,
                              uint32_t n_spec, const vkm_pipeline **out);

vkmix_error vkm_pipeline_get(vkm_device *dev, vkm_pipeline_set *set, vkm_shader shader, const uint32_t *spec,
                             uint32_t n_spec, const vkm_pipeline **out)
{
    *out = NULL;
    if ((unsigned)shader >= VKM_SH_COUNT_ || n_spec > VKM_MAX_SPEC || n_spec < 1)
        return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "bad pipeline request");
    if (!set->lock_ok) return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "pipeline set not initialized");
    pthread_mutex_lock(&set->lock);
    vkmix_error e = get_locked(dev, set, shader, spec, n_spec, out);
    pthread_mutex_unlock(&set->lock);
    return e;
}

static vkmix_error get_locked(vkm_device *dev, vkm_pipeline_set *set, vkm_shader shader, const uint32_t *spec,
                              uint32_t n_spec, const vkm_pipeline **out)
{
    for (uint32_t i = 0; i < set->n; i++) {
        vkm_pipeline *p = set->items[i];
        if (p->shader == shader && p->n_spec == n_spec && !memcmp(p->spec, spec, n_spec * 4)) {
            *out = p;
            return VKMIX_OK;
        }
    }
    if (spec[0] == 0 || spec[0] > dev->caps.max_wg_invocations)
        return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "%s: workgroup size %u not supported (max %u)",
                        vkm_shader_table[shader].name, spec[0], dev->caps.max_wg_invocations);
    if (set->n == set->cap) {
        uint32_t cap = set->cap ? set->cap * 2 : 32;
        vkm_pipeline **items = realloc(set->items, cap * sizeof *items);
        if (!items) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        set->items = items;
        set->cap = cap;
    }
    vkm_pipeline *p = calloc(1, sizeof *p);
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    p->shader = shader;
    p->n_spec = n_spec;
    memcpy(p->spec, spec, n_spec * 4);
    p->local_size = spec[0];
    vkmix_error e = build(dev, p);
    if (e != VKMIX_OK) {
        destroy_one(dev, p);
        return e;
    }
    set->items[set->n++] = p;
    *out = p;
    return VKMIX_OK;
}

void vkm_pipeline_set_destroy(vkm_device *dev, vkm_pipeline_set *set)
{
    for (uint32_t i = 0; i < set->n; i++) destroy_one(dev, set->items[i]);
    free(set->items);
    if (set->lock_ok) pthread_mutex_destroy(&set->lock);
    memset(set, 0, sizeof *set);
}
