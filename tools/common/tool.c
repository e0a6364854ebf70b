/*
 * Helpers shared by vkmix-calibrate and vkmix-eval. Every tools/NAME.c is its own
 * program, so this file is compiled into each of them with
 *   #include "common/tool.c"
 * (static functions only; public header only).
 */
#ifndef VKMIX_TOOL_COMMON_C
#define VKMIX_TOOL_COMMON_C

#define _POSIX_C_SOURCE 200809L /* clock_gettime, isatty, fileno */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vkmix.h"

/* helpers a tool may leave unused */
#ifndef TOOL_FN
#define TOOL_FN __attribute__((unused))
#endif

static const char *tool_name = "vkmix";

static TOOL_FN void tool_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static TOOL_FN void tool_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static TOOL_FN double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ numbers and lists */

static TOOL_FN long tool_parse_long(const char *flag, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < lo || v > hi)
        tool_die("%s wants an integer in [%ld, %ld], got '%s'", flag, lo, hi, s ? s : "(nothing)");
    return v;
}

static TOOL_FN double tool_parse_double(const char *flag, const char *s, double lo, double hi)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !(v >= lo && v <= hi))
        tool_die("%s wants a number in [%g, %g], got '%s'", flag, lo, hi, s ? s : "(nothing)");
    return v;
}

/* The value after a flag: argv[++*i], or die. */
static TOOL_FN const char *tool_arg(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) tool_die("%s needs a value", argv[*i]);
    return argv[++*i];
}

/* Splits a comma list into at most cap malloc'ed strings; returns the count. */
static TOOL_FN int tool_split(const char *s, char **out, int cap)
{
    int n = 0;
    while (s && *s && n < cap) {
        const char *c = strchr(s, ',');
        size_t len = c ? (size_t)(c - s) : strlen(s);
        if (len) {
            out[n] = malloc(len + 1);
            if (!out[n]) tool_die("out of memory");
            memcpy(out[n], s, len);
            out[n][len] = 0;
            n++;
        }
        s = c ? c + 1 : s + len;
    }
    return n;
}

/* ------------------------------------------------------------------ random numbers (splitmix64) */

typedef struct { uint64_t s; } tool_rng;

static TOOL_FN uint64_t tool_rng_next(tool_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0 (rejection: no modulo bias). */
static TOOL_FN uint64_t tool_rng_below(tool_rng *r, uint64_t n)
{
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = tool_rng_next(r);
    while (x >= lim);
    return x % n;
}

/* ------------------------------------------------------------------ files and text */

/* The whole file, NUL-terminated; NULL with errno set on failure. */
static TOOL_FN char *tool_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len_out) *len_out = n;
    return buf;
}

/* Tokens of a text (no BOS); malloc'ed. */
static TOOL_FN int32_t *tool_tokenize(const vkmix_model *m, const char *text, size_t len, int add_bos, size_t *n_out)
{
    size_t need = 0;
    vkmix_error e = vkmix_tokenize(m, text, len, add_bos, 0, NULL, 0, &need);
    if (e != VKMIX_OK && e != VKMIX_ERROR_INVALID_ARGUMENT) tool_die("tokenize: %s", vkmix_strerror(e));
    int32_t *t = malloc((need + 1) * sizeof *t);
    if (!t) tool_die("out of memory");
    e = vkmix_tokenize(m, text, len, add_bos, 0, t, need + 1, n_out);
    if (e != VKMIX_OK) tool_die("tokenize: %s", vkmix_strerror(e));
    return t;
}

/* Tokens of a text file (BOS first when add_bos); malloc'ed; dies when it cannot be read. */
static TOOL_FN int32_t *tool_tokenize_file(const vkmix_model *m, const char *path, int add_bos, size_t *n_out)
{
    size_t len = 0;
    char *text = tool_read_file(path, &len);
    if (!text) tool_die("cannot read '%s'", path);
    int32_t *t = tool_tokenize(m, text, len, add_bos, n_out);
    free(text);
    return t;
}

/* 1 when the vocabulary asks for BOS at the start of a text. */
static TOOL_FN int tool_wants_bos(const vkmix_model *m)
{
    int32_t t[4];
    size_t n = 0;
    return vkmix_tokenize(m, "", 0, 1, 0, t, 4, &n) == VKMIX_OK && n == 1;
}

