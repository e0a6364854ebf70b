/* A device borrowed from the application (vkmix_external_vulkan). Vulkan
 * cannot report what a VkDevice was created with, so the application says it:
 * its enabled extensions and its chain of feature structures. Everything vkmix
 * needs is checked before anything is created, and every missing item is
 * named; then every device entry point is loaded and checked (a disabled
 * extension's commands come back NULL from vkGetDeviceProcAddr). */
#include "gpu/vk_device.h"

#include <stdio.h>
#include <string.h>

/* What the application's chain of feature structures enables. */
typedef struct enabled_features {
    bool storage16, fp16, int8, storage8, int64, sg_size_control, full_subgroups;
    bool int_dot, coopmat, memory_model, bda;
} enabled_features;

static void read_features(const void *chain, enabled_features *f)
{
    memset(f, 0, sizeof *f);
    int guard = 0;
    for (const VkBaseInStructure *p = chain; p && guard < 64; p = p->pNext, guard++) {
        switch (p->sType) {
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2:
            f->int64 |= ((const VkPhysicalDeviceFeatures2 *)p)->features.shaderInt64 != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES:
            f->storage16 |= ((const VkPhysicalDeviceVulkan11Features *)p)->storageBuffer16BitAccess != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES:
            f->storage16 |= ((const VkPhysicalDevice16BitStorageFeatures *)p)->storageBuffer16BitAccess != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES: {
            const VkPhysicalDeviceVulkan12Features *v = (const void *)p;
            f->fp16 |= v->shaderFloat16 != 0;
            f->int8 |= v->shaderInt8 != 0;
            f->storage8 |= v->storageBuffer8BitAccess != 0;
            f->memory_model |= v->vulkanMemoryModel != 0;
            f->bda |= v->bufferDeviceAddress != 0;
            break;
        }
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_BUFFER_DEVICE_ADDRESS_FEATURES:
            f->bda |= ((const VkPhysicalDeviceBufferDeviceAddressFeatures *)p)->bufferDeviceAddress != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES:
            f->memory_model |= ((const VkPhysicalDeviceVulkanMemoryModelFeatures *)p)->vulkanMemoryModel != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES:
            f->int_dot |= ((const VkPhysicalDeviceShaderIntegerDotProductFeatures *)p)->shaderIntegerDotProduct != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV:
            f->coopmat |= ((const VkPhysicalDeviceCooperativeMatrixFeaturesNV *)p)->cooperativeMatrix != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES: {
            const VkPhysicalDeviceShaderFloat16Int8Features *v = (const void *)p;
            f->fp16 |= v->shaderFloat16 != 0;
            f->int8 |= v->shaderInt8 != 0;
            break;
        }
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES:
            f->storage8 |= ((const VkPhysicalDevice8BitStorageFeatures *)p)->storageBuffer8BitAccess != 0;
            break;
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES: {
            const VkPhysicalDeviceVulkan13Features *v = (const void *)p;
            f->sg_size_control |= v->subgroupSizeControl != 0;
            f->full_subgroups |= v->computeFullSubgroups != 0;
            f->int_dot |= v->shaderIntegerDotProduct != 0;
            break;
        }
        case VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES: {
            const VkPhysicalDeviceSubgroupSizeControlFeatures *v = (const void *)p;
            f->sg_size_control |= v->subgroupSizeControl != 0;
            f->full_subgroups |= v->computeFullSubgroups != 0;
            break;
        }
        default: break;
        }
    }
}

static bool enabled_ext(const vkmix_external_vulkan *ext, const char *name)
{
    for (uint32_t i = 0; i < ext->enabled_extension_count; i++)
        if (ext->enabled_extensions[i] && !strcmp(ext->enabled_extensions[i], name)) return true;
    return false;
}

static void add(char *list, size_t n, const char *item)
{
    size_t len = strlen(list);
    snprintf(list + len, n - len, "%s%s", len ? ", " : "", item);
}

