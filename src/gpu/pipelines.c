/* THE table of every compute shader vkmix has. Each row: the shader, how many
 * storage buffers it binds, the size of its push constants, and what its
 * specialization constants mean (constant 0 is always local_size_x). */
#include "gpu/pipelines.h"

#include <stdio.h>
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
    [VKM_SH_KVQ_DECODE]    = { "kvq_decode",    SPV(kvq_decode),    3, 12,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "value group", "query heads per KV head", "heads per workgroup", "tile tokens", "key pairs", "value pairs", "subgroup ops" } },
    [VKM_SH_KVQ_DECODE_F32] = { "kvq_decode_f32", SPV(kvq_decode_f32), 3, 12,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "value group", "query heads per KV head", "heads per workgroup", "tile tokens", "key pairs", "value pairs", "subgroup ops" } },
    [VKM_SH_ATTN_DECODE]   = { "attn_decode",   SPV(attn_decode),   3, 12, { "local_size", "head_dim", "query heads per KV head", "heads per workgroup", "group", "subgroup ops" } },
    [VKM_SH_ATTN_COMBINE]  = { "attn_combine",  SPV(attn_combine),  3, 8,  { "local_size", "head_dim", "max splits", "channels per workgroup" } },
    [VKM_SH_MIKV_ATTN]     = { "mikv_attn",     SPV(mikv_attn),    12, 76,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "value group", "query heads per KV head", "high rows", "high bits" } },
    [VKM_SH_MIKV_COMBINE]  = { "mikv_combine",  SPV(mikv_combine),  2, 16, { "local_size", "head_dim" } },
    [VKM_SH_MIKV_IMPORTANCE] = { "mikv_importance", SPV(mikv_importance), 2, 44, { "local_size", "query heads per KV head" } },
    [VKM_SH_MIKV_QMAX]     = { "mikv_qmax",     SPV(mikv_qmax),     2, 32, { "local_size", "query heads per KV head", "head_dim" } },
    [VKM_SH_MIKV_BALANCE]  = { "mikv_balance",  SPV(mikv_balance),  2, 32, { "local_size", "head_dim" } },
    [VKM_SH_MIKV_AGE]      = { "mikv_age",      SPV(mikv_age),      6, 48,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "high rows", "high bits" } },
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
    [VKM_SH_MIXKVQ_ATTN]   = { "mixkvq_attn",   SPV(mixkvq_attn),  12, 44,
                               { "local_size", "key bits", "value bits", "group", "head_dim", "value group", "query heads per KV head" } },
    [VKM_SH_MIXKVQ_QSTAT]  = { "mixkvq_qstat",  SPV(mixkvq_qstat),  2, 28, { "local_size", "query heads per KV head", "head_dim" } },
    [VKM_SH_MIXKVQ_AGE]    = { "mixkvq_age",    SPV(mixkvq_age),    5, 48, { "local_size", "group", "head_dim" } },
    [VKM_SH_MIXKVQ_COMBINE] = { "mixkvq_combine", SPV(mixkvq_combine), 2, 8, { "local_size", "head_dim" } },
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

/* VKMIX_PIPELINE_STATS=1: the driver's compiler statistics of a new pipeline
 * (registers, spills, shared memory...) as one INFO line. */
static void log_statistics(vkm_device *dev, const vkm_pipeline *p)
{
    const vkm_vkd *vk = &dev->vk;
    if (!vk->vkGetPipelineExecutablePropertiesKHR || !vk->vkGetPipelineExecutableStatisticsKHR) return;
    VkPipelineInfoKHR pi = { .sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = p->pipeline };
    uint32_t n_exec = 0;
    if (vk->vkGetPipelineExecutablePropertiesKHR(dev->device, &pi, &n_exec, NULL) != VK_SUCCESS || !n_exec) return;
    char line[1024];
    int at = snprintf(line, sizeof line, "pipeline %s [", vkm_shader_table[p->shader].name);
    for (uint32_t i = 0; i < p->n_spec && at < (int)sizeof line; i++)
        at += snprintf(line + at, sizeof line - at, "%s%u", i ? "," : "", p->spec[i]);
    at += snprintf(line + at, sizeof line - at, "]:");
    VkPipelineExecutableInfoKHR ei = { .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR, .pipeline = p->pipeline };
    VkPipelineExecutableStatisticKHR st[32];
    uint32_t n = 32;
    for (uint32_t i = 0; i < n; i++) st[i] = (VkPipelineExecutableStatisticKHR){ .sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR };
    VkResult r = vk->vkGetPipelineExecutableStatisticsKHR(dev->device, &ei, &n, st);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return;
    for (uint32_t i = 0; i < n && at < (int)sizeof line; i++) {
        const VkPipelineExecutableStatisticKHR *x = &st[i];
        switch (x->format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR:
            at += snprintf(line + at, sizeof line - at, " %s=%u;", x->name, (unsigned)x->value.b32); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR:
            at += snprintf(line + at, sizeof line - at, " %s=%lld;", x->name, (long long)x->value.i64); break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR:
            at += snprintf(line + at, sizeof line - at, " %s=%llu;", x->name, (unsigned long long)x->value.u64); break;
        default:
            at += snprintf(line + at, sizeof line - at, " %s=%g;", x->name, x->value.f64); break;
        }
    }
    vkm_log(dev, VKMIX_LOG_INFO, "%s", line);
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
        .flags = dev->pipeline_stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0,
    };
    r = vk->vkCreateComputePipelines(dev->device, dev->pipeline_cache, 1, &ci, NULL, &p->pipeline);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, d->name);
    if (dev->pipeline_stats) log_statistics(dev, p);
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