static TOOL_FN const char *tool_basename(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

/* ------------------------------------------------------------------ context and model */

static void tool_log(vkmix_log_level level, const char *message, void *user)
{
    (void)user;
    static const char *names[] = { "error", "warning", "info", "debug" };
    fprintf(stderr, "vkmix: %s: %s\n", (unsigned)level < 4 ? names[level] : "log", message);
}

static TOOL_FN vkmix_context *tool_context(int device)
{
    char err[1024] = "";
    vkmix_context_params p;
    vkmix_context_default_params(&p);
    /* the library's messages on stderr: warnings and errors, or more with VKMIX_LOG=info|debug */
    const char *lv = getenv("VKMIX_LOG");
    p.log = tool_log;
    p.log_level = lv && !strcmp(lv, "debug") ? VKMIX_LOG_DEBUG : lv && !strcmp(lv, "info") ? VKMIX_LOG_INFO : VKMIX_LOG_WARN;
    p.device_index = device;
    p.error_buf = err;
    p.error_buf_size = sizeof err;
    vkmix_context *ctx = NULL;
    vkmix_error e = vkmix_context_create(&p, &ctx);
    if (e != VKMIX_OK) tool_die("cannot create a Vulkan context: %s: %s", vkmix_strerror(e), err);
    return ctx;
}

static TOOL_FN vkmix_model *tool_model(vkmix_context *ctx, const char *path)
{
    vkmix_model *m = NULL;
    vkmix_error e = vkmix_model_load(ctx, path, NULL, &m);
    if (e != VKMIX_OK) tool_die("cannot load '%s': %s: %s", path, vkmix_strerror(e), vkmix_context_last_error(ctx));
    return m;
}

/* ------------------------------------------------------------------ progress on stderr */

/* A bar with an ETA on a terminal; plain lines (about every 10%) otherwise. */
typedef struct tool_progress {
    const char *what;
    double t0;
    int tty;
    int last_decile;
} tool_progress;

static TOOL_FN void tool_progress_start(tool_progress *p, const char *what)
{
    p->what = what;
    p->t0 = tool_now();
    p->tty = isatty(fileno(stderr));
    p->last_decile = -1;
}

static TOOL_FN void tool_fmt_secs(char *buf, size_t n, double s)
{
    if (s < 60) snprintf(buf, n, "%.1f s", s);
    else if (s < 3600) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static TOOL_FN void tool_progress_update(tool_progress *p, uint64_t done, uint64_t total)
{
    double el = tool_now() - p->t0, eta = done ? el * (double)(total - done) / (double)done : 0;
    char e1[32], e2[32];
    tool_fmt_secs(e1, sizeof e1, el);
    tool_fmt_secs(e2, sizeof e2, eta);
    if (p->tty) {
        const int W = 30;
        int fill = total ? (int)((double)W * (double)done / (double)total) : W;
        char bar[64];
        for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
        bar[W] = 0;
        fprintf(stderr, "\r%-12s [%s] %llu/%llu  %s elapsed, ETA %s   ", p->what, bar, (unsigned long long)done,
                (unsigned long long)total, e1, done ? e2 : "?");
        if (done == total) fputc('\n', stderr);
    } else {
        int dec = total ? (int)(10 * done / total) : 10;
        if (dec == p->last_decile && done != total) return;
        p->last_decile = dec;
        fprintf(stderr, "%s: %llu/%llu, %s elapsed, ETA %s\n", p->what, (unsigned long long)done,
                (unsigned long long)total, e1, done ? e2 : "?");
    }
    fflush(stderr);
}

/* ------------------------------------------------------------------ SVG */

static TOOL_FN void svg_text_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* <text> at (x, y) with anchor start|middle|end, size px and optional extra attributes. */
static TOOL_FN void svg_text(FILE *f, double x, double y, const char *anchor, double size, const char *extra, const char *fmt,
                     ...) __attribute__((format(printf, 7, 8)));
static TOOL_FN void svg_text(FILE *f, double x, double y, const char *anchor, double size, const char *extra, const char *fmt,
                     ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%.1f\"%s%s>", x, y, anchor, size,
            extra ? " " : "", extra ? extra : "");
    svg_text_escaped(f, buf);
    fputs("</text>\n", f);
}

static TOOL_FN void svg_begin(FILE *f, int w, int h)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            w, h, w, h, w, h);
}

/* "Nice" tick step for a range: 1, 2 or 5 times a power of ten, about n ticks. */
static TOOL_FN double svg_nice_step(double range, int n)
{
    if (!(range > 0)) return 1;
    double raw = range / n, p = pow(10, floor(log10(raw))), r = raw / p;
    return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * p;
}

/* A tick label: few digits, exponent form for very small or large numbers. */
static TOOL_FN void svg_fmt_num(char *buf, size_t n, double v)
{
    double a = fabs(v);
    if (v == 0) snprintf(buf, n, "0");
    else if (a >= 1e5 || a < 1e-3) snprintf(buf, n, "%.0e", v);
    else snprintf(buf, n, "%g", v);
}

#endif
