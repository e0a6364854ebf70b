/* soak: generate many tokens through the public API and watch memory.
 *
 *   soak MODEL.gguf [TOKENS [KV [N_CTX [EVERY]]]]
 *     TOKENS  tokens to generate (default 100000)
 *     KV      cache configuration (default "k4v2:w=32:s=4": a 32-token FP16
 *             window and 4 sinks, so that rewinds of more than about 64
 *             tokens refill the window from packed groups)
 *     N_CTX   session context (default 256): when it is full, the session is
 *             reset (and the prompt evaluated again)
 *     EVERY   sample memory every EVERY tokens (default 1000)
 *
 * The program owns the Vulkan instance and device and lends them to vkmix
 * (vkmix_context_params.external). The instance procedure address it lends
 * wraps vkAllocateMemory / vkFreeMemory, so every device allocation vkmix
 * makes is counted: live bytes and live allocations. (lavapipe has no
 * VK_EXT_memory_budget; this counts the same thing exactly, on any driver.)
 * Host memory is the resident set size from /proc/self/statm.
 *
 * Output: one CSV line per sample on stdout:
 *   tokens,seconds,rss_kib,device_bytes,device_allocs,resets,rewinds
 * and a verdict on stderr. Exit status 0 when both stayed flat: the device
 * bytes and allocations never changed after the first sample, and the RSS of
 * the last sample is within SOAK_RSS_SLACK_KIB (default 2048) of the RSS after
 * the warm-up, the first tenth of the run (at least 2,000 tokens): the driver
 * compiles pipelines the first time a path runs (a prefill chunk of a new
 * size, a refill), which grows the RSS once.
 * Every 7th context is cut short at a random length, so resets happen at
 * different fill levels, not only at a full cache. Every 40 to 103 tokens the
 * session is rewound by 2 to 97 tokens (vkmix_session_rewind) and the last 1
 * to 4 of the kept tokens are evaluated again, as one chunk, to get fresh
 * logits: generation continues from there.
 *
 * SOAK_SELFTEST=1 checks the measurement itself: the program then leaks 4 KiB
 * of host memory per token and one extra session every 500 tokens, and the
 * verdict must be NOT FLAT (exit status 1). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "vkmix.h"

/* ------------------------------------------------------------------ device memory accounting */

static PFN_vkGetInstanceProcAddr real_gipa;
static PFN_vkGetDeviceProcAddr real_gdpa;
static PFN_vkAllocateMemory real_alloc;
static PFN_vkFreeMemory real_free;

#define MAX_LIVE 65536
static struct { VkDeviceMemory mem; VkDeviceSize size; } live[MAX_LIVE];
static long long live_bytes, live_count, lost;

static VKAPI_ATTR VkResult VKAPI_CALL count_alloc(VkDevice d, const VkMemoryAllocateInfo *info,
                                                 const VkAllocationCallbacks *cb, VkDeviceMemory *mem)
{
    VkResult r = real_alloc(d, info, cb, mem);
    if (r != VK_SUCCESS) return r;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live[i].mem == VK_NULL_HANDLE) {
            live[i].mem = *mem;
            live[i].size = info->allocationSize;
            live_bytes += (long long)info->allocationSize;
            live_count++;
            return r;
        }
    }
    lost++;
    return r;
}

