#define _POSIX_C_SOURCE 200809L
/* An application that owns Vulkan (it links the system loader, -lvulkan, and
 * uses its prototypes) hands vkmix its instance, physical device, device and
 * queue, and says what the device was created with.
 *
 *   - vkmix runs a real model on the borrowed device: logits and greedy tokens
 *     are bit-identical to a context that owns its device; the KV quantize
 *     round trip matches the CPU;
 *   - a device created without VK_KHR_push_descriptor, or without shaderFloat16
 *     and storageBuffer8BitAccess, is refused at creation with every missing
 *     item named (no crash); a device that lacks the extension while the
 *     application claims it is caught by the entry-point check;
 *   - a bad queue family is refused;
 *   - after vkmix_context_free the device and queue still work.
 * The application's validation messenger must stay silent. */
#undef VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <math.h>
#include <string.h>

#include "testutil.h"
#include "vkmix_bench.h"

#define N_GEN 8

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

/* The application's device: what it enables is what it tells vkmix. */
typedef struct app_device {
    VkDevice device;
    VkPhysicalDeviceVulkan11Features f11;
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot;
    VkPhysicalDeviceSubgroupSizeControlFeatures fsg;
    VkPhysicalDeviceFeatures2 f2;
    const char *exts[4];
    uint32_t n_exts;
} app_device;

static int has_ext(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL);
    VkExtensionProperties *p = calloc(n ? n : 1, sizeof *p);
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p);
    int found = 0;
    for (uint32_t i = 0; i < n; i++) found |= !strcmp(p[i].extensionName, name);
    free(p);
    return found;
}

/* optional: also enable what an owned context enables when the device has it (shaderInt64 and
 * bufferDeviceAddress, integer dot products, subgroup size control), so both take the same paths */
static VkResult make_device(VkPhysicalDevice pd, int push_descriptor, int fp16_and_int8_storage, int optional,
                            app_device *d)
{
    memset(d, 0, sizeof *d);
    d->f11 = (VkPhysicalDeviceVulkan11Features){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                                 .storageBuffer16BitAccess = VK_TRUE };
    d->f12 = (VkPhysicalDeviceVulkan12Features){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                                 .pNext = &d->f11, .shaderInt8 = VK_TRUE,
                                                 .shaderFloat16 = fp16_and_int8_storage ? VK_TRUE : VK_FALSE,
                                                 .storageBuffer8BitAccess = fp16_and_int8_storage ? VK_TRUE : VK_FALSE };
    d->f2 = (VkPhysicalDeviceFeatures2){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &d->f12 };
    if (push_descriptor) d->exts[d->n_exts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (optional) {
        VkPhysicalDeviceVulkan12Features s12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
        VkPhysicalDeviceFeatures2 s2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s12 };
        vkGetPhysicalDeviceFeatures2(pd, &s2);
        d->f2.features.shaderInt64 = s2.features.shaderInt64;
        d->f12.bufferDeviceAddress = s12.bufferDeviceAddress && s2.features.shaderInt64;
        void *chain = &d->f11;
        if (has_ext(pd, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME)) {
            d->fdot = (VkPhysicalDeviceShaderIntegerDotProductFeatures){
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES, .pNext = chain,
                .shaderIntegerDotProduct = VK_TRUE };
            chain = &d->fdot;
            d->exts[d->n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
        }
        if (has_ext(pd, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME)) {
            d->fsg = (VkPhysicalDeviceSubgroupSizeControlFeatures){
                .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES, .pNext = chain,
                .subgroupSizeControl = VK_TRUE, .computeFullSubgroups = VK_TRUE };
            chain = &d->fsg;
            d->exts[d->n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
        }
        d->f12.pNext = chain;
    }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = 0,
                                  .queueCount = 1, .pQueuePriorities = &prio };
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &d->f2, .queueCreateInfoCount = 1,
                               .pQueueCreateInfos = &q, .enabledExtensionCount = d->n_exts,
                               .ppEnabledExtensionNames = d->exts };
    return vkCreateDevice(pd, &dci, NULL, &d->device);
}

static vkmix_external_vulkan external_of(VkInstance inst, VkPhysicalDevice pd, const app_device *d)
{
    vkmix_external_vulkan ext = { .instance = inst, .physical_device = pd, .device = d->device, .queue_family = 0,
                                  .queue_index = 0, .get_instance_proc_addr = (void *)vkGetInstanceProcAddr,
                                  .enabled_extensions = d->exts, .enabled_extension_count = d->n_exts,
                                  .enabled_features = &d->f2 };
    return ext;
}

static vkmix_error context_on(const vkmix_external_vulkan *ext, char *err, size_t n, vkmix_context **out)
{
    vkmix_context_params p;
    vkmix_context_default_params(&p);
    p.external = ext;
    p.error_buf = err;
    p.error_buf_size = n;
    err[0] = 0;
    *out = NULL;
    return vkmix_context_create(&p, out);
}

