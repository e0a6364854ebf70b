/* The KV cache configuration: the public typed struct, its spec parser, its
 * checks, the profile file format (read and write), the configuration resolved
 * for a session, and memory accounting (through the policy table). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"

#define PROFILE_FORMAT "vkmix-kv-profile"
#define PROFILE_VERSION 2

static int width_ok(long b) { return b == 2 || b == 3 || b == 4 || b == 8 || b == 16; }

static vkmix_error fail(char *err, size_t errlen, vkmix_error e, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static vkmix_error fail(char *err, size_t errlen, vkmix_error e, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return e;
}
#define BAD(...) fail(err, errlen, VKMIX_ERROR_BAD_PROFILE, __VA_ARGS__)

/* ------------------------------------------------------------------ defaults and uniform widths */

void vkmix_kv_config_default(vkmix_kv_config *c)
{
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->policy = VKMIX_KV_POLICY_LAYER;
    memset(c->k_bits, 16, sizeof c->k_bits);
    memset(c->v_bits, 16, sizeof c->v_bits);
    c->mikv.important_fraction = 0.10f;
    c->mikv.high_bits = 8;
    c->mikv.outlier_balancer = 1;
    snprintf(c->name, sizeof c->name, "f16");
}

static void set_uniform(vkmix_kv_config *c, uint32_t kb, uint32_t vb)
{
    c->n_layer = 0;
    memset(c->k_bits, (int)kb, sizeof c->k_bits);
    memset(c->v_bits, (int)vb, sizeof c->v_bits);
}

/* ------------------------------------------------------------------ checks */

/* Everything but "the policy has device operations". */
static vkmix_error check_fields(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, char *err,
                                size_t errlen)
{
    if (!c) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "KV configuration: NULL");
    const char *nm = c->name;
    if ((unsigned)c->policy >= VKMIX_KV_POLICY_COUNT_)
        return BAD("KV configuration '%s': unknown policy %d", nm, (int)c->policy);
    if (c->n_layer > VKM_KV_MAX_LAYERS)
        return BAD("KV configuration '%s': n_layer %u (at most %d layers are supported)", nm, c->n_layer,
                   VKM_KV_MAX_LAYERS);
    if (hp && hp->n_layer > VKM_KV_MAX_LAYERS)
        return BAD("models with more than %d layers are not supported", VKM_KV_MAX_LAYERS);
    if (hp && c->n_layer && c->n_layer != hp->n_layer)
        return BAD("KV configuration '%s' has %u layers but the model has %u", nm, c->n_layer, hp->n_layer);
    const uint32_t n = c->n_layer ? c->n_layer : VKM_KV_MAX_LAYERS;
    int quantized = 0;
    for (uint32_t l = 0; l < n; l++) {
        if (!width_ok(c->k_bits[l]))
            return BAD("KV configuration '%s': layer %u: key width %u is not one of 2, 3, 4, 8, 16", nm, l, c->k_bits[l]);
        if (!width_ok(c->v_bits[l]))
            return BAD("KV configuration '%s': layer %u: value width %u is not one of 2, 3, 4, 8, 16", nm, l,
                       c->v_bits[l]);
        if (!c->n_layer && (c->k_bits[l] != c->k_bits[0] || c->v_bits[l] != c->v_bits[0]))
            return BAD("KV configuration '%s': n_layer is 0 (uniform) but entry %u holds k%u v%u and entry 0 k%u v%u",
                       nm, l, c->k_bits[l], c->v_bits[l], c->k_bits[0], c->v_bits[0]);
        quantized |= c->k_bits[l] < 16 || c->v_bits[l] < 16;
    }
    const uint32_t G = c->group ? c->group : 32, R = c->window ? c->window : 128;
    if (G != 32 && G != 64 && G != 128) return BAD("KV group %u must be 32, 64 or 128", G);
    if (R < G) return BAD("KV window %u must be at least the group (%u)", R, G);
    if (R > (1u << 24)) return BAD("KV window %u is too large", R);
    if (c->sinks > 4096 || (n_ctx && c->sinks >= n_ctx))
        return BAD("KV sinks %u must be smaller than the context (%u) and at most 4096", c->sinks, n_ctx);
    if (hp && quantized && (hp->head_dim % 8 || hp->head_dim > 1024))
        return BAD("KV configuration '%s': head_dim %u cannot be quantized (a multiple of 8, at most 1024)", nm,
                   hp->head_dim);
    const vkm_kv_policy_ops *ops = vkm_kv_policy(c->policy);
    return ops->check ? ops->check(c, hp, err, errlen) : VKMIX_OK;
}

