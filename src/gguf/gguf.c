/* GGUF v2/v3 reader: validates the whole header at open, then serves typed
 * lookups from hash tables. See gguf.h. */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "gguf/gguf.h"
#include "gguf/ggml_types.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- types */

static const struct { const char *name; size_t size; } k_vtypes[VKM_GGUF_TYPE_COUNT] = {
    [VKM_GGUF_U8] = {"u8", 1},       [VKM_GGUF_I8] = {"i8", 1},
    [VKM_GGUF_U16] = {"u16", 2},     [VKM_GGUF_I16] = {"i16", 2},
    [VKM_GGUF_U32] = {"u32", 4},     [VKM_GGUF_I32] = {"i32", 4},
    [VKM_GGUF_F32] = {"f32", 4},     [VKM_GGUF_BOOL] = {"bool", 1},
    [VKM_GGUF_STRING] = {"string", 0}, [VKM_GGUF_ARRAY] = {"array", 0},
    [VKM_GGUF_U64] = {"u64", 8},     [VKM_GGUF_I64] = {"i64", 8},
    [VKM_GGUF_F64] = {"f64", 8},
};

const char *vkm_gguf_type_name(uint32_t type)
{
    return type < VKM_GGUF_TYPE_COUNT ? k_vtypes[type].name : "unknown";
}

size_t vkm_gguf_type_size(uint32_t type)
{
    return type < VKM_GGUF_TYPE_COUNT ? k_vtypes[type].size : 0;
}

static int is_int_type(uint32_t t)
{
    return t <= VKM_GGUF_I32 || t == VKM_GGUF_U64 || t == VKM_GGUF_I64;
}

/* ---------------------------------------------------------------- handle */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
} arena_chunk;

typedef struct gguf_kv {
    const char *name;        /* NUL-terminated copy */
    size_t name_len;
    uint32_t type;
    const uint8_t *val;      /* serialized value in the file (after the type tag) */
    const char *str;         /* STRING: NUL-terminated copy */
    size_t str_len;
    vkm_gguf_array arr;      /* ARRAY: view */
    uint64_t *index_owned;   /* ARRAY of STRING/ARRAY: element offsets */
} gguf_kv;

struct vkm_gguf {
    const uint8_t *base;
    uint64_t size;
    void *map;               /* owned mapping (vkm_gguf_open) or NULL */
    size_t map_size;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    gguf_kv *kvs;
    uint64_t *kv_hash;       /* slots hold index + 1; 0 = empty */
    uint64_t kv_hash_mask;
    int64_t n_tensors;
    vkm_gguf_tensor *tensors;
    uint64_t *t_hash;
    uint64_t t_hash_mask;
    arena_chunk *arena;
};

/* ---------------------------------------------------------------- errors */

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

/* A printable, bounded, quoted copy of a name from the file for messages. */
typedef struct { char s[80]; } safe_name;
static safe_name sname(const char *p, size_t n)
{
    safe_name r;
    size_t cap = 64, o = 0;
    r.s[o++] = '\'';
    for (size_t i = 0; i < n && i < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        r.s[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > cap) { r.s[o++] = '.'; r.s[o++] = '.'; r.s[o++] = '.'; }
    r.s[o++] = '\'';
    r.s[o] = 0;
    return r;
}
static safe_name sname_z(const char *p) { return sname(p ? p : "(null)", p ? strlen(p) : 6); }

/* ---------------------------------------------------------------- arena */

static char *arena_copy(vkm_gguf *g, const void *src, size_t n)
{
    size_t need = n + 1;
    arena_chunk *c = g->arena;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > 65536 ? need : 65536;
        if (cap > SIZE_MAX - sizeof(arena_chunk)) return NULL;
        c = malloc(sizeof(arena_chunk) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = g->arena;
        g->arena = c;
    }
    char *p = c->data + c->used;
    if (n) memcpy(p, src, n);
    p[n] = 0;
    c->used += need;
    return p;
}

/* ---------------------------------------------------------------- hashing */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t *hash_alloc(int64_t n, uint64_t *mask)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    *mask = cap - 1;
    return calloc(cap, sizeof(uint64_t));
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    const uint8_t *p;
    uint64_t n, pos;
} rd;

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t rem(const rd *r) { return r->n - r->pos; }

static int rd_u32(rd *r, uint32_t *v)
{
    if (rem(r) < 4) return 0;
    *v = (uint32_t)le(r->p + r->pos, 4);
    r->pos += 4;
    return 1;
}

static int rd_u64(rd *r, uint64_t *v)
{
    if (rem(r) < 8) return 0;
    *v = le(r->p + r->pos, 8);
    r->pos += 8;
    return 1;
}

/* Reading context for messages: what is being parsed. */
typedef struct {
    char *err;
    size_t errlen;
    const char *what;  /* "key" or "tensor" */
    safe_name name;
} ectx;

#define EFAIL(ec, code, ...) fail((ec)->err, (ec)->errlen, code, __VA_ARGS__)

