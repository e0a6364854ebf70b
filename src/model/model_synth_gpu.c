/* Synthetic models with the shapes of real ones and random weights, generated
 * directly in device memory (shaders/fill_random.comp). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "model/model.h"
#include "ops/wlayout.h"

typedef struct {
    const char *name, *arch;
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    float theta;
    int tied;
} synth_shape;

static const synth_shape shapes[] = {
    { "llama3-8b", "llama", 128256, 4096, 32, 32, 8, 14336, 131072, 500000.0f, 0 },
    { "mistral-7b", "llama", 32000, 4096, 32, 32, 8, 14336, 32768, 1000000.0f, 0 },
    { "qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 4864, 32768, 1000000.0f, 1 },
    { "tiny", "llama", 512, 256, 2, 8, 4, 512, 4096, 10000.0f, 0 },
};

const char *vkmix_synthetic_models(void) { return "llama3-8b,mistral-7b,qwen2.5-0.5b,tiny"; }

static vkmix_error fill(vkmix_model *m, vkm_cmd *cmd, vkm_tensor *t, uint32_t type, int64_t cols, int64_t rows,
                        float scale, float offset, uint32_t seed)
{
    vkmix_context *ctx = m->ctx;
    memset(t, 0, sizeof *t);
    t->type = type;
    t->ne[0] = cols;
    t->ne[1] = rows;
    t->ne[2] = t->ne[3] = 1;
    uint64_t row_bytes;
    vkmix_error e = vkm_ggml_row_size(type, cols, &row_bytes);
    if (e != VKMIX_OK) return vkm_fail(&ctx->dev, e, "synthetic: %s rows of %lld", vkm_ggml_type_name(type), (long long)cols);
    t->n_bytes = row_bytes * (uint64_t)rows;
    m->info.weight_bytes += t->n_bytes;
    return vkm_fill_random_weight(cmd, &t->buf, type, (uint64_t)cols, (uint64_t)rows, scale, offset, seed);
}

/* A part of a fused weight: its shape only. */
static void part(vkm_tensor *t, uint32_t type, int64_t cols, int64_t rows)
{
    memset(t, 0, sizeof *t);
    t->type = type;
    t->ne[0] = cols;
    t->ne[1] = rows;
    t->ne[2] = t->ne[3] = 1;
}

vkmix_error vkm_fill_random_weight(vkm_cmd *cmd, vkm_buffer *buf, uint32_t type, uint64_t cols, uint64_t rows,
                                   float scale, float offset, uint32_t seed)
{
    vkmix_context *ctx = cmd->ctx;
    uint64_t row_bytes = vkm_wlayout_row_bytes(type, cols);
    if (!row_bytes) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "random weight: %s rows of %llu",
                                    vkm_ggml_type_name(type), (unsigned long long)cols);
    vkmix_error e = vkm_buffer_create(&ctx->dev, buf, row_bytes * rows, VKM_MEM_DEVICE);
    if (e != VKMIX_OK) return e;
    int is_float = type == VKM_GGML_F32 || type == VKM_GGML_F16 || type == VKM_GGML_BF16;
    uint64_t n = is_float ? cols * rows : row_bytes * rows / 4;
    if (n > UINT32_MAX) return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "random weight: too large");
    const vkm_pipeline *p;
    uint32_t wg = vkm_default_wg(ctx), spec[2] = { wg, type };
    if ((e = vkm_pipe(ctx, VKM_SH_FILL_RANDOM, spec, 2, &p)) != VKMIX_OK) return e;
    struct { uint32_t n, seed; float scale, offset; uint32_t n_in, row_words; } push = {
        (uint32_t)n, seed, scale, offset, (uint32_t)cols, (uint32_t)(row_bytes / 4)
    };
    vkm_binding b[3] = { VKM_BIND(*buf), VKM_BIND(*buf), VKM_BIND(*buf) };
    if ((e = vkm_cmd_begin(cmd)) != VKMIX_OK) return e;
    vkm_cmd_dispatch(cmd, p, b, 3, &push, sizeof push, vkm_groups_for(ctx, n, wg), 1, 1);
    return vkm_cmd_submit(cmd);
}

static vkmix_error synth_vocab(vkmix_model *m, char *err, size_t errlen)
{
    uint32_t V = m->hp.n_vocab;
    char **toks = calloc(V, sizeof *toks);
    int32_t *types = calloc(V, sizeof *types);
    float *scores = calloc(V, sizeof *scores);
    vkmix_error e = toks && types && scores ? VKMIX_OK : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t i = 0; i < V && e == VKMIX_OK; i++) {
        char buf[32];
        if (i == 0) snprintf(buf, sizeof buf, "<unk>"), types[i] = 2;
        else if (i == 1) snprintf(buf, sizeof buf, "<s>"), types[i] = 3;
        else if (i == 2) snprintf(buf, sizeof buf, "</s>"), types[i] = 3;
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3), types[i] = 6;
        else snprintf(buf, sizeof buf, "\xe2\x96\x81t%u", i), types[i] = 1, scores[i] = -(float)i;
        if (!(toks[i] = strdup(buf))) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    if (e == VKMIX_OK) {
        vkm_vocab_init in;
        vkm_vocab_init_defaults(&in);
        in.type = VKM_VOCAB_SPM;
        in.n_tokens = V;
        in.tokens = (const char *const *)toks;
        in.scores = scores;
        in.token_types = types;
        in.bos_id = 1;
        in.eos_id = 2;
        in.unk_id = 0;
        e = vkm_tokenizer_create(&in, &m->tok, err, errlen);
    }
    for (uint32_t i = 0; toks && i < V; i++) free(toks[i]);
    free(toks);
    free(types);
    free(scores);
    return e;
}