vkmix_error vkm_device_adopt(vkm_device *dev, const vkmix_external_vulkan *ext, char *err, size_t errlen)
{
#define FAIL(code, ...) return (snprintf(err, errlen, __VA_ARGS__), (code))
    if (!ext->instance || !ext->physical_device || !ext->device)
        FAIL(VKMIX_ERROR_INVALID_ARGUMENT, "external Vulkan handles: instance, physical_device and device are all required");
    if (ext->enabled_extension_count && !ext->enabled_extensions)
        FAIL(VKMIX_ERROR_INVALID_ARGUMENT, "external Vulkan: enabled_extension_count is %u but enabled_extensions is NULL",
             ext->enabled_extension_count);
    dev->instance = (VkInstance)ext->instance;
    dev->phys = (VkPhysicalDevice)ext->physical_device;
    dev->device = (VkDevice)ext->device;
    dev->queue_family = ext->queue_family;
    char missing[512] = "";
    if (vkm_load_instance(&dev->vki, dev->instance, missing, sizeof missing))
        FAIL(VKMIX_ERROR_UNSUPPORTED_DEVICE, "the application's instance lacks %s (vkmix needs Vulkan 1.2)", missing);
    vkm_caps_fill(&dev->vki, dev->phys, &dev->caps);
    vkm_caps *c = &dev->caps;
    const char *why = vkm_caps_unusable(&dev->vki, dev->phys, c);
    if (why) FAIL(VKMIX_ERROR_UNSUPPORTED_DEVICE, "the application's device (%s) cannot run vkmix: %s", c->device_name, why);

    uint32_t nq = 0;
    dev->vki.vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, NULL);
    VkQueueFamilyProperties q[32];
    if (nq > 32) nq = 32;
    dev->vki.vkGetPhysicalDeviceQueueFamilyProperties(dev->phys, &nq, q);
    if (ext->queue_family >= nq || !(q[ext->queue_family].queueFlags & VK_QUEUE_COMPUTE_BIT) ||
        ext->queue_index >= q[ext->queue_family].queueCount)
        FAIL(VKMIX_ERROR_INVALID_ARGUMENT, "external queue family %u / index %u is not a compute queue of the device",
             ext->queue_family, ext->queue_index);
    c->timestamp_valid_bits = q[ext->queue_family].timestampValidBits;

    /* what the device was created with: every missing requirement, by name */
    enabled_features f;
    read_features(ext->enabled_features, &f);
    missing[0] = 0;
    if (!enabled_ext(ext, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME)) add(missing, sizeof missing, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    if (!f.storage16) add(missing, sizeof missing, "storageBuffer16BitAccess");
    if (!f.fp16) add(missing, sizeof missing, "shaderFloat16");
    if (!f.int8) add(missing, sizeof missing, "shaderInt8");
    if (!f.storage8) add(missing, sizeof missing, "storageBuffer8BitAccess");
    if (missing[0])
        FAIL(VKMIX_ERROR_UNSUPPORTED_DEVICE,
             "the application's device (%s) was not created with what vkmix needs; missing: %s "
             "(enable them in vkCreateDevice and list them in vkmix_external_vulkan.enabled_extensions / enabled_features)",
             c->device_name, missing);
    /* optional capabilities count only when enabled */
    c->int64 = c->int64 && f.int64;
    c->subgroup_size_control = c->subgroup_size_control && f.sg_size_control && f.full_subgroups &&
                               (c->api_version >= VK_API_VERSION_1_3 ||
                                enabled_ext(ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME));
    c->memory_budget_ext = c->memory_budget_ext && enabled_ext(ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    c->int_dot = c->int_dot && f.int_dot &&
                 (c->api_version >= VK_API_VERSION_1_3 || enabled_ext(ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME));
    c->coopmat_nv_feature = c->coopmat_nv_feature && f.coopmat && f.memory_model &&
                            enabled_ext(ext, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    c->buffer_device_address = c->buffer_device_address && c->int64 && f.bda;
    dev->bda = c->buffer_device_address;
    dev->int_dot_on = c->int_dot;
    dev->coopmat_on = c->coopmat_nv_feature;

    if (vkm_load_device(&dev->vk, &dev->vki, dev->device, missing, sizeof missing))
        FAIL(VKMIX_ERROR_UNSUPPORTED_DEVICE,
             "vkGetDeviceProcAddr returned NULL for %s on the application's device (%s): an extension that "
             "vkmix_external_vulkan lists was not enabled on the device?", missing, c->device_name);
#undef FAIL
    return vkm_device_objects(dev, ext->queue_index);
}
