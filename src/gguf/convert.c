/* vkmix_convert_gguf: rewrite a model's matrices in another weight type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "vkmix.h"

/* The type tensor t gets: `to` for a matrix whose rows hold whole blocks and are a
 * multiple of 32 (what every GPU kernel reads), its own type otherwise. */
static uint32_t target_type(const vkm_gguf_tensor *t, uint32_t to)
{
    const vkm_ggml_type_info *ti = vkm_ggml_type_get(to);
    int matrix = t->n_dims >= 2 && t->ne[1] > 1 && vkm_ggml_type_supported(t->type);
    if (matrix && t->ne[0] % 32 == 0 && t->ne[0] % ti->block_size == 0) return to;
    return t->type;
}

vkmix_error vkmix_convert_gguf(const char *in_path, const char *out_path, const char *type, char *err, size_t errlen)
{
    return vkmix_convert_gguf_stats(in_path, out_path, type, NULL, err, errlen);
}

vkmix_error vkmix_convert_gguf_stats(const char *in_path, const char *out_path, const char *type,
                                     vkmix_convert_stats *stats, char *err, size_t errlen)
{
    char dummy[8];
    vkmix_convert_stats st_local;
    if (!err) { err = dummy; errlen = sizeof dummy; }
    if (!in_path || !out_path || !type) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkmix_convert_stats *st = stats ? stats : &st_local;
    void (*on_tensor)(const char *, const char *, const char *, void *) = stats ? stats->on_tensor : NULL;
    void *user = stats ? stats->user : NULL;
    memset(st, 0, sizeof *st);
    st->on_tensor = on_tensor;
    st->user = user;
    st->file_type_in = st->file_type_out = -1;
    uint32_t to, ftype;
    /* llama.cpp's llama_ftype: MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7 */
    if (!strcmp(type, "f16")) to = VKM_GGML_F16, ftype = 1;
    else if (!strcmp(type, "q8_0")) to = VKM_GGML_Q8_0, ftype = 7;
    else if (!strcmp(type, "q4_0")) to = VKM_GGML_Q4_0, ftype = 2;
    else {
        snprintf(err, errlen, "convert: type '%s' is not f16, q8_0 or q4_0", type);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    vkm_gguf *g = NULL;
    vkm_gguf_writer *w = NULL;
    vkmix_error e = vkm_gguf_open(in_path, &g, err, errlen);
    if (e == VKMIX_OK) e = vkm_gguf_writer_create(&w);
    /* what changes: the file type is the new one only when a tensor changed */
    for (int64_t i = 0; e == VKMIX_OK && i < vkm_gguf_n_tensors(g); i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        st->n_tensors++;
        if (target_type(t, to) != t->type) st->n_converted++;
        else if (t->type == to) st->n_kept_type++;
    }
    if (e == VKMIX_OK) {
        uint32_t ft;
        char e2[8];
        if (vkm_gguf_find_key(g, "general.file_type") >= 0 && vkm_gguf_get_u32(g, "general.file_type", &ft, e2, sizeof e2) == VKMIX_OK)
            st->file_type_in = (int32_t)ft;
    }
    int ftype_written = 0;
    for (int64_t i = 0; e == VKMIX_OK && i < vkm_gguf_n_kv(g); i++) {
        const void *p;
        uint64_t size;
        const char *key = vkm_gguf_key_name(g, i);
        if (!strcmp(key, "general.alignment")) continue;
        if (!strcmp(key, "general.file_type") && st->n_converted) {
            e = vkm_gguf_writer_add_u32(w, key, ftype);
            ftype_written = 1;
            continue;
        }
        e = vkm_gguf_key_raw(g, i, &p, &size);
        if (e == VKMIX_OK) e = vkm_gguf_writer_add_raw(w, key, (uint32_t)vkm_gguf_key_type(g, i), p, size);
    }
    if (e == VKMIX_OK && st->n_converted && !ftype_written) e = vkm_gguf_writer_add_u32(w, "general.file_type", ftype);
    if (e == VKMIX_OK) st->file_type_out = st->n_converted ? (int32_t)ftype : st->file_type_in;
    float *row = NULL;
    void *out = NULL;
    for (int64_t i = 0; e == VKMIX_OK && i < vkm_gguf_n_tensors(g); i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        uint32_t ty = target_type(t, to);
        st->bytes_in += t->n_bytes;
        if (on_tensor) on_tensor(t->name, vkm_ggml_type_name(t->type), vkm_ggml_type_name(ty), user);
        if (ty == t->type) {
            e = vkm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
            st->bytes_out += t->n_bytes;
            continue;
        }
        uint64_t in_row, out_row, rows = t->n_elements / (uint64_t)t->ne[0];
        vkm_ggml_row_size(t->type, t->ne[0], &in_row);
        vkm_ggml_row_size(ty, t->ne[0], &out_row);
        free(row);
        free(out);
        row = malloc((size_t)t->ne[0] * sizeof *row);
        out = malloc(out_row * rows);
        if (!row || !out) { e = VKMIX_ERROR_OUT_OF_HOST_MEMORY; break; }
        for (uint64_t r = 0; r < rows && e == VKMIX_OK; r++) {
            e = vkm_ggml_dequantize_row(t->type, (const char *)t->data + r * in_row, row, t->ne[0]);
            if (e == VKMIX_OK) e = vkm_ggml_quantize_row(ty, row, (char *)out + r * out_row, t->ne[0]);
        }
        if (e == VKMIX_OK) e = vkm_gguf_writer_add_tensor(w, t->name, ty, t->n_dims, t->ne, out, out_row * rows);
        if (e == VKMIX_OK) st->bytes_out += out_row * rows;
        if (e != VKMIX_OK) snprintf(err, errlen, "convert: tensor %s: %s", t->name, vkmix_strerror(e));
    }
    free(row);
    free(out);
    if (e == VKMIX_OK) e = vkm_gguf_writer_write_file(w, out_path, err, errlen);
    vkm_gguf_writer_free(w);
    vkm_gguf_close(g);
    return e;
}
