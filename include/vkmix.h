/*
 * vkmix: LLM inference on any Vulkan GPU with a mixed-precision, quantized KV cache.
 *
 * ---------------------------------------------------------------------------
 * How to use this API
 * ---------------------------------------------------------------------------
 * Everything is an opaque handle with a create/free pair. Every free function
 * accepts NULL. Functions return a vkmix_error (VKMIX_OK == 0); the library
 * never calls exit() or abort() and never writes to stdout or stderr (its
 * messages go to the log callback of vkmix_context_params). The detail of a
 * failure is in vkmix_context_last_error(); vkmix_context_create also writes
 * it into params.error_buf.
 *
 *   vkmix_context  one Vulkan device (owned, or borrowed from the application)
 *   vkmix_model    weights + tokenizer loaded from a GGUF file onto a context
 *   vkmix_session  a KV cache and the scratch buffers to run a model
 *   vkmix_sampler  token sampling state (CPU side)
 *
 * Threads. There is no global state. Every object may be used from its own
 * thread while other objects of the same context are used from others: two
 * sessions of one model decode at the same time from two threads, a model is
 * shared read-only by the sessions of all threads, two contexts run side by
 * side. Each session records into its own command buffer with its own fence
 * and scratch; the context serializes submissions to its queue with a lock and
 * builds pipelines under another. Rules:
 *   - one handle is used by one thread at a time (vkmix_batch_decode uses
 *     every session of its batch);
 *   - free sessions before their model and models before their context, after
 *     the calls that use them have returned;
 *   - error messages are per thread: vkmix_context_last_error returns the
 *     detail of the calling thread's last failed call (whatever its context),
 *     and no thread sees another thread's message;
 *   - the log callback may be called from any thread (make it thread-safe).
 *
 * ---------------------------------------------------------------------------
 * Sharing Vulkan with an application (games, engines)
 * ---------------------------------------------------------------------------
 * libvkmix.a defines and references no vk* symbol: it loads Vulkan through
 * per-context function tables, so an application may include vulkan/vulkan.h
 * and link -lvulkan itself (examples/host_vulkan.c).
 *
 * Fill vkmix_context_params.external with your VkInstance, VkPhysicalDevice,
 * VkDevice and a queue family/index, and with what the device was created
 * with: its enabled extensions and its chain of feature structures. Ownership:
 * the application owns all four handles; vkmix never destroys them, and
 * vkmix_context_free only destroys the objects vkmix created (buffers,
 * pipelines, pools) after waiting for its own work. The device must have been
 * created with VK_KHR_push_descriptor and the features storageBuffer16BitAccess,
 * shaderFloat16, shaderInt8 and storageBuffer8BitAccess; the instance must be
 * Vulkan 1.2 or newer. vkmix_context_create checks all of it and refuses a
 * device that lacks any (VKMIX_ERROR_UNSUPPORTED_DEVICE, naming each missing
 * item), and checks that every device command it uses resolves.
 *
 * Synchronisation: every vkmix call that runs GPU work submits to the given
 * queue and waits on its own fence before it returns, so when a vkmix call
 * returns no work of that call is pending. Vulkan requires external
 * synchronisation of a VkQueue: vkmix holds the context's queue lock around
 * each of its vkQueueSubmit / vkQueueWaitIdle calls. An application that
 * submits to the same queue from other threads takes the same lock around its
 * own submits with vkmix_context_lock_queue / vkmix_context_unlock_queue (or
 * gives vkmix a queue of its own). Submissions interleave; nothing else of the
 * application's work is waited for.
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
    VKMIX_ERROR_BAD_STATE = 24,         /* a saved session state is malformed, or of another model or KV configuration */
    VKMIX_ERROR_COUNT_ = 25
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
 * fields hold VkInstance, VkPhysicalDevice, VkDevice and PFN_vkGetInstanceProcAddr.
 * Vulkan cannot report what a VkDevice was created with, so the application
 * also says which extensions and features it enabled; vkmix_context_create
 * refuses a device that lacks any of vkmix's requirements and names each one. */