/* Prefill a fixed prompt and decode N_GEN tokens greedily; logits [N_GEN][V]. */
static int generate(vkmix_context *ctx, const char *path, int32_t *tokens, float **logits, uint32_t *V)
{
    vkmix_model *m = NULL;
    vkmix_session *s = NULL;
    int ok = 0;
    if (vkmix_model_load(ctx, path, NULL, &m) != VKMIX_OK) goto out;
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    *V = info.n_vocab;
    *logits = calloc((size_t)N_GEN * info.n_vocab, 4);
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = 64;
    sp.kv = "k4v4";
    sp.kv_window = 32;
    if (vkmix_session_create(m, &sp, &s) != VKMIX_OK) goto out;
    int32_t prompt[12];
    size_t np = 0;
    if (vkmix_tokenize(m, "Once upon a time, there was", 27, 1, 0, prompt, 12, &np) != VKMIX_OK) goto out;
    if (vkmix_session_eval(s, prompt, (uint32_t)np, *logits, 0) != VKMIX_OK) goto out;
    for (int i = 0; i < N_GEN; i++) {
        const float *l = *logits + (size_t)i * info.n_vocab;
        int32_t best = 0;
        for (uint32_t v = 1; v < info.n_vocab; v++)
            if (l[v] > l[best]) best = (int32_t)v;
        tokens[i] = best;
        if (i + 1 < N_GEN && vkmix_session_eval(s, &best, 1, *logits + (size_t)(i + 1) * info.n_vocab, 0) != VKMIX_OK)
            goto out;
    }
    ok = 1;
out:
    if (!ok) fprintf(stderr, "generate: %s\n", vkmix_context_last_error(ctx));
    vkmix_session_free(s);
    vkmix_model_free(m);
    return ok;
}

