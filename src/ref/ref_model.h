/*
 * The fp32 CPU reference of a llama-family model: the forward pass that GPU
 * tests compare against, the naive ops it is made of, and (ref_grad.c) the
 * backward pass that gives dL/dW_k and dL/dW_v of every layer, the KVmix
 * layer-importance signal.
 *
 * Plain and slow on purpose: every function reads like the math. Weights are
 * fp32 arrays filled by the loader. Matrices follow GGUF: a weight with
 * ne = {in, out} is `out` rows of `in` floats and y = W x is
 * y[r] = sum_c W[r*in + c] * x[c].
 *
 * Model (llama; qwen2 adds q/k/v biases and uses NEOX RoPE):
 *   x = tok_embd[token]
 *   per layer:  h = rmsnorm(x) * attn_norm
 *               q = Wq h (+bq), k = Wk h (+bk), v = Wv h (+bv)
 *               q, k = rope(q, pos), rope(k, pos)          (per head)
 *               a = attention(q, K[0..pos], V[0..pos])      (causal, GQA, 1/sqrt(head_dim))
 *               x = x + Wo a
 *               h = rmsnorm(x) * ffn_norm
 *               x = x + W_down(silu(W_gate h) * (W_up h))
 *   logits = output (rmsnorm(x) * out_norm)
 * rmsnorm(x) = x / sqrt(mean(x^2) + eps).
 */
#ifndef VKM_REF_MODEL_H
#define VKM_REF_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"
#include "core/hparams.h"


typedef struct vkm_ref_layer {
    const float *attn_norm;          /* [n_embd] */
    const float *wq;                 /* [n_head*head_dim][n_embd] */
    const float *wk, *wv;            /* [n_head_kv*head_dim][n_embd] */
    const float *bq;                 /* [n_head*head_dim] or NULL */
    const float *bk, *bv;            /* [n_head_kv*head_dim] or NULL (qwen2 has them) */
    const float *wo;                 /* [n_embd][n_head*head_dim] */
    const float *ffn_norm;           /* [n_embd] */
    const float *w_gate, *w_up;      /* [n_ff][n_embd] */
    const float *w_down;             /* [n_embd][n_ff] */
} vkm_ref_layer;

typedef struct vkm_ref_weights {
    vkm_hparams hp;
    const float *tok_embd;           /* [n_vocab][n_embd] */
    const float *out_norm;           /* [n_embd] */
    const float *output;             /* [n_vocab][n_embd], == tok_embd when tied */
    const vkm_ref_layer *layers;     /* [n_layer] */
} vkm_ref_weights;

/* VKMIX_OK when the shapes are usable: every size non-zero, n_head a multiple
 * of n_head_kv, head_dim even, theta > 0, eps >= 0, a known rope type, sane
 * llama3 scaling parameters when enabled, and no size overflows. */
vkmix_error vkm_ref_hparams_check(const vkm_hparams *hp);
/* vkm_ref_hparams_check plus every non-optional weight pointer set. */
vkmix_error vkm_ref_weights_check(const vkm_ref_weights *w);

/* --------------------------------------------------------------------------- naive ops */

/* out = x / sqrt(mean(x^2) + eps) * weight; weight may be NULL (no scale).
 * out may alias x. */
void vkm_ref_rmsnorm(float *out, const float *x, const float *weight, uint32_t n, float eps);

/* out[r] = sum_c W[r*n_in + c] * x[c] (+ bias[r]), r < n_out. bias may be NULL.
 * out must not alias x. */
void vkm_ref_matvec(float *out, const float *W, const float *x, const float *bias,
                    uint32_t n_in, uint32_t n_out);


/* Rotates x ([n_heads][head_dim], in place) for position pos: pair i of each
 * head turns by the angle pos * freqs[i]. NORM pairs are (x[2i], x[2i+1]),
 * NEOX pairs are (x[i], x[i + head_dim/2]):
 *   (a, b) -> (a cos - b sin, a sin + b cos). */
void vkm_ref_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos,
                  const float *freqs, vkm_rope_type type);