typedef struct vkmix_external_vulkan {
    void *instance;
    void *physical_device;
    void *device;
    uint32_t queue_family;
    uint32_t queue_index;
    void *get_instance_proc_addr;  /* may be NULL: then the system loader's is used */
    /* What the device was created with (added in 0.1; required): */
    const char *const *enabled_extensions;  /* VkDeviceCreateInfo.ppEnabledExtensionNames */
    uint32_t enabled_extension_count;       /* VkDeviceCreateInfo.enabledExtensionCount */
    const void *enabled_features;           /* VkDeviceCreateInfo.pNext: the chain of feature structures
                                             * (VkPhysicalDeviceFeatures2, VkPhysicalDeviceVulkan11Features,
                                             * VkPhysicalDeviceVulkan12Features, VkPhysicalDevice16BitStorageFeatures,
                                             * ...); other structures in the chain are skipped */
} vkmix_external_vulkan;

/* Log messages of the library (it never writes to stdout or stderr itself). */
typedef enum vkmix_log_level {
    VKMIX_LOG_ERROR = 0,    /* validation-layer errors */
    VKMIX_LOG_WARN = 1,     /* validation-layer warnings */
    VKMIX_LOG_INFO = 2,     /* what the context chose (device, queue) */
    VKMIX_LOG_DEBUG = 3
} vkmix_log_level;
/* May be called from any thread that calls into vkmix, and from the driver's
 * threads (validation messages): it must be thread-safe. `message` is valid
 * during the call only. */
typedef void (*vkmix_log_fn)(vkmix_log_level level, const char *message, void *user);

typedef struct vkmix_context_params {
    int device_index;        /* -1: automatic (discrete GPU first); the env var VKMIX_DEVICE overrides -1 */
    int enable_validation;   /* 1: enable VK_LAYER_KHRONOS_validation; env VKMIX_VALIDATION=1 also does */
    const vkmix_external_vulkan *external; /* NULL: vkmix creates its own instance and device */
    char *error_buf;         /* optional: receives a message when creation fails */
    size_t error_buf_size;
    vkmix_log_fn log;        /* optional: receives the library's messages of level <= log_level */
    void *log_user;
    vkmix_log_level log_level; /* default VKMIX_LOG_WARN */
} vkmix_context_params;

void vkmix_context_default_params(vkmix_context_params *params);
vkmix_error vkmix_context_create(const vkmix_context_params *params, vkmix_context **out);
void vkmix_context_free(vkmix_context *ctx);
/* Detail of the calling thread's last failed call ("" when the last call
 * succeeded). Per thread, not per context: ctx may be NULL. Valid until the
 * thread's next vkmix call. */
const char *vkmix_context_last_error(const vkmix_context *ctx);
/* Fills *info for the context's device. */
vkmix_error vkmix_context_device_info(const vkmix_context *ctx, vkmix_device_info *info);
/* Number of validation-layer messages of warning or error severity seen so far
 * (always 0 when validation is off). Tests use it to fail on any message. */
uint32_t vkmix_context_validation_messages(const vkmix_context *ctx);
/* A multi-line, human-readable description of the device capabilities vkmix uses. */
vkmix_error vkmix_context_describe(const vkmix_context *ctx, char *buf, size_t buf_size);
/* The lock vkmix holds around each of its submissions to the context's queue
 * (see "Synchronisation" above): an application that submits to the same
 * VkQueue from other threads holds it around its own vkQueueSubmit. Not
 * recursive; do not call vkmix functions while holding it. */
void vkmix_context_lock_queue(vkmix_context *ctx);
void vkmix_context_unlock_queue(vkmix_context *ctx);

/* --------------------------------------------------------------------------- models */

typedef struct vkmix_model vkmix_model;
typedef struct vkmix_session vkmix_session;

/* Called while a model loads and uploads: fraction in [0, 1]. */
typedef void (*vkmix_progress_fn)(float fraction, void *user);

typedef struct vkmix_model_params {
    vkmix_progress_fn progress;   /* optional */
    void *progress_user;
} vkmix_model_params;

typedef struct vkmix_model_info {
    char arch[32];                /* "llama", "qwen2" */
    char name[128];               /* general.name, or the file name */
    char weight_type[16];         /* type of most weights, e.g. "Q8_0" */
    uint32_t n_layer, n_head, n_head_kv, head_dim, n_embd, n_ff, n_vocab, n_ctx_train;
    uint64_t weight_bytes;        /* bytes of weights on the device */
    int32_t bos, eos;             /* -1 when absent */
} vkmix_model_info;

void vkmix_model_default_params(vkmix_model_params *params);
/* Maps a GGUF file, checks it and uploads the weights to the context's device.
 * The model keeps a reference to ctx: free the model before the context. */
vkmix_error vkmix_model_load(vkmix_context *ctx, const char *path, const vkmix_model_params *params,
                             vkmix_model **out);
