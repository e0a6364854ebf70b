/* Loading a GGUF model: the metadata (model_meta.c), then the weights to the device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "model/model.h"
#include "ops/wlayout.h"

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

/* Finds `name`, checks its type is supported and its shape is {ne0, ne1}, and
 * uploads it unless `upload` is 0 (a part of a fused weight: shape and host bytes only). */
static vkmix_error load_tensor(vkmix_model *m, vkm_cmd *cmd, const char *name, int64_t ne0, int64_t ne1,
                               int required, int upload, vkm_tensor *t, char *err, size_t errlen)
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
    m->info.weight_bytes += g->n_bytes;
    if (!upload) return VKMIX_OK;
    /* on the device the rows take their GPU layout (ops/wlayout.h); the host bytes stay the file's */
    uint64_t gpu_bytes = vkm_wlayout_row_bytes(g->type, (uint64_t)g->ne[0]) * (uint64_t)g->ne[1];
    if (!gpu_bytes) return ERRF(VKMIX_ERROR_GGUF_BAD_VALUE, "tensor %s: rows of %lld %s elements", name,
                                (long long)g->ne[0], vkm_ggml_type_name(g->type));
    vkm_device *dev = &m->ctx->dev;
    vkmix_error e = vkm_buffer_create(dev, &t->buf, gpu_bytes, VKM_MEM_DEVICE);
    if (e != VKMIX_OK) return ERRF(e, "tensor %s (%.1f MiB): %.300s", name, (double)gpu_bytes / 1048576.0, vkm_err_buf());
    e = vkm_wlayout_upload(cmd, &t->buf, g->type, g->data, (uint64_t)g->ne[0], (uint64_t)g->ne[1]);
    if (e != VKMIX_OK) return ERRF(e, "uploading %s: %.300s", name, vkm_err_buf());
    return VKMIX_OK;
}

static void free_tensor(vkm_device *dev, vkm_tensor *t) { vkm_buffer_destroy(dev, &t->buf); }

/* The type of tensor `name` (UINT32_MAX when absent). */
static uint32_t peek_type(const vkmix_model *m, const char *name)
{
    int64_t i = vkm_gguf_find_tensor(m->gguf, name);
    return i < 0 ? UINT32_MAX : vkm_gguf_tensor_at(m->gguf, i)->type;
}

/* One device buffer for n parts of the same type and row length: stacked
 * (rows of part 0, then of part 1, ...), or for two parts interleaved by rows. */
static vkmix_error fuse(vkmix_model *m, vkm_cmd *cmd, vkm_tensor *out, vkm_tensor *const *parts, int n, int interleave,
                        const char *what, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->type = parts[0]->type;
    out->ne[0] = parts[0]->ne[0];
    out->ne[2] = out->ne[3] = 1;
    for (int i = 0; i < n; i++) {
        out->ne[1] += parts[i]->ne[1];
        out->n_bytes += parts[i]->n_bytes;
    }
    uint64_t rb = vkm_wlayout_row_bytes(out->type, (uint64_t)out->ne[0]);
    vkm_device *dev = &m->ctx->dev;
    vkmix_error e = vkm_buffer_create(dev, &out->buf, rb * (uint64_t)out->ne[1], VKM_MEM_DEVICE);
    if (e != VKMIX_OK) return ERRF(e, "%s (%.1f MiB): %.300s", what, (double)rb * out->ne[1] / 1048576.0, vkm_err_buf());
    if (interleave) {
        e = vkm_wlayout_upload_interleaved(cmd, &out->buf, out->type, parts[0]->host, parts[1]->host,
                                           (uint64_t)out->ne[0], (uint64_t)parts[0]->ne[1]);
    } else {
        uint64_t row0 = 0;
        for (int i = 0; i < n && e == VKMIX_OK; i++) {
            e = vkm_wlayout_upload_at(cmd, &out->buf, out->type, parts[i]->host, (uint64_t)out->ne[0],
                                      (uint64_t)parts[i]->ne[1], row0);
            row0 += (uint64_t)parts[i]->ne[1];
        }
    }
    if (e != VKMIX_OK) return ERRF(e, "uploading %s: %.300s", what, vkm_err_buf());
    return VKMIX_OK;
}