/* Reads a string header and bounds-checks its bytes. */
static vkmix_error rd_str(rd *r, const uint8_t **s, uint64_t *len, const ectx *ec, const char *role)
{
    uint64_t n;
    if (!rd_u64(r, &n))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "%s %s: file ends inside the length of its %s",
                     ec->what, ec->name.s, role);
    if (n > rem(r))
        return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW,
                     "%s %s: %s length %" PRIu64 " exceeds the %" PRIu64 " bytes left in the file",
                     ec->what, ec->name.s, role, n, rem(r));
    *s = r->p + r->pos;
    *len = n;
    r->pos += n;
    return VKMIX_OK;
}

/* Validates and skips one value of `type` (after its type tag). For an array
 * whose elements are strings or arrays, index (when not NULL) receives each
 * element's offset from the array's first element. */
static vkmix_error parse_value(rd *r, uint32_t type, int depth, const ectx *ec, uint64_t **index,
                               uint32_t *arr_type, uint64_t *arr_count, uint64_t *arr_start)
{
    if (type >= VKM_GGUF_TYPE_COUNT)
        return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_TYPE, "%s %s: unknown value type %" PRIu32,
                     ec->what, ec->name.s, type);
    size_t fixed = k_vtypes[type].size;
    if (fixed) {
        if (rem(r) < fixed)
            return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "%s %s: file ends inside its %s value",
                         ec->what, ec->name.s, k_vtypes[type].name);
        if (type == VKM_GGUF_BOOL && r->p[r->pos] > 1)
            return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_VALUE, "%s %s: bool value %u is not 0 or 1",
                         ec->what, ec->name.s, r->p[r->pos]);
        r->pos += fixed;
        return VKMIX_OK;
    }
    if (type == VKM_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        return rd_str(r, &s, &n, ec, "string");
    }
    /* array */
    uint32_t et;
    uint64_t count;
    if (!rd_u32(r, &et) || !rd_u64(r, &count))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "%s %s: file ends inside an array header",
                     ec->what, ec->name.s);
    if (et >= VKM_GGUF_TYPE_COUNT)
        return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_TYPE, "%s %s: unknown array element type %" PRIu32,
                     ec->what, ec->name.s, et);
    if (arr_type) *arr_type = et;
    if (arr_count) *arr_count = count;
    if (arr_start) *arr_start = r->pos;
    size_t esize = k_vtypes[et].size;
    if (esize) {
        if (count > rem(r) / esize)
            return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW,
                         "%s %s: array of %" PRIu64 " %s needs more than the %" PRIu64
                         " bytes left in the file",
                         ec->what, ec->name.s, count, k_vtypes[et].name, rem(r));
        if (et == VKM_GGUF_BOOL) {
            for (uint64_t i = 0; i < count; i++)
                if (r->p[r->pos + i] > 1)
                    return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_VALUE,
                                 "%s %s: bool array element %" PRIu64 " is %u, not 0 or 1",
                                 ec->what, ec->name.s, i, r->p[r->pos + i]);
        }
        r->pos += count * esize;
        return VKMIX_OK;
    }
    /* strings (>= 8 bytes each) or arrays (>= 12 bytes each) */
    uint64_t min_elem = et == VKM_GGUF_STRING ? 8 : 12;
    if (count > rem(r) / min_elem)
        return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW,
                     "%s %s: array of %" PRIu64 " %ss cannot fit in the %" PRIu64
                     " bytes left in the file",
                     ec->what, ec->name.s, count, k_vtypes[et].name, rem(r));
    if (et == VKM_GGUF_ARRAY && depth + 1 >= VKM_GGUF_MAX_NESTING)
        return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW, "%s %s: arrays nested more than %d deep",
                     ec->what, ec->name.s, VKM_GGUF_MAX_NESTING);
    uint64_t *idx = NULL;
    if (index && count) {
        idx = malloc((size_t)count * sizeof(uint64_t));
        if (!idx)
            return EFAIL(ec, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "%s %s: out of memory for a %" PRIu64
                         "-element array index", ec->what, ec->name.s, count);
    }
    uint64_t start = r->pos;
    for (uint64_t i = 0; i < count; i++) {
        if (idx) idx[i] = r->pos - start;
        vkmix_error e = parse_value(r, et, depth + 1, ec, NULL, NULL, NULL, NULL);
        if (e != VKMIX_OK) {
            free(idx);
            return e;
        }
    }
    if (index) *index = idx;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_value_size(uint32_t type, const void *p, size_t avail, uint64_t *size, char *err,
                                size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!p && avail) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_value_size: NULL data");
    rd r = {p ? p : (const uint8_t *)"", avail, 0};
    ectx ec = {err, errlen, "value", {"(payload)"}};
    vkmix_error e = parse_value(&r, type, 0, &ec, NULL, NULL, NULL, NULL);
    if (e == VKMIX_OK && size) *size = r.pos;
    return e;
}

/* ---------------------------------------------------------------- open */

static int has_nul(const uint8_t *s, uint64_t n) { return memchr(s, 0, (size_t)n) != NULL; }

/* Appends a hint to the message already in err. */
static void append(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    size_t n = strnlen(err, errlen);
    if (n + 1 >= errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - n, fmt, ap);
    va_end(ap);
}

/* "GGUF" | u32 version | u64 n_tensors | u64 n_kv, the counts checked against
 * what the rest of the file could hold. */
