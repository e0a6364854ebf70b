/* Vulkan instance and device: loading, choice, capabilities, creation. */
#include "gpu/vk_device.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

vkmix_error vkm_fail(vkm_device *dev, vkmix_error e, const char *fmt, ...)
{
    if (dev && dev->err && dev->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dev->err, dev->errlen, fmt, ap);
        va_end(ap);
    }
    return e;
}

static vkmix_error map_vk(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return VKMIX_OK;
    case VK_ERROR_OUT_OF_HOST_MEMORY: return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return VKMIX_ERROR_OUT_OF_DEVICE_MEMORY;
    case VK_ERROR_DEVICE_LOST: return VKMIX_ERROR_DEVICE_LOST;
    case VK_ERROR_INCOMPATIBLE_DRIVER: return VKMIX_ERROR_NO_DEVICE;
    case VK_ERROR_FEATURE_NOT_PRESENT:
    case VK_ERROR_EXTENSION_NOT_PRESENT: return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    default: return VKMIX_ERROR_VULKAN;
    }
}

vkmix_error vkm_vk_error(vkm_device *dev, VkResult r, const char *what)
{
    vkmix_error e = map_vk(r);
    return vkm_fail(dev, e, "%s failed: VkResult %d (%s)", what, (int)r, vkmix_strerror(e));
}

/* ------------------------------------------------------------------ validation messages */
static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                               VkDebugUtilsMessageTypeFlagsEXT type,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)type;
    vkm_device *dev = user;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        dev->validation_messages++;
        /* Validation is a debugging aid the user asked for: its messages go to stderr. */
        fprintf(stderr, "vkmix: validation: %s\n", data && data->pMessage ? data->pMessage : "(no message)");
    }
    return VK_FALSE;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static bool has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return false;
    VkLayerProperties *l = calloc(n, sizeof *l);
    if (!l) return false;
    bool found = false;
    if (vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(l[i].layerName, name)) found = true;
    free(l);
    return found;
}

static bool has_instance_ext(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return false;
    bool found = false;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(e[i].extensionName, name)) found = true;
    free(e);
    return found;
}

static bool has_device_ext(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return false;
    bool found = false;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(e[i].extensionName, name)) found = true;
    free(e);
    return found;
}

/* The loader is process-wide: volk keeps one pointer to vkGetInstanceProcAddr. */
static vkmix_error load_vulkan(void *gipa, char *err, size_t errlen)
{
    if (gipa) {
        volkInitializeCustom((PFN_vkGetInstanceProcAddr)gipa);
        return VKMIX_OK;
    }
    if (volkInitialize() != VK_SUCCESS) {
        put_err(err, errlen, "could not load the Vulkan loader (libvulkan.so.1); install libvulkan1 and a driver (e.g. mesa-vulkan-drivers)");
        return VKMIX_ERROR_NO_VULKAN;
    }
    return VKMIX_OK;
}

static vkmix_error create_instance(vkm_device *dev, bool validation, char *err, size_t errlen)
{
    uint32_t ver = volkGetInstanceVersion();
    if (ver < VK_API_VERSION_1_2) {
        put_err(err, errlen, "the Vulkan loader is %u.%u; vkmix needs Vulkan 1.2",
                VK_API_VERSION_MAJOR(ver), VK_API_VERSION_MINOR(ver));
        return VKMIX_ERROR_NO_VULKAN;
    }
    const char *layers[1];
    uint32_t n_layers = 0;
    const char *exts[2];
    uint32_t n_exts = 0;
    bool debug_utils = false;
    if (validation) {
        if (!has_layer("VK_LAYER_KHRONOS_validation")) {
            put_err(err, errlen, "validation was requested but VK_LAYER_KHRONOS_validation is not installed (Debian: vulkan-validationlayers)");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
        if (has_instance_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            debug_utils = true;
        }
    }
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "vkmix",
        .pEngineName = "vkmix",
        .engineVersion = VKMIX_VERSION_NUMBER,
        .apiVersion = ver >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2,
    };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = dev,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pNext = debug_utils ? &dbg : NULL,
        .pApplicationInfo = &app,
        .enabledLayerCount = n_layers,
        .ppEnabledLayerNames = layers,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateInstance(&ci, NULL, &dev->instance);
    if (r != VK_SUCCESS) {
        put_err(err, errlen, "vkCreateInstance failed: VkResult %d", (int)r);
        return r == VK_ERROR_INCOMPATIBLE_DRIVER ? VKMIX_ERROR_NO_DEVICE : map_vk(r);
    }
    dev->owns_instance = true;
    volkLoadInstanceOnly(dev->instance);
    if (debug_utils) {
        r = vkCreateDebugUtilsMessengerEXT(dev->instance, &dbg, NULL, &dev->messenger);
        if (r != VK_SUCCESS) {
            put_err(err, errlen, "vkCreateDebugUtilsMessengerEXT failed: %d", (int)r);
            return map_vk(r);
        }
    }
    return VKMIX_OK;
}