void vkmix_model_free(vkmix_model *model);
vkmix_error vkmix_model_get_info(const vkmix_model *model, vkmix_model_info *info);
/* A model with random weights and the shapes of a real one, generated on the
 * device in seconds (for benchmarks). name: "llama3-8b", "mistral-7b",
 * "qwen2.5-0.5b" or "tiny"; wtype: "f32", "f16", "bf16", "q8_0", "q4_0",
 * "q4_k" or "q6_k". Its vocabulary is synthetic: token ids are meaningful,
 * text is not. */
vkmix_error vkmix_model_create_synthetic(vkmix_context *ctx, const char *name, const char *wtype, uint64_t seed,
                                         vkmix_model **out);
/* The names vkmix_model_create_synthetic knows, comma-separated. */
const char *vkmix_synthetic_models(void);
/* Rewrites a GGUF model with its matrices in another weight type ("f16", "q8_0",
 * "q4_0"; norms, biases and rows that the type cannot hold stay as they are).
 * All metadata is copied, general.file_type updated to the new type (see
 * vkmix_convert_stats). Errors name the tensor; err may be NULL. */
vkmix_error vkmix_convert_gguf(const char *in_path, const char *out_path, const char *type, char *err, size_t errlen);
/* What vkmix_convert_gguf_stats converted. general.file_type is written as
 * llama.cpp's "mostly TYPE" value (f16 1, q4_0 2, q8_0 7) when at least one
 * tensor was converted; otherwise the input's is kept. */
typedef struct vkmix_convert_stats {
    uint32_t n_tensors;        /* tensors in the file */
    uint32_t n_converted;      /* rewritten in the new type */
    uint32_t n_kept_type;      /* already of the new type */
    uint64_t bytes_in, bytes_out;  /* tensor data before and after */
    int32_t file_type_in;      /* general.file_type of the input, -1 when absent */
    int32_t file_type_out;     /* the value written, -1 when none */
    /* optional: called for every tensor (from_type == to_type: copied as is) */
    void (*on_tensor)(const char *name, const char *from_type, const char *to_type, void *user);
    void *user;
} vkmix_convert_stats;
/* vkmix_convert_gguf, and what it did in *stats (may be NULL; on_tensor and user
 * are read from it). */
vkmix_error vkmix_convert_gguf_stats(const char *in_path, const char *out_path, const char *type,
                                     vkmix_convert_stats *stats, char *err, size_t errlen);
/* tokenizer.chat_template, or NULL. */
const char *vkmix_model_chat_template(const vkmix_model *model);

/* --------------------------------------------------------------------------- tokens */

/* Text -> token ids. add_bos: prepend BOS when the vocabulary asks for it.
 * parse_special: texts of control tokens (e.g. "<|im_start|>") become those tokens.
 * cap too small: VKMIX_ERROR_INVALID_ARGUMENT with *n_out = the count needed. */
vkmix_error vkmix_tokenize(const vkmix_model *model, const char *text, size_t len, int add_bos, int parse_special,
                           int32_t *out, size_t cap, size_t *n_out);
/* The bytes of one token (control tokens give ""). */
vkmix_error vkmix_token_to_piece(const vkmix_model *model, int32_t id, char *buf, size_t cap, size_t *n_out);
/* 1 when the token ends a generation (EOS, EOT, <|im_end|> ...). */
int vkmix_token_is_eog(const vkmix_model *model, int32_t id);
/* Id of the token whose text is exactly `text`, or -1. */
int32_t vkmix_token_find(const vkmix_model *model, const char *text);

/* Streaming detokenizer: push ids, get back only whole UTF-8 characters. The
 * returned text is owned by the detokenizer and valid until its next call. */
typedef struct vkmix_detokenizer vkmix_detokenizer;
vkmix_error vkmix_detokenizer_create(const vkmix_model *model, vkmix_detokenizer **out);
void vkmix_detokenizer_free(vkmix_detokenizer *d);
vkmix_error vkmix_detokenizer_push(vkmix_detokenizer *d, int32_t id, const char **text, size_t *len);
vkmix_error vkmix_detokenizer_flush(vkmix_detokenizer *d, const char **text, size_t *len);

/* --------------------------------------------------------------------------- KV cache configuration */

/*
 * The typed configuration of a session's KV cache (docs/KVCACHE.md). Strings
 * are a convenience over it: vkmix_kv_config_parse reads "f16", "k4v2",
 * "k4v2:g=64:w=256:s=4" or a profile path; vkmix_kv_profile_read and
 * vkmix_kv_profile_write load and save the JSON profile format.
 */