static vkmix_error parse_header(vkm_gguf *g, rd *r, uint64_t *n_tensors, uint64_t *n_kv, char *err, size_t errlen)
{
    if (g->size < 4)
        return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED, "file is %" PRIu64 " bytes, too short for GGUF",
                    g->size);
    if (memcmp(g->base, "GGUF", 4) != 0)
        return fail(err, errlen, VKMIX_ERROR_GGUF_MAGIC, "bad magic %02x %02x %02x %02x (expected \"GGUF\")",
                    g->base[0], g->base[1], g->base[2], g->base[3]);
    r->pos = 4;
    uint32_t version;
    if (!rd_u32(r, &version))
        return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED, "file ends inside the GGUF version");
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0 && version != 0)
            return fail(err, errlen, VKMIX_ERROR_GGUF_MAGIC,
                        "GGUF version 0x%08" PRIx32 " looks big-endian; only little-endian v2/v3 is read",
                        version);
        return fail(err, errlen, VKMIX_ERROR_GGUF_MAGIC, "GGUF version %" PRIu32 " is not supported (need 2 or 3)",
                    version);
    }
    g->version = version;
    if (!rd_u64(r, n_tensors) || !rd_u64(r, n_kv))
        return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED, "file ends inside the GGUF header counts");
    /* smallest key/value: 8-byte length + 4-byte type + 1-byte value;
     * smallest tensor info: 8-byte length + n_dims + type + offset */
    if (*n_kv > rem(r) / 13)
        return fail(err, errlen, VKMIX_ERROR_GGUF_OVERFLOW,
                    "n_kv %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file", *n_kv, rem(r));
    if (*n_tensors > rem(r) / 24)
        return fail(err, errlen, VKMIX_ERROR_GGUF_OVERFLOW,
                    "n_tensors %" PRIu64 " cannot fit in the %" PRIu64 " bytes left in the file", *n_tensors,
                    rem(r));
    return VKMIX_OK;
}

/* The name of key or tensor #i of the n the header promises: bounds-checked,
 * not empty, no NUL byte. Names ec after it. */
static vkmix_error read_entry_name(rd *r, ectx *ec, uint64_t i, uint64_t n, const uint8_t **name, uint64_t *len)
{
    snprintf(ec->name.s, sizeof ec->name.s, "#%" PRIu64, i);
    vkmix_error e = rd_str(r, name, len, ec, "name");
    if (e != VKMIX_OK) return e;
    if (*len == 0)
        return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_VALUE,
                     "%s #%" PRIu64 " has an empty name; the header promises %" PRIu64
                     " %s%s, maybe more than the file holds",
                     ec->what, i, n, ec->what, n == 1 ? "" : "s");
    ec->name = sname((const char *)*name, (size_t)*len);
    if (has_nul(*name, *len))
        return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_VALUE, "%s %s: name contains a NUL byte", ec->what, ec->name.s);
    return VKMIX_OK;
}

/* Key #i: name (unique), value type, value (validated; strings copied, arrays indexed). */
static vkmix_error parse_kv(vkm_gguf *g, rd *r, uint64_t i, uint64_t n_kv, ectx *ec)
{
    gguf_kv *kv = &g->kvs[i];
    const uint8_t *name;
    uint64_t name_len;
    vkmix_error e = read_entry_name(r, ec, i, n_kv, &name, &name_len);
    if (e != VKMIX_OK) {
        if (i + 1 == n_kv && (e == VKMIX_ERROR_GGUF_TRUNCATED || e == VKMIX_ERROR_GGUF_OVERFLOW))
            append(ec->err, ec->errlen, "; does the header promise more keys (%" PRIu64 ") than the file holds?",
                   n_kv);
        return e;
    }
    kv->name = arena_copy(g, name, (size_t)name_len);
    if (!kv->name) return EFAIL(ec, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    kv->name_len = (size_t)name_len;
    uint64_t h = hash_bytes(kv->name, kv->name_len) & g->kv_hash_mask;
    while (g->kv_hash[h]) {
        const gguf_kv *o = &g->kvs[g->kv_hash[h] - 1];
        if (o->name_len == kv->name_len && memcmp(o->name, kv->name, kv->name_len) == 0)
            return EFAIL(ec, VKMIX_ERROR_GGUF_DUPLICATE, "duplicate key %s", ec->name.s);
        h = (h + 1) & g->kv_hash_mask;
    }
    g->kv_hash[h] = i + 1;
    g->n_kv = (int64_t)i + 1;

    if (!rd_u32(r, &kv->type))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "key %s: file ends inside its value type", ec->name.s);
    kv->val = r->p + r->pos;
    uint64_t start = 0, count = 0;
    uint32_t et = 0;
    e = parse_value(r, kv->type, 0, ec, kv->type == VKM_GGUF_ARRAY ? &kv->index_owned : NULL, &et, &count, &start);
    if (e != VKMIX_OK) return e;
    if (kv->type == VKM_GGUF_STRING) {
        kv->str_len = (size_t)le(kv->val, 8);
        kv->str = arena_copy(g, kv->val + 8, kv->str_len);
        if (!kv->str) return EFAIL(ec, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    } else if (kv->type == VKM_GGUF_ARRAY) {
        kv->arr.type = et;
        kv->arr.count = count;
        kv->arr.data = r->p + start;
        kv->arr.size = r->pos - start;
        kv->arr.index = kv->index_owned;
    }
    return VKMIX_OK;
}

/* general.alignment when present: a u32 power of two. */
static vkmix_error read_alignment(vkm_gguf *g, char *err, size_t errlen)
{
    g->alignment = VKM_GGUF_DEFAULT_ALIGNMENT;
    if (vkm_gguf_find_key(g, "general.alignment") < 0) return VKMIX_OK;
    uint32_t a = 0;
    vkmix_error e = vkm_gguf_get_u32(g, "general.alignment", &a, err, errlen);
    if (e != VKMIX_OK) return e;
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE,
                    "key 'general.alignment': %" PRIu32 " is not a non-zero power of two", a);
    g->alignment = a;
    return VKMIX_OK;
}

