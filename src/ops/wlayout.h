/* GPU layouts of weight matrices: what vkm_op_matmul and vkm_op_get_rows read.
 *
 * GGUF stores quantized rows as arrays of blocks whose sizes (18, 34, 210
 * bytes) leave their fields only 2-byte aligned, so a shader could only read
 * them with 16-bit loads. When a model is uploaded, each row is rearranged
 * once into planes that every kernel reads with 16-byte loads; the bytes are
 * only moved, never changed, and the GGUF file and the CPU reference keep the
 * file layout. A matrix stays row-major with rows of vkm_wlayout_row_bytes
 * bytes (a multiple of 16), so it can still be split by rows. Per row
 * (nb = blocks in the row, planes in this order, the tail zero-padded to 16):
 *
 *   F32, F16, BF16  unchanged (the file layout; rows of n_in elements)
 *   Q4_0  qs[nb][16]  the 16 nibble bytes of each block, as in the file
 *                     (byte j: low nibble element j, high nibble element j+16)
 *         d[nb]       fp16 scales
 *   Q8_0  qs[nb][32]  int8, as in the file
 *         d[nb]       fp16 scales
 *   Q4_K  unchanged   (144-byte super-blocks are already 16-byte aligned)
 *   Q6_K  ql[nb][128] qh[nb][64] scales[nb][16] (int8) d[nb] (fp16)
 *                     each field of the file's block in its own plane
 *
 * Element order inside the fields is the file's, so 4 consecutive elements
 * share one 32-bit word of qs/ql/qh (the integer dot products rely on it). */
#ifndef VKM_WLAYOUT_H
#define VKM_WLAYOUT_H

#include <stdint.h>

#include "gpu/vk_device.h"

/* Bytes of one row of n_in elements in the GPU layout; 0 when the type is not
 * supported or n_in is not a whole number of blocks. */
uint64_t vkm_wlayout_row_bytes(uint32_t type, uint64_t n_in);

/* 1 when the GPU layout of the type differs from the file layout. */
int vkm_wlayout_repacked(uint32_t type);

/* n_rows rows of n_in elements from the file layout (src, any alignment) into
 * the GPU layout (dst, n_rows * vkm_wlayout_row_bytes bytes). */
vkmix_error vkm_wlayout_pack(uint32_t type, const void *src, uint64_t n_in, uint64_t n_rows, void *dst);
/* The inverse (tests, tools). */
vkmix_error vkm_wlayout_unpack(uint32_t type, const void *src, uint64_t n_in, uint64_t n_rows, void *dst);

/* The supported type named "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k" or
 * "q6_k" (any case); VKMIX_ERROR_INVALID_ARGUMENT for another name. */
vkmix_error vkm_weight_type_from_name(const char *name, uint32_t *type);

/* Uploads n_rows rows in the file layout (src) into dst (at least n_rows *
 * vkm_wlayout_row_bytes bytes) in the GPU layout, through host chunks of ~16 MiB
 * (recorded and submitted on c). */
vkmix_error vkm_wlayout_upload(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *src, uint64_t n_in,
                               uint64_t n_rows);
/* The same into GPU rows row0 .. row0 + n_rows - 1 of dst (matrices with the
 * same row length stacked in one buffer, e.g. Q, K and V). */
vkmix_error vkm_wlayout_upload_at(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *src, uint64_t n_in,
                                  uint64_t n_rows, uint64_t row0);
/* Two matrices of n_rows rows interleaved by rows: a's row i at GPU row 2i,
 * b's at 2i+1 (the gate and up matrices of vkm_op_matmul_glu). */
vkmix_error vkm_wlayout_upload_interleaved(vkm_cmd *c, vkm_buffer *dst, uint32_t type, const void *a,
                                           const void *b, uint64_t n_in, uint64_t n_rows);

#endif
