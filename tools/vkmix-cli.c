/* vkmix: generate text or chat with a GGUF model on a Vulkan GPU.
 *
 *   vkmix -m model.gguf -p "Once upon a time" -n 128     one-shot completion
 *   vkmix -m model.gguf -i [--system TEXT]               interactive chat
 *
 * Run `vkmix --help` for every flag. Uses only the public header. */
#define _XOPEN_SOURCE 700 /* POSIX 2008 + realpath */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat_template.h"
#include "common/llama_flags.c" /* llama.cpp's flag names, shared with vkmix-eval and vkmix-calibrate */
#include "vkmix.h"

#define PROG "vkmix"

/* ------------------------------------------------------------------ options */

typedef struct {
    const char *model;
    const char *prompt;
    const char *prompt_file;
    const char *system;
    const char *kv;
    const char *kv_profile;
    const char *chat_template;
    int n_predict;          /* -1: until end of generation or a full context */
    uint32_t n_ctx, n_batch;
    uint32_t kv_group, kv_window, kv_sinks;
    int device;
    int interactive, raw, greedy, no_bos, verbose, truncate, no_echo, list_devices, ignore_eos;
    int have_seed;
    vkmix_sampler_params sp;
    tool_compat compat;     /* -ctk/-ctv, -t, -fa, -ngl */
    char kv_buf[32];        /* --kv from -ctk/-ctv */
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [options]\n"
            "\n"
            "Generates text with a llama/qwen2 GGUF model on a Vulkan GPU, or chats with it (-i).\n"
            "\n"
            "model and device:\n"
            "  -m, --model FILE        GGUF model (default: $VKMIX_MODEL, then the stories260K test model)\n"
            "  -c, --ctx-size N        context length in tokens (default: min(training context, 4096))\n"
            "  -b, --batch-size N      prompt chunk size in tokens (default 256)\n"
            "      --kv CONFIG         KV cache: f16 (default) or kXvY, uniform key/value bits, X, Y in\n"
            "                          {2, 3, 4, 8, 16} (e.g. k4v2)\n"
            TOOL_COMPAT_HELP_CACHE
            "      --kv-profile FILE   KV cache profile: a JSON file of per-layer key/value bits\n"
            TOOL_COMPAT_HELP_POLICY
            "      --kv-group G        quantization group: 32, 64 or 128 (default 32 or the profile's)\n"
            "      --kv-window R       newest tokens kept in FP16 (default 128 or the profile's)\n"
            "      --kv-sinks S        first tokens kept in FP16 forever (default 0 or the profile's)\n"
            "      --device N          Vulkan device index (default: automatic, discrete GPU first)\n"
            "      --list-devices      list Vulkan devices and exit\n"
            "  -t, --threads N         accepted: vkmix runs the model on the GPU, with no CPU worker threads\n"
            TOOL_COMPAT_HELP_FA
            "\n"
            "generation:\n"
            "  -p, --prompt TEXT       prompt (default: standard input when it is not a terminal)\n"
            "  -f, --file FILE         read the prompt from FILE\n"
            "  -n, --n-predict N       tokens to generate, -1 = until the end of generation (default -1)\n"
            "      --no-bos            do not add the BOS token to the prompt\n"
            "      --ignore-eos        never end a reply at an end-of-generation token\n"
            "      --truncate          keep the end of a prompt longer than the context instead of failing\n"
            "      --no-echo, --no-display-prompt\n"
            "                          one-shot: print only the generated text, not the prompt\n"
            "\n"
            "sampling:\n"
            "      --temp T            temperature, 0 = greedy (default 0.8)\n"
            "      --greedy            always take the most likely token (same as --temp 0)\n"
            "      --top-k N           keep the N most likely tokens, 0 = off (default 40)\n"
            "      --top-p P           nucleus sampling, 1 = off (default 0.95)\n"
            "      --min-p P           drop tokens below P * the top probability, 0 = off (default 0.05)\n"
            "      --repeat-penalty R  penalty for repeated tokens, 1 = off (default 1)\n"
            "      --repeat-last-n N   tokens the repeat penalty looks back over (default 64)\n"
            "  -s, --seed N            random seed (default: a new one each run)\n"
            "\n"
            "chat:\n"
            "  -i, --chat              interactive: type a message, get a reply; the conversation stays\n"
            "                          in the KV cache. Ctrl-C stops a reply; Ctrl-C twice at the prompt or\n"
            "                          Ctrl-D quits; Ctrl-C three times quits at once.\n"
            "                          Commands: /reset (new conversation), /quit. End a line with \\ to\n"
            "                          continue the message on the next line.\n"
            "      --chat-template NAME  %s (default: from the model;\n"
            "                          raw when the model has none)\n"
            "      --raw               raw completion: each line typed is appended to the text and continued\n"
            "      --system TEXT       system prompt\n"
            "\n"
            "  -v, --verbose           print device, model and per-reply statistics\n"
            "  -h, --help              this help\n",
            cli_template_names());
}

static void short_usage(void)
{
    fprintf(stderr, "usage: " PROG " [-m MODEL.gguf] [-p PROMPT] [-n N] [-i] [options]   (" PROG
                    " --help lists every option)\n");
}