/* n_dims (1..4) and the dimensions of tensor t: none 0, no overflow of the element count. */
static vkmix_error parse_dims(rd *r, vkm_gguf_tensor *t, const ectx *ec)
{
    const char *tn = ec->name.s;
    if (!rd_u32(r, &t->n_dims))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "tensor %s: file ends inside n_dims", tn);
    if (t->n_dims < 1 || t->n_dims > VKM_GGUF_MAX_DIMS)
        return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW, "tensor %s: n_dims %" PRIu32 " is not in 1..%d", tn, t->n_dims,
                     VKM_GGUF_MAX_DIMS);
    uint64_t elems = 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t v;
        if (!rd_u64(r, &v))
            return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "tensor %s: file ends inside its dimensions", tn);
        if (v == 0) return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW, "tensor %s: dimension %" PRIu32 " is 0", tn, d);
        if (v > (uint64_t)INT64_MAX || v > (uint64_t)INT64_MAX / elems)
            return EFAIL(ec, VKMIX_ERROR_GGUF_OVERFLOW,
                         "tensor %s: element count overflows at dimension %" PRIu32 " (%" PRIu64 ")", tn, d, v);
        elems *= v;
        t->ne[d] = (int64_t)v;
    }
    t->n_elements = elems;
    return VKMIX_OK;
}

/* The ggml type of tensor t: known, rows a whole number of blocks, byte size without overflow. */
static vkmix_error parse_tensor_type(rd *r, vkm_gguf_tensor *t, const ectx *ec)
{
    const char *tn = ec->name.s;
    if (!rd_u32(r, &t->type))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "tensor %s: file ends inside its type", tn);
    const vkm_ggml_type_info *ti = vkm_ggml_type_get(t->type);
    if (!ti)
        return EFAIL(ec, VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type %" PRIu32 " in tensor %s",
                     t->type, tn);
    if ((uint64_t)t->ne[0] % ti->block_size != 0)
        return EFAIL(ec, VKMIX_ERROR_GGUF_BAD_VALUE,
                     "tensor %s: row length %" PRId64 " is not a multiple of the %s block size %" PRIu32, tn,
                     t->ne[0], ti->name, ti->block_size);
    vkmix_error e = vkm_ggml_tensor_size(t->type, t->ne, &t->n_bytes);
    if (e != VKMIX_OK)
        return EFAIL(ec, e, "tensor %s: byte size of %s [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] overflows",
                     tn, ti->name, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
    return VKMIX_OK;
}

/* Tensor info #i: name (unique) | n_dims | ne[n_dims] | type | offset. */
static vkmix_error parse_tensor_info(vkm_gguf *g, rd *r, uint64_t i, uint64_t n_tensors, ectx *ec)
{
    vkm_gguf_tensor *t = &g->tensors[i];
    const uint8_t *name;
    uint64_t name_len;
    vkmix_error e = read_entry_name(r, ec, i, n_tensors, &name, &name_len);
    if (e != VKMIX_OK) {
        /* a shifted parse: the last key or tensor info promised was never written */
        if (e == VKMIX_ERROR_GGUF_TRUNCATED || e == VKMIX_ERROR_GGUF_OVERFLOW) {
            if (i == 0 && g->n_kv > 0)
                append(ec->err, ec->errlen,
                       "; does the header promise more keys (%" PRId64 ") than the file holds?", g->n_kv);
            else if (i + 1 == n_tensors)
                append(ec->err, ec->errlen,
                       "; does the header promise more tensors (%" PRIu64 ") than the file holds?", n_tensors);
        }
        return e;
    }
    char *nm = arena_copy(g, name, (size_t)name_len);
    if (!nm) return EFAIL(ec, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    t->name = nm;
    uint64_t h = hash_bytes(nm, (size_t)name_len) & g->t_hash_mask;
    while (g->t_hash[h]) {
        const char *o = g->tensors[g->t_hash[h] - 1].name;
        if (strlen(o) == name_len && memcmp(o, nm, (size_t)name_len) == 0)
            return EFAIL(ec, VKMIX_ERROR_GGUF_DUPLICATE, "duplicate tensor %s", ec->name.s);
        h = (h + 1) & g->t_hash_mask;
    }
    g->t_hash[h] = i + 1;
    g->n_tensors = (int64_t)i + 1;

    if ((e = parse_dims(r, t, ec)) != VKMIX_OK) return e;
    if ((e = parse_tensor_type(r, t, ec)) != VKMIX_OK) return e;
    if (!rd_u64(r, &t->offset))
        return EFAIL(ec, VKMIX_ERROR_GGUF_TRUNCATED, "tensor %s: file ends inside its offset", ec->name.s);
    return VKMIX_OK;
}

/* The data section starts at the first multiple of the alignment after the
 * tensor infos (which end at infos_end); every tensor's bytes lie inside it. */
static vkmix_error place_tensor_data(vkm_gguf *g, uint64_t infos_end, char *err, size_t errlen)
{
    uint64_t a = g->alignment;
    if (infos_end > UINT64_MAX - (a - 1))
        return fail(err, errlen, VKMIX_ERROR_GGUF_OVERFLOW, "data section offset overflows");
    g->data_offset = (infos_end + a - 1) / a * a;
    uint64_t data_size = g->data_offset <= g->size ? g->size - g->data_offset : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        vkm_gguf_tensor *t = &g->tensors[i];
        safe_name tn = sname_z(t->name);
        if (g->data_offset > g->size)
            return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED,
                        "tensor %s: the data section would start at %" PRIu64 ", past the end of the %" PRIu64
                        "-byte file", tn.s, g->data_offset, g->size);
        if (t->offset % a != 0)
            return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED,
                        "tensor %s: offset %" PRIu64 " is not a multiple of the alignment %" PRIu64, tn.s,
                        t->offset, a);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset)
            return fail(err, errlen, VKMIX_ERROR_GGUF_TRUNCATED,
                        "tensor %s: data [%" PRIu64 ", +%" PRIu64 ") runs past the end of the %" PRIu64
                        "-byte data section", tn.s, t->offset, t->n_bytes, data_size);
        t->data = g->base + g->data_offset + t->offset;
    }
    return VKMIX_OK;
}

