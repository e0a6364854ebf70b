/* Walks everything a parsed GGUF offers: every key through every typed getter,
 * every array element (strings and nested arrays included), every tensor, and
 * the first row of every supported tensor dequantized. Shared by the fuzzer
 * (fuzz_gguf.c) and the corpus test (tests/test_gguf_corpus.c).
 *
 * Returns the number of inconsistencies found (lookups that do not agree with
 * iteration, accessors that fail where they must succeed); 0 is good. Touches
 * every byte it is given a pointer to, so ASan sees any out-of-bounds view. */
#ifndef VKM_GGUF_WALK_H
#define VKM_GGUF_WALK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"

static volatile uint32_t vkm_walk_sink;

static void vkm_walk_touch(const void *p, uint64_t n)
{
    const unsigned char *b = p;
    uint32_t s = 0;
    for (uint64_t i = 0; i < n; i++) s = s * 31 + b[i];
    vkm_walk_sink += s;
}

#define VKM_WALK_MAX_ELEMS 512 /* elements visited per array (first ones, then the last) */

static int vkm_walk_array(const vkm_gguf_array *a, int depth)
{
    int bad = 0;
    if (depth > VKM_GGUF_MAX_NESTING + 1) return 1;
    vkm_walk_touch(a->data, a->size);
    size_t es = vkm_gguf_type_size(a->type);
    if (es && a->size != a->count * es) bad++;
    for (uint64_t k = 0; k < a->count && k <= VKM_WALK_MAX_ELEMS; k++) {
        uint64_t i = k < VKM_WALK_MAX_ELEMS ? k : a->count - 1; /* last element too */
        int64_t iv;
        uint64_t uv;
        float f;
        double d;
        int b;
        (void)vkm_gguf_arr_i64(a, i, &iv);
        (void)vkm_gguf_arr_u64(a, i, &uv);
        vkmix_error ef = vkm_gguf_arr_f32(a, i, &f);
        vkmix_error ed = vkm_gguf_arr_f64(a, i, &d);
        vkmix_error eb = vkm_gguf_arr_bool(a, i, &b);
        if ((a->type == VKM_GGUF_F32 || a->type == VKM_GGUF_F64) && ed != VKMIX_OK) bad++;
        if (a->type == VKM_GGUF_F32 && ef != VKMIX_OK) bad++;
        if (a->type == VKM_GGUF_BOOL && eb != VKMIX_OK) bad++;
        if (a->type == VKM_GGUF_STRING) {
            const char *s = NULL;
            size_t n = 0;
            if (vkm_gguf_arr_str(a, i, &s, &n) != VKMIX_OK) bad++;
            else vkm_walk_touch(s, n);
        } else if (a->type == VKM_GGUF_ARRAY) {
            vkm_gguf_array sub;
            if (vkm_gguf_arr_sub(a, i, &sub) != VKMIX_OK) bad++;
            else bad += vkm_walk_array(&sub, depth + 1);
        }
    }
    /* out of range must be refused */
    const char *s;
    size_t n;
    int64_t iv;
    if (vkm_gguf_arr_str(a, a->count, &s, &n) == VKMIX_OK) bad++;
    if (vkm_gguf_arr_i64(a, a->count, &iv) == VKMIX_OK) bad++;
    return bad;
}

static int vkm_walk_gguf(const vkm_gguf *g)
{
    int bad = 0;
    int64_t n_kv = vkm_gguf_n_kv(g);
    for (int64_t i = 0; i < n_kv; i++) {
        const char *key = vkm_gguf_key_name(g, i);
        int type = vkm_gguf_key_type(g, i);
        if (!key || type < 0) {
            bad++;
            continue;
        }
        if (vkm_gguf_find_key(g, key) != i) bad++;
        char err[128];
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        float f;
        double d;
        int b;
        const char *s = NULL;
        size_t n = 0;
        vkm_gguf_array a;
        (void)vkm_gguf_get_u32(g, key, &u32, err, sizeof err);
        (void)vkm_gguf_get_i32(g, key, &i32, err, sizeof err);
        (void)vkm_gguf_get_u64(g, key, &u64, err, sizeof err);
        (void)vkm_gguf_get_i64(g, key, &i64, NULL, 0);
        (void)vkm_gguf_get_f32(g, key, &f, err, sizeof err);
        (void)vkm_gguf_get_f64(g, key, &d, err, 1);
        (void)vkm_gguf_get_bool(g, key, &b, err, sizeof err);
        if (vkm_gguf_get_str(g, key, &s, &n, err, sizeof err) == VKMIX_OK) {
            vkm_walk_touch(s, n + 1); /* includes the NUL terminator */
            if (s[n] != 0) bad++;
        } else if (type == VKM_GGUF_STRING) {
            bad++;
        }
        if (vkm_gguf_get_arr(g, key, -1, &a, err, sizeof err) == VKMIX_OK) bad += vkm_walk_array(&a, 0);
        else if (type == VKM_GGUF_ARRAY) bad++;
    }
    if (vkm_gguf_key_name(g, n_kv) != NULL || vkm_gguf_key_type(g, -1) != -1) bad++;

    int64_t n_t = vkm_gguf_n_tensors(g);
    uint64_t data_off = vkm_gguf_data_offset(g);
    const uint8_t *base = vkm_gguf_file_data(g);
    for (int64_t i = 0; i < n_t; i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        if (!t || !t->name) {
            bad++;
            continue;
        }
        if (vkm_gguf_find_tensor(g, t->name) != i) bad++;
        const vkm_ggml_type_info *ti = vkm_ggml_type_get(t->type);
        if (!ti) {
            bad++;
            continue;
        }
        if ((const uint8_t *)t->data != base + data_off + t->offset) bad++;
        if (t->n_bytes) {
            vkm_walk_touch(t->data, 1);
            vkm_walk_touch((const uint8_t *)t->data + t->n_bytes - 1, 1);
        }
        uint64_t bytes = 0;
        if (vkm_ggml_tensor_size(t->type, t->ne, &bytes) != VKMIX_OK || bytes != t->n_bytes) bad++;
        if (ti->supported && t->ne[0] <= (1 << 22)) {
            float *row = malloc((size_t)t->ne[0] * sizeof(float));
            if (row) {
                if (vkm_ggml_dequantize_row(t->type, t->data, row, t->ne[0]) != VKMIX_OK) bad++;
                vkm_walk_touch(row, (uint64_t)t->ne[0] * sizeof(float));
                free(row);
            }
        }
    }
    if (vkm_gguf_tensor_at(g, n_t) != NULL || vkm_gguf_tensor_at(g, -1) != NULL) bad++;
    return bad;
}

#endif /* VKM_GGUF_WALK_H */
