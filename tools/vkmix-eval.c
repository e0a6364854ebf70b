/* vkmix-eval: quality of quantized KV caches against the FP16 cache, in one run.
 *
 *   vkmix-eval -m model.gguf --text FILE [-c 512] [--kv k8v8,k4v4,profile.json] [-o out.json] [--svg kl.svg]
 *   vkmix-eval -m model.gguf --haystack DIR [--depths 0,0.5,1] [--trials 5] [--kv ...]
 *
 * The quantized cache is in the loop: text runs through each session in chunks
 * (--chunk, default 64 tokens) and every chunk attends to the history that the
 * earlier chunks left in that session's cache (quantized once it ages out of the
 * FP16 window). An FP16 session runs the same tokens in the same run.
 *
 * Perplexity: the text is tokenized once (no BOS), cut to --max-tokens, and read
 * in windows of the context length C (BOS first when the vocabulary asks for it)
 * that start every --stride S tokens (default C/2). Window k scores the tokens
 * that no earlier window scored, so every token after the first is scored once
 * and, past the first window, with at least C - S tokens of history. The session
 * is reset between windows.
 * KL: per scored token, KL(p_f16 || p_q) from the two sessions' logits (double
 * precision log-softmax); mean, p99, max, and top-1 agreement.
 * Needle in a haystack: "The pass key is NNNNN. Remember it." planted at each
 * depth of filler text (the essays of --haystack, sorted by name), then "What is
 * the pass key? The pass key is" and a greedy decode of --answer-tokens tokens;
 * a trial passes when the decoded text contains the number.
 */
#include "common/tool.c" /* first: it sets the feature-test macros */
#include "common/llama_flags.c"

#include <cjson/cJSON.h>
#include <dirent.h>

#define MAX_CFG 32
#define MAX_DEPTHS 32

typedef struct cfg {
    char label[160];
    char spec[256];         /* f16, kXvY or a profile path */
    int is_profile;
    uint32_t group, window, sinks;  /* explicit (--group ... or the item's :g= ...), 0: none */
    vkmix_kv_config kv;     /* the item parsed by the library */
    vkmix_session *s;
    vkmix_kv_memory mem;    /* at the context C */
    /* perplexity and KL */
    double nll, nll2;
    double *running;        /* --chunks: the running perplexity after each chunk */
    uint64_t n_tok, top1;
    float *kl;              /* [n_tok] */
    size_t kl_cap;
    double kl_sum;
    /* needle */
    uint32_t niah_ok[MAX_DEPTHS], niah_n[MAX_DEPTHS];
    cJSON *answers;
} cfg;

typedef struct opts {
    const char *model, *text, *haystack, *out, *svg, *svg_metric, *svg_exclude, *from_json;
    uint32_t ctx, stride, chunk, max_tokens, trials, niah_ctx, answer_tokens, group, window, sinks;
    double depths[MAX_DEPTHS];
    int n_depths, device;
    uint64_t seed;
    char *kv[MAX_CFG];
    int n_kv;
    long chunks;            /* --chunks N: llama-perplexity's method; -1: every chunk; 0: off */
    tool_compat compat;     /* -ctk/-ctv, -t, -fa, -ngl */
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkmix-eval -m model.gguf (-f FILE | --haystack DIR) [options]\n"
            "  -m, --model FILE    model (GGUF)\n"
            "  --kv LIST           comma list of caches to compare with f16: f16, kXvY, or profile .json files;\n"
            "                      an item may carry :w=R, :g=G, :s=S (window, group, sinks), e.g. k4v4:w=32\n"
            "                      (default k8v8,k4v4,k2v2)\n"
            TOOL_COMPAT_HELP_CACHE
            TOOL_COMPAT_HELP_POLICY
            "                      -ctk/-ctv name one more cache to compare (without --kv: the only one)\n"
            "  --group G --window R --sinks S   defaults for every item (0: the session's / profile's); also\n"
            "                      --kv-group, --kv-window, --kv-sinks as in vkmix\n"
            "  -c, --ctx-size N    context (window length) in tokens (default: as a session chooses)\n"
            "  -b, --batch-size N  tokens per evaluation call (default 64; also --chunk N)\n"
            "  -t, --threads N     accepted and unused: the model runs on the GPU\n"
            TOOL_COMPAT_HELP_FA
            "perplexity and KL against the FP16 cache:\n"
            "  -f, --file FILE     text to score (also --text FILE)\n"
            "  --max-tokens N      first N tokens of the text (default 0: all)\n"
            "  --stride S          window start every S tokens (default C/2)\n"
            "  --chunks N          llama-perplexity's method instead of --stride: N chunks of -c tokens (-1: all),\n"
            "                      BOS first, each scoring its second half; prints the running perplexity after\n"
            "                      each chunk, [1]p,[2]p,... and a final estimate (docs/QUALITY.md)\n"
            "needle in a haystack (passkey retrieval):\n"
            "  --haystack DIR      folder of .txt filler (e.g. PaulGrahamEssays)\n"
            "  --depths LIST       needle depths in [0, 1] (default 0,0.25,0.5,0.75,1)\n"
            "  --trials N          trials per depth (default 3)\n"
            "  --niah-ctx N        prompt length in tokens (default: -c)\n"
            "  --answer-tokens N   greedy tokens after the question (default 8)\n"
            "  -s, --seed N        seed of pass keys and filler offsets (default 1)\n"
            "output:\n"
            "  -o FILE             JSON results\n"
            "  --svg FILE          chart: KL (or --svg-metric ppl|niah) against effective bits, one point per cache\n"
            "  --svg-exclude S     leave caches whose name contains S out of the chart (not the table)\n"
            "  --from-json FILE    no model: draw --svg from the JSON of an earlier run\n"
            "  --device N          Vulkan device index\n");
}

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->chunk = 64;
    o->trials = 3;
    o->answer_tokens = 8;
    o->seed = 1;
    o->device = -1;
    const double dd[5] = { 0, 0.25, 0.5, 0.75, 1 };
    memcpy(o->depths, dd, sizeof dd);
    o->n_depths = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--text") || !strcmp(a, "-f") || !strcmp(a, "--file")) o->text = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--chunks")) {
            o->chunks = tool_parse_long(a, tool_arg(argc, argv, &i), -1, INT32_MAX);
            if (!o->chunks) tool_die("--chunks wants a count >= 1, or -1 for every chunk");
        }
        else if (!strcmp(a, "--haystack")) o->haystack = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "-o")) o->out = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--svg")) o->svg = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--svg-metric")) o->svg_metric = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--svg-exclude")) o->svg_exclude = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--from-json")) o->from_json = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--kv")) {
            for (int k = 0; k < o->n_kv; k++) free(o->kv[k]);
            o->n_kv = tool_split(tool_arg(argc, argv, &i), o->kv, MAX_CFG);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o->ctx = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 2, 1 << 20);
        else if (!strcmp(a, "--chunk") || !strcmp(a, "-b") || !strcmp(a, "--batch-size")) o->chunk = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--max-tokens")) o->max_tokens = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, INT32_MAX);
        else if (!strcmp(a, "--stride")) o->stride = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "--trials")) o->trials = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 10000);
        else if (!strcmp(a, "--niah-ctx")) o->niah_ctx = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 32, 1 << 20);
        else if (!strcmp(a, "--answer-tokens")) o->answer_tokens = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 64);
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) o->seed = (uint64_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, INT64_MAX);
        else if (!strcmp(a, "--group") || !strcmp(a, "--kv-group")) o->group = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 128);
        else if (!strcmp(a, "--window") || !strcmp(a, "--kv-window")) o->window = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "--sinks") || !strcmp(a, "--kv-sinks")) o->sinks = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 4096);
        else if (!strcmp(a, "--device")) o->device = (int)tool_parse_long(a, tool_arg(argc, argv, &i), -1, 64);
        else if (!strcmp(a, "--depths")) {
            char *items[MAX_DEPTHS];
            o->n_depths = tool_split(tool_arg(argc, argv, &i), items, MAX_DEPTHS);
            for (int k = 0; k < o->n_depths; k++) {
                o->depths[k] = tool_parse_double("--depths", items[k], 0, 1);
                free(items[k]);
            }
            if (!o->n_depths) tool_die("--depths: empty list");
        } else {
            char cerr[512];
            int r = tool_compat_flag(&o->compat, a, NULL, argc, argv, &i, cerr, sizeof cerr);
            if (r < 0) tool_die("%s", cerr);
            if (r == 0) {
                usage(stderr);
                tool_die("unknown argument '%s'", a);
            }
        }
    }
    if (o->from_json) {
        if (!o->svg) tool_die("--from-json needs --svg");
        return;
    }
    if (!o->model || (!o->text && !o->haystack)) {
        usage(stderr);
        tool_die("-m and one of --text / --haystack are required");
    }
    char kvc[32], cerr[512];
    int have_ct = tool_compat_kv(&o->compat, kvc, sizeof kvc, cerr, sizeof cerr);
    if (have_ct < 0) tool_die("%s", cerr);
    if (have_ct && o->n_kv < MAX_CFG) {
        o->kv[o->n_kv] = strdup(kvc);
        if (!o->kv[o->n_kv++]) tool_die("out of memory");
    }
    if (!o->n_kv) o->n_kv = tool_split("k8v8,k4v4,k2v2", o->kv, MAX_CFG);
    for (int k = 0; k < o->n_kv && o->compat.kv_policy; k++) { /* --kv-policy: onto every quantized item */
        char *w = tool_kv_with_policy(o->compat.kv_policy, o->kv[k]);
        if (!w) tool_die("out of memory");
        free(o->kv[k]);
        o->kv[k] = w;
    }
    if (o->compat.threads)
        fprintf(stderr, "vkmix-eval: note: -t %ld is accepted and unused: the model runs on the GPU\n", o->compat.threads);
    if (o->compat.fa_off) fprintf(stderr, "vkmix-eval: note: -fa off is ignored: vkmix's attention is always fused\n");
    if (o->chunks && !o->text) tool_die("--chunks needs a text (-f FILE)");
    if (o->chunks && o->stride) tool_die("--chunks and --stride cannot be used together");
    if (o->svg_metric && strcmp(o->svg_metric, "kl") && strcmp(o->svg_metric, "ppl") && strcmp(o->svg_metric, "niah"))
        tool_die("--svg-metric: kl, ppl or niah");
}