#define VKMIX_KV_MAX_LAYERS 512

typedef enum vkmix_kv_policy {
    VKMIX_KV_POLICY_LAYER = 0,   /* a key and a value width per layer (uniform, or a profile: KVmix) */
    VKMIX_KV_POLICY_MIKV = 1,    /* precision per token by attention received (MiKV) */
    VKMIX_KV_POLICY_MIXKVQ = 2,  /* precision per key channel by salience (MixKVQ) */
    VKMIX_KV_POLICY_COUNT_ = 3
} vkmix_kv_policy;

/* MiKV (arXiv 2402.18096), on top of the per-layer widths: of the tokens that
 * leave the FP16 window, the important_fraction that received the most
 * attention keep high_bits; the others take the layer's widths. */
typedef struct vkmix_kv_mikv_params {
    float important_fraction;    /* in (0, 1); default 0.10 */
    uint32_t high_bits;          /* 8 or 16; default 8 */
    int outlier_balancer;        /* 1 (default): per-channel key/query balancing factors measured at prefill */
} vkmix_kv_mikv_params;

/* MixKVQ (arXiv 2512.19206): the key channels of each block leaving the
 * window are tiered FP16 / 4 bits / 2 bits by salience (mean |q| of recent
 * queries times the channel's quantization step); values keep the layer's width. */
typedef struct vkmix_kv_mixkvq_params {
    float target_key_bits;       /* average key code width of a block's channels, in [2, 16]; 0 (default): the layer's key width */
    float threshold_fp16;        /* > 0: explicit thresholds, capped by the target's budget: salience >= threshold_fp16 is FP16, */
    float threshold_4bit;        /*      >= threshold_4bit is 4 bits, the rest 2 bits (threshold_fp16 >= threshold_4bit) */
    uint32_t block;              /* tokens per tier decision, a multiple of the group; 0 (default): the group */
    uint32_t recent_queries;     /* query positions averaged into the channel importance; 0 (default): the window */
} vkmix_kv_mixkvq_params;

typedef struct vkmix_kv_config {
    vkmix_kv_policy policy;
    /* Widths per layer: 2, 3, 4, 8 or 16 (16 = FP16). n_layer is the number of
     * entries, which must match the model; n_layer = 0 is a uniform config for
     * any model: every one of the VKMIX_KV_MAX_LAYERS entries holds the widths. */
    uint32_t n_layer;
    uint8_t k_bits[VKMIX_KV_MAX_LAYERS];
    uint8_t v_bits[VKMIX_KV_MAX_LAYERS];
    uint32_t group;              /* G, tokens per key group (32, 64, 128); 0: 32 */
    uint32_t window;             /* R >= G, the newest tokens kept in FP16; 0: 128 */
    uint32_t sinks;              /* S, the first tokens kept in FP16 forever */
    vkmix_kv_mikv_params mikv;   /* used by VKMIX_KV_POLICY_MIKV */
    vkmix_kv_mixkvq_params mixkvq; /* used by VKMIX_KV_POLICY_MIXKVQ */
    char name[64];               /* a label: "f16", "k4v2", a profile's file name */
} vkmix_kv_config;

/* FP16 everywhere, the per-layer policy, default geometry and policy parameters. */
void vkmix_kv_config_default(vkmix_kv_config *c);
/* A spec into *c (c is reset first):
 *   spec = base (":" option)*
 *   base = "f16" | "kXvY" (X, Y in 2, 3, 4, 8, 16) | a path ending in ".json" (a profile)
 *   options: g=G w=R s=S policy=layer|mikv|mixkvq;
 *            mikv: frac=F hi=8|16 balance=0|1; mixkvq: kbits=B t16=T t4=T block=N queries=N
 * e.g. "k4v2:g=64:w=256". VKMIX_ERROR_BAD_PROFILE (VKMIX_ERROR_IO for an
 * unreadable profile) with a message in err that names the problem. The
 * result is checked as vkmix_kv_config_check does without a model. */
vkmix_error vkmix_kv_config_parse(const char *spec, vkmix_kv_config *c, char *err, size_t errlen);
/* Checks a configuration; model (may be NULL: only what does not depend on the
 * model) gives the layer count and head size, n_ctx (0: not checked) the
 * context. VKMIX_ERROR_BAD_PROFILE with a message that names the layer or field. */
