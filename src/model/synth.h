/* Synthetic GGUF models with random weights and real shapes, for tests and the
 * benchmark. Nothing generated here is ever committed. */
#ifndef VKM_SYNTH_H
#define VKM_SYNTH_H
#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"

typedef struct vkm_synth_spec {
    const char *arch;           /* "llama" or "qwen2" */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    uint32_t wtype;             /* ggml type of the matrices (norms and biases are F32) */
    uint32_t embd_type;         /* ggml type of token_embd/output */
    int tied;                   /* no output.weight */
    float rope_theta;
    uint64_t seed;
} vkm_synth_spec;

/* Writes a GGUF file with an SPM vocabulary (<unk>, <s>, </s>, 256 byte tokens,
 * then letters and pairs) and random weights. */
vkmix_error vkm_synth_write(const vkm_synth_spec *spec, const char *path, char *err, size_t errlen);
#endif