static void bad_usage(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    short_usage();
    exit(2);
}

static long parse_long(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char range[96];
        snprintf(range, sizeof range, "an integer in [%ld, %ld]", lo, hi);
        fprintf(stderr, PROG ": %s: '%s' is not %s\n", flag, v, range);
        short_usage();
        exit(2);
    }
    return x;
}

static float parse_float(const char *flag, const char *v, float lo, float hi)
{
    char *end;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, PROG ": %s: '%s' is not a number in [%g, %g]\n", flag, v, (double)lo, (double)hi);
        short_usage();
        exit(2);
    }
    return x;
}

static void parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->device = -1;
    vkmix_sampler_default_params(&o->sp);
    for (int i = 1; i < argc; i++) {
        char flagbuf[64];
        const char *a = argv[i], *val = NULL;
        /* --flag=value */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        if (eq && (size_t)(eq - a) < sizeof flagbuf) {
            memcpy(flagbuf, a, (size_t)(eq - a));
            flagbuf[eq - a] = 0;
            val = eq + 1;
            a = flagbuf;
        }
#define IS(s) (strcmp(a, s) == 0)
#define VAL() (val ? val : (i + 1 < argc ? argv[++i] : (bad_usage("%s needs a value", a, NULL), "")))
#define NOVAL() do { if (val) bad_usage("%s takes no value", a, NULL); } while (0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            exit(0);
        } else if (IS("-m") || IS("--model")) o->model = VAL();
        else if (IS("-p") || IS("--prompt")) o->prompt = VAL();
        else if (IS("-f") || IS("--file")) o->prompt_file = VAL();
        else if (IS("-n") || IS("--n-predict")) o->n_predict = (int)parse_long(a, VAL(), -1, INT_MAX);
        else if (IS("-c") || IS("--ctx-size")) o->n_ctx = (uint32_t)parse_long(a, VAL(), 1, 1 << 24);
        else if (IS("-b") || IS("--batch-size")) o->n_batch = (uint32_t)parse_long(a, VAL(), 1, 1 << 20);
        else if (IS("--kv")) o->kv = VAL();
        else if (IS("--kv-profile")) o->kv_profile = VAL();
        else if (IS("--kv-group")) o->kv_group = (uint32_t)parse_long(a, VAL(), 1, 1 << 20);
        else if (IS("--kv-window")) o->kv_window = (uint32_t)parse_long(a, VAL(), 1, 1 << 24);
        else if (IS("--kv-sinks")) o->kv_sinks = (uint32_t)parse_long(a, VAL(), 0, 1 << 24);
        else if (IS("--device")) o->device = (int)parse_long(a, VAL(), 0, 1 << 16);
        else if (IS("--list-devices")) { NOVAL(); o->list_devices = 1; }
        else if (IS("--temp")) o->sp.temperature = parse_float(a, VAL(), 0.0f, 100.0f);
        else if (IS("--greedy")) { NOVAL(); o->greedy = 1; }
        else if (IS("--top-k")) o->sp.top_k = (int32_t)parse_long(a, VAL(), 0, INT32_MAX);
        else if (IS("--top-p")) o->sp.top_p = parse_float(a, VAL(), 0.0f, 1.0f);
        else if (IS("--min-p")) o->sp.min_p = parse_float(a, VAL(), 0.0f, 1.0f);
        else if (IS("--repeat-penalty")) o->sp.repeat_penalty = parse_float(a, VAL(), 0.01f, 100.0f);
        else if (IS("--repeat-last-n")) o->sp.repeat_last_n = (int32_t)parse_long(a, VAL(), 0, 1 << 20);
        else if (IS("--seed") || IS("-s")) {
            const char *v = VAL();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || *v == '-') bad_usage("--seed: '%s' is not a non-negative integer", v, NULL);
            o->sp.seed = (uint64_t)s;
            o->have_seed = 1;
        } else if (IS("--no-bos")) { NOVAL(); o->no_bos = 1; }
        else if (IS("--ignore-eos")) { NOVAL(); o->ignore_eos = 1; }
        else if (IS("--truncate")) { NOVAL(); o->truncate = 1; }
        else if (IS("--no-echo") || IS("--no-display-prompt")) { NOVAL(); o->no_echo = 1; }
        else if (IS("-i") || IS("--chat") || IS("--interactive")) { NOVAL(); o->interactive = 1; }
        else if (IS("--raw")) { NOVAL(); o->raw = 1; }
        else if (IS("--chat-template")) o->chat_template = VAL();
        else if (IS("--system")) o->system = VAL();
        else if (IS("-v") || IS("--verbose")) { NOVAL(); o->verbose = 1; }
        else {
            char cerr[512];
            int r = tool_compat_flag(&o->compat, a, val, argc, argv, &i, cerr, sizeof cerr);
            if (r < 0) bad_usage("%s", cerr, NULL);
            if (r == 0) bad_usage("unknown option '%s'", argv[i], NULL);
        }
