/* Vulkan instance and device owned by vkmix: loading, choice, creation,
 * validation messages, and the objects every device gets. Borrowed devices
 * are in vk_external.c, capabilities in vk_caps.c. */
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
    (void)dev;
    char msg[VKM_ERR_SIZE]; /* the arguments may point into the buffer itself */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(vkm_err_buf(), msg, sizeof msg);
    return e;
}

vkmix_error vkm_map_vk(VkResult r)
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
    vkmix_error e = vkm_map_vk(r);
    return vkm_fail(dev, e, "%s failed: VkResult %d (%s)", what, (int)r, vkmix_strerror(e));
}

void vkm_log(const vkm_device *dev, vkmix_log_level level, const char *fmt, ...)
{
    if (!dev || !dev->log || level > dev->log_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dev->log(level, msg, dev->log_user);
}

/* ------------------------------------------------------------------ validation messages */
static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                               VkDebugUtilsMessageTypeFlagsEXT type,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
    (void)type;
    vkm_device *dev = user;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        __atomic_fetch_add(&dev->validation_messages, 1, __ATOMIC_RELAXED); /* any thread may call in */
        /* to the application's log callback: the library never prints */
        vkm_log(dev, sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? VKMIX_LOG_ERROR : VKMIX_LOG_WARN,
                "validation: %s", data && data->pMessage ? data->pMessage : "(no message)");
    }
    return VK_FALSE;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static bool has_layer(const vkm_vki *vki, const char *name)
{
    uint32_t n = 0;
    if (vki->vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || !n) return false;
    VkLayerProperties *l = calloc(n, sizeof *l);
    if (!l) return false;
    bool found = false;
    if (vki->vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(l[i].layerName, name)) found = true;
    free(l);
    return found;
}