vkmix_error vkm_kv_config_check(const vkmix_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, char *err,
                                size_t errlen)
{
    vkmix_error e = check_fields(c, hp, n_ctx, err, errlen);
    if (e == VKMIX_OK && !vkm_kv_policy_implemented(c->policy))
        e = BAD("KV configuration '%s': the %s policy is not implemented yet", c->name, vkm_kv_policy_name(c->policy));
    return e;
}

vkmix_error vkmix_kv_config_check(const vkmix_kv_config *c, const vkmix_model_info *model, uint32_t n_ctx, char *err,
                                  size_t errlen)
{
    if (!model) return vkm_kv_config_check(c, NULL, n_ctx, err, errlen);
    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layer = model->n_layer;
    hp.n_head = model->n_head;
    hp.n_head_kv = model->n_head_kv;
    hp.head_dim = model->head_dim;
    hp.n_embd = model->n_embd;
    hp.n_ctx_train = model->n_ctx_train;
    return vkm_kv_config_check(c, &hp, n_ctx, err, errlen);
}

/* ------------------------------------------------------------------ the spec parser */

/* A whole decimal number in [lo, hi]. */
static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    if (!s || *s < '0' || *s > '9') return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (uint32_t)v;
    return 1;
}

static int parse_float(const char *s, float *out)
{
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}


/* "k4v2" -> widths; 0 when the text is not of that form. */
static int parse_kv(const char *s, uint32_t *kb, uint32_t *vb)
{
    if (s[0] != 'k') return 0;
    const char *v = strchr(s, 'v');
    if (!v || v == s + 1) return 0;
    char kbuf[8];
    size_t kl = (size_t)(v - s - 1);
    if (kl >= sizeof kbuf) return 0;
    memcpy(kbuf, s + 1, kl);
    kbuf[kl] = 0;
    return parse_u32(kbuf, 0, 1u << 20, kb) && parse_u32(v + 1, 0, 1u << 20, vb);
}