/* --------------------------------------------------------------------------- capabilities */
static void fill_caps(VkPhysicalDevice pd, vkm_caps *c)
{
    memset(c, 0, sizeof *c);
    VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
    VkPhysicalDeviceSubgroupSizeControlProperties sgc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, .pNext = &sg };
    VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 };
    bool has_sgc = has_device_ext(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    p2.pNext = has_sgc ? (void *)&sgc : (void *)&sg;
    vkGetPhysicalDeviceProperties2(pd, &p2);
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
    vkGetPhysicalDeviceProperties2(pd, &p3);
    c->max_alloc = m3.maxMemoryAllocationSize;

    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &f11 };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
    vkGetPhysicalDeviceFeatures2(pd, &f2);
    c->fp16_arith = f12.shaderFloat16;
    c->int8_arith = f12.shaderInt8;
    c->storage16 = f11.storageBuffer16BitAccess;
    c->storage8 = f12.storageBuffer8BitAccess;
    c->int64 = f2.features.shaderInt64;
    c->buffer_device_address = f12.bufferDeviceAddress;
    if (has_sgc) {
        VkPhysicalDeviceSubgroupSizeControlFeatures sf = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &sf };
        vkGetPhysicalDeviceFeatures2(pd, &f);
        c->subgroup_size_control = sf.subgroupSizeControl && sf.computeFullSubgroups;
    }
    /* integer dot products (core in 1.3): the feature, not only the extension */
    if (has_device_ext(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME) || p->apiVersion >= VK_API_VERSION_1_3) {
        VkPhysicalDeviceShaderIntegerDotProductFeatures df = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &df };
        vkGetPhysicalDeviceFeatures2(pd, &f);
        c->int_dot = df.shaderIntegerDotProduct;
        VkPhysicalDeviceShaderIntegerDotProductProperties dp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES };
        VkPhysicalDeviceProperties2 pp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &dp };
        vkGetPhysicalDeviceProperties2(pd, &pp);
        c->int_dot_accel = dp.integerDotProduct4x8BitPackedMixedSignednessAccelerated &&
                           dp.integerDotProduct4x8BitPackedSignedAccelerated &&
                           dp.integerDotProduct4x8BitPackedUnsignedAccelerated;
    }
    c->coopmat_khr = has_device_ext(pd, "VK_KHR_cooperative_matrix");
    c->coopmat_nv = has_device_ext(pd, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    if (c->coopmat_nv && vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) {
        VkPhysicalDeviceCooperativeMatrixFeaturesNV cf = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV };
        VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &cf };
        vkGetPhysicalDeviceFeatures2(pd, &f);
        VkPhysicalDeviceCooperativeMatrixPropertiesNV cp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV };
        VkPhysicalDeviceProperties2 pp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &cp };
        vkGetPhysicalDeviceProperties2(pd, &pp);
        c->coopmat_nv_feature = cf.cooperativeMatrix && f12.vulkanMemoryModel &&
                                (cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT);
        VkCooperativeMatrixPropertiesNV props[64];
        uint32_t n = 64;
        for (uint32_t i = 0; i < n; i++)
            props[i] = (VkCooperativeMatrixPropertiesNV){ .sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV };
        VkResult r = vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(pd, &n, props);
        for (uint32_t i = 0; (r == VK_SUCCESS || r == VK_INCOMPLETE) && i < n && c->n_coopmat < 16; i++) {
            const VkCooperativeMatrixPropertiesNV *q = &props[i];
            if (q->scope != VK_SCOPE_SUBGROUP_NV || q->AType != q->BType || q->CType != q->DType) continue;
            c->coopmat[c->n_coopmat++] = (struct vkm_coopmat_shape){ q->MSize, q->NSize, q->KSize, q->AType, q->CType };
        }
    }
    c->memory_budget_ext = has_device_ext(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);

    VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT };
    VkPhysicalDeviceMemoryProperties2 mp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                             .pNext = c->memory_budget_ext ? &bud : NULL };
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp);
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
static const char *unusable_reason(VkPhysicalDevice pd, const vkm_caps *c)
{
    if (c->api_version < VK_API_VERSION_1_2) return "Vulkan 1.2 is required";
    if (!c->storage16) return "storageBuffer16BitAccess is required";
    if (!c->fp16_arith) return "shaderFloat16 is required";
    if (!c->storage8 || !c->int8_arith) return "8-bit storage and shaderInt8 are required";
    if (!has_device_ext(pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME)) return "VK_KHR_push_descriptor is required";
    if (c->max_push_constants < 128) return "128 bytes of push constants are required";
    if (c->max_wg_invocations < 256) return "256 invocations per workgroup are required";
    return NULL;
}