vkmix_error vkmix_model_create_synthetic(vkmix_context *ctx, const char *name, const char *wtype, uint64_t seed,
                                         vkmix_model **out)
{
    if (!ctx || !name || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = NULL;
    vkm_err_clear();
    const synth_shape *s = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) s = &shapes[i];
    if (!s)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT, "unknown synthetic model '%s' (known: %s)", name,
                        vkmix_synthetic_models());
    uint32_t wt = VKM_GGML_F16;
    if (wtype && vkm_weight_type_from_name(wtype, &wt) != VKMIX_OK)
        return vkm_fail(&ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "synthetic weight type '%s' (f32, f16, bf16, q8_0, q4_0, q4_k or q6_k)", wtype);
    vkmix_model *m = calloc(1, sizeof *m);
    if (!m) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    m->ctx = ctx;
    m->arch = !strcmp(s->arch, "qwen2") ? VKM_ARCH_QWEN2 : VKM_ARCH_LLAMA;
    vkm_hparams *hp = &m->hp;
    hp->n_vocab = s->n_vocab;
    hp->n_embd = s->n_embd;
    hp->n_layer = s->n_layer;
    hp->n_head = s->n_head;
    hp->n_head_kv = s->n_head_kv;
    hp->head_dim = s->n_embd / s->n_head;
    hp->n_ff = s->n_ff;
    hp->n_ctx_train = s->n_ctx;
    hp->rope_theta = s->theta;
    hp->norm_eps = 1e-5f;
    hp->rope_type = m->arch == VKM_ARCH_QWEN2 ? VKM_ROPE_NEOX : VKM_ROPE_NORM;
    vkm_rope_freqs(hp, m->rope_freqs);
    snprintf(m->info.arch, sizeof m->info.arch, "%s", s->arch);
    snprintf(m->info.name, sizeof m->info.name, "synthetic %s %s", s->name, vkm_ggml_type_name(wt));
    snprintf(m->info.weight_type, sizeof m->info.weight_type, "%s", vkm_ggml_type_name(wt));
    char msg[512] = "";
    vkm_cmd cmd; /* this call's own recording target */
    vkmix_error e = vkm_cmd_create(&cmd, &ctx->dev, ctx, false);
    if (e == VKMIX_OK) e = synth_vocab(m, msg, sizeof msg);
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    const float si = 1.7f / sqrtf((float)E), sf = 1.7f / sqrtf((float)hp->n_ff);
    uint32_t sd = (uint32_t)(seed * 2654435761u);
    if (e == VKMIX_OK) e = fill(m, &cmd, &m->tok_embd, wt, E, hp->n_vocab, 1.0f, 0, sd++);
    if (e == VKMIX_OK) e = fill(m, &cmd, &m->out_norm, VKM_GGML_F32, E, 1, 0.1f, 1.0f, sd++);
    if (e == VKMIX_OK && s->tied) {
        m->output = m->tok_embd;
        m->output_tied = 1;
    } else if (e == VKMIX_OK) e = fill(m, &cmd, &m->output, wt, E, hp->n_vocab, si, 0, sd++);
    if (e == VKMIX_OK && !(m->layers = calloc(hp->n_layer, sizeof *m->layers))) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t l = 0; l < hp->n_layer && e == VKMIX_OK; l++) {
        vkm_layer_w *L = &m->layers[l];
        e = fill(m, &cmd, &L->attn_norm, VKM_GGML_F32, E, 1, 0.1f, 1.0f, sd++);
        /* Q, K, V stacked and gate, up interleaved (as a model load fuses them);
         * the parts only carry their shapes */
        if (e == VKMIX_OK) e = fill(m, &cmd, &L->wqkv, wt, E, Q + 2 * KV, si, 0, sd++);
        part(&L->wq, wt, E, Q), part(&L->wk, wt, E, KV), part(&L->wv, wt, E, KV);
        if (e == VKMIX_OK && m->arch == VKM_ARCH_QWEN2) e = fill(m, &cmd, &L->bqkv, VKM_GGML_F32, Q + 2 * KV, 1, 0.5f, 0, sd++);
        if (e == VKMIX_OK) e = fill(m, &cmd, &L->wo, wt, Q, E, si, 0, sd++);
        if (e == VKMIX_OK) e = fill(m, &cmd, &L->ffn_norm, VKM_GGML_F32, E, 1, 0.1f, 1.0f, sd++);
        if (e == VKMIX_OK) e = fill(m, &cmd, &L->w_gate_up, wt, E, 2 * (int64_t)hp->n_ff, si, 0, sd++);
        part(&L->w_gate, wt, E, hp->n_ff), part(&L->w_up, wt, E, hp->n_ff);
        if (e == VKMIX_OK) e = fill(m, &cmd, &L->w_down, wt, hp->n_ff, E, sf, 0, sd++);
    }
    vkm_cmd_destroy(&cmd);
    if (e != VKMIX_OK) {
        char keep[512];
        snprintf(keep, sizeof keep, "%.500s", msg[0] ? msg : vkm_err_buf());
        vkmix_model_free(m);
        return vkm_fail(&ctx->dev, e, "synthetic %s: %s", name, keep);
    }
    vkm_model_fill_info(m);
    /* the weights are a function of the shapes, the type and the seed */
    m->fingerprint = vkm_hash(vkm_hash(vkm_hash(VKM_HASH_INIT, &m->hp, sizeof m->hp), m->info.name, sizeof m->info.name),
                              &seed, sizeof seed);
    *out = m;
    return VKMIX_OK;
}