/* "k4v4:w=32:g=64" -> the library's configuration, with the --group / --window /
 * --sinks defaults before the item's own options; label = the item as given (a
 * profile: its file name). */
static void parse_cfg(const char *item, const opts *o, cfg *c)
{
    memset(c, 0, sizeof *c);
    char buf[256], spec[512], err[512];
    snprintf(buf, sizeof buf, "%s", item);
    char *colon = strchr(buf, ':');
    /* a profile path may not contain ':' options before ".json" */
    if (colon) *colon = 0;
    snprintf(c->spec, sizeof c->spec, "%s", buf);
    int n = snprintf(spec, sizeof spec, "%s", buf);
    if (o->group) n += snprintf(spec + n, sizeof spec - (size_t)n, ":g=%u", o->group);
    if (o->window) n += snprintf(spec + n, sizeof spec - (size_t)n, ":w=%u", o->window);
    if (o->sinks) n += snprintf(spec + n, sizeof spec - (size_t)n, ":s=%u", o->sinks);
    if (colon) snprintf(spec + n, sizeof spec - (size_t)n, ":%s", colon + 1);
    if (vkmix_kv_config_parse(spec, &c->kv, err, sizeof err) != VKMIX_OK) tool_die("--kv item '%s': %s", item, err);
    c->is_profile = c->kv.n_layer != 0;
    vkmix_kv_config own; /* the item's own options */
    snprintf(spec, sizeof spec, "f16:%s", colon ? colon + 1 : "");
    if (!colon || vkmix_kv_config_parse(spec, &own, err, sizeof err) != VKMIX_OK) vkmix_kv_config_default(&own);
    c->group = own.group ? own.group : o->group;
    c->window = own.window ? own.window : o->window;
    c->sinks = own.sinks ? own.sinks : o->sinks;
    if (c->is_profile) {
        const char *rest = strchr(item, ':');
        snprintf(c->label, sizeof c->label, "%.100s%.50s", tool_basename(c->spec), rest ? rest : "");
    } else snprintf(c->label, sizeof c->label, "%s", item);
}

static void session_params(const cfg *c, uint32_t n_ctx, uint32_t chunk, vkmix_session_params *p)
{
    vkmix_session_default_params(p);
    p->n_ctx = n_ctx;
    p->n_batch = chunk;
    p->kv_config = &c->kv;
}

/* ------------------------------------------------------------------ math on logits */

/* log Z of logits (double). */
static double log_norm(const float *z, uint32_t V, uint32_t *argmax)
{
    float mx = z[0];
    uint32_t am = 0;
    for (uint32_t i = 1; i < V; i++)
        if (z[i] > mx) {
            mx = z[i];
            am = i;
        }
    double s = 0;
    for (uint32_t i = 0; i < V; i++) s += exp((double)z[i] - mx);
    if (argmax) *argmax = am;
    return mx + log(s);
}

