/*
 * vkmix: LLM inference on any Vulkan GPU with a mixed-precision, quantized KV cache.
 *
 * ---------------------------------------------------------------------------
 * How to use this API
 * ---------------------------------------------------------------------------
 * Everything is an opaque handle with a create/free pair. Every free function
 * accepts NULL. Functions return a vkmix_error (VKMIX_OK == 0); the library
 * never calls exit() or abort(). Human-readable detail for the last failure
 * of a call made through a context is in vkmix_context_last_error(ctx);
 * vkmix_context_create writes its detail into params.error_buf.
 *
 * There is no global state: two contexts, two models or two sessions on one
 * model are independent. A single handle must not be used by two threads at
 * the same time; different handles may.
 *
 *   vkmix_context  one Vulkan device (owned, or borrowed from the application)
 *   vkmix_model    weights + tokenizer loaded from a GGUF file onto a context
 *   vkmix_session  a KV cache and the scratch buffers to run a model
 *   vkmix_sampler  token sampling state (CPU side)
 *
 * ---------------------------------------------------------------------------
 * Sharing Vulkan with an application (games, engines)
 * ---------------------------------------------------------------------------
 * Fill vkmix_context_params.external with your VkInstance, VkPhysicalDevice,
 * VkDevice and a queue family/index. Ownership: the application owns all four;
 * vkmix never destroys them, and vkmix_context_free only destroys the objects
 * vkmix created (buffers, pipelines, pools). The device must have been created
 * with the features listed by vkmix_required_device_features() enabled (at
 * least: storageBuffer16BitAccess, shaderFloat16, shaderInt8, storageBuffer8BitAccess,
 * and VK_KHR_push_descriptor). The instance must be Vulkan 1.2 or newer.
 *
 * Synchronisation: every vkmix call that runs GPU work submits to the given
 * queue and waits on a fence before it returns, so when a vkmix call returns
 * no vkmix work is pending. Vulkan requires external synchronisation of a
 * VkQueue: the application must not submit to the same queue from another
 * thread while a vkmix call is running (take your own queue lock around vkmix
 * calls, or give vkmix a queue of its own).
 * ---------------------------------------------------------------------------
 */
#ifndef VKMIX_H
#define VKMIX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VKMIX_VERSION_MAJOR 0
#define VKMIX_VERSION_MINOR 1
#define VKMIX_VERSION_PATCH 0
#define VKMIX_VERSION_NUMBER (VKMIX_VERSION_MAJOR * 10000 + VKMIX_VERSION_MINOR * 100 + VKMIX_VERSION_PATCH)
#define VKMIX_VERSION_STRING "0.1.0"

/* Run-time version: compare with VKMIX_VERSION_NUMBER to detect a header/library mismatch. */
unsigned vkmix_version_number(void);
const char *vkmix_version_string(void);

/* Error codes. Values are pinned: they never change between releases. */
typedef enum vkmix_error {
    VKMIX_OK = 0,
    VKMIX_ERROR_INVALID_ARGUMENT = 1,
    VKMIX_ERROR_OUT_OF_HOST_MEMORY = 2,
    VKMIX_ERROR_OUT_OF_DEVICE_MEMORY = 3,
    VKMIX_ERROR_NO_VULKAN = 4,          /* the Vulkan loader could not be loaded */
    VKMIX_ERROR_NO_DEVICE = 5,          /* no usable Vulkan device / bad device index */
    VKMIX_ERROR_DEVICE_LOST = 6,
    VKMIX_ERROR_VULKAN = 7,             /* any other Vulkan failure */
    VKMIX_ERROR_UNSUPPORTED_DEVICE = 8, /* the device lacks a required feature */
    VKMIX_ERROR_IO = 9,                 /* a file could not be opened or read */
    VKMIX_ERROR_GGUF_MAGIC = 10,        /* not a GGUF file or unsupported GGUF version */
    VKMIX_ERROR_GGUF_TRUNCATED = 11,    /* an offset or size runs past the end of the file */
    VKMIX_ERROR_GGUF_OVERFLOW = 12,     /* a count or dimension is absurd or overflows */
    VKMIX_ERROR_GGUF_DUPLICATE = 13,    /* duplicate key or tensor name */
    VKMIX_ERROR_GGUF_BAD_TYPE = 14,     /* unknown metadata value type */
    VKMIX_ERROR_GGUF_MISSING_KEY = 15,  /* a required metadata key or tensor is missing */
    VKMIX_ERROR_GGUF_BAD_VALUE = 16,    /* a key or tensor has the wrong type or shape */
    VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE = 17,
    VKMIX_ERROR_UNSUPPORTED_ARCH = 18,
    VKMIX_ERROR_CONTEXT_OVERFLOW = 19,  /* more tokens than the session's context length */
    VKMIX_ERROR_BAD_PROFILE = 20,       /* a KV profile is malformed or does not fit the model */
    VKMIX_ERROR_TOKENIZER = 21,
    VKMIX_ERROR_CANCELLED = 22,
    VKMIX_ERROR_INTERNAL = 23,
    VKMIX_ERROR_COUNT_ = 24
} vkmix_error;

/* A static string describing the code; never NULL. */
const char *vkmix_strerror(vkmix_error err);

/* --------------------------------------------------------------------------- devices */

typedef enum vkmix_device_type {
    VKMIX_DEVICE_OTHER = 0,
    VKMIX_DEVICE_INTEGRATED = 1,
    VKMIX_DEVICE_DISCRETE = 2,
    VKMIX_DEVICE_VIRTUAL = 3,
    VKMIX_DEVICE_CPU = 4
} vkmix_device_type;

