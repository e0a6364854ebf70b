/* Loading a GGUF model: the metadata (model_meta.c), then the weights to the device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "model/model.h"

#define ERRF(e, ...) (snprintf(err, errlen, __VA_ARGS__), (e))

vkmix_error vkm_model_load_meta(vkmix_model *m, char *err, size_t errlen)
{
    vkm_model_meta meta;
    vkmix_error e = vkm_model_meta_read(m->gguf, &meta, err, errlen);
    if (e != VKMIX_OK) return e;
    m->arch = meta.arch;
    m->hp = meta.hp;
    memcpy(m->rope_freqs, meta.rope_freqs, sizeof meta.rope_freqs);
    snprintf(m->info.arch, sizeof m->info.arch, "%s", meta.arch_name);
    snprintf(m->info.name, sizeof m->info.name, "%s", meta.name);
    if ((e = vkm_model_vocab_read(m->gguf, m->hp.n_vocab, &m->tok, err, errlen)) != VKMIX_OK) return e;
    if ((e = vkm_model_chat_template_read(m->gguf, &m->chat_template)) != VKMIX_OK)
        snprintf(err, errlen, "out of host memory reading tokenizer.chat_template");
    return e;
}

/* Finds `name`, checks its type is supported and its shape is {ne0, ne1}, uploads it. */
static vkmix_error load_tensor(vkmix_model *m, vkm_cmd *cmd, const char *name, int64_t ne0, int64_t ne1,
                               int required, vkm_tensor *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    int64_t i = vkm_gguf_find_tensor(m->gguf, name);
    if (i < 0) {
        if (required) return ERRF(VKMIX_ERROR_GGUF_MISSING_KEY, "missing tensor '%s'", name);
        return VKMIX_OK;
    }
    const vkm_gguf_tensor *g = vkm_gguf_tensor_at(m->gguf, i);
    if (!vkm_ggml_type_supported(g->type))
        return ERRF(VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type %s in tensor %s",
                    vkm_ggml_type_name(g->type), name);
    int is_vec = ne1 == 1;
    if (g->ne[0] != ne0 || g->ne[1] != ne1 || g->ne[2] != 1 || g->ne[3] != 1)
        return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                    name, (long long)g->ne[0], (long long)g->ne[1], (long long)g->ne[2], (long long)g->ne[3],
                    (long long)ne0, (long long)ne1);
    if (is_vec && g->type != VKM_GGML_F32)
        return ERRF(VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type %s in tensor %s (norms and biases must be F32)",
                    vkm_ggml_type_name(g->type), name);
    t->type = g->type;
    memcpy(t->ne, g->ne, sizeof t->ne);
    t->n_bytes = g->n_bytes;
    t->host = g->data;
    vkm_device *dev = &m->ctx->dev;
    vkmix_error e = vkm_buffer_create(dev, &t->buf, g->n_bytes, VKM_MEM_DEVICE);
    if (e != VKMIX_OK) return ERRF(e, "tensor %s (%.1f MiB): %.300s", name, (double)g->n_bytes / 1048576.0, vkm_err_buf());
    e = vkm_buffer_upload(cmd, &t->buf, 0, g->data, g->n_bytes);
    if (e != VKMIX_OK) return ERRF(e, "uploading %s: %.300s", name, vkm_err_buf());
    m->info.weight_bytes += g->n_bytes;
    return VKMIX_OK;
}

static void free_tensor(vkm_device *dev, vkm_tensor *t) { vkm_buffer_destroy(dev, &t->buf); }

/* Uploads every weight through the recording target cmd. */
static vkmix_error load_weights(vkmix_model *m, vkm_cmd *cmd, const vkmix_model_params *p, char *err, size_t errlen)
{
    const vkm_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t V = hp->n_vocab; /* the rows of token_embd.weight (vkm_model_meta_read) */
    vkmix_error e;
    if ((e = load_tensor(m, cmd, "token_embd.weight", E, V, 1, &m->tok_embd, err, errlen))) return e;
    if ((e = load_tensor(m, cmd, "output_norm.weight", E, 1, 1, &m->out_norm, err, errlen))) return e;
    if ((e = load_tensor(m, cmd, "output.weight", E, V, 0, &m->output, err, errlen))) return e;
    if (!m->output.buf.buf) {
        m->output = m->tok_embd; /* tied: same buffer, freed once */
        m->output_tied = 1;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    char name[96];
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        vkm_layer_w *L = &m->layers[l];
#define T(field, suffix, ne0, ne1, req)                                                     \
    do {                                                                                    \
        snprintf(name, sizeof name, "blk.%u.%s", l, suffix);                                \
        if ((e = load_tensor(m, cmd, name, ne0, ne1, req, &L->field, err, errlen))) return e;    \
    } while (0)
        T(attn_norm, "attn_norm.weight", E, 1, 1);
        T(wq, "attn_q.weight", E, Q, 1);
        T(wk, "attn_k.weight", E, KV, 1);
        T(wv, "attn_v.weight", E, KV, 1);
        T(bq, "attn_q.bias", Q, 1, m->arch == VKM_ARCH_QWEN2);
        T(bk, "attn_k.bias", KV, 1, m->arch == VKM_ARCH_QWEN2);
        T(bv, "attn_v.bias", KV, 1, m->arch == VKM_ARCH_QWEN2);
        T(wo, "attn_output.weight", Q, E, 1);
        T(ffn_norm, "ffn_norm.weight", E, 1, 1);
        T(w_gate, "ffn_gate.weight", E, hp->n_ff, 1);
        T(w_up, "ffn_up.weight", E, hp->n_ff, 1);
        T(w_down, "ffn_down.weight", hp->n_ff, E, 1);
#undef T
        if (p && p->progress) p->progress((float)(l + 1) / (float)hp->n_layer, p->progress_user);
    }
    snprintf(m->info.weight_type, sizeof m->info.weight_type, "%s", vkm_ggml_type_name(m->layers[0].wq.type));
    return VKMIX_OK;
}

