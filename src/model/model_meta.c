/* A model's metadata from a parsed GGUF, on the CPU: hyper-parameters and
 * RoPE frequencies, tokenizer, chat template (see model_meta.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "model/model_meta.h"

#define ERRF(e, ...) (snprintf(err, errlen, __VA_ARGS__), (e))

/* ------------------------------------------------------------------ hyper-parameters */

/* <arch>.<key> as a u32 in lo..hi into *out. Absent: *out keeps its default,
 * or MISSING_KEY when required. */
static vkmix_error arch_u32(const vkm_gguf *g, const char *arch, const char *key, int required, uint32_t lo,
                            uint32_t hi, uint32_t *out, char *err, size_t errlen)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (vkm_gguf_find_key(g, full) < 0) {
        if (required) return ERRF(VKMIX_ERROR_GGUF_MISSING_KEY, "missing required key '%s'", full);
        return VKMIX_OK;
    }
    uint32_t v = 0;
    vkmix_error e = vkm_gguf_get_u32(g, full, &v, err, errlen);
    if (e != VKMIX_OK) return e;
    if (v < lo || v > hi) return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s' is %u, outside %u..%u", full, v, lo, hi);
    *out = v;
    return VKMIX_OK;
}

/* <arch>.<key> as a finite f32 > 0 into *out; absent: *out keeps its default. */
static vkmix_error arch_f32_pos(const vkm_gguf *g, const char *arch, const char *key, float *out, char *err,
                                size_t errlen)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (vkm_gguf_find_key(g, full) < 0) return VKMIX_OK;
    float v = 0;
    vkmix_error e = vkm_gguf_get_f32(g, full, &v, err, errlen);
    if (e != VKMIX_OK) return e;
    if (!(v > 0) || !isfinite(v))
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s' is %g, must be a finite number > 0", full, (double)v);
    *out = v;
    return VKMIX_OK;
}

static vkmix_error read_arch(const vkm_gguf *g, vkm_model_meta *meta, char *err, size_t errlen)
{
    const char *arch;
    size_t alen;
    vkmix_error e = vkm_gguf_get_str(g, "general.architecture", &arch, &alen, err, errlen);
    if (e != VKMIX_OK) return e;
    char a[32];
    snprintf(a, sizeof a, "%.*s", (int)(alen < 31 ? alen : 31), arch);
    if (alen == 5 && !memcmp(arch, "llama", 5)) meta->arch = VKM_ARCH_LLAMA;
    else if (alen == 5 && !memcmp(arch, "qwen2", 5)) meta->arch = VKM_ARCH_QWEN2;
    else return ERRF(VKMIX_ERROR_UNSUPPORTED_ARCH, "unsupported architecture '%s' (vkmix runs llama and qwen2)", a);
    snprintf(meta->arch_name, sizeof meta->arch_name, "%s", a);
    return VKMIX_OK;
}

/* The sizes: layers, widths, heads, context. */
static vkmix_error read_sizes(const vkm_gguf *g, const char *a, vkm_hparams *hp, char *err, size_t errlen)
{
    vkmix_error e;
    if ((e = arch_u32(g, a, "embedding_length", 1, 1, VKM_MAX_EMBD, &hp->n_embd, err, errlen))) return e;
    if ((e = arch_u32(g, a, "block_count", 1, 1, VKM_MAX_LAYERS, &hp->n_layer, err, errlen))) return e;
    if ((e = arch_u32(g, a, "feed_forward_length", 1, 1, VKM_MAX_FF, &hp->n_ff, err, errlen))) return e;
    if ((e = arch_u32(g, a, "attention.head_count", 1, 1, VKM_MAX_HEADS, &hp->n_head, err, errlen))) return e;
    hp->n_head_kv = hp->n_head;
    if ((e = arch_u32(g, a, "attention.head_count_kv", 0, 1, hp->n_head, &hp->n_head_kv, err, errlen))) return e;
    if (hp->n_head % hp->n_head_kv)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s.attention.head_count' (%u) is not a multiple of '%s.attention.head_count_kv' (%u)",
                    a, hp->n_head, a, hp->n_head_kv);
    hp->n_ctx_train = 2048;
    return arch_u32(g, a, "context_length", 0, 1, VKM_MAX_CTX_TRAIN, &hp->n_ctx_train, err, errlen);
}