/* The inverse rotation (angle -pos * freqs[i]); the transpose of vkm_ref_rope,
 * used by the backward pass. */
void vkm_ref_rope_inverse(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos,
                          const float *freqs, vkm_rope_type type);

/* In place: x = exp(x - max) / sum(exp(x - max)). */
void vkm_ref_softmax(float *x, uint32_t n);

/* One query head over a span of n_kv cached positions:
 *   p = softmax_t(scale * q . k_t),  out = sum_t p_t v_t.
 * k and v point at the first key/value of the span for this KV head;
 * consecutive positions are `stride` floats apart (the state cache has
 * stride n_head_kv*head_dim). scores: scratch [n_kv]; on return it holds p.
 * q, k, v, out: [head_dim]. */
void vkm_ref_attention_head(float *out, const float *q, const float *k, const float *v,
                            uint32_t n_kv, uint32_t stride, uint32_t head_dim,
                            float scale, float *scores);

/* The KV head that query head h reads (GQA): h / (n_head / n_head_kv). */
static inline uint32_t vkm_ref_kv_head(const vkm_hparams *hp, uint32_t h)
{
    return h / (hp->n_head / hp->n_head_kv);
}

/* Causal attention of every query head of one layer at one position:
 * q: [n_head][head_dim] (after RoPE), k_cache/v_cache: [n_kv][n_head_kv*head_dim]
 * (positions 0 .. n_kv-1 of one layer), out: [n_head][head_dim],
 * scores: scratch [n_kv]. Scale 1/sqrt(head_dim). */
void vkm_ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                       uint32_t n_kv, const vkm_hparams *hp, float *scores);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias either input. */
void vkm_ref_silu_mul(float *out, const float *gate, const float *up, uint32_t n);

/* --------------------------------------------------------------------------- forward with a KV cache */

typedef struct vkm_ref_state vkm_ref_state;

/* Called by vkm_ref_forward for every layer right after the key and value of
 * `pos` were stored in the cache and before attention reads the cache. Any
 * non-OK return stops the forward pass and is returned by it. */
typedef vkmix_error (*vkm_ref_kv_hook)(void *user, vkm_ref_state *s, uint32_t layer, uint32_t pos);

/*
 * The fp32 KV cache and the scratch of a one-token-at-a-time forward pass.
 *
 * Cache layout (row-major, fp32):
 *   k_cache[(layer*n_ctx + pos)*kv_dim + kv_head*head_dim + i]   keys, after RoPE
 *   v_cache[(layer*n_ctx + pos)*kv_dim + kv_head*head_dim + i]   values
 * with kv_dim = n_head_kv*head_dim (vkm_ref_k_at / vkm_ref_v_at give a row).
 * With kv_fp16 = 1 every stored K and V element is rounded to FP16 (and back),
 * as the GPU cache stores it.
 *
 * Simulating a quantized KV cache: attention only ever reads the cache arrays,
 * so a simulator reproduces a quantized cache's math exactly by overwriting
 * stored entries with their quantize -> dequantize values (e.g. through
 * vkmix_kvq_quantize_cpu / vkmix_kvq_dequantize_cpu on the FP16 bits). Entries
 * may be overwritten between vkm_ref_forward calls (tokens quantized earlier),
 * or from kv_hook, which runs after K/V of (layer, pos) are stored and before
 * they are read, so the current token (e.g. one completing a key group) is
 * seen by attention exactly as the GPU cache would hold it.
 */
struct vkm_ref_state {
    vkm_hparams hp;
    uint32_t n_ctx;              /* positions the cache holds */
    uint32_t q_dim;              /* n_head*head_dim */
    uint32_t kv_dim;             /* n_head_kv*head_dim */
    int kv_fp16;                 /* 1: round K and V to FP16 when storing */
    float *k_cache;              /* [n_layer][n_ctx][kv_dim], keys after RoPE */
    float *v_cache;              /* [n_layer][n_ctx][kv_dim] */
    vkm_ref_kv_hook kv_hook;     /* optional, see above */
    void *kv_hook_user;
    /* scratch of one token */
    float *x;                    /* [n_embd] residual stream */
    float *xb;                   /* [n_embd] normed input of a block */
    float *xb2;                  /* [n_embd] output of a block */
    float *q;                    /* [q_dim] */
    float *att_out;              /* [q_dim] attention output, before Wo */
    float *hb, *hb2;             /* [n_ff] gate and up */
    float *scores;               /* [n_ctx] attention probabilities */
    float *freqs;                /* [head_dim/2] RoPE frequencies */
};

