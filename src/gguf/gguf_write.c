/* A small GGUF v3 writer (see gguf.h). Everything is copied on add and laid
 * out at write time: header, key/values, tensor infos, padding, data. */
#include "gguf/gguf.h"
#include "gguf/ggml_types.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    size_t key_len;
    uint32_t type;
    uint8_t *payload;   /* serialized value without the type tag */
    size_t size;
} wkv;

typedef struct wtensor {
    char *name;
    size_t name_len;
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[4];
    uint8_t *data;
    uint64_t size;
} wtensor;

struct vkm_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
    uint64_t alignment;
};

static vkmix_error fail(char *err, size_t errlen, vkmix_error code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

vkmix_error vkm_gguf_writer_create(vkm_gguf_writer **out)
{
    if (!out) return VKMIX_ERROR_INVALID_ARGUMENT;
    *out = calloc(1, sizeof **out);
    if (!*out) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    (*out)->alignment = VKM_GGUF_DEFAULT_ALIGNMENT;
    return VKMIX_OK;
}

void vkm_gguf_writer_free(vkm_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].payload);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->ts[i].name);
        free(w->ts[i].data);
    }
    free(w->kvs);
    free(w->ts);
    free(w);
}

/* Takes ownership of payload (freed on failure). */
static vkmix_error add_kv(vkm_gguf_writer *w, const char *key, uint32_t type, uint8_t *payload, size_t size)
{
    if (!w || !key || !key[0]) { /* the reader refuses empty names */
        free(payload);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    size_t kl = strlen(key);
    for (size_t i = 0; i < w->n_kv; i++) {
        if (w->kvs[i].key_len == kl && memcmp(w->kvs[i].key, key, kl) == 0) {
            free(payload);
            return VKMIX_ERROR_GGUF_DUPLICATE;
        }
    }
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t a = size == 4 ? (uint32_t)(payload[0] | payload[1] << 8 | payload[2] << 16 | (uint32_t)payload[3] << 24) : 0;
        if (type != VKM_GGUF_U32 || a == 0 || (a & (a - 1)) != 0) {
            free(payload);
            return VKMIX_ERROR_GGUF_BAD_VALUE;
        }
        w->alignment = a;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *n = realloc(w->kvs, cap * sizeof *n);
        if (!n) {
            free(payload);
            return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        }
        w->kvs = n;
        w->cap_kv = cap;
    }
    char *k = malloc(kl + 1);
    if (!k) {
        free(payload);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    memcpy(k, key, kl + 1);
    w->kvs[w->n_kv++] = (wkv){k, kl, type, payload, size};
    return VKMIX_OK;
}

static vkmix_error add_scalar(vkm_gguf_writer *w, const char *key, uint32_t type, uint64_t bits)
{
    size_t n = vkm_gguf_type_size(type);
    uint8_t *p = malloc(n);
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    put_le(p, bits, n);
    return add_kv(w, key, type, p, n);
}

vkmix_error vkm_gguf_writer_add_u8(vkm_gguf_writer *w, const char *key, uint8_t v)
{ return add_scalar(w, key, VKM_GGUF_U8, v); }
vkmix_error vkm_gguf_writer_add_i8(vkm_gguf_writer *w, const char *key, int8_t v)
{ return add_scalar(w, key, VKM_GGUF_I8, (uint8_t)v); }
vkmix_error vkm_gguf_writer_add_u16(vkm_gguf_writer *w, const char *key, uint16_t v)
{ return add_scalar(w, key, VKM_GGUF_U16, v); }
vkmix_error vkm_gguf_writer_add_i16(vkm_gguf_writer *w, const char *key, int16_t v)
{ return add_scalar(w, key, VKM_GGUF_I16, (uint16_t)v); }
vkmix_error vkm_gguf_writer_add_u32(vkm_gguf_writer *w, const char *key, uint32_t v)
{ return add_scalar(w, key, VKM_GGUF_U32, v); }
vkmix_error vkm_gguf_writer_add_i32(vkm_gguf_writer *w, const char *key, int32_t v)
{ return add_scalar(w, key, VKM_GGUF_I32, (uint32_t)v); }
vkmix_error vkm_gguf_writer_add_u64(vkm_gguf_writer *w, const char *key, uint64_t v)
{ return add_scalar(w, key, VKM_GGUF_U64, v); }
vkmix_error vkm_gguf_writer_add_i64(vkm_gguf_writer *w, const char *key, int64_t v)
{ return add_scalar(w, key, VKM_GGUF_I64, (uint64_t)v); }
vkmix_error vkm_gguf_writer_add_bool(vkm_gguf_writer *w, const char *key, int v)
{ return add_scalar(w, key, VKM_GGUF_BOOL, v ? 1 : 0); }

vkmix_error vkm_gguf_writer_add_f32(vkm_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return add_scalar(w, key, VKM_GGUF_F32, u);
}

vkmix_error vkm_gguf_writer_add_f64(vkm_gguf_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return add_scalar(w, key, VKM_GGUF_F64, u);
}

vkmix_error vkm_gguf_writer_add_strn(vkm_gguf_writer *w, const char *key, const char *s, size_t len)
{
    if (!s && len) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (len > SIZE_MAX - 8) return VKMIX_ERROR_GGUF_OVERFLOW;
    uint8_t *p = malloc(8 + len);
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    put_le(p, len, 8);
    if (len) memcpy(p + 8, s, len);
    return add_kv(w, key, VKM_GGUF_STRING, p, 8 + len);
}

vkmix_error vkm_gguf_writer_add_str(vkm_gguf_writer *w, const char *key, const char *s)
{
    if (!s) return VKMIX_ERROR_INVALID_ARGUMENT;
    return vkm_gguf_writer_add_strn(w, key, s, strlen(s));
}

vkmix_error vkm_gguf_writer_add_arr(vkm_gguf_writer *w, const char *key, uint32_t type, const void *data,
                                    uint64_t count)
{
    size_t es = vkm_gguf_type_size(type);
    if (!es) return type < VKM_GGUF_TYPE_COUNT ? VKMIX_ERROR_INVALID_ARGUMENT : VKMIX_ERROR_GGUF_BAD_TYPE;
    if (!data && count) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (count > (SIZE_MAX - 12) / es) return VKMIX_ERROR_GGUF_OVERFLOW;
    const uint8_t *src = data;
    if (type == VKM_GGUF_BOOL)
        for (uint64_t i = 0; i < count; i++)
            if (src[i] > 1) return VKMIX_ERROR_GGUF_BAD_VALUE;
    size_t size = 12 + (size_t)count * es;
    uint8_t *p = malloc(size);
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    put_le(p, type, 4);
    put_le(p + 4, count, 8);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v = 0;
        switch (es) {
        case 1: v = src[i]; break;
        case 2: { uint16_t t; memcpy(&t, src + 2 * i, 2); v = t; break; }
        case 4: { uint32_t t; memcpy(&t, src + 4 * i, 4); v = t; break; }
        default: memcpy(&v, src + 8 * i, 8); break;
        }
        put_le(p + 12 + i * es, v, es);
    }
    return add_kv(w, key, VKM_GGUF_ARRAY, p, size);
}

