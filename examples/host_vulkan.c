/* host_vulkan: an application that already uses Vulkan (a game, an engine)
 * and runs vkmix on its own device.
 *
 *   host_vulkan MODEL.gguf
 *
 * The program includes vulkan/vulkan.h and links the system loader (-lvulkan)
 * as such applications do; libvkmix.a defines no vk* symbol, so both coexist.
 * It creates its own instance and device with what vkmix needs, tells vkmix
 * what it enabled (vkmix_external_vulkan), loads the model, generates 16
 * tokens greedily and checks them against a context that owns its device,
 * frees the vkmix context and goes on using its queue (a vkCmdFillBuffer read
 * back). With VKMIX_VALIDATION=1 it enables the validation layer on its own
 * instance too, and fails on any message. Exit status 0 when all went well.
 *
 * Build: cc host_vulkan.c $(pkg-config --cflags --libs vkmix) -lvulkan */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vulkan/vulkan.h>

#include "vkmix.h"

#define N_GEN 16

static int messages = 0;
static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                    VkDebugUtilsMessageTypeFlagsEXT type,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *d, void *user)
{
    (void)type; (void)user;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        messages++;
        fprintf(stderr, "host_vulkan: validation: %s\n", d->pMessage);
    }
    return VK_FALSE;
}

/* vkmix's own messages (validation of the contexts it creates) */
static void on_log(vkmix_log_level level, const char *msg, void *user)
{
    (void)user;
    if (level <= VKMIX_LOG_WARN) messages++;
    fprintf(stderr, "host_vulkan: vkmix: %s\n", msg);
}

/* Greedy generation: prompt, then N_GEN tokens. 0 on success. */
static int generate(vkmix_context *ctx, const char *path, int32_t *out)
{
    vkmix_model *m = NULL;
    vkmix_session *s = NULL;
    float *logits = NULL;
    int rc = 1;
    if (vkmix_model_load(ctx, path, NULL, &m) != VKMIX_OK) goto done;
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    if (vkmix_session_create(m, NULL, &s) != VKMIX_OK) goto done;
    int32_t prompt[32];
    size_t n = 0;
    const char *text = "Once upon a time";
    if (vkmix_tokenize(m, text, strlen(text), 1, 0, prompt, 32, &n) != VKMIX_OK) goto done;
    if (!(logits = malloc((size_t)info.n_vocab * sizeof *logits))) goto done;
    if (vkmix_session_eval(s, prompt, (uint32_t)n, logits, 0) != VKMIX_OK) goto done;
    for (int i = 0; i < N_GEN; i++) {
        int32_t best = 0;
        for (uint32_t v = 1; v < info.n_vocab; v++)
            if (logits[v] > logits[best]) best = (int32_t)v;
        out[i] = best;
        if (vkmix_session_eval(s, &best, 1, logits, 0) != VKMIX_OK) goto done;
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "host_vulkan: %s\n", vkmix_context_last_error(ctx));
    free(logits);
    vkmix_session_free(s);
    vkmix_model_free(m);
    return rc;
}

