/* generated: embedded SPIR-V blobs */
#include <stddef.h>
#include <stdint.h>
extern const uint32_t vkm_spv_copy[];
extern const size_t vkm_spv_copy_size;