#undef IS
#undef VAL
#undef NOVAL
    }
    if (o->greedy) o->sp.temperature = 0.0f;
    if (o->prompt && o->prompt_file) bad_usage("-p and -f cannot be used together", NULL, NULL);
    if (o->kv && o->kv_profile) bad_usage("--kv and --kv-profile cannot be used together", NULL, NULL);
    if ((o->compat.ctk || o->compat.ctv) && (o->kv || o->kv_profile))
        bad_usage("-ctk/-ctv and %s cannot be used together", o->kv ? "--kv" : "--kv-profile", NULL);
    {
        char cerr[512];
        if (tool_compat_kv(&o->compat, o->kv_buf, sizeof o->kv_buf, cerr, sizeof cerr) < 0) bad_usage("%s", cerr, NULL);
        if (o->kv_buf[0]) o->kv = o->kv_buf;
    }
    if (o->compat.kv_policy) {
        const char *base = o->kv_profile ? o->kv_profile : o->kv;
        if (!base || !strcmp(base, "f16"))
            bad_usage("--kv-policy %s needs a quantized cache (--kv, --kv-profile or -ctk/-ctv)", o->compat.kv_policy, NULL);
        char *kv = tool_kv_with_policy(o->compat.kv_policy, base); /* lives until exit, as argv does */
        if (!kv) bad_usage("out of memory", NULL, NULL);
        o->kv = kv;
        o->kv_profile = NULL;
    }
    if (o->compat.threads)
        fprintf(stderr, PROG ": note: -t %ld is accepted and unused: vkmix runs the model on the GPU, with no CPU "
                        "worker threads\n", o->compat.threads);
    if (o->compat.fa_off)
        fprintf(stderr, PROG ": note: -fa off is ignored: vkmix's attention is always fused\n");
    if (o->raw && o->chat_template) bad_usage("--raw and --chat-template cannot be used together", NULL, NULL);
    if (o->chat_template && cli_template_from_name(o->chat_template) < 0)
        bad_usage("unknown chat template '%s' (known: %s)", o->chat_template, cli_template_names());
}

/* ------------------------------------------------------------------ helpers */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int readable(const char *path)
{
    return path && access(path, R_OK) == 0;
}

