/* GGUF v2/v3 reader and a small writer.
 *
 * File layout (all little-endian):
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x       { string key | u32 value_type | value }
 *   n_tensors x  { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   padding to general.alignment (default 32)
 *   data section: tensor i at data_start + offset_i (offset_i a multiple of the alignment)
 * where string = { u64 len | len bytes, no NUL } and an array value is
 * { u32 element_type | u64 count | count elements }.
 *
 * Reader
 * ------
 * vkm_gguf_open maps a file read-only; vkm_gguf_open_memory parses a caller's
 * buffer without copying (the buffer must outlive the handle). Everything in
 * the file is validated before open returns: every read against the size,
 * counts and dimensions against overflow, duplicate keys and tensor names,
 * value and tensor types, alignment, and tensor data inside the file. After a
 * successful open, no accessor can read out of bounds.
 *
 * Errors: every function that can fail returns a vkmix_error and, when `err`
 * is not NULL, writes a NUL-terminated message naming the key or tensor into
 * err[0..errlen). Nothing is printed. A handle is immutable after open: the
 * accessors may be called from several threads at once.
 *
 * Strings: key names and tensor names are NUL-terminated copies owned by the
 * handle (names with an embedded NUL byte are rejected at open). A scalar
 * string value is also returned as a NUL-terminated copy (its length is given
 * too, and the value itself may contain NUL bytes). Strings inside arrays are
 * NOT copied: vkm_gguf_arr_str gives a pointer into the file plus a length and
 * the bytes are not NUL-terminated. Every pointer stays valid until
 * vkm_gguf_close.
 *
 * Lookups by key or tensor name are hash lookups (O(1)); the i-th string of a
 * top-level string array is O(1) too (an offset index is built at open). Big
 * arrays are never copied: they point into the mapping.
 */
#ifndef VKM_GGUF_H
#define VKM_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"

/* Metadata value types (pinned by the GGUF spec). */
typedef enum vkm_gguf_type {
    VKM_GGUF_U8 = 0,
    VKM_GGUF_I8 = 1,
    VKM_GGUF_U16 = 2,
    VKM_GGUF_I16 = 3,
    VKM_GGUF_U32 = 4,
    VKM_GGUF_I32 = 5,
    VKM_GGUF_F32 = 6,
    VKM_GGUF_BOOL = 7,    /* one byte, 0 or 1 (anything else is rejected) */
    VKM_GGUF_STRING = 8,
    VKM_GGUF_ARRAY = 9,
    VKM_GGUF_U64 = 10,
    VKM_GGUF_I64 = 11,
    VKM_GGUF_F64 = 12,
    VKM_GGUF_TYPE_COUNT = 13
} vkm_gguf_type;

#define VKM_GGUF_DEFAULT_ALIGNMENT 32
#define VKM_GGUF_MAX_DIMS 4
#define VKM_GGUF_MAX_NESTING 8  /* arrays of arrays deeper than this are rejected */

/* "u8", "string", "array", ...; "unknown" for an undefined type. */
const char *vkm_gguf_type_name(uint32_t type);
/* Bytes of one value of a fixed-size type; 0 for string, array and unknown types. */
size_t vkm_gguf_type_size(uint32_t type);

typedef struct vkm_gguf vkm_gguf;

typedef struct vkm_gguf_tensor {
    const char *name;     /* NUL-terminated, owned by the handle */
    uint32_t type;        /* ggml type id (see ggml_types.h); may be known-but-unsupported */
    uint32_t n_dims;      /* 0..4 as stored in the file */
    int64_t ne[4];        /* elements per dimension, ne[0] innermost; unused dims are 1 */
    uint64_t n_elements;  /* ne[0]*ne[1]*ne[2]*ne[3] */
    uint64_t n_bytes;     /* bytes in the file: ne[0]/block_size*type_size * rows */
    uint64_t offset;      /* from the start of the data section */
    const void *data;     /* = base + data_offset + offset; any alignment the file gives */
} vkm_gguf_tensor;

/* A view of an array value. Elements are serialized little-endian and may be
 * unaligned: read numeric ones through the vkm_gguf_arr_* getters or with
 * memcpy (on a little-endian host the bytes are the host representation).
 * For arrays of fixed-size types, data holds count * vkm_gguf_type_size(type)
 * bytes. For arrays of strings or arrays use vkm_gguf_arr_str / vkm_gguf_arr_sub. */
typedef struct vkm_gguf_array {
    uint32_t type;          /* element type (vkm_gguf_type) */
    uint64_t count;         /* number of elements */
    const void *data;       /* first element's bytes, inside the file */
    uint64_t size;          /* bytes of all elements */
    const uint64_t *index;  /* private: element offsets for string/array elements, or NULL */
} vkm_gguf_array;

/* ---- open / close */
vkmix_error vkm_gguf_open(const char *path, vkm_gguf **out, char *err, size_t errlen);
vkmix_error vkm_gguf_open_memory(const void *data, size_t size, vkm_gguf **out, char *err,
                                 size_t errlen);
