/* What a physical device can do (the capability struct) and whether vkmix can run on it. */
#include "gpu/vk_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool vkm_has_device_ext(const vkm_vki *vki, VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vki->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return false;
    bool found = false;
    if (vki->vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(e[i].extensionName, name)) found = true;
    free(e);
    return found;
}

void vkm_caps_fill(const vkm_vki *vki, VkPhysicalDevice pd, vkm_caps *c)
{
    memset(c, 0, sizeof *c);
    VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceSubgroupSizeControlProperties sgc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, .pNext = &sg };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 };
    bool has_sgc = vkm_has_device_ext(vki, pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    p2.pNext = has_sgc ? (void *)&sgc : (void *)&sg;
    vki->vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;
    snprintf(c->device_name, sizeof c->device_name, "%s", p->deviceName);
    c->vendor_id = p->vendorID;
    c->device_id = p->deviceID;
    c->driver_version = p->driverVersion;
    c->api_version = p->apiVersion;
    c->type = p->deviceType;
    c->subgroup_size = sg.subgroupSize;
    c->subgroup_min = has_sgc ? sgc.minSubgroupSize : sg.subgroupSize;
    c->subgroup_max = has_sgc ? sgc.maxSubgroupSize : sg.subgroupSize;
    c->subgroup_arith = (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                        (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
    c->subgroup_shuffle = (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
    c->subgroup_ballot = (sg.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT) != 0;
    c->max_shared_bytes = p->limits.maxComputeSharedMemorySize;
    c->max_wg_invocations = p->limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) c->max_wg_count[i] = p->limits.maxComputeWorkGroupCount[i];
    c->max_storage_range = p->limits.maxStorageBufferRange;
    c->storage_align = (uint32_t)p->limits.minStorageBufferOffsetAlignment;
    c->max_push_constants = p->limits.maxPushConstantsSize;
    c->timestamp_period_ns = p->limits.timestampComputeAndGraphics ? p->limits.timestampPeriod : 0.0f;

    VkPhysicalDeviceMaintenance3Properties m3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
    VkPhysicalDeviceProperties2 p3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3 };
    vki->vkGetPhysicalDeviceProperties2(pd, &p3);
    c->max_alloc = m3.maxMemoryAllocationSize;

    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &f11 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
    vki->vkGetPhysicalDeviceFeatures2(pd, &f2);
    c->fp16_arith = f12.shaderFloat16;
    c->int8_arith = f12.shaderInt8;
    c->storage16 = f11.storageBuffer16BitAccess;
    c->storage8 = f12.storageBuffer8BitAccess;
    c->int64 = f2.features.shaderInt64;
    c->buffer_device_address = f12.bufferDeviceAddress;
    if (has_sgc) {
        VkPhysicalDeviceSubgroupSizeControlFeatures sf = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &sf };
        vki->vkGetPhysicalDeviceFeatures2(pd, &f);
        c->subgroup_size_control = sf.subgroupSizeControl && sf.computeFullSubgroups;
    }
    /* integer dot products (core in 1.3): the feature, not only the extension */
    if (vkm_has_device_ext(vki, pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) || p->apiVersion >= VK_API_VERSION_1_3) {
        VkPhysicalDeviceShaderIntegerDotProductFeatures df = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &df };
        vki->vkGetPhysicalDeviceFeatures2(pd, &f);
        c->int_dot = df.shaderIntegerDotProduct;
        VkPhysicalDeviceShaderIntegerDotProductProperties dp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES };
        VkPhysicalDeviceProperties2 pp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &dp };
        vki->vkGetPhysicalDeviceProperties2(pd, &pp);
        c->int_dot_accel = dp.integerDotProduct4x8BitPackedMixedSignednessAccelerated &&
                           dp.integerDotProduct4x8BitPackedSignedAccelerated &&
                           dp.integerDotProduct4x8BitPackedUnsignedAccelerated;
    }
    c->coopmat_khr = vkm_has_device_ext(vki, pd, "VK_KHR_cooperative_matrix");
    c->coopmat_nv = vkm_has_device_ext(vki, pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    if (c->coopmat_nv && vki->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) {
        VkPhysicalDeviceCooperativeMatrixFeaturesNV cf = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &cf };
        vki->vkGetPhysicalDeviceFeatures2(pd, &f);
        VkPhysicalDeviceCooperativeMatrixPropertiesNV cp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV };
        VkPhysicalDeviceProperties2 pp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &cp };
        vki->vkGetPhysicalDeviceProperties2(pd, &pp);
        c->coopmat_nv_feature = cf.cooperativeMatrix && f12.vulkanMemoryModel &&
                                (cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
        VkCooperativeMatrixPropertiesNV props[64];
        uint32_t n = 64;
        for (uint32_t i = 0; i < n; i++)
            props[i] = (VkCooperativeMatrixPropertiesNV){ .sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV };
        VkResult r = vki->vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, props);
        for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < n && c->n_coopmat < 16; i++) {
            const VkCooperativeMatrixPropertiesNV *q = &props[i];
            if (q->scope != VK_SCOPE_SUBGROUP_NV || q->AType != q->BType || q->CType != q->DType) continue;
            c->coopmat[c->n_coopmat++] = (struct vkm_coopmat_shape){ q->MSize, q->NSize, q->KSize, q->AType, q->CType };
        }
    }
    c->pipeline_exec_props = vkm_has_device_ext(vki, pd, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    c->memory_budget_ext = vkm_has_device_ext(vki, pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);

    VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT };
    VkPhysicalDeviceMemoryProperties2 mp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                             .pNext = c->memory_budget_ext ? &bud : NULL };
    vki->vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
    for (uint32_t i = 0; i < mp.memoryProperties.memoryHeapCount; i++) {
        const VkMemoryHeap *h = &mp.memoryProperties.memoryHeaps[i];
        if ((h->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && h->size > c->device_local_bytes) {
            c->device_local_bytes = h->size;
            c->device_local_budget = c->memory_budget_ext && bud.heapBudget[i] ? bud.heapBudget[i] : h->size;
        }
    }
    if (!c->device_local_bytes && mp.memoryProperties.memoryHeapCount) {
        c->device_local_bytes = mp.memoryProperties.memoryHeaps[0].size;
        c->device_local_budget = c->device_local_bytes;
    }
    c->unified_memory = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU || p->deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    /* lavapipe/llvmpipe (Mesa, vendor 0x10005): a CPU device with a 128 MiB storage range */
    c->quirk_cpu_device = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    /* NVIDIA proprietary driver (vendor 0x10de) */
    c->quirk_nvidia = p->vendorID == 0x10de;
}

