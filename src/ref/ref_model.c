/* The fp32 CPU reference forward pass of a llama-family model (see ref_model.h). */
#include "ref/ref_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --------------------------------------------------------------------------- checks */

#define VKM_REF_MAX_ELEMS (1ull << 40) /* any one array larger than this is absurd */

vkmix_error vkm_ref_hparams_check(const vkm_hparams *hp)
{
    if (!hp) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (!hp->n_vocab || !hp->n_embd || !hp->n_layer || !hp->n_head || !hp->n_head_kv ||
        !hp->head_dim || !hp->n_ff)
        return VKMIX_ERROR_INVALID_ARGUMENT;
    if (hp->n_head % hp->n_head_kv != 0 || hp->head_dim % 2 != 0)
        return VKMIX_ERROR_INVALID_ARGUMENT;
    if (!(hp->rope_theta > 0.0f) || !(hp->norm_eps >= 0.0f) || !isfinite(hp->rope_theta))
        return VKMIX_ERROR_INVALID_ARGUMENT;
    if (hp->rope_type != VKM_ROPE_NORM && hp->rope_type != VKM_ROPE_NEOX)
        return VKMIX_ERROR_INVALID_ARGUMENT;
    if (hp->rope_scale_factor > 0.0f) {
        if (!hp->rope_orig_ctx || !(hp->rope_low_freq_factor > 0.0f) ||
            !(hp->rope_high_freq_factor > hp->rope_low_freq_factor))
            return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    /* every array size fits comfortably in size_t */
    uint64_t q_dim = (uint64_t)hp->n_head * hp->head_dim;
    uint64_t sizes[] = {
        (uint64_t)hp->n_vocab * hp->n_embd,
        q_dim * hp->n_embd,
        (uint64_t)hp->n_ff * hp->n_embd,
        q_dim * hp->n_layer,
        (uint64_t)hp->n_embd * hp->n_layer,
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] > VKM_REF_MAX_ELEMS || sizes[i] > SIZE_MAX / 16) return VKMIX_ERROR_INVALID_ARGUMENT;
    return VKMIX_OK;
}