/* Options after the base: "g=64:w=256:policy=mikv:frac=0.2". */
static vkmix_error parse_options(const char *spec, char *opts, vkmix_kv_config *c, char *err, size_t errlen)
{
    int mikv_opt = 0, mixkvq_opt = 0;
    for (char *p = opts; p;) {
        char *next = strchr(p, ':');
        if (next) *next++ = 0;
        char *eq = strchr(p, '=');
        if (!*p) return BAD("KV configuration '%.80s': an empty option is not key=value", spec);
        if (!eq) return BAD("KV configuration '%.80s': option '%.40s' is not key=value", spec, p);
        *eq = 0;
        const char *key = p, *val = eq + 1;
        int ok = 1;
        if (!strcmp(key, "g")) ok = parse_u32(val, 1, 1u << 20, &c->group);
        else if (!strcmp(key, "w")) ok = parse_u32(val, 1, 1u << 24, &c->window);
        else if (!strcmp(key, "s")) ok = parse_u32(val, 0, 1u << 20, &c->sinks);
        else if (!strcmp(key, "policy")) {
            int id = vkm_kv_policy_by_name(val);
            if (id < 0)
                return BAD("KV configuration '%.80s': unknown policy '%.40s' (layer, mikv, mixkvq)", spec, val);
            c->policy = (vkmix_kv_policy)id;
        } else if (!strcmp(key, "frac")) ok = parse_float(val, &c->mikv.important_fraction), mikv_opt = 1;
        else if (!strcmp(key, "hi")) ok = parse_u32(val, 0, 64, &c->mikv.high_bits), mikv_opt = 1;
        else if (!strcmp(key, "balance")) {
            uint32_t b = 0;
            ok = parse_u32(val, 0, 1, &b);
            c->mikv.outlier_balancer = (int)b;
            mikv_opt = 1;
        } else if (!strcmp(key, "kbits")) ok = parse_float(val, &c->mixkvq.target_key_bits), mixkvq_opt = 1;
        else if (!strcmp(key, "t16")) ok = parse_float(val, &c->mixkvq.threshold_fp16), mixkvq_opt = 1;
        else if (!strcmp(key, "t4")) ok = parse_float(val, &c->mixkvq.threshold_4bit), mixkvq_opt = 1;
        else if (!strcmp(key, "block")) ok = parse_u32(val, 0, 1u << 20, &c->mixkvq.block), mixkvq_opt = 1;
        else if (!strcmp(key, "queries")) ok = parse_u32(val, 0, 1u << 20, &c->mixkvq.recent_queries), mixkvq_opt = 1;
        else
            return BAD("KV configuration '%.80s': unknown option '%.40s' (g=, w=, s=, policy=; mikv: frac=, hi=, "
                       "balance=; mixkvq: kbits=, t16=, t4=, block=, queries=)",
                       spec, key);
        if (!ok) return BAD("KV configuration '%.80s': option %s: '%.40s' is not a valid value", spec, key, val);
        p = next;
    }
    if (mikv_opt && c->policy != VKMIX_KV_POLICY_MIKV)
        return BAD("KV configuration '%.80s': frac=, hi= and balance= are options of policy=mikv", spec);
    if (mixkvq_opt && c->policy != VKMIX_KV_POLICY_MIXKVQ)
        return BAD("KV configuration '%.80s': kbits=, t16=, t4=, block= and queries= are options of policy=mixkvq", spec);
    return VKMIX_OK;
}

vkmix_error vkm_kv_config_parse(const char *spec, vkmix_kv_config *c, char *err, size_t errlen)
{
    if (!spec || !c) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "KV configuration: NULL spec");
    vkmix_kv_config_default(c);
    char buf[1024];
    if (!*spec) return BAD("KV configuration: empty spec (f16, kXvY or a profile .json)");
    if (strlen(spec) >= sizeof buf) return BAD("KV configuration '%.40s...' is too long", spec);
    snprintf(buf, sizeof buf, "%s", spec);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = 0;
    size_t n = strlen(buf);
    uint32_t kb, vb;
    vkmix_error e;
    if (n > 5 && !strcmp(buf + n - 5, ".json")) {
        if ((e = vkm_kv_profile_read(buf, c, err, errlen)) != VKMIX_OK) return e;
        if (opts) {
            const char *base = strrchr(buf, '/');
            snprintf(c->name, sizeof c->name, "%.40s:%.20s", base ? base + 1 : buf, opts);
        }
    } else if (!strcmp(buf, "f16")) {
        snprintf(c->name, sizeof c->name, "%.63s", spec);
    } else if (parse_kv(buf, &kb, &vb)) {
        if (!width_ok(kb) || !width_ok(vb))
            return BAD("KV configuration '%.40s': widths must be 2, 3, 4, 8 or 16", spec);
        set_uniform(c, kb, vb);
        snprintf(c->name, sizeof c->name, "%.63s", spec);
    } else
        return BAD("KV configuration '%.40s' is not f16 or kXvY (e.g. k4v2), or a profile path ending in .json", spec);
    return opts ? parse_options(spec, opts, c, err, errlen) : VKMIX_OK;
}

vkmix_error vkmix_kv_config_parse(const char *spec, vkmix_kv_config *c, char *err, size_t errlen)
{
    vkmix_error e = vkm_kv_config_parse(spec, c, err, errlen);
    return e == VKMIX_OK ? vkm_kv_config_check(c, NULL, 0, err, errlen) : e;
}

/* ------------------------------------------------------------------ profiles */

