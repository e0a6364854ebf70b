/* Sessions and the forward pass (llama2.c style: it reads like the math).
 *
 * A forward pass runs `n` rows through the model. The rows are split into
 * segments, each the tokens of one sequence at consecutive positions with its
 * own KV cache: one segment of many rows for a prompt, or many one-row
 * segments for a batch of sequences decoding together. Every weight is read
 * once per pass, whatever the number of rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ops/ops.h"
#include "kv/kv_state.h"
#include "runtime/session.h"

void vkmix_session_default_params(vkmix_session_params *p)
{
    if (p) memset(p, 0, sizeof *p);
}

static vkm_binding bind_or_none(const vkm_tensor *t)
{
    if (!t->buf.buf) return (vkm_binding){ NULL, 0, 0 };
    return VKM_BIND(t->buf);
}

/* ------------------------------------------------------------------ scratch */

vkmix_error vkm_scratch_create(vkmix_model *m, vkm_cmd *cmd, vkm_scratch *s, uint32_t cap, uint32_t logit_rows)
{
    memset(s, 0, sizeof *s);
    const vkm_hparams *hp = &m->hp;
    vkm_device *dev = &m->ctx->dev;
    s->cap = cap;
    s->logit_rows = logit_rows;
    const uint64_t nb = cap, E = hp->n_embd, Q = (uint64_t)hp->n_head * hp->head_dim,
                   KV = (uint64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    uint64_t widest = E > Q ? E : Q;
    widest = widest > F ? widest : F;
    const uint64_t xq_rows = nb < VKM_MATVEC_MAX_COLS ? nb : VKM_MATVEC_MAX_COLS;
    struct { vkm_buffer *b; uint64_t bytes; vkm_mem_kind kind; } want[VKM_SCRATCH_N_BUFFERS] = {
        { &s->x, nb * E * 4, VKM_MEM_DEVICE },   { &s->h, nb * (E > F ? E : F) * 4, VKM_MEM_DEVICE },
        { &s->q, nb * Q * 4, VKM_MEM_DEVICE },   { &s->k, nb * KV * 4, VKM_MEM_DEVICE },
        { &s->v, nb * KV * 4, VKM_MEM_DEVICE },  { &s->att, nb * Q * 4, VKM_MEM_DEVICE },
        { &s->o, nb * E * 4, VKM_MEM_DEVICE },   { &s->g, nb * F * 4, VKM_MEM_DEVICE },
        { &s->u, nb * 2 * F * 4, VKM_MEM_DEVICE }, { &s->ids, nb * 4, VKM_MEM_HOST },
        { &s->logits, (uint64_t)logit_rows * hp->n_vocab * 4, VKM_MEM_READBACK },
        { &s->freqs, hp->head_dim / 2 * 4, VKM_MEM_DEVICE },
        { &s->xq, xq_rows * vkm_act_q_bytes((uint32_t)((widest + 31) / 32 * 32)), VKM_MEM_DEVICE },
    };
    uint64_t total = 0;
    for (int i = 0; i < VKM_SCRATCH_N_BUFFERS; i++) total += want[i].bytes;
    for (int i = 0; i < VKM_SCRATCH_N_BUFFERS; i++) {
        vkmix_error e = vkm_buffer_create(dev, want[i].b, want[i].bytes, want[i].kind);
        if (e != VKMIX_OK) {
            char msg[400];
            snprintf(msg, sizeof msg, "%.380s", vkm_err_buf());
            vkm_scratch_free(dev, s);
            return vkm_fail(dev, e, "activations for %u rows (%.1f MiB): %s", cap, (double)total / 1048576.0, msg);
        }
    }
    return vkm_buffer_upload(cmd, &s->freqs, 0, m->rope_freqs, hp->head_dim / 2 * 4);
}

void vkm_scratch_free(vkm_device *dev, vkm_scratch *s)
{
    vkm_buffer *b = &s->x;
    for (int i = 0; i < VKM_SCRATCH_N_BUFFERS; i++) vkm_buffer_destroy(dev, &b[i]);
}

/* ------------------------------------------------------------------ sessions */

void vkmix_session_free(vkmix_session *s)
{
    if (!s) return;
    vkm_device *dev = &s->model->ctx->dev;
    vkm_scratch_free(dev, &s->sc);
    vkm_buffer_destroy(dev, &s->attn_scratch);
    vkm_attn_work_free(dev, &s->attn);
    vkm_kv_cache_free(dev, &s->cache);
    vkm_cmd_destroy(&s->cmd);
    free(s);
}

vkmix_error vkmix_session_create(vkmix_model *m, const vkmix_session_params *p, vkmix_session **out)
{
    if (!m || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkmix_context *ctx = m->ctx;
    vkm_device *dev = &ctx->dev;
    vkm_err_clear();
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
    if (s->n_ctx > (1u << 24)) {
        free(s);
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "context length %u is too large", p->n_ctx);
    }
    vkmix_error e = vkm_kv_config_from_params(p, hp, s->n_ctx, &s->cache.cfg, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) {
        free(s);
        return e;
    }
    if ((e = vkm_cmd_create(&s->cmd, dev, ctx, false)) != VKMIX_OK) {
        free(s);
        return e;
    }
    if (s->cache.cfg.quantized && s->n_batch > VKM_KV_CHUNK) s->n_batch = VKM_KV_CHUNK;
    if (s->n_batch > s->n_ctx) s->n_batch = s->n_ctx;
    /* logits of several rows only when all_logits asks; keep that buffer modest */
    uint32_t logit_rows = (uint32_t)((64ull << 20) / ((uint64_t)hp->n_vocab * 4));
    if (logit_rows < 1) logit_rows = 1;
    if (logit_rows > s->n_batch) logit_rows = s->n_batch;
    /* a session that leads batches of batch_rows sequences holds their activations and logits */
    uint32_t rows = s->n_batch, br = p->batch_rows > 1024 ? 1024 : p->batch_rows;
    if (br > rows) rows = br;
    if (br > logit_rows) logit_rows = br;

    e = vkm_kv_cache_create(ctx, &s->cache, hp, s->n_ctx);
    if (e != VKMIX_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%.400s", vkm_err_buf());
        vkmix_kv_memory mem;
        vkm_kv_memory(&s->cache.cfg, hp, s->n_ctx, 0, &mem);
        uint32_t n_ctx = s->n_ctx;
        vkmix_session_free(s);
        return vkm_fail(dev, e, "the %s KV cache for %u tokens needs %.1f MiB: %s", mem.k_bits < 16 ? "quantized" : "f16",
                        n_ctx, (double)mem.total_bytes / 1048576.0, msg);
    }
    /* everything the session will use is allocated now: nothing grows later */
    e = vkm_kv_cache_reserve(ctx, &s->cache);
    if (e == VKMIX_OK) e = vkm_scratch_create(m, &s->cmd, &s->sc, rows, logit_rows);
    if (e == VKMIX_OK)
        e = vkm_buffer_create(dev, &s->attn_scratch, vkm_op_attention_scratch(ctx, hp->n_head, hp->head_dim, s->n_ctx),
                              VKM_MEM_DEVICE);
    /* the decode attention's table (every row a batch chunk may have) and partials (batch_rows rows) */
    if (e == VKMIX_OK && dev->bda)
        e = vkm_attn_work_create(ctx, &s->attn, &s->cache, p->batch_rows ? p->batch_rows : 1,
                                 s->sc.cap < s->sc.logit_rows ? s->sc.cap : s->sc.logit_rows);
    if (e != VKMIX_OK) {
        vkmix_session_free(s);
        return e;
    }
    *out = s;
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ the forward pass */

/* `n` consecutive rows of the scratch belong to one sequence. */
typedef struct segment {
    vkmix_session *s;
    uint32_t row0, n, pos0;
} segment;

#define TRY(x) do { if ((e = (x)) != VKMIX_OK) return e; } while (0)

static vkm_binding rows(const vkm_buffer *b, uint32_t row0, uint32_t n, uint64_t row_bytes)
{
    return VKM_BIND_RANGE(*b, row0 * row_bytes, n * row_bytes);
}

/* Attention of every segment: store, attend, age, each phase for all segments. */
static vkmix_error attention(vkm_cmd *cmd, vkm_scratch *sc, const segment *seg, uint32_t n_seg, uint32_t l,
                             vkm_attn_work *work, vkm_attn_row *work_rows)
{
    const vkm_hparams *hp = &seg[0].s->model->hp;
    const uint64_t qb = (uint64_t)hp->n_head * hp->head_dim * 4, kb = (uint64_t)hp->n_head_kv * hp->head_dim * 4;
    vkmix_error e;
    for (uint32_t i = 0; i < n_seg; i++)
        TRY(vkm_kv_cache_store(cmd, &seg[i].s->cache, l, rows(&sc->k, seg[i].row0, seg[i].n, kb),
                               rows(&sc->v, seg[i].row0, seg[i].n, kb), seg[i].n, seg[i].pos0));
    vkm_cmd_barrier(cmd);
    if (work && seg[0].n == 1) {
        /* decode: every row of the batch in one set of dispatches per layer shape */
        for (uint32_t i = 0; i < n_seg; i++)
            work_rows[i] = (vkm_attn_row){ &seg[i].s->cache, seg[i].row0, seg[i].pos0, VKM_BIND(seg[i].s->attn_scratch) };
        TRY(vkm_kv_decode(cmd, work, l, work_rows, n_seg, VKM_BIND(sc->q), VKM_BIND(sc->att)));
    } else {
        for (uint32_t i = 0; i < n_seg; i++)
            TRY(vkm_kv_cache_attention(cmd, &seg[i].s->cache, l, rows(&sc->q, seg[i].row0, seg[i].n, qb),
                                       rows(&sc->att, seg[i].row0, seg[i].n, qb), VKM_BIND(seg[i].s->attn_scratch),
                                       seg[i].n, seg[i].pos0));
    }
    vkm_cmd_barrier(cmd);
    int aged = 0;
    for (uint32_t i = 0; i < n_seg; i++) TRY(vkm_kv_cache_age(cmd, &seg[i].s->cache, l, seg[i].n, seg[i].pos0, &aged));
    if (aged) vkm_cmd_barrier(cmd);
    return VKMIX_OK;
}

/* The x of the weight products reading `f` ([n][width] f32): the integer
 * products of at most 16 rows read it quantized (vkm_op_act_quant into sc->xq),
 * with the RMS norm `norm` fused in when given. Without norm, when the
 * quantization is needed, it is recorded here, followed by a barrier. */
static vkmix_error act_of(vkm_cmd *cmd, vkm_scratch *sc, vkm_binding f, uint32_t width, uint32_t n, uint32_t wtype,
                          vkm_act *out)
{
    out->f = f;
    out->q = (vkm_binding){ NULL, 0, 0 };
    if (!vkm_matmul_uses_q(wtype, n)) return VKMIX_OK;
    out->q = VKM_BIND(sc->xq);
    vkmix_error e = vkm_op_act_quant(cmd, f, (vkm_binding){ NULL, 0, 0 }, out->q, n, width, 0.0f);
    vkm_cmd_barrier(cmd);
    return e;
}

/* h = rmsnorm(x) * w as the products of types[0..nt) read it: fp32 in sc->h
 * and/or quantized with the norm fused in (sc->xq). A barrier follows. */
static vkmix_error normed(vkm_cmd *cmd, const vkm_hparams *hp, vkm_scratch *sc, vkm_binding x, const vkm_tensor *w,
                          uint32_t n, const uint32_t *types, int nt, vkm_act *out)
{
    const uint32_t E = hp->n_embd;
    int need_q = 0, need_f = 0;
    for (int i = 0; i < nt; i++) {
        if (vkm_matmul_uses_q(types[i], n)) need_q = 1;
        else need_f = 1;
    }
    vkmix_error e = VKMIX_OK;
    out->f = VKM_BIND(sc->h);
    out->q = VKM_BIND(sc->xq);
    if (need_q) e = vkm_op_act_quant(cmd, x, VKM_BIND(w->buf), out->q, n, E, hp->norm_eps);
    if (need_f && e == VKMIX_OK) e = vkm_op_rmsnorm(cmd, x, VKM_BIND(w->buf), out->f, n, E, hp->norm_eps);
    vkm_cmd_barrier(cmd);
    return e;
}

static vkmix_error forward_layers(vkmix_model *m, vkm_cmd *cmd, vkm_scratch *sc, uint32_t n, const segment *seg,
                                  uint32_t n_seg, int all, vkm_attn_work *work, vkm_attn_row *work_rows);

/* n rows (token ids already in sc->ids). Logits of the last row, or of every row
 * (all), land in sc->logits. work: the decode attention's table and partials
 * (NULL: the per-row path). */
static vkmix_error forward(vkmix_model *m, vkm_cmd *cmd, vkm_scratch *sc, uint32_t n, const segment *seg,
                           uint32_t n_seg, int all, vkm_attn_work *work)
{
    /* decode rows of the v2 attention (one per segment) */
    vkm_attn_row *work_rows = NULL;
    if (work && seg[0].n == 1 && !(work_rows = malloc(n_seg * sizeof *work_rows))) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = forward_layers(m, cmd, sc, n, seg, n_seg, all, work, work_rows);
    free(work_rows);
    return e;
}

static vkmix_error forward_layers(vkmix_model *m, vkm_cmd *cmd, vkm_scratch *sc, uint32_t n, const segment *seg,
                                  uint32_t n_seg, int all, vkm_attn_work *work, vkm_attn_row *work_rows)
{
    const vkm_hparams *hp = &m->hp;
    const uint32_t E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    const vkm_binding none = { NULL, 0, 0 };
    const vkm_matmul_cfg add = { .add = 1 };   /* y += W x: the residual adds */
    vkmix_error e;
    vkm_act h, a;
    TRY(vkm_cmd_begin(cmd));
    /* x = embedding rows of the tokens */
    TRY(vkm_op_get_rows(cmd, VKM_BIND(m->tok_embd.buf), m->tok_embd.type, VKM_BIND(sc->ids), VKM_BIND(sc->x), E, n));
    vkm_cmd_barrier(cmd);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkm_layer_w *L = &m->layers[l];
        /* attention block: x += Wo attention(rope(Wq h), rope(Wk h), Wv h),  h = rmsnorm(x) */
        if (L->wqkv.buf.buf) {   /* Q, K, V in one product */
            TRY(normed(cmd, hp, sc, VKM_BIND(sc->x), &L->attn_norm, n, &L->wqkv.type, 1, &h));
            TRY(vkm_op_matmul_qkv(cmd, VKM_BIND(L->wqkv.buf), L->wqkv.type, h, VKM_BIND(sc->q), VKM_BIND(sc->k),
                                  VKM_BIND(sc->v), bind_or_none(&L->bqkv), E, Q, KV, n, NULL));
        } else {                 /* weights of different types */
            const uint32_t t[3] = { L->wq.type, L->wk.type, L->wv.type };
            TRY(normed(cmd, hp, sc, VKM_BIND(sc->x), &L->attn_norm, n, t, 3, &h));
            TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->wq.buf), L->wq.type, h, VKM_BIND(sc->q), bind_or_none(&L->bq), E, Q, n, NULL));
            TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->wk.buf), L->wk.type, h, VKM_BIND(sc->k), bind_or_none(&L->bk), E, KV, n, NULL));
            TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->wv.buf), L->wv.type, h, VKM_BIND(sc->v), bind_or_none(&L->bv), E, KV, n, NULL));
        }
        vkm_cmd_barrier(cmd);
        for (uint32_t i = 0; i < n_seg; i++) { /* each sequence at its own positions */
            TRY(vkm_op_rope(cmd, rows(&sc->q, seg[i].row0, seg[i].n, (uint64_t)Q * 4), VKM_BIND(sc->freqs), seg[i].n,
                            hp->n_head, hp->head_dim, seg[i].pos0, hp->rope_type));
            TRY(vkm_op_rope(cmd, rows(&sc->k, seg[i].row0, seg[i].n, (uint64_t)KV * 4), VKM_BIND(sc->freqs), seg[i].n,
                            hp->n_head_kv, hp->head_dim, seg[i].pos0, hp->rope_type));
        }
        vkm_cmd_barrier(cmd);
        TRY(attention(cmd, sc, seg, n_seg, l, work, work_rows));
        TRY(act_of(cmd, sc, VKM_BIND(sc->att), Q, n, L->wo.type, &a));
        TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->wo.buf), L->wo.type, a, VKM_BIND(sc->x), none, Q, E, n, &add));
        vkm_cmd_barrier(cmd);
        /* feed-forward block: x += W_down (silu(W_gate h) * W_up h),  h = rmsnorm(x) */
        if (L->w_gate_up.buf.buf) {   /* gate and up in one product */
            TRY(normed(cmd, hp, sc, VKM_BIND(sc->x), &L->ffn_norm, n, &L->w_gate_up.type, 1, &h));
            if (n <= VKM_MATVEC_MAX_COLS) {   /* silu(gate) * up applied in the product */
                TRY(vkm_op_matmul_glu(cmd, VKM_BIND(L->w_gate_up.buf), L->w_gate_up.type, h, VKM_BIND(sc->g), E, F, n, NULL));
            } else {
                TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->w_gate_up.buf), L->w_gate_up.type, h, VKM_BIND(sc->u), none, E, 2 * F,
                                    n, NULL));
                vkm_cmd_barrier(cmd);
                TRY(vkm_op_glu(cmd, VKM_BIND(sc->u), VKM_BIND(sc->g), n, F));
            }
        } else {                      /* weights of different types */
            const uint32_t t[2] = { L->w_gate.type, L->w_up.type };
            TRY(normed(cmd, hp, sc, VKM_BIND(sc->x), &L->ffn_norm, n, t, 2, &h));
            TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->w_gate.buf), L->w_gate.type, h, VKM_BIND(sc->g), none, E, F, n, NULL));
            TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->w_up.buf), L->w_up.type, h, VKM_BIND(sc->u), none, E, F, n, NULL));
            vkm_cmd_barrier(cmd);
            TRY(vkm_op_silu_mul(cmd, VKM_BIND(sc->g), VKM_BIND(sc->u), VKM_BIND(sc->g), n * F));
        }
        vkm_cmd_barrier(cmd);
        TRY(act_of(cmd, sc, VKM_BIND(sc->g), F, n, L->w_down.type, &a));
        TRY(vkm_op_matmul_x(cmd, VKM_BIND(L->w_down.buf), L->w_down.type, a, VKM_BIND(sc->x), none, F, E, n, &add));
        vkm_cmd_barrier(cmd);
    }
    /* logits = output rmsnorm(x) for the last row (or all rows) */
    uint32_t nr = all ? n : 1;
    if (!all && n > 1) {
        vkm_cmd_copy(cmd, &sc->x, (uint64_t)(n - 1) * E * 4, &sc->o, 0, (uint64_t)E * 4);
        vkm_cmd_barrier(cmd);
    }
    TRY(normed(cmd, hp, sc, VKM_BIND(*(all || n == 1 ? &sc->x : &sc->o)), &m->out_norm, nr, &m->output.type, 1, &h));
    TRY(vkm_op_matmul_x(cmd, VKM_BIND(m->output.buf), m->output.type, h, VKM_BIND(sc->logits), none, E, hp->n_vocab, nr,
                        NULL));
    return vkm_cmd_submit(cmd);
}