int main(void)
{
    /* The same math on every device: FP32 arithmetic in the packed attention (a minimal device
     * without buffer device address takes the per-row path, which computes in FP32) */
    setenv("VKMIX_KVQ_F32", "1", 1);
    char *model = tu_source_path("assets/stories260K-f16.gguf");
    REQUIRE(model, "assets/stories260K-f16.gguf not found (VKMIX_SOURCE_DIR)");
    /* the reference: a context that owns its device */
    int32_t ref_tok[N_GEN], tok[N_GEN];
    float *ref_logits = NULL, *logits = NULL;
    uint32_t V = 0;
    vkmix_context *own = tu_context();
    REQUIRE(own, "owned context");
    REQUIRE(generate(own, model, ref_tok, &ref_logits, &V), "generation on an owned device");
    CHECK(tu_context_done(own) == 0, "validation (owned device)");

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
    PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkCreateDebugUtilsMessengerEXT");
    PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger =
        (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkDestroyDebugUtilsMessengerEXT");
    VkDebugUtilsMessengerEXT messenger;
    REQUIRE(create_messenger && create_messenger(inst, &dbg, NULL, &messenger) == VK_SUCCESS, "messenger");
    uint32_t n = 1;
    VkPhysicalDevice pd;
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, &pd);
    REQUIRE((r == VK_SUCCESS || r == VK_INCOMPLETE) && n >= 1, "no physical device");

    /* 1. a complete device: a real model runs on it */
    app_device good;
    REQUIRE(make_device(pd, 1, 1, 1, &good) == VK_SUCCESS, "app device");
    vkmix_external_vulkan ext = external_of(inst, pd, &good);
    char err[1024];
    vkmix_context *ctx = NULL;
    vkmix_error e = context_on(&ext, err, sizeof err, &ctx);
    REQUIRE(e == VKMIX_OK, "context on the app's device: %s: %s", vkmix_strerror(e), err);
    CHECK(generate(ctx, model, tok, &logits, &V), "generation on the borrowed device");
    CHECK(logits && !memcmp(tok, ref_tok, sizeof tok), "greedy tokens equal the owned device's");
    CHECK(logits && !memcmp(logits, ref_logits, (size_t)N_GEN * V * 4), "logits bit-identical to the owned device's");
    printf("borrowed device: %d greedy tokens and their logits identical to an owned device\n", N_GEN);

    /* 1b. a device with only the requirements (no int64, buffer device address, integer dot products):
     * vkmix takes its fallback paths (per-sequence attention, float weight products) and stays close */
    {
        app_device minimal;
        REQUIRE(make_device(pd, 1, 1, 0, &minimal) == VK_SUCCESS, "minimal app device");
        vkmix_external_vulkan em = external_of(inst, pd, &minimal);
        vkmix_context *cm = NULL;
        e = context_on(&em, err, sizeof err, &cm);
        CHECK(e == VKMIX_OK, "context on a minimal device: %s: %s", vkmix_strerror(e), err);
        int32_t mtok[N_GEN];
        float *mlog = NULL;
        if (e == VKMIX_OK && generate(cm, model, mtok, &mlog, &V)) {
            double worst = 0, scale = 0;
            for (size_t i = 0; i < (size_t)N_GEN * V; i++) {
                double d = fabs((double)mlog[i] - ref_logits[i]);
                if (d > worst) worst = d;
                if (fabs(ref_logits[i]) > scale) scale = fabs(ref_logits[i]);
            }
            CHECK(!memcmp(mtok, ref_tok, sizeof mtok), "minimal device: greedy tokens equal the owned device's");
            CHECK(worst <= 1e-3 * scale, "minimal device: logits within 1e-3 of the largest (%.3g vs %.3g)", worst, scale);
            printf("minimal device: tokens equal, largest logit difference %.3g (largest logit %.3g)\n", worst, scale);
        } else {
            CHECK(0, "generation on a minimal device: %s", cm ? vkmix_context_last_error(cm) : err);
        }
        free(mlog);
        vkmix_context_free(cm);
        vkDestroyDevice(minimal.device, NULL);
    }

    /* the KV quantize round trip matches the CPU */
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
    CHECK(!memcmp(y, ycpu, sizeof y), "dequantized values match CPU");

    /* 2. a wrong queue family is refused with a clear error */
    vkmix_external_vulkan bad = ext;
    bad.queue_family = 99;
    vkmix_context *ctx2 = NULL;
    CHECK(context_on(&bad, err, sizeof err, &ctx2) == VKMIX_ERROR_INVALID_ARGUMENT && ctx2 == NULL, "bad queue family refused");
    CHECK(strstr(err, "queue family") != NULL, "message names the queue family: %s", err);
    /* the application did not say what it enabled */
    bad = ext;
    bad.enabled_extensions = NULL;
    bad.enabled_extension_count = 0;
    bad.enabled_features = NULL;
    CHECK(context_on(&bad, err, sizeof err, &ctx2) == VKMIX_ERROR_UNSUPPORTED_DEVICE && ctx2 == NULL, "nothing declared: refused");
    CHECK(strstr(err, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) && strstr(err, "storageBuffer16BitAccess") &&
              strstr(err, "shaderFloat16") && strstr(err, "shaderInt8") && strstr(err, "storageBuffer8BitAccess"),
          "every requirement named: %s", err);

    /* 3. devices that lack requirements are refused at creation, naming each */
    app_device no_push, no_fp16;
    REQUIRE(make_device(pd, 0, 1, 0, &no_push) == VK_SUCCESS, "device without push descriptors");
    vkmix_external_vulkan e1 = external_of(inst, pd, &no_push);
    CHECK(context_on(&e1, err, sizeof err, &ctx2) == VKMIX_ERROR_UNSUPPORTED_DEVICE && ctx2 == NULL,
          "no VK_KHR_push_descriptor: refused");
    CHECK(strstr(err, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) != NULL, "message names the extension: %s", err);
    printf("refused: %s\n", err);
    /* the application claims the extension, the device does not have it: the entry-point check */
    static const char *claimed[] = { VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME };
    e1.enabled_extensions = claimed;
    e1.enabled_extension_count = 1;
    e = context_on(&e1, err, sizeof err, &ctx2);
    CHECK(e == VKMIX_ERROR_UNSUPPORTED_DEVICE && ctx2 == NULL, "a false claim is caught (%s)", vkmix_strerror(e));
    CHECK(strstr(err, "vkCmdPushDescriptorSetKHR") != NULL, "message names the missing entry point: %s", err);
    printf("refused: %s\n", err);
    vkmix_context_free(ctx2);
    vkDestroyDevice(no_push.device, NULL);

    REQUIRE(make_device(pd, 1, 0, 0, &no_fp16) == VK_SUCCESS, "device without fp16 / 8-bit storage");
    vkmix_external_vulkan e2 = external_of(inst, pd, &no_fp16);
    CHECK(context_on(&e2, err, sizeof err, &ctx2) == VKMIX_ERROR_UNSUPPORTED_DEVICE && ctx2 == NULL,
          "no shaderFloat16: refused");
    CHECK(strstr(err, "shaderFloat16") && strstr(err, "storageBuffer8BitAccess") && !strstr(err, "shaderInt8"),
          "message names exactly the missing features: %s", err);
    vkDestroyDevice(no_fp16.device, NULL);

    vkmix_context_free(ctx);

    /* 4. the device is still ours and alive (examples/host_vulkan.c also records on the queue) */
    VkQueue queue;
    vkGetDeviceQueue(good.device, 0, 0, &queue);
    CHECK(vkQueueWaitIdle(queue) == VK_SUCCESS, "queue usable after vkmix_context_free");
    VkBufferCreateInfo bi = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 256,
                              .usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT };
    VkBuffer buf;
    CHECK(vkCreateBuffer(good.device, &bi, NULL, &buf) == VK_SUCCESS, "device usable after vkmix_context_free");
    vkDestroyBuffer(good.device, buf, NULL);
    vkDestroyDevice(good.device, NULL);
    destroy_messenger(inst, messenger, NULL);
    vkDestroyInstance(inst, NULL);
    CHECK(validation_hits == 0, "validation layer reported %d message(s)", validation_hits);
    vkmix_context_free(NULL); /* free(NULL) is safe */
    free(ref_logits);
    free(logits);
    free(model);
    return tu_finish("test_external_device");
}
