/* GPU layouts of weight matrices (see wlayout.h): byte moves between the
 * file's blocks and per-row planes. */
#include "ops/wlayout.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gguf/ggml_types.h"

/* A block type as fields: `n` fields of `bytes[i]` bytes, in the file's
 * order; the GPU row holds field i of every block, then field i+1, ... */
typedef struct {
    uint32_t block, n;
    uint32_t bytes[4];
} fields;

static int planar(uint32_t type, fields *f)
{
    switch (type) {
    case VKM_GGML_Q4_0: *f = (fields){ VKM_QK4_0, 2, { 2, 16 } }; return 1;   /* d, qs */
    case VKM_GGML_Q8_0: *f = (fields){ VKM_QK8_0, 2, { 2, 32 } }; return 1;   /* d, qs */
    case VKM_GGML_Q6_K: *f = (fields){ VKM_QK_K, 4, { 128, 64, 16, 2 } }; return 1; /* ql, qh, scales, d */
    default: return 0;
    }
}

/* The GPU plane order of field i (Q4_0 and Q8_0 put qs before d). */
static uint32_t plane_of(uint32_t type, uint32_t i)
{
    if (type == VKM_GGML_Q4_0 || type == VKM_GGML_Q8_0) return 1 - i;
    return i;
}

int vkm_wlayout_repacked(uint32_t type)
{
    fields f;
    return planar(type, &f);
}

uint64_t vkm_wlayout_row_bytes(uint32_t type, uint64_t n_in)
{
    if (!vkm_ggml_type_supported(type)) return 0;
    uint64_t file;
    if (n_in > (1ull << 40) || vkm_ggml_row_size(type, (int64_t)n_in, &file) != VKMIX_OK) return 0;
    fields f;
    if (!planar(type, &f)) return file;
    return (file + 15) / 16 * 16;
}

/* Offsets of the planes in a GPU row of nb blocks. */
static void plane_offsets(uint32_t type, const fields *f, uint64_t nb, uint64_t off[4])
{
    uint64_t o = 0;
    for (uint32_t p = 0; p < f->n; p++)
        for (uint32_t i = 0; i < f->n; i++)
            if (plane_of(type, i) == p) {
                off[i] = o;
                o += nb * f->bytes[i];
            }
}

static vkmix_error move(uint32_t type, const void *src, uint64_t n_in, uint64_t n_rows, void *dst, int pack)
{
    if (!src || !dst) return VKMIX_ERROR_INVALID_ARGUMENT;
    uint64_t gpu = vkm_wlayout_row_bytes(type, n_in), file;
    if (!gpu) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_ggml_row_size(type, (int64_t)n_in, &file);
    fields f;
    if (!planar(type, &f)) {
        memcpy(dst, src, file * n_rows);
        return VKMIX_OK;
    }
    uint64_t nb = n_in / f.block, bb = file / nb, off[4];
    plane_offsets(type, &f, nb, off);
    for (uint64_t r = 0; r < n_rows; r++) {
        const uint8_t *s = (const uint8_t *)src + r * (pack ? file : gpu);
        uint8_t *d = (uint8_t *)dst + r * (pack ? gpu : file);
        if (pack) memset(d + file, 0, gpu - file);
        for (uint64_t b = 0; b < nb; b++) {
            uint64_t fo = b * bb;   /* the field's offset inside the file's block */
            for (uint32_t i = 0; i < f.n; i++) {
                uint64_t go = off[i] + b * f.bytes[i];
                if (pack) memcpy(d + go, s + fo, f.bytes[i]);
                else memcpy(d + fo, s + go, f.bytes[i]);
                fo += f.bytes[i];
            }
        }
    }
    return VKMIX_OK;
}

vkmix_error vkm_wlayout_pack(uint32_t type, const void *src, uint64_t n_in, uint64_t n_rows, void *dst)
{
    return move(type, src, n_in, n_rows, dst, 1);
}

vkmix_error vkm_wlayout_unpack(uint32_t type, const void *src, uint64_t n_in, uint64_t n_rows, void *dst)
{
    return move(type, src, n_in, n_rows, dst, 0);
}

/* Uploads rows of one or two matrices (b may be NULL) to GPU rows row0 + ...:
 * alone consecutively, or a's row i then b's row i. */
static vkmix_error upload(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *a, const void *b, uint64_t n_in,
                          uint64_t n_rows, uint64_t row0)
{
    vkm_device *dev = c->dev;
    uint64_t gpu = vkm_wlayout_row_bytes(type, n_in), file;
    if (!gpu || vkm_ggml_row_size(type, (int64_t)n_in, &file) != VKMIX_OK)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "weight upload: %llu elements of %s per row",
                        (unsigned long long)n_in, vkm_ggml_type_name(type));
    uint32_t k = b ? 2 : 1;   /* GPU rows per source row */
    if ((row0 + k * n_rows) * gpu > dst->size) return vkm_fail(dev, VKMIX_ERROR_INTERNAL, "weight upload out of range");
    if (!b && !vkm_wlayout_repacked(type)) return vkm_buffer_upload(c, dst, row0 * gpu, a, file * n_rows);
    uint64_t per = (16ull << 20) / (k * gpu);
    if (!per) per = 1;
    if (per > n_rows) per = n_rows;
    uint8_t *tmp = malloc(per * k * gpu);
    if (!tmp) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = VKMIX_OK;
    for (uint64_t r = 0; r < n_rows && e == VKMIX_OK; r += per) {
        uint64_t n = n_rows - r < per ? n_rows - r : per;
        if (!b) {
            vkm_wlayout_pack(type, (const uint8_t *)a + r * file, n_in, n, tmp);
        } else {
            for (uint64_t i = 0; i < n; i++) {
                vkm_wlayout_pack(type, (const uint8_t *)a + (r + i) * file, n_in, 1, tmp + 2 * i * gpu);
                vkm_wlayout_pack(type, (const uint8_t *)b + (r + i) * file, n_in, 1, tmp + (2 * i + 1) * gpu);
            }
        }
        e = vkm_buffer_upload(c, dst, (row0 + k * r) * gpu, tmp, k * n * gpu);
    }
    free(tmp);
    return e;
}

vkmix_error vkm_wlayout_upload(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *src, uint64_t n_in,
                               uint64_t n_rows)
{
    return upload(c, dst, type, src, NULL, n_in, n_rows, 0);
}

vkmix_error vkm_wlayout_upload_at(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *src, uint64_t n_in,
                                  uint64_t n_rows, uint64_t row0)
{
    return upload(c, dst, type, src, NULL, n_in, n_rows, row0);
}

vkmix_error vkm_wlayout_upload_interleaved(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *a,
                                           const void *b, uint64_t n_in, uint64_t n_rows)
{
    if (!b) return VKMIX_ERROR_INVALID_ARGUMENT;
    return upload(c, dst, type, a, b, n_in, n_rows, 0);
}

vkmix_error vkm_weight_type_from_name(const char *name, uint32_t *type)
{
    static const uint32_t types[] = { VKM_GGML_F32, VKM_GGML_F16, VKM_GGML_BF16, VKM_GGML_Q8_0,
                                      VKM_GGML_Q4_0, VKM_GGML_Q4_K, VKM_GGML_Q6_K };
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(name, vkm_ggml_type_name(types[i]))) {
            *type = types[i];
            return VKMIX_OK;
        }
    return VKMIX_ERROR_INVALID_ARGUMENT;
}