vkmix_error vkm_gguf_writer_add_arr_str(vkm_gguf_writer *w, const char *key, const char *const *strs,
                                        const size_t *lens, uint64_t count)
{
    if (!strs && count) return VKMIX_ERROR_INVALID_ARGUMENT;
    size_t size = 12;
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i] && (!lens || lens[i])) return VKMIX_ERROR_INVALID_ARGUMENT;
        size_t l = lens ? lens[i] : strlen(strs[i]);
        if (l > SIZE_MAX - 8 - size) return VKMIX_ERROR_GGUF_OVERFLOW;
        size += 8 + l;
    }
    uint8_t *p = malloc(size), *q = p + 12;
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    put_le(p, VKM_GGUF_STRING, 4);
    put_le(p + 4, count, 8);
    for (uint64_t i = 0; i < count; i++) {
        size_t l = lens ? lens[i] : strlen(strs[i]);
        put_le(q, l, 8);
        if (l) memcpy(q + 8, strs[i], l);
        q += 8 + l;
    }
    return add_kv(w, key, VKM_GGUF_ARRAY, p, size);
}

vkmix_error vkm_gguf_writer_add_raw(vkm_gguf_writer *w, const char *key, uint32_t type, const void *payload,
                                    size_t size)
{
    uint64_t used = 0;
    vkmix_error e = vkm_gguf_value_size(type, payload, size, &used, NULL, 0);
    if (e != VKMIX_OK) return e;
    if (used != size) return VKMIX_ERROR_GGUF_BAD_VALUE; /* trailing bytes */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (size) memcpy(p, payload, size);
    return add_kv(w, key, type, p, size);
}

