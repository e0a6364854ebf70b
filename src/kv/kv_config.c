/* KV cache configuration and memory accounting. */
#include "kv/kv_config.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kvquant.h"

static int width_ok(int b) { return b == 2 || b == 3 || b == 4 || b == 8 || b == 16; }

static vkmix_error fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static vkmix_error fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return VKMIX_ERROR_BAD_PROFILE;
}

static char *read_file(const char *path, size_t max)
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

static vkmix_error parse_profile(const char *path, const vkm_hparams *hp, vkm_kv_config *c, char *err, size_t errlen)
{
    char *text = read_file(path, 1 << 20);
    if (!text) {
        snprintf(err, errlen, "cannot read KV profile '%s' (missing, unreadable or over 1 MiB)", path);
        return VKMIX_ERROR_IO;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        snprintf(err, errlen, "KV profile '%s' is not valid JSON", path);
        return VKMIX_ERROR_BAD_PROFILE;
    }
    vkmix_error e = VKMIX_OK;
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    const cJSON *nl = cJSON_GetObjectItemCaseSensitive(j, "n_layer");
    if (!cJSON_IsArray(layers)) {
        e = fail(err, errlen, "KV profile '%s': \"layers\" must be an array of {\"k\": bits, \"v\": bits}", path);
        goto done;
    }
    int n = cJSON_GetArraySize(layers);
    if (cJSON_IsNumber(nl) && nl->valueint != n) {
        e = fail(err, errlen, "KV profile '%s': n_layer is %d but \"layers\" has %d entries", path, nl->valueint, n);
        goto done;
    }
    if ((uint32_t)n != hp->n_layer) {
        e = fail(err, errlen, "KV profile '%s' has %d layers but the model has %u", path, n, hp->n_layer);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *L = cJSON_GetArrayItem(layers, i);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(L, "k"), *v = cJSON_GetObjectItemCaseSensitive(L, "v");
        if (!cJSON_IsNumber(k) || !cJSON_IsNumber(v)) {
            e = fail(err, errlen, "KV profile '%s': layer %d needs numeric \"k\" and \"v\" bits", path, i);
            goto done;
        }
        if (!width_ok(k->valueint) || k->valuedouble != k->valueint) {
            e = fail(err, errlen, "KV profile '%s': layer %d: key width %g is not one of 2, 3, 4, 8, 16", path, i, k->valuedouble);
            goto done;
        }
        if (!width_ok(v->valueint) || v->valuedouble != v->valueint) {
            e = fail(err, errlen, "KV profile '%s': layer %d: value width %g is not one of 2, 3, 4, 8, 16", path, i, v->valuedouble);
            goto done;
        }
        c->k_bits[i] = (uint8_t)k->valueint;
        c->v_bits[i] = (uint8_t)v->valueint;
    }
    const char *keys[3] = { "group", "window", "sinks" };
    uint32_t *dst[3] = { &c->group, &c->window, &c->sinks };
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[i]);
        if (!x) continue;
        if (!cJSON_IsNumber(x) || x->valueint < 0 || x->valuedouble != x->valueint) {
            e = fail(err, errlen, "KV profile '%s': \"%s\" must be a non-negative integer", path, keys[i]);
            goto done;
        }
        if (!*dst[i]) *dst[i] = (uint32_t)x->valueint; /* explicit params win over the profile */
    }
    const cJSON *prov = cJSON_GetObjectItemCaseSensitive(j, "provenance");
    if (cJSON_IsString(prov)) snprintf(c->provenance, sizeof c->provenance, "%s", prov->valuestring);
    else if (prov && cJSON_IsObject(prov)) {
        char *s = cJSON_PrintUnformatted(prov);
        if (s) snprintf(c->provenance, sizeof c->provenance, "%s", s);
        free(s);
    }
    const char *base = strrchr(path, '/');
    snprintf(c->name, sizeof c->name, "%s", base ? base + 1 : path);
done:
    cJSON_Delete(j);
    return e;
}