static char *read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    int too_big = buf && n == max && fgetc(f) != EOF;
    fclose(f);
    if (!buf || too_big) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* A whole number in [lo, hi] from a JSON number. */
static int json_uint(const cJSON *x, double lo, double hi, uint32_t *out)
{
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < lo || x->valuedouble > hi)
        return 0;
    *out = (uint32_t)x->valuedouble;
    return 1;
}

/* The fields of a policy's parameter object: every key must be known. */
/* A JSON number is a width only when it is a small whole number: converting 1e20 to an
   integer type first would be undefined behaviour (found by fuzz_kv_config). */
static int json_width_ok(double d)
{
    return d >= 0.0 && d <= 64.0 && d == floor(d) && width_ok((long)d);
}

typedef struct field { const char *key; int kind; void *dst; } field; /* kind 0: float, 1: uint32, 2: bool (int) */

static vkmix_error read_fields(const char *path, const char *obj_name, const cJSON *obj, const field *f, int nf,
                               char *err, size_t errlen)
{
    if (!cJSON_IsObject(obj)) return BAD("KV profile '%s': \"%s\" must be an object", path, obj_name);
    for (const cJSON *it = obj->child; it; it = it->next) {
        int i = 0;
        while (i < nf && strcmp(f[i].key, it->string)) i++;
        if (i == nf) return BAD("KV profile '%s': %s: unknown field \"%.40s\"", path, obj_name, it->string);
        int ok = 1;
        if (f[i].kind == 0) {
            ok = cJSON_IsNumber(it) && isfinite(it->valuedouble) && fabs(it->valuedouble) <= FLT_MAX;
            if (ok) *(float *)f[i].dst = (float)it->valuedouble;
        } else if (f[i].kind == 1) ok = json_uint(it, 0, 1 << 24, (uint32_t *)f[i].dst);
        else {
            ok = cJSON_IsBool(it);
            if (ok) *(int *)f[i].dst = cJSON_IsTrue(it);
        }
        if (!ok)
            return BAD("KV profile '%s': %s.%s must be %s", path, obj_name, f[i].key,
                       f[i].kind == 0 ? "a number" : f[i].kind == 1 ? "a non-negative integer" : "true or false");
    }
    return VKMIX_OK;
}