vkmix_error vkmix_kv_config_check(const vkmix_kv_config *c, const vkmix_model_info *model, uint32_t n_ctx, char *err,
                                  size_t errlen);
/* Loads a JSON profile (format "vkmix-kv-profile", versions 1 and 2):
 *   {"format":"vkmix-kv-profile","version":2,"policy":"layer","n_layer":N,
 *    "group":G,"window":R,"sinks":S,"layers":[{"k":bits,"v":bits},...],
 *    "mikv":{...},"mixkvq":{...},"provenance":{...} or "text"}
 * group/window/sinks may be absent (0: the defaults); the provenance is not
 * read. name becomes the file's base name. Errors as vkmix_kv_config_parse. */
vkmix_error vkmix_kv_profile_read(const char *path, vkmix_kv_config *c, char *err, size_t errlen);
/* Writes c as a version 2 profile (c->n_layer must be set: a profile lists every
 * layer). Geometry of 0 is left out; the parameters of the configured policy are
 * written. provenance_json: NULL or the text of a JSON object (where the profile
 * comes from), embedded as is. VKMIX_ERROR_IO when the file cannot be written. */
vkmix_error vkmix_kv_profile_write(const vkmix_kv_config *c, const char *path, const char *provenance_json, char *err,
                                   size_t errlen);

/* --------------------------------------------------------------------------- sessions */

typedef struct vkmix_session_params {
    uint32_t n_ctx;        /* context length in tokens; 0: min(model's training context, 4096) */
    uint32_t n_batch;      /* prefill chunk size in tokens; 0: 256 */
    /* KV cache configuration (docs/KVCACHE.md), from the first of:
     *   kv_config:  a typed configuration (then kv and kv_profile must be NULL);
     *   kv_profile: a JSON profile file with per-layer widths (vkmix_kv_profile_read);
     *   kv:         a spec for vkmix_kv_config_parse: NULL or "f16" (FP16 everywhere), "kXvY"
     *               with X, Y in {2, 3, 4, 8, 16} (uniform widths), options such as "k4v2:g=64";
     * and, when non-zero, these override the configuration's:
     *   kv_group:   G, tokens per key group and channels per value group (32, 64, 128; default 32);
     *               value groups use head_dim when G does not divide it;
     *   kv_window:  R >= G, the newest tokens kept in FP16 (default 128);
     *   kv_sinks:   S, the first tokens kept in FP16 forever (default 0). */
    const char *kv;
    const char *kv_profile;
    uint32_t kv_group, kv_window, kv_sinks;
    const vkmix_kv_config *kv_config;   /* NULL: kv_profile or kv; read during the call only */
    /* batch_rows: the rows of a vkmix_batch_decode led by this session (it is the first of the
     * batch) that run through one forward pass and one set of attention dispatches; larger
     * batches run in chunks. Their activations, logits and attention partials (about
     * batch_rows x n_head x (head_dim + 2) x 4 x 140 bytes) are allocated at creation; 0: 1,
     * at most 1024. */
    uint32_t batch_rows;
} vkmix_session_params;

typedef struct vkmix_kv_memory {
    uint64_t total_bytes;      /* everything the cache allocates on the device */
    uint64_t code_bytes;       /* packed codes (0 for f16) */
    uint64_t meta_bytes;       /* FP16 scales and mins */
    uint64_t fp16_bytes;       /* FP16 storage: ring, sinks, or the whole f16 cache */
    uint64_t aux_bytes;        /* a policy's own state (tier maps, permutations, importance); 0 for per-layer widths */
    double k_bits, v_bits;     /* effective bits per element, metadata included, at full context */
} vkmix_kv_memory;

void vkmix_session_default_params(vkmix_session_params *params);
/* KV memory of a session with these params at `n_tokens` cached tokens (n_tokens = 0:
 * at the full context), without allocating anything. Checks the configuration:
 * VKMIX_ERROR_BAD_PROFILE with a message in the context when it does not fit the model. */
vkmix_error vkmix_kv_memory_estimate(const vkmix_model *model, const vkmix_session_params *params, uint32_t n_tokens,
                                     vkmix_kv_memory *out);
/* Preallocates the KV cache for n_ctx tokens and the scratch buffers. Fails with
 * VKMIX_ERROR_OUT_OF_DEVICE_MEMORY and a message with the bytes needed when it does not fit. */