vkmix_error vkm_kv_config_from_params(const vkmix_session_params *p, const vkm_hparams *hp, uint32_t n_ctx,
                                      vkm_kv_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->n_layer = hp->n_layer;
    if (hp->n_layer > VKM_KV_MAX_LAYERS) {
        snprintf(err, errlen, "models with more than %d layers are not supported", VKM_KV_MAX_LAYERS);
        return VKMIX_ERROR_BAD_PROFILE;
    }
    c->group = p ? p->kv_group : 0;
    c->window = p ? p->kv_window : 0;
    c->sinks = p ? p->kv_sinks : 0;
    const char *spec = p ? p->kv : NULL;
    if (p && p->kv_profile) {
        vkmix_error e = parse_profile(p->kv_profile, hp, c, err, errlen);
        if (e != VKMIX_OK) return e;
    } else if (!spec || !*spec || !strcmp(spec, "f16")) {
        for (uint32_t l = 0; l < hp->n_layer; l++) c->k_bits[l] = c->v_bits[l] = 16;
        snprintf(c->name, sizeof c->name, "f16");
    } else {
        int kb = 0, vb = 0, used = 0;
        if (sscanf(spec, "k%dv%d%n", &kb, &vb, &used) != 2 || spec[used]) {
            snprintf(err, errlen, "KV configuration '%.40s' is not f16 or kXvY (e.g. k4v2)", spec);
            return VKMIX_ERROR_BAD_PROFILE;
        }
        if (!width_ok(kb) || !width_ok(vb)) {
            snprintf(err, errlen, "KV configuration '%.40s': widths must be 2, 3, 4, 8 or 16", spec);
            return VKMIX_ERROR_BAD_PROFILE;
        }
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            c->k_bits[l] = (uint8_t)kb;
            c->v_bits[l] = (uint8_t)vb;
        }
        snprintf(c->name, sizeof c->name, "k%dv%d", kb, vb);
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) c->quantized |= c->k_bits[l] < 16 || c->v_bits[l] < 16;
    if (!c->group) c->group = 32;
    if (!c->window) c->window = 128;
    if (c->group != 32 && c->group != 64 && c->group != 128) {
        snprintf(err, errlen, "KV group %u must be 32, 64 or 128", c->group);
        return VKMIX_ERROR_BAD_PROFILE;
    }
    if (c->window < c->group) {
        snprintf(err, errlen, "KV window %u must be at least the group (%u)", c->window, c->group);
        return VKMIX_ERROR_BAD_PROFILE;
    }
    if (c->sinks > 4096 || (n_ctx && c->sinks >= n_ctx)) {
        snprintf(err, errlen, "KV sinks %u must be smaller than the context (%u)", c->sinks, n_ctx);
        return VKMIX_ERROR_BAD_PROFILE;
    }
    c->v_group = hp->head_dim % c->group == 0 ? c->group : hp->head_dim;
    c->ring = (c->window + c->group + VKM_KV_CHUNK + c->group - 1) / c->group * c->group;
    if (!c->quantized) c->sinks = 0;
    return VKMIX_OK;
}

uint32_t vkm_kv_blocks(const vkm_kv_config *c, uint32_t n_ctx)
{
    if (n_ctx <= c->sinks) return 0;
    return (n_ctx - c->sinks + c->group - 1) / c->group;
}

uint32_t vkm_kv_blocks_at(const vkm_kv_config *c, uint32_t n)
{
    if (n < c->sinks + c->window + c->group) return 0;
    /* quantize once the FP16 part reaches R + G tokens: keep at least R newest in FP16 */
    return (n - c->sinks - c->window) / c->group;
}

void vkm_kv_layer_sizes(const vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t l, int is_v,
                        vkm_kv_sizes *o)
{
    memset(o, 0, sizeof *o);
    const uint64_t H = hp->n_head_kv, D = hp->head_dim;
    uint32_t b = is_v ? c->v_bits[l] : c->k_bits[l];
    if (b >= 16) {
        o->fp16_bytes = H * n_ctx * D * 2;
        return;
    }
    uint64_t nb = vkm_kv_blocks(c, n_ctx), G = c->group;
    if (!is_v) {
        o->code_bytes = H * nb * G * D * b / 8;
        o->meta_bytes = H * nb * D * 4;
    } else {
        o->code_bytes = H * nb * G * vkm_kvq_v_words_per_token(b, (uint32_t)D) * 4;
        o->meta_bytes = H * nb * G * (D / c->v_group) * 4;
    }
    o->ring_bytes = H * c->ring * D * 2;
    o->sink_bytes = H * c->sinks * D * 2;
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
            uint32_t b = v ? c->v_bits[l] : c->k_bits[l];
            uint64_t code, meta, fp16;
            if (!n_tokens) {
                vkm_kv_layer_sizes(c, hp, n_ctx, l, v, &s);
                code = s.code_bytes;
                meta = s.meta_bytes;
                fp16 = s.ring_bytes + s.sink_bytes + s.fp16_bytes;
            } else if (b >= 16) {
                code = meta = 0;
                fp16 = H * n * D * 2;
            } else {
                /* the bytes that hold data at depth n: quantized blocks, FP16 sinks and the FP16 tail */
                uint64_t nq = vkm_kv_blocks_at(c, n), G = c->group;
                uint64_t sinks = n < c->sinks ? n : c->sinks;
                uint64_t tail = n - sinks - nq * G;
                code = v ? H * nq * G * vkm_kvq_v_words_per_token(b, (uint32_t)D) * 4 : H * nq * G * D * b / 8;
                meta = v ? H * nq * G * (D / c->v_group) * 4 : H * nq * D * 4;
                fp16 = H * (sinks + tail) * D * 2;
            }
            out->code_bytes += code;
            out->meta_bytes += meta;
            out->fp16_bytes += fp16;
            bits[v] += 8.0 * (double)(code + meta + fp16);
        }
    out->total_bytes = out->code_bytes + out->meta_bytes + out->fp16_bytes;
    double elems = (double)hp->n_layer * H * n * D;
    out->k_bits = bits[0] / elems;
    out->v_bits = bits[1] / elems;
}