/* Reads a whole stream into a NUL-terminated malloc'ed string. */
static char *read_stream(FILE *f)
{
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    if (!s) return NULL;
    for (;;) {
        if (cap - n < 2) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
            cap *= 2;
        }
        size_t k = fread(s + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

/* The default model: $VKMIX_MODEL, then ../shared/models/stories260K/stories260K.gguf
 * next to the repository (looked for relative to the executable and the working
 * directory), then assets/stories260K-f16.gguf of the repository. */
static char *default_model(void)
{
    const char *env = getenv("VKMIX_MODEL");
    if (env && *env) return strdup(env);
    char exe_dir[4096] = "";
    ssize_t k = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (k > 0) {
        exe_dir[k] = 0;
        char *slash = strrchr(exe_dir, '/');
        if (slash) *slash = 0;
    }
    /* places the repository root may be: build/ (exe_dir/..), the exe dir, build/sub/, the cwd */
    const char *roots[6];
    char r0[4200], r1[4200], r2[4200];
    int nr = 0;
    if (exe_dir[0]) {
        snprintf(r0, sizeof r0, "%s/..", exe_dir);
        snprintf(r1, sizeof r1, "%s", exe_dir);
        snprintf(r2, sizeof r2, "%s/../..", exe_dir);
        roots[nr++] = r0;
        roots[nr++] = r1;
        roots[nr++] = r2;
    }
    roots[nr++] = ".";
    roots[nr++] = "..";
    static const char *const rel[] = { "../shared/models/stories260K/stories260K.gguf", "assets/stories260K-f16.gguf" };
    for (size_t j = 0; j < sizeof rel / sizeof rel[0]; j++)
        for (int i = 0; i < nr; i++) {
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", roots[i], rel[j]);
            if (readable(path)) {
                char *real = realpath(path, NULL);
                return real ? real : strdup(path);
            }
        }
    return NULL;
}

/* ------------------------------------------------------------------ Ctrl-C */

static volatile sig_atomic_t g_interrupt = 0;

static void on_sigint(int sig)
{
    (void)sig;
    /* The main loop consumes the flag between tokens and at the prompt. If it
     * does not (a long prompt is being evaluated) and the user insists, leave. */
    if (g_interrupt >= 2) _exit(130);
    g_interrupt++;
}

static void install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read of the chat prompt returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

/* ------------------------------------------------------------------ progress bar */

static void on_progress(float fraction, void *user)
{
    int *last = user;
    int pct = (int)(fraction * 100.0f + 0.5f);
    if (pct < 0) pct = 0;
    if (pct > 100) pct = 100;
    if (pct == *last) return;
    *last = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\rloading [%s] %3d%%", bar, pct);
    fflush(stderr);
}

/* ------------------------------------------------------------------ the app */

typedef struct {
    opts o;
    vkmix_context *ctx;
    vkmix_model *model;
    vkmix_session *sess;
    vkmix_sampler *smp;
    vkmix_detokenizer *detok;
    vkmix_model_info info;
    float *logits;          /* [n_vocab] */
    int32_t *eog;           /* --ignore-eos: the end-of-generation tokens, never sampled */
    size_t n_eog;
    int32_t pending;        /* a token printed but not yet evaluated (-1: none) */
    /* totals */
    uint64_t n_prompt, n_gen;
    double t_prompt, t_gen;
} app;

static void app_free(app *a)
{
    vkmix_detokenizer_free(a->detok);
    vkmix_sampler_free(a->smp);
    vkmix_session_free(a->sess);
    vkmix_model_free(a->model);
    vkmix_context_free(a->ctx);
    free(a->logits);
    free(a->eog);
    memset(a, 0, sizeof *a);
}

/* Prints a library error with its detail. */
static void lib_error(const app *a, const char *what, vkmix_error e)
{
    const char *detail = a->ctx ? vkmix_context_last_error(a->ctx) : "";
    fprintf(stderr, PROG ": %s: %s%s%s\n", what, vkmix_strerror(e), *detail ? ": " : "", detail);
}

static int list_devices(void)
{
    char err[512] = "";
    uint32_t n = 0;
    vkmix_error e = vkmix_list_devices(NULL, 0, &n, err, sizeof err);
    vkmix_device_info *d = NULL;
    if (e == VKMIX_OK && n > 0) {
        d = calloc(n, sizeof *d);
        if (!d) return 1;
        e = vkmix_list_devices(d, n, &n, err, sizeof err);
    }
    if (e != VKMIX_OK) {
        fprintf(stderr, PROG ": listing devices: %s%s%s\n", vkmix_strerror(e), *err ? ": " : "", err);
        free(d);
        return 1;
    }
    if (n == 0) printf("no Vulkan devices\n");
    for (uint32_t i = 0; i < n; i++) {
        static const char *const types[] = { "other", "integrated", "discrete", "virtual", "cpu" };
        unsigned t = (unsigned)d[i].type;
        printf("%u: %s (%s, Vulkan %u.%u, %llu MiB)%s\n", i, d[i].name, t < 5 ? types[t] : "other",
               (d[i].api_version >> 22) & 0x7Fu, (d[i].api_version >> 12) & 0x3FFu,
               (unsigned long long)(d[i].device_local_bytes >> 20), d[i].usable ? "" : " [not usable by vkmix]");
    }
    free(d);
    return 0;
}

/* Text -> tokens; *out is malloc'ed. */
static vkmix_error tokenize(app *a, const char *text, int add_bos, int32_t **out, size_t *n)
{
    size_t len = strlen(text), cap = len + 8, need = 0;
    *out = NULL;
    *n = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *t = malloc(cap * sizeof *t);
        if (!t) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        vkmix_error e = vkmix_tokenize(a->model, text, len, add_bos, 1, t, cap, &need);
        if (e == VKMIX_OK) {
            *out = t;
            *n = need;
            return VKMIX_OK;
        }
        free(t);
        if (e != VKMIX_ERROR_INVALID_ARGUMENT || need <= cap) return e;
        cap = need;
    }
    return VKMIX_ERROR_INTERNAL;
}

static void print_stats(const app *a, uint64_t n_prompt, double t_prompt, uint64_t n_gen, double t_gen)
{
    vkmix_kv_memory m;
    char kv[128] = "";
    if (vkmix_session_kv_memory(a->sess, &m) == VKMIX_OK)
        snprintf(kv, sizeof kv, " | KV %.2f MiB, K %.2f / V %.2f bits", (double)m.total_bytes / 1048576.0, m.k_bits,
                 m.v_bits);
    fprintf(stderr, "prompt %llu tok, %.1f t/s | generated %llu tok, %.1f t/s%s | context %u/%u\n",
            (unsigned long long)n_prompt, t_prompt > 0 ? (double)n_prompt / t_prompt : 0.0,
            (unsigned long long)n_gen, t_gen > 0 ? (double)n_gen / t_gen : 0.0, kv, vkmix_session_n_past(a->sess),
            vkmix_session_n_ctx(a->sess));
}

static void out_text(const char *s, size_t n)
{
    if (n) {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
}

typedef enum { GEN_OK = 0, GEN_ERROR, GEN_NO_ROOM } gen_status;

/* Evaluates toks[0..n) after the pending token (if any), then samples and
 * streams up to o.n_predict tokens. Stops at an end-of-generation token, at
 * -n, on Ctrl-C, or when the context is full. */
static gen_status generate(app *a, const int32_t *toks, size_t n, uint64_t *n_prompt_out, uint64_t *n_gen_out,
                           double *t_prompt_out, double *t_gen_out)
{
    *n_prompt_out = *n_gen_out = 0;
    *t_prompt_out = *t_gen_out = 0;
    g_interrupt = 0; /* a Ctrl-C from here on (also while the prompt is evaluated) stops this reply */
    const uint32_t n_ctx = vkmix_session_n_ctx(a->sess), V = a->info.n_vocab;
    size_t total = n + (a->pending >= 0);
    int32_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        fprintf(stderr, PROG ": out of memory\n");
        return GEN_ERROR;
    }
    size_t k = 0;
    if (a->pending >= 0) all[k++] = a->pending;
    if (n) memcpy(all + k, toks, n * sizeof *toks);
    if (total == 0) {
        free(all);
        fprintf(stderr, PROG ": the prompt is empty: nothing to continue (drop --no-bos or give a prompt)\n");
        return GEN_ERROR;
    }
    if ((uint64_t)vkmix_session_n_past(a->sess) + total > n_ctx) {
        free(all);
        return GEN_NO_ROOM;
    }
    double t0 = now_s();
    vkmix_error e = vkmix_session_eval(a->sess, all, (uint32_t)total, a->logits, 0);
    free(all);
    if (e != VKMIX_OK) {
        lib_error(a, "evaluating the prompt", e);
        return GEN_ERROR;
    }
    a->pending = -1;
    for (size_t i = 0; i < n; i++) vkmix_sampler_accept(a->smp, toks[i]);
    double t1 = now_s();
    *n_prompt_out = total;
    *t_prompt_out = t1 - t0;

    uint64_t n_gen = 0;
    gen_status st = GEN_OK;
    for (;;) {
        if (g_interrupt || (a->o.n_predict >= 0 && n_gen >= (uint64_t)a->o.n_predict)) break;
        int32_t tok;
        for (size_t i = 0; i < a->n_eog; i++) a->logits[a->eog[i]] = -INFINITY;
        e = vkmix_sampler_sample(a->smp, a->logits, V, &tok);
        if (e != VKMIX_OK) {
            lib_error(a, "sampling", e);
            st = GEN_ERROR;
            break;
        }
        if (vkmix_token_is_eog(a->model, tok)) break;
        const char *piece;
        size_t plen;
        e = vkmix_detokenizer_push(a->detok, tok, &piece, &plen);
        if (e != VKMIX_OK) {
            lib_error(a, "detokenizing", e);
            st = GEN_ERROR;
            break;
        }
        out_text(piece, plen);
        n_gen++;
        if ((a->o.n_predict >= 0 && n_gen >= (uint64_t)a->o.n_predict) || g_interrupt) {
            a->pending = tok;
            break;
        }
        if (vkmix_session_n_past(a->sess) >= n_ctx) {
            a->pending = tok;
            const char *p;
            size_t pl;
            if (vkmix_detokenizer_flush(a->detok, &p, &pl) == VKMIX_OK) out_text(p, pl);
            fprintf(stderr, "\n" PROG ": the context is full (%u tokens): generation stopped%s\n", n_ctx,
                    a->o.interactive ? "; /reset starts a new conversation" : "; -c sets a longer context");
            break;
        }
        e = vkmix_session_eval(a->sess, &tok, 1, a->logits, 0);
        if (e != VKMIX_OK) {
            lib_error(a, "evaluating", e);
            st = GEN_ERROR;
            break;
        }
    }
    const char *p;
    size_t pl;
    if (vkmix_detokenizer_flush(a->detok, &p, &pl) == VKMIX_OK) out_text(p, pl);
    *n_gen_out = n_gen;
    *t_gen_out = now_s() - t1;
    a->n_prompt += *n_prompt_out;
    a->t_prompt += *t_prompt_out;
    a->n_gen += n_gen;
    a->t_gen += *t_gen_out;
    return st;
}

/* Fits a prompt into the context: an error, or (--truncate) its last tokens. */
static int fit_prompt(app *a, int32_t **toks, size_t *n)
{
    const uint32_t n_ctx = vkmix_session_n_ctx(a->sess);
    if (*n <= n_ctx) return 0;
    if (!a->o.truncate) {
        fprintf(stderr,
                PROG ": the prompt is %zu tokens but the context holds %u: use a larger -c, a shorter prompt, "
                     "or --truncate to keep its end\n",
                *n, n_ctx);
        return -1;
    }
    /* keep the last n_ctx - n_predict tokens (at least half the context) */
    uint32_t room = a->o.n_predict >= 0 && (uint32_t)a->o.n_predict < n_ctx / 2 ? (uint32_t)a->o.n_predict : n_ctx / 2;
    size_t keep = n_ctx - room;
    if (keep < 1) keep = 1;
    int keep_bos = !a->o.no_bos && a->info.bos >= 0 && (*toks)[0] == a->info.bos && keep > 1;
    size_t tail = keep - (size_t)keep_bos;
    memmove(*toks + keep_bos, *toks + (*n - tail), tail * sizeof **toks);
    fprintf(stderr, PROG ": the prompt is %zu tokens; the context holds %u: kept its last %zu tokens%s\n", *n, n_ctx,
            tail, keep_bos ? " after BOS" : "");
    *n = keep;
    return 0;
}

static int run_oneshot(app *a, const char *prompt, cli_template tmpl)
{
    char *text = NULL;
    if (tmpl != CLI_TMPL_RAW) {
        text = cli_template_turn(tmpl, a->o.system, prompt, 1);
        if (!text) {
            fprintf(stderr, PROG ": out of memory\n");
            return 1;
        }
        prompt = text;
    }
    int32_t *toks;
    size_t n;
    vkmix_error e = tokenize(a, prompt, !a->o.no_bos, &toks, &n);
    if (e != VKMIX_OK) {
        lib_error(a, "tokenizing the prompt", e);
        free(text);
        return 1;
    }
    if (fit_prompt(a, &toks, &n) != 0) {
        free(toks);
        free(text);
        return 1;
    }
    if (!a->o.no_echo) out_text(prompt, strlen(prompt));
    free(text);
    uint64_t np, ng;
    double tp, tg;
    gen_status st = generate(a, toks, n, &np, &ng, &tp, &tg);
    free(toks);
    if (st == GEN_NO_ROOM) { /* fit_prompt checked; only a pending token could overflow */
        fprintf(stderr, PROG ": the prompt does not fit in the context\n");
        return 1;
    }
    out_text("\n", 1);
    if (st != GEN_OK) return 1;
    if (g_interrupt) fprintf(stderr, PROG ": interrupted\n");
    print_stats(a, np, tp, ng, tg);
    return 0;
}

/* One line of input (lines ending in '\' continue). NULL on end of input or
 * Ctrl-C (*interrupted = 1). */
static char *read_message(int *interrupted)
{
    *interrupted = 0;
    char *msg = NULL;
    size_t len = 0;
    for (;;) {
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t k = getline(&line, &cap, stdin);
        if (k < 0) {
            free(line);
            if (g_interrupt || errno == EINTR) {
                clearerr(stdin);
                *interrupted = 1;
            }
            free(msg);
            return NULL;
        }
        if (k > 0 && line[k - 1] == '\n') line[--k] = 0;
        if (k > 0 && line[k - 1] == '\r') line[--k] = 0;
        int more = k > 0 && line[k - 1] == '\\';
        if (more) line[--k] = 0;
        char *m = realloc(msg, len + (size_t)k + 2);
        if (!m) {
            free(line);
            free(msg);
            return NULL;
        }
        msg = m;
        memcpy(msg + len, line, (size_t)k);
        len += (size_t)k;
        if (more) msg[len++] = '\n';
        msg[len] = 0;
        free(line);
        if (!more) return msg;
        fputs(". ", stdout);
        fflush(stdout);
    }
}

static int run_chat(app *a, cli_template tmpl)
{
    int first = 1, idle_interrupts = 0, rc = 0;
    const char *initial = a->o.prompt;
    if (tmpl == CLI_TMPL_RAW)
        fprintf(stderr, PROG ": raw completion mode: each line you type is appended to the text and continued\n");
    else
        fprintf(stderr, PROG ": chat template %s\n", cli_template_name(tmpl));
    fprintf(stderr, PROG ": Ctrl-C stops a reply; Ctrl-C twice or Ctrl-D quits; /reset starts over\n");
    for (;;) {
        char *msg;
        if (initial) {
            msg = strdup(initial);
            initial = NULL;
            printf("> %s\n", msg ? msg : "");
        } else {
            fputs("\n> ", stdout);
            fflush(stdout);
            /* a Ctrl-C since the last reply ended counts as one at the prompt */
            int intr = 0;
            msg = g_interrupt ? NULL : read_message(&intr);
            if (g_interrupt) intr = 1;
            g_interrupt = 0;
            if (!msg) {
                if (intr) {
                    if (++idle_interrupts >= 2) {
                        fputc('\n', stdout);
                        break;
                    }
                    fputs("\n(Ctrl-C again or Ctrl-D to quit)", stdout);
                    continue;
                }
                fputc('\n', stdout); /* Ctrl-D */
                break;
            }
        }
        if (!msg) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = 1;
            break;
        }
        idle_interrupts = 0;
        if (!strcmp(msg, "/quit") || !strcmp(msg, "/exit")) {
            free(msg);
            break;
        }
        if (!strcmp(msg, "/reset")) {
            free(msg);
            vkmix_session_reset(a->sess);
            vkmix_sampler_reset(a->smp);
            a->pending = -1;
            first = 1;
            fprintf(stderr, PROG ": new conversation\n");
            continue;
        }
        if (!*msg && (tmpl != CLI_TMPL_RAW || a->pending < 0)) {
            /* nothing to say (raw mode: an empty line continues a reply that was cut short) */
            free(msg);
            continue;
        }
        char *text = cli_template_turn(tmpl, a->o.system, msg, first);
        free(msg);
        if (!text) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = 1;
            break;
        }
        int32_t *toks;
        size_t n;
        vkmix_error e = tokenize(a, text, first && !a->o.no_bos, &toks, &n);
        free(text);
        if (e != VKMIX_OK) {
            lib_error(a, "tokenizing", e);
            continue;
        }
        if (first && fit_prompt(a, &toks, &n) != 0) {
            free(toks);
            continue;
        }
        uint64_t np, ng;
        double tp, tg;
        gen_status st = generate(a, toks, n, &np, &ng, &tp, &tg);
        free(toks);
        if (st == GEN_NO_ROOM) {
            fprintf(stderr,
                    PROG ": this message does not fit in the context (%u of %u tokens used): /reset starts a new "
                         "conversation, -c sets a longer context\n",
                    vkmix_session_n_past(a->sess), vkmix_session_n_ctx(a->sess));
            continue;
        }
        if (st == GEN_ERROR) {
            rc = 1;
            break;
        }
        first = 0;
        if (g_interrupt) fputs(" [stopped]", stdout);
        g_interrupt = 0; /* that Ctrl-C stopped the reply; the next one is at the prompt */
        fputc('\n', stdout);
        if (a->o.verbose) print_stats(a, np, tp, ng, tg);
    }
    print_stats(a, a->n_prompt, a->t_prompt, a->n_gen, a->t_gen);
    return rc;
}

