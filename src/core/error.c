/* Version and error strings, and the per-thread message buffer. */
#include "core/error.h"
#include "vkmix.h"

static _Thread_local char tls_err[VKM_ERR_SIZE];

char *vkm_err_buf(void) { return tls_err; }
void vkm_err_clear(void) { tls_err[0] = 0; }

unsigned vkmix_version_number(void) { return VKMIX_VERSION_NUMBER; }
const char *vkmix_version_string(void) { return VKMIX_VERSION_STRING; }

const char *vkmix_strerror(vkmix_error err)
{
    switch (err) {
    case VKMIX_OK: return "ok";
    case VKMIX_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case VKMIX_ERROR_OUT_OF_HOST_MEMORY: return "out of host memory";
    case VKMIX_ERROR_OUT_OF_DEVICE_MEMORY: return "out of device memory";
    case VKMIX_ERROR_NO_VULKAN: return "Vulkan loader not found";
    case VKMIX_ERROR_NO_DEVICE: return "no usable Vulkan device";
    case VKMIX_ERROR_DEVICE_LOST: return "Vulkan device lost";
    case VKMIX_ERROR_VULKAN: return "Vulkan error";
    case VKMIX_ERROR_UNSUPPORTED_DEVICE: return "device lacks a required feature";
    case VKMIX_ERROR_IO: return "I/O error";
    case VKMIX_ERROR_GGUF_MAGIC: return "not a GGUF v2/v3 file";
    case VKMIX_ERROR_GGUF_TRUNCATED: return "GGUF file truncated or offset out of range";
    case VKMIX_ERROR_GGUF_OVERFLOW: return "GGUF count or dimension overflows";
    case VKMIX_ERROR_GGUF_DUPLICATE: return "GGUF duplicate key or tensor";
    case VKMIX_ERROR_GGUF_BAD_TYPE: return "GGUF unknown value type";
    case VKMIX_ERROR_GGUF_MISSING_KEY: return "GGUF required key or tensor missing";
    case VKMIX_ERROR_GGUF_BAD_VALUE: return "GGUF key or tensor has the wrong type or shape";
    case VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE: return "unsupported tensor type";
    case VKMIX_ERROR_UNSUPPORTED_ARCH: return "unsupported model architecture";
    case VKMIX_ERROR_CONTEXT_OVERFLOW: return "context length exceeded";
    case VKMIX_ERROR_BAD_PROFILE: return "bad KV profile";
    case VKMIX_ERROR_TOKENIZER: return "tokenizer error";
    case VKMIX_ERROR_CANCELLED: return "cancelled";
    case VKMIX_ERROR_INTERNAL: return "internal error";
    case VKMIX_ERROR_BAD_STATE: return "session state of another model or configuration, or damaged";
    case VKMIX_ERROR_COUNT_: break;
    }
    return "unknown error";
}