/* KL(p || q) for logits zp, zq. */
static double kl_div(const float *zp, double lzp, const float *zq, double lzq, uint32_t V)
{
    double kl = 0;
    for (uint32_t i = 0; i < V; i++) {
        double lp = zp[i] - lzp, lq = zq[i] - lzq;
        kl += exp(lp) * (lp - lq);
    }
    return kl > 0 ? kl : 0; /* rounding can leave -1e-17 */
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* The p-quantile (nearest rank) of a (sorted in place). */
static double quantile(float *a, size_t n, double p)
{
    if (!n) return 0;
    qsort(a, n, sizeof *a, cmp_float);
    size_t k = (size_t)ceil(p * (double)n);
    if (k < 1) k = 1;
    return a[k - 1];
}

static void kl_push(cfg *c, float v)
{
    if (c->n_tok == c->kl_cap) {
        c->kl_cap = c->kl_cap ? c->kl_cap * 2 : 4096;
        c->kl = realloc(c->kl, c->kl_cap * sizeof *c->kl);
        if (!c->kl) tool_die("out of memory");
    }
    c->kl[c->n_tok] = v;
}

static void eval_or_die(vkmix_session *s, const int32_t *t, uint32_t n, float *logits, int all, const char *what,
                        vkmix_context *ctx)
{
    vkmix_error e = vkmix_session_eval(s, t, n, logits, all);
    if (e != VKMIX_OK) tool_die("%s: %s: %s", what, vkmix_strerror(e), vkmix_context_last_error(ctx));
}

/* ------------------------------------------------------------------ perplexity and KL */

typedef struct ppl_ref {
    double nll, nll2;
    uint64_t n_tok;
    uint32_t windows;
    double *running;        /* --chunks: the running perplexity after each chunk */
} ppl_ref;

typedef struct ppl_bufs {
    float *lr, *lq;
    double *lzr;
    uint32_t *amr;
    uint32_t V, ch;
} ppl_bufs;

/* Runs the window win[0, Lw) through the reference and every cache (reset
 * first), in chunks of ch tokens, and scores the rows [row0, row1): row r
 * predicts win[r + 1]. */
static void score_window(vkmix_context *ctx, vkmix_session *ref, cfg *cf, int n_cf, const int32_t *win, uint32_t Lw,
                         uint32_t row0, uint32_t row1, ppl_bufs *B, ppl_ref *R)
{
    const uint32_t V = B->V, ch = B->ch;
    vkmix_session_reset(ref);
    for (int k = 0; k < n_cf; k++) vkmix_session_reset(cf[k].s);
    for (uint32_t p0 = 0; p0 < Lw; p0 += ch) {
        const uint32_t c = Lw - p0 < ch ? Lw - p0 : ch;
        const int want = p0 + c > row0 && p0 < row1;
        eval_or_die(ref, win + p0, c, want ? B->lr : NULL, want, "f16 session", ctx);
        if (want)
            for (uint32_t i = 0; i < c; i++) B->lzr[i] = log_norm(B->lr + (size_t)i * V, V, &B->amr[i]);
        for (uint32_t i = 0; want && i < c; i++) {
            uint32_t r = p0 + i;
            if (r < row0 || r >= row1) continue;
            double nl = B->lzr[i] - B->lr[(size_t)i * V + win[r + 1]];
            R->nll += nl;
            R->nll2 += nl * nl;
        }
        for (int k = 0; k < n_cf; k++) {
            cfg *q = &cf[k];
            eval_or_die(q->s, win + p0, c, want ? B->lq : NULL, want, q->label, ctx);
            for (uint32_t i = 0; want && i < c; i++) {
                uint32_t r = p0 + i;
                if (r < row0 || r >= row1) continue;
                const float *zq = B->lq + (size_t)i * V;
                uint32_t amq;
                double lzq = log_norm(zq, V, &amq);
                double nl = lzq - zq[win[r + 1]];
                q->nll += nl;
                q->nll2 += nl * nl;
                double kl = kl_div(B->lr + (size_t)i * V, B->lzr[i], zq, lzq, V);
                kl_push(q, (float)kl);
                q->kl_sum += kl;
                q->top1 += amq == B->amr[i];
                q->n_tok++;
            }
        }
    }
    R->n_tok += row1 - row0;
    R->windows++;
}

static void bufs_alloc(ppl_bufs *B, const vkmix_model *m, uint32_t ch)
{
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    B->V = info.n_vocab;
    B->ch = ch;
    B->lr = malloc((size_t)ch * B->V * sizeof(float));
    B->lq = malloc((size_t)ch * B->V * sizeof(float));
    B->lzr = malloc(ch * sizeof(double));
    B->amr = malloc(ch * sizeof(uint32_t));
    if (!B->lr || !B->lq || !B->lzr || !B->amr) tool_die("out of memory");
}

static void bufs_free(ppl_bufs *B)
{
    free(B->lr);
    free(B->lq);
    free(B->lzr);
    free(B->amr);
}

/* The perplexity of the windows of --stride (see the top of the file). */
static void run_ppl(const opts *o, vkmix_context *ctx, const vkmix_model *m, int bos_id, uint32_t C, vkmix_session *ref,
                    cfg *cf, int n_cf, ppl_ref *R)
{
    size_t n = 0;
    int32_t *x = tool_tokenize_file(m, o->text, 0, &n);
    if (o->max_tokens && n > o->max_tokens) n = o->max_tokens;
    const uint32_t bos = bos_id >= 0, Cb = C - bos, S = o->stride ? o->stride : (C / 2 ? C / 2 : 1);
    if (S > Cb) tool_die("--stride %u is longer than a window (%u text tokens)", S, Cb);
    if (n < 2) tool_die("the text has fewer than 2 tokens");
    ppl_bufs B;
    bufs_alloc(&B, m, o->chunk);
    int32_t *win = malloc((size_t)C * sizeof(int32_t));
    if (!win) tool_die("out of memory");
    /* windows: text [b, e); score j in [max(prev_end, b + 1), e) */
    uint64_t total_windows = 0;
    for (size_t b = 0;; b += S) {
        total_windows++;
        if (b + Cb >= n) break;
    }
    tool_progress pr;
    tool_progress_start(&pr, "perplexity");
    size_t prev_end = 0;
    for (size_t b = 0;; b += S) {
        const size_t e = b + Cb < n ? b + Cb : n;
        const uint32_t Lw = bos + (uint32_t)(e - b);
        if (bos) win[0] = bos_id;
        memcpy(win + bos, x + b, (e - b) * sizeof *win);
        const size_t first = prev_end > b + 1 ? prev_end : b + 1; /* first scored text index */
        /* the row predicting text index j is bos + j - 1 - b */
        const uint32_t row0 = (uint32_t)(bos + first - 1 - b), row1 = Lw - 1; /* scored rows [row0, row1) */
        score_window(ctx, ref, cf, n_cf, win, Lw, row0, row1, &B, R);
        tool_progress_update(&pr, R->windows, total_windows);
        prev_end = e;
        if (e >= n) break;
    }
    free(x);
    free(win);
    bufs_free(&B);
}

/* The standard error of exp(mean nll) over n scored tokens (first order: ppl x
 * the standard error of the mean nll). */
static double ppl_stderr(double nll, double nll2, uint64_t n)
{
    if (n < 2) return 0;
    double mean = nll / (double)n, var = nll2 / (double)n - mean * mean;
    return var > 0 ? exp(mean) * sqrt(var / (double)(n - 1)) : 0;
}

/* --chunks: llama-perplexity's method. The whole text is tokenized with BOS
 * (when the vocabulary asks for it) and cut into consecutive chunks of C tokens;
 * the first token of every chunk is replaced by BOS; each chunk runs in a fresh
 * session and scores its second half, rows [C/2, C - 1) (row r predicts token
 * r + 1), so each chunk scores C - 1 - C/2 tokens. The running perplexity is
 * printed after each chunk: [1]p1,[2]p2,... */
static void run_chunks(const opts *o, vkmix_context *ctx, const vkmix_model *m, int bos_id, uint32_t C,
                       vkmix_session *ref, cfg *cf, int n_cf, ppl_ref *R)
{
    size_t n = 0;
    int32_t *x = tool_tokenize_file(m, o->text, bos_id >= 0, &n);
    if (o->max_tokens && n > o->max_tokens) n = o->max_tokens;
    if (C < 4) tool_die("--chunks needs -c >= 4");
    if (n < 2 * (size_t)C)
        tool_die("--chunks: the text has %zu tokens; a context of %u needs at least %u (two chunks)", n, C, 2 * C);
    uint32_t n_chunks = (uint32_t)(n / C);
    if (o->chunks > 0 && (uint32_t)o->chunks < n_chunks) n_chunks = (uint32_t)o->chunks;
    R->running = calloc(n_chunks, sizeof(double));
    for (int k = 0; k < n_cf; k++) cf[k].running = calloc(n_chunks, sizeof(double));
    int32_t *win = malloc((size_t)C * sizeof(int32_t));
    if (!R->running || !win) tool_die("out of memory");
    ppl_bufs B;
    bufs_alloc(&B, m, o->chunk);
    const uint32_t first = C / 2;
    fprintf(stderr, "vkmix-eval: perplexity over %u chunks of %u tokens (%zu tokens), scoring %u tokens per chunk\n",
            n_chunks, C, n, C - 1 - first);
    fprintf(stderr, "vkmix-eval: the f16 cache's running perplexity after each chunk (the caches' follow at the end):\n");
    double t0 = tool_now();
    for (uint32_t i = 0; i < n_chunks; i++) {
        memcpy(win, x + (size_t)i * C, (size_t)C * sizeof *win);
        if (bos_id >= 0) win[0] = bos_id;
        score_window(ctx, ref, cf, n_cf, win, C, first, C - 1, &B, R);
        R->running[i] = exp(R->nll / (double)R->n_tok);
        for (int k = 0; k < n_cf; k++) cf[k].running[i] = exp(cf[k].nll / (double)cf[k].n_tok);
        if (i == 0) {
            char e[32];
            tool_fmt_secs(e, sizeof e, (tool_now() - t0) * (n_chunks - 1));
            fprintf(stderr, "vkmix-eval: %.2f s per chunk (%d caches), ETA %s\n", tool_now() - t0, n_cf + 1, e);
        }
        printf("[%u]%.4f,", i + 1, R->running[i]);
        fflush(stdout);
    }
    printf("\n");
    fflush(stdout);
    R->windows = n_chunks;
    free(x);
    free(win);
    bufs_free(&B);
}

/* ------------------------------------------------------------------ needle in a haystack */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The .txt files of dir, sorted by name, joined by blank lines. */
static char *read_haystack(const char *dir, size_t *len)
{
    DIR *d = opendir(dir);
    if (!d) tool_die("cannot open --haystack '%s'", dir);
    char *names[4096];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 4096) {
        size_t l = strlen(de->d_name);
        if (l > 4 && !strcmp(de->d_name + l - 4, ".txt")) {
            names[n] = strdup(de->d_name);
            if (!names[n]) tool_die("out of memory");
            n++;
        }
    }
    closedir(d);
    if (!n) tool_die("no .txt files in '%s'", dir);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    size_t cap = 1 << 20, used = 0;
    char *all = malloc(cap);
    for (int i = 0; i < n && all; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t l = 0;
        char *t = tool_read_file(path, &l);
        if (!t) tool_die("cannot read '%s'", path);
        while (used + l + 3 > cap) {
            cap *= 2;
            all = realloc(all, cap);
            if (!all) tool_die("out of memory");
        }
        memcpy(all + used, t, l);
        used += l;
        memcpy(all + used, "\n\n", 2);
        used += 2;
        free(t);
        free(names[i]);
    }
    if (!all) tool_die("out of memory");
    all[used] = 0;
    *len = used;
    return all;
}