/* head_dim: attention.key_length (= value_length), else embedding_length / head_count. */
static vkmix_error read_head_dim(const vkm_gguf *g, const char *a, vkm_hparams *hp, char *err, size_t errlen)
{
    char klen[160];
    snprintf(klen, sizeof klen, "%s.attention.key_length", a);
    vkmix_error e;
    if (vkm_gguf_find_key(g, klen) >= 0) {
        if ((e = arch_u32(g, a, "attention.key_length", 1, 8, VKM_MAX_HEAD_DIM, &hp->head_dim, err, errlen))) return e;
    } else {
        if (hp->n_embd % hp->n_head)
            return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE,
                        "key '%s.embedding_length' (%u) is not a multiple of '%s.attention.head_count' (%u), and "
                        "'%s' is absent: no head size",
                        a, hp->n_embd, a, hp->n_head, klen);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    uint32_t vlen = hp->head_dim;
    if ((e = arch_u32(g, a, "attention.value_length", 0, 0, UINT32_MAX, &vlen, err, errlen))) return e;
    if (vlen != hp->head_dim)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s.attention.value_length' (%u) differs from the key length %u", a,
                    vlen, hp->head_dim);
    if (hp->head_dim % 8 || hp->head_dim > VKM_MAX_HEAD_DIM || hp->head_dim < 8)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "head_dim %u (%s) is not supported: vkmix needs a multiple of 8 in 8..%u",
                    hp->head_dim, vkm_gguf_find_key(g, klen) >= 0 ? klen : "embedding_length / head_count",
                    VKM_MAX_HEAD_DIM);
    uint32_t rope_dims = hp->head_dim;
    if ((e = arch_u32(g, a, "rope.dimension_count", 0, 0, UINT32_MAX, &rope_dims, err, errlen))) return e;
    if (rope_dims != hp->head_dim)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s.rope.dimension_count' (%u): partial RoPE (of head_dim %u) is not supported",
                    a, rope_dims, hp->head_dim);
    return VKMIX_OK;
}

/* n_vocab: the rows of token_embd.weight. */
static vkmix_error read_n_vocab(const vkm_gguf *g, vkm_hparams *hp, char *err, size_t errlen)
{
    int64_t ti = vkm_gguf_find_tensor(g, "token_embd.weight");
    if (ti < 0) return ERRF(VKMIX_ERROR_GGUF_MISSING_KEY, "missing tensor 'token_embd.weight'");
    const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, ti);
    if (t->ne[0] != hp->n_embd || t->ne[2] != 1 || t->ne[3] != 1 || t->ne[1] > VKM_MAX_VOCAB)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE,
                    "tensor token_embd.weight has shape [%lld, %lld, %lld, %lld], expected [%u, n_vocab <= %u]",
                    (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3], hp->n_embd,
                    VKM_MAX_VOCAB);
    hp->n_vocab = (uint32_t)t->ne[1];
    return VKMIX_OK;
}

/* RoPE frequencies; llama3 scaling comes as the factors of tensor rope_freqs.weight. */
static vkmix_error read_rope_freqs(const vkm_gguf *g, vkm_model_meta *meta, char *err, size_t errlen)
{
    const vkm_hparams *hp = &meta->hp;
    vkm_rope_freqs(hp, meta->rope_freqs);
    int64_t fi = vkm_gguf_find_tensor(g, "rope_freqs.weight");
    if (fi < 0) return VKMIX_OK;
    const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, fi);
    if (t->type != VKM_GGML_F32 || t->n_elements != hp->head_dim / 2)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tensor rope_freqs.weight must be F32 [%u]", hp->head_dim / 2);
    for (uint32_t i = 0; i < hp->head_dim / 2; i++) {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4);
        if (!(f > 0) || !isfinite(f))
            return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "rope_freqs.weight[%u] is %g, not a finite number > 0", i, (double)f);
        meta->rope_freqs[i] /= f;
        if (!(meta->rope_freqs[i] > 0) || !isfinite(meta->rope_freqs[i]))
            return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "rope_freqs.weight[%u] is %g: RoPE frequency %u becomes %g", i,
                        (double)f, i, (double)meta->rope_freqs[i]);
    }
    return VKMIX_OK;
}