static bool has_instance_ext(const vkm_vki *vki, const char *name)
{
    uint32_t n = 0;
    if (vki->vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || !n) return false;
    VkExtensionProperties *e = calloc(n, sizeof *e);
    if (!e) return false;
    bool found = false;
    if (vki->vkEnumerateInstanceExtensionProperties(NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(e[i].extensionName, name)) found = true;
    free(e);
    return found;
}

static vkmix_error create_instance(vkm_device *dev, bool validation, char *err, size_t errlen)
{
    const vkm_vki *vki = &dev->vki;
    uint32_t ver = VK_API_VERSION_1_0;
    if (vki->vkEnumerateInstanceVersion && vki->vkEnumerateInstanceVersion(&ver) != VK_SUCCESS) ver = VK_API_VERSION_1_0;
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
        if (!has_layer(vki, "VK_LAYER_KHRONOS_validation")) {
            put_err(err, errlen, "validation was requested but VK_LAYER_KHRONOS_validation is not installed (Debian: vulkan-validationlayers)");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
        if (has_instance_ext(vki, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
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
    VkResult r = vki->vkCreateInstance(&ci, NULL, &dev->instance);
    if (r != VK_SUCCESS) {
        put_err(err, errlen, "vkCreateInstance failed: VkResult %d", (int)r);
        return r == VK_ERROR_INCOMPATIBLE_DRIVER ? VKMIX_ERROR_NO_DEVICE : vkm_map_vk(r);
    }
    dev->owns_instance = true;
    char missing[512];
    if (vkm_load_instance(&dev->vki, dev->instance, missing, sizeof missing)) {
        put_err(err, errlen, "the Vulkan instance lacks %s", missing);
        return VKMIX_ERROR_NO_VULKAN;
    }
    if (debug_utils && dev->vki.vkCreateDebugUtilsMessengerEXT) {
        r = dev->vki.vkCreateDebugUtilsMessengerEXT(dev->instance, &dbg, NULL, &dev->messenger);
        if (r != VK_SUCCESS) {
            put_err(err, errlen, "vkCreateDebugUtilsMessengerEXT failed: %d", (int)r);
            return vkm_map_vk(r);
        }
    }
    return VKMIX_OK;
}

/* --------------------------------------------------------------------------- choice of device */
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

static uint32_t find_compute_queue(const vkm_vki *vki, VkPhysicalDevice pd, uint32_t *ts_bits)
{
    uint32_t n = 0;
    vki->vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32) n = 32;
    vki->vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || !q[i].queueCount) continue;
        /* prefer a family with timestamps; among those, the first (usually the universal queue) */
        if (best == UINT32_MAX || (q[best].timestampValidBits == 0 && q[i].timestampValidBits)) best = i;
    }
    if (best != UINT32_MAX && ts_bits) *ts_bits = q[best].timestampValidBits;
    return best;
}

static vkmix_error enumerate(const vkm_vki *vki, VkInstance inst, VkPhysicalDevice **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (vki->vkEnumeratePhysicalDevices(inst, n, NULL) != VK_SUCCESS) return VKMIX_ERROR_VULKAN;
    if (!*n) return VKMIX_ERROR_NO_DEVICE;
    *out = calloc(*n, sizeof **out);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    VkResult r = vki->vkEnumeratePhysicalDevices(inst, n, *out);
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
    vkmix_error e = enumerate(&dev->vki, dev->instance, &pds, &n);
    if (e != VKMIX_OK) {
        put_err(err, errlen, "no Vulkan device found (is a driver installed? Debian: mesa-vulkan-drivers)");
        return e;
    }
    int best = -1, best_rank = -1;
    const char *why = NULL;
    for (uint32_t i = 0; i < n; i++) {
        vkm_caps c;
        vkm_caps_fill(&dev->vki, pds[i], &c);
        const char *r = vkm_caps_unusable(&dev->vki, pds[i], &c);
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
    /* compiler statistics of every pipeline, logged at INFO (a debugging aid, read once) */
    const char *ps = getenv("VKMIX_PIPELINE_STATS");
    bool stats = c->pipeline_exec_props && ps && *ps && strcmp(ps, "0") != 0;
    if (stats) exts[n_exts++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pef = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
        .pipelineExecutableInfo = VK_TRUE,
    };
    if (c->memory_budget_ext) exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    bool sgc_ext = c->subgroup_size_control && c->api_version < VK_API_VERSION_1_3;
    if (sgc_ext) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    /* integer dot products (the weight products) and cooperative matrices (prefill) when present */
    if (c->int_dot && vkm_has_device_ext(&dev->vki, dev->phys, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME))
        exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    if (c->coopmat_nv_feature) exts[n_exts++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;

    /* optional features, each prepended to the chain under Vulkan 1.1 / 1.2 */
    void *chain = NULL;
    if (stats) pef.pNext = chain, chain = &pef;
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
        .bufferDeviceAddress = c->buffer_device_address && c->int64,
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
    VkResult r = dev->vki.vkCreateDevice(dev->phys, &ci, NULL, &dev->device);
    if (r != VK_SUCCESS) {
        put_err(err, errlen, "vkCreateDevice failed on %s: VkResult %d", c->device_name, (int)r);
        return vkm_map_vk(r);
    }
    dev->owns_device = true;
    dev->int_dot_on = c->int_dot;
    dev->coopmat_on = c->coopmat_nv_feature;
    dev->bda = c->buffer_device_address && c->int64;
    dev->pipeline_stats = stats;
    char missing[512];
    if (vkm_load_device(&dev->vk, &dev->vki, dev->device, missing, sizeof missing)) {
        put_err(err, errlen, "%s lacks the entry points %s", c->device_name, missing);
        return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    }
    return VKMIX_OK;
}

/* --------------------------------------------------------------------------- objects of any device */
static uint32_t find_mem_type(const VkPhysicalDeviceMemoryProperties *mp, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if ((f & want) == want && !(f & avoid)) return i;
    }
    return UINT32_MAX;
}

vkmix_error vkm_device_objects(vkm_device *dev, uint32_t queue_index)
{
    const vkm_vkd *vk = &dev->vk;
    vk->vkGetDeviceQueue(dev->device, dev->queue_family, queue_index, &dev->queue);
    VkPhysicalDeviceMemoryProperties mp;
    dev->vki.vkGetPhysicalDeviceMemoryProperties(dev->phys, &mp);
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

    if (pthread_mutex_init(&dev->queue_lock, NULL) != 0)
        return vkm_fail(dev, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "pthread_mutex_init failed");
    dev->queue_lock_ok = true;
    VkPipelineCacheCreateInfo cci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    VkResult r = vk->vkCreatePipelineCache(dev->device, &cci, NULL, &dev->pipeline_cache);
    if (r != VK_SUCCESS) return vkm_vk_error(dev, r, "vkCreatePipelineCache");
    vkm_log(dev, VKMIX_LOG_INFO, "device: %s (%s), queue family %u index %u", dev->caps.device_name,
            dev->owns_device ? "owned" : "borrowed from the application", dev->queue_family, queue_index);
    return VKMIX_OK;
}

vkmix_error vkm_device_create(vkm_device *dev, const vkmix_context_params *p, char *err, size_t errlen)
{
    memset(dev, 0, sizeof *dev);
    if (p) {
        dev->log = p->log;
        dev->log_user = p->log_user;
        dev->log_level = p->log_level;
    }
    const vkmix_external_vulkan *ext = p ? p->external : NULL;
    vkmix_error e = vkm_load_global(&dev->vki, ext ? (PFN_vkGetInstanceProcAddr)ext->get_instance_proc_addr : NULL,
                                    err, errlen);
    if (e != VKMIX_OK) return e;
    if (ext) return vkm_device_adopt(dev, ext, err, errlen);

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
    vkm_caps_fill(&dev->vki, dev->phys, &dev->caps);
    dev->queue_family = find_compute_queue(&dev->vki, dev->phys, &dev->caps.timestamp_valid_bits);
    if (dev->queue_family == UINT32_MAX) {
        put_err(err, errlen, "%s has no compute queue", dev->caps.device_name);
        return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    }
    e = create_logical(dev, err, errlen);
    if (e != VKMIX_OK) return e;
    return vkm_device_objects(dev, 0);
}

void vkm_device_destroy(vkm_device *dev)
{
    if (!dev) return;
    if (dev->device && dev->vk.vkDestroyDevice) {
        const vkm_vkd *vk = &dev->vk;
        if (dev->owns_device) {
            vk->vkDeviceWaitIdle(dev->device);
        } else if (dev->queue) {
            if (dev->queue_lock_ok) pthread_mutex_lock(&dev->queue_lock);
            vk->vkQueueWaitIdle(dev->queue);
            if (dev->queue_lock_ok) pthread_mutex_unlock(&dev->queue_lock);
        }
        if (dev->pipeline_cache) vk->vkDestroyPipelineCache(dev->device, dev->pipeline_cache, NULL);
        if (dev->owns_device) vk->vkDestroyDevice(dev->device, NULL);
    }
    if (dev->messenger && dev->vki.vkDestroyDebugUtilsMessengerEXT)
        dev->vki.vkDestroyDebugUtilsMessengerEXT(dev->instance, dev->messenger, NULL);
    if (dev->owns_instance && dev->instance && dev->vki.vkDestroyInstance) dev->vki.vkDestroyInstance(dev->instance, NULL);
    if (dev->queue_lock_ok) pthread_mutex_destroy(&dev->queue_lock);
    memset(dev, 0, sizeof *dev);
}

vkmix_error vkm_list_devices(vkmix_device_info *out, uint32_t cap, uint32_t *count, char *err, size_t errlen)
{
    if (!count) return VKMIX_ERROR_INVALID_ARGUMENT;
    *count = 0;
    vkm_device dev;
    memset(&dev, 0, sizeof dev);
    vkmix_error e = vkm_load_global(&dev.vki, NULL, err, errlen);
    if (e != VKMIX_OK) return e;
    e = create_instance(&dev, false, err, errlen);
    if (e != VKMIX_OK) {
        vkm_device_destroy(&dev);
        return e;
    }
    VkPhysicalDevice *pds;
    uint32_t n;
    e = enumerate(&dev.vki, dev.instance, &pds, &n);
    if (e == VKMIX_OK) {
        for (uint32_t i = 0; i < n && i < cap && out; i++) {
            vkm_caps c;
            vkm_caps_fill(&dev.vki, pds[i], &c);
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
            d->usable = vkm_caps_unusable(&dev.vki, pds[i], &c) == NULL;
        }
        *count = n;
        free(pds);
    } else if (e == VKMIX_ERROR_NO_DEVICE) {
        e = VKMIX_OK; /* zero devices is a valid answer */
    }
    vkm_device_destroy(&dev);
    return e;
}