/* header | keys | (alignment) | tensor infos | data */
static vkmix_error parse(vkm_gguf *g, char *err, size_t errlen)
{
    rd r = {g->base, g->size, 0};
    uint64_t n_tensors = 0, n_kv = 0;
    vkmix_error e = parse_header(g, &r, &n_tensors, &n_kv, err, errlen);
    if (e != VKMIX_OK) return e;

    g->kvs = calloc(n_kv ? (size_t)n_kv : 1, sizeof(gguf_kv));
    g->kv_hash = hash_alloc((int64_t)n_kv, &g->kv_hash_mask);
    if (!g->kvs || !g->kv_hash) return fail(err, errlen, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    ectx ec = {err, errlen, "key", {{0}}};
    for (uint64_t i = 0; i < n_kv; i++)
        if ((e = parse_kv(g, &r, i, n_kv, &ec)) != VKMIX_OK) return e;

    if ((e = read_alignment(g, err, errlen)) != VKMIX_OK) return e;

    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof(vkm_gguf_tensor));
    g->t_hash = hash_alloc((int64_t)n_tensors, &g->t_hash_mask);
    if (!g->tensors || !g->t_hash) return fail(err, errlen, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    ec.what = "tensor";
    for (uint64_t i = 0; i < n_tensors; i++)
        if ((e = parse_tensor_info(g, &r, i, n_tensors, &ec)) != VKMIX_OK) return e;

    return place_tensor_data(g, r.pos, err, errlen);
}

vkmix_error vkm_gguf_open_memory(const void *data, size_t size, vkm_gguf **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_open_memory: data is NULL");
    vkm_gguf *g = calloc(1, sizeof *g);
    if (!g) return fail(err, errlen, VKMIX_ERROR_OUT_OF_HOST_MEMORY, "out of memory");
    g->base = data ? data : (const uint8_t *)"";
    g->size = size;
    vkmix_error e = parse(g, err, errlen);
    if (e != VKMIX_OK) {
        vkm_gguf_close(g);
        return e;
    }
    *out = g;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_open(const char *path, vkm_gguf **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_open: path is NULL");
    safe_name pn = sname_z(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(err, errlen, VKMIX_ERROR_IO, "cannot open %s: %s", pn.s, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int en = errno;
        close(fd);
        return fail(err, errlen, VKMIX_ERROR_IO, "cannot stat %s: %s", pn.s, strerror(en));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, VKMIX_ERROR_IO, "%s is not a regular file", pn.s);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return fail(err, errlen, VKMIX_ERROR_IO, "%s is too large to map", pn.s);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int en = errno;
            close(fd);
            return fail(err, errlen, VKMIX_ERROR_IO, "cannot map %s: %s", pn.s, strerror(en));
        }
    }
    close(fd);
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open_memory(map, size, &g, err, errlen);
    if (e != VKMIX_OK) {
        if (map) munmap(map, size);
        return e;
    }
    g->map = map;
    g->map_size = size;
    *out = g;
    return VKMIX_OK;
}

void vkm_gguf_close(vkm_gguf *g)
{
    if (!g) return;
    if (g->kvs)
        for (int64_t i = 0; i < g->n_kv; i++) free(g->kvs[i].index_owned);
    free(g->kvs);
    free(g->kv_hash);
    free(g->tensors);
    free(g->t_hash);
    while (g->arena) {
        arena_chunk *n = g->arena->next;
        free(g->arena);
        g->arena = n;
    }
    if (g->map) munmap(g->map, g->map_size);
    free(g);
}

/* ---------------------------------------------------------------- accessors */

uint32_t vkm_gguf_version(const vkm_gguf *g) { return g ? g->version : 0; }
uint64_t vkm_gguf_alignment(const vkm_gguf *g) { return g ? g->alignment : 0; }
uint64_t vkm_gguf_data_offset(const vkm_gguf *g) { return g ? g->data_offset : 0; }
const void *vkm_gguf_file_data(const vkm_gguf *g) { return g ? g->base : NULL; }
uint64_t vkm_gguf_file_size(const vkm_gguf *g) { return g ? g->size : 0; }
int64_t vkm_gguf_n_kv(const vkm_gguf *g) { return g ? g->n_kv : 0; }
int64_t vkm_gguf_n_tensors(const vkm_gguf *g) { return g ? g->n_tensors : 0; }

int64_t vkm_gguf_find_key(const vkm_gguf *g, const char *key)
{
    if (!g || !key || !g->kv_hash) return -1;
    size_t n = strlen(key);
    uint64_t h = hash_bytes(key, n) & g->kv_hash_mask;
    while (g->kv_hash[h]) {
        const gguf_kv *kv = &g->kvs[g->kv_hash[h] - 1];
        if (kv->name_len == n && memcmp(kv->name, key, n) == 0) return (int64_t)(g->kv_hash[h] - 1);
        h = (h + 1) & g->kv_hash_mask;
    }
    return -1;
}

const char *vkm_gguf_key_name(const vkm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? g->kvs[i].name : NULL;
}

int vkm_gguf_key_type(const vkm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_kv ? (int)g->kvs[i].type : -1;
}

vkmix_error vkm_gguf_key_raw(const vkm_gguf *g, int64_t i, const void **p, uint64_t *size)
{
    if (!g || i < 0 || i >= g->n_kv || !p || !size) return VKMIX_ERROR_INVALID_ARGUMENT;
    const gguf_kv *kv = &g->kvs[i];
    size_t avail = (size_t)((const uint8_t *)vkm_gguf_file_data(g) + vkm_gguf_file_size(g) - kv->val);
    *p = kv->val;
    return vkm_gguf_value_size(kv->type, kv->val, avail, size, NULL, 0);
}

int64_t vkm_gguf_find_tensor(const vkm_gguf *g, const char *name)
{
    if (!g || !name || !g->t_hash) return -1;
    size_t n = strlen(name);
    uint64_t h = hash_bytes(name, n) & g->t_hash_mask;
    while (g->t_hash[h]) {
        const char *o = g->tensors[g->t_hash[h] - 1].name;
        if (strcmp(o, name) == 0) return (int64_t)(g->t_hash[h] - 1);
        h = (h + 1) & g->t_hash_mask;
    }
    return -1;
}

const vkm_gguf_tensor *vkm_gguf_tensor_at(const vkm_gguf *g, int64_t i)
{
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

vkmix_error vkm_gguf_get_tensor(const vkm_gguf *g, const char *name, const vkm_gguf_tensor **out, char *err,
                                size_t errlen)
{
    if (!g || !name || !out) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "vkm_gguf_get_tensor: NULL argument");
    int64_t i = vkm_gguf_find_tensor(g, name);
    if (i < 0) {
        safe_name n = sname_z(name);
        return fail(err, errlen, VKMIX_ERROR_GGUF_MISSING_KEY, "missing tensor %s", n.s);
    }
    *out = &g->tensors[i];
    return VKMIX_OK;
}

/* ---- typed getters */

/* Decoded integer: neg says the value is negative (then sv holds it),
 * otherwise uv holds it. */
typedef struct { int neg; int64_t sv; uint64_t uv; } ival;

static int decode_int(uint32_t type, const uint8_t *p, ival *v)
{
    size_t n = vkm_gguf_type_size(type);
    if (!is_int_type(type)) return 0;
    uint64_t raw = le(p, (int)n);
    int is_signed = type == VKM_GGUF_I8 || type == VKM_GGUF_I16 || type == VKM_GGUF_I32 || type == VKM_GGUF_I64;
    v->neg = 0;
    v->sv = 0;
    v->uv = raw;
    if (is_signed) {
        int bits = (int)n * 8;
        int64_t s;
        if (bits == 64) {
            memcpy(&s, &raw, 8);
        } else {
            uint64_t sign = 1ull << (bits - 1);
            s = (raw & sign) ? (int64_t)(raw | ~((sign << 1) - 1)) : (int64_t)raw;
        }
        if (s < 0) {
            v->neg = 1;
            v->sv = s;
            v->uv = 0;
        } else {
            v->uv = (uint64_t)s;
        }
    }
    return 1;
}

static double decode_float(uint32_t type, const uint8_t *p)
{
    if (type == VKM_GGUF_F32) {
        uint32_t u = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = le(p, 8);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static vkmix_error find_kv(const vkm_gguf *g, const char *key, const gguf_kv **kv, char *err, size_t errlen)
{
    if (!g || !key) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "gguf getter: NULL argument");
    int64_t i = vkm_gguf_find_key(g, key);
    if (i < 0) {
        safe_name n = sname_z(key);
        return fail(err, errlen, VKMIX_ERROR_GGUF_MISSING_KEY, "missing key %s", n.s);
    }
    *kv = &g->kvs[i];
    return VKMIX_OK;
}

enum { INT_U32, INT_I32, INT_U64, INT_I64 };

static vkmix_error get_int(const vkm_gguf *g, const char *key, int kind, ival *v, char *err, size_t errlen)
{
    static const char *const kname[] = {"u32", "i32", "u64", "i64"};
    const gguf_kv *kv;
    vkmix_error e = find_kv(g, key, &kv, err, errlen);
    if (e != VKMIX_OK) return e;
    safe_name n = sname(kv->name, kv->name_len);
    if (!decode_int(kv->type, kv->val, v))
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s has type %s, expected an integer (%s)", n.s,
                    vkm_gguf_type_name(kv->type), kname[kind]);
    int fits;
    switch (kind) {
    case INT_U32: fits = !v->neg && v->uv <= UINT32_MAX; break;
    case INT_I32: fits = v->neg ? v->sv >= INT32_MIN : v->uv <= INT32_MAX; break;
    case INT_U64: fits = !v->neg; break;
    default: fits = v->neg || v->uv <= INT64_MAX; break;
    }
    if (!fits) {
        if (v->neg)
            return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s: value %" PRId64 " does not fit in %s",
                        n.s, v->sv, kname[kind]);
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s: value %" PRIu64 " does not fit in %s", n.s,
                    v->uv, kname[kind]);
    }
    return VKMIX_OK;
}

