/* A session: the KV cache of one sequence, the scratch buffers, and the forward
 * pass over them (llama2.c style: it reads like the math). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"
#include "session.h"

void vkmix_session_default_params(vkmix_session_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
}

static vkm_binding bind_or_none(const vkm_tensor *t)
{
    if (!t->buf.buf) return (vkm_binding){ NULL, 0, 0 };
    return VKM_BIND(t->buf);
}

static void free_buffers(vkmix_session *s)
{
    vkm_device *dev = &s->model->ctx->dev;
    vkm_buffer *b = &s->x;
    for (size_t i = 0; i < VKM_SESSION_N_SCRATCH; i++) vkm_buffer_destroy(dev, &b[i]);
    vkm_kv_cache_free(dev, &s->cache);
}

void vkmix_session_free(vkmix_session *s)
{
    if (!s) return;
    free_buffers(s);
    free(s);
}

vkmix_error vkmix_session_create(vkmix_model *m, const vkmix_session_params *p, vkmix_session **out)
{
    if (!m || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkmix_context *ctx = m->ctx;
    ctx->err[0] = 0;
    vkmix_session_params def;
    if (!p) {
        vkmix_session_default_params(&def);
        p = &def;
    }
    const vkm_hparams *hp = &m->hp;
    vkmix_session *s = calloc(1, sizeof *s);
    if (!s) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    s->model = m;
    s->n_ctx = p->n_ctx ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    s->n_batch = p->n_batch ? p->n_batch : 256;
    if (s->n_batch > s->n_ctx) s->n_batch = s->n_ctx;
    if (s->n_ctx > (1u << 24)) {
        free(s);
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "context length %u is too large", p->n_ctx);
    }
    vkmix_error e = vkm_kv_config_from_params(p, hp, s->n_ctx, &s->cache.cfg, ctx->err, sizeof ctx->err);
    if (e != VKMIX_OK) {
        free(s);
        return e;
    }
    if (s->cache.cfg.quantized && s->n_batch > VKM_KV_CHUNK) s->n_batch = VKM_KV_CHUNK;
    /* logits of several rows only when all_logits asks; keep that buffer modest */
    uint64_t row_bytes = (uint64_t)hp->n_vocab * 4;
    s->n_logit_rows = (uint32_t)((64ull << 20) / row_bytes);
    if (s->n_logit_rows < 1) s->n_logit_rows = 1;
    if (s->n_logit_rows > s->n_batch) s->n_logit_rows = s->n_batch;

    vkm_device *dev = &ctx->dev;
    const uint64_t nb = s->n_batch, E = hp->n_embd, Q = (uint64_t)hp->n_head * hp->head_dim,
                   KV = (uint64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    struct { vkm_buffer *b; uint64_t bytes; vkm_mem_kind kind; } want[] = {
        { &s->x, nb * E * 4, VKM_MEM_DEVICE },        { &s->h, nb * (E > F ? E : F) * 4, VKM_MEM_DEVICE },
        { &s->q, nb * Q * 4, VKM_MEM_DEVICE },        { &s->k, nb * KV * 4, VKM_MEM_DEVICE },
        { &s->v, nb * KV * 4, VKM_MEM_DEVICE },       { &s->att, nb * Q * 4, VKM_MEM_DEVICE },
        { &s->o, nb * E * 4, VKM_MEM_DEVICE },        { &s->g, nb * F * 4, VKM_MEM_DEVICE },
        { &s->u, nb * F * 4, VKM_MEM_DEVICE },        { &s->ids, nb * 4, VKM_MEM_HOST },
        { &s->logits, s->n_logit_rows * row_bytes, VKM_MEM_READBACK },
        { &s->freqs, hp->head_dim / 2 * 4, VKM_MEM_DEVICE },
        { &s->attn_scratch, vkm_op_attention_scratch(ctx, hp->n_head, hp->head_dim, s->n_ctx), VKM_MEM_DEVICE },
    };
    uint64_t scratch_bytes = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) scratch_bytes += want[i].bytes;
    e = vkm_kv_cache_create(ctx, &s->cache, hp, s->n_ctx);
    if (e != VKMIX_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%.400s", ctx->err);
        uint32_t n_ctx = s->n_ctx;
        vkmix_kv_memory mem;
        vkm_kv_memory(&s->cache.cfg, hp, n_ctx, 0, &mem);
        double need = (double)mem.total_bytes / 1048576.0;
        vkmix_session_free(s);
        return vkm_fail(dev, e, "KV cache for %u tokens needs %.1f MiB (plus %.1f MiB of scratch): %s", n_ctx, need,
                        (double)scratch_bytes / 1048576.0, msg);
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        e = vkm_buffer_create(dev, want[i].b, want[i].bytes, want[i].kind);
        if (e != VKMIX_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%.400s", ctx->err);
            vkmix_session_free(s);
            return vkm_fail(dev, e, "session scratch (%.1f MiB): %s", (double)scratch_bytes / 1048576.0, msg);
        }
    }
    e = vkm_buffer_upload(dev, &s->freqs, 0, m->rope_freqs, hp->head_dim / 2 * 4);
    if (e != VKMIX_OK) {
        vkmix_session_free(s);
        return e;
    }
    *out = s;
    return VKMIX_OK;
}

