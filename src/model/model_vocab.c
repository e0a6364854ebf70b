/* The tokenizer of a model, from GGUF metadata tokenizer.ggml.*, and the public
 * token functions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "text/sampler.h"

static int32_t opt_id(const vkm_gguf *g, const char *key)
{
    uint32_t v;
    if (vkm_gguf_find_key(g, key) < 0 || vkm_gguf_get_u32(g, key, &v, NULL, 0) != VKMIX_OK) return -1;
    return (int32_t)v;
}

static int opt_bool(const vkm_gguf *g, const char *key)
{
    int v;
    if (vkm_gguf_find_key(g, key) < 0 || vkm_gguf_get_bool(g, key, &v, NULL, 0) != VKMIX_OK) return -1;
    return v;
}

vkmix_error vkm_model_load_vocab(vkmix_model *m, char *err, size_t errlen)
{
    const vkm_gguf *g = m->gguf;
    const char *model;
    size_t mlen;
    vkmix_error e = vkm_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen, err, errlen);
    if (e != VKMIX_OK) return e;
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    if (mlen == 5 && !memcmp(model, "llama", 5)) in.type = VKM_VOCAB_SPM;
    else if (mlen == 4 && !memcmp(model, "gpt2", 4)) in.type = VKM_VOCAB_BPE;
    else {
        snprintf(err, errlen, "unsupported tokenizer '%.*s' (supported: llama, gpt2)", (int)(mlen > 32 ? 32 : mlen), model);
        return VKMIX_ERROR_TOKENIZER;
    }
    in.pre = VKM_PRETOK_DEFAULT;
    if (vkm_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        const char *pre;
        size_t plen;
        if (vkm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &plen, NULL, 0) == VKMIX_OK) {
            if ((plen == 9 && !memcmp(pre, "llama-bpe", 9)) || (plen == 6 && !memcmp(pre, "llama3", 6)))
                in.pre = VKM_PRETOK_LLAMA3;
            else if (plen == 5 && !memcmp(pre, "qwen2", 5)) in.pre = VKM_PRETOK_QWEN2;
            else if ((plen == 5 && !memcmp(pre, "gpt-2", 5)) || (plen == 7 && !memcmp(pre, "default", 7)))
                in.pre = VKM_PRETOK_GPT2;
        }
    }
    vkm_gguf_array toks, scores, types, merges;
    if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &toks, err, errlen))) return e;
    if (toks.count == 0 || toks.count > m->hp.n_vocab) {
        snprintf(err, errlen, "tokenizer.ggml.tokens has %llu entries but the embedding has %u rows",
                 (unsigned long long)toks.count, m->hp.n_vocab);
        return VKMIX_ERROR_GGUF_BAD_VALUE;
    }
    uint32_t n = (uint32_t)toks.count;
    const char **strs = calloc(n, sizeof *strs);
    uint32_t *lens = calloc(n, sizeof *lens);
    float *sc = NULL;
    int32_t *ty = NULL;
    const char **mstrs = NULL;
    uint32_t *mlens = NULL;
    e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (!strs || !lens) goto done;
    for (uint32_t i = 0; i < n; i++) {
        size_t l;
        if ((e = vkm_gguf_arr_str(&toks, i, &strs[i], &l)) != VKMIX_OK) goto done;
        lens[i] = (uint32_t)l;
    }
    if (vkm_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &scores, err, errlen))) goto done;
        if (scores.count != n) { e = VKMIX_ERROR_GGUF_BAD_VALUE; snprintf(err, errlen, "tokenizer.ggml.scores has the wrong length"); goto done; }
        if (!(sc = malloc(n * sizeof *sc))) { e = VKMIX_ERROR_OUT_OF_HOST_MEMORY; goto done; }
        for (uint32_t i = 0; i < n; i++) vkm_gguf_arr_f32(&scores, i, &sc[i]);
        in.scores = sc;
    }
    if (vkm_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &types, err, errlen))) goto done;
        if (types.count != n) { e = VKMIX_ERROR_GGUF_BAD_VALUE; snprintf(err, errlen, "tokenizer.ggml.token_type has the wrong length"); goto done; }
        if (!(ty = malloc(n * sizeof *ty))) { e = VKMIX_ERROR_OUT_OF_HOST_MEMORY; goto done; }
        for (uint32_t i = 0; i < n; i++) {
            int64_t v = 1;
            vkm_gguf_arr_i64(&types, i, &v);
            ty[i] = (int32_t)v;
        }
        in.token_types = ty;
    }
    if (vkm_gguf_find_key(g, "tokenizer.ggml.merges") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.merges", VKM_GGUF_STRING, &merges, err, errlen))) goto done;
        uint32_t nm = (uint32_t)merges.count;
        mstrs = calloc(nm ? nm : 1, sizeof *mstrs);
        mlens = calloc(nm ? nm : 1, sizeof *mlens);
        if (!mstrs || !mlens) { e = VKMIX_ERROR_OUT_OF_HOST_MEMORY; goto done; }
        for (uint32_t i = 0; i < nm; i++) {
            size_t l;
            if ((e = vkm_gguf_arr_str(&merges, i, &mstrs[i], &l)) != VKMIX_OK) goto done;
            mlens[i] = (uint32_t)l;
        }
        in.n_merges = nm;
        in.merges = mstrs;
        in.merge_lens = mlens;
    }
    in.n_tokens = n;
    in.tokens = strs;
    in.token_lens = lens;
    in.bos_id = opt_id(g, "tokenizer.ggml.bos_token_id");
    in.eos_id = opt_id(g, "tokenizer.ggml.eos_token_id");
    in.unk_id = opt_id(g, "tokenizer.ggml.unknown_token_id");
    in.pad_id = opt_id(g, "tokenizer.ggml.padding_token_id");
    in.eot_id = opt_id(g, "tokenizer.ggml.eot_token_id");
    in.add_bos = opt_bool(g, "tokenizer.ggml.add_bos_token");
    in.add_eos = opt_bool(g, "tokenizer.ggml.add_eos_token");
    in.add_space_prefix = opt_bool(g, "tokenizer.ggml.add_space_prefix");
    e = vkm_tokenizer_create(&in, &m->tok, err, errlen);
done:
    free(strs);
    free(lens);
    free(sc);
    free(ty);
    free(mstrs);
    free(mlens);
    return e;
}

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