vkmix_error vkm_gguf_get_u32(const vkm_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen)
{
    ival v;
    vkmix_error e = get_int(g, key, INT_U32, &v, err, errlen);
    if (e == VKMIX_OK && out) *out = (uint32_t)v.uv;
    return e;
}

vkmix_error vkm_gguf_get_i32(const vkm_gguf *g, const char *key, int32_t *out, char *err, size_t errlen)
{
    ival v;
    vkmix_error e = get_int(g, key, INT_I32, &v, err, errlen);
    if (e == VKMIX_OK && out) *out = v.neg ? (int32_t)v.sv : (int32_t)v.uv;
    return e;
}

vkmix_error vkm_gguf_get_u64(const vkm_gguf *g, const char *key, uint64_t *out, char *err, size_t errlen)
{
    ival v;
    vkmix_error e = get_int(g, key, INT_U64, &v, err, errlen);
    if (e == VKMIX_OK && out) *out = v.uv;
    return e;
}

vkmix_error vkm_gguf_get_i64(const vkm_gguf *g, const char *key, int64_t *out, char *err, size_t errlen)
{
    ival v;
    vkmix_error e = get_int(g, key, INT_I64, &v, err, errlen);
    if (e == VKMIX_OK && out) *out = v.neg ? v.sv : (int64_t)v.uv;
    return e;
}