#define TRY(x) do { if ((e = (x)) != VKMIX_OK) return e; } while (0)

/* One chunk of n tokens at positions pos0.., already in s->ids. Writes logits of
 * the last token (or of every token when all) into s->logits. */
static vkmix_error forward(vkmix_session *s, uint32_t n, uint32_t pos0, int all)
{
    const vkmix_model *m = s->model;
    vkmix_context *ctx = m->ctx;
    vkm_device *dev = &ctx->dev;
    const vkm_hparams *hp = &m->hp;
    const uint32_t E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    const vkm_binding none = { NULL, 0, 0 };
    vkmix_error e;
    TRY(vkm_cmd_begin(dev));
    /* x = embedding rows of the tokens */
    TRY(vkm_op_get_rows(ctx, VKM_BIND(m->tok_embd.buf), m->tok_embd.type, VKM_BIND(s->ids), VKM_BIND(s->x), E, n));
    vkm_cmd_barrier(dev);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkm_layer_w *L = &m->layers[l];
        /* attention block: x += Wo attention(rope(Wq h), rope(Wk h), Wv h),  h = rmsnorm(x) */
        TRY(vkm_op_rmsnorm(ctx, VKM_BIND(s->x), VKM_BIND(L->attn_norm.buf), VKM_BIND(s->h), n, E, hp->norm_eps));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->wq.buf), L->wq.type, VKM_BIND(s->h), VKM_BIND(s->q), bind_or_none(&L->bq), E, Q, n));
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->wk.buf), L->wk.type, VKM_BIND(s->h), VKM_BIND(s->k), bind_or_none(&L->bk), E, KV, n));
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->wv.buf), L->wv.type, VKM_BIND(s->h), VKM_BIND(s->v), bind_or_none(&L->bv), E, KV, n));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_rope(ctx, VKM_BIND(s->q), VKM_BIND(s->freqs), n, hp->n_head, hp->head_dim, pos0, hp->rope_type));
        TRY(vkm_op_rope(ctx, VKM_BIND(s->k), VKM_BIND(s->freqs), n, hp->n_head_kv, hp->head_dim, pos0, hp->rope_type));
        vkm_cmd_barrier(dev);
        TRY(vkm_kv_cache_attend(ctx, &s->cache, l, VKM_BIND(s->q), VKM_BIND(s->k), VKM_BIND(s->v), VKM_BIND(s->att),
                                VKM_BIND(s->attn_scratch), n, pos0));
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->wo.buf), L->wo.type, VKM_BIND(s->att), VKM_BIND(s->o), none, Q, E, n));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_add(ctx, VKM_BIND(s->x), VKM_BIND(s->o), VKM_BIND(s->x), n * E));
        vkm_cmd_barrier(dev);
        /* feed-forward block: x += W_down (silu(W_gate h) * W_up h),  h = rmsnorm(x) */
        TRY(vkm_op_rmsnorm(ctx, VKM_BIND(s->x), VKM_BIND(L->ffn_norm.buf), VKM_BIND(s->h), n, E, hp->norm_eps));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->w_gate.buf), L->w_gate.type, VKM_BIND(s->h), VKM_BIND(s->g), none, E, F, n));
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->w_up.buf), L->w_up.type, VKM_BIND(s->h), VKM_BIND(s->u), none, E, F, n));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_silu_mul(ctx, VKM_BIND(s->g), VKM_BIND(s->u), VKM_BIND(s->g), n * F));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_matmul(ctx, VKM_BIND(L->w_down.buf), L->w_down.type, VKM_BIND(s->g), VKM_BIND(s->o), none, F, E, n));
        vkm_cmd_barrier(dev);
        TRY(vkm_op_add(ctx, VKM_BIND(s->x), VKM_BIND(s->o), VKM_BIND(s->x), n * E));
        vkm_cmd_barrier(dev);
    }
    /* logits = output rmsnorm(x) for the last row (or all rows) */
    uint32_t rows = all ? n : 1;
    if (!all && n > 1) {
        vkm_cmd_copy(dev, &s->x, (uint64_t)(n - 1) * E * 4, &s->o, 0, (uint64_t)E * 4);
        vkm_cmd_barrier(dev);
    }
    TRY(vkm_op_rmsnorm(ctx, VKM_BIND(*(all || n == 1 ? &s->x : &s->o)), VKM_BIND(m->out_norm.buf), VKM_BIND(s->h), rows, E,
                       hp->norm_eps));
    vkm_cmd_barrier(dev);
    TRY(vkm_op_matmul(ctx, VKM_BIND(m->output.buf), m->output.type, VKM_BIND(s->h), VKM_BIND(s->logits), none, E,
                      hp->n_vocab, rows));
    return vkm_cmd_submit(dev);
}

