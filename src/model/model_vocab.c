/* The public token, detokenizer and sampler functions of a model (the
 * tokenizer itself is built from the GGUF metadata in model_meta.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "text/sampler.h"

/* ------------------------------------------------------------------ public token API */

vkmix_error vkmix_tokenize(const vkmix_model *m, const char *text, size_t len, int add_bos, int parse_special,
                           int32_t *out, size_t cap, size_t *n_out)
{
    if (!m || (!text && len) || !n_out) return VKMIX_ERROR_INVALID_ARGUMENT;
    return vkm_tokenize(m->tok, text ? text : "", len, add_bos, parse_special, out, cap, n_out);
}

vkmix_error vkmix_token_to_piece(const vkmix_model *m, int32_t id, char *buf, size_t cap, size_t *n_out)
{
    if (!m || !n_out) return VKMIX_ERROR_INVALID_ARGUMENT;
    return vkm_token_to_piece(m->tok, id, buf, cap, n_out);
}

int vkmix_token_is_eog(const vkmix_model *m, int32_t id) { return m ? vkm_tokenizer_is_eog(m->tok, id) : 0; }

int32_t vkmix_token_find(const vkmix_model *m, const char *text)
{
    return m && text ? vkm_tokenizer_find(m->tok, text, strlen(text)) : -1;
}

struct vkmix_detokenizer {
    vkm_detok *d;
};

vkmix_error vkmix_detokenizer_create(const vkmix_model *m, vkmix_detokenizer **out)
{
    if (!m || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = vkm_detok_create(m->tok, 0, &(*out)->d);
    if (e != VKMIX_OK) {
        free(*out);
        *out = NULL;
    }
    return e;
}

void vkmix_detokenizer_free(vkmix_detokenizer *d)
{
    if (!d) return;
    vkm_detok_free(d->d);
    free(d);
}

vkmix_error vkmix_detokenizer_push(vkmix_detokenizer *d, int32_t id, const char **text, size_t *len)
{
    if (!d || !text || !len) return VKMIX_ERROR_INVALID_ARGUMENT;
    return vkm_detok_push(d->d, id, text, len);
}

vkmix_error vkmix_detokenizer_flush(vkmix_detokenizer *d, const char **text, size_t *len)
{
    if (!d || !text || !len) return VKMIX_ERROR_INVALID_ARGUMENT;
    return vkm_detok_flush(d->d, text, len);
}

/* ------------------------------------------------------------------ public sampler API */

struct vkmix_sampler {
    vkm_sampler *s;
};

void vkmix_sampler_default_params(vkmix_sampler_params *p)
{
    if (!p) return;
    vkm_sampler_params q;
    vkm_sampler_default_params(&q);
    p->temperature = q.temperature;
    p->top_k = q.top_k;
    p->top_p = q.top_p;
    p->min_p = q.min_p;
    p->repeat_penalty = q.repeat_penalty;
    p->repeat_last_n = q.repeat_last_n;
    p->seed = q.seed;
}

vkmix_error vkmix_sampler_create(const vkmix_sampler_params *p, vkmix_sampler **out)
{
    if (!out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkm_sampler_params q;
    vkm_sampler_default_params(&q);
    if (p) {
        q.temperature = p->temperature;
        q.top_k = p->top_k;
        q.top_p = p->top_p;
        q.min_p = p->min_p;
        q.repeat_penalty = p->repeat_penalty;
        q.repeat_last_n = p->repeat_last_n;
        q.seed = p->seed;
    }
    vkmix_sampler *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = vkm_sampler_create(&q, &s->s, NULL, 0);
    if (e != VKMIX_OK) {
        free(s);
        return e;
    }
    *out = s;
    return VKMIX_OK;
}

void vkmix_sampler_free(vkmix_sampler *s)
{
    if (!s) return;
    vkm_sampler_free(s->s);
    free(s);
}

vkmix_error vkmix_sampler_sample(vkmix_sampler *s, const float *logits, uint32_t n_vocab, int32_t *token)
{
    if (!s || !logits || !token) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_error e = vkm_sampler_sample2(s->s, logits, n_vocab, token, NULL, 0);
    if (e == VKMIX_OK) vkm_sampler_accept(s->s, *token);
    return e;
}

void vkmix_sampler_accept(vkmix_sampler *s, int32_t token)
{
    if (s) vkm_sampler_accept(s->s, token);
}

void vkmix_sampler_reset(vkmix_sampler *s)
{
    if (s) vkm_sampler_reset(s->s);
}