static VKAPI_ATTR void VKAPI_CALL count_free(VkDevice d, VkDeviceMemory mem, const VkAllocationCallbacks *cb)
{
    if (mem != VK_NULL_HANDLE) {
        for (int i = 0; i < MAX_LIVE; i++) {
            if (live[i].mem == mem) {
                live_bytes -= (long long)live[i].size;
                live_count--;
                live[i].mem = VK_NULL_HANDLE;
                break;
            }
        }
    }
    real_free(d, mem, cb);
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL wrap_gdpa(VkDevice d, const char *name)
{
    if (!strcmp(name, "vkAllocateMemory")) return (PFN_vkVoidFunction)count_alloc;
    if (!strcmp(name, "vkFreeMemory")) return (PFN_vkVoidFunction)count_free;
    if (!strcmp(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)wrap_gdpa;
    return real_gdpa(d, name);
}

static VKAPI_ATTR PFN_vkVoidFunction VKAPI_CALL wrap_gipa(VkInstance inst, const char *name)
{
    if (!strcmp(name, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)wrap_gipa;
    if (inst && !strcmp(name, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)wrap_gdpa;
    if (inst && !strcmp(name, "vkAllocateMemory")) return (PFN_vkVoidFunction)count_alloc;
    if (inst && !strcmp(name, "vkFreeMemory")) return (PFN_vkVoidFunction)count_free;
    return real_gipa(inst, name);
}

/* The application's own instance and device, with what vkmix needs (vkmix.h). */
typedef struct {
    VkInstance inst;
    VkPhysicalDevice pd;
    VkDevice dev;
    VkPhysicalDeviceVulkan11Features f11; /* what the device was created with, told to vkmix */
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceFeatures2 f2;
    const char *exts[1];
    PFN_vkDestroyInstance destroy_instance;
    PFN_vkDestroyDevice destroy_device;
} app_vulkan;

static int app_vulkan_create(app_vulkan *a, char *err, size_t errlen)
{
    void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return snprintf(err, errlen, "cannot load libvulkan.so.1"), 0;
    real_gipa = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
    if (!real_gipa) return snprintf(err, errlen, "no vkGetInstanceProcAddr"), 0;
    PFN_vkCreateInstance create_instance = (PFN_vkCreateInstance)real_gipa(NULL, "vkCreateInstance");
    VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_2 };
    VkInstanceCreateInfo ici = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app };
    if (!create_instance || create_instance(&ici, NULL, &a->inst) != VK_SUCCESS)
        return snprintf(err, errlen, "vkCreateInstance failed"), 0;
#define IFN(T, name) PFN_##T name = (PFN_##T)real_gipa(a->inst, #T)
    IFN(vkEnumeratePhysicalDevices, enum_pd);
    IFN(vkCreateDevice, create_device);
    a->destroy_instance = (PFN_vkDestroyInstance)real_gipa(a->inst, "vkDestroyInstance");
    real_gdpa = (PFN_vkGetDeviceProcAddr)real_gipa(a->inst, "vkGetDeviceProcAddr");
#undef IFN
    uint32_t n = 1;
    VkResult r = enum_pd(a->inst, &n, &a->pd);
    if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n < 1) return snprintf(err, errlen, "no physical device"), 0;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = 0,
                                  .queueCount = 1, .pQueuePriorities = &prio };
    a->f11 = (VkPhysicalDeviceVulkan11Features){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                                 .storageBuffer16BitAccess = VK_TRUE };
    a->f12 = (VkPhysicalDeviceVulkan12Features){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                                 .pNext = &a->f11, .shaderFloat16 = VK_TRUE, .shaderInt8 = VK_TRUE,
                                                 .storageBuffer8BitAccess = VK_TRUE };
    a->f2 = (VkPhysicalDeviceFeatures2){ .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &a->f12 };
    a->exts[0] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &a->f2, .queueCreateInfoCount = 1,
                               .pQueueCreateInfos = &q, .enabledExtensionCount = 1, .ppEnabledExtensionNames = a->exts };
    if (create_device(a->pd, &dci, NULL, &a->dev) != VK_SUCCESS) return snprintf(err, errlen, "vkCreateDevice failed"), 0;
    real_alloc = (PFN_vkAllocateMemory)real_gdpa(a->dev, "vkAllocateMemory");
    real_free = (PFN_vkFreeMemory)real_gdpa(a->dev, "vkFreeMemory");
    a->destroy_device = (PFN_vkDestroyDevice)real_gdpa(a->dev, "vkDestroyDevice");
    return real_alloc && real_free && a->destroy_device;
}

/* ------------------------------------------------------------------ sampling */

