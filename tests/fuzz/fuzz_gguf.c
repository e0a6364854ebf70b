/* libFuzzer entry: parse the input as a GGUF file from memory, then walk every
 * key (typed getters, arrays, strings, nested arrays) and every tensor, and
 * dequantize the first row of each supported tensor (gguf_walk.h).
 * Besides the sanitizers, it traps on broken contracts: a failed open that
 * returns a handle or no message, or a parsed file whose accessors disagree. */
#include <stdint.h>
#include <string.h>

#include "gguf/gguf.h"
#include "gguf_walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    memset(err, 0x55, sizeof err);
    vkm_gguf *g = (vkm_gguf *)err;
    vkmix_error e = vkm_gguf_open_memory(data, size, &g, err, sizeof err);
    if (memchr(err, 0, sizeof err) == NULL) __builtin_trap(); /* message not terminated */
    if (e == VKMIX_OK) {
        if (!g || vkm_walk_gguf(g) != 0) __builtin_trap();
        vkm_gguf_close(g);
    } else if (g != NULL || err[0] == 0 || e < VKMIX_ERROR_INVALID_ARGUMENT || e >= VKMIX_ERROR_COUNT_) {
        __builtin_trap();
    }
    return 0;
}
