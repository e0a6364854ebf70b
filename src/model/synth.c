/* Synthetic GGUF models (random weights, real shapes). */
#include "model/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"

static uint64_t rnd_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float rnd_normal(uint64_t *s)
{
    float u1 = ((float)(rnd_next(s) >> 40) + 1.0f) / 16777217.0f;
    float u2 = (float)(rnd_next(s) >> 40) / 16777216.0f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* Adds a [rows][cols] tensor of constant + N(0, scale^2) in `type`. */
static vkmix_error add_matrix(vkm_gguf_writer *w, const char *name, uint32_t type, int64_t cols, int64_t rows,
                              float scale, float constant, uint64_t *st, char *err, size_t errlen)
{
    uint64_t row_bytes;
    vkmix_error e = vkm_ggml_row_size(type, cols, &row_bytes);
    if (e != VKMIX_OK) {
        snprintf(err, errlen, "%s: %s cannot hold rows of %lld", name, vkm_ggml_type_name(type), (long long)cols);
        return e;
    }
    uint64_t bytes = row_bytes * (uint64_t)rows;
    char *data = malloc(bytes);
    float *row = malloc((size_t)cols * sizeof *row);
    if (!data || !row) {
        free(data);
        free(row);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    for (int64_t r = 0; r < rows && e == VKMIX_OK; r++) {
        for (int64_t c = 0; c < cols; c++) row[c] = constant + (scale > 0 ? rnd_normal(st) * scale : 0.0f);
        e = vkm_ggml_quantize_row(type, row, data + r * row_bytes, cols);
    }
    int64_t ne[2] = { cols, rows };
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_tensor(w, name, type, rows == 1 ? 1 : 2, ne, data, bytes);
    free(data);
    free(row);
    return e;
}

vkmix_error vkm_synth_write(const vkm_synth_spec *sp, const char *path, char *err, size_t errlen)
{
    vkm_gguf_writer *w;
    vkmix_error e = vkm_gguf_writer_create(&w);
    if (e != VKMIX_OK) return e;
    const char *a = sp->arch;
    char key[128];
    uint64_t st = sp->seed * 0x9E3779B97F4A7C15ull + 12345;
    uint32_t head_dim = sp->n_embd / sp->n_head;
#define KU32(k, v) do { snprintf(key, sizeof key, "%s." k, a); if (e == VKMIX_OK) e = vkm_gguf_writer_add_u32(w, key, v); } while (0)
#define KF32(k, v) do { snprintf(key, sizeof key, "%s." k, a); if (e == VKMIX_OK) e = vkm_gguf_writer_add_f32(w, key, v); } while (0)
    e = vkm_gguf_writer_add_str(w, "general.architecture", a);
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_str(w, "general.name", "vkmix synthetic");
    KU32("context_length", sp->n_ctx);
    KU32("embedding_length", sp->n_embd);
    KU32("block_count", sp->n_layer);
    KU32("feed_forward_length", sp->n_ff);
    KU32("attention.head_count", sp->n_head);
    KU32("attention.head_count_kv", sp->n_head_kv);
    KF32("attention.layer_norm_rms_epsilon", 1e-5f);
    KF32("rope.freq_base", sp->rope_theta > 0 ? sp->rope_theta : 10000.0f);
    /* vocabulary: <unk> <s> </s>, 256 byte tokens, then "▁a".."▁z", "a".."z", and pairs */
    uint32_t V = sp->n_vocab;
    char **toks = calloc(V, sizeof *toks);
    float *scores = calloc(V, sizeof *scores);
    int32_t *types = calloc(V, sizeof *types);
    if (!toks || !scores || !types) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t i = 0; i < V && e == VKMIX_OK; i++) {
        char buf[32];
        if (i == 0) snprintf(buf, sizeof buf, "<unk>"), types[i] = 2;
        else if (i == 1) snprintf(buf, sizeof buf, "<s>"), types[i] = 3;
        else if (i == 2) snprintf(buf, sizeof buf, "</s>"), types[i] = 3;
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3), types[i] = 6;
        else {
            uint32_t k = i - 259;
            types[i] = 1;
            if (k < 26) snprintf(buf, sizeof buf, "\xe2\x96\x81%c", 'a' + k);
            else if (k < 52) snprintf(buf, sizeof buf, "%c", 'a' + (k - 26));
            else snprintf(buf, sizeof buf, "%c%c#%u", 'a' + (k % 26), 'a' + (k / 26 % 26), k);
            scores[i] = -(float)k;
        }
        toks[i] = strdup(buf);
        if (!toks[i]) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, V);
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_arr(w, "tokenizer.ggml.scores", VKM_GGUF_F32, scores, V);
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", VKM_GGUF_I32, types, V);
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (e == VKMIX_OK) e = vkm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    for (uint32_t i = 0; toks && i < V; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);

    const int64_t E = sp->n_embd, Q = (int64_t)sp->n_head * head_dim, KV = (int64_t)sp->n_head_kv * head_dim;
    const float s_in = 1.0f / sqrtf((float)E), s_ff = 1.0f / sqrtf((float)sp->n_ff);
    if (e == VKMIX_OK) e = add_matrix(w, "token_embd.weight", sp->embd_type, E, V, 1.0f, 0, &st, err, errlen);
    if (e == VKMIX_OK) e = add_matrix(w, "output_norm.weight", VKM_GGML_F32, E, 1, 0, 1.0f, &st, err, errlen);
    if (e == VKMIX_OK && !sp->tied) e = add_matrix(w, "output.weight", sp->embd_type, E, V, s_in, 0, &st, err, errlen);
    char name[96];
    for (uint32_t l = 0; l < sp->n_layer && e == VKMIX_OK; l++) {
#define M(suffix, type, cols, rows, scale, c)                                                         \
        do {                                                                                          \
            snprintf(name, sizeof name, "blk.%u.%s", l, suffix);                                      \
            if (e == VKMIX_OK) e = add_matrix(w, name, type, cols, rows, scale, c, &st, err, errlen); \
        } while (0)
        M("attn_norm.weight", VKM_GGML_F32, E, 1, 0.1f, 1.0f);
        M("attn_q.weight", sp->wtype, E, Q, s_in, 0);
        M("attn_k.weight", sp->wtype, E, KV, s_in, 0);
        M("attn_v.weight", sp->wtype, E, KV, s_in, 0);
        if (!strcmp(a, "qwen2")) {
            M("attn_q.bias", VKM_GGML_F32, Q, 1, 0.5f, 0);
            M("attn_k.bias", VKM_GGML_F32, KV, 1, 0.5f, 0);
            M("attn_v.bias", VKM_GGML_F32, KV, 1, 0.5f, 0);
        }
        M("attn_output.weight", sp->wtype, Q, E, s_in, 0);
        M("ffn_norm.weight", VKM_GGML_F32, E, 1, 0.1f, 1.0f);
        M("ffn_gate.weight", sp->wtype, E, sp->n_ff, s_in, 0);
        M("ffn_up.weight", sp->wtype, E, sp->n_ff, s_in, 0);
        M("ffn_down.weight", sp->wtype, sp->n_ff, E, s_ff, 0);
#undef M
    }
    if (e == VKMIX_OK) e = vkm_gguf_writer_write_file(w, path, err, errlen);
    vkm_gguf_writer_free(w);
    return e;
}