static int piece_ends_sentence(const vkmix_model *m, int32_t id)
{
    char buf[64];
    size_t n = 0;
    if (vkmix_token_to_piece(m, id, buf, sizeof buf, &n) != VKMIX_OK || !n) return 0;
    char c = buf[n - 1];
    return c == '.' || c == '\n' || c == '!' || c == '?';
}

static int32_t greedy(const float *z, uint32_t V)
{
    uint32_t am = 0;
    for (uint32_t i = 1; i < V; i++)
        if (z[i] > z[am]) am = i;
    return (int32_t)am;
}

static void run_niah(const opts *o, vkmix_context *ctx, const vkmix_model *m, int bos_id, uint32_t P, cfg **all,
                     int n_all, cJSON *jn)
{
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    const uint32_t V = info.n_vocab;
    size_t hl = 0;
    char *hay = read_haystack(o->haystack, &hl);
    /* enough filler for P tokens: tokenize a prefix of about 8 bytes per token */
    size_t take = (size_t)P * 8 + 4096 < hl ? (size_t)P * 8 + 4096 : hl;
    size_t nh = 0;
    int32_t *ht = tool_tokenize(m, hay, take, 0, &nh);
    free(hay);
    size_t nq = 0;
    static const char question[] = "\nWhat is the pass key? The pass key is";
    int32_t *qt = tool_tokenize(m, question, sizeof question - 1, 0, &nq);
    int32_t *prompt = malloc(((size_t)P + 64) * sizeof *prompt);
    float *logits = malloc((size_t)V * sizeof(float));
    if (!prompt || !logits) tool_die("out of memory");
    tool_rng rng = { o->seed * 0x9E3779B97F4A7C15ull + 7 };
    tool_progress pr;
    tool_progress_start(&pr, "needle");
    const uint64_t total = (uint64_t)o->n_depths * o->trials;
    uint64_t done = 0;
    for (int di = 0; di < o->n_depths; di++)
        for (uint32_t t = 0; t < o->trials; t++) {
            char needle[96], key[16];
            unsigned pk = 10000 + (unsigned)tool_rng_below(&rng, 90000);
            snprintf(key, sizeof key, "%u", pk);
            snprintf(needle, sizeof needle, " The pass key is %u. Remember it. %u is the pass key. ", pk, pk);
            size_t nn = 0;
            int32_t *nt = tool_tokenize(m, needle, strlen(needle), 0, &nn);
            const uint32_t bos = bos_id >= 0;
            if (bos + nn + nq + 16 >= P) tool_die("--niah-ctx %u is too short for the needle and the question", P);
            const size_t F = P - bos - nn - nq; /* filler tokens */
            if (F > nh) tool_die("the haystack has %zu tokens, fewer than the %zu the prompt needs", nh, F);
            /* filler start: a different offset per trial */
            size_t off = nh - F ? (size_t)tool_rng_below(&rng, nh - F + 1) : 0;
            size_t at = (size_t)llround(o->depths[di] * (double)F);
            /* snap back to the end of a sentence, within 64 tokens */
            for (size_t k = 0; at > 0 && at < F && k < 64; k++, at--)
                if (piece_ends_sentence(m, ht[off + at - 1])) break;
            uint32_t np = 0;
            if (bos) prompt[np++] = bos_id;
            memcpy(prompt + np, ht + off, at * sizeof *prompt);
            np += (uint32_t)at;
            memcpy(prompt + np, nt, nn * sizeof *prompt);
            np += (uint32_t)nn;
            memcpy(prompt + np, ht + off + at, (F - at) * sizeof *prompt);
            np += (uint32_t)(F - at);
            memcpy(prompt + np, qt, nq * sizeof *prompt);
            np += (uint32_t)nq;
            free(nt);
            for (int k = 0; k < n_all; k++) {
                cfg *c = all[k];
                vkmix_session_reset(c->s);
                for (uint32_t p0 = 0; p0 < np; p0 += o->chunk) {
                    uint32_t n = np - p0 < o->chunk ? np - p0 : o->chunk;
                    eval_or_die(c->s, prompt + p0, n, p0 + n == np ? logits : NULL, 0, c->label, ctx);
                }
                char ans[512];
                size_t al = 0;
                for (uint32_t g = 0; g < o->answer_tokens; g++) {
                    int32_t id = greedy(logits, V);
                    if (vkmix_token_is_eog(m, id)) break;
                    char piece[64];
                    size_t pl = 0;
                    if (vkmix_token_to_piece(m, id, piece, sizeof piece, &pl) == VKMIX_OK && al + pl < sizeof ans) {
                        memcpy(ans + al, piece, pl);
                        al += pl;
                    }
                    if (g + 1 < o->answer_tokens && vkmix_session_n_past(c->s) < vkmix_session_n_ctx(c->s))
                        eval_or_die(c->s, &id, 1, logits, 0, c->label, ctx);
                    else break;
                }
                ans[al] = 0;
                int ok = strstr(ans, key) != NULL;
                c->niah_ok[di] += (uint32_t)ok;
                c->niah_n[di]++;
                if (!c->answers) c->answers = cJSON_CreateArray();
                cJSON *a = cJSON_CreateObject();
                cJSON_AddNumberToObject(a, "depth", o->depths[di]);
                cJSON_AddStringToObject(a, "key", key);
                cJSON_AddStringToObject(a, "answer", ans);
                cJSON_AddBoolToObject(a, "ok", ok);
                cJSON_AddItemToArray(c->answers, a);
            }
            tool_progress_update(&pr, ++done, total);
        }
    cJSON_AddNumberToObject(jn, "prompt_tokens", P);
    cJSON_AddNumberToObject(jn, "trials", o->trials);
    cJSON_AddStringToObject(jn, "haystack", o->haystack);
    free(ht);
    free(qt);
    free(prompt);
    free(logits);
}