/* Allocates a state for n_ctx positions (hp is copied). kv_fp16: see above.
 * *out is NULL on failure. */
vkmix_error vkm_ref_state_create(const vkm_hparams *hp, uint32_t n_ctx, int kv_fp16,
                                 vkm_ref_state **out);
void vkm_ref_state_free(vkm_ref_state *s);

static inline float *vkm_ref_k_at(vkm_ref_state *s, uint32_t layer, uint32_t pos)
{
    return s->k_cache + ((size_t)layer * s->n_ctx + pos) * s->kv_dim;
}
static inline float *vkm_ref_v_at(vkm_ref_state *s, uint32_t layer, uint32_t pos)
{
    return s->v_cache + ((size_t)layer * s->n_ctx + pos) * s->kv_dim;
}

/* Runs one token at position pos (positions 0 .. pos-1 must already be in the
 * cache), stores its K/V at pos and writes logits [n_vocab] (logits may be
 * NULL to skip the output projection, e.g. while prefilling).
 * Errors: VKMIX_ERROR_INVALID_ARGUMENT for NULL pointers, a token outside
 * [0, n_vocab) or weights whose hparams differ from the state's;
 * VKMIX_ERROR_CONTEXT_OVERFLOW when pos >= n_ctx. */
vkmix_error vkm_ref_forward(const vkm_ref_weights *w, vkm_ref_state *s, int32_t token,
                            uint32_t pos, float *logits);

/* --------------------------------------------------------------------------- backward (ref_grad.c) */

/*
 * Loss and gradients for KVmix layer importance (||dL/dW_k||_F, ||dL/dW_v||_F).
 *
 * tokens: [n_seq][T]. Sequence s predicts tokens[s][t+1] from tokens[s][0..t]
 * for t = 0 .. T-2 (the labels are the inputs shifted once).
 * L = mean next-token cross-entropy over every predicted position whose label
 * is >= 0; a label < 0 is padding and is excluded from the sum and the count.
 * Padding is trailing: a sequence ends at its first negative token, and every
 * token after it must be negative too (else VKMIX_ERROR_INVALID_ARGUMENT).
 * Sequences are independent (each starts at position 0).
 *
 * Outputs (each may be NULL; so may any per-layer entry):
 *   *loss_out       L
 *   dwk[l], dwv[l]  dL/dW_k, dL/dW_v of layer l: [n_head_kv*head_dim][n_embd]
 *   dbk[l], dbv[l]  dL/db_k, dL/db_v: [n_head_kv*head_dim] (the gradient of a
 *                   zero bias when the model has none)
 * The arrays are overwritten.
 *
 * The full network is backpropagated (output projection, final norm, every
 * FFN, attention with softmax and RoPE, norms, residuals). n_threads (< 1
 * means 1) threads split the sequences; thread i takes sequences i,
 * i + n_threads, ...; their partial sums are added in thread order, so results
 * differ across n_threads only by float summation order.
 *
 * Errors: VKMIX_ERROR_INVALID_ARGUMENT for bad weights, n_seq == 0, T < 2, a
 * token >= n_vocab, non-trailing padding or no label to predict at all;
 * VKMIX_ERROR_OUT_OF_HOST_MEMORY (also when one sequence's activations would
 * exceed 4 TiB).
 */
vkmix_error vkm_ref_grad_kv(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq,
                            uint32_t T, int n_threads, float *loss_out,
                            float **dwk, float **dwv, float **dbk, float **dbv);

#endif /* VKM_REF_MODEL_H */