static vkmix_error get_float(const vkm_gguf *g, const char *key, double *out, int to_f32, char *err,
                             size_t errlen)
{
    const gguf_kv *kv;
    vkmix_error e = find_kv(g, key, &kv, err, errlen);
    if (e != VKMIX_OK) return e;
    safe_name n = sname(kv->name, kv->name_len);
    if (kv->type != VKM_GGUF_F32 && kv->type != VKM_GGUF_F64)
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s has type %s, expected f32 or f64", n.s,
                    vkm_gguf_type_name(kv->type));
    double d = decode_float(kv->type, kv->val);
    if (to_f32 && isfinite(d) && fabs(d) > FLT_MAX)
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s: value %g does not fit in f32", n.s, d);
    *out = d;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_get_f32(const vkm_gguf *g, const char *key, float *out, char *err, size_t errlen)
{
    double d;
    vkmix_error e = get_float(g, key, &d, 1, err, errlen);
    if (e == VKMIX_OK && out) *out = (float)d;
    return e;
}

vkmix_error vkm_gguf_get_f64(const vkm_gguf *g, const char *key, double *out, char *err, size_t errlen)
{
    double d;
    vkmix_error e = get_float(g, key, &d, 0, err, errlen);
    if (e == VKMIX_OK && out) *out = d;
    return e;
}

vkmix_error vkm_gguf_get_bool(const vkm_gguf *g, const char *key, int *out, char *err, size_t errlen)
{
    const gguf_kv *kv;
    vkmix_error e = find_kv(g, key, &kv, err, errlen);
    if (e != VKMIX_OK) return e;
    if (kv->type != VKM_GGUF_BOOL) {
        safe_name n = sname(kv->name, kv->name_len);
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s has type %s, expected bool", n.s,
                    vkm_gguf_type_name(kv->type));
    }
    if (out) *out = kv->val[0] != 0;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_get_str(const vkm_gguf *g, const char *key, const char **s, size_t *len, char *err,
                             size_t errlen)
{
    const gguf_kv *kv;
    vkmix_error e = find_kv(g, key, &kv, err, errlen);
    if (e != VKMIX_OK) return e;
    if (kv->type != VKM_GGUF_STRING) {
        safe_name n = sname(kv->name, kv->name_len);
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s has type %s, expected string", n.s,
                    vkm_gguf_type_name(kv->type));
    }
    if (s) *s = kv->str;
    if (len) *len = kv->str_len;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_get_arr(const vkm_gguf *g, const char *key, int want_type, vkm_gguf_array *out, char *err,
                             size_t errlen)
{
    const gguf_kv *kv;
    vkmix_error e = find_kv(g, key, &kv, err, errlen);
    if (e != VKMIX_OK) return e;
    safe_name n = sname(kv->name, kv->name_len);
    if (kv->type != VKM_GGUF_ARRAY)
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s has type %s, expected an array", n.s,
                    vkm_gguf_type_name(kv->type));
    if (want_type >= 0 && kv->arr.type != (uint32_t)want_type)
        return fail(err, errlen, VKMIX_ERROR_GGUF_BAD_VALUE, "key %s is an array of %s, expected an array of %s",
                    n.s, vkm_gguf_type_name(kv->arr.type), vkm_gguf_type_name((uint32_t)want_type));
    if (out) *out = kv->arr;
    return VKMIX_OK;
}