/* ------------------------------------------------------------------ the chart */

typedef struct point {
    double x, y;
    const char *label;
    int profile;     /* a per-layer profile (else a uniform cache) */
    int small_win;   /* an explicit FP16 window override (:w=) */
} point;

typedef struct box {
    double x0, y0, x1, y1;
} box;

static int box_hit(const box *a, const box *b) { return a->x0 < b->x1 && b->x0 < a->x1 && a->y0 < b->y1 && b->y0 < a->y1; }

static void write_svg(const char *path, const char *title, const char *ylab, int logy, const point *pt, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) tool_die("cannot write '%s'", path);
    const double W = 860, H = 500, l = 86, r = 30, t = 62, b = 62, pw = W - l - r, ph = H - t - b;
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (logy && !(pt[i].y > 0)) continue;
        x0 = fmin(x0, pt[i].x);
        x1 = fmax(x1, pt[i].x);
        y0 = fmin(y0, pt[i].y);
        y1 = fmax(y1, pt[i].y);
        used++;
    }
    if (!used) {
        x0 = 0;
        x1 = 16;
        y0 = logy ? 1e-6 : 0;
        y1 = 1;
    }
    /* x: from the nearest integers around the data, with room for labels; on a log scale
     * f16 (KL 0) cannot be a point: it is the dashed line at 16 bits */
    if (logy) x1 = fmax(x1, 16);
    x0 = floor(x0 - 0.5);
    x1 = ceil(x1 + 0.5);
    if (x0 < 0) x0 = 0;
    if (logy) {
        y0 = pow(10, floor(log10(y0)));
        y1 = pow(10, ceil(log10(y1)));
        if (y1 <= y0) y1 = y0 * 10;
    } else {
        double pad = (y1 - y0) * 0.08 + 1e-12;
        double st = svg_nice_step(y1 - y0 + 2 * pad, 5);
        y0 = floor((y0 - pad) / st) * st;
        y1 = ceil((y1 + pad) / st) * st;
    }
