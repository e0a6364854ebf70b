/*
 * Test-only loader of llama2.c legacy (v0) checkpoints into vkm_ref_weights.
 *
 * File layout: 7 int32 [dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len] (vocab_size > 0: the classifier is the token
 * embedding; < 0: a separate wcls follows), then fp32 weights in run.c order:
 *   token_embedding [vocab][dim]
 *   rms_att [L][dim], wq [L][dim][dim], wk [L][kv_dim][dim], wv [L][kv_dim][dim],
 *   wo [L][dim][dim], rms_ffn [L][dim],
 *   w1 [L][hidden][dim] (gate), w2 [L][dim][hidden] (down), w3 [L][hidden][dim] (up),
 *   rms_final [dim], freq_cis_real [seq_len][head_size/2], freq_cis_imag (same),
 *   wcls [vocab][dim] (only when not shared).
 * llama2.c rotates adjacent pairs (VKM_ROPE_NORM), theta 10000, eps 1e-5.
 */
#ifndef VKM_REF_LLAMA2C_H
#define VKM_REF_LLAMA2C_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ref/ref_model.h"

typedef struct ref_llama2c {
    float *data;                /* every float of the file after the header */
    vkm_ref_layer *layers;      /* [n_layer] */
    vkm_ref_weights w;          /* points into data */
} ref_llama2c;

static void ref_llama2c_free(ref_llama2c *m)
{
    free(m->data);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

/* Returns 0 on success, -1 (with a message on stderr) on failure. */
static int ref_llama2c_load(const char *path, ref_llama2c *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "llama2c: cannot open %s\n", path);
        return -1;
    }
    int32_t h[7];
    if (fread(h, sizeof(int32_t), 7, f) != 7) {
        fprintf(stderr, "llama2c: short header\n");
        fclose(f);
        return -1;
    }
    const int shared = h[5] > 0;
    const int64_t dim = h[0], hidden = h[1], nl = h[2], nh = h[3], nkv = h[4];
    const int64_t vocab = shared ? h[5] : -(int64_t)h[5], seq_len = h[6];
    if (dim <= 0 || hidden <= 0 || nl <= 0 || nh <= 0 || nkv <= 0 || vocab <= 0 || seq_len <= 0 ||
        dim % nh != 0 || nh % nkv != 0 || dim > 65536 || hidden > 1 << 20 || nl > 1024 ||
        vocab > 1 << 22 || seq_len > 1 << 20) {
        fprintf(stderr, "llama2c: bad header\n");
        fclose(f);
        return -1;
    }
    const int64_t hs = dim / nh, kv_dim = hs * nkv;
    const int64_t n_floats = vocab * dim + nl * (dim + dim * dim + 2 * kv_dim * dim + dim * dim + dim +
                                                 3 * hidden * dim) +
                             dim + seq_len * hs + (shared ? 0 : vocab * dim);
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return -1;
    }
    long file_size = ftell(f);
    if (file_size != (long)(7 * sizeof(int32_t) + n_floats * sizeof(float))) {
        fprintf(stderr, "llama2c: file size %ld, expected %lld\n", file_size,
                (long long)(7 * sizeof(int32_t) + n_floats * sizeof(float)));
        fclose(f);
        return -1;
    }
    m->data = malloc((size_t)n_floats * sizeof(float));
    m->layers = calloc((size_t)nl, sizeof *m->layers);
    if (!m->data || !m->layers || fseek(f, 7 * sizeof(int32_t), SEEK_SET) != 0 ||
        fread(m->data, sizeof(float), (size_t)n_floats, f) != (size_t)n_floats) {
        fprintf(stderr, "llama2c: read failed\n");
        fclose(f);
        ref_llama2c_free(m);
        return -1;
    }
    fclose(f);

    float *p = m->data;
    const float *tok_embd = p;  p += vocab * dim;
    const float *rms_att = p;   p += nl * dim;
    const float *wq = p;        p += nl * dim * dim;
    const float *wk = p;        p += nl * kv_dim * dim;
    const float *wv = p;        p += nl * kv_dim * dim;
    const float *wo = p;        p += nl * dim * dim;
    const float *rms_ffn = p;   p += nl * dim;
    const float *w1 = p;        p += nl * hidden * dim;
    const float *w2 = p;        p += nl * dim * hidden;
    const float *w3 = p;        p += nl * hidden * dim;
    const float *rms_final = p; p += dim;
    p += seq_len * hs;          /* freq_cis_real and freq_cis_imag: [seq_len][hs/2] each */
    const float *wcls = shared ? tok_embd : p;

    for (int64_t l = 0; l < nl; l++) {
        vkm_ref_layer *L = &m->layers[l];
        L->attn_norm = rms_att + l * dim;
        L->wq = wq + l * dim * dim;
        L->wk = wk + l * kv_dim * dim;
        L->wv = wv + l * kv_dim * dim;
        L->wo = wo + l * dim * dim;
        L->ffn_norm = rms_ffn + l * dim;
        L->w_gate = w1 + l * hidden * dim;
        L->w_down = w2 + l * dim * hidden;
        L->w_up = w3 + l * hidden * dim;
    }
    vkm_hparams *hp = &m->w.hp;
    memset(hp, 0, sizeof *hp);
    hp->n_vocab = (uint32_t)vocab;
    hp->n_embd = (uint32_t)dim;
    hp->n_layer = (uint32_t)nl;
    hp->n_head = (uint32_t)nh;
    hp->n_head_kv = (uint32_t)nkv;
    hp->head_dim = (uint32_t)hs;
    hp->n_ff = (uint32_t)hidden;
    hp->n_ctx_train = (uint32_t)seq_len;
    hp->rope_theta = 10000.0f;
    hp->norm_eps = 1e-5f;
    hp->rope_type = VKM_ROPE_NORM;
    m->w.tok_embd = tok_embd;
    m->w.out_norm = rms_final;
    m->w.output = wcls;
    m->w.layers = m->layers;
    return 0;
}

#endif /* VKM_REF_LLAMA2C_H */
