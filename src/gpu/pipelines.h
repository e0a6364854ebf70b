/* The table of compute shaders, and pipelines built from them on demand with
 * specialization constants. See pipelines.c for the table itself. */
#ifndef VKM_PIPELINES_H
#define VKM_PIPELINES_H

#include "gpu/vk_device.h"

#define VKM_MAX_BINDINGS 12
#define VKM_MAX_SPEC 12

/* One entry per .comp file in shaders/ (and per second module of one, see CMakeLists.txt). */
typedef enum vkm_shader {
    VKM_SH_COPY = 0,
    VKM_SH_KVQ_QUANT_K,
    VKM_SH_KVQ_QUANT_V,
    VKM_SH_KVQ_DEQUANT_K,
    VKM_SH_KVQ_DEQUANT_V,
    VKM_SH_KV_RING_STORE,
    VKM_SH_KV_RING_GATHER,
    VKM_SH_KVQ_ATTN,
    VKM_SH_KVQ_ATTN_REDUCE,
    VKM_SH_KVQ_DECODE,
    VKM_SH_KVQ_DECODE_F32,
    VKM_SH_ATTN_DECODE,
    VKM_SH_ATTN_COMBINE,
    VKM_SH_FILL_RANDOM,
    /* the MiKV cache policy (src/kv/mikv_device.c) */
    VKM_SH_MIKV_ATTN,
    VKM_SH_MIKV_COMBINE,
    VKM_SH_MIKV_IMPORTANCE,
    VKM_SH_MIKV_QMAX,
    VKM_SH_MIKV_BALANCE,
    VKM_SH_MIKV_AGE,
    /* forward-pass ops (src/ops.c) */
    VKM_SH_RMSNORM,
    VKM_SH_MATVEC,
    VKM_SH_MATVEC_IDOT,     /* matvec.comp with native integer dot products */
    VKM_SH_ACT_QUANT,
    VKM_SH_MATMUL,
    VKM_SH_MATMUL_COOPMAT,  /* matmul.comp on the matrix units (VK_NV_cooperative_matrix) */
    VKM_SH_GET_ROWS,
    VKM_SH_ROPE,
    VKM_SH_ROPE_STORE,
    VKM_SH_SILU_MUL,
    VKM_SH_ADD,
    VKM_SH_COPY_F32,
    VKM_SH_KV_STORE,
    VKM_SH_ATTN,
    VKM_SH_ATTN_REDUCE,
    /* the MixKVQ cache policy (src/kv/mixkvq_device.c) */
    VKM_SH_MIXKVQ_ATTN,
    VKM_SH_MIXKVQ_QSTAT,
    VKM_SH_MIXKVQ_AGE,
    VKM_SH_MIXKVQ_COMBINE,
    VKM_SH_COUNT_
} vkm_shader;

typedef struct vkm_shader_desc {
    const char *name;
    const uint32_t *spv;
    const size_t *spv_size;
    uint32_t n_bindings;       /* storage buffers 0..n-1 */
    uint32_t push_size;        /* bytes of push constants */
    const char *spec[VKM_MAX_SPEC]; /* names of specialization constants 0.. (for humans and errors) */
} vkm_shader_desc;

extern const vkm_shader_desc vkm_shader_table[VKM_SH_COUNT_];

typedef struct vkm_pipeline {
    vkm_shader shader;
    uint32_t spec[VKM_MAX_SPEC];
    uint32_t n_spec;
    uint32_t local_size;       /* spec[0] by convention: local_size_x */
    VkShaderModule module;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipeline;
} vkm_pipeline;

/* All pipelines of a context; each is built once (on demand) and kept until
 * the context is freed, so a returned pointer stays valid. Append-only: a
 * lookup reads the published entries without a lock (the hot path: one per
 * recorded op); building and publishing take the lock. */
#define VKM_PIPE_CHUNK 64
#define VKM_PIPE_CHUNKS 64     /* at most 4096 pipelines per context */
typedef struct vkm_pipeline_set {
    vkm_pipeline **chunks[VKM_PIPE_CHUNKS]; /* entries never move once published */
    uint32_t n;                             /* published entries (atomic, release/acquire) */
    pthread_mutex_t lock;                   /* serializes builds */
    bool lock_ok;
} vkm_pipeline_set;

vkmix_error vkm_pipeline_set_init(vkm_device *dev, vkm_pipeline_set *set);
/* Find or build the pipeline for `shader` with specialization constants
 * spec[0..n_spec). Thread-safe. */
vkmix_error vkm_pipeline_get(vkm_device *dev, vkm_pipeline_set *set, vkm_shader shader, const uint32_t *spec,
                             uint32_t n_spec, const vkm_pipeline **out);
void vkm_pipeline_set_destroy(vkm_device *dev, vkm_pipeline_set *set);

#endif
