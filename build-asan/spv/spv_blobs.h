/* generated: embedded SPIR-V blobs */
#include <stddef.h>
#include <stdint.h>
extern const uint32_t vkm_spv_copy[];
extern const size_t vkm_spv_copy_size;
extern const uint32_t vkm_spv_kvq_dequant_k[];
extern const size_t vkm_spv_kvq_dequant_k_size;
extern const uint32_t vkm_spv_kvq_dequant_v[];
extern const size_t vkm_spv_kvq_dequant_v_size;
extern const uint32_t vkm_spv_kvq_quant_k[];
extern const size_t vkm_spv_kvq_quant_k_size;
extern const uint32_t vkm_spv_kvq_quant_v[];
extern const size_t vkm_spv_kvq_quant_v_size;