vkmix_error vkmix_session_eval(vkmix_session *s, const int32_t *tokens, uint32_t n, float *logits, int all_logits)
{
    if (!s || (!tokens && n)) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_context *ctx = s->model->ctx;
    ctx->err[0] = 0;
    const uint32_t V = s->model->hp.n_vocab;
    if (n == 0) return VKMIX_OK;
    if ((uint64_t)s->n_past + n > s->n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW,
                        "%u tokens do not fit: %u of the context's %u are used", n, s->n_past, s->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= V)
            return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "token %d at %u is not in the vocabulary (%u)",
                            tokens[i], i, V);
    uint32_t chunk = all_logits ? s->n_logit_rows : s->n_batch;
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < chunk ? n - done : chunk;
        memcpy(s->ids.mapped, tokens + done, (size_t)c * 4);
        vkmix_error e = forward(s, c, s->n_past, all_logits);
        if (e != VKMIX_OK) return e;
        s->n_past += c;
        if (logits && all_logits)
            memcpy(logits + (size_t)done * V, s->logits.mapped, (size_t)c * V * 4);
        done += c;
        if (logits && !all_logits && done == n) memcpy(logits, s->logits.mapped, (size_t)V * 4);
    }
    return VKMIX_OK;
}

uint32_t vkmix_session_n_past(const vkmix_session *s) { return s ? s->n_past : 0; }
uint32_t vkmix_session_n_ctx(const vkmix_session *s) { return s ? s->n_ctx : 0; }

void vkmix_session_reset(vkmix_session *s)
{
    if (s) s->n_past = 0; /* positions >= n_past are never read */
}

vkmix_error vkmix_session_kv_memory(const vkmix_session *s, vkmix_kv_memory *out)
{
    if (!s || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_kv_memory(&s->cache.cfg, &s->model->hp, s->n_ctx, 0, out);
    return VKMIX_OK;
}

vkmix_error vkmix_kv_memory_estimate(const vkmix_model *m, const vkmix_session_params *p, uint32_t n_tokens,
                                     vkmix_kv_memory *out)
{
    if (!m || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    const vkm_hparams *hp = &m->hp;
    uint32_t n_ctx = p && p->n_ctx ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (n_tokens > n_ctx) n_ctx = n_tokens;
    vkm_kv_config cfg;
    vkmix_error e = vkm_kv_config_from_params(p, hp, n_ctx, &cfg, m->ctx->err, sizeof m->ctx->err);
    if (e != VKMIX_OK) return e;
    vkm_kv_memory(&cfg, hp, n_ctx, n_tokens, out);
    return VKMIX_OK;
}
