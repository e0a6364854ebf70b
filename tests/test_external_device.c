/* An application that owns Vulkan hands vkmix its instance, physical device,
 * device and queue. vkmix must run on them, and must leave them alive and
 * usable after vkmix_context_free. */
#include <string.h>

#include <volk.h>

#include "testutil.h"
#include "vkmix_bench.h"

static int validation_hits = 0;
static VKAPI_ATTR VkBool32 VKAPI_CALL on_msg(VkDebugUtilsMessageSeverityFlagBitsEXT sev, VkDebugUtilsMessageTypeFlagsEXT t,
                                             const VkDebugUtilsMessengerCallbackDataEXT *d, void *u)
{
    (void)t; (void)u;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
        validation_hits++;
        fprintf(stderr, "validation: %s\n", d->pMessage);
    }
    return VK_FALSE;
}

int main(void)
{
    REQUIRE(volkInitialize() == VK_SUCCESS, "no Vulkan loader");
    const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
    const char *iexts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME };
    VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_2 };
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT,
        .pfnUserCallback = on_msg,
    };
    VkInstanceCreateInfo ici = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pNext = &dbg,
                                 .pApplicationInfo = &app, .enabledLayerCount = 1, .ppEnabledLayerNames = layers,
                                 .enabledExtensionCount = 1, .ppEnabledExtensionNames = iexts };
    VkInstance inst;
    REQUIRE(vkCreateInstance(&ici, NULL, &inst) == VK_SUCCESS, "app instance (is vulkan-validationlayers installed?)");
    volkLoadInstanceOnly(inst);
    VkDebugUtilsMessengerEXT messenger;
    REQUIRE(vkCreateDebugUtilsMessengerEXT(inst, &dbg, NULL, &messenger) == VK_SUCCESS, "messenger");
    uint32_t n = 1;
    VkPhysicalDevice pd;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, &pd);
    REQUIRE((r == VK_SUCCESS || r == VK_INCOMPLETE) && n >= 1, "no physical device");

    /* the app's own device, with the features vkmix documents as required */
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = 0,
                                  .queueCount = 1, .pQueuePriorities = &prio };
    VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                             .storageBuffer16BitAccess = VK_TRUE };
    VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .pNext = &f11,
                                             .shaderFloat16 = VK_TRUE, .shaderInt8 = VK_TRUE,
                                             .storageBuffer8BitAccess = VK_TRUE };
    VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12 };
    const char *dexts[] = { VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME };
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &f2, .queueCreateInfoCount = 1,
                               .pQueueCreateInfos = &q, .enabledExtensionCount = 1, .ppEnabledExtensionNames = dexts };
    VkDevice device;
    REQUIRE(vkCreateDevice(pd, &dci, NULL, &device) == VK_SUCCESS, "app device");
    struct VolkDeviceTable vk;
    volkLoadDeviceTable(&vk, device);

    vkmix_external_vulkan ext = { .instance = inst, .physical_device = pd, .device = device, .queue_family = 0,
                                  .queue_index = 0, .get_instance_proc_addr = (void *)vkGetInstanceProcAddr };
    char err[512] = "";
    vkmix_context_params p;
    vkmix_context_default_params(&p);
    p.external = &ext;
    p.error_buf = err;
    p.error_buf_size = sizeof err;
    vkmix_context *ctx = NULL;
    vkmix_error e = vkmix_context_create(&p, &ctx);
    REQUIRE(e == VKMIX_OK, "context on the app's device: %s: %s", vkmix_strerror(e), err);

    /* real work on the borrowed device: a quantize round trip checked against the CPU */
    vkmix_kvq_shape s = { VKMIX_KV_VALUES, 4, 16, 16, 3, 9 };
    uint16_t x[3 * 9 * 16], y[3 * 9 * 16], ycpu[3 * 9 * 16];
    uint32_t codes[3 * 9 * 2], meta[3 * 9], ccpu[3 * 9 * 2], mcpu[3 * 9];
    tu_rng rng;
    tu_rng_seed(&rng, 7);
    for (size_t i = 0; i < sizeof x / 2; i++) x[i] = vkmix_f32_to_f16(tu_rng_normal(&rng));
    e = vkmix_kvq_roundtrip_gpu(ctx, &s, x, codes, meta, y);
    CHECK(e == VKMIX_OK, "roundtrip on external device: %s", vkmix_context_last_error(ctx));
    vkmix_kvq_quantize_cpu(&s, x, ccpu, mcpu);
    vkmix_kvq_dequantize_cpu(&s, ccpu, mcpu, ycpu);
    CHECK(!memcmp(codes, ccpu, sizeof codes), "codes match CPU");
    CHECK(!memcmp(meta, mcpu, sizeof meta), "meta match CPU");
    int ydiff = 0;
    for (size_t i = 0; i < sizeof y / 2; i++) ydiff += y[i] != ycpu[i] && (y[i] > ycpu[i] ? y[i] - ycpu[i] : ycpu[i] - y[i]) > 1;
    CHECK(ydiff == 0, "dequantized values match CPU (%d differ)", ydiff);

    /* wrong queue family is refused with a clear error */
    vkmix_external_vulkan bad = ext;
    bad.queue_family = 99;
    p.external = &bad;
    vkmix_context *ctx2 = NULL;
    CHECK(vkmix_context_create(&p, &ctx2) == VKMIX_ERROR_INVALID_ARGUMENT && ctx2 == NULL, "bad queue family refused");
    CHECK(strstr(err, "queue family") != NULL, "message names the queue family: %s", err);

    vkmix_context_free(ctx);

    /* the device is still ours and alive: use it */
    VkQueue queue;
    vk.vkGetDeviceQueue(device, 0, 0, &queue);
    CHECK(vk.vkQueueWaitIdle(queue) == VK_SUCCESS, "queue usable after vkmix_context_free");
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT };
    VkBuffer buf;
    CHECK(vk.vkCreateBuffer(device, &bi, NULL, &buf) == VK_SUCCESS, "device usable after vkmix_context_free");
    vk.vkDestroyBuffer(device, buf, NULL);
    vk.vkDestroyDevice(device, NULL);
    vkDestroyDebugUtilsMessengerEXT(inst, messenger, NULL);
    vkDestroyInstance(inst, NULL);
    CHECK(validation_hits == 0, "validation layer reported %d message(s)", validation_hits);
    vkmix_context_free(NULL); /* free(NULL) is safe */
    return tu_finish("test_external_device");
}