/* The hyper-parameters, every tensor's name, type and shape, and 3 x 4 KiB of
 * each tensor's bytes (start, middle, end): cheap, and tells fine-tunes apart. */
static uint64_t fingerprint(const vkmix_model *m)
{
    uint64_t h = vkm_hash(VKM_HASH_INIT, &m->hp, sizeof m->hp);
    for (int64_t i = 0; i < vkm_gguf_n_tensors(m->gguf); i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(m->gguf, i);
        h = vkm_hash(h, t->name, strlen(t->name) + 1);
        h = vkm_hash(h, &t->type, sizeof t->type);
        h = vkm_hash(h, t->ne, sizeof t->ne);
        const uint64_t k = 4096, n = t->n_bytes;
        const unsigned char *d = t->data;
        if (n <= 3 * k) {
            h = vkm_hash(h, d, n);
        } else {
            h = vkm_hash(h, d, k);
            h = vkm_hash(h, d + n / 2 - k / 2, k);
            h = vkm_hash(h, d + n - k, k);
        }
    }
    return h;
}

void vkmix_model_default_params(vkmix_model_params *p)
{
    if (p) memset(p, 0, sizeof *p);
}

void vkmix_model_free(vkmix_model *m)
{
    if (!m) return;
    vkm_device *dev = &m->ctx->dev;
    if (m->layers) {
        for (uint32_t l = 0; l < m->hp.n_layer; l++) {
            vkm_tensor *t = &m->layers[l].attn_norm;
            for (size_t k = 0; k < sizeof(vkm_layer_w) / sizeof(vkm_tensor); k++) free_tensor(dev, &t[k]);
        }
        free(m->layers);
    }
    if (!m->output_tied) free_tensor(dev, &m->output);
    free_tensor(dev, &m->tok_embd);
    free_tensor(dev, &m->out_norm);
    vkm_tokenizer_free(m->tok);
    vkm_gguf_close(m->gguf);
    free(m->chat_template);
    free(m);
}

vkmix_error vkmix_model_load(vkmix_context *ctx, const char *path, const vkmix_model_params *p, vkmix_model **out)
{
    if (!ctx || !path || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    char *err = vkm_err_buf();
    size_t errlen = VKM_ERR_SIZE;
    err[0] = 0;
    vkmix_model *m = calloc(1, sizeof *m);
    if (!m) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    m->ctx = ctx;
    char msg[768] = "";
    vkmix_error e = vkm_gguf_open(path, &m->gguf, msg, sizeof msg);
    if (e == VKMIX_OK) e = vkm_model_load_meta(m, msg, sizeof msg);
    if (e == VKMIX_OK) {
        vkm_cmd cmd; /* this call's own recording target: model loads may run beside sessions */
        e = vkm_cmd_create(&cmd, &ctx->dev, ctx, false);
        if (e == VKMIX_OK) e = load_weights(m, &cmd, p, msg, sizeof msg);
        vkm_cmd_destroy(&cmd);
    }
    if (e != VKMIX_OK) {
        snprintf(err, errlen, "%s: %s", path, msg[0] ? msg : vkmix_strerror(e));
        vkmix_model_free(m);
        return e;
    }
    vkmix_model_info *I = &m->info;
    if (!I->name[0]) {
        const char *base = strrchr(path, '/');
        snprintf(I->name, sizeof I->name, "%s", base ? base + 1 : path);
    }
    vkm_model_fill_info(m);
    m->fingerprint = fingerprint(m);
    *out = m;
    return VKMIX_OK;
}

void vkm_model_fill_info(vkmix_model *m)
{
    const vkm_hparams *hp = &m->hp;
    vkmix_model_info *I = &m->info;
    I->n_layer = hp->n_layer;
    I->n_head = hp->n_head;
    I->n_head_kv = hp->n_head_kv;
    I->head_dim = hp->head_dim;
    I->n_embd = hp->n_embd;
    I->n_ff = hp->n_ff;
    I->n_vocab = hp->n_vocab;
    I->n_ctx_train = hp->n_ctx_train;
    I->bos = vkm_tokenizer_bos(m->tok);
    I->eos = vkm_tokenizer_eos(m->tok);
}

vkmix_error vkmix_model_get_info(const vkmix_model *m, vkmix_model_info *info)
{
    if (!m || !info) return VKMIX_ERROR_INVALID_ARGUMENT;
    *info = m->info;
    return VKMIX_OK;
}

const char *vkmix_model_chat_template(const vkmix_model *m) { return m ? m->chat_template : NULL; }