static int has_layer(const char *name)
{
    uint32_t n = 0;
    vkEnumerateInstanceLayerProperties(&n, NULL);
    VkLayerProperties *l = calloc(n ? n : 1, sizeof *l);
    int found = 0;
    if (l && vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= !strcmp(l[i].layerName, name);
    free(l);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: host_vulkan MODEL.gguf\n");
        return 2;
    }
    const char *v = getenv("VKMIX_VALIDATION");
    int validation = v && *v && strcmp(v, "0") && has_layer("VK_LAYER_KHRONOS_validation");

    /* the reference: vkmix on a device of its own */
    int32_t ref[N_GEN], got[N_GEN];
    vkmix_context_params cp;
    vkmix_context_default_params(&cp);
    cp.log = on_log;
    vkmix_context *ctx = NULL;
    if (vkmix_context_create(&cp, &ctx) != VKMIX_OK || generate(ctx, argv[1], ref)) return 1;
    vkmix_context_free(ctx);
    ctx = NULL;

    /* 1. the application's instance and device, with what vkmix needs */
    const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
    const char *iexts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_validation,
    };
    VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "host_vulkan",
                              .apiVersion = VK_API_VERSION_1_2 };
    VkInstanceCreateInfo ici = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = validation ? &dbg : NULL,
                                 .pApplicationInfo = &app, .enabledLayerCount = validation ? 1 : 0,
                                 .ppEnabledLayerNames = layers, .enabledExtensionCount = validation ? 1 : 0,
                                 .ppEnabledExtensionNames = iexts };
    VkInstance inst;
    if (vkCreateInstance(&ici, NULL, &inst) != VK_SUCCESS) {
        fprintf(stderr, "host_vulkan: vkCreateInstance failed\n");
        return 1;
    }
    VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkCreateDebugUtilsMessengerEXT");
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkDestroyDebugUtilsMessengerEXT");
    if (validation && create_messenger) create_messenger(inst, &dbg, NULL, &messenger);
    uint32_t n_pd = 1;
    VkPhysicalDevice pd;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n_pd, &pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || !n_pd) return 1;
    uint32_t n_fam = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, NULL);
    VkQueueFamilyProperties fams[16];
    if (n_fam > 16) n_fam = 16;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n_fam, fams);
    uint32_t family = 0;
    while (family < n_fam && !(fams[family].queueFlags & VK_QUEUE_COMPUTE_BIT)) family++;
    if (family == n_fam) return 1;

    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .storageBuffer16BitAccess = VK_TRUE };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                             .pNext = &f11, .shaderFloat16 = VK_TRUE, .shaderInt8 = VK_TRUE,
                                             .storageBuffer8BitAccess = VK_TRUE };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
    const char *dexts[] = { VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME };
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = family,
                                    .queueCount = 1, .pQueuePriorities = &prio };
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &f2, .queueCreateInfoCount = 1,
                               .pQueueCreateInfos = &qci, .enabledExtensionCount = 1, .ppEnabledExtensionNames = dexts };
    VkDevice device;
    if (vkCreateDevice(pd, &dci, NULL, &device) != VK_SUCCESS) {
        fprintf(stderr, "host_vulkan: vkCreateDevice failed (does the device have VK_KHR_push_descriptor?)\n");
        return 1;
    }

    /* 2. vkmix on the application's device: what it was created with goes along */
    vkmix_external_vulkan ext = {
        .instance = inst, .physical_device = pd, .device = device, .queue_family = family, .queue_index = 0,
        .get_instance_proc_addr = (void *)vkGetInstanceProcAddr,
        .enabled_extensions = dexts, .enabled_extension_count = 1, .enabled_features = &f2,
    };
    char err[1024] = "";
    cp.external = &ext;
    cp.error_buf = err;
    cp.error_buf_size = sizeof err;
    vkmix_error e = vkmix_context_create(&cp, &ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, "host_vulkan: vkmix_context_create: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    int rc = generate(ctx, argv[1], got);
    vkmix_context_free(ctx); /* destroys only what vkmix created */
    if (rc == 0 && memcmp(got, ref, sizeof ref)) {
        fprintf(stderr, "host_vulkan: the tokens differ from those of an owned device\n");
        rc = 1;
    }

    /* 3. the application's queue keeps working: fill a host-visible buffer, read it back */
    VkQueue queue;
    vkGetDeviceQueue(device, family, 0, &queue);
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 4096,
                              .usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT };
    VkBuffer buf;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    void *map = NULL;
    VkCommandPool pool;
    VkCommandBuffer cb;
    VkFence fence;
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    int ok = vkCreateBuffer(device, &bi, NULL, &buf) == VK_SUCCESS;
    VkMemoryRequirements req;
    if (ok) vkGetBufferMemoryRequirements(device, buf, &req);
    uint32_t type = 0;
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    while (ok && type < mp.memoryTypeCount &&
           !((req.memoryTypeBits & (1u << type)) && (mp.memoryTypes[type].propertyFlags & want) == want))
        type++;
    VkMemoryAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = ok ? req.size : 0,
                                .memoryTypeIndex = type };
    ok = ok && type < mp.memoryTypeCount && vkAllocateMemory(device, &ai, NULL, &mem) == VK_SUCCESS &&
         vkBindBufferMemory(device, buf, mem, 0) == VK_SUCCESS && vkMapMemory(device, mem, 0, VK_WHOLE_SIZE, 0, &map) == VK_SUCCESS;
    VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .queueFamilyIndex = family };
    ok = ok && vkCreateCommandPool(device, &pci, NULL, &pool) == VK_SUCCESS;
    VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = pool,
                                        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1 };
    VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
    ok = ok && vkAllocateCommandBuffers(device, &cai, &cb) == VK_SUCCESS && vkCreateFence(device, &fci, NULL, &fence) == VK_SUCCESS;
    if (ok) {
        VkCommandBufferBeginInfo cbi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
        vkBeginCommandBuffer(cb, &cbi);
        vkCmdFillBuffer(cb, buf, 0, VK_WHOLE_SIZE, 0x600DF00Du);
        VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                               .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        vkEndCommandBuffer(cb);
        VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
        ok = vkQueueSubmit(queue, 1, &si, fence) == VK_SUCCESS && vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS;
        for (uint32_t i = 0; ok && i < 4096 / 4; i++) ok = ((const uint32_t *)map)[i] == 0x600DF00Du;
        vkDestroyFence(device, fence, NULL);
        vkDestroyCommandPool(device, pool, NULL);
    }
    if (!ok) {
        fprintf(stderr, "host_vulkan: the application's queue does not work after vkmix_context_free\n");
        rc = 1;
    }
    if (mem) vkFreeMemory(device, mem, NULL);
    vkDestroyBuffer(device, buf, NULL);
    vkDestroyDevice(device, NULL);
    if (messenger && destroy_messenger) destroy_messenger(inst, messenger, NULL);
    vkDestroyInstance(inst, NULL);
    if (messages) {
        fprintf(stderr, "host_vulkan: %d validation message(s)\n", messages);
        rc = 1;
    }
    if (rc == 0)
        printf("host_vulkan: %d tokens on the application's device equal those of vkmix's own device; the "
               "application's queue works after vkmix_context_free\n", N_GEN);
    return rc;
}
