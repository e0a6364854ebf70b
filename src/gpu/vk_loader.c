/* Loading Vulkan entry points into per-context tables (see vk_loader.h). */
#include "gpu/vk_loader.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* The system loader's vkGetInstanceProcAddr: the only process-wide state, set once. */
static pthread_once_t system_once = PTHREAD_ONCE_INIT;
static PFN_vkGetInstanceProcAddr system_gipa;

static void open_system_loader(void)
{
    void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    /* POSIX: a function pointer round-trips through void * */
    void *sym = dlsym(lib, "vkGetInstanceProcAddr");
    memcpy(&system_gipa, &sym, sizeof system_gipa);
}

vkmix_error vkm_load_global(vkm_vki *t, PFN_vkGetInstanceProcAddr gipa, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (!gipa) {
        pthread_once(&system_once, open_system_loader);
        gipa = system_gipa;
    }
    if (!gipa) {
        if (err && errlen)
            snprintf(err, errlen, "could not load the Vulkan loader (libvulkan.so.1); install libvulkan1 and a driver "
                                  "(e.g. mesa-vulkan-drivers)");
        return VKMIX_ERROR_NO_VULKAN;
    }
    t->vkGetInstanceProcAddr = gipa;
#define LOAD(f) t->f = (PFN_##f)gipa(VK_NULL_HANDLE, #f);
    VKM_GLOBAL_FUNCS(LOAD)
#undef LOAD
    if (!t->vkCreateInstance || !t->vkEnumerateInstanceExtensionProperties || !t->vkEnumerateInstanceLayerProperties) {
        if (err && errlen) snprintf(err, errlen, "the Vulkan loader lacks vkCreateInstance");
        return VKMIX_ERROR_NO_VULKAN;
    }
    return VKMIX_OK;
}

static void note_missing(char *missing, size_t n, int *count, const char *name)
{
    if (missing && n) {
        size_t len = strlen(missing);
        snprintf(missing + len, n - len, "%s%s", *count ? ", " : "", name);
    }
    (*count)++;
}

int vkm_load_instance(vkm_vki *t, VkInstance inst, char *missing, size_t n)
{
    int count = 0;
    if (missing && n) missing[0] = 0;
#define LOAD(f)                                                                                                        \
    t->f = (PFN_##f)t->vkGetInstanceProcAddr(inst, #f);                                                              \
    if (!t->f) note_missing(missing, n, &count, #f);
    VKM_INSTANCE_FUNCS(LOAD)
#undef LOAD
#define LOAD_OPT(f) t->f = (PFN_##f)t->vkGetInstanceProcAddr(inst, #f);
    VKM_DEBUG_FUNCS(LOAD_OPT)
#undef LOAD_OPT
    return count;
}

int vkm_load_device(vkm_vkd *t, const vkm_vki *vki, VkDevice dev, char *missing, size_t n)
{
    int count = 0;
    if (missing && n) missing[0] = 0;
    memset(t, 0, sizeof *t);
    if (!vki->vkGetDeviceProcAddr) {
        note_missing(missing, n, &count, "vkGetDeviceProcAddr");
        return count;
    }
#define LOAD(f)                                                                                                        \
    t->f = (PFN_##f)vki->vkGetDeviceProcAddr(dev, #f);                                                               \
    if (!t->f) note_missing(missing, n, &count, #f);
    VKM_DEVICE_FUNCS(LOAD)
#undef LOAD
#define LOAD_OPT(f) t->f = (PFN_##f)vki->vkGetDeviceProcAddr(dev, #f);
    VKM_DEVICE_OPT_FUNCS(LOAD_OPT)
#undef LOAD_OPT
    return count;
}