static long rss_kib(void)
{
    long pages_total = 0, pages_res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages_total, &pages_res) != 2) pages_res = -1;
    fclose(f);
    return pages_res < 0 ? -1 : pages_res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define TRY(call)                                                                                        \
    do {                                                                                                 \
        vkmix_error e_ = (call);                                                                         \
        if (e_ != VKMIX_OK) {                                                                            \
            fprintf(stderr, "soak: %s: %s: %s\n", #call, vkmix_strerror(e_), vkmix_context_last_error(ctx)); \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: soak MODEL.gguf [TOKENS [KV [N_CTX [EVERY]]]]\n");
        return 2;
    }
    const char *path = argv[1];
    long total = argc > 2 ? atol(argv[2]) : 100000;
    const char *kv = argc > 3 ? argv[3] : "k4v2:w=32:s=4";
    uint32_t n_ctx = argc > 4 ? (uint32_t)atol(argv[4]) : 256;
    long every = argc > 5 ? atol(argv[5]) : 1000;
    long slack = getenv("SOAK_RSS_SLACK_KIB") ? atol(getenv("SOAK_RSS_SLACK_KIB")) : 2048;
    int selftest = getenv("SOAK_SELFTEST") && atoi(getenv("SOAK_SELFTEST"));
    if (total <= 0 || every <= 0 || n_ctx < 8) return 2;

    char err[512] = "";
    app_vulkan av = {0};
    if (!app_vulkan_create(&av, err, sizeof err)) {
        fprintf(stderr, "soak: %s\n", err);
        return 1;
    }
    vkmix_external_vulkan ext = { .instance = av.inst, .physical_device = av.pd, .device = av.dev,
                                  .queue_family = 0, .queue_index = 0, .get_instance_proc_addr = (void *)wrap_gipa,
                                  .enabled_extensions = av.exts, .enabled_extension_count = 1,
                                  .enabled_features = &av.f2 };
    vkmix_context_params cp;
    vkmix_context_default_params(&cp);
    cp.external = &ext;
    cp.error_buf = err;
    cp.error_buf_size = sizeof err;
    vkmix_context *ctx = NULL;
    vkmix_error e = vkmix_context_create(&cp, &ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, "soak: context: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    vkmix_model *model = NULL;
    vkmix_session *s = NULL;
    vkmix_sampler *smp = NULL;
    vkmix_detokenizer *dt = NULL;
    TRY(vkmix_model_load(ctx, path, NULL, &model));
    vkmix_model_info info;
    TRY(vkmix_model_get_info(model, &info));
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = n_ctx;
    sp.kv = kv;
    TRY(vkmix_session_create(model, &sp, &s));
    vkmix_sampler_params smpp;
    vkmix_sampler_default_params(&smpp);
    smpp.seed = 1234;
    TRY(vkmix_sampler_create(&smpp, &smp));
    TRY(vkmix_detokenizer_create(model, &dt));
    float *logits = malloc(info.n_vocab * sizeof *logits);
    if (!logits) return 1;

    static const char prompt[] = "Once upon a time, there was a little girl who";
    int32_t ptoks[64];
    size_t np = 0;
    TRY(vkmix_tokenize(model, prompt, strlen(prompt), 1, 0, ptoks, 64, &np));

    fprintf(stderr, "soak: %s, kv %s, n_ctx %u, %ld tokens, sampling every %ld\n", info.name, kv, n_ctx, total, every);
    printf("tokens,seconds,rss_kib,device_bytes,device_allocs,resets,rewinds\n");
    double t0 = now_s();
    long generated = 0, resets = 0, contexts = 0;
    long rss_warm = -1, rss_first = -1, rss_last = -1, rss_max = 0;
    long long dev_first = -1, alloc_first = -1;
    int dev_changed = 0;
    uint32_t rng = 12345;
    int32_t *hist = malloc(n_ctx * sizeof *hist); /* the tokens at positions 0..n_past of this context */
    long rewinds = 0, inexact = 0, next_rewind = 40;
    if (!hist) return 1;
    memcpy(hist, ptoks, np * sizeof *hist);
    uint32_t limit = n_ctx;
    size_t text_bytes = 0;
    const char *txt;
    size_t tl;

    TRY(vkmix_session_eval(s, ptoks, (uint32_t)np, logits, 0));
    while (generated < total) {
        int32_t tok;
        TRY(vkmix_sampler_sample(smp, logits, info.n_vocab, &tok));
        TRY(vkmix_detokenizer_push(dt, tok, &txt, &tl));
        text_bytes += tl;
        uint32_t past = vkmix_session_n_past(s);
        if (generated >= next_rewind && past > np + 40 && past < limit) {
            /* forget the last k tokens, evaluate the j before them again */
            rng = rng * 1664525u + 1013904223u;
            uint32_t k = 2 + (rng >> 8) % 96, j = 1 + (rng >> 20) % 4;
            if (k + j > past - np - 1) k = past - np - 1 - j;
            uint32_t m = past - k - j;
            inexact += !vkmix_session_rewind_is_exact(s, m);
            TRY(vkmix_session_rewind(s, m));
            TRY(vkmix_session_eval(s, hist + m, j, logits, 0));
            TRY(vkmix_detokenizer_flush(dt, &txt, &tl));
            rewinds++;
            next_rewind = generated + 40 + (long)((rng >> 12) % 64);
            continue;
        }
        if (past >= limit || vkmix_token_is_eog(model, tok)) {
            vkmix_session_reset(s);
            vkmix_sampler_reset(smp);
            TRY(vkmix_detokenizer_flush(dt, &txt, &tl));
            resets++;
            contexts++;
            rng = rng * 1664525u + 1013904223u;
            limit = contexts % 7 == 6 ? (uint32_t)(np + 1 + (rng >> 8) % (n_ctx - np - 1)) : n_ctx;

            TRY(vkmix_session_eval(s, ptoks, (uint32_t)np, logits, 0));
        } else {
            hist[past] = tok;
            TRY(vkmix_session_eval(s, &tok, 1, logits, 0));
        }
        generated++;
        if (selftest) {
            static vkmix_session *leaked[256];
            static int n_leaked;
            char *p = malloc(4096);
            if (p) memset(p, (int)generated, 4096); /* leaked on purpose */
            if (generated % 500 == 0 && n_leaked < 256) TRY(vkmix_session_create(model, &sp, &leaked[n_leaked++]));
        }
        if (generated % every == 0 || generated == total) {
            long rss = rss_kib();
            if (rss_first < 0) rss_first = rss;
            if (rss_warm < 0 && generated >= (total / 10 > 2000 ? total / 10 : 2000)) rss_warm = rss;
            if (rss > rss_max) rss_max = rss;
            rss_last = rss;
            if (dev_first < 0) {
                dev_first = live_bytes;
                alloc_first = live_count;
            } else if (live_bytes != dev_first || live_count != alloc_first) {
                dev_changed = 1;
            }
            printf("%ld,%.1f,%ld,%lld,%lld,%ld,%ld\n", generated, now_s() - t0, rss, live_bytes, live_count, resets,
                   rewinds);
            fflush(stdout);
        }
    }
    double secs = now_s() - t0;
    if (rss_warm < 0) rss_warm = rss_first;
    long growth = rss_last - rss_warm;
    int ok = !dev_changed && lost == 0 && growth <= slack;
    fprintf(stderr,
            "soak: %ld tokens in %.0f s (%.1f tokens/s), %ld resets, %ld rewinds (%ld refilled from packed groups), "
            "%zu bytes of text\n"
            "soak: device memory: %lld bytes in %lld allocations at the first sample, %s%s\n"
            "soak: RSS: %ld KiB at the first sample, %ld KiB after the warm-up, %ld KiB at the end (%+ld KiB), "
            "max %ld KiB (slack %ld)\n"
            "soak: %s\n",
            generated, secs, generated / secs, resets, rewinds, inexact, text_bytes, (long long)dev_first, (long long)alloc_first,
            dev_changed ? "CHANGED later" : "unchanged to the end", lost ? " (allocation table overflowed)" : "",
            rss_first, rss_warm, rss_last, growth, rss_max, slack, ok ? "FLAT" : "NOT FLAT");

    vkmix_detokenizer_free(dt);
    vkmix_sampler_free(smp);
    vkmix_session_free(s);
    vkmix_model_free(model);
    vkmix_context_free(ctx);
    free(logits);
    free(hist);
    fprintf(stderr, "soak: after freeing everything: %lld bytes in %lld device allocations still live\n", live_bytes,
            live_count);
    if (live_count != 0) ok = 0;
    av.destroy_device(av.dev, NULL);
    av.destroy_instance(av.inst, NULL);
    return ok ? 0 : 1;
}