void vkm_caps_describe(const vkm_caps *c, char *buf, size_t n)
{
    snprintf(buf, n,
             "device: %s (vendor 0x%04x, device 0x%04x, Vulkan %u.%u.%u)\n"
             "fp16 arithmetic %d, int8 arithmetic %d, 16-bit storage %d, 8-bit storage %d, int64 %d, integer dot %d (accelerated %d)\n"
             "subgroup size %u (range %u..%u, size control %d), arithmetic %d, shuffle %d, ballot %d\n"
             "shared memory %u B, workgroup invocations %u\n"
             "maxStorageBufferRange %llu MiB, maxMemoryAllocationSize %llu MiB\n"
             "device-local heap %llu MiB, budget %llu MiB (memory_budget %d)\n"
             "cooperative matrix: KHR %d, NV %d (usable %d); buffer device address %d; timestamps %s\n"
             "quirks: cpu_device %d, nvidia %d\n",
             c->device_name, c->vendor_id, c->device_id, VK_API_VERSION_MAJOR(c->api_version),
             VK_API_VERSION_MINOR(c->api_version), VK_API_VERSION_PATCH(c->api_version), c->fp16_arith,
             c->int8_arith, c->storage16, c->storage8, c->int64, c->int_dot, c->int_dot_accel, c->subgroup_size, c->subgroup_min,
             c->subgroup_max, c->subgroup_size_control, c->subgroup_arith, c->subgroup_shuffle, c->subgroup_ballot,
             c->max_shared_bytes, c->max_wg_invocations, (unsigned long long)(c->max_storage_range >> 20),
             (unsigned long long)(c->max_alloc >> 20), (unsigned long long)(c->device_local_bytes >> 20),
             (unsigned long long)(c->device_local_budget >> 20), c->memory_budget_ext, c->coopmat_khr,
             c->coopmat_nv, c->coopmat_nv_feature, c->buffer_device_address, c->timestamp_period_ns > 0 ? "yes" : "no",
             c->quirk_cpu_device, c->quirk_nvidia);
    /* the NV cooperative matrix shapes (C[MxN] += A[MxK] B[KxN], subgroup scope) */
    static const char *tn[] = { "f16", "f32", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64" };
    for (uint32_t i = 0; i < c->n_coopmat; i++) {
        size_t l = strlen(buf);
        if (l + 1 >= n) break;
        const struct vkm_coopmat_shape *m = &c->coopmat[i];
        snprintf(buf + l, n - l, "%s%ux%ux%u %s*%s+%s%s", i ? ", " : "coopmat NV shapes (MxNxK A*B+C): ", m->m, m->n, m->k,
                 m->a_type < 11 ? tn[m->a_type] : "?", m->a_type < 11 ? tn[m->a_type] : "?",
                 m->c_type < 11 ? tn[m->c_type] : "?", i + 1 == c->n_coopmat ? "\n" : "");
    }
}

/* Why a device cannot be used; NULL when it can. */
const char *vkm_caps_unusable(const vkm_vki *vki, VkPhysicalDevice pd, const vkm_caps *c)
{
    if (c->api_version < VK_API_VERSION_1_2) return "Vulkan 1.2 is required";
    if (!c->storage16) return "storageBuffer16BitAccess is required";
    if (!c->fp16_arith) return "shaderFloat16 is required";
    if (!c->storage8 || !c->int8_arith) return "8-bit storage and shaderInt8 are required";
    if (!vkm_has_device_ext(vki, pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME)) return "VK_KHR_push_descriptor is required";
    if (c->max_push_constants < 128) return "128 bytes of push constants are required";
    if (c->max_wg_invocations < 256) return "256 invocations per workgroup are required";
    return NULL;
}

