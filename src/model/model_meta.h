/* What a GGUF file says about a model, read on the CPU without a device: the
 * architecture, the hyper-parameters and RoPE frequencies, the tokenizer and
 * the chat template. The model loader (model_load.c) uploads the weights
 * after these succeed; the fuzzer (tests/fuzz/fuzz_model_meta.c) runs them
 * on arbitrary files.
 *
 * Every error names the key or tensor at fault and the rule it breaks. */
#ifndef VKM_MODEL_META_H
#define VKM_MODEL_META_H

#include <stddef.h>

#include "core/hparams.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"
#include "vkmix.h"

typedef enum { VKM_ARCH_LLAMA = 0, VKM_ARCH_QWEN2 = 1 } vkm_arch;

/* Limits of what vkmix runs (checked by vkm_model_meta_read). */
#define VKM_MAX_LAYERS 1024
#define VKM_MAX_EMBD 65536
#define VKM_MAX_HEADS 1024
#define VKM_MAX_FF (1u << 20)
#define VKM_MAX_CTX_TRAIN (1u << 24)
#define VKM_MAX_VOCAB (1u << 24)
#define VKM_MAX_HEAD_DIM 256

typedef struct vkm_model_meta {
    vkm_arch arch;
    char arch_name[32];            /* "llama", "qwen2" */
    char name[128];                /* general.name, or "" */
    vkm_hparams hp;                /* n_vocab is the row count of token_embd.weight */
    float rope_freqs[VKM_MAX_HEAD_DIM / 2]; /* [head_dim/2], llama3 factors (rope_freqs.weight) applied */
} vkm_model_meta;

/* general.architecture, <arch>.* hyper-parameters (every one checked against
 * the limits above and against each other), token_embd.weight's row count as
 * n_vocab, and rope_freqs.weight when present. On success every field of
 * meta->hp passes vkm_model_meta_check. */
vkmix_error vkm_model_meta_read(const vkm_gguf *g, vkm_model_meta *meta, char *err, size_t errlen);

/* The invariants vkm_model_meta_read guarantees (for the fuzzer's oracle):
 * 1 when they hold. */
int vkm_model_meta_check(const vkm_model_meta *meta);

/* The tokenizer from tokenizer.ggml.* for a model with n_vocab embedding rows:
 * at most n_vocab tokens, scores and token types of the same length, special
 * ids that are token ids (or absent: -1 / 0xFFFFFFFF). */
vkmix_error vkm_model_vocab_read(const vkm_gguf *g, uint32_t n_vocab, vkm_tokenizer **out, char *err,
                                 size_t errlen);

/* tokenizer.chat_template as a malloc'ed NUL-terminated copy, or *out = NULL
 * when absent (or not a string). */
vkmix_error vkm_model_chat_template_read(const vkm_gguf *g, char **out);

#endif