static vkmix_error check_tokens(vkmix_context *ctx, const int32_t *tokens, uint32_t n, uint32_t V)
{
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= V)
            return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "token %d at %u is not in the vocabulary (%u)",
                            tokens[i], i, V);
    return VKMIX_OK;
}

vkmix_error vkmix_session_eval(vkmix_session *s, const int32_t *tokens, uint32_t n, float *logits, int all_logits)
{
    if (!s || (!tokens && n)) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_context *ctx = s->model->ctx;
    vkm_err_clear();
    const uint32_t V = s->model->hp.n_vocab;
    if (n == 0) return VKMIX_OK;
    if ((uint64_t)s->n_past + n > s->n_ctx)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW,
                        "%u tokens do not fit: %u of the context's %u are used", n, s->n_past, s->n_ctx);
    vkmix_error e = check_tokens(ctx, tokens, n, V);
    if (e != VKMIX_OK) return e;
    uint32_t chunk = all_logits ? s->sc.logit_rows : s->n_batch;
    for (uint32_t done = 0; done < n;) {
        uint32_t c = n - done < chunk ? n - done : chunk;
        memcpy(s->sc.ids.mapped, tokens + done, (size_t)c * 4);
        segment seg = { s, 0, c, s->n_past };
        vkm_session_will_write(s, s->n_past + c);
        if ((e = forward(s->model, &s->cmd, &s->sc, c, &seg, 1, all_logits, s->attn.table.buf ? &s->attn : NULL)) !=
            VKMIX_OK)
            return e;
        s->n_past += c;
        if (logits && all_logits) memcpy(logits + (size_t)done * V, s->sc.logits.mapped, (size_t)c * V * 4);
        done += c;
        if (logits && !all_logits && done == n) memcpy(logits, s->sc.logits.mapped, (size_t)V * 4);
    }
    return VKMIX_OK;
}