void vkm_gguf_close(vkm_gguf *g); /* NULL-safe */

/* ---- file-level facts */
uint32_t vkm_gguf_version(const vkm_gguf *g);          /* 2 or 3 */
uint64_t vkm_gguf_alignment(const vkm_gguf *g);        /* general.alignment or 32 */
uint64_t vkm_gguf_data_offset(const vkm_gguf *g);      /* file offset of the data section */
const void *vkm_gguf_file_data(const vkm_gguf *g);     /* the whole file (mapping or caller buffer) */
uint64_t vkm_gguf_file_size(const vkm_gguf *g);

/* ---- metadata keys */
int64_t vkm_gguf_n_kv(const vkm_gguf *g);
/* Index of `key`, or -1 when absent. */
int64_t vkm_gguf_find_key(const vkm_gguf *g, const char *key);
/* Name of key i (NUL-terminated), or NULL when i is out of range. */
const char *vkm_gguf_key_name(const vkm_gguf *g, int64_t i);
/* Type of key i (vkm_gguf_type), or -1 when i is out of range. */
int vkm_gguf_key_type(const vkm_gguf *g, int64_t i);
/* The serialized value of key i (after its type tag) and its size: copy a key
 * into a writer with vkm_gguf_writer_add_raw. */
vkmix_error vkm_gguf_key_raw(const vkm_gguf *g, int64_t i, const void **p, uint64_t *size);

/* Typed getters. Every one fails with VKMIX_ERROR_GGUF_MISSING_KEY when the key
 * is absent ("missing key 'name'") and VKMIX_ERROR_GGUF_BAD_VALUE when its
 * type does not coerce. *out is written only on success.
 *   u32/i32/u64/i64: any integer type (u8..i64) whose value fits the target.
 *   f32: f32 or f64 (f64 is rounded to float; a finite f64 outside the float
 *        range is BAD_VALUE). f64: f32 or f64.
 *   bool: bool only.
 *   str: string only; *s is a NUL-terminated copy, *len its length in bytes
 *        (the value may contain NUL bytes; len may be NULL).
 *   arr: array only; want_type is the required element type, or -1 for any. */
