/* Fuzz target: parse the input as a GGUF file from memory, then walk every
 * key (typed getters, arrays, strings, nested arrays) and every tensor, and
 * dequantize the first row of each supported tensor (gguf_walk.h).
 * Contracts: a failed open returns no handle and a message; a parsed file's
 * accessors agree with each other. */
#include <string.h>

#include "fuzz.h"
#include "gguf/gguf.h"
#include "gguf_walk.h"

int vkm_fuzz_gguf(const uint8_t *data, size_t size)
{
    char err[256];
    memset(err, 0x55, sizeof err);
    vkm_gguf *g = (vkm_gguf *)err;
    vkmix_error e = vkm_gguf_open_memory(size ? data : NULL, size, &g, err, sizeof err);
    if (e == VKMIX_OK) {
        FUZZ_ASSERT(g != NULL, "open succeeded without a handle");
        if (g) {
            int bad = vkm_walk_gguf(g);
            FUZZ_ASSERT(bad == 0, "the walk found %d inconsistencies", bad);
            vkm_gguf_close(g);
        }
    } else {
        FUZZ_ASSERT(g == NULL, "failed open returned a handle");
        vkm_fuzz_check_error(e, err, sizeof err, "vkm_gguf_open_memory");
    }
    return 0;
}