vkmix_error vkm_model_meta_read(const vkm_gguf *g, vkm_model_meta *meta, char *err, size_t errlen)
{
    if (!g || !meta) return ERRF(VKMIX_ERROR_INVALID_ARGUMENT, "vkm_model_meta_read: NULL argument");
    memset(meta, 0, sizeof *meta);
    vkmix_error e = read_arch(g, meta, err, errlen);
    if (e != VKMIX_OK) return e;
    const char *a = meta->arch_name;
    vkm_hparams *hp = &meta->hp;
    hp->rope_theta = 10000.0f;
    hp->norm_eps = 1e-5f;
    hp->rope_type = meta->arch == VKM_ARCH_QWEN2 ? VKM_ROPE_NEOX : VKM_ROPE_NORM;
    if ((e = read_sizes(g, a, hp, err, errlen))) return e;
    if ((e = read_head_dim(g, a, hp, err, errlen))) return e;
    if ((e = arch_f32_pos(g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps, err, errlen))) return e;
    if ((e = arch_f32_pos(g, a, "rope.freq_base", &hp->rope_theta, err, errlen))) return e;
    if ((e = read_n_vocab(g, hp, err, errlen))) return e;
    if ((e = read_rope_freqs(g, meta, err, errlen))) return e;
    const char *name;
    size_t nlen;
    if (vkm_gguf_find_key(g, "general.name") >= 0 &&
        vkm_gguf_get_str(g, "general.name", &name, &nlen, NULL, 0) == VKMIX_OK)
        snprintf(meta->name, sizeof meta->name, "%.*s", (int)(nlen < 127 ? nlen : 127), name);
    return VKMIX_OK;
}

int vkm_model_meta_check(const vkm_model_meta *meta)
{
    const vkm_hparams *hp = &meta->hp;
    int ok = hp->n_embd >= 1 && hp->n_embd <= VKM_MAX_EMBD && hp->n_layer >= 1 && hp->n_layer <= VKM_MAX_LAYERS &&
             hp->n_ff >= 1 && hp->n_ff <= VKM_MAX_FF && hp->n_head >= 1 && hp->n_head <= VKM_MAX_HEADS &&
             hp->n_head_kv >= 1 && hp->n_head % hp->n_head_kv == 0 && hp->n_ctx_train >= 1 &&
             hp->n_ctx_train <= VKM_MAX_CTX_TRAIN && hp->n_vocab >= 1 && hp->n_vocab <= VKM_MAX_VOCAB &&
             hp->head_dim >= 8 && hp->head_dim <= VKM_MAX_HEAD_DIM && hp->head_dim % 8 == 0 &&
             hp->norm_eps > 0 && isfinite(hp->norm_eps) && hp->rope_theta > 0 && isfinite(hp->rope_theta) &&
             (meta->arch == VKM_ARCH_LLAMA || meta->arch == VKM_ARCH_QWEN2);
    for (uint32_t i = 0; ok && i < hp->head_dim / 2; i++) ok = meta->rope_freqs[i] > 0 && isfinite(meta->rope_freqs[i]);
    return ok;
}

/* ------------------------------------------------------------------ tokenizer */

/* A special token id: -1 when absent or written as -1 / 0xFFFFFFFF (which
 * llama.cpp's converter uses for "none"); otherwise an id below n. */
static vkmix_error opt_id(const vkm_gguf *g, const char *key, uint32_t n, int32_t *out, char *err, size_t errlen)
{
    *out = -1;
    if (vkm_gguf_find_key(g, key) < 0) return VKMIX_OK;
    int64_t v;
    vkmix_error e = vkm_gguf_get_i64(g, key, &v, err, errlen);
    if (e != VKMIX_OK) return e;
    if (v == -1 || v == 0xFFFFFFFFll) return VKMIX_OK;
    if (v < 0 || v >= (int64_t)n)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "key '%s' is %lld, not a token id (the vocabulary has %u tokens)", key,
                    (long long)v, n);
    *out = (int32_t)v;
    return VKMIX_OK;
}