vkmix_error vkmix_session_create(vkmix_model *model, const vkmix_session_params *params, vkmix_session **out);
void vkmix_session_free(vkmix_session *s);
/* Runs tokens at positions n_past.. through the model (in chunks of n_batch).
 * logits: NULL, or [n_vocab] for the last token, or [n][n_vocab] when all_logits is 1.
 * More tokens than the context has room for: VKMIX_ERROR_CONTEXT_OVERFLOW, nothing is run. */
vkmix_error vkmix_session_eval(vkmix_session *s, const int32_t *tokens, uint32_t n, float *logits, int all_logits);
/* Decodes one token in each of n sessions of the same model in one forward pass:
 * the weights are read once for the whole batch, and each row attends to its own
 * session's cache. logits: NULL or [n][n_vocab]. The rows run on the first
 * session's scratch, in chunks of its n_batch rows (nothing is allocated); the
 * call uses every session of the batch (no other thread may use them meanwhile). */
vkmix_error vkmix_batch_decode(vkmix_session *const *sessions, const int32_t *tokens, uint32_t n, float *logits);
uint32_t vkmix_session_n_past(const vkmix_session *s);
uint32_t vkmix_session_n_ctx(const vkmix_session *s);
/* Forget every token (keeps the allocations). */
void vkmix_session_reset(vkmix_session *s);
/* Forget the tokens at positions >= n (n <= n_past): the next eval continues
 * at position n. An f16 cache rewinds exactly. A quantized cache keeps its
 * packed groups; its FP16 window at n, [S + q G, n) with q the groups packed at
 * n, is read from the ring, whose slots are reused every `ring` positions
 * (R + G + 64 rounded up to a multiple of G). When none of the window's slots
 * has been reused since its tokens were written, the rewind is exact: the
 * session continues bit for bit as one fed its first n tokens the same way (in
 * the same chunks). Otherwise the window's groups whose slots were reused
 * (their tokens had been packed by then) are refilled with their dequantized
 * packed values: the window holds those values instead of the FP16 ones (and
 * they are re-quantized from there when they age again), so the logits differ
 * from a fresh session's by about the quantization error.
 * vkmix_session_rewind_is_exact tells which case applies. GPU work only for a refill. */
vkmix_error vkmix_session_rewind(vkmix_session *s, uint32_t n);
/* 1 when vkmix_session_rewind(s, n) would be exact (always for an f16 cache), else 0. */
int vkmix_session_rewind_is_exact(const vkmix_session *s, uint32_t n);
vkmix_error vkmix_session_kv_memory(const vkmix_session *s, vkmix_kv_memory *out);

/* Every device buffer a session holds, all allocated by vkmix_session_create
 * (nothing is allocated later: eval, batch decode, rewind and state load use
 * these buffers; state save/load and vkmix_batch_decode add no session buffer,
 * only a temporary staging buffer during a state transfer). */
typedef struct vkmix_session_mem {
    uint64_t total_bytes;       /* the sum of the four below */
    uint64_t kv_bytes;          /* the KV cache: packed codes, scales and mins, FP16 ring and sinks (or the f16 cache) */
    uint64_t attention_bytes;   /* attention work space: split-K partials and the decode attention's sequence
                                 * table, and for a quantized cache the linear FP16 history its prefill attends
                                 * over (2 x n_kv_head x n_ctx x head_dim x 2 B) */
    uint64_t activation_bytes;  /* activations of n_batch rows, token ids, RoPE frequencies */
    uint64_t logits_bytes;      /* logits of up to n_batch rows (host-visible) */
} vkmix_session_mem;
vkmix_error vkmix_session_memory(const vkmix_session *s, vkmix_session_mem *out);

/* Session state: everything needed to continue (the packed groups, the FP16
 * ring and sinks, the position and the ring's bookkeeping), after a header that
 * identifies the model (a fingerprint of its hyper-parameters, tensors and
 * sampled weight bytes), the KV configuration (widths per layer, group,
 * window, sinks) and the layout version. Loading it into a session of the same
 * model and KV configuration continues exactly where the saved session was (the
 * same logits when n_ctx is the same; another n_ctx >= n_past is accepted).
 * A state of another model or configuration, a truncated or damaged one, is
 * refused with VKMIX_ERROR_BAD_STATE and a message that says which; a state
 * longer than the session's context with VKMIX_ERROR_CONTEXT_OVERFLOW. A
 * refused state leaves the session as it was; a failure while the data is
 * being copied leaves it reset. Host byte order (not portable between
 * machines of different endianness). */