typedef struct vkmix_device_info {
    char name[256];
    uint32_t vendor_id, device_id;
    vkmix_device_type type;
    uint32_t api_version;          /* VK_MAKE_API_VERSION encoded */
    uint64_t device_local_bytes;   /* size of the largest device-local heap */
    int usable;                    /* 1 when vkmix can run on it */
} vkmix_device_info;

/* Lists Vulkan devices. Writes up to `cap` entries to `out` (may be NULL when cap
 * is 0) and the total count to *count. */
vkmix_error vkmix_list_devices(vkmix_device_info *out, uint32_t cap, uint32_t *count,
                               char *error_buf, size_t error_buf_size);

/* --------------------------------------------------------------------------- context */

typedef struct vkmix_context vkmix_context;

/* Handles owned by the application (see "Sharing Vulkan" above). The pointer
 * fields hold VkInstance, VkPhysicalDevice, VkDevice and PFN_vkGetInstanceProcAddr. */
typedef struct vkmix_external_vulkan {
    void *instance;
    void *physical_device;
    void *device;
    uint32_t queue_family;
    uint32_t queue_index;
    void *get_instance_proc_addr;  /* may be NULL: then the system loader's is used */
} vkmix_external_vulkan;

typedef struct vkmix_context_params {
    int device_index;        /* -1: automatic (discrete GPU first); the env var VKMIX_DEVICE overrides -1 */
    int enable_validation;   /* 1: enable VK_LAYER_KHRONOS_validation; env VKMIX_VALIDATION=1 also does */
    const vkmix_external_vulkan *external; /* NULL: vkmix creates its own instance and device */
    char *error_buf;         /* optional: receives a message when creation fails */
    size_t error_buf_size;
} vkmix_context_params;

void vkmix_context_default_params(vkmix_context_params *params);
vkmix_error vkmix_context_create(const vkmix_context_params *params, vkmix_context **out);
void vkmix_context_free(vkmix_context *ctx);
/* Detail of the last failure of a call made with this context ("" when none). */
const char *vkmix_context_last_error(const vkmix_context *ctx);
/* Fills *info for the context's device. */
vkmix_error vkmix_context_device_info(const vkmix_context *ctx, vkmix_device_info *info);
/* Number of validation-layer messages of warning or error severity seen so far
 * (always 0 when validation is off). Tests use it to fail on any message. */
uint32_t vkmix_context_validation_messages(const vkmix_context *ctx);
/* A multi-line, human-readable description of the device capabilities vkmix uses. */
vkmix_error vkmix_context_describe(const vkmix_context *ctx, char *buf, size_t buf_size);

/* --------------------------------------------------------------------------- KV quantization (low level) */

/* Group-wise asymmetric min/max quantization of KV data, as the cache stores it.
 * Layout of a head's data given to these functions (FP16, row-major):
 *   x[token][channel], n_tokens x head_dim, for each of n_heads heads.
 * Keys   (VKMIX_KV_KEYS):   per channel, groups of `group` consecutive tokens.
 *                           n_tokens must be a multiple of group.
 * Values (VKMIX_KV_VALUES): per token, groups of `group` channels along head_dim;
 *                           group must divide head_dim (group == head_dim is "whole head").
 * Packed sizes come from vkmix_kvq_sizes. bits is 2, 3, 4 or 8. */
typedef enum vkmix_kv_kind { VKMIX_KV_KEYS = 0, VKMIX_KV_VALUES = 1 } vkmix_kv_kind;

typedef struct vkmix_kvq_shape {
    vkmix_kv_kind kind;
    uint32_t bits;       /* 2, 3, 4, 8 */
    uint32_t group;      /* 32, 64, 128, or head_dim (values only) */
    uint32_t head_dim;
    uint32_t n_heads;
    uint32_t n_tokens;
} vkmix_kvq_shape;

typedef struct vkmix_kvq_sizes {
    uint64_t code_bytes;     /* packed codes */
    uint64_t meta_bytes;     /* FP16 scale + FP16 min for every group */
} vkmix_kvq_sizes;

vkmix_error vkmix_kvq_sizes_for(const vkmix_kvq_shape *shape, vkmix_kvq_sizes *out);

/* Round trip through the GPU: quantize `x` (FP16 bits) into codes + meta, then
 * dequantize back to FP16 in `y`. Any of codes/meta/y may be NULL when not
 * wanted. Used by the tests and the benchmark. */
vkmix_error vkmix_kvq_roundtrip_gpu(vkmix_context *ctx, const vkmix_kvq_shape *shape,
                                    const uint16_t *x, uint32_t *codes, uint32_t *meta,
                                    uint16_t *y);

/* The CPU reference of the same computation, bit-exact for codes and meta. */
vkmix_error vkmix_kvq_quantize_cpu(const vkmix_kvq_shape *shape, const uint16_t *x,
                                   uint32_t *codes, uint32_t *meta);
vkmix_error vkmix_kvq_dequantize_cpu(const vkmix_kvq_shape *shape, const uint32_t *codes,
                                     const uint32_t *meta, uint16_t *y);

/* Kernel benchmark: times the plain copy kernel, quantize and dequantize on the
 * context's device with GPU timestamps (median of `reps`, after a warm-up).
 * Bytes are counted as read + written, once each. */
typedef struct vkmix_kvq_bench {
    double copy_ms, copy_bytes;
    double quant_ms, quant_bytes;
    double dequant_ms, dequant_bytes;
} vkmix_kvq_bench;
vkmix_error vkmix_kvq_bench_run(vkmix_context *ctx, const vkmix_kvq_shape *shape, uint32_t reps,
                                vkmix_kvq_bench *out);

/* FP16 helpers (IEEE binary16 bit patterns). */
uint16_t vkmix_f32_to_f16(float f);
float vkmix_f16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif /* VKMIX_H */