static void print_info(const app *a, const char *path, cli_template tmpl, int tmpl_from_model)
{
    vkmix_device_info d;
    if (vkmix_context_device_info(a->ctx, &d) == VKMIX_OK) fprintf(stderr, "device: %s\n", d.name);
    const vkmix_model_info *m = &a->info;
    fprintf(stderr,
            "model: %s (%s, %s, %u layers, %u heads / %u KV heads, head_dim %u, vocab %u, trained on %u tokens, "
            "%.1f MiB of weights)\n",
            path, m->arch, m->weight_type, m->n_layer, m->n_head, m->n_head_kv, m->head_dim, m->n_vocab,
            m->n_ctx_train, (double)m->weight_bytes / 1048576.0);
    vkmix_kv_memory km;
    memset(&km, 0, sizeof km);
    vkmix_session_kv_memory(a->sess, &km);
    fprintf(stderr, "session: context %u, KV %s: %.2f MiB at full context (K %.2f / V %.2f bits)\n",
            vkmix_session_n_ctx(a->sess), a->o.kv_profile ? a->o.kv_profile : a->o.kv ? a->o.kv : "f16",
            (double)km.total_bytes / 1048576.0, km.k_bits, km.v_bits);
    const vkmix_sampler_params *s = &a->o.sp;
    if (s->temperature <= 0)
        fprintf(stderr, "sampling: greedy");
    else
        fprintf(stderr, "sampling: temp %.2f, top-k %d, top-p %.2f, min-p %.2f, seed %llu", (double)s->temperature,
                s->top_k, (double)s->top_p, (double)s->min_p, (unsigned long long)s->seed);
    if (s->repeat_penalty != 1.0f)
        fprintf(stderr, ", repeat penalty %.2f over %d", (double)s->repeat_penalty, s->repeat_last_n);
    fputc('\n', stderr);
    if (a->o.interactive || tmpl != CLI_TMPL_RAW)
        fprintf(stderr, "chat template: %s%s\n", cli_template_name(tmpl), tmpl_from_model ? " (from the model)" : "");
}

