/* fp32 copies of a model's weights for the CPU reference (tests, calibration). */
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "ref/ref_from_model.h"

static float *deq(vkm_ref_model *r, const vkm_tensor *t, vkmix_error *e)
{
    if (*e != VKMIX_OK || !t->host) return NULL;
    uint64_t n = (uint64_t)t->ne[0] * t->ne[1];
    float *f = malloc(n * sizeof *f);
    float **owned = realloc(r->owned, (r->n_owned + 1) * sizeof *owned);
    if (!f || !owned) {
        free(f);
        if (owned) r->owned = owned;
        *e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        return NULL;
    }
    r->owned = owned;
    r->owned[r->n_owned++] = f;
    uint64_t row_bytes;
    vkm_ggml_row_size(t->type, t->ne[0], &row_bytes);
    for (int64_t i = 0; i < t->ne[1] && *e == VKMIX_OK; i++)
        *e = vkm_ggml_dequantize_row(t->type, (const char *)t->host + i * row_bytes, f + i * t->ne[0], t->ne[0]);
    return f;
}

vkmix_error vkm_model_ref_weights(const vkmix_model *m, vkm_ref_model *r)
{
    memset(r, 0, sizeof *r);
    vkmix_error e = VKMIX_OK;
    r->w.hp = m->hp;
    r->layers = calloc(m->hp.n_layer, sizeof *r->layers);
    if (!r->layers) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    r->w.tok_embd = deq(r, &m->tok_embd, &e);
    r->w.out_norm = deq(r, &m->out_norm, &e);
    r->w.output = m->output_tied ? r->w.tok_embd : deq(r, &m->output, &e);
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const vkm_layer_w *L = &m->layers[l];
        vkm_ref_layer *R = &r->layers[l];
        R->attn_norm = deq(r, &L->attn_norm, &e);
        R->wq = deq(r, &L->wq, &e);
        R->wk = deq(r, &L->wk, &e);
        R->wv = deq(r, &L->wv, &e);
        R->bq = deq(r, &L->bq, &e);
        R->bk = deq(r, &L->bk, &e);
        R->bv = deq(r, &L->bv, &e);
        R->wo = deq(r, &L->wo, &e);
        R->ffn_norm = deq(r, &L->ffn_norm, &e);
        R->w_gate = deq(r, &L->w_gate, &e);
        R->w_up = deq(r, &L->w_up, &e);
        R->w_down = deq(r, &L->w_down, &e);
    }
    r->w.layers = r->layers;
    if (e != VKMIX_OK) vkm_ref_model_free(r);
    return e;
}

void vkm_ref_model_free(vkm_ref_model *r)
{
    if (!r) return;
    for (uint32_t i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->layers);
    memset(r, 0, sizeof *r);
}
