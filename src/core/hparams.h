/* A model's hyper-parameters: the shapes every subsystem agrees on (the model
 * fills them, the ops, the cache and the CPU reference read them). */
#ifndef VKM_HPARAMS_H
#define VKM_HPARAMS_H

#include <stdint.h>

typedef enum vkm_rope_type {
    VKM_ROPE_NORM = 0, /* GGUF llama: rotate adjacent pairs (x[2i], x[2i+1]) */
    VKM_ROPE_NEOX = 1  /* qwen2: rotate (x[i], x[i + head_dim/2]) */
} vkm_rope_type;

typedef struct vkm_hparams {
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train;
    float rope_theta, norm_eps;
    vkm_rope_type rope_type;
    /* llama3 rope frequency scaling (rope_scaling.type == "llama3"): enabled when rope_scale_factor > 0 */
    float rope_scale_factor, rope_low_freq_factor, rope_high_freq_factor;
    uint32_t rope_orig_ctx;
} vkm_hparams;

/* The rotation frequency of every pair i < head_dim/2 of a head:
 * freq_i = theta^(-2i/head_dim), then the llama3 scaling when
 * hp->rope_scale_factor > 0 (Meta's apply_scaling):
 *   wavelen = 2 pi / freq
 *   wavelen < orig_ctx / high_freq_factor:  freq                       (kept)
 *   wavelen > orig_ctx / low_freq_factor:   freq / factor              (scaled)
 *   otherwise: smooth = (orig_ctx / wavelen - low) / (high - low),
 *              freq = (1 - smooth) * freq / factor + smooth * freq.
 * freqs: [head_dim/2]. */
void vkm_rope_freqs(const vkm_hparams *hp, float *freqs);

#endif
