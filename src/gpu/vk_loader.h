/* The Vulkan entry points vkmix uses, in tables owned by each context (no
 * process-wide function pointers: an application that links the Vulkan loader
 * itself keeps its own vk* symbols, and two contexts on two instances never
 * share a pointer). The lists below are the whole of vkmix's Vulkan surface. */
#ifndef VKM_VK_LOADER_H
#define VKM_VK_LOADER_H

#include <stddef.h>

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include "vkmix.h"

/* Global commands: vkGetInstanceProcAddr(NULL, name). */
#define VKM_GLOBAL_FUNCS(X)                                                                          \
    X(vkCreateInstance) X(vkEnumerateInstanceExtensionProperties) X(vkEnumerateInstanceLayerProperties) \
    X(vkEnumerateInstanceVersion)

/* Instance commands (all core in Vulkan 1.1). */
#define VKM_INSTANCE_FUNCS(X)                                                                        \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties2)             \
    X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceMemoryProperties)                           \
    X(vkGetPhysicalDeviceMemoryProperties2) X(vkGetPhysicalDeviceQueueFamilyProperties)              \
    X(vkEnumerateDeviceExtensionProperties) X(vkCreateDevice) X(vkGetDeviceProcAddr)

/* Optional instance commands (may be NULL): VK_EXT_debug_utils (validation
 * messages), VK_NV_cooperative_matrix (its shapes). */
#define VKM_DEBUG_FUNCS(X)                                                                           \
    X(vkCreateDebugUtilsMessengerEXT) X(vkDestroyDebugUtilsMessengerEXT)                             \
    X(vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)

/* Device commands: every one must be non-NULL on a device vkmix runs on. */
#define VKM_DEVICE_FUNCS(X)                                                                          \
    X(vkDestroyDevice) X(vkDeviceWaitIdle) X(vkGetDeviceQueue) X(vkQueueSubmit) X(vkQueueWaitIdle)   \
    X(vkCreateBuffer) X(vkDestroyBuffer) X(vkGetBufferMemoryRequirements) X(vkAllocateMemory)         \
    X(vkFreeMemory) X(vkBindBufferMemory) X(vkMapMemory) X(vkUnmapMemory)                            \
    X(vkCreateCommandPool) X(vkDestroyCommandPool) X(vkAllocateCommandBuffers)                       \
    X(vkResetCommandBuffer) X(vkBeginCommandBuffer) X(vkEndCommandBuffer)                            \
    X(vkCreateFence) X(vkDestroyFence) X(vkWaitForFences) X(vkResetFences)                           \
    X(vkCreateQueryPool) X(vkDestroyQueryPool) X(vkGetQueryPoolResults)                              \
    X(vkCreatePipelineCache) X(vkDestroyPipelineCache) X(vkCreateShaderModule) X(vkDestroyShaderModule) \
    X(vkCreateDescriptorSetLayout) X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout)         \
    X(vkDestroyPipelineLayout) X(vkCreateComputePipelines) X(vkDestroyPipeline)                      \
    X(vkCmdBindPipeline) X(vkCmdPushConstants) X(vkCmdDispatch) X(vkCmdPipelineBarrier)              \
    X(vkCmdCopyBuffer) X(vkCmdFillBuffer) X(vkCmdResetQueryPool) X(vkCmdWriteTimestamp)              \
    X(vkCmdPushDescriptorSetKHR)

/* Device commands that may be NULL (features vkmix uses when present). */
#define VKM_DEVICE_OPT_FUNCS(X)                                                                      \
    X(vkGetBufferDeviceAddress) X(vkGetPipelineExecutablePropertiesKHR)                              \
    X(vkGetPipelineExecutableStatisticsKHR)

#define VKM_PFN_FIELD(f) PFN_##f f;

/* Loader-level and instance-level entry points of one context. */
typedef struct vkm_vki {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    VKM_GLOBAL_FUNCS(VKM_PFN_FIELD)
    VKM_INSTANCE_FUNCS(VKM_PFN_FIELD)
    VKM_DEBUG_FUNCS(VKM_PFN_FIELD)
} vkm_vki;

/* Device-level entry points of one VkDevice. */
typedef struct vkm_vkd {
    VKM_DEVICE_FUNCS(VKM_PFN_FIELD)
    VKM_DEVICE_OPT_FUNCS(VKM_PFN_FIELD)
} vkm_vkd;

/* Global commands through gipa, or through the system loader (libvulkan.so.1,
 * opened once per process and never closed) when gipa is NULL. */
vkmix_error vkm_load_global(vkm_vki *t, PFN_vkGetInstanceProcAddr gipa, char *err, size_t errlen);
/* Instance commands of `inst`. Writes the names of missing core commands
 * (comma-separated) into missing; returns how many are missing. */
int vkm_load_instance(vkm_vki *t, VkInstance inst, char *missing, size_t n);
/* Device commands of `dev`; same reporting. */
int vkm_load_device(vkm_vkd *t, const vkm_vki *vki, VkDevice dev, char *missing, size_t n);

#endif
