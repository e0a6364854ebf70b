/* The Vulkan device layer: instance and device, the capability struct, buffers,
 * command recording and submission. Private to the library. */
#ifndef VKM_VK_DEVICE_H
#define VKM_VK_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "core/error.h"
#include "gpu/vk_loader.h"
#include "vkmix.h"

/* What the device can do, filled once at context creation. Shaders never assume
 * a subgroup size or a limit: they get these values as specialization constants. */
typedef struct vkm_caps {
    char device_name[256];
    uint32_t vendor_id, device_id, driver_version, api_version;
    VkPhysicalDeviceType type;
    /* arithmetic and storage */
    bool fp16_arith, int8_arith, storage16, storage8, int64;
    bool int_dot;                        /* shaderIntegerDotProduct (4x8-bit packed dot products) */
    bool int_dot_accel;                  /* ... and the 4x8-bit packed ones are accelerated */
    /* subgroups */
    uint32_t subgroup_size, subgroup_min, subgroup_max;
    bool subgroup_size_control, subgroup_arith, subgroup_shuffle, subgroup_ballot;
    /* limits */
    uint32_t max_shared_bytes;           /* maxComputeSharedMemorySize */
    uint32_t max_wg_invocations;         /* maxComputeWorkGroupInvocations */
    uint32_t max_wg_count[3];
    uint64_t max_storage_range;          /* maxStorageBufferRange */
    uint64_t max_alloc;                  /* maxMemoryAllocationSize */
    uint32_t storage_align;              /* minStorageBufferOffsetAlignment */
    uint32_t max_push_constants;
    float timestamp_period_ns;           /* 0 when the queue cannot time */
    uint32_t timestamp_valid_bits;
    /* memory */
    uint64_t device_local_bytes;         /* largest device-local heap */
    uint64_t device_local_budget;        /* from VK_EXT_memory_budget when present, else the heap size */
    bool memory_budget_ext;
    bool unified_memory;                 /* a device-local heap that is also host-visible covers everything */
    /* matrix units */
    bool coopmat_khr, coopmat_nv;        /* the extensions are listed */
    bool coopmat_nv_feature;             /* VK_NV_cooperative_matrix usable in compute (feature, stage, memory model) */
    uint32_t n_coopmat;                  /* vkGetPhysicalDeviceCooperativeMatrixPropertiesNV, subgroup scope */
    struct vkm_coopmat_shape {
        uint32_t m, n, k;                /* C[m][n] += A[m][k] B[k][n] */
        uint32_t a_type, c_type;         /* VkComponentTypeNV of A (= B) and of C (= D) */
    } coopmat[16];
    bool pipeline_exec_props;            /* VK_KHR_pipeline_executable_properties (compiler statistics) */
    bool buffer_device_address;
    /* named quirks: each one names the hardware it is for */
    bool quirk_cpu_device;               /* lavapipe / llvmpipe (Mesa, CPU): tiny storage range, slow: tests size down */
    bool quirk_nvidia;                   /* NVIDIA proprietary: prefers 32-wide subgroups, wide uvec4 loads */
} vkm_caps;

typedef struct vkm_device {
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice device;
    VkQueue queue;
    uint32_t queue_family;
    bool owns_instance, owns_device;
    bool int_dot_on;                     /* shaderIntegerDotProduct enabled (own devices only) */
    bool coopmat_on;                     /* VK_NV_cooperative_matrix and vulkanMemoryModel enabled (own devices only) */
    bool bda;                            /* bufferDeviceAddress is enabled: buffers have device addresses */
    bool pipeline_stats;                 /* VKMIX_PIPELINE_STATS=1: log each pipeline's compiler statistics */
    vkm_vki vki;                         /* loader- and instance-level entry points of this context */
    vkm_vkd vk;                          /* device-level entry points of this device */
    vkmix_log_fn log;                    /* the application's log callback (may be NULL) */
    void *log_user;
    vkmix_log_level log_level;
    VkDebugUtilsMessengerEXT messenger;
    uint32_t validation_messages;        /* warnings + errors seen by the messenger */
    uint64_t buffer_bytes;               /* sizes of the live vkm_buffers (atomic; tests check what a session holds) */
    pthread_mutex_t queue_lock;          /* held around every vkQueueSubmit / vkQueueWaitIdle */
    bool queue_lock_ok;                  /* queue_lock was initialized */
    VkPipelineCache pipeline_cache;
    uint32_t mem_type_device;            /* device-local */
    uint32_t mem_type_host;              /* host-visible + coherent (staging) */
    uint32_t mem_type_host_cached;       /* host-visible + cached, for downloads; == mem_type_host when none */
    vkm_caps caps;
} vkm_device;

#define VKM_MAX_TIMESTAMPS 64

/* Fills *dev from scratch (own instance and device) or around application handles. */
vkmix_error vkm_device_create(vkm_device *dev, const vkmix_context_params *p, char *err, size_t errlen);
/* Around a borrowed device (vk_external.c): checks what the application says it
 * enabled and the entry points, fills caps with what is enabled. */
