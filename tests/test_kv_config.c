/* The typed KV configuration (vkmix_kv_config): the spec parser's edge cases,
 * the profile format (round trip, version 1 files, every refusal naming its
 * field), the checks' messages, and the session's resolution of params
 * (strings, profiles and typed configs agree). No device is needed. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <string.h>
#include <unistd.h>

#include "kv/kv.h"
#include "testutil.h"

static char err[1024];

/* The spec must be refused with a message containing `want`. */
static void refused(const char *spec, const char *want)
{
    vkmix_kv_config c;
    err[0] = 0;
    vkmix_error e = vkmix_kv_config_parse(spec, &c, err, sizeof err);
    CHECK(e == VKMIX_ERROR_BAD_PROFILE && strstr(err, want), "'%s': error %d, message '%s' (want '%s')", spec, e, err,
          want);
}

static int all_widths(const vkmix_kv_config *c, uint32_t n, uint32_t kb, uint32_t vb)
{
    for (uint32_t l = 0; l < n; l++)
        if (c->k_bits[l] != kb || c->v_bits[l] != vb) return 0;
    return 1;
}

static void test_parser(void)
{
    vkmix_kv_config c;
    CHECK(vkmix_kv_config_parse("f16", &c, err, sizeof err) == VKMIX_OK && c.n_layer == 0 &&
              all_widths(&c, VKMIX_KV_MAX_LAYERS, 16, 16) && !strcmp(c.name, "f16") && c.policy == VKMIX_KV_POLICY_LAYER &&
              c.group == 0 && c.window == 0 && c.sinks == 0,
          "f16: %s", err);
    CHECK(c.mikv.important_fraction == 0.10f && c.mikv.high_bits == 8 && c.mikv.outlier_balancer == 1 &&
              c.mixkvq.target_key_bits == 0 && c.mixkvq.block == 0,
          "policy parameter defaults");
    CHECK(vkmix_kv_config_parse("k4v2", &c, err, sizeof err) == VKMIX_OK && all_widths(&c, VKMIX_KV_MAX_LAYERS, 4, 2) &&
              !strcmp(c.name, "k4v2"),
          "k4v2: %s", err);
    CHECK(vkmix_kv_config_parse("k16v3", &c, err, sizeof err) == VKMIX_OK && all_widths(&c, 3, 16, 3), "k16v3: %s", err);
    CHECK(vkmix_kv_config_parse("k2v8:g=64:w=256:s=4", &c, err, sizeof err) == VKMIX_OK && c.group == 64 &&
              c.window == 256 && c.sinks == 4 && all_widths(&c, 2, 2, 8) && !strcmp(c.name, "k2v8:g=64:w=256:s=4"),
          "options: %s", err);
    CHECK(vkmix_kv_config_parse("k3v3:g=64:g=128:w=128", &c, err, sizeof err) == VKMIX_OK && c.group == 128,
          "the last option wins: %s", err);
    CHECK(vkmix_kv_config_parse("k3v3:policy=layer", &c, err, sizeof err) == VKMIX_OK && c.policy == VKMIX_KV_POLICY_LAYER,
          "policy=layer: %s", err);
    CHECK(vkmix_kv_config_parse(NULL, &c, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL spec");
    /* the base */
    refused("", "empty");
    refused("q4", "is not f16 or kXvY");
    refused("K4V2", "is not f16 or kXvY");
    refused("k4", "is not f16 or kXvY");
    refused("k4v", "is not f16 or kXvY");
    refused("kv2", "is not f16 or kXvY");
    refused("k4v2x", "is not f16 or kXvY");
    refused("k 4v2", "is not f16 or kXvY");
    refused("k-4v2", "is not f16 or kXvY");
    refused("k+4v2", "is not f16 or kXvY");
    refused("f16x", "is not f16 or kXvY");
    refused("k5v2", "widths must be 2, 3, 4, 8 or 16");
    refused("k4v99999", "widths must be 2, 3, 4, 8 or 16");
    refused("k4v0", "widths must be 2, 3, 4, 8 or 16");
    /* options */
    refused("k4v2:", "is not key=value");
    refused("k4v2::g=64", "is not key=value");
    refused("k4v2:g", "is not key=value");
    refused("k4v2:g=", "option g");
    refused("k4v2:g=abc", "option g");
    refused("k4v2:g=-32", "option g");
    refused("k4v2:g=32x", "option g");
    refused("k4v2:zz=1", "unknown option 'zz'");
    refused("k4v2:g=48", "KV group 48 must be 32, 64 or 128");
    refused("k4v2:g=64:w=32", "KV window 32 must be at least the group (64)");
    refused("k4v2:s=5000", "KV sinks 5000");
    refused("k4v2:policy=h2o", "unknown policy 'h2o'");
    refused("k4v2:frac=0.2", "options of policy=mikv");
    refused("k4v2:kbits=3", "options of policy=mixkvq");
    refused("k4v2:policy=mikv:kbits=3", "options of policy=mixkvq");
    /* policies' parameters are checked (naming the field); both policies are implemented */
    CHECK(vkmix_kv_config_parse("k4v2:policy=mikv", &c, err, sizeof err) == VKMIX_OK && c.policy == VKMIX_KV_POLICY_MIKV,
          "mikv (implemented): %s", err);
    CHECK(vkmix_kv_config_parse("k4v2:policy=mixkvq", &c, err, sizeof err) == VKMIX_OK &&
              c.policy == VKMIX_KV_POLICY_MIXKVQ,
          "mixkvq (implemented): %s", err);
    refused("k4v2:policy=mikv:frac=1.5", "important_fraction 1.5");
    refused("k4v2:policy=mikv:hi=4", "high_bits 4 must be 8 or 16");
    refused("k4v2:policy=mikv:balance=2", "option balance");
    refused("k4v2:policy=mixkvq:kbits=1", "target_key_bits 1");
    refused("k4v2:policy=mixkvq:block=48", "block 48 must be a multiple of the group (32)");
    refused("k4v2:policy=mixkvq:t16=0.5:t4=2", "threshold_fp16 0.5 is below threshold_4bit 2");
    refused("k4v2:policy=mixkvq:t4=2", "threshold_4bit needs threshold_fp16");
    char longspec[1200];
    memset(longspec, 'k', sizeof longspec - 1);
    longspec[sizeof longspec - 1] = 0;
    refused(longspec, "too long");
    /* the unchecked parser keeps the reserved policies' parameters (issue 11 fills them in) */
    CHECK(vkm_kv_config_parse("k2v2:policy=mikv:frac=0.2:hi=16:balance=0", &c, err, sizeof err) == VKMIX_OK &&
              c.policy == VKMIX_KV_POLICY_MIKV && c.mikv.important_fraction == 0.2f && c.mikv.high_bits == 16 &&
              c.mikv.outlier_balancer == 0,
          "mikv options: %s", err);
    CHECK(vkm_kv_config_parse("k2v2:policy=mixkvq:kbits=3.5:t16=2:t4=0.5:block=64:queries=96", &c, err, sizeof err) ==
                  VKMIX_OK &&
              c.policy == VKMIX_KV_POLICY_MIXKVQ && c.mixkvq.target_key_bits == 3.5f && c.mixkvq.threshold_fp16 == 2.0f &&
              c.mixkvq.threshold_4bit == 0.5f && c.mixkvq.block == 64 && c.mixkvq.recent_queries == 96,
          "mixkvq options: %s", err);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fresh temporary path ending in ".json" (profiles are recognised by it). */
static int temp_json(char *path, size_t len, const char *stem)
{
    char base[128];
    snprintf(base, sizeof base, "/tmp/vkmix_test_%s_XXXXXX", stem);
    int fd = mkstemp(base);
    if (fd < 0) return 0;
    close(fd);
    unlink(base);
    snprintf(path, len, "%s.json", base);
    return 1;
}

/* A profile file with `text` must be refused with `want` in the message. */
static void profile_refused(const char *path, const char *text, const char *want)
{
    write_text(path, text);
    vkmix_kv_config c;
    err[0] = 0;
    vkmix_error e = vkmix_kv_profile_read(path, &c, err, sizeof err);
    CHECK(e == VKMIX_ERROR_BAD_PROFILE && strstr(err, want), "%s: error %d '%s' (want '%s')", text, e, err, want);
}

static void test_profiles(void)
{
    char path[256];
    CHECK(temp_json(path, sizeof path, "kv_config"), "mkstemp");
    const char *base = strrchr(path, '/') + 1;
    /* round trip of every field of the per-layer policy */
    vkmix_kv_config a, b;
    vkmix_kv_config_default(&a);
    a.n_layer = 7;
    static const uint8_t kb[7] = { 2, 3, 4, 8, 16, 2, 3 }, vb[7] = { 16, 8, 4, 3, 2, 2, 4 };
    memcpy(a.k_bits, kb, 7);
    memcpy(a.v_bits, vb, 7);
    a.group = 64;
    a.window = 192;
    a.sinks = 3;
    CHECK(vkmix_kv_profile_write(&a, path, "{\"tool\": \"test\", \"n\": [1, 2]}", err, sizeof err) == VKMIX_OK,
          "write: %s", err);
    CHECK(vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK, "read: %s", err);
    CHECK(b.n_layer == 7 && !memcmp(b.k_bits, kb, 7) && !memcmp(b.v_bits, vb, 7) && b.group == 64 && b.window == 192 &&
              b.sinks == 3 && b.policy == VKMIX_KV_POLICY_LAYER && !strcmp(b.name, base),
          "round trip: n_layer %u group %u window %u sinks %u name %s", b.n_layer, b.group, b.window, b.sinks, b.name);
    /* the same file through the spec parser, with an option on top */
    CHECK(vkmix_kv_config_parse(path, &b, err, sizeof err) == VKMIX_OK && b.n_layer == 7 && b.window == 192 &&
              !strcmp(b.name, base),
          "profile spec: %s", err);
    char spec[512];
    snprintf(spec, sizeof spec, "%s:w=512:s=0", path);
    CHECK(vkmix_kv_config_parse(spec, &b, err, sizeof err) == VKMIX_OK && b.window == 512 && b.sinks == 0 &&
              b.group == 64 && !memcmp(b.k_bits, kb, 7) && strstr(b.name, ":w=512"),
          "profile spec with options: %s (name %s)", err, b.name);
    /* geometry of 0 stays out of the file and reads back as 0 */
    a.group = a.window = a.sinks = 0;
    CHECK(vkmix_kv_profile_write(&a, path, NULL, err, sizeof err) == VKMIX_OK &&
              vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.group == 0 && b.window == 0 && b.sinks == 0,
          "default geometry: %s", err);
    /* the writer's refusals */
    vkmix_kv_config u;
    vkmix_kv_config_parse("k4v4", &u, err, sizeof err);
    CHECK(vkmix_kv_profile_write(&u, path, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT &&
              strstr(err, "uniform"),
          "a uniform config is not a profile: %s", err);
    a.k_bits[3] = 6;
    CHECK(vkmix_kv_profile_write(&a, path, NULL, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(err, "layer 3: key width 6"),
          "bad width: %s", err);
    a.k_bits[3] = 8;
    CHECK(vkmix_kv_profile_write(&a, path, "{oops", err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "bad provenance");
    CHECK(vkmix_kv_profile_write(&a, "/nonexistent-dir/p.json", NULL, err, sizeof err) == VKMIX_ERROR_IO, "unwritable");
    /* a version 1 profile (no format, no version, no policy) still loads */
    write_text(path, "{\"layers\": [{\"k\": 3, \"v\": 4}, {\"k\": 2, \"v\": 2}], \"group\": 32, \"window\": 64, "
                     "\"provenance\": \"hand made\"}");
    CHECK(vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.n_layer == 2 && b.k_bits[0] == 3 &&
              b.v_bits[0] == 4 && b.k_bits[1] == 2 && b.group == 32 && b.window == 64 && b.policy == VKMIX_KV_POLICY_LAYER,
          "version 1: %s", err);
    write_text(path, "{\"format\": \"vkmix-kv-profile\", \"version\": 1, \"n_layer\": 1, \"layers\": [{\"k\": 8, \"v\": 8}], "
                     "\"provenance\": {\"model\": \"x\"}}");
    CHECK(vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.n_layer == 1 && b.k_bits[0] == 8,
          "version 1 with format: %s", err);
    /* the reserved policies' parameters are read (the unchecked reader) and refused by the checked one */
    write_text(path, "{\"version\": 2, \"policy\": \"mikv\", \"layers\": [{\"k\": 2, \"v\": 2}], "
                     "\"mikv\": {\"important_fraction\": 0.25, \"high_bits\": 16, \"outlier_balancer\": false}}");
    CHECK(vkm_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.policy == VKMIX_KV_POLICY_MIKV &&
              b.mikv.important_fraction == 0.25f && b.mikv.high_bits == 16 && b.mikv.outlier_balancer == 0,
          "mikv fields: %s", err);
    CHECK(vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.policy == VKMIX_KV_POLICY_MIKV,
          "mikv profile (implemented): %s", err);
    write_text(path, "{\"version\": 2, \"policy\": \"mixkvq\", \"layers\": [{\"k\": 2, \"v\": 2}], \"group\": 64, "
                     "\"mixkvq\": {\"target_key_bits\": 3, \"threshold_fp16\": 0, \"threshold_4bit\": 0, "
                     "\"block\": 128, \"recent_queries\": 32}}");
    CHECK(vkm_kv_profile_read(path, &b, err, sizeof err) == VKMIX_OK && b.policy == VKMIX_KV_POLICY_MIXKVQ &&
              b.mixkvq.target_key_bits == 3.0f && b.mixkvq.block == 128 && b.mixkvq.recent_queries == 32,
          "mixkvq fields: %s", err);
    /* every refusal names its field */
    profile_refused(path, "{\"layers\": \"all of them\"}", "\"layers\" must be an array");
    profile_refused(path, "{\"layers\": []}", "\"layers\" has 0 entries");
    profile_refused(path, "[1, 2]", "is not a JSON object");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}", "is not valid JSON");
    profile_refused(path, "{\"format\": \"gguf\", \"layers\": [{\"k\": 2, \"v\": 2}]}", "\"format\" must be");
    profile_refused(path, "{\"version\": 3, \"layers\": [{\"k\": 2, \"v\": 2}]}", "version 3 is newer");
    profile_refused(path, "{\"version\": 1.5, \"layers\": [{\"k\": 2, \"v\": 2}]}", "\"version\"");
    profile_refused(path, "{\"n_layer\": 3, \"layers\": [{\"k\": 2, \"v\": 2}]}", "n_layer is 3 but \"layers\" has 1");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}, {\"k\": 2}]}", "layer 1 needs numeric");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}, {\"k\": 2, \"v\": 5}]}", "layer 1: value width 5");
    profile_refused(path, "{\"layers\": [{\"k\": 2.5, \"v\": 2}]}", "layer 0: key width 2.5");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"group\": -32}", "\"group\" must be");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"window\": \"big\"}", "\"window\" must be");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"group\": 48}", "KV group 48");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"policy\": \"h2o\"}", "\"policy\" must be");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"policy\": \"mikv\", \"mikv\": {\"fraction\": 0.1}}",
                    "mikv: unknown field \"fraction\"");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"mixkvq\": {\"block\": -1}}", "mixkvq.block must be");
    profile_refused(path, "{\"layers\": [{\"k\": 2, \"v\": 2}], \"mikv\": 3}", "\"mikv\" must be an object");
    unlink(path);
    CHECK(vkmix_kv_profile_read(path, &b, err, sizeof err) == VKMIX_ERROR_IO && strstr(err, "cannot read KV profile"),
          "missing file: %s", err);
}