/* The prompt: -f FILE, -p TEXT, or standard input when it is not a terminal (a final newline is
 * not part of it). *buf holds what was read; 0 on success. */
static int read_prompt(opts *o, char **buf)
{
    *buf = NULL;
    if (o->prompt_file) {
        FILE *f = fopen(o->prompt_file, "rb");
        if (!f) {
            fprintf(stderr, PROG ": cannot open prompt file '%s': %s\n", o->prompt_file, strerror(errno));
            return 1;
        }
        *buf = read_stream(f);
        fclose(f);
        if (!*buf) {
            fprintf(stderr, PROG ": cannot read prompt file '%s'\n", o->prompt_file);
            return 1;
        }
    } else if (!o->prompt && !o->interactive && !isatty(STDIN_FILENO)) {
        *buf = read_stream(stdin);
        if (!*buf) return 0;
    } else {
        return 0;
    }
    size_t k = strlen(*buf);
    if (k && (*buf)[k - 1] == '\n') (*buf)[--k] = 0;
    o->prompt = *buf;
    return 0;
}

/* The context, the model, the session (with the warnings about its context and cache), the
 * sampler and the detokenizer; 0 on success. */
static int open_all(app *a, const char *model_path)
{
    opts *o = &a->o;
    char err[1024] = "";
    vkmix_context_params cp;
    vkmix_context_default_params(&cp);
    cp.device_index = o->device;
    cp.error_buf = err;
    cp.error_buf_size = sizeof err;
    vkmix_error e = vkmix_context_create(&cp, &a->ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, PROG ": creating the Vulkan context: %s%s%s\n", vkmix_strerror(e), *err ? ": " : "", err);
        return 1;
    }

    vkmix_model_params mp;
    vkmix_model_default_params(&mp);
    int last_pct = -1;
    int show_progress = isatty(STDERR_FILENO);
    if (show_progress) {
        mp.progress = on_progress;
        mp.progress_user = &last_pct;
    }
    e = vkmix_model_load(a->ctx, model_path, &mp, &a->model);
    if (show_progress && last_pct >= 0) fputs("\r\033[K", stderr);
    if (e != VKMIX_OK) {
        char what[4200];
        snprintf(what, sizeof what, "loading model '%s'", model_path);
        lib_error(a, what, e);
        return 1;
    }
    if ((e = vkmix_model_get_info(a->model, &a->info)) != VKMIX_OK) {
        lib_error(a, "model info", e);
        return 1;
    }

    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = o->n_ctx;
    sp.n_batch = o->n_batch;
    sp.kv = o->kv;
    sp.kv_profile = o->kv_profile;
    sp.kv_group = o->kv_group;
    sp.kv_window = o->kv_window;
    sp.kv_sinks = o->kv_sinks;
    e = vkmix_session_create(a->model, &sp, &a->sess);
    if (e != VKMIX_OK) {
        char what[300];
        if (o->kv_profile)
            snprintf(what, sizeof what, "--kv-profile %.200s", o->kv_profile);
        else if (e == VKMIX_ERROR_BAD_PROFILE && o->kv)
            snprintf(what, sizeof what, "--kv %.200s", o->kv);
        else if (e == VKMIX_ERROR_BAD_PROFILE)
            snprintf(what, sizeof what, "the KV cache configuration");
        else
            snprintf(what, sizeof what, "creating the session");
        lib_error(a, what, e);
        return 1;
    }
    tool_warn_context(PROG, &a->info, vkmix_session_n_ctx(a->sess));
    if (o->kv || o->kv_profile) {
        char what[300];
        if (o->kv_profile) snprintf(what, sizeof what, "--kv-profile %.200s", o->kv_profile);
        else if (o->kv == o->kv_buf) snprintf(what, sizeof what, "%s (-ctk %s -ctv %s)", o->kv,
                                              o->compat.ctk ? o->compat.ctk : "f16", o->compat.ctv ? o->compat.ctv : "f16");
        else snprintf(what, sizeof what, "%.200s", o->kv);
        tool_warn_kv(PROG, a->model, &sp, what);
    }

    if ((e = vkmix_sampler_create(&o->sp, &a->smp)) != VKMIX_OK ||
        (e = vkmix_detokenizer_create(a->model, &a->detok)) != VKMIX_OK) {
        lib_error(a, "creating the sampler", e);
        return 1;
    }
    a->logits = malloc((size_t)a->info.n_vocab * sizeof *a->logits);
    if (!a->logits) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    if (o->ignore_eos) {
        for (uint32_t t = 0; t < a->info.n_vocab; t++)
            if (vkmix_token_is_eog(a->model, (int32_t)t)) {
                int32_t *g = realloc(a->eog, (a->n_eog + 1) * sizeof *g);
                if (!g) {
                    fprintf(stderr, PROG ": out of memory\n");
                    return 1;
                }
                a->eog = g;
                a->eog[a->n_eog++] = (int32_t)t;
            }
    }

    return 0;
}