vkmix_error vkm_device_adopt(vkm_device *dev, const vkmix_external_vulkan *ext, char *err, size_t errlen);
/* Objects vkmix creates on any device, owned or borrowed (queue, memory types, pipeline cache). */
vkmix_error vkm_device_objects(vkm_device *dev, uint32_t queue_index);
/* A message for the application's log callback (nothing when none or above its level). */
void vkm_log(const vkm_device *dev, vkmix_log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void vkm_device_destroy(vkm_device *dev);
vkmix_error vkm_list_devices(vkmix_device_info *out, uint32_t cap, uint32_t *count, char *err, size_t errlen);
/* Map a VkResult to a vkmix_error and write `what` into the calling thread's error buffer. */
vkmix_error vkm_vk_error(vkm_device *dev, VkResult r, const char *what);
/* printf-style message into the calling thread's error buffer (core/error.h); returns e. */
vkmix_error vkm_fail(vkm_device *dev, vkmix_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Human readable capabilities. */
void vkm_caps_describe(const vkm_caps *c, char *buf, size_t n);
/* vk_caps.c: what a physical device supports, and why it cannot run vkmix (NULL when it can). */
void vkm_caps_fill(const vkm_vki *vki, VkPhysicalDevice pd, vkm_caps *c);
const char *vkm_caps_unusable(const vkm_vki *vki, VkPhysicalDevice pd, const vkm_caps *c);
bool vkm_has_device_ext(const vkm_vki *vki, VkPhysicalDevice pd, const char *name);
vkmix_error vkm_map_vk(VkResult r);

/* ------------------------------------------------------------------ buffers */
typedef enum { VKM_MEM_DEVICE = 0, VKM_MEM_HOST = 1, VKM_MEM_READBACK = 2 } vkm_mem_kind;

typedef struct vkm_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
    void *mapped;      /* non-NULL for host-visible buffers */
} vkm_buffer;

vkmix_error vkm_buffer_create(vkm_device *dev, vkm_buffer *b, uint64_t size, vkm_mem_kind kind);
void vkm_buffer_destroy(vkm_device *dev, vkm_buffer *b);
/* The device address of a buffer (0 when bufferDeviceAddress is not enabled or b is empty). */
uint64_t vkm_buffer_address(vkm_device *dev, const vkm_buffer *b);

/* ------------------------------------------------------------------ commands */
/* A recording target: its own command pool, command buffer and fence (and
 * timestamp queries when asked for). Every GPU op records into the vkm_cmd its
 * caller passes; nothing records into a buffer shared by the device, so two
 * threads with two vkm_cmd never touch the same pool. A vkm_cmd is used by one
 * thread at a time (a session owns one; context-level calls make their own). */
typedef struct vkm_cmd {
    vkm_device *dev;
    struct vkmix_context *ctx;   /* the context of the ops recorded here (opaque in src/gpu) */
    VkCommandPool pool;
    VkCommandBuffer cb;
    VkFence fence;
    VkQueryPool timestamps;      /* VKM_MAX_TIMESTAMPS queries, or VK_NULL_HANDLE */
    /* device memory an op may need while recording (vkm_op_matmul's quantized
     * activations): grown on demand, an outgrown one kept until vkm_cmd_destroy
     * (commands recorded before may still use it) */
    vkm_buffer scratch, scratch_old[8];
    uint32_t n_scratch_old;
    uint32_t n_dispatch, n_barrier;   /* recorded since vkm_cmd_begin (benchmarks count them per step) */
} vkm_cmd;

/* timestamps: also create the query pool (when the queue can time). */
vkmix_error vkm_cmd_create(vkm_cmd *c, vkm_device *dev, struct vkmix_context *ctx, bool timestamps);
void vkm_cmd_destroy(vkm_cmd *c);

/* A binding: a range of a buffer. size VK_WHOLE_SIZE binds to the end. */
typedef struct vkm_binding { const vkm_buffer *buf; uint64_t offset, size; } vkm_binding;
#define VKM_BIND(b) ((vkm_binding){ &(b), 0, VK_WHOLE_SIZE })
#define VKM_BIND_RANGE(b, off, sz) ((vkm_binding){ &(b), (off), (sz) })

struct vkm_pipeline;
/* Start recording into c's command buffer. */
vkmix_error vkm_cmd_begin(vkm_cmd *c);
/* Record one dispatch: push the bindings (push descriptors) and push constants. */
void vkm_cmd_dispatch(vkm_cmd *c, const struct vkm_pipeline *p, const vkm_binding *bindings,
                      uint32_t n_bindings, const void *push, uint32_t push_size,
                      uint32_t gx, uint32_t gy, uint32_t gz);
/* A full compute->compute memory barrier (the next dispatch sees all writes). */
void vkm_cmd_barrier(vkm_cmd *c);
void vkm_cmd_copy(vkm_cmd *c, const vkm_buffer *src, uint64_t so, const vkm_buffer *dst, uint64_t dof, uint64_t n);
/* vkCmdFillBuffer of the whole buffer with a 32-bit pattern. */
void vkm_cmd_fill(vkm_cmd *c, const vkm_buffer *dst, uint32_t value);
/* Write timestamp `slot` (0 <= slot < VKM_MAX_TIMESTAMPS); nothing without a
 * query pool. Slots used in one recording are reset by vkm_cmd_begin. */
void vkm_cmd_timestamp(vkm_cmd *c, uint32_t slot);
/* Submit (under the device's queue lock) and wait on c's fence. */
vkmix_error vkm_cmd_submit(vkm_cmd *c);
/* After submit: nanoseconds between two timestamp slots. */
vkmix_error vkm_timestamp_ns(vkm_cmd *c, uint32_t from, uint32_t to, double *ns);

/* Copy host data into a device buffer (through a temporary staging buffer,
 * recorded and submitted on c) and back; a mapped buffer is a plain memcpy. */
vkmix_error vkm_buffer_upload(vkm_cmd *c, vkm_buffer *dst, uint64_t offset, const void *src, uint64_t n);
vkmix_error vkm_buffer_download(vkm_cmd *c, const vkm_buffer *src, uint64_t offset, void *dst, uint64_t n);
vkmix_error vkm_buffer_fill(vkm_cmd *c, vkm_buffer *dst, uint32_t value);

#endif