/* A flag: -1 when absent, else 0/1. */
static vkmix_error opt_bool(const vkm_gguf *g, const char *key, int *out, char *err, size_t errlen)
{
    *out = -1;
    if (vkm_gguf_find_key(g, key) < 0) return VKMIX_OK;
    return vkm_gguf_get_bool(g, key, out, err, errlen);
}

static vkmix_error read_vocab_kind(const vkm_gguf *g, vkm_vocab_init *in, char *err, size_t errlen)
{
    const char *model;
    size_t mlen;
    vkmix_error e = vkm_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen, err, errlen);
    if (e != VKMIX_OK) return e;
    if (!vkm_vocab_type_from_name(model, mlen, &in->type))
        return ERRF(VKMIX_ERROR_TOKENIZER, "unsupported tokenizer '%.*s' (supported: llama, gpt2)",
                    (int)(mlen > 32 ? 32 : mlen), model);
    /* unknown pre-tokenizers fall back to the default (GPT-2's for a BPE vocabulary) */
    in->pre = VKM_PRETOK_DEFAULT;
    const char *pre;
    size_t plen;
    if (vkm_gguf_find_key(g, "tokenizer.ggml.pre") >= 0 &&
        vkm_gguf_get_str(g, "tokenizer.ggml.pre", &pre, &plen, NULL, 0) == VKMIX_OK)
        (void)vkm_pretok_from_name(pre, plen, &in->pre);
    return VKMIX_OK;
}

/* The arrays of tokenizer.ggml.* copied into host arrays the tokenizer reads. */
typedef struct {
    const char **strs;
    uint32_t *lens;
    float *scores;
    int32_t *types;
    const char **merges;
    uint32_t *merge_lens;
} vocab_arrays;

static void vocab_arrays_free(vocab_arrays *v)
{
    free(v->strs);
    free(v->lens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    free(v->merge_lens);
}

/* count strings of a string array into strs/lens. */
static vkmix_error copy_strings(const vkm_gguf_array *a, uint32_t count, const char ***strs, uint32_t **lens)
{
    *strs = calloc(count ? count : 1, sizeof **strs);
    *lens = calloc(count ? count : 1, sizeof **lens);
    if (!*strs || !*lens) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t i = 0; i < count; i++) {
        size_t l;
        vkmix_error e = vkm_gguf_arr_str(a, i, &(*strs)[i], &l);
        if (e != VKMIX_OK) return e;
        (*lens)[i] = (uint32_t)l;
    }
    return VKMIX_OK;
}

/* tokenizer.ggml.tokens (1..n_vocab strings), scores, token_type, merges. */
static vkmix_error read_vocab_arrays(const vkm_gguf *g, uint32_t n_vocab, vkm_vocab_init *in, vocab_arrays *v,
                                     char *err, size_t errlen)
{
    vkm_gguf_array toks, scores, types, merges;
    vkmix_error e = vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &toks, err, errlen);
    if (e != VKMIX_OK) return e;
    if (toks.count == 0 || toks.count > n_vocab)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tokenizer.ggml.tokens has %llu entries but the embedding has %u rows",
                    (unsigned long long)toks.count, n_vocab);
    const uint32_t n = (uint32_t)toks.count;
    if ((e = copy_strings(&toks, n, &v->strs, &v->lens)) != VKMIX_OK) return e;
    if (vkm_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &scores, err, errlen))) return e;
        if (scores.count != n)
            return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tokenizer.ggml.scores has %llu entries, tokenizer.ggml.tokens %u",
                        (unsigned long long)scores.count, n);
        if (!(v->scores = malloc(n * sizeof *v->scores))) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        for (uint32_t i = 0; i < n; i++) (void)vkm_gguf_arr_f32(&scores, i, &v->scores[i]);
        in->scores = v->scores;
    }
    if (vkm_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.token_type", -1, &types, err, errlen))) return e;
        if (types.count != n)
            return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tokenizer.ggml.token_type has %llu entries, tokenizer.ggml.tokens %u",
                        (unsigned long long)types.count, n);
        if (!(v->types = malloc(n * sizeof *v->types))) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        for (uint32_t i = 0; i < n; i++) {
            int64_t t = 1;
            if (vkm_gguf_arr_i64(&types, i, &t) != VKMIX_OK)
                return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tokenizer.ggml.token_type[%u] is not an integer (array of %s)", i,
                            vkm_gguf_type_name(types.type));
            v->types[i] = t < 0 || t > 6 ? 0 : (int32_t)t; /* out-of-range types are normal (tokenizer.c) */
        }
        in->token_types = v->types;
    }
    if (vkm_gguf_find_key(g, "tokenizer.ggml.merges") >= 0) {
        if ((e = vkm_gguf_get_arr(g, "tokenizer.ggml.merges", VKM_GGUF_STRING, &merges, err, errlen))) return e;
        if (merges.count > (1u << 30))
            return ERRF(VKMIX_ERROR_TOKENIZER, "tokenizer.ggml.merges has %llu entries, too many",
                        (unsigned long long)merges.count);
        in->n_merges = (uint32_t)merges.count;
        if ((e = copy_strings(&merges, in->n_merges, &v->merges, &v->merge_lens)) != VKMIX_OK) return e;
        in->merges = v->merges;
        in->merge_lens = v->merge_lens;
    }
    in->n_tokens = n;
    in->tokens = v->strs;
    in->token_lens = v->lens;
    return VKMIX_OK;
}

