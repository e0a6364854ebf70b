/* A loaded model: hyper-parameters, tokenizer and weights on the device. */
#ifndef VKM_MODEL_H
#define VKM_MODEL_H

#include "core/context.h"
#include "gguf/gguf.h"
#include "core/hparams.h"
#include "model/model_meta.h"
#include "text/tokenizer.h"

/* One weight on the device, in its GGUF type. */
typedef struct vkm_tensor {
    vkm_buffer buf;
    uint32_t type;      /* vkm_ggml_type */
    int64_t ne[4];      /* ne[0] innermost (columns) */
    uint64_t n_bytes;
    const void *host;   /* the bytes in the mapped file (NULL for generated weights) */
} vkm_tensor;

typedef struct vkm_layer_w {
    vkm_tensor attn_norm;         /* [n_embd] f32 */
    vkm_tensor wq;                /* [n_head*head_dim][n_embd] */
    vkm_tensor wk, wv;            /* [n_head_kv*head_dim][n_embd] */
    vkm_tensor bq, bk, bv;        /* qwen2 biases (buf.buf == NULL when absent) */
    vkm_tensor wo;                /* [n_embd][n_head*head_dim] */
    vkm_tensor ffn_norm;          /* [n_embd] f32 */
    vkm_tensor w_gate, w_up;      /* [n_ff][n_embd] */
    vkm_tensor w_down;            /* [n_embd][n_ff] */
    /* the same weights fused for one product each (ops/ops.h) when their types
     * agree; the parts then have no device buffer of their own (host bytes and
     * shapes stay, for the CPU reference) */
    vkm_tensor wqkv;              /* [n_head*head_dim + 2*n_head_kv*head_dim][n_embd]: wq, wk, wv stacked */
    vkm_tensor bqkv;              /* bq, bk, bv stacked (qwen2) */
    vkm_tensor w_gate_up;         /* [2*n_ff][n_embd]: gate row i at 2i, up row i at 2i+1 */
} vkm_layer_w;

struct vkmix_model {
    vkmix_context *ctx;
    vkm_gguf *gguf;               /* kept mapped: tensors' host bytes point into it */
    vkm_arch arch;
    vkm_hparams hp;
    float rope_freqs[512];        /* [head_dim/2] RoPE frequencies (llama3 factors applied) */
    vkm_tokenizer *tok;
    char *chat_template;
    vkmix_model_info info;
    vkm_tensor tok_embd;          /* [n_vocab][n_embd] */
    vkm_tensor out_norm;          /* [n_embd] */
    vkm_tensor output;            /* [n_vocab][n_embd]; shares tok_embd's buffer when tied */
    int output_tied;
    vkm_layer_w *layers;          /* [n_layer] */
    uint64_t fingerprint;         /* identifies the model (session states refuse another): hyper-parameters,
                                   * every tensor's name, type and shape, and sampled bytes of each */
};

/* FNV-1a, 64 bits: h = vkm_hash(h, bytes, n), starting from VKM_HASH_INIT. */
#define VKM_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t vkm_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A device buffer holding a random rows x cols weight of `type` in its GPU
 * layout (shaders/gpu/fill_random.comp): about +-scale (F32: offset + scale u). */
vkmix_error vkm_fill_random_weight(vkm_cmd *cmd, vkm_buffer *buf, uint32_t type, uint64_t cols, uint64_t rows,
                                   float scale, float offset, uint32_t seed);
/* m->info from the hyper-parameters and the tokenizer. */
void vkm_model_fill_info(vkmix_model *m);

/* The metadata half of loading (model_meta.h) into m: architecture,
 * hyper-parameters, RoPE frequencies, name, tokenizer, chat template. */
vkmix_error vkm_model_load_meta(vkmix_model *m, char *err, size_t errlen);

#endif