vkmix_error vkm_gguf_writer_add_tensor(vkm_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                       const int64_t *ne, const void *data, uint64_t size)
{
    if (!w || !name || !name[0] || !ne || n_dims < 1 || n_dims > 4) return VKMIX_ERROR_INVALID_ARGUMENT;
    int64_t full[4] = {1, 1, 1, 1};
    for (uint32_t i = 0; i < n_dims; i++) full[i] = ne[i];
    if (!vkm_ggml_type_get(type)) return VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE;
    uint64_t bytes = 0;
    vkmix_error e = vkm_ggml_tensor_size(type, full, &bytes);
    if (e != VKMIX_OK) return e;
    if (bytes != size || (!data && size) || size > SIZE_MAX) return VKMIX_ERROR_INVALID_ARGUMENT;
    size_t nl = strlen(name);
    for (size_t i = 0; i < w->n_t; i++)
        if (w->ts[i].name_len == nl && memcmp(w->ts[i].name, name, nl) == 0) return VKMIX_ERROR_GGUF_DUPLICATE;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *n = realloc(w->ts, cap * sizeof *n);
        if (!n) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        w->ts = n;
        w->cap_t = cap;
    }
    char *nm = malloc(nl + 1);
    uint8_t *d = malloc(size ? (size_t)size : 1);
    if (!nm || !d) {
        free(nm);
        free(d);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    memcpy(nm, name, nl + 1);
    if (size) memcpy(d, data, (size_t)size);
    wtensor *t = &w->ts[w->n_t++];
    *t = (wtensor){nm, nl, type, n_dims, {full[0], full[1], full[2], full[3]}, d, size};
    return VKMIX_OK;
}

static uint64_t pad(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

vkmix_error vkm_gguf_writer_write_memory(const vkm_gguf_writer *w, void **out, size_t *out_size, char *err,
                                         size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!w || !out || !out_size) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "gguf writer: NULL argument");
    *out = NULL;
    *out_size = 0;
    uint64_t a = w->alignment;
    /* sizes (all bounded by what was already allocated, so no overflow in practice;
     * still checked against SIZE_MAX at the end) */
    uint64_t pos = 4 + 4 + 8 + 8;
    for (size_t i = 0; i < w->n_kv; i++) pos += 8 + w->kvs[i].key_len + 4 + w->kvs[i].size;
    for (size_t i = 0; i < w->n_t; i++) pos += 8 + w->ts[i].name_len + 4 + 8ull * w->ts[i].n_dims + 4 + 8;
    uint64_t data_start = pad(pos, a);
    uint64_t *offs = calloc(w->n_t ? w->n_t : 1, sizeof *offs);
    if (!offs) return fail(err, errlen, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "gguf writer: out of memory");
    uint64_t dsize = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        offs[i] = dsize;
        dsize = pad(dsize + w->ts[i].size, a);
    }
    uint64_t total = data_start + dsize;
    if (total > SIZE_MAX) {
        free(offs);
        return fail(err, errlen, VKMIX_ERROR_GGUF_OVERFLOW, "gguf writer: file of %" PRIu64 " bytes is too large", total);
    }
    uint8_t *buf = calloc(1, (size_t)total);
    if (!buf) {
        free(offs);
        return fail(err, errlen, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "gguf writer: out of memory for %" PRIu64 " bytes",
                    total);
    }
    uint8_t *p = buf;
    memcpy(p, "GGUF", 4);
    put_le(p + 4, 3, 4);
    put_le(p + 8, w->n_t, 8);
    put_le(p + 16, w->n_kv, 8);
    p += 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *k = &w->kvs[i];
        put_le(p, k->key_len, 8);
        memcpy(p + 8, k->key, k->key_len);
        p += 8 + k->key_len;
        put_le(p, k->type, 4);
        p += 4;
        if (k->size) memcpy(p, k->payload, k->size);
        p += k->size;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        put_le(p, t->name_len, 8);
        memcpy(p + 8, t->name, t->name_len);
        p += 8 + t->name_len;
        put_le(p, t->n_dims, 4);
        p += 4;
        for (uint32_t d = 0; d < t->n_dims; d++, p += 8) put_le(p, (uint64_t)t->ne[d], 8);
        put_le(p, t->type, 4);
        put_le(p + 4, offs[i], 8);
        p += 12;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (w->ts[i].size) memcpy(buf + data_start + offs[i], w->ts[i].data, (size_t)w->ts[i].size);
    free(offs);
    *out = buf;
    *out_size = (size_t)total;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_writer_write_file(const vkm_gguf_writer *w, const char *path, char *err, size_t errlen)
{
    if (!path) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "gguf writer: NULL path");
    void *buf = NULL;
    size_t size = 0;
    vkmix_error e = vkm_gguf_writer_write_memory(w, &buf, &size, err, errlen);
    if (e != VKMIX_OK) return e;
    FILE *f = fopen(path, "wb");
    if (!f) {
        e = fail(err, errlen, VKMIX_ERROR_IO, "cannot create %s: %s", path, strerror(errno));
        free(buf);
        return e;
    }
    size_t n = fwrite(buf, 1, size, f);
    int bad = n != size;
    if (fclose(f) != 0) bad = 1;
    free(buf);
    if (bad) return fail(err, errlen, VKMIX_ERROR_IO, "cannot write %s", path);
    return VKMIX_OK;
}