vkmix_error vkmix_batch_decode(vkmix_session *const *ss, const int32_t *tokens, uint32_t n, float *logits)
{
    if (!ss || !tokens || !n || !ss[0]) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_model *m = ss[0]->model;
    vkmix_context *ctx = m->ctx;
    vkm_err_clear();
    const vkm_hparams *hp = &m->hp;
    for (uint32_t i = 0; i < n; i++) {
        if (!ss[i] || ss[i]->model != m)
            return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "batch row %u: not a session of the same model", i);
        for (uint32_t j = 0; j < i; j++)
            if (ss[j] == ss[i])
                return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "batch rows %u and %u are the same session", j, i);
        if (ss[i]->n_past + 1 > ss[i]->n_ctx)
            return vkm_fail(&ctx->dev, VKMIX_ERROR_CONTEXT_OVERFLOW, "batch row %u: the context of %u is full", i,
                            ss[i]->n_ctx);
    }
    vkmix_error e = check_tokens(ctx, tokens, n, hp->n_vocab);
    if (e != VKMIX_OK) return e;
    /* per-row bindings need aligned offsets; otherwise decode the rows one by one */
    uint64_t align = ctx->dev.caps.storage_align ? ctx->dev.caps.storage_align : 16;
    if (((uint64_t)hp->n_head_kv * hp->head_dim * 4) % align || ((uint64_t)hp->n_head * hp->head_dim * 4) % align) {
        for (uint32_t i = 0; i < n; i++)
            if ((e = vkmix_session_eval(ss[i], &tokens[i], 1, logits ? logits + (size_t)i * hp->n_vocab : NULL, 0)))
                return e;
        return VKMIX_OK;
    }
    /* the rows run on the first session's scratch and recording target, in
     * chunks of as many rows as that scratch holds (the model owns nothing) */
    vkmix_session *lead = ss[0];
    const uint32_t chunk = lead->sc.cap < lead->sc.logit_rows ? lead->sc.cap : lead->sc.logit_rows;
    /* the decode attention's table and partials: the lead's (every row's splits must fit them,
     * else the rows take the per-row path) */
    vkm_attn_work *work = lead->attn.table.buf ? &lead->attn : NULL;
    for (uint32_t i = 0; i < n && work; i++)
        if (vkm_attn_max_splits(ctx, &ss[i]->cache) > work->max_splits_row) work = NULL;
    segment *seg = malloc((size_t)chunk * sizeof *seg);
    if (!seg) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t r0 = 0; r0 < n && e == VKMIX_OK; r0 += chunk) {
        uint32_t c = n - r0 < chunk ? n - r0 : chunk;
        for (uint32_t i = 0; i < c; i++) {
            seg[i] = (segment){ ss[r0 + i], i, 1, ss[r0 + i]->n_past };
            vkm_session_will_write(ss[r0 + i], ss[r0 + i]->n_past + 1);
        }
        memcpy(lead->sc.ids.mapped, tokens + r0, (size_t)c * 4);
        e = forward(m, &lead->cmd, &lead->sc, c, seg, c, 1, work);
        if (e != VKMIX_OK) break;
        for (uint32_t i = 0; i < c; i++) ss[r0 + i]->n_past++;
        if (logits) memcpy(logits + (size_t)r0 * hp->n_vocab, lead->sc.logits.mapped, (size_t)c * hp->n_vocab * 4);
    }
    free(seg);
    return e;
}

uint32_t vkmix_session_n_past(const vkmix_session *s) { return s ? s->n_past : 0; }
uint32_t vkmix_session_n_ctx(const vkmix_session *s) { return s ? s->n_ctx : 0; }

void vkmix_session_reset(vkmix_session *s)
{
    if (!s) return;
    s->n_past = 0; /* positions >= n_past are never read */
    s->ring_from = 0;
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
    vkmix_error e = vkm_kv_config_from_params(p, hp, n_ctx, &cfg, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    vkm_kv_memory(&cfg, hp, n_ctx, n_tokens, out);
    return VKMIX_OK;
}