static vkmix_error read_special_ids(const vkm_gguf *g, vkm_vocab_init *in, char *err, size_t errlen)
{
    const uint32_t n = in->n_tokens;
    vkmix_error e;
    if ((e = opt_id(g, "tokenizer.ggml.bos_token_id", n, &in->bos_id, err, errlen))) return e;
    if ((e = opt_id(g, "tokenizer.ggml.eos_token_id", n, &in->eos_id, err, errlen))) return e;
    if ((e = opt_id(g, "tokenizer.ggml.unknown_token_id", n, &in->unk_id, err, errlen))) return e;
    if ((e = opt_id(g, "tokenizer.ggml.padding_token_id", n, &in->pad_id, err, errlen))) return e;
    if ((e = opt_id(g, "tokenizer.ggml.eot_token_id", n, &in->eot_id, err, errlen))) return e;
    if ((e = opt_bool(g, "tokenizer.ggml.add_bos_token", &in->add_bos, err, errlen))) return e;
    if ((e = opt_bool(g, "tokenizer.ggml.add_eos_token", &in->add_eos, err, errlen))) return e;
    return opt_bool(g, "tokenizer.ggml.add_space_prefix", &in->add_space_prefix, err, errlen);
}

vkmix_error vkm_model_vocab_read(const vkm_gguf *g, uint32_t n_vocab, vkm_tokenizer **out, char *err, size_t errlen)
{
    if (!g || !out) return ERRF(VKMIX_ERROR_INVALID_ARGUMENT, "vkm_model_vocab_read: NULL argument");
    *out = NULL;
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    vocab_arrays v = {0};
    vkmix_error e = read_vocab_kind(g, &in, err, errlen);
    if (e == VKMIX_OK) e = read_vocab_arrays(g, n_vocab, &in, &v, err, errlen);
    if (e == VKMIX_OK) e = read_special_ids(g, &in, err, errlen);
    if (e == VKMIX_OK) e = vkm_tokenizer_create(&in, out, err, errlen);
    if (e == VKMIX_ERROR_OUT_OF_HOST_MEMORY) snprintf(err, errlen, "out of host memory reading the vocabulary");
    vocab_arrays_free(&v);
    return e;
}

vkmix_error vkm_model_chat_template_read(const vkm_gguf *g, char **out)
{
    if (!g || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    const char *s;
    size_t n;
    if (vkm_gguf_find_key(g, "tokenizer.chat_template") < 0 ||
        vkm_gguf_get_str(g, "tokenizer.chat_template", &s, &n, NULL, 0) != VKMIX_OK)
        return VKMIX_OK;
    *out = malloc(n + 1);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    memcpy(*out, s, n);
    (*out)[n] = 0;
    return VKMIX_OK;
}