#define PX(v) (l + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (logy ? t + ph - (log10(v) - log10(y0)) / (log10(y1) - log10(y0)) * ph : t + ph - ((v) - y0) / (y1 - y0) * ph)
    svg_begin(f, (int)W, (int)H);
    svg_text(f, l, 26, "start", 15, "font-weight=\"bold\"", "%s", title);
    /* grid and ticks */
    if (logy) {
        for (double v = y0; v <= y1 * 1.0001; v *= 10) {
            char lab[32];
            svg_fmt_num(lab, sizeof lab, v);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", l, PY(v), l + pw, PY(v));
            svg_text(f, l - 6, PY(v) + 4, "end", 11, NULL, "%s", lab);
        }
    } else {
        double st = svg_nice_step(y1 - y0, 5);
        for (double v = y0; v <= y1 + st * 1e-6; v += st) {
            char lab[32];
            svg_fmt_num(lab, sizeof lab, fabs(v) < st * 1e-9 ? 0 : v);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", l, PY(v), l + pw, PY(v));
            svg_text(f, l - 6, PY(v) + 4, "end", 11, NULL, "%s", lab);
        }
    }
    double xs = svg_nice_step(x1 - x0, 8);
    for (double v = ceil(x0 / xs) * xs; v <= x1 + 1e-9; v += xs) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", PX(v), t, PX(v), t + ph);
        svg_text(f, PX(v), t + ph + 16, "middle", 11, NULL, "%g", v);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"black\"/>\n", l, t, pw, ph);
    svg_text(f, l + pw / 2, H - 18, "middle", 12, NULL, "%s",
             "effective bits per cached element, (K + V) / 2, metadata and FP16 window included");
    fprintf(f, "<text x=\"22\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 22 %.1f)\">",
            t + ph / 2, t + ph / 2);
    svg_text_escaped(f, ylab);
    fputs("</text>\n", f);
    if (logy) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"5,4\"/>\n",
                PX(16), t, PX(16), t + ph);
        svg_text(f, PX(16) - 4, t + 14, "end", 10, "fill=\"#555\"", "f16: KL 0");
    }
    /* markers: circles for uniform caches, squares for profiles; hollow with a window override */
    box *taken = calloc((size_t)2 * n + 2, sizeof *taken); /* markers, then labels */
    int n_taken = 0;
    if (!taken) tool_die("out of memory");
    for (int i = 0; i < n; i++) {
        if (logy && !(pt[i].y > 0)) continue;
        double px = PX(pt[i].x), py = PY(pt[i].y);
        const char *col = pt[i].profile ? "#d94801" : "#2171b5";
        const char *fill = pt[i].small_win ? "white" : col;
        if (pt[i].profile)
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.6\">",
                    px - 4.5, py - 4.5, fill, col);
        else
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"%s\" stroke=\"%s\" stroke-width=\"1.6\">", px, py,
                    fill, col);
        fprintf(f, "<title>");
        svg_text_escaped(f, pt[i].label);
        fprintf(f, ": %.4g at %.3f bits</title>%s\n", pt[i].y, pt[i].x, pt[i].profile ? "</rect>" : "</circle>");
        taken[n_taken++] = (box){ px - 5, py - 5, px + 5, py + 5 };
    }
    /* labels: the first of a few spots around the point that hits no marker, label or edge */
    static const struct { double dx, dy; int anchor; } spot[] = {
        { 7, -5, 0 }, { -7, -5, 2 }, { 7, 12, 0 }, { -7, 12, 2 }, { 0, -9, 1 }, { 0, 19, 1 },
        { 9, -16, 0 }, { -9, -16, 2 }, { 9, 23, 0 }, { -9, 23, 2 }, { 0, -20, 1 }, { 0, 30, 1 },
        { 16, -28, 0 }, { -16, -28, 2 }, { 16, 35, 0 }, { -16, 35, 2 }, { 24, -40, 0 }, { -24, -40, 2 },
        { 24, 47, 0 }, { -24, 47, 2 }, { 40, 4, 0 }, { -40, 4, 2 },
    };
    static const char *anchors[3] = { "start", "middle", "end" };
    const box plot = { l, t, l + pw, t + ph };
    for (int i = 0; i < n; i++) {
        if (logy && !(pt[i].y > 0)) continue;
        /* the marker says "profile": drop ".json" from the label */
        char lab[200];
        const char *js = strstr(pt[i].label, ".json");
        if (js) snprintf(lab, sizeof lab, "%.*s%s", (int)(js - pt[i].label), pt[i].label, js + 5);
        else snprintf(lab, sizeof lab, "%s", pt[i].label);
        double px = PX(pt[i].x), py = PY(pt[i].y), w = 5.8 * (double)strlen(lab);
        int best = 0;
        box bb = { 0, 0, 0, 0 };
        for (size_t k = 0; k < sizeof spot / sizeof spot[0]; k++) {
            double x = px + spot[k].dx, y = py + spot[k].dy;
            double bx = spot[k].anchor == 0 ? x : spot[k].anchor == 1 ? x - w / 2 : x - w;
            box c = { bx, y - 9, bx + w, y + 2 };
            int ok = c.x0 >= plot.x0 + 2 && c.x1 <= plot.x1 - 2 && c.y0 >= plot.y0 + 2 && c.y1 <= plot.y1 - 2;
            for (int j = 0; ok && j < n_taken; j++) ok = !box_hit(&c, &taken[j]);
            if (ok || k == 0) {
                best = (int)k;
                bb = c;
            }
            if (ok) break;
        }
        taken[n_taken++] = bb;
        if (best >= 6) /* far from its marker: a leader line */
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" stroke-width=\"0.7\"/>\n", px,
                    py, spot[best].anchor == 0 ? bb.x0 - 1 : spot[best].anchor == 2 ? bb.x1 + 1 : (bb.x0 + bb.x1) / 2,
                    spot[best].dy < 0 ? bb.y1 : bb.y0);
        svg_text(f, px + spot[best].dx, py + spot[best].dy, anchors[spot[best].anchor], 10, NULL, "%s", lab);
    }
    free(taken);
    /* legend, below the title */
    double lx = l + 4, ly = 44;
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"#2171b5\" stroke=\"#2171b5\"/>\n", lx, ly - 4);
    svg_text(f, lx + 8, ly, "start", 11, NULL, "uniform kXvY");
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"9\" height=\"9\" fill=\"#d94801\" stroke=\"#d94801\"/>\n", lx + 100,
            ly - 8.5);
    svg_text(f, lx + 114, ly, "start", 11, NULL, "per-layer profile");
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"white\" stroke=\"#555\" stroke-width=\"1.6\"/>\n",
            lx + 230, ly - 4);
    svg_text(f, lx + 238, ly, "start", 11, NULL, "hollow: FP16 window set with :w= (filled: default)");
    fputs("</svg>\n", f);
#undef PX
#undef PY
    if (fclose(f)) tool_die("cannot write '%s'", path);
}

/* ------------------------------------------------------------------ main */

static void chart_title(const char *metric, const char *model, uint32_t C, uint32_t P, double ref_ppl, char *title,
                        size_t n, const char **ylab)
{
    if (!strcmp(metric, "kl")) {
        snprintf(title, n, "KL(f16 || cache) per token vs. KV bits: %s, context %u", model, C);
        *ylab = "mean KL(p_f16 || p_cache), nats (log scale)";
    } else if (!strcmp(metric, "ppl")) {
        snprintf(title, n, "Perplexity vs. KV bits: %s, context %u (f16 %.3f)", model, C, ref_ppl);
        *ylab = "perplexity";
    } else {
        snprintf(title, n, "Passkey retrieval vs. KV bits: %s, %u-token prompts", model, P);
        *ylab = "passkey accuracy, % (mean over depths)";
    }
}

/* --from-json: the chart of an earlier run. */
static int replot(const opts *o)
{
    size_t len = 0;
    char *text = tool_read_file(o->from_json, &len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j) tool_die("cannot read JSON from '%s'", o->from_json);
    const cJSON *caches = cJSON_GetObjectItem(j, "caches"), *c;
    const char *metric = o->svg_metric ? o->svg_metric : cJSON_GetObjectItem(j, "text") ? "kl" : "niah";
    point *pts = calloc((size_t)cJSON_GetArraySize(caches) + 1, sizeof *pts);
    int n = 0;
    double ref_ppl = 0;
    cJSON_ArrayForEach(c, caches)
    {
        const cJSON *name = cJSON_GetObjectItem(c, "name"), *spec = cJSON_GetObjectItem(c, "spec");
        int ref = cJSON_IsTrue(cJSON_GetObjectItem(c, "reference"));
        if (!cJSON_IsString(name) || !cJSON_IsString(spec)) continue;
        if (ref) ref_ppl = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "ppl"));
        if ((ref && !strcmp(metric, "kl")) || (o->svg_exclude && strstr(name->valuestring, o->svg_exclude))) continue;
        double y = 0;
        if (!strcmp(metric, "kl")) y = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "kl_mean"));
        else if (!strcmp(metric, "ppl")) y = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "ppl"));
        else {
            const cJSON *a, *acc = cJSON_GetObjectItem(c, "niah_accuracy");
            int k = 0;
            cJSON_ArrayForEach(a, acc) { y += a->valuedouble; k++; }
            y = k ? 100 * y / k : 0;
        }
        size_t sl = strlen(spec->valuestring);
        pts[n].x = (cJSON_GetNumberValue(cJSON_GetObjectItem(c, "k_bits")) +
                    cJSON_GetNumberValue(cJSON_GetObjectItem(c, "v_bits"))) / 2;
        pts[n].y = y;
        pts[n].label = name->valuestring;
        pts[n].profile = sl > 5 && !strcmp(spec->valuestring + sl - 5, ".json");
        pts[n].small_win = cJSON_GetObjectItem(c, "window") != NULL;
        n++;
    }
    const cJSON *model = cJSON_GetObjectItem(j, "model"), *niah = cJSON_GetObjectItem(j, "niah");
    char title[256];
    const char *ylab;
    chart_title(metric, cJSON_IsString(model) ? model->valuestring : "?",
                (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "ctx")),
                niah ? (uint32_t)cJSON_GetNumberValue(cJSON_GetObjectItem(niah, "prompt_tokens")) : 0, ref_ppl, title,
                sizeof title, &ylab);
    write_svg(o->svg, title, ylab, !strcmp(metric, "kl"), pts, n);
    free(pts);
    cJSON_Delete(j);
    return 0;
}