static int device_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static uint32_t find_compute_queue(VkPhysicalDevice pd, uint32_t *ts_bits)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || !q[i].queueCount) continue;
        /* prefer a family with timestamps; among those, the first (usually the universal queue) */
        if (best == UINT32_MAX || (q[best].timestampValidBits == 0 && q[i].timestampValidBits)) best = i;
    }
    if (best != UINT32_MAX && ts_bits) *ts_bits = q[best].timestampValidBits;
    return best;
}

static vkmix_error enumerate(VkInstance inst, VkPhysicalDevice **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (vkEnumeratePhysicalDevices(inst, n, NULL) != VK_SUCCESS) return VKMIX_ERROR_VULKAN;
    if (!*n) return VKMIX_ERROR_NO_DEVICE;
    *out = calloc(*n, sizeof **out);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    VkResult r = vkEnumeratePhysicalDevices(inst, n, *out);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(*out);
        *out = NULL;
        return VKMIX_ERROR_VULKAN;
    }
    return VKMIX_OK;
}

static vkmix_error pick_device(vkm_device *dev, int index, char *err, size_t errlen)
{
    VkPhysicalDevice *pds;
    uint32_t n;
    vkmix_error e = enumerate(dev->instance, &pds, &n);
    if (e != VKMIX_OK) {
        put_err(err, errlen, "no Vulkan device found (is a driver installed? Debian: mesa-vulkan-drivers)");
        return e == VKMIX_ERROR_NO_DEVICE ? e : e;
    }
    int best = -1, best_rank = -1;
    const char *why = NULL;
    for (uint32_t i = 0; i < n; i++) {
        vkm_caps c;
        fill_caps(pds[i], &c);
        const char *r = unusable_reason(pds[i], &c);
        if (index >= 0) {
            if ((uint32_t)index != i) continue;
            if (r) {
                put_err(err, errlen, "device %d (%s) cannot run vkmix: %s", index, c.device_name, r);
                free(pds);
                return VKMIX_ERROR_UNSUPPORTED_DEVICE;
            }
            best = (int)i;
            break;
        }
        if (r) { why = r; continue; }
        if (device_rank(c.type) > best_rank) { best_rank = device_rank(c.type); best = (int)i; }
    }
    if (best < 0) {
        if (index >= 0)
            put_err(err, errlen, "device index %d out of range (%u device(s))", index, n);
        else
            put_err(err, errlen, "no Vulkan device can run vkmix (%s)", why ? why : "none found");
        free(pds);
        return index >= 0 ? VKMIX_ERROR_NO_DEVICE : VKMIX_ERROR_UNSUPPORTED_DEVICE;
    }
    dev->phys = pds[best];
    free(pds);
    return VKMIX_OK;
}

static uint32_t find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if ((f & want) == want && !(f & avoid)) return i;
    }
    return UINT32_MAX;
}

static vkmix_error create_logical(vkm_device *dev, char *err, size_t errlen)
{
    const vkm_caps *c = &dev->caps;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = dev->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    const char *exts[8];
    uint32_t n_exts = 0;
    exts[n_exts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (c->memory_budget_ext) exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    bool sgc_ext = c->subgroup_size_control && c->api_version < VK_API_VERSION_1_3;
    if (sgc_ext) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (c->int_dot && has_device_ext(dev->phys, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME))
        exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    if (c->coopmat_nv_feature) exts[n_exts++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;

    /* optional features, each prepended to the chain under Vulkan 1.1 / 1.2 */
    void *chain = NULL;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE,
    };
    if (c->coopmat_nv_feature) cmf.pNext = chain, chain = &cmf;
    VkPhysicalDeviceShaderIntegerDotProductFeatures dpf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = VK_TRUE,
    };
    if (c->int_dot) dpf.pNext = chain, chain = &dpf;
    VkPhysicalDeviceSubgroupSizeControlFeatures sgf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES,
        .subgroupSizeControl = c->subgroup_size_control,
        .computeFullSubgroups = c->subgroup_size_control,
    };
    if (c->subgroup_size_control) sgf.pNext = chain, chain = &sgf;
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .pNext = chain,
        .storageBuffer16BitAccess = VK_TRUE,
    };
    VkPhysicalDeviceVulkan12Features f12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .pNext = &f11,
        .shaderFloat16 = VK_TRUE,
        .shaderInt8 = VK_TRUE,
        .storageBuffer8BitAccess = VK_TRUE,
        .vulkanMemoryModel = c->coopmat_nv_feature,   /* the cooperative matrix shaders use it */
    };
    VkPhysicalDeviceFeatures2 f2 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
        .pNext = &f12,
        .features = { .shaderInt64 = c->int64 },
    };
    VkDeviceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &f2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = vkCreateDevice(dev->phys, &ci, NULL, &dev->device);
    if (r != VK_SUCCESS) {
        put_err(err, errlen, "vkCreateDevice failed on %s: VkResult %d", c->device_name, (int)r);
        return map_vk(r);
    }
    dev->owns_device = true;
    dev->int_dot_on = c->int_dot;
    dev->coopmat_on = c->coopmat_nv_feature;
    return VKMIX_OK;
}