static vkmix_error profile_parse(const char *path, const cJSON *j, vkmix_kv_config *c, char *err, size_t errlen)
{
    if (!cJSON_IsObject(j)) return BAD("KV profile '%s' is not a JSON object", path);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (fmt && (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, PROFILE_FORMAT)))
        return BAD("KV profile '%s': \"format\" must be \"%s\"", path, PROFILE_FORMAT);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
    uint32_t version = 1;
    if (ver && !json_uint(ver, 1, 1 << 20, &version))
        return BAD("KV profile '%s': \"version\" must be a positive integer", path);
    if (version > PROFILE_VERSION)
        return BAD("KV profile '%s': version %u is newer than this library reads (%d)", path, version, PROFILE_VERSION);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(j, "n_layer");
    if (!cJSON_IsArray(layers))
        return BAD("KV profile '%s': \"layers\" must be an array of {\"k\": bits, \"v\": bits}", path);
    int n = cJSON_GetArraySize(layers);
    if (n < 1 || n > VKM_KV_MAX_LAYERS)
        return BAD("KV profile '%s': \"layers\" has %d entries (1 .. %d)", path, n, VKM_KV_MAX_LAYERS);
    if (nl && (!cJSON_IsNumber(nl) || nl->valuedouble != n))
        return BAD("KV profile '%s': n_layer is %g but \"layers\" has %d entries", path,
                   cJSON_IsNumber(nl) ? nl->valuedouble : -1.0, n);
    c->n_layer = (uint32_t)n;
    int i = 0;
    for (const cJSON *L = layers->child; L; L = L->next, i++) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(L, "k"), *v = cJSON_GetObjectItemCaseSensitive(L, "v");
        if (!cJSON_IsNumber(k) || !cJSON_IsNumber(v))
            return BAD("KV profile '%s': layer %d needs numeric \"k\" and \"v\" bits", path, i);
        if (!json_width_ok(k->valuedouble))
            return BAD("KV profile '%s': layer %d: key width %g is not one of 2, 3, 4, 8, 16", path, i, k->valuedouble);
        if (!json_width_ok(v->valuedouble))
            return BAD("KV profile '%s': layer %d: value width %g is not one of 2, 3, 4, 8, 16", path, i,
                       v->valuedouble);
        c->k_bits[i] = (uint8_t)k->valuedouble;
        c->v_bits[i] = (uint8_t)v->valuedouble;
    }
    const char *keys[3] = { "group", "window", "sinks" };
    uint32_t *dst[3] = { &c->group, &c->window, &c->sinks };
    for (int g = 0; g < 3; g++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[g]);
        if (x && !json_uint(x, 0, 1 << 24, dst[g]))
            return BAD("KV profile '%s': \"%s\" must be a non-negative integer", path, keys[g]);
    }
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "policy");
    if (pol) {
        int id = cJSON_IsString(pol) ? vkm_kv_policy_by_name(pol->valuestring) : -1;
        if (id < 0) return BAD("KV profile '%s': \"policy\" must be \"layer\", \"mikv\" or \"mixkvq\"", path);
        c->policy = (vkmix_kv_policy)id;
    }
    const cJSON *mk = cJSON_GetObjectItemCaseSensitive(j, "mikv");
    if (mk) {
        const field f[3] = { { "important_fraction", 0, &c->mikv.important_fraction },
                             { "high_bits", 1, &c->mikv.high_bits },
                             { "outlier_balancer", 2, &c->mikv.outlier_balancer } };
        vkmix_error e = read_fields(path, "mikv", mk, f, 3, err, errlen);
        if (e != VKMIX_OK) return e;
    }
    const cJSON *mq = cJSON_GetObjectItemCaseSensitive(j, "mixkvq");
    if (mq) {
        const field f[5] = { { "target_key_bits", 0, &c->mixkvq.target_key_bits },
                             { "threshold_fp16", 0, &c->mixkvq.threshold_fp16 },
                             { "threshold_4bit", 0, &c->mixkvq.threshold_4bit },
                             { "block", 1, &c->mixkvq.block },
                             { "recent_queries", 1, &c->mixkvq.recent_queries } };
        vkmix_error e = read_fields(path, "mixkvq", mq, f, 5, err, errlen);
        if (e != VKMIX_OK) return e;
    }
    const char *base = strrchr(path, '/');
    snprintf(c->name, sizeof c->name, "%.63s", base ? base + 1 : path);
    return VKMIX_OK;
}

vkmix_error vkm_kv_profile_read(const char *path, vkmix_kv_config *c, char *err, size_t errlen)
{
    vkmix_kv_config_default(c);
    char *text = read_text(path, 1 << 20);
    if (!text)
        return fail(err, errlen, VKMIX_ERROR_IO, "cannot read KV profile '%s' (missing, unreadable or over 1 MiB)", path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return BAD("KV profile '%s' is not valid JSON", path);
    vkmix_error e = profile_parse(path, j, c, err, errlen);
    cJSON_Delete(j);
    return e;
}

vkmix_error vkmix_kv_profile_read(const char *path, vkmix_kv_config *c, char *err, size_t errlen)
{
    if (!path || !c) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "KV profile: NULL path or config");
    vkmix_error e = vkm_kv_profile_read(path, c, err, errlen);
    return e == VKMIX_OK ? vkm_kv_config_check(c, NULL, 0, err, errlen) : e;
}