static vkm_pipeline *find(const vkm_pipeline_set *set, uint32_t from, uint32_t n, vkm_shader shader,
                          const uint32_t *spec, uint32_t n_spec)
{
    for (uint32_t i = from; i < n; i++) {
        vkm_pipeline *p = set->chunks[i / VKM_PIPE_CHUNK][i % VKM_PIPE_CHUNK];
        if (p->shader == shader && p->n_spec == n_spec && !memcmp(p->spec, spec, n_spec * 4)) return p;
    }
    return NULL;
}

vkmix_error vkm_pipeline_get(vkm_device *dev, vkm_pipeline_set *set, vkm_shader shader, const uint32_t *spec,
                             uint32_t n_spec, const vkm_pipeline **out)
{
    *out = NULL;
    if ((unsigned)shader >= VKM_SH_COUNT_ || n_spec > VKM_MAX_SPEC || n_spec < 1)
        return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "bad pipeline request");
    if (!set->lock_ok) return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "pipeline set not initialized");
    /* fast path, no lock: the published entries */
    uint32_t n = __atomic_load_n(&set->n, __ATOMIC_ACQUIRE);
    if ((*out = find(set, 0, n, shader, spec, n_spec))) return VKMIX_OK;

    pthread_mutex_lock(&set->lock);
    vkmix_error e = VKMIX_OK;
    uint32_t m = set->n; /* another thread may have built it meanwhile */
    if ((*out = find(set, n, m, shader, spec, n_spec))) goto done;
    if (spec[0] == 0 || spec[0] > dev->caps.max_wg_invocations) {
        e = vkm_fail(dev, VKMIX_ERROR_INTERNAL, "%s: workgroup size %u not supported (max %u)",
                     vkm_shader_table[shader].name, spec[0], dev->caps.max_wg_invocations);
        goto done;
    }
    if (m == VKM_PIPE_CHUNK * VKM_PIPE_CHUNKS) {
        e = vkm_fail(dev, VKMIX_ERROR_INTERNAL, "more than %u pipelines", VKM_PIPE_CHUNK * VKM_PIPE_CHUNKS);
        goto done;
    }
    vkm_pipeline ***chunk = &set->chunks[m / VKM_PIPE_CHUNK];
    if (!*chunk && !(*chunk = calloc(VKM_PIPE_CHUNK, sizeof **chunk))) {
        e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto done;
    }
    vkm_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto done;
    }
    p->shader = shader;
    p->n_spec = n_spec;
    memcpy(p->spec, spec, n_spec * 4);
    p->local_size = spec[0];
    if ((e = build(dev, p)) != VKMIX_OK) {
        destroy_one(dev, p);
        goto done;
    }
    (*chunk)[m % VKM_PIPE_CHUNK] = p;
    __atomic_store_n(&set->n, m + 1, __ATOMIC_RELEASE); /* publish after the entry is complete */
    *out = p;
done:
    pthread_mutex_unlock(&set->lock);
    return e;
}

void vkm_pipeline_set_destroy(vkm_device *dev, vkm_pipeline_set *set)
{
    for (uint32_t i = 0; i < set->n; i++) destroy_one(dev, set->chunks[i / VKM_PIPE_CHUNK][i % VKM_PIPE_CHUNK]);
    for (uint32_t c = 0; c < VKM_PIPE_CHUNKS; c++) free(set->chunks[c]);
    if (set->lock_ok) pthread_mutex_destroy(&set->lock);
    memset(set, 0, sizeof *set);
}