/* Objects vkmix creates on any device, owned or borrowed. */
static vkmix_error create_objects(vkm_device *dev)
{
    struct VolkDeviceTable *vk = &dev->vk;
    vk->vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(dev->phys, &mp);
    dev->mem_type_device = find_mem_type(&mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    dev->mem_type_host = find_mem_type(&mp, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                       VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (dev->mem_type_host == UINT32_MAX)
        dev->mem_type_host = find_mem_type(&mp, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
    dev->mem_type_host_cached = find_mem_type(&mp, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                   VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (dev->mem_type_host_cached == UINT32_MAX) dev->mem_type_host_cached = dev->mem_type_host;
    if (dev->mem_type_device == UINT32_MAX) dev->mem_type_device = dev->mem_type_host;
    if (dev->mem_type_host == UINT32_MAX)
        return vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "no host-visible coherent memory type");

    VkCommandPoolCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = dev->queue_family,
    };
    VkResult r = vk->vkCreateCommandPool(dev->device, &pci, NULL, &dev->pool);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo ai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = dev->pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    r = vk->vkAllocateCommandBuffers(dev->device, &ai, &dev->cmd);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    r = vk->vkCreateFence(dev->device, &fci, NULL, &dev->fence);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreateFence");
    if (dev->caps.timestamp_period_ns > 0 && dev->caps.timestamp_valid_bits) {
        VkQueryPoolCreateInfo qi = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = VKM_MAX_TIMESTAMPS,
        };
        r = vk->vkCreateQueryPool(dev->device, &qi, NULL, &dev->timestamps);
        if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreateQueryPool");
    }
    VkPipelineCacheCreateInfo cci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    r = vk->vkCreatePipelineCache(dev->device, &cci, NULL, &dev->pipeline_cache);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreatePipelineCache");
    return VKMIX_OK;
}

vkmix_error vkm_device_create(vkm_device *dev, const vkmix_context_params *p, char *err, size_t errlen)
{
    memset(dev, 0, sizeof *dev);
    dev->err = err;
    dev->errlen = errlen;
    const vkmix_external_vulkan *ext = p ? p->external : NULL;
    vkmix_error e = load_vulkan(ext ? ext->get_instance_proc_addr : NULL, err, errlen);
    if (e != VKMIX_OK) return e;

    if (ext) {
        if (!ext->instance || !ext->physical_device || !ext->device) {
            put_err(err, errlen, "external Vulkan handles: instance, physical_device and device are all required");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        dev->instance = (VkInstance)ext->instance;
        dev->phys = (VkPhysicalDevice)ext->physical_device;
        dev->device = (VkDevice)ext->device;
        dev->queue_family = ext->queue_family;
        volkLoadInstanceOnly(dev->instance);
        fill_caps(dev->phys, &dev->caps);
        const char *why = unusable_reason(dev->phys, &dev->caps);
        if (why) {
            put_err(err, errlen, "the application's device (%s) cannot run vkmix: %s", dev->caps.device_name, why);
            return VKMIX_ERROR_UNSUPPORTED_DEVICE;
        }
        uint32_t nq = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, NULL);
        VkQueueFamilyProperties q[32];
        if (nq > 32) nq = 32;
        vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, q);
        if (ext->queue_family >= nq || !(q[ext->queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT) ||
            ext->queue_index >= q[ext->queue_family].queueCount) {
            put_err(err, errlen, "external queue family %u / index %u is not a compute queue of the device",
                    ext->queue_family, ext->queue_index);
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        dev->caps.timestamp_valid_bits = q[ext->queue_family].timestampValidBits;
        volkLoadDeviceTable(&dev->vk, dev->device);
        dev->vk.vkGetDeviceQueue(dev->device, dev->queue_family, ext->queue_index, &dev->queue);
        e = create_objects(dev);
        /* create_objects fetched queue index 0: use the application's index */
        dev->vk.vkGetDeviceQueue(dev->device, dev->queue_family, ext->queue_index, &dev->queue);
        return e;
    }

    bool validation = (p && p->enable_validation) || env_flag("VKMIX_VALIDATION");
    e = create_instance(dev, validation, err, errlen);
    if (e != VKMIX_OK) return e;
    int index = p ? p->device_index : -1;
    const char *env = getenv("VKMIX_DEVICE");
    if (index < 0 && env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 0 || v > 1000) {
            put_err(err, errlen, "VKMIX_DEVICE=%s is not a device index", env);
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        index = (int)v;
    }
    e = pick_device(dev, index, err, errlen);
    if (e != VKMIX_OK) return e;
    fill_caps(dev->phys, &dev->caps);
    dev->queue_family = find_compute_queue(dev->phys, &dev->caps.timestamp_valid_bits);
    if (dev->queue_family == UINT32_MAX) {
        put_err(err, errlen, "%s has no compute queue", dev->caps.device_name);
        return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    }
    e = create_logical(dev, err, errlen);
    if (e != VKMIX_OK) return e;
    volkLoadDeviceTable(&dev->vk, dev->device);
    return create_objects(dev);
}

void vkm_device_destroy(vkm_device *dev)
{
    if (!dev) return;
    if (dev->device) {
        struct VolkDeviceTable *vk = &dev->vk;
        if (vk->vkDeviceWaitIdle && dev->owns_device) vk->vkDeviceWaitIdle(dev->device);
        else if (vk->vkQueueWaitIdle && dev->queue) vk->vkQueueWaitIdle(dev->queue);
        if (dev->pipeline_cache) vk->vkDestroyPipelineCache(dev->device, dev->pipeline_cache, NULL);
        if (dev->timestamps) vk->vkDestroyQueryPool(dev->device, dev->timestamps, NULL);
        if (dev->fence) vk->vkDestroyFence(dev->device, dev->fence, NULL);
        if (dev->pool) vk->vkDestroyCommandPool(dev->device, dev->pool, NULL);
        if (dev->owns_device) vk->vkDestroyDevice(dev->device, NULL);
    }
    if (dev->messenger) vkDestroyDebugUtilsMessengerEXT(dev->instance, dev->messenger, NULL);
    if (dev->owns_instance && dev->instance) vkDestroyInstance(dev->instance, NULL);
    memset(dev, 0, sizeof *dev);
}

vkmix_error vkm_list_devices(vkmix_device_info *out, uint32_t cap, uint32_t *count, char *err, size_t errlen)
{
    if (!count) return VKMIX_ERROR_INVALID_ARGUMENT;
    *count = 0;
    vkm_device dev;
    memset(&dev, 0, sizeof dev);
    vkmix_error e = load_vulkan(NULL, err, errlen);
    if (e != VKMIX_OK) return e;
    e = create_instance(&dev, false, err, errlen);
    if (e != VKMIX_OK) return e;
    VkPhysicalDevice *pds;
    uint32_t n;
    e = enumerate(dev.instance, &pds, &n);
    if (e == VKMIX_OK) {
        for (uint32_t i = 0; i < n && i < cap && out; i++) {
            vkm_caps c;
            fill_caps(pds[i], &c);
            vkmix_device_info *d = &out[i];
            memset(d, 0, sizeof *d);
            snprintf(d->name, sizeof d->name, "%s", c.device_name);
            d->vendor_id = c.vendor_id;
            d->device_id = c.device_id;
            d->type = c.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ? VKMIX_DEVICE_DISCRETE
                      : c.type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ? VKMIX_DEVICE_INTEGRATED
                      : c.type == VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU   ? VKMIX_DEVICE_VIRTUAL
                      : c.type == VK_PHYSICAL_DEVICE_TYPE_CPU           ? VKMIX_DEVICE_CPU
                                                                        : VKMIX_DEVICE_OTHER;
            d->api_version = c.api_version;
            d->device_local_bytes = c.device_local_bytes;
            d->usable = unusable_reason(pds[i], &c) == NULL;
        }
        *count = n;
        free(pds);
    } else if (e == VKMIX_ERROR_NO_DEVICE) {
        e = VKMIX_OK; /* zero devices is a valid answer */
    }
    vkm_device_destroy(&dev);
    return e;
}
