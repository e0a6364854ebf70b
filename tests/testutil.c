#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen, strdup */
#include "testutil.h"
#include "gguf/gguf.h"
#include <math.h>
#include <string.h>
#include <unistd.h>

int tu_failures = 0;

void tu_rng_seed(tu_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ull + 1; }
uint32_t tu_rng_u32(tu_rng *r)
{
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 0x2545F4914F6CDD1Dull) >> 32);
}
float tu_rng_uniform(tu_rng *r) { return (float)(tu_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }
float tu_rng_normal(tu_rng *r)
{
    float u1 = tu_rng_uniform(r) + 1e-7f, u2 = tu_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

char *tu_shared_path(const char *rel)
{
    const char *dir = getenv("VKMIX_SHARED_DIR");
    if (!dir) dir = "../shared";
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/%s", dir, rel);
    if (access(p, R_OK) != 0) { free(p); return NULL; }
    return p;
}

char *tu_source_path(const char *rel)
{
    const char *dir = getenv("VKMIX_SOURCE_DIR");
    if (!dir) dir = ".";
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/%s", dir, rel);
    if (access(p, R_OK) != 0) { free(p); return NULL; }
    return p;
}

int tu_write_story_text(const char *path, size_t bytes, uint64_t seed)
{
    static const char *names[] = { "Lily", "Tom", "Ben", "Sue", "Max", "Mia" };
    static const char *things[] = { "ball", "dog", "cat", "tree", "box", "cake", "toy", "bird", "park", "boat" };
    static const char *adjs[] = { "big", "little", "red", "happy", "sad", "shiny", "soft", "funny" };
    static const char *forms[] = {
        "Once upon a time, there was a %a girl named %n. ",
        "%n liked to play with a %a %t. ",
        "One day, %n saw a %t in the garden. ",
        "\"Look at the %a %t!\" said %n. ",
        "%n and %m went to the %t together. ",
        "The %t was very %a, and %n smiled. ",
        "%n wanted to share the %t with %m. ",
        "They played all day and were very %a. ",
        "Mom said, \"Be careful with the %t, %n.\" ",
        "At the end of the day, %n said thank you to %m.\n\n",
    };
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    tu_rng r;
    tu_rng_seed(&r, seed);
    size_t n = 0;
    while (n < bytes) {
        const char *fm = forms[tu_rng_u32(&r) % (sizeof forms / sizeof forms[0])];
        const char *nm = names[tu_rng_u32(&r) % 6], *other = names[tu_rng_u32(&r) % 6];
        for (const char *c = fm; *c; c++) {
            const char *w = NULL;
            if (*c == '%' && c[1]) {
                c++;
                w = *c == 'n' ? nm : *c == 'm' ? other : *c == 't' ? things[tu_rng_u32(&r) % 10] : adjs[tu_rng_u32(&r) % 8];
                n += (size_t)fprintf(f, "%s", w);
            } else {
                fputc(*c, f);
                n++;
            }
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

char *tu_stories260k(int *is_f16)
{
    char *p = tu_shared_path("models/stories260K/stories260K.gguf");
    if (is_f16) *is_f16 = 0;
    if (p) return p;
    p = tu_source_path("assets/stories260K-f16.gguf");
    if (p && is_f16) *is_f16 = 1;
    return p;
}

char *tu_tok512(int *generated)
{
    if (generated) *generated = 0;
    char *p = tu_shared_path("models/stories260K/tok512.bin");
    if (p) return p;
    char *src = tu_source_path("assets/stories260K-f16.gguf");
    if (!src) return NULL;
    char err[256];
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open(src, &g, err, sizeof err);
    free(src);
    if (e != VKMIX_OK) return NULL;
    vkm_gguf_array toks, scores;
    char path[] = "/tmp/vkmix_tok512_XXXXXX";
    int fd = -1;
    FILE *f = NULL;
    int ok = vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &toks, err, sizeof err) == VKMIX_OK &&
             vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &scores, err, sizeof err) == VKMIX_OK &&
             toks.count == scores.count && (fd = mkstemp(path)) >= 0 && (f = fdopen(fd, "wb")) != NULL;
    int32_t maxlen = 0;
    ok = ok && fwrite(&maxlen, 4, 1, f) == 1; /* rewritten below */
    for (uint64_t i = 0; ok && i < toks.count; i++) {
        const char *t;
        size_t n;
        float sc;
        char buf[512];
        int32_t w = 0;
        ok = vkm_gguf_arr_str(&toks, i, &t, &n) == VKMIX_OK && n < sizeof buf;
        memcpy(&sc, (const char *)scores.data + 4 * i, 4);
        for (size_t j = 0; ok && j < n; j++) {
            if (j + 2 < n && (unsigned char)t[j] == 0xe2 && (unsigned char)t[j + 1] == 0x96 &&
                (unsigned char)t[j + 2] == 0x81) {
                buf[w++] = ' ';
                j += 2;
            } else buf[w++] = t[j];
        }
        maxlen = w > maxlen ? w : maxlen;
        ok = ok && fwrite(&sc, 4, 1, f) == 1 && fwrite(&w, 4, 1, f) == 1 && fwrite(buf, 1, (size_t)w, f) == (size_t)w;
    }
    ok = ok && fseek(f, 0, SEEK_SET) == 0 && fwrite(&maxlen, 4, 1, f) == 1;
    if (f) ok = fclose(f) == 0 && ok;
    else if (fd >= 0) close(fd);
    vkm_gguf_close(g);
    if (!ok) {
        if (fd >= 0) remove(path);
        return NULL;
    }
    if (generated) *generated = 1;
    return strdup(path);
}

/* The library prints nothing: the tests print its messages (validation). */
static void tu_log(vkmix_log_level level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "vkmix[%s]: %s\n", level == VKMIX_LOG_ERROR ? "error" : level == VKMIX_LOG_WARN ? "warn" : "info", msg);
}

vkmix_context *tu_context(void)
{
    char err[512] = "";
    vkmix_context_params p;
    vkmix_context_default_params(&p);
    p.log = tu_log;
    p.error_buf = err;
    p.error_buf_size = sizeof err;
    vkmix_context *ctx = NULL;
    vkmix_error e = vkmix_context_create(&p, &ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, "context: %s: %s\n", vkmix_strerror(e), err);
        return NULL;
    }
    return ctx;
}

uint32_t tu_context_done(vkmix_context *ctx)
{
    uint32_t n = vkmix_context_validation_messages(ctx);
    vkmix_context_free(ctx);
    if (n) fprintf(stderr, "validation layer reported %u message(s)\n", n);
    return n;
}

int tu_finish(const char *name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

double tu_rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-30));
}