vkmix_error vkm_gguf_get_u32(const vkm_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_i32(const vkm_gguf *g, const char *key, int32_t *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_u64(const vkm_gguf *g, const char *key, uint64_t *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_i64(const vkm_gguf *g, const char *key, int64_t *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_f32(const vkm_gguf *g, const char *key, float *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_f64(const vkm_gguf *g, const char *key, double *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_bool(const vkm_gguf *g, const char *key, int *out, char *err, size_t errlen);
vkmix_error vkm_gguf_get_str(const vkm_gguf *g, const char *key, const char **s, size_t *len,
                             char *err, size_t errlen);
vkmix_error vkm_gguf_get_arr(const vkm_gguf *g, const char *key, int want_type,
                             vkm_gguf_array *out, char *err, size_t errlen);

/* Array elements. All return VKMIX_ERROR_INVALID_ARGUMENT when i >= count and
 * VKMIX_ERROR_GGUF_BAD_VALUE when the element type does not coerce (same rules
 * as the scalar getters: i64/u64 from any integer that fits, f32/f64 from f32
 * or f64). The i-th string is a pointer into the file (NOT NUL-terminated)
 * and its length. vkm_gguf_arr_sub gives the i-th element of an array of
 * arrays (O(i) for arrays nested inside arrays; O(1) at the top level). */
vkmix_error vkm_gguf_arr_i64(const vkm_gguf_array *a, uint64_t i, int64_t *out);
vkmix_error vkm_gguf_arr_u64(const vkm_gguf_array *a, uint64_t i, uint64_t *out);
vkmix_error vkm_gguf_arr_f32(const vkm_gguf_array *a, uint64_t i, float *out);
vkmix_error vkm_gguf_arr_f64(const vkm_gguf_array *a, uint64_t i, double *out);
vkmix_error vkm_gguf_arr_bool(const vkm_gguf_array *a, uint64_t i, int *out);
vkmix_error vkm_gguf_arr_str(const vkm_gguf_array *a, uint64_t i, const char **s, size_t *len);
vkmix_error vkm_gguf_arr_sub(const vkm_gguf_array *a, uint64_t i, vkm_gguf_array *out);

/* ---- tensors */
int64_t vkm_gguf_n_tensors(const vkm_gguf *g);
/* Index of the tensor called `name`, or -1. */
int64_t vkm_gguf_find_tensor(const vkm_gguf *g, const char *name);
/* Tensor i, or NULL when out of range. */
const vkm_gguf_tensor *vkm_gguf_tensor_at(const vkm_gguf *g, int64_t i);
/* Tensor by name; VKMIX_ERROR_GGUF_MISSING_KEY ("missing tensor 'name'") when absent. */
vkmix_error vkm_gguf_get_tensor(const vkm_gguf *g, const char *name, const vkm_gguf_tensor **out,
                                char *err, size_t errlen);

/* Validates one serialized value of `type` (little-endian, without the type
 * tag) at p[0..avail) with the reader's rules and gives its size in bytes.
 * VKMIX_ERROR_GGUF_* when malformed (message in err). */
vkmix_error vkm_gguf_value_size(uint32_t type, const void *p, size_t avail, uint64_t *size, char *err,
                                size_t errlen);

/* ---------------------------------------------------------------------------
 * Writer (src/gguf_write.c)
 * ---------------------------------------------------------------------------
 * Builds a GGUF v3 file in memory: keys and tensors are written in the order
 * they were added, tensor data is padded to the alignment (32, or the value
 * of a "general.alignment" u32 key added before writing). The writer copies
 * every key, string and tensor datum, so callers' buffers may be freed after
 * each add. Duplicate keys or tensor names are refused (GGUF_DUPLICATE);
 * unknown types are refused (GGUF_BAD_TYPE / UNSUPPORTED_TENSOR_TYPE);
 * a tensor whose ne[0] is not a multiple of the block size is refused
 * (GGUF_BAD_VALUE). Numeric values are given in host order and written
 * little-endian. The output is what llama.cpp writes and reads. */
typedef struct vkm_gguf_writer vkm_gguf_writer;

vkmix_error vkm_gguf_writer_create(vkm_gguf_writer **out);
void vkm_gguf_writer_free(vkm_gguf_writer *w); /* NULL-safe */

vkmix_error vkm_gguf_writer_add_u8(vkm_gguf_writer *w, const char *key, uint8_t v);
vkmix_error vkm_gguf_writer_add_i8(vkm_gguf_writer *w, const char *key, int8_t v);
vkmix_error vkm_gguf_writer_add_u16(vkm_gguf_writer *w, const char *key, uint16_t v);
vkmix_error vkm_gguf_writer_add_i16(vkm_gguf_writer *w, const char *key, int16_t v);
vkmix_error vkm_gguf_writer_add_u32(vkm_gguf_writer *w, const char *key, uint32_t v);
vkmix_error vkm_gguf_writer_add_i32(vkm_gguf_writer *w, const char *key, int32_t v);
vkmix_error vkm_gguf_writer_add_u64(vkm_gguf_writer *w, const char *key, uint64_t v);
vkmix_error vkm_gguf_writer_add_i64(vkm_gguf_writer *w, const char *key, int64_t v);
vkmix_error vkm_gguf_writer_add_f32(vkm_gguf_writer *w, const char *key, float v);
vkmix_error vkm_gguf_writer_add_f64(vkm_gguf_writer *w, const char *key, double v);
vkmix_error vkm_gguf_writer_add_bool(vkm_gguf_writer *w, const char *key, int v);
/* s[0..len) (may contain NUL bytes); vkm_gguf_writer_add_str uses strlen(s). */
vkmix_error vkm_gguf_writer_add_strn(vkm_gguf_writer *w, const char *key, const char *s, size_t len);
vkmix_error vkm_gguf_writer_add_str(vkm_gguf_writer *w, const char *key, const char *s);
/* Array of a fixed-size type: count elements of vkm_gguf_type_size(type) bytes each, host order. */
vkmix_error vkm_gguf_writer_add_arr(vkm_gguf_writer *w, const char *key, uint32_t type,
                                    const void *data, uint64_t count);
/* Array of strings; lens may be NULL (then strlen is used for each). */
vkmix_error vkm_gguf_writer_add_arr_str(vkm_gguf_writer *w, const char *key,
                                        const char *const *strs, const size_t *lens, uint64_t count);
/* Any value given already serialized (little-endian, without the type tag):
 * for arrays of arrays and for crafting test files. The payload is validated
 * with the reader's rules (VKMIX_ERROR_GGUF_* when it is malformed). */
vkmix_error vkm_gguf_writer_add_raw(vkm_gguf_writer *w, const char *key, uint32_t type,
                                    const void *payload, size_t size);

/* Tensor with n_dims (1..4) dimensions ne[0..n_dims), ggml type `type`;
 * data holds exactly the tensor's byte size (vkm_ggml_tensor_size) and is copied. */
vkmix_error vkm_gguf_writer_add_tensor(vkm_gguf_writer *w, const char *name, uint32_t type,
                                       uint32_t n_dims, const int64_t *ne, const void *data,
                                       uint64_t size);

/* Serialize into a malloc'ed buffer (free with free()). */
vkmix_error vkm_gguf_writer_write_memory(const vkm_gguf_writer *w, void **out, size_t *size,
                                         char *err, size_t errlen);
vkmix_error vkm_gguf_writer_write_file(const vkm_gguf_writer *w, const char *path, char *err,
                                       size_t errlen);

#endif /* VKM_GGUF_H */
