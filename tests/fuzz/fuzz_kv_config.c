/* Fuzz target: KV cache configuration text -> the typed configuration
 * (vkmix_kv_config_parse, vkmix_kv_profile_read), a profile round trip, and
 * the configuration a session would resolve for a model (with the session's
 * overrides) and its memory accounting (src/kv/kv_config.c).
 * Input: byte 0: the model: n_layer 1 + (b & 63), head_dim 8, 64, 12, 128 (bits 6-7);
 *        byte 1: bit 0: the rest is a JSON profile (read from a file, the only
 *                way the API reads one), else a spec ("k4v2:g=64:w=256:s=4");
 *                bits 1-2: kv_group override (none, 32, 64, 128); bits 3-4:
 *                kv_window (none, 16, 128, 4096); bits 5-6: kv_sinks (none, 4,
 *                255, 5000); bit 7: no context check (n_ctx 0), else n_ctx 512;
 *        the rest: the profile or the spec.
 * Contracts: a failure has a known code and a message; an accepted
 * configuration passes vkmix_kv_config_check; one that lists its layers is
 * written as a profile and read back equal; a resolved configuration has valid
 * widths, geometry, value group and ring, and memory accounts that add up. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "kv/kv.h"

static const char *tmp_path(int which)
{
    static char path[2][256];
    if (!path[which][0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path[which], sizeof path[which], "%s/vkmix-fuzz-kv-%ld-%d.json", dir ? dir : "/tmp", (long)getpid(),
                 which);
    }
    return path[which];
}

static int width_ok(unsigned b) { return b == 2 || b == 3 || b == 4 || b == 8 || b == 16; }

/* What vkmix_kv_config_check promises about an accepted public configuration. */
static void check_public(const vkmix_kv_config *c)
{
    char err[512];
    vkmix_error e = vkmix_kv_config_check(c, NULL, 0, err, sizeof err);
    FUZZ_ASSERT(e == VKMIX_OK, "an accepted configuration fails its check: %s", err);
    FUZZ_ASSERT((unsigned)c->policy < VKMIX_KV_POLICY_COUNT_ && c->n_layer <= VKMIX_KV_MAX_LAYERS, "policy %d, %u layers",
                (int)c->policy, c->n_layer);
    uint32_t n = c->n_layer ? c->n_layer : VKMIX_KV_MAX_LAYERS;
    for (uint32_t l = 0; l < n; l++)
        FUZZ_ASSERT(width_ok(c->k_bits[l]) && width_ok(c->v_bits[l]), "layer %u: k%u v%u", l, c->k_bits[l], c->v_bits[l]);
    FUZZ_ASSERT(memchr(c->name, 0, sizeof c->name) != NULL, "name not terminated");
}

/* A configuration that lists its layers survives a profile write and read. */
static void check_round_trip(const vkmix_kv_config *c)
{
    if (!c->n_layer) return; /* uniform: a profile lists every layer, the writer refuses it */
    char err[512];
    vkmix_error e = vkmix_kv_profile_write(c, tmp_path(1), "{\"by\":\"fuzz\"}", err, sizeof err);
    FUZZ_ASSERT(e == VKMIX_OK, "writing an accepted configuration: %s", err);
    if (e != VKMIX_OK) return;
    vkmix_kv_config b;
    e = vkmix_kv_profile_read(tmp_path(1), &b, err, sizeof err);
    FUZZ_ASSERT(e == VKMIX_OK, "reading back a written profile: %s", err);
    if (e != VKMIX_OK) return;
    FUZZ_ASSERT(b.policy == c->policy && b.n_layer == c->n_layer && b.group == c->group && b.window == c->window &&
                    b.sinks == c->sinks && !memcmp(b.k_bits, c->k_bits, c->n_layer) &&
                    !memcmp(b.v_bits, c->v_bits, c->n_layer),
                "profile round trip changed the configuration");
}

/* A session's configuration for the model hp, with overrides. */
static void check_resolved(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx)
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
    FUZZ_ASSERT(!n_ctx || c->sinks < n_ctx, "sinks %u, context %u", c->sinks, n_ctx);
    FUZZ_ASSERT(c->v_group && hp->head_dim % c->v_group == 0, "value group %u, head_dim %u", c->v_group, hp->head_dim);
    FUZZ_ASSERT(c->ring % c->group == 0 && c->ring >= c->window + c->group, "ring %u", c->ring);
    uint32_t ctx = n_ctx ? n_ctx : 512;
    uint32_t depths[3] = {0, 1, ctx};
    for (int i = 0; i < 3; i++) {
        vkmix_kv_memory m;
        vkm_kv_memory(c, hp, ctx, depths[i], &m);
        FUZZ_ASSERT(m.total_bytes == m.code_bytes + m.meta_bytes + m.fp16_bytes + m.aux_bytes, "memory parts");
        FUZZ_ASSERT(isfinite(m.k_bits) && isfinite(m.v_bits) && m.k_bits > 0 && m.v_bits > 0, "bits %g %g", m.k_bits,
                    m.v_bits);
    }
}

int vkm_fuzz_kv_config(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    static const uint32_t dims[4] = {8, 64, 12, 128}, groups[4] = {0, 32, 64, 128}, windows[4] = {0, 16, 128, 4096},
                          sinks[4] = {0, 4, 255, 5000};
    const int profile = data[1] & 1;
    char *text = malloc(size - 1);
    if (!text) return 0;
    memcpy(text, data + 2, size - 2);
    text[size - 2] = 0;
    /* a spec naming a profile file would read whatever file the input names */
    if (!profile && strstr(text, ".json")) {
        free(text);
        return 0;
    }
    vkmix_kv_config c;
    char err[512];
    memset(err, 0x55, sizeof err);
    vkmix_error e;
    if (profile) {
        FILE *f = fopen(tmp_path(0), "wb");
        if (!f) {
            free(text);
            return 0;
        }
        fwrite(data + 2, 1, size - 2, f);
        fclose(f);
        e = vkmix_kv_profile_read(tmp_path(0), &c, err, sizeof err);
    } else {
        e = vkmix_kv_config_parse(text, &c, err, sizeof err);
    }
    free(text);
    if (e != VKMIX_OK) {
        vkm_fuzz_check_error(e, err, sizeof err, profile ? "vkmix_kv_profile_read" : "vkmix_kv_config_parse");
        return 0;
    }
    check_public(&c);
    check_round_trip(&c);

    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layer = 1 + (data[0] & 0x3f);
    hp.head_dim = dims[data[0] >> 6];
    hp.n_head = hp.n_head_kv = 2;
    hp.n_embd = hp.n_head * hp.head_dim;
    const uint32_t n_ctx = data[1] & 0x80 ? 0 : 512;
    vkmix_session_params p;
    memset(&p, 0, sizeof p); /* vkmix_session_default_params: all zero */
    p.kv_config = &c;
    p.kv_group = groups[(data[1] >> 1) & 3];
    p.kv_window = windows[(data[1] >> 3) & 3];
    p.kv_sinks = sinks[(data[1] >> 5) & 3];
    vkm_kv_config r;
    memset(err, 0x55, sizeof err);
    e = vkm_kv_config_from_params(&p, &hp, n_ctx, &r, err, sizeof err);
    if (e == VKMIX_OK) check_resolved(&r, &hp, n_ctx);
    else vkm_fuzz_check_error(e, err, sizeof err, "vkm_kv_config_from_params");
    return 0;
}
