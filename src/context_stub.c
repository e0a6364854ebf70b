/* TEMPORARY stub, replaced by the Vulkan device layer. */
#include "vkmix.h"
#include <string.h>
void vkmix_context_default_params(vkmix_context_params *p) { memset(p, 0, sizeof *p); p->device_index = -1; }
vkmix_error vkmix_context_create(const vkmix_context_params *p, vkmix_context **out) { (void)p; *out = NULL; return VKMIX_ERROR_NO_DEVICE; }
void vkmix_context_free(vkmix_context *ctx) { (void)ctx; }
uint32_t vkmix_context_validation_messages(const vkmix_context *ctx) { (void)ctx; return 0; }