vkmix_error vkm_ref_weights_check(const vkm_ref_weights *w)
{
    if (!w) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_error e = vkm_ref_hparams_check(&w->hp);
    if (e != VKMIX_OK) return e;
    if (!w->tok_embd || !w->out_norm || !w->output || !w->layers) return VKMIX_ERROR_INVALID_ARGUMENT;
    for (uint32_t l = 0; l < w->hp.n_layer; l++) {
        const vkm_ref_layer *L = &w->layers[l];
        if (!L->attn_norm || !L->wq || !L->wk || !L->wv || !L->wo || !L->ffn_norm ||
            !L->w_gate || !L->w_up || !L->w_down)
            return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    return VKMIX_OK;
}

/* --------------------------------------------------------------------------- naive ops */

void vkm_ref_rmsnorm(float *out, const float *x, const float *weight, uint32_t n, float eps)
{
    float ss = 0.0f;
    for (uint32_t i = 0; i < n; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (uint32_t i = 0; i < n; i++) out[i] = x[i] * r * (weight ? weight[i] : 1.0f);
}

void vkm_ref_matvec(float *out, const float *W, const float *x, const float *bias,
                    uint32_t n_in, uint32_t n_out)
{
    for (uint32_t r = 0; r < n_out; r++) {
        const float *row = W + (size_t)r * n_in;
        float sum = 0.0f;
        for (uint32_t c = 0; c < n_in; c++) sum += row[c] * x[c];
        out[r] = sum + (bias ? bias[r] : 0.0f);
    }
}

/* Turns every pair of every head by sign * pos * freqs[i]. */
static void rope_rotate(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos,
                        const float *freqs, vkm_rope_type type, float sign)
{
    const uint32_t half = head_dim / 2;
    for (uint32_t i = 0; i < half; i++) {
        float angle = (float)pos * freqs[i];
        float c = cosf(angle), s = sign * sinf(angle);
        /* the two elements of pair i inside a head */
        uint32_t ia = type == VKM_ROPE_NEOX ? i : 2 * i;
        uint32_t ib = type == VKM_ROPE_NEOX ? i + half : 2 * i + 1;
        for (uint32_t h = 0; h < n_heads; h++) {
            float *head = x + (size_t)h * head_dim;
            float a = head[ia], b = head[ib];
            head[ia] = a * c - b * s;
            head[ib] = a * s + b * c;
        }
    }
}

void vkm_ref_rope(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos,
                  const float *freqs, vkm_rope_type type)
{
    rope_rotate(x, n_heads, head_dim, pos, freqs, type, 1.0f);
}

void vkm_ref_rope_inverse(float *x, uint32_t n_heads, uint32_t head_dim, uint32_t pos,
                          const float *freqs, vkm_rope_type type)
{
    rope_rotate(x, n_heads, head_dim, pos, freqs, type, -1.0f);
}

void vkm_ref_softmax(float *x, uint32_t n)
{
    if (n == 0) return;
    float max = x[0];
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (uint32_t i = 0; i < n; i++) x[i] /= sum;
}

void vkm_ref_attention_head(float *out, const float *q, const float *k, const float *v,
                            uint32_t n_kv, uint32_t stride, uint32_t head_dim,
                            float scale, float *scores)
{
    for (uint32_t t = 0; t < n_kv; t++) {
        const float *kt = k + (size_t)t * stride;
        float dot = 0.0f;
        for (uint32_t i = 0; i < head_dim; i++) dot += q[i] * kt[i];
        scores[t] = dot * scale;
    }
    vkm_ref_softmax(scores, n_kv);
    for (uint32_t i = 0; i < head_dim; i++) out[i] = 0.0f;
    for (uint32_t t = 0; t < n_kv; t++) {
        const float *vt = v + (size_t)t * stride;
        for (uint32_t i = 0; i < head_dim; i++) out[i] += scores[t] * vt[i];
    }
}

void vkm_ref_attention(float *out, const float *q, const float *k_cache, const float *v_cache,
                       uint32_t n_kv, const vkm_hparams *hp, float *scores)
{
    const uint32_t hd = hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    for (uint32_t h = 0; h < hp->n_head; h++) {
        uint32_t kvh = vkm_ref_kv_head(hp, h);
        vkm_ref_attention_head(out + (size_t)h * hd, q + (size_t)h * hd,
                               k_cache + (size_t)kvh * hd, v_cache + (size_t)kvh * hd,
                               n_kv, kv_dim, hd, scale, scores);
    }
}

void vkm_ref_silu_mul(float *out, const float *gate, const float *up, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* --------------------------------------------------------------------------- state */

vkmix_error vkm_ref_state_create(const vkm_hparams *hp, uint32_t n_ctx, int kv_fp16,
                                 vkm_ref_state **out)
{
    if (!out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkmix_error e = vkm_ref_hparams_check(hp);
    if (e != VKMIX_OK) return e;
    if (n_ctx == 0) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint64_t kv_dim = (uint64_t)hp->n_head_kv * hp->head_dim;
    const uint64_t cache_elems = (uint64_t)hp->n_layer * n_ctx * kv_dim;
    if (cache_elems > VKM_REF_MAX_ELEMS || cache_elems > SIZE_MAX / sizeof(float))
        return VKMIX_ERROR_INVALID_ARGUMENT;

    vkm_ref_state *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    s->hp = *hp;
    s->n_ctx = n_ctx;
    s->q_dim = hp->n_head * hp->head_dim;
    s->kv_dim = (uint32_t)kv_dim;
    s->kv_fp16 = kv_fp16 ? 1 : 0;
    s->k_cache = calloc((size_t)cache_elems, sizeof(float));
    s->v_cache = calloc((size_t)cache_elems, sizeof(float));
    s->x = calloc(hp->n_embd, sizeof(float));
    s->xb = calloc(hp->n_embd, sizeof(float));
    s->xb2 = calloc(hp->n_embd, sizeof(float));
    s->q = calloc(s->q_dim, sizeof(float));
    s->att_out = calloc(s->q_dim, sizeof(float));
    s->hb = calloc(hp->n_ff, sizeof(float));
    s->hb2 = calloc(hp->n_ff, sizeof(float));
    s->scores = calloc(n_ctx, sizeof(float));
    s->freqs = calloc(hp->head_dim / 2, sizeof(float));
    if (!s->k_cache || !s->v_cache || !s->x || !s->xb || !s->xb2 || !s->q || !s->att_out ||
        !s->hb || !s->hb2 || !s->scores || !s->freqs) {
        vkm_ref_state_free(s);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    vkm_rope_freqs(hp, s->freqs);
    *out = s;
    return VKMIX_OK;
}

void vkm_ref_state_free(vkm_ref_state *s)
{
    if (!s) return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->x);
    free(s->xb);
    free(s->xb2);
    free(s->q);
    free(s->att_out);
    free(s->hb);
    free(s->hb2);
    free(s->scores);
    free(s->freqs);
    free(s);
}

static int same_hparams(const vkm_hparams *a, const vkm_hparams *b)
{
    return a->n_vocab == b->n_vocab && a->n_embd == b->n_embd && a->n_layer == b->n_layer &&
           a->n_head == b->n_head && a->n_head_kv == b->n_head_kv && a->head_dim == b->head_dim &&
           a->n_ff == b->n_ff;
}

static void round_to_f16(float *x, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) x[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(x[i]));
}

/* --------------------------------------------------------------------------- forward */

vkmix_error vkm_ref_forward(const vkm_ref_weights *w, vkm_ref_state *s, int32_t token,
                            uint32_t pos, float *logits)
{
    if (!w || !s) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_error e = vkm_ref_weights_check(w);
    if (e != VKMIX_OK) return e;
    if (!same_hparams(&w->hp, &s->hp)) return VKMIX_ERROR_INVALID_ARGUMENT;
    const vkm_hparams *hp = &s->hp;
    if (token < 0 || (uint32_t)token >= hp->n_vocab) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (pos >= s->n_ctx) return VKMIX_ERROR_CONTEXT_OVERFLOW;

    const uint32_t dim = hp->n_embd, hd = hp->head_dim, ff = hp->n_ff;
    const uint32_t q_dim = s->q_dim, kv_dim = s->kv_dim;
    const float eps = hp->norm_eps;
    float *x = s->x;

    memcpy(x, w->tok_embd + (size_t)token * dim, dim * sizeof(float));

    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkm_ref_layer *L = &w->layers[l];
        float *k = vkm_ref_k_at(s, l, pos), *v = vkm_ref_v_at(s, l, pos);

        /* attention block */
        vkm_ref_rmsnorm(s->xb, x, L->attn_norm, dim, eps);
        vkm_ref_matvec(s->q, L->wq, s->xb, L->bq, dim, q_dim);
        vkm_ref_matvec(k, L->wk, s->xb, L->bk, dim, kv_dim);
        vkm_ref_matvec(v, L->wv, s->xb, L->bv, dim, kv_dim);
        vkm_ref_rope(s->q, hp->n_head, hd, pos, s->freqs, hp->rope_type);
        vkm_ref_rope(k, hp->n_head_kv, hd, pos, s->freqs, hp->rope_type);
        if (s->kv_fp16) {
            round_to_f16(k, kv_dim);
            round_to_f16(v, kv_dim);
        }
        if (s->kv_hook) {
            e = s->kv_hook(s->kv_hook_user, s, l, pos);
            if (e != VKMIX_OK) return e;
        }
        vkm_ref_attention(s->att_out, s->q, vkm_ref_k_at(s, l, 0), vkm_ref_v_at(s, l, 0), pos + 1,
                          hp, s->scores);
        vkm_ref_matvec(s->xb2, L->wo, s->att_out, NULL, q_dim, dim);
        for (uint32_t i = 0; i < dim; i++) x[i] += s->xb2[i];

        /* feed-forward block */
        vkm_ref_rmsnorm(s->xb, x, L->ffn_norm, dim, eps);
        vkm_ref_matvec(s->hb, L->w_gate, s->xb, NULL, dim, ff);
        vkm_ref_matvec(s->hb2, L->w_up, s->xb, NULL, dim, ff);
        vkm_ref_silu_mul(s->hb, s->hb, s->hb2, ff);
        vkm_ref_matvec(s->xb2, L->w_down, s->hb, NULL, ff, dim);
        for (uint32_t i = 0; i < dim; i++) x[i] += s->xb2[i];
    }

    if (logits) {
        vkm_ref_rmsnorm(s->xb, x, w->out_norm, dim, eps);
        vkm_ref_matvec(logits, w->output, s->xb, NULL, dim, hp->n_vocab);
    }
    return VKMIX_OK;
}