static vkm_hparams shapes(uint32_t n_layer, uint32_t head_dim)
{
    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layer = n_layer;
    hp.n_head = 4;
    hp.n_head_kv = 2;
    hp.head_dim = head_dim;
    hp.n_embd = 4 * head_dim;
    hp.n_ctx_train = 2048;
    return hp;
}

static void check_msg(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, const char *want)
{
    err[0] = 0;
    vkmix_error e = vkm_kv_config_check(c, hp, n_ctx, err, sizeof err);
    CHECK(e == VKMIX_ERROR_BAD_PROFILE && strstr(err, want), "check: error %d '%s' (want '%s')", e, err, want);
}

static void test_checks(void)
{
    vkm_hparams hp = shapes(5, 64);
    vkmix_kv_config c;
    vkmix_kv_config_parse("k4v2", &c, err, sizeof err);
    CHECK(vkm_kv_config_check(&c, &hp, 1024, err, sizeof err) == VKMIX_OK, "k4v2 fits: %s", err);
    c.k_bits[200] = 8;
    check_msg(&c, NULL, 0, "n_layer is 0 (uniform) but entry 200 holds k8 v2");
    vkmix_kv_config_default(&c);
    c.n_layer = 4;
    check_msg(&c, &hp, 0, "has 4 layers but the model has 5");
    c.n_layer = 5;
    c.k_bits[2] = 7;
    check_msg(&c, &hp, 0, "layer 2: key width 7 is not one of 2, 3, 4, 8, 16");
    c.k_bits[2] = 2;
    c.v_bits[4] = 1;
    check_msg(&c, &hp, 0, "layer 4: value width 1");
    c.v_bits[4] = 2;
    c.n_layer = VKMIX_KV_MAX_LAYERS + 1;
    check_msg(&c, NULL, 0, "n_layer 513");
    c.n_layer = 5;
    c.group = 16;
    check_msg(&c, &hp, 0, "KV group 16 must be 32, 64 or 128");
    c.group = 128;
    CHECK(vkm_kv_config_check(&c, &hp, 0, err, sizeof err) == VKMIX_OK, "G 128 with the default window: %s", err);
    c.window = 100;
    check_msg(&c, &hp, 0, "KV window 100 must be at least the group (128)");
    c.group = 0;
    c.window = 0;
    c.sinks = 64;
    check_msg(&c, &hp, 64, "KV sinks 64 must be smaller than the context (64)");
    c.sinks = 0;
    c.policy = (vkmix_kv_policy)7;
    check_msg(&c, &hp, 0, "unknown policy 7");
    c.policy = VKMIX_KV_POLICY_LAYER;
    vkm_hparams odd = shapes(5, 12);
    check_msg(&c, &odd, 0, "head_dim 12 cannot be quantized");
    vkmix_kv_config f16;
    vkmix_kv_config_parse("f16", &f16, err, sizeof err);
    CHECK(vkm_kv_config_check(&f16, &odd, 0, err, sizeof err) == VKMIX_OK, "f16 needs no head_dim multiple of 8: %s", err);
    /* the public check takes the model's info */
    vkmix_model_info info;
    memset(&info, 0, sizeof info);
    info.n_layer = 6;
    info.n_head = 4;
    info.n_head_kv = 2;
    info.head_dim = 64;
    CHECK(vkmix_kv_config_check(&c, &info, 512, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(err, "has 5 layers but the model has 6"),
          "public check: %s", err);
    info.n_layer = 5;
    CHECK(vkmix_kv_config_check(&c, &info, 512, err, sizeof err) == VKMIX_OK, "public check passes: %s", err);
    CHECK(vkmix_kv_config_check(NULL, &info, 512, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL config");
}

/* Two resolved configurations are the same cache. */
static int same(const vkm_kv_config *a, const vkm_kv_config *b, uint32_t n_layer)
{
    return a->policy == b->policy && a->quantized == b->quantized && a->n_layer == b->n_layer &&
           !memcmp(a->k_bits, b->k_bits, n_layer) && !memcmp(a->v_bits, b->v_bits, n_layer) && a->group == b->group &&
           a->v_group == b->v_group && a->window == b->window && a->sinks == b->sinks && a->ring == b->ring;
}

static void test_session_params(void)
{
    vkm_hparams hp = shapes(3, 80);
    vkmix_session_params p;
    vkm_kv_config x, y;
    /* a string and the typed config it parses to */
    vkmix_session_default_params(&p);
    p.kv = "k3v2:g=64:w=128:s=2";
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &x, err, sizeof err) == VKMIX_OK, "string: %s", err);
    CHECK(x.group == 64 && x.v_group == 80 && x.window == 128 && x.sinks == 2 &&
              x.ring == (128 + 64 + 64 + 63) / 64 * 64 && x.quantized && x.k_bits[2] == 3 && x.v_bits[2] == 2,
          "resolved: G %u VG %u R %u S %u ring %u", x.group, x.v_group, x.window, x.sinks, x.ring);
    vkmix_kv_config c;
    CHECK(vkmix_kv_config_parse("k3v2:g=64:w=128:s=2", &c, err, sizeof err) == VKMIX_OK, "parse");
    vkmix_session_default_params(&p);
    p.kv_config = &c;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &y, err, sizeof err) == VKMIX_OK && same(&x, &y, 3),
          "typed config = string: %s", err);
    vkmix_kv_memory mx, my;
    vkm_kv_memory(&x, &hp, 1000, 0, &mx);
    vkm_kv_memory(&y, &hp, 1000, 0, &my);
    CHECK(mx.total_bytes == my.total_bytes && mx.k_bits == my.k_bits && mx.aux_bytes == 0, "same memory");
    /* overrides win over the typed config */
    p.kv_window = 256;
    p.kv_sinks = 1;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &y, err, sizeof err) == VKMIX_OK && y.window == 256 && y.sinks == 1 &&
              y.group == 64,
          "overrides: %s", err);
    /* a config and a string at once is refused */
    p.kv = "k4v4";
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &y, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT &&
              strstr(err, "not both"),
          "kv_config with kv: %s", err);
    /* a profile by kv_profile, by kv, and typed */
    char path[256];
    CHECK(temp_json(path, sizeof path, "kv_params"), "mkstemp");
    write_text(path, "{\"layers\": [{\"k\": 3, \"v\": 4}, {\"k\": 16, \"v\": 16}, {\"k\": 2, \"v\": 8}], \"window\": 64}");
    vkm_kv_config z;
    vkmix_session_default_params(&p);
    p.kv_profile = path;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &x, err, sizeof err) == VKMIX_OK && x.window == 64 &&
              x.k_bits[1] == 16 && x.v_bits[2] == 8,
          "kv_profile: %s", err);
    vkmix_session_default_params(&p);
    p.kv = path;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &y, err, sizeof err) == VKMIX_OK && same(&x, &y, 3),
          "kv = a profile path: %s", err);
    CHECK(vkmix_kv_profile_read(path, &c, err, sizeof err) == VKMIX_OK, "read");
    vkmix_session_default_params(&p);
    p.kv_config = &c;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &z, err, sizeof err) == VKMIX_OK && same(&x, &z, 3),
          "typed profile: %s", err);
    /* a profile for another model */
    vkm_hparams other = shapes(4, 80);
    CHECK(vkm_kv_config_from_params(&p, &other, 1000, &z, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(err, "has 3 layers but the model has 4"),
          "layer count: %s", err);
    unlink(path);
    /* defaults: f16 for NULL and "", sinks dropped when nothing is quantized */
    vkmix_session_default_params(&p);
    p.kv_sinks = 4;
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &x, err, sizeof err) == VKMIX_OK && !x.quantized && x.sinks == 0 &&
              x.group == 32 && x.window == 128 && !strcmp(x.name, "f16"),
          "f16 default: %s", err);
    p.kv = "";
    CHECK(vkm_kv_config_from_params(&p, &hp, 1000, &x, err, sizeof err) == VKMIX_OK && !x.quantized, "empty kv");
    CHECK(vkm_kv_config_from_params(NULL, &hp, 1000, &x, err, sizeof err) == VKMIX_OK && !x.quantized, "NULL params");
}

int main(void)
{
    test_parser();
    test_profiles();
    test_checks();
    test_session_params();
    return tu_finish("test_kv_config");
}