/* bq, bk, bv stacked into one F32 vector. */
static vkmix_error fuse_bias(vkmix_model *m, vkm_cmd *cmd, vkm_layer_w *L, char *err, size_t errlen)
{
    vkm_tensor *b[3] = { &L->bq, &L->bk, &L->bv };
    vkm_tensor *t = &L->bqkv;
    memset(t, 0, sizeof *t);
    t->type = VKM_GGML_F32;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    for (int i = 0; i < 3; i++) t->ne[0] += b[i]->ne[0];
    vkmix_error e = vkm_buffer_create(&m->ctx->dev, &t->buf, (uint64_t)t->ne[0] * 4, VKM_MEM_DEVICE);
    uint64_t off = 0;
    for (int i = 0; i < 3 && e == VKMIX_OK; i++) {
        e = vkm_buffer_upload(cmd, &t->buf, off, b[i]->host, (uint64_t)b[i]->ne[0] * 4);
        off += (uint64_t)b[i]->ne[0] * 4;
    }
    if (e != VKMIX_OK) return ERRF(e, "Q/K/V biases: %.300s", vkm_err_buf());
    return VKMIX_OK;
}

/* Uploads every weight through the recording target cmd. */
static vkmix_error load_weights(vkmix_model *m, vkm_cmd *cmd, const vkmix_model_params *p, char *err, size_t errlen)
{
    const vkm_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const int64_t V = hp->n_vocab; /* the rows of token_embd.weight (vkm_model_meta_read) */
    vkmix_error e;
    if ((e = load_tensor(m, cmd, "token_embd.weight", E, V, 1, 1, &m->tok_embd, err, errlen))) return e;
    if ((e = load_tensor(m, cmd, "output_norm.weight", E, 1, 1, 1, &m->out_norm, err, errlen))) return e;
    if ((e = load_tensor(m, cmd, "output.weight", E, V, 0, 1, &m->output, err, errlen))) return e;
    if (!m->output.buf.buf) {
        m->output = m->tok_embd; /* tied: same buffer, freed once */
        m->output_tied = 1;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    char name[96];
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        vkm_layer_w *L = &m->layers[l];
        /* Q, K, V stacked and gate, up interleaved into one weight each (one
         * product each) when their types agree */
        char nq[96], nk[96], nv[96], ng[96], nu[96];
        snprintf(nq, sizeof nq, "blk.%u.attn_q.weight", l);
        snprintf(nk, sizeof nk, "blk.%u.attn_k.weight", l);
        snprintf(nv, sizeof nv, "blk.%u.attn_v.weight", l);
        snprintf(ng, sizeof ng, "blk.%u.ffn_gate.weight", l);
        snprintf(nu, sizeof nu, "blk.%u.ffn_up.weight", l);
        int fuse_qkv = peek_type(m, nq) == peek_type(m, nk) && peek_type(m, nq) == peek_type(m, nv);
        int fuse_gu = peek_type(m, ng) == peek_type(m, nu);
#define T(field, suffix, ne0, ne1, req, up)                                                       \
    do {                                                                                          \
        snprintf(name, sizeof name, "blk.%u.%s", l, suffix);                                      \
        if ((e = load_tensor(m, cmd, name, ne0, ne1, req, up, &L->field, err, errlen))) return e; \
    } while (0)
        T(attn_norm, "attn_norm.weight", E, 1, 1, 1);
        T(wq, "attn_q.weight", E, Q, 1, !fuse_qkv);
        T(wk, "attn_k.weight", E, KV, 1, !fuse_qkv);
        T(wv, "attn_v.weight", E, KV, 1, !fuse_qkv);
        T(bq, "attn_q.bias", Q, 1, m->arch == VKM_ARCH_QWEN2, 1);
        T(bk, "attn_k.bias", KV, 1, m->arch == VKM_ARCH_QWEN2, 1);
        T(bv, "attn_v.bias", KV, 1, m->arch == VKM_ARCH_QWEN2, 1);
        T(wo, "attn_output.weight", Q, E, 1, 1);
        T(ffn_norm, "ffn_norm.weight", E, 1, 1, 1);
        T(w_gate, "ffn_gate.weight", E, hp->n_ff, 1, !fuse_gu);
        T(w_up, "ffn_up.weight", E, hp->n_ff, 1, !fuse_gu);
        T(w_down, "ffn_down.weight", hp->n_ff, E, 1, 1);
#undef T
        if (fuse_qkv) {
            vkm_tensor *parts[3] = { &L->wq, &L->wk, &L->wv };
            if ((e = fuse(m, cmd, &L->wqkv, parts, 3, 0, "Q/K/V weights", err, errlen))) return e;
            if (L->bq.buf.buf && L->bk.buf.buf && L->bv.buf.buf && (e = fuse_bias(m, cmd, L, err, errlen))) return e;
        }
        if (fuse_gu) {
            vkm_tensor *parts[2] = { &L->w_gate, &L->w_up };
            if ((e = fuse(m, cmd, &L->w_gate_up, parts, 2, 1, "gate/up weights", err, errlen))) return e;
        }
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
