/* Fuzz target: a KV cache configuration -> the typed configuration
 * (src/kv/kv_config.c: vkm_kv_config_from_params) and its memory accounting.
 * Input: byte 0: n_layer (1..64) and head_dim (bit 7: 64, else 8);
 *        byte 1: bit 0: the rest is a profile (JSON, given through a file as the
 *                       public API takes it), else a "kXvY" string;
 *                bits 1-2: kv_group (0, 32, 64, 128); bits 3-4: kv_window
 *                (0, 16, 128, 4096); bits 5-6: kv_sinks (0, 4, 255, 5000);
 *        the rest: the profile text or the string.
 * Contracts: a failure has a known code and a message; an accepted
 * configuration has a width in {2, 3, 4, 8, 16} for every layer, a group of
 * 32, 64 or 128, a window of at least the group, sinks below the context, a
 * value group that divides head_dim, a ring that holds window + group, and
 * memory accounts whose parts add up.
 * (The profile parser is being replaced by a typed public API in the kvseam
 * branch; this target moves to its in-memory parser when that lands.) */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kv/kv_config.h"

static const char *profile_path(void)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/vkmix-fuzz-kv-%ld.json", dir ? dir : "/tmp", (long)getpid());
    }
    return path;
}

static int width_ok(unsigned b) { return b == 2 || b == 3 || b == 4 || b == 8 || b == 16; }

static void check_config(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx)
{
    FUZZ_ASSERT(c->n_layer == hp->n_layer, "n_layer %u for %u", c->n_layer, hp->n_layer);
    int quantized = 0;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        FUZZ_ASSERT(width_ok(c->k_bits[l]) && width_ok(c->v_bits[l]), "layer %u: k%u v%u", l, c->k_bits[l], c->v_bits[l]);
        quantized |= c->k_bits[l] < 16 || c->v_bits[l] < 16;
    }
    FUZZ_ASSERT(c->quantized == quantized, "quantized flag %d", c->quantized);
    FUZZ_ASSERT(c->group == 32 || c->group == 64 || c->group == 128, "group %u", c->group);
    FUZZ_ASSERT(c->window >= c->group, "window %u < group %u", c->window, c->group);
    FUZZ_ASSERT(c->sinks < n_ctx, "sinks %u, context %u", c->sinks, n_ctx);
    FUZZ_ASSERT(c->v_group && hp->head_dim % c->v_group == 0, "value group %u, head_dim %u", c->v_group, hp->head_dim);
    FUZZ_ASSERT(c->ring % c->group == 0 && c->ring >= c->window + c->group, "ring %u", c->ring);
    FUZZ_ASSERT(memchr(c->name, 0, sizeof c->name) && memchr(c->provenance, 0, sizeof c->provenance), "strings");
    uint32_t depths[3] = {0, 1, n_ctx};
    for (int i = 0; i < 3; i++) {
        vkmix_kv_memory m;
        vkm_kv_memory(c, hp, n_ctx, depths[i], &m);
        FUZZ_ASSERT(m.total_bytes == m.code_bytes + m.meta_bytes + m.fp16_bytes, "memory parts");
        FUZZ_ASSERT(isfinite(m.k_bits) && isfinite(m.v_bits) && m.k_bits > 0 && m.v_bits > 0, "bits %g %g", m.k_bits,
                    m.v_bits);
    }
}

int vkm_fuzz_kv_config(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    static const uint32_t groups[4] = {0, 32, 64, 128}, windows[4] = {0, 16, 128, 4096}, sinks[4] = {0, 4, 255, 5000};
    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layer = 1 + (data[0] & 0x3f);
    hp.head_dim = data[0] & 0x80 ? 64 : 8;
    hp.n_head = hp.n_head_kv = 2;
    hp.n_embd = hp.n_head * hp.head_dim;
    const uint32_t n_ctx = 512;
    vkmix_session_params p;
    memset(&p, 0, sizeof p); /* vkmix_session_default_params: all zero */
    p.kv_group = groups[(data[1] >> 1) & 3];
    p.kv_window = windows[(data[1] >> 3) & 3];
    p.kv_sinks = sinks[(data[1] >> 5) & 3];
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    if (data[1] & 1) {
        FILE *f = fopen(profile_path(), "wb");
        if (!f) {
            free(text);
            return 0;
        }
        fwrite(data + 2, 1, size - 2, f);
        fclose(f);
        p.kv_profile = profile_path();
    } else {
        p.kv = text;
    }
    vkm_kv_config c;
    char err[512];
    memset(err, 0x55, sizeof err);
    vkmix_error e = vkm_kv_config_from_params(&p, &hp, n_ctx, &c, err, sizeof err);
    if (e == VKMIX_OK) check_config(&c, &hp, n_ctx);
    else vkm_fuzz_check_error(e, err, sizeof err, "vkm_kv_config_from_params");
    free(text);
    return 0;
}