/* The chat template: --raw, --chat-template, the model's, or raw; warns about markers that are
 * not tokens of the vocabulary. */
static cli_template choose_template(app *a, int *from_model)
{
    opts *o = &a->o;
    /* the chat template: --raw, --chat-template, the model's, or raw */
    cli_template tmpl = CLI_TMPL_RAW;
    *from_model = 0;
    if (o->chat_template) {
        tmpl = (cli_template)cli_template_from_name(o->chat_template);
    } else if (o->interactive && !o->raw) {
        const char *t = vkmix_model_chat_template(a->model);
        tmpl = cli_template_detect(t);
        *from_model = t != NULL;
        if (t && tmpl == CLI_TMPL_RAW)
            fprintf(stderr, PROG ": the model's chat template is not one vkmix knows (%s): raw mode; "
                            "--chat-template NAME picks one\n", cli_template_names());
    }
    for (int k = 0; cli_template_special(tmpl, k); k++)
        if (vkmix_token_find(a->model, cli_template_special(tmpl, k)) < 0)
            fprintf(stderr,
                    PROG ": warning: chat template %s: '%s' is not a token of the model's vocabulary: it is "
                         "tokenized as plain text, and the model was not trained on this format\n",
                    cli_template_name(tmpl), cli_template_special(tmpl, k));
    if (o->system && !o->interactive && tmpl == CLI_TMPL_RAW)
        fprintf(stderr, PROG ": warning: --system is used in chat mode (-i) or with --chat-template\n");

    return tmpl;
}