vkmix_error vkmix_kv_profile_write(const vkmix_kv_config *c, const char *path, const char *provenance_json, char *err,
                                   size_t errlen)
{
    if (!c || !path) return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "profile: a configuration and a path are required");
    if (!c->n_layer)
        return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                    "profile: the configuration is uniform (n_layer 0); a profile lists every layer");
    vkmix_error e = vkm_kv_config_check(c, NULL, 0, err, errlen);
    if (e != VKMIX_OK) return e;
    cJSON *prov = NULL;
    if (provenance_json) {
        prov = cJSON_Parse(provenance_json);
        if (!cJSON_IsObject(prov)) {
            cJSON_Delete(prov);
            return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "profile: provenance is not a JSON object");
        }
    }
    cJSON *root = cJSON_CreateObject(), *layers = cJSON_CreateArray();
    if (!root || !layers) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (e == VKMIX_OK) {
        cJSON_AddStringToObject(root, "format", PROFILE_FORMAT);
        cJSON_AddNumberToObject(root, "version", PROFILE_VERSION);
        cJSON_AddStringToObject(root, "policy", vkm_kv_policy_name(c->policy));
        cJSON_AddNumberToObject(root, "n_layer", c->n_layer);
        if (c->group) cJSON_AddNumberToObject(root, "group", c->group);
        if (c->window) cJSON_AddNumberToObject(root, "window", c->window);
        if (c->sinks) cJSON_AddNumberToObject(root, "sinks", c->sinks);
        for (uint32_t l = 0; l < c->n_layer && e == VKMIX_OK; l++) {
            cJSON *o = cJSON_CreateObject();
            if (!o) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
            else {
                cJSON_AddNumberToObject(o, "k", c->k_bits[l]);
                cJSON_AddNumberToObject(o, "v", c->v_bits[l]);
                cJSON_AddItemToArray(layers, o);
            }
        }
        cJSON_AddItemToObject(root, "layers", layers);
        layers = NULL;
        if (c->policy == VKMIX_KV_POLICY_MIKV) {
            cJSON *m = cJSON_AddObjectToObject(root, "mikv");
            cJSON_AddNumberToObject(m, "important_fraction", c->mikv.important_fraction);
            cJSON_AddNumberToObject(m, "high_bits", c->mikv.high_bits);
            cJSON_AddBoolToObject(m, "outlier_balancer", c->mikv.outlier_balancer);
        } else if (c->policy == VKMIX_KV_POLICY_MIXKVQ) {
            cJSON *m = cJSON_AddObjectToObject(root, "mixkvq");
            cJSON_AddNumberToObject(m, "target_key_bits", c->mixkvq.target_key_bits);
            cJSON_AddNumberToObject(m, "threshold_fp16", c->mixkvq.threshold_fp16);
            cJSON_AddNumberToObject(m, "threshold_4bit", c->mixkvq.threshold_4bit);
            cJSON_AddNumberToObject(m, "block", c->mixkvq.block);
            cJSON_AddNumberToObject(m, "recent_queries", c->mixkvq.recent_queries);
        }
        if (prov) {
            cJSON_AddItemToObject(root, "provenance", prov);
            prov = NULL;
        }
    }
    char *text = e == VKMIX_OK ? cJSON_Print(root) : NULL;
    if (e == VKMIX_OK && !text) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    if (e == VKMIX_OK) {
        FILE *f = fopen(path, "wb");
        int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        if (f && fclose(f)) ok = 0;
        if (!ok) e = fail(err, errlen, VKMIX_ERROR_IO, "profile: cannot write '%s'", path);
    }
    free(text);
    cJSON_Delete(layers);
    cJSON_Delete(prov);
    cJSON_Delete(root);
    return e;
}

/* ------------------------------------------------------------------ a session's configuration */

static vkmix_error resolve(const vkmix_kv_config *pub, const vkm_hparams *hp, uint32_t n_ctx, vkm_kv_config *c,
                           int need_device, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    vkmix_error e = need_device ? vkm_kv_config_check(pub, hp, n_ctx, err, errlen)
                                : check_fields(pub, hp, n_ctx, err, errlen);
    if (e != VKMIX_OK) return e;
    c->policy = pub->policy;
    snprintf(c->name, sizeof c->name, "%s", pub->name);
    c->n_layer = hp->n_layer;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        c->k_bits[l] = pub->k_bits[l];
        c->v_bits[l] = pub->v_bits[l];
        c->quantized |= c->k_bits[l] < 16 || c->v_bits[l] < 16;
    }
    c->group = pub->group ? pub->group : 32;
    c->window = pub->window ? pub->window : 128;
    c->sinks = c->quantized ? pub->sinks : 0;
    c->v_group = (uint32_t)kvl_v_group(c->group, hp->head_dim);
    c->ring = (uint32_t)kvl_ring_slots(c->window, c->group);
    c->mikv = pub->mikv;
    c->mixkvq = pub->mixkvq;
    return VKMIX_OK;
}