vkmix_error vkmix_session_state_size(const vkmix_session *s, size_t *size);
/* cap too small: VKMIX_ERROR_INVALID_ARGUMENT with *written = the size needed. */
vkmix_error vkmix_session_state_save(vkmix_session *s, void *buf, size_t cap, size_t *written);
vkmix_error vkmix_session_state_load(vkmix_session *s, const void *buf, size_t size);
vkmix_error vkmix_session_state_save_file(vkmix_session *s, const char *path);
vkmix_error vkmix_session_state_load_file(vkmix_session *s, const char *path);


/* --------------------------------------------------------------------------- sampling */

typedef struct vkmix_sampler_params {
    float temperature;      /* <= 0: greedy; default 0.8 */
    int32_t top_k;          /* <= 0: off; default 40 */
    float top_p;            /* 1: off; default 0.95 */
    float min_p;            /* 0: off; default 0.05 */
    float repeat_penalty;   /* 1: off (default) */
    int32_t repeat_last_n;  /* default 64 */
    uint64_t seed;
} vkmix_sampler_params;

typedef struct vkmix_sampler vkmix_sampler;
void vkmix_sampler_default_params(vkmix_sampler_params *params);
vkmix_error vkmix_sampler_create(const vkmix_sampler_params *params, vkmix_sampler **out);
void vkmix_sampler_free(vkmix_sampler *s);
/* Draws a token from logits[n_vocab] (not modified) and adds it to the history. */
vkmix_error vkmix_sampler_sample(vkmix_sampler *s, const float *logits, uint32_t n_vocab, int32_t *token);
/* Adds a token (e.g. of the prompt) to the repetition history. */
void vkmix_sampler_accept(vkmix_sampler *s, int32_t token);
void vkmix_sampler_reset(vkmix_sampler *s);

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


/* The CPU reference of the same computation, bit-exact for codes and meta. */
vkmix_error vkmix_kvq_quantize_cpu(const vkmix_kvq_shape *shape, const uint16_t *x,
                                   uint32_t *codes, uint32_t *meta);
vkmix_error vkmix_kvq_dequantize_cpu(const vkmix_kvq_shape *shape, const uint32_t *codes,
                                     const uint32_t *meta, uint16_t *y);


/* FP16 helpers (IEEE binary16 bit patterns). */
uint16_t vkmix_f32_to_f16(float f);
float vkmix_f16_to_f32(uint16_t h);

/* --------------------------------------------------------------------------- calibration (src/calibrate.c) */

/*
 * Per-layer KV bit profiles (KVmix, arXiv 2506.08018), computed on the CPU with
 * the fp32 reference model: slow, exact and independent of the device.
 *
 * Calibration tokens are [n_seq][T]: every sequence starts at position 0 and
 * predicts tokens[s][t+1] from tokens[s][0..t]. A negative token is padding:
 * padding is trailing (a sequence ends at its first negative token).
 */

/* The widths vkmix_calibrate_kv_error measures, in this order: 2, 3, 4, 8.
 * (16 is the FP16 cache itself: its error is 0 by definition.) */
#define VKMIX_CALIB_N_WIDTHS 4
/* The width of measured column i (0 .. VKMIX_CALIB_N_WIDTHS-1), or 0. */
uint32_t vkmix_calibrate_width(uint32_t i);

/* Called on the calling thread after each sequence: `done` of `total`.
 * Return non-zero to stop; the call then returns VKMIX_ERROR_CANCELLED. */
typedef int (*vkmix_calibrate_progress_fn)(uint32_t done, uint32_t total, void *user);

/* KVmix layer importance: with L the mean next-token cross-entropy over every
 * label of every sequence (labels shifted once, padding masked),
 *   imp_k[l] = || dL/dW_k(l) ||_F,   imp_v[l] = || dL/dW_v(l) ||_F.
 * Sequences are processed n_threads at a time (< 1 means 1); the gradients of
 * each sequence are weighted by its share of the labels and summed in sequence
 * order in double, so the result is bit-identical for any n_threads.
 * loss, imp_k, imp_v ([n_layer]) may each be NULL. */
vkmix_error vkmix_calibrate_importance(const vkmix_model *model, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                       int n_threads, vkmix_calibrate_progress_fn progress, void *user,
                                       float *loss, float *imp_k, float *imp_v);