int main(int argc, char **argv)
{
    app A;
    memset(&A, 0, sizeof A);
    app *a = &A;
    a->pending = -1;
    parse_args(argc, argv, &a->o);
    opts *o = &a->o;
    if (o->list_devices) return list_devices();
    if (!o->have_seed) o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    char *prompt_buf = NULL;
    if (read_prompt(o, &prompt_buf)) return 1;

    /* the model file */
    char *model_path = o->model ? strdup(o->model) : default_model();
    if (!model_path) {
        fprintf(stderr, PROG ": no model: pass -m FILE.gguf (or set VKMIX_MODEL); the default "
                        "../shared/models/stories260K/stories260K.gguf and assets/stories260K-f16.gguf "
                        "were not found\n");
        free(prompt_buf);
        return 1;
    }
    if (!o->model) fprintf(stderr, PROG ": model %s\n", model_path);
    if (!readable(model_path)) {
        fprintf(stderr, PROG ": cannot read model file '%s': %s\n", model_path, strerror(errno));
        free(model_path);
        free(prompt_buf);
        return 1;
    }

    int rc = 1;
    if (open_all(a, model_path) == 0) {
        int from_model = 0;
        cli_template tmpl = choose_template(a, &from_model);
        if (o->verbose) print_info(a, model_path, tmpl, from_model);
        install_sigint();
        if (o->interactive)
            rc = run_chat(a, tmpl);
        else
            rc = run_oneshot(a, o->prompt ? o->prompt : "", tmpl);
    }

    if (a->ctx) {
        /* with VKMIX_VALIDATION=1: any message of the Khronos layer is a bug worth a non-zero exit */
        uint32_t nv = vkmix_context_validation_messages(a->ctx);
        if (nv) {
            fprintf(stderr, PROG ": %u Vulkan validation message%s (see above)\n", nv, nv == 1 ? "" : "s");
            if (rc == 0) rc = 1;
        }
    }
    app_free(a);
    free(model_path);
    free(prompt_buf);
    return rc;
}