/* ---- array elements */

static const uint8_t *arr_fixed_elem(const vkm_gguf_array *a, uint64_t i)
{
    size_t es = vkm_gguf_type_size(a->type);
    if (!es || i >= a->count || a->count > a->size / es) return NULL;
    return (const uint8_t *)a->data + i * es;
}

vkmix_error vkm_gguf_arr_i64(const vkm_gguf_array *a, uint64_t i, int64_t *out)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint8_t *p = arr_fixed_elem(a, i);
    ival v;
    if (!p || !decode_int(a->type, p, &v)) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (!v.neg && v.uv > INT64_MAX) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (out) *out = v.neg ? v.sv : (int64_t)v.uv;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_u64(const vkm_gguf_array *a, uint64_t i, uint64_t *out)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    const uint8_t *p = arr_fixed_elem(a, i);
    ival v;
    if (!p || !decode_int(a->type, p, &v) || v.neg) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (out) *out = v.uv;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_f64(const vkm_gguf_array *a, uint64_t i, double *out)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (a->type != VKM_GGUF_F32 && a->type != VKM_GGUF_F64) return VKMIX_ERROR_GGUF_BAD_VALUE;
    const uint8_t *p = arr_fixed_elem(a, i);
    if (!p) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (out) *out = decode_float(a->type, p);
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_f32(const vkm_gguf_array *a, uint64_t i, float *out)
{
    double d;
    vkmix_error e = vkm_gguf_arr_f64(a, i, &d);
    if (e != VKMIX_OK) return e;
    if (isfinite(d) && fabs(d) > FLT_MAX) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (out) *out = (float)d;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_bool(const vkm_gguf_array *a, uint64_t i, int *out)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (a->type != VKM_GGUF_BOOL) return VKMIX_ERROR_GGUF_BAD_VALUE;
    const uint8_t *p = arr_fixed_elem(a, i);
    if (!p) return VKMIX_ERROR_GGUF_BAD_VALUE;
    if (out) *out = p[0] != 0;
    return VKMIX_OK;
}

/* Offset of element i of a string/array array, from the index or by walking
 * (the data was validated at open; the walk re-checks bounds anyway). */
static vkmix_error arr_var_elem(const vkm_gguf_array *a, uint64_t i, rd *r)
{
    r->p = a->data;
    r->n = a->size;
    r->pos = 0;
    if (a->index) {
        if (a->index[i] > a->size) return VKMIX_ERROR_INTERNAL;
        r->pos = a->index[i];
        return VKMIX_OK;
    }
    ectx ec = {NULL, 0, "element", {{0}}};
    for (uint64_t k = 0; k < i; k++) {
        vkmix_error e = parse_value(r, a->type, 1, &ec, NULL, NULL, NULL, NULL);
        if (e != VKMIX_OK) return VKMIX_ERROR_INTERNAL;
    }
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_str(const vkm_gguf_array *a, uint64_t i, const char **s, size_t *len)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (a->type != VKM_GGUF_STRING) return VKMIX_ERROR_GGUF_BAD_VALUE;
    rd r;
    vkmix_error e = arr_var_elem(a, i, &r);
    if (e != VKMIX_OK) return e;
    ectx ec = {NULL, 0, "element", {{0}}};
    const uint8_t *p;
    uint64_t n;
    if (rd_str(&r, &p, &n, &ec, "string") != VKMIX_OK) return VKMIX_ERROR_INTERNAL;
    if (s) *s = (const char *)p;
    if (len) *len = (size_t)n;
    return VKMIX_OK;
}

vkmix_error vkm_gguf_arr_sub(const vkm_gguf_array *a, uint64_t i, vkm_gguf_array *out)
{
    if (!a || i >= a->count) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (a->type != VKM_GGUF_ARRAY) return VKMIX_ERROR_GGUF_BAD_VALUE;
    rd r;
    vkmix_error e = arr_var_elem(a, i, &r);
    if (e != VKMIX_OK) return e;
    ectx ec = {NULL, 0, "element", {{0}}};
    uint32_t et = 0;
    uint64_t count = 0, start = 0;
    if (parse_value(&r, VKM_GGUF_ARRAY, 1, &ec, NULL, &et, &count, &start) != VKMIX_OK)
        return VKMIX_ERROR_INTERNAL;
    if (out) {
        out->type = et;
        out->count = count;
        out->data = (const uint8_t *)a->data + start;
        out->size = r.pos - start;
        out->index = NULL;
    }
    return VKMIX_OK;
}