vkmix_error vkm_kv_config_resolve(const vkmix_kv_config *pub, const vkm_hparams *hp, uint32_t n_ctx, vkm_kv_config *c,
                                  char *err, size_t errlen)
{
    return resolve(pub, hp, n_ctx, c, 1, err, errlen);
}

vkmix_error vkm_kv_config_resolve_sim(const vkmix_kv_config *pub, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *c, char *err, size_t errlen)
{
    return resolve(pub, hp, n_ctx, c, 0, err, errlen);
}

vkmix_error vkm_kv_config_from_params(const vkmix_session_params *p, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *c, char *err, size_t errlen)
{
    vkmix_kv_config pub;
    vkmix_error e;
    if (p && p->kv_config) {
        if (p->kv || p->kv_profile) {
            memset(c, 0, sizeof *c);
            return fail(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                        "KV configuration: give kv_config, or kv / kv_profile, not both");
        }
        pub = *p->kv_config;
    } else if (p && p->kv_profile) {
        e = vkm_kv_profile_read(p->kv_profile, &pub, err, errlen);
        if (e != VKMIX_OK) return e;
    } else {
        e = vkm_kv_config_parse(p && p->kv && *p->kv ? p->kv : "f16", &pub, err, errlen);
        if (e != VKMIX_OK) return e;
    }
    if (p && p->kv_group) pub.group = p->kv_group;
    if (p && p->kv_window) pub.window = p->kv_window;
    if (p && p->kv_sinks) pub.sinks = p->kv_sinks;
    return vkm_kv_config_resolve(&pub, hp, n_ctx, c, err, errlen);
}

/* ------------------------------------------------------------------ accounting */

uint32_t vkm_kv_blocks(const vkm_kv_config *c, uint32_t n_ctx)
{
    return (uint32_t)kvl_blocks(n_ctx, c->sinks, c->group);
}

uint32_t vkm_kv_blocks_at(const vkm_kv_config *c, uint32_t n)
{
    return (uint32_t)kvl_blocks_at(n, c->sinks, c->window, c->group);
}

void vkm_kv_layer_sizes(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens, uint32_t l,
                        int is_v, vkm_kv_sizes *o)
{
    memset(o, 0, sizeof *o);
    const vkm_kv_policy_ops *ops = vkm_kv_policy(c->policy);
    if (ops) ops->sizes(c, hp, n_ctx, n_tokens, l, is_v, o);
}

void vkm_kv_memory(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t n_tokens,
                   vkmix_kv_memory *out)
{
    memset(out, 0, sizeof *out);
    const uint64_t H = hp->n_head_kv, D = hp->head_dim;
    uint32_t n = n_tokens ? n_tokens : n_ctx;
    double bits[2] = { 0, 0 };
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (int v = 0; v < 2; v++) {
            vkm_kv_sizes s;
            vkm_kv_layer_sizes(c, hp, n_ctx, n_tokens, l, v, &s);
            uint64_t fp16 = s.ring_bytes + s.sink_bytes + s.fp16_bytes;
            out->code_bytes += s.code_bytes;
            out->meta_bytes += s.meta_bytes;
            out->fp16_bytes += fp16;
            out->aux_bytes += s.aux_bytes;
            bits[v] += 8.0 * (double)(s.code_bytes + s.meta_bytes + fp16 + s.aux_bytes);
        }
    out->total_bytes = out->code_bytes + out->meta_bytes + out->fp16_bytes + out->aux_bytes;
    double elems = (double)hp->n_layer * H * n * D;
    out->k_bits = bits[0] / elems;
    out->v_bits = bits[1] / elems;
}