/* One cache's row of the table and its JSON object (k = 0: the f16 reference); its point of the
 * chart, unless excluded. */
static void cache_row(const opts *o, cfg *c, int k, const ppl_ref *R, double ref_ppl, const char *metric, cJSON *jc,
                      point *pts, int *n_pts)
{
    printf("%-28s %6.2f %6.2f %9.3f", c->label, c->mem.k_bits, c->mem.v_bits, (double)c->mem.total_bytes / 1048576.0);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", c->label);
    cJSON_AddStringToObject(j, "spec", c->spec);
    if (c->group) cJSON_AddNumberToObject(j, "group", c->group);
    if (c->window) cJSON_AddNumberToObject(j, "window", c->window);
    if (c->sinks) cJSON_AddNumberToObject(j, "sinks", c->sinks);
    cJSON_AddBoolToObject(j, "reference", k == 0);
    cJSON_AddNumberToObject(j, "k_bits", c->mem.k_bits);
    cJSON_AddNumberToObject(j, "v_bits", c->mem.v_bits);
    cJSON_AddNumberToObject(j, "kv_bytes", (double)c->mem.total_bytes);
    double ppl = 0, klm = 0, klp = 0, klmax = 0, top1 = 0;
    if (o->text) {
        if (k == 0) {
            ppl = ref_ppl;
            top1 = 1;
        } else {
            ppl = c->n_tok ? exp(c->nll / (double)c->n_tok) : 0;
            klm = c->n_tok ? c->kl_sum / (double)c->n_tok : 0;
            klp = quantile(c->kl, c->n_tok, 0.99);
            klmax = c->n_tok ? c->kl[c->n_tok - 1] : 0; /* sorted by quantile() */
            top1 = c->n_tok ? (double)c->top1 / (double)c->n_tok : 0;
        }
        printf(" %9.4f %+8.3f %10.3e %10.3e %6.2f%%", ppl, ref_ppl > 0 ? 100 * (ppl / ref_ppl - 1) : 0, klm, klp,
               100 * top1);
        cJSON_AddNumberToObject(j, "ppl", ppl);
        cJSON_AddNumberToObject(j, "nll_mean", log(ppl));
        if (o->chunks) {
            const double *run = k ? c->running : R->running;
            cJSON_AddNumberToObject(j, "ppl_stderr", k ? ppl_stderr(c->nll, c->nll2, c->n_tok)
                                                       : ppl_stderr(R->nll, R->nll2, R->n_tok));
            cJSON *jr = cJSON_AddArrayToObject(j, "ppl_running");
            for (uint32_t i = 0; run && i < R->windows; i++) cJSON_AddItemToArray(jr, cJSON_CreateNumber(run[i]));
        }
        if (k) {
            cJSON_AddNumberToObject(j, "kl_mean", klm);
            cJSON_AddNumberToObject(j, "kl_p99", klp);
            cJSON_AddNumberToObject(j, "kl_max", klmax);
            cJSON_AddNumberToObject(j, "top1_agreement", top1);
        }
    }
    double niah_mean = 0;
    if (o->haystack) {
        cJSON *acc = cJSON_AddArrayToObject(j, "niah_accuracy");
        for (int i = 0; i < o->n_depths; i++) {
            double a = c->niah_n[i] ? (double)c->niah_ok[i] / c->niah_n[i] : 0;
            niah_mean += a / o->n_depths;
            printf("  %5.0f%%", 100 * a);
            cJSON_AddItemToArray(acc, cJSON_CreateNumber(a));
        }
        if (c->answers) {
            cJSON_AddItemToObject(j, "niah_answers", c->answers);
            c->answers = NULL;
        }
    }
    printf("\n");
    cJSON_AddItemToArray(jc, j);
    if ((k > 0 || strcmp(metric, "kl")) && !(o->svg_exclude && strstr(c->label, o->svg_exclude))) {
        pts[*n_pts].x = (c->mem.k_bits + c->mem.v_bits) / 2;
        pts[*n_pts].y = !strcmp(metric, "kl") ? klm : !strcmp(metric, "ppl") ? ppl : 100 * niah_mean;
        pts[*n_pts].label = c->label;
        pts[*n_pts].profile = c->is_profile;
        pts[*n_pts].small_win = c->window != 0 && c->window != o->window;
        (*n_pts)++;
    }
}