/* Measured quantization error of the cache's format on this model's own keys
 * and values: the reference forward runs over every sequence with an FP16 KV
 * store; each layer's post-RoPE keys and its values, from position `sinks` on,
 * in whole groups of `group` tokens (the cache's alignment), are quantized and
 * dequantized with the cache's exact format (keys per channel in groups of
 * `group` tokens; values per token in groups of `group` channels, or of
 * head_dim when group does not divide it) at every measured width:
 *   err[l*VKMIX_CALIB_N_WIDTHS + i] = sum (x - deq(q(x)))^2 / sum x^2
 * i.e. the mean squared error relative to the mean square of the data.
 * group: 32, 64 or 128 (0: 32). Each sequence needs at least sinks + group
 * tokens. err_k, err_v: [n_layer][VKMIX_CALIB_N_WIDTHS], either may be NULL.
 * Deterministic for any n_threads. */
vkmix_error vkmix_calibrate_kv_error(const vkmix_model *model, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                     uint32_t group, uint32_t sinks, int n_threads,
                                     vkmix_calibrate_progress_fn progress, void *user, float *err_k, float *err_v);

typedef enum vkmix_calib_rule {
    /* KVmix: rank layers by importance, separately for K and V; the top 10%
     * ("important") and the next 10% ("general") get K3 / V4, the rest K2 / V2.
     * Counts are floor(0.1 n_layer) each, except that a model with
     * 2 <= n_layer < 10 gets one important layer (and no general one), where the
     * paper's rounding would promote none. See vkmix_calibrate_kvmix_counts. */
    VKMIX_CALIB_RULE_KVMIX = 0,
    /* Average effective bits of K at most target_bits and of V at most
     * target_bits_v (or target_bits) (metadata, FP16 ring and sinks included, at
     * n_ctx, as vkmix_kv_memory_estimate counts them); with joint = 1,
     * (K bits + V bits) / 2 at most target_bits. Minimizes
     * sum_l imp_k(l) * err_k(l, width) + imp_v(l) * err_v(l, width). */
    VKMIX_CALIB_RULE_TARGET_BITS = 1,
    /* The whole cache for n_ctx tokens (K and V, all bytes) at most
     * budget_bytes; same objective, K and V in one budget. */
    VKMIX_CALIB_RULE_BUDGET = 2
} vkmix_calib_rule;

typedef struct vkmix_calib_alloc_params {
    vkmix_calib_rule rule;
    double target_bits;             /* TARGET_BITS: the K target (and V's when target_bits_v is 0), or the joint one */
    double target_bits_v;           /* TARGET_BITS, separate: the V target; 0: target_bits */
    int joint;                      /* TARGET_BITS: one budget for K and V together */
    uint64_t budget_bytes;          /* BUDGET */
    uint32_t n_ctx;                 /* context of the accounting; 0: as a session would choose */
    uint32_t group, window, sinks;  /* the cache geometry the profile is for; 0: the session defaults */
    const float *imp_k, *imp_v;     /* [n_layer] importance (>= 0) */
    const float *err_k, *err_v;     /* [n_layer][VKMIX_CALIB_N_WIDTHS] measured errors; TARGET_BITS and BUDGET */
} vkmix_calib_alloc_params;

/* Chooses per-layer widths. Candidates: 2, 3, 4, 8, 16 for TARGET_BITS and
 * BUDGET (16 has error 0). The optimizer is a dynamic program over the layers
 * (a multiple-choice knapsack) whose costs are the exact bytes rounded up to a
 * grid of 1/8192 of the room above the all-2-bit cache, so the result never
 * exceeds the budget; a greedy pass then spends what the rounding left over.
 * out: the chosen configuration (per-layer policy, n_layer and widths of the
 * model, the params' group/window/sinks, name "calibrated"),
 * ready for vkmix_kv_profile_write or vkmix_session_params.kv_config.
 * mem (may be NULL): the chosen profile's memory at n_ctx. objective (may be
 * NULL): sum_l imp_k err_k + imp_v err_v of the choice (0 for KVMIX when err_k /
 * err_v are NULL). VKMIX_ERROR_BAD_PROFILE with a message when the target
 * cannot be met (it names the smallest achievable value). */
vkmix_error vkmix_calibrate_allocate(const vkmix_model *model, const vkmix_calib_alloc_params *params,
                                     vkmix_kv_config *out, vkmix_kv_memory *mem, double *objective);

/* The KVmix rule's counts for n_layer layers (see VKMIX_CALIB_RULE_KVMIX). */
void vkmix_calibrate_kvmix_counts(uint32_t n_layer, uint32_t *n_important, uint32_t *n_general);

#ifdef __cplusplus
}
#endif
#endif /* VKMIX_H */