int main(int argc, char **argv)
{
    tool_name = "vkmix-eval";
    opts o;
    parse(argc, argv, &o);
    if (o.from_json) return replot(&o);
    vkmix_context *ctx = tool_context(o.device);
    vkmix_model *m = tool_model(ctx, o.model);
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    const uint32_t C = o.ctx ? o.ctx : (info.n_ctx_train && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096);
    const uint32_t P = o.niah_ctx ? o.niah_ctx : C;
    const uint32_t n_ctx = (o.haystack && P + o.answer_tokens > C) ? P + o.answer_tokens : C;
    const int bos_id = tool_wants_bos(m) && info.bos >= 0 ? info.bos : -1;
    double t0 = tool_now();

    /* the reference and the configurations */
    cfg ref_cfg;
    parse_cfg("f16", &o, &ref_cfg);
    snprintf(ref_cfg.label, sizeof ref_cfg.label, "f16 (reference)");
    cfg *cf = calloc((size_t)o.n_kv, sizeof *cf);
    if (!cf) tool_die("out of memory");
    vkmix_session_params sp;
    session_params(&ref_cfg, n_ctx, o.chunk, &sp);
    vkmix_error e = vkmix_session_create(m, &sp, &ref_cfg.s);
    if (e != VKMIX_OK) tool_die("f16 session: %s: %s", vkmix_strerror(e), vkmix_context_last_error(ctx));
    sp.n_ctx = C;
    if (vkmix_kv_memory_estimate(m, &sp, 0, &ref_cfg.mem) != VKMIX_OK) tool_die("memory estimate");
    for (int k = 0; k < o.n_kv; k++) {
        parse_cfg(o.kv[k], &o, &cf[k]);
        session_params(&cf[k], n_ctx, o.chunk, &sp);
        e = vkmix_session_create(m, &sp, &cf[k].s);
        if (e != VKMIX_OK) tool_die("--kv %s: %s: %s", o.kv[k], vkmix_strerror(e), vkmix_context_last_error(ctx));
        sp.n_ctx = C;
        e = vkmix_kv_memory_estimate(m, &sp, 0, &cf[k].mem);
        if (e != VKMIX_OK) tool_die("--kv %s: %s: %s", o.kv[k], vkmix_strerror(e), vkmix_context_last_error(ctx));
        tool_warn_kv(tool_name, m, &sp, cf[k].label);
    }
    tool_warn_context(tool_name, &info, n_ctx);
    fprintf(stderr, "vkmix-eval: %s (%u layers), context %u, chunk %u, %d cache(s) against f16%s\n",
            tool_basename(o.model), info.n_layer, C, o.chunk, o.n_kv, bos_id >= 0 ? ", BOS first" : "");

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "tool", "vkmix-eval " VKMIX_VERSION_STRING);
    cJSON_AddStringToObject(root, "model", tool_basename(o.model));
    cJSON_AddNumberToObject(root, "n_layer", info.n_layer);
    cJSON_AddNumberToObject(root, "ctx", C);
    cJSON_AddNumberToObject(root, "chunk", o.chunk);
    vkmix_device_info dev;
    if (vkmix_context_device_info(ctx, &dev) == VKMIX_OK) cJSON_AddStringToObject(root, "device", dev.name);

    ppl_ref R;
    memset(&R, 0, sizeof R);
    if (o.text) {
        if (o.chunks) run_chunks(&o, ctx, m, bos_id, C, ref_cfg.s, cf, o.n_kv, &R);
        else run_ppl(&o, ctx, m, bos_id, C, ref_cfg.s, cf, o.n_kv, &R);
        cJSON *jt = cJSON_AddObjectToObject(root, "text");
        cJSON_AddStringToObject(jt, "file", o.text);
        cJSON_AddNumberToObject(jt, "max_tokens", o.max_tokens);
        if (o.chunks) {
            cJSON_AddStringToObject(jt, "method", "chunks (llama-perplexity)");
            cJSON_AddNumberToObject(jt, "chunks", R.windows);
        } else cJSON_AddNumberToObject(jt, "stride", o.stride ? o.stride : C / 2);
        cJSON_AddNumberToObject(jt, "windows", R.windows);
        cJSON_AddNumberToObject(jt, "scored_tokens", (double)R.n_tok);
    }
    cfg **all = malloc(((size_t)o.n_kv + 1) * sizeof *all);
    if (!all) tool_die("out of memory");
    all[0] = &ref_cfg;
    for (int k = 0; k < o.n_kv; k++) all[k + 1] = &cf[k];
    if (o.haystack) {
        cJSON *jn = cJSON_AddObjectToObject(root, "niah");
        run_niah(&o, ctx, m, bos_id, P, all, o.n_kv + 1, jn);
        cJSON *d = cJSON_AddArrayToObject(jn, "depths");
        for (int i = 0; i < o.n_depths; i++) cJSON_AddItemToArray(d, cJSON_CreateNumber(o.depths[i]));
    }

    /* table */
    const double ref_ppl = R.n_tok ? exp(R.nll / (double)R.n_tok) : 0;
    if (o.text && o.chunks) {
        printf("Final estimate: PPL = %.4f +/- %.5f\n", ref_ppl, ppl_stderr(R.nll, R.nll2, R.n_tok));
        for (int k = 0; k < o.n_kv; k++) {
            printf("\n%s: ", cf[k].label);
            for (uint32_t i = 0; i < R.windows; i++) printf("[%u]%.4f,", i + 1, cf[k].running[i]);
            printf("\nFinal estimate: PPL = %.4f +/- %.5f\n", exp(cf[k].nll / (double)cf[k].n_tok),
                   ppl_stderr(cf[k].nll, cf[k].nll2, cf[k].n_tok));
        }
    }
    printf("\nmodel %s, context %u, chunk %u", tool_basename(o.model), C, o.chunk);
    if (o.text && o.chunks)
        printf(", text %s: %llu tokens scored in %u chunks of %u (the second half of each)", o.text,
               (unsigned long long)R.n_tok, R.windows, C);
    else if (o.text)
        printf(", text %s: %llu tokens scored in %u windows (stride %u)", o.text, (unsigned long long)R.n_tok,
               R.windows, o.stride ? o.stride : C / 2);
    printf("\n\n%-28s %6s %6s %9s", "cache", "K bits", "V bits", "KV MiB");
    if (o.text) printf(" %9s %8s %10s %10s %7s", "PPL", "dPPL%", "KL mean", "KL p99", "top-1");
    if (o.haystack)
        for (int i = 0; i < o.n_depths; i++) printf("  d=%-4g", o.depths[i]);
    printf("\n");
    cJSON *jc = cJSON_AddArrayToObject(root, "caches");
    point *pts = malloc(((size_t)o.n_kv + 1) * sizeof *pts);
    int n_pts = 0;
    const char *metric = o.svg_metric ? o.svg_metric : o.text ? "kl" : "niah";
    for (int k = 0; k <= o.n_kv; k++) cache_row(&o, all[k], k, &R, ref_ppl, metric, jc, pts, &n_pts);
    fprintf(stderr, "vkmix-eval: done in %.1f s\n", tool_now() - t0);
    if (o.out) {
        char *s = cJSON_Print(root);
        FILE *f = fopen(o.out, "w");
        if (!f || !s || fputs(s, f) < 0 || fputc('\n', f) == EOF || fclose(f)) tool_die("cannot write '%s'", o.out);
        free(s);
    }
    if (o.svg) {
        char title[256];
        const char *ylab;
        chart_title(metric, tool_basename(o.model), C, P, ref_ppl, title, sizeof title, &ylab);
        write_svg(o.svg, title, ylab, !strcmp(metric, "kl"), pts, n_pts);
    }
    cJSON_Delete(root);
    for (int k = 0; k <= o.n_kv; k++) {
        vkmix_session_free(all[k]->s);
        free(all[k]->kl);
        free(all[k]->running);
        cJSON_Delete(all[k]->answers);
    }
    for (int k = 0; k < o.n_kv; k++) free(o.kv[k]);
    free(R.running);
    free(cf);
    free(all);
    free(pts);
    vkmix_model_free(m);
    uint32_t vmsg = vkmix_context_validation_messages(ctx);
    vkmix_context_free(ctx);
    if (vmsg) {
        fprintf(stderr, "%s: the Vulkan validation layer reported %u message(s)\n", tool_name, vmsg);
        return 2;
    }
    return 0;
}
