/* vkmix-calibrate: per-layer KV bit profiles from gradient-based layer importance.
 *
 *   vkmix-calibrate -m model.gguf --text FILE [-N 16 -T 128 --seed 1] -o profile.json
 *                   [--rule kvmix | --target-bits B [--joint] | --budget-mib M --ctx C]
 *                   [--scores scores.json] [--svg chart.svg]
 *
 * 1. Draws N random windows of T tokens from the tokenized text (seeded; each
 *    window starts with BOS when the vocabulary asks for one).
 * 2. Importance (KVmix): I_K(l) = ||dL/dW_k(l)||_F, I_V(l) = ||dL/dW_v(l)||_F,
 *    L the mean next-token cross-entropy over all windows, on the fp32 CPU reference.
 * 3. Measured error of the cache's format per layer and width (2, 3, 4, 8) on
 *    the model's own post-RoPE keys and values.
 * 4. A rule turns both into per-layer widths; the profile records provenance.
 */
#include "common/tool.c" /* first: it sets the feature-test macros */
#include "common/sha256.c"
#include "common/llama_flags.c"

#include <cjson/cJSON.h>

typedef enum { RULE_KVMIX, RULE_TARGET, RULE_BUDGET } rule_kind;

typedef struct opts {
    const char *model, *text, *out, *scores, *svg, *bits_of, *reuse;
    uint32_t N, T, threads, group, window, sinks, ctx;
    uint64_t seed;
    rule_kind rule;
    double target_bits, target_bits_v, budget_mib;
    int joint, device;
    long ablate; /* >= 0: permute the importance scores among layers with this seed (ablation) */
    tool_compat compat; /* -ctk/-ctv (a --target-bits-of), -t, -fa, -ngl */
    char bits_of_buf[32];
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkmix-calibrate -m model.gguf -f FILE -o profile.json [options]\n"
            "  -m, --model FILE    model (GGUF)\n"
            "  -f, --file FILE     calibration text (keep it apart from the evaluation text; also --text FILE)\n"
            "  -N N                random windows (default 16)\n"
            "  -T N                tokens per window (default 128)\n"
            "  -s, --seed N        seed of the window draw (default 1)\n"
            "  -t, --threads N     CPU threads (default 2)\n"
            "  -fa, -ngl           accepted (llama.cpp's flags); nothing to set\n"
            "  -o FILE             write the profile (JSON, for --kv / kv_profile)\n"
            "  --scores FILE       write the scores: importance, loss, measured errors, widths\n"
            "  --reuse-scores FILE take importance and measured errors from an earlier --scores file of\n"
            "                      the same model, group and sinks instead of computing them (no -f):\n"
            "                      several rules or targets from one calibration\n"
            "  --svg FILE          bar chart of K and V importance with the chosen widths\n"
            "rules (one):\n"
            "  --rule kvmix        KVmix: top 10%% + next 10%% of layers by importance get K3 / V4, the rest\n"
            "                      K2 / V2, separately for K and V (default). Fewer than 10 layers: one\n"
            "                      important layer (paper's floor(0.1 n) would promote none)\n"
            "  --target-bits B     average effective bits (metadata, FP16 window and sinks included) <= B,\n"
            "                      for K and for V separately; minimizes sum importance x measured error\n"
            "  --target-bits-of C  the same, at the effective bits of cache C (kXvY or a profile .json) with\n"
            "                      this geometry and --ctx: K <= C's K bits and V <= C's V bits (--joint:\n"
            "                      (K + V) / 2 <= C's)\n"
            "  -ctk T -ctv T       the same as --target-bits-of kXvY with llama.cpp's cache type names (f16,\n"
            "                      q8_0, q4_0, ... as for vkmix -ctk; the one not given is f16)\n"
            "  --joint             with --target-bits: (K + V) / 2 <= B, one budget\n"
            "  --budget-mib M      the whole cache for --ctx tokens fits in M MiB (K and V together)\n"
            "  -c, --ctx-size C    context of the accounting (default: as a session chooses; also --ctx C)\n"
            "an unreachable target or budget (below the smallest cache, 2 bits everywhere, with this geometry\n"
            "and context) is refused before calibrating\n"
            "cache geometry recorded in the profile (0: session defaults, G 32, R 128, S 0):\n"
            "  --group G  --window R  --sinks S   (also --kv-group, --kv-window, --kv-sinks as in vkmix)\n"
            "  --ablate-random S   ablation: shuffle the importance scores among layers (seed S) before\n"
            "                      allocating: same rule and bits, randomly chosen layers\n"
            "  --device N          Vulkan device index (loading the model needs one)\n");
}

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->N = 16;
    o->T = 128;
    o->seed = 1;
    o->threads = 2;
    o->device = -1;
    o->ablate = -1;
    int have_rule = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--text") || !strcmp(a, "-f") || !strcmp(a, "--file")) o->text = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "-N")) o->N = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "-T")) o->T = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 2, 1 << 20);
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) o->seed = (uint64_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, INT64_MAX);
        else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) o->threads = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 64);
        else if (!strcmp(a, "-o")) o->out = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--scores")) o->scores = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--reuse-scores")) o->reuse = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--svg")) o->svg = tool_arg(argc, argv, &i);
        else if (!strcmp(a, "--rule")) {
            const char *r = tool_arg(argc, argv, &i);
            if (strcmp(r, "kvmix")) tool_die("--rule: only 'kvmix' (use --target-bits or --budget-mib for the others)");
            o->rule = RULE_KVMIX;
            have_rule++;
        } else if (!strcmp(a, "--target-bits")) {
            o->target_bits = tool_parse_double(a, tool_arg(argc, argv, &i), 0.5, 16);
            o->rule = RULE_TARGET;
            have_rule++;
        } else if (!strcmp(a, "--target-bits-of")) {
            o->bits_of = tool_arg(argc, argv, &i);
            o->rule = RULE_TARGET;
            have_rule++;
        } else if (!strcmp(a, "--joint")) o->joint = 1;
        else if (!strcmp(a, "--budget-mib")) {
            o->budget_mib = tool_parse_double(a, tool_arg(argc, argv, &i), 1e-6, 1e9);
            o->rule = RULE_BUDGET;
            have_rule++;
        } else if (!strcmp(a, "--ctx") || !strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o->ctx = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 1, 1 << 24);
        else if (!strcmp(a, "--group") || !strcmp(a, "--kv-group")) o->group = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 128);
        else if (!strcmp(a, "--window") || !strcmp(a, "--kv-window")) o->window = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "--sinks") || !strcmp(a, "--kv-sinks")) o->sinks = (uint32_t)tool_parse_long(a, tool_arg(argc, argv, &i), 0, 4096);
        else if (!strcmp(a, "--ablate-random")) o->ablate = tool_parse_long(a, tool_arg(argc, argv, &i), 0, INT32_MAX);
        else if (!strcmp(a, "--device")) o->device = (int)tool_parse_long(a, tool_arg(argc, argv, &i), -1, 64);
        else {
            char cerr[512];
            int r = tool_compat_flag(&o->compat, a, NULL, argc, argv, &i, cerr, sizeof cerr);
            if (r < 0) tool_die("%s", cerr);
            if (r == 0) {
                usage(stderr);
                tool_die("unknown argument '%s'", a);
            }
        }
    }
    {
        char cerr[512];
        int r = tool_compat_kv(&o->compat, o->bits_of_buf, sizeof o->bits_of_buf, cerr, sizeof cerr);
        if (r < 0) tool_die("%s", cerr);
        if (r > 0) {
            if (!strcmp(o->bits_of_buf, "f16")) tool_die("-ctk/-ctv f16: a 16-bit target needs no calibration");
            o->bits_of = o->bits_of_buf;
            o->rule = RULE_TARGET;
            have_rule++;
        }
    }
    if (!o->model || (!o->text && !o->reuse)) {
        usage(stderr);
        tool_die("-m and -f (--text) are required (or --reuse-scores instead of -f)");
    }
    if (o->text && o->reuse) tool_die("give -f (calibrate) or --reuse-scores (reuse a calibration), not both");
    if (have_rule > 1) tool_die("give one rule: --rule kvmix, --target-bits (-of, or -ctk/-ctv) or --budget-mib");
    if (o->joint && o->rule != RULE_TARGET) tool_die("--joint goes with --target-bits");
    if (o->rule == RULE_BUDGET && !o->ctx) tool_die("--budget-mib needs the context of the accounting: -c N (--ctx N)");
    if (!o->out && !o->scores && !o->svg) fprintf(stderr, "vkmix-calibrate: note: no -o, --scores or --svg: printing only\n");
}

static int progress_cb(uint32_t done, uint32_t total, void *user)
{
    tool_progress_update(user, done, total);
    return 0;
}

static const char *rule_text(const opts *o, char *buf, size_t n)
{
    if (o->rule == RULE_KVMIX) snprintf(buf, n, "kvmix");
    else if (o->rule == RULE_TARGET && o->target_bits_v > 0)
        snprintf(buf, n, "target-bits K %.4g, V %.4g (those of %s)", o->target_bits, o->target_bits_v,
                 tool_basename(o->bits_of));
    else if (o->rule == RULE_TARGET)
        snprintf(buf, n, "target-bits %.4g (%s%s%s)", o->target_bits, o->joint ? "K and V jointly" : "K and V separately",
                 o->bits_of ? ", those of " : "", o->bits_of ? tool_basename(o->bits_of) : "");
    else snprintf(buf, n, "budget %g MiB at context %u", o->budget_mib, o->ctx);
    return buf;
}

static cJSON *float_array(const float *a, uint32_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)a[i]));
    return arr;
}

/* ------------------------------------------------------------------ the chart */

static const char *width_color(uint32_t bits, int is_v)
{
    /* lighter = fewer bits; K blues, V oranges */
    static const char *k[] = { "#c6dbef", "#6baed6", "#2171b5", "#08306b", "#041a3a" };
    static const char *v[] = { "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704", "#3f1302" };
    int i = bits <= 2 ? 0 : bits == 3 ? 1 : bits == 4 ? 2 : bits == 8 ? 3 : 4;
    return is_v ? v[i] : k[i];
}

static void write_svg(const char *path, const char *model_name, const char *rule, uint32_t L, const float *imp_k,
                      const float *imp_v, const float *err_k, const float *err_v, const uint8_t *kb, const uint8_t *vb,
                      const vkmix_kv_memory *mem, uint32_t n_ctx)
{
    FILE *f = fopen(path, "w");
    if (!f) tool_die("cannot write '%s'", path);
    const double left = 78, right = 150, top = 80, panel_h = 190, gap = 70, bottom = 64;
    double slot = L <= 8 ? 64 : L <= 32 ? 26 : 14;
    const double plot_w = slot * L < 400 ? 400 : slot * L;
    slot = plot_w / L;
    const int W = (int)(left + plot_w + right), H = (int)(top + 2 * panel_h + gap + bottom);
    svg_begin(f, W, H);
    svg_text(f, left, 24, "start", 15, "font-weight=\"bold\"", "KV layer importance and chosen widths");
    svg_text(f, left, 44, "start", 12, "fill=\"#444\"", "%s, rule %s", model_name, rule);
    svg_text(f, left, 62, "start", 12, "fill=\"#444\"", "effective bits K %.2f, V %.2f at context %u", mem->k_bits,
             mem->v_bits, n_ctx);
    for (int pnl = 0; pnl < 2; pnl++) {
        const float *imp = pnl ? imp_v : imp_k;
        const uint8_t *bits = pnl ? vb : kb;
        const double y0 = top + pnl * (panel_h + gap), y1 = y0 + panel_h; /* y1: the axis */
        double mx = 0;
        for (uint32_t l = 0; l < L; l++) mx = imp[l] > mx ? imp[l] : mx;
        if (!(mx > 0)) mx = 1;
        double step = svg_nice_step(mx, 4), ymax = ceil(mx / step) * step;
        /* grid and y ticks */
        for (double t = 0; t <= ymax * (1 + 1e-9); t += step) {
            double y = y1 - t / ymax * (panel_h - 16);
            char lab[32];
            svg_fmt_num(lab, sizeof lab, t);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n", left, y,
                    left + plot_w, y);
            svg_text(f, left - 6, y + 4, "end", 11, NULL, "%s", lab);
        }
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, y1, left + plot_w,
                y1);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, y0 + 4, left,
                y1);
        fprintf(f, "<text x=\"20\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 20 %.1f)\">"
                   "%s  ||dL/dW_%s||_F</text>\n",
                (y0 + y1) / 2, (y0 + y1) / 2, pnl ? "Values" : "Keys", pnl ? "v" : "k");
        for (uint32_t l = 0; l < L; l++) {
            double h = imp[l] / ymax * (panel_h - 16), x = left + l * slot + slot * 0.15, bw = slot * 0.7;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#333\" "
                       "stroke-width=\"0.5\"><title>layer %u: %s importance %.4g, %u bits</title></rect>\n",
                    x, y1 - h, bw, h, width_color(bits[l], pnl), l, pnl ? "V" : "K", imp[l], bits[l]);
            svg_text(f, x + bw / 2, y1 - h - 4, "middle", slot < 20 ? 8 : 11, "font-weight=\"bold\"", "%u", bits[l]);
            if (L <= 32 || l % 2 == 0) svg_text(f, x + bw / 2, y1 + 14, "middle", 10, NULL, "%u", l);
            if (slot >= 40) /* the measured relative MSE at 2 bits, under the layer number */
                svg_text(f, x + bw / 2, y1 + 27, "middle", 9, "fill=\"#666\"", "%.1e",
                         (pnl ? err_v : err_k)[(size_t)l * VKMIX_CALIB_N_WIDTHS]);
        }
        svg_text(f, left + plot_w / 2, y1 + (slot >= 40 ? 44 : 30), "middle", 11, NULL,
                 slot >= 40 ? "layer; grey: measured rel. MSE at 2 bits; above a bar: %s bits"
                            : "layer (number above a bar: %s bits)",
                 pnl ? "value" : "key");
        /* legend */
        double lx = left + plot_w + 18, ly = y0 + 12;
        svg_text(f, lx, ly, "start", 11, "font-weight=\"bold\"", "%s width", pnl ? "V" : "K");
        const uint32_t ws[5] = { 2, 3, 4, 8, 16 };
        for (int i = 0; i < 5; i++) {
            double yy = ly + 10 + i * 18;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"%s\" stroke=\"#333\" "
                       "stroke-width=\"0.5\"/>\n",
                    lx, yy, width_color(ws[i], pnl));
            svg_text(f, lx + 20, yy + 10, "start", 11, NULL, "%u bits", ws[i]);
        }
    }
    fputs("</svg>\n", f);
    if (fclose(f)) tool_die("cannot write '%s'", path);
}

/* ------------------------------------------------------------------ main */

/* The cache of a uniform spec with the profile's geometry at its context. */
static vkmix_error estimate_uniform(const opts *o, vkmix_context *ctx, const vkmix_model *m, const char *spec,
                                    vkmix_kv_memory *mem)
{
    vkmix_kv_config rc;
    char perr[512];
    if (vkmix_kv_config_parse(spec, &rc, perr, sizeof perr) != VKMIX_OK) tool_die("%s: %s", spec, perr);
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.kv_config = &rc;
    sp.n_ctx = o->ctx;
    sp.kv_group = o->group;
    sp.kv_window = o->window;
    sp.kv_sinks = o->sinks;
    vkmix_error e = vkmix_kv_memory_estimate(m, &sp, 0, mem);
    if (e != VKMIX_OK) tool_die("%s: %s: %s", spec, vkmix_strerror(e), vkmix_context_last_error(ctx));
    return e;
}

/* Before any calibration: --target-bits-of (or -ctk/-ctv) into bits, and a target
 * or budget below the smallest cache (2 bits everywhere, with this geometry and
 * context) refused. */
static void check_target(opts *o, vkmix_context *ctx, const vkmix_model *m)
{
    if (o->bits_of) {
        /* the reference cache's effective bits with the same geometry and context */
        vkmix_kv_memory rm;
        estimate_uniform(o, ctx, m, o->bits_of, &rm);
        if (o->joint) o->target_bits = (rm.k_bits + rm.v_bits) / 2;
        else {
            o->target_bits = rm.k_bits;
            o->target_bits_v = rm.v_bits;
        }
    }
    if (o->rule == RULE_KVMIX) return;
    vkmix_kv_memory lo;
    estimate_uniform(o, ctx, m, "k2v2", &lo);
    char geo[160], cs[32] = "the session's";
    if (o->ctx) snprintf(cs, sizeof cs, "%u", o->ctx);
    snprintf(geo, sizeof geo, "FP16 window %u, group %u, sinks %u, context %s", o->window ? o->window : 128,
             o->group ? o->group : 32, o->sinks, cs);
    if (o->rule == RULE_BUDGET) {
        if ((double)lo.total_bytes > o->budget_mib * 1048576.0)
            tool_die("--budget-mib %g is unreachable: the smallest cache, 2 bits everywhere, takes %.4f MiB (%s); "
                     "nothing was calibrated",
                     o->budget_mib, (double)lo.total_bytes / 1048576.0, geo);
        return;
    }
    const double tk = o->target_bits, tv = o->target_bits_v > 0 ? o->target_bits_v : o->target_bits;
    const int bad = o->joint ? (lo.k_bits + lo.v_bits) / 2 > tk : lo.k_bits > tk || lo.v_bits > tv;
    if (!bad) return;
    if (o->joint)
        tool_die("target %.4g bits (K and V jointly) is unreachable: the smallest cache, 2 bits everywhere, takes "
                 "%.4f effective bits (%s); nothing was calibrated",
                 tk, (lo.k_bits + lo.v_bits) / 2, geo);
    tool_die("target K %.4g / V %.4g bits is unreachable: the smallest cache, 2 bits everywhere, takes K %.4f / V "
             "%.4f effective bits (FP16 window and scales included; %s); nothing was calibrated",
             tk, tv, lo.k_bits, lo.v_bits, geo);
}

/* The ablation: the same scores, shuffled among layers (Fisher-Yates, seeded). */
static void ablate(float *use_k, float *use_v, uint32_t L, long seed)
{
    tool_rng ar = { (uint64_t)seed * 0x9E3779B97F4A7C15ull + 12345 };
    for (int kv = 0; kv < 2; kv++) {
        float *a = kv ? use_v : use_k;
        for (uint32_t i = L; i > 1; i--) {
            uint32_t j = (uint32_t)tool_rng_below(&ar, i);
            float t = a[i - 1];
            a[i - 1] = a[j];
            a[j] = t;
        }
    }
}

/* The report on standard output: the rule, per layer the scores, the measured errors and the
 * widths chosen, the effective bits. */
static void print_report(const opts *o, const vkmix_model_info *info, const char *hash, const char *rbuf, float loss,
                         double t_imp, double t_err, const float *imp_k, const float *imp_v, const float *err_k,
                         const float *err_v, const uint8_t *kb, const uint8_t *vb, uint32_t n_ctx,
                         const vkmix_kv_memory *mem, double objective)
{
    const uint32_t L = info->n_layer;
    printf("model %s (%s)  sha256 %s\n", tool_basename(o->model), info->name, hash);
    printf("loss %.4f over %u windows x %u tokens; importance %.1f s, measured error %.1f s (%u threads)\n", loss, o->N,
           o->T, t_imp, t_err, o->threads);
    if (o->rule == RULE_KVMIX) {
        uint32_t ni, ng;
        vkmix_calibrate_kvmix_counts(L, &ni, &ng);
        printf("rule kvmix: %u layers -> %u important + %u general promoted to K3 / V4 (ranked separately for K "
               "and V), %u at K2 / V2%s\n",
               L, ni, ng, L - ni - ng,
               L < 10 && L >= 2 ? "; fewer than 10 layers: one important layer instead of the paper's floor(0.1 n) = 0"
                                : "");
    } else printf("rule %s: dynamic program over the layers (exact bytes, grid 1/8192), then a greedy fill\n", rbuf);
    if (o->ablate >= 0) printf("ablation: importance scores shuffled among layers (seed %ld)\n", o->ablate);
    printf("\n%5s %11s %11s  %-31s  %-31s  %3s %3s\n", "layer", "I_K", "I_V", "rel. MSE of K at 2/3/4/8 bits",
           "rel. MSE of V at 2/3/4/8 bits", "K", "V");
    for (uint32_t l = 0; l < L; l++) {
        printf("%5u %11.4g %11.4g ", l, imp_k[l], imp_v[l]);
        for (int kv = 0; kv < 2; kv++) {
            const float *er = (kv ? err_v : err_k) + (size_t)l * VKMIX_CALIB_N_WIDTHS;
            printf(" %7.1e %7.1e %7.1e %7.1e", er[0], er[1], er[2], er[3]);
        }
        printf("  %3u %3u\n", kb[l], vb[l]);
    }
    printf("\neffective bits (metadata, FP16 window and sinks included) at context %u: K %.3f, V %.3f; cache %.3f MiB\n",
           n_ctx, mem->k_bits, mem->v_bits, (double)mem->total_bytes / 1048576.0);
    printf("objective sum importance x measured error: %.6g\n", objective);
}

/* The scores and their provenance (written with --scores, and into the profile). */
static cJSON *scores_json(const opts *o, const char *hash, int bos, float loss, uint32_t L, const float *imp_k,
                          const float *imp_v, const float *err_k, const float *err_v, const char *rbuf, uint32_t n_ctx,
                          const uint8_t *kb, const uint8_t *vb, const vkmix_kv_memory *mem, double objective)
{
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(sc, "format", "vkmix-calibration-scores");
    cJSON_AddStringToObject(sc, "model", tool_basename(o->model));
    cJSON_AddStringToObject(sc, "model_sha256", hash);
    cJSON_AddStringToObject(sc, "text", o->text);
    cJSON_AddNumberToObject(sc, "N", o->N);
    cJSON_AddNumberToObject(sc, "T", o->T);
    cJSON_AddNumberToObject(sc, "seed", (double)o->seed);
    cJSON_AddBoolToObject(sc, "bos", bos);
    cJSON_AddNumberToObject(sc, "loss", loss);
    cJSON_AddItemToObject(sc, "imp_k", float_array(imp_k, L));
    cJSON_AddItemToObject(sc, "imp_v", float_array(imp_v, L));
    cJSON *wl = cJSON_CreateArray();
    for (int i = 0; i < VKMIX_CALIB_N_WIDTHS; i++) cJSON_AddItemToArray(wl, cJSON_CreateNumber(vkmix_calibrate_width((uint32_t)i)));
    cJSON_AddItemToObject(sc, "err_widths", wl);
    cJSON *ek = cJSON_CreateArray(), *ev = cJSON_CreateArray();
    for (uint32_t l = 0; l < L; l++) {
        cJSON_AddItemToArray(ek, float_array(err_k + (size_t)l * VKMIX_CALIB_N_WIDTHS, VKMIX_CALIB_N_WIDTHS));
        cJSON_AddItemToArray(ev, float_array(err_v + (size_t)l * VKMIX_CALIB_N_WIDTHS, VKMIX_CALIB_N_WIDTHS));
    }
    cJSON_AddItemToObject(sc, "err_k", ek);
    cJSON_AddItemToObject(sc, "err_v", ev);
    cJSON_AddStringToObject(sc, "rule", rbuf);
    if (o->ablate >= 0) cJSON_AddNumberToObject(sc, "ablate_random_seed", (double)o->ablate);
    cJSON_AddNumberToObject(sc, "n_ctx", n_ctx);
    cJSON_AddNumberToObject(sc, "group", o->group);
    cJSON_AddNumberToObject(sc, "window", o->window);
    cJSON_AddNumberToObject(sc, "sinks", o->sinks);
    cJSON *kl = cJSON_CreateArray(), *vl = cJSON_CreateArray();
    for (uint32_t l = 0; l < L; l++) {
        cJSON_AddItemToArray(kl, cJSON_CreateNumber(kb[l]));
        cJSON_AddItemToArray(vl, cJSON_CreateNumber(vb[l]));
    }
    cJSON_AddItemToObject(sc, "k_bits", kl);
    cJSON_AddItemToObject(sc, "v_bits", vl);
    cJSON_AddNumberToObject(sc, "k_bits_effective", mem->k_bits);
    cJSON_AddNumberToObject(sc, "v_bits_effective", mem->v_bits);
    cJSON_AddNumberToObject(sc, "objective", objective);
    return sc;
}

/* Windows of the text, then importance and measured error on them. */
static void measure(opts *o, vkmix_context *ctx, vkmix_model *m, const vkmix_model_info *info, int *bos_out, float *loss,
                    float *imp_k, float *imp_v, float *err_k, float *err_v, double *t_imp, double *t_err)
{
    size_t n_text = 0;
    int32_t *all = tool_tokenize_file(m, o->text, 0, &n_text);
    const int bos = tool_wants_bos(m) && info->bos >= 0;
    const uint32_t body = o->T - (uint32_t)bos;
    if (n_text < body) tool_die("the text has %zu tokens, fewer than a window of %u", n_text, body);
    int32_t *toks = malloc((size_t)o->N * o->T * sizeof *toks);
    if (!toks) tool_die("out of memory");
    tool_rng rng = { o->seed };
    for (uint32_t s = 0; s < o->N; s++) {
        uint64_t start = tool_rng_below(&rng, n_text - body + 1);
        int32_t *w = toks + (size_t)s * o->T;
        if (bos) w[0] = info->bos;
        memcpy(w + bos, all + start, body * sizeof *w);
    }
    free(all);
    fprintf(stderr, "vkmix-calibrate: %s (%u layers, %u KV heads x %u), text %s: %zu tokens, %u windows of %u (seed %llu%s)\n",
            tool_basename(o->model), info->n_layer, info->n_head_kv, info->head_dim, o->text, n_text, o->N, o->T,
            (unsigned long long)o->seed, bos ? ", BOS first" : "");
    tool_progress pr;
    tool_progress_start(&pr, "importance");
    vkmix_error e = vkmix_calibrate_importance(m, toks, o->N, o->T, (int)o->threads, progress_cb, &pr, loss, imp_k, imp_v);
    if (e != VKMIX_OK) tool_die("importance: %s: %s", vkmix_strerror(e), vkmix_context_last_error(ctx));
    *t_imp = tool_now() - pr.t0;
    tool_progress_start(&pr, "kv error");
    e = vkmix_calibrate_kv_error(m, toks, o->N, o->T, o->group, o->sinks, (int)o->threads, progress_cb, &pr, err_k, err_v);
    if (e != VKMIX_OK) tool_die("measured error: %s: %s", vkmix_strerror(e), vkmix_context_last_error(ctx));
    *t_err = tool_now() - pr.t0;
    free(toks);
    *bos_out = bos;
}

/* n numbers of a JSON array into out, or die. */
static void json_floats(const cJSON *a, const char *what, uint32_t n, float *out)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != (int)n) tool_die("--reuse-scores: '%s' is not an array of %u numbers", what, n);
    for (uint32_t i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, (int)i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || x->valuedouble < 0)
            tool_die("--reuse-scores: '%s'[%u] is not a finite number >= 0", what, i);
        out[i] = (float)x->valuedouble;
    }
}

static double json_num(const cJSON *j, const char *key)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x)) tool_die("--reuse-scores: no number '%s'", key);
    return x->valuedouble;
}

/* An earlier --scores file: the same model (SHA-256), group and sinks (the measured
 * error depends on both); the provenance (text, N, T, seed) is taken from it. */
static void reuse_scores(opts *o, const char *hash, uint32_t L, int *bos, float *loss, float *imp_k, float *imp_v,
                         float *err_k, float *err_v)
{
    size_t len = 0;
    char *t = tool_read_file(o->reuse, &len);
    if (!t) tool_die("cannot read '%s'", o->reuse);
    cJSON *j = cJSON_Parse(t);
    free(t);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!j || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vkmix-calibration-scores"))
        tool_die("--reuse-scores: '%s' is not a vkmix-calibrate --scores file", o->reuse);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(j, "model_sha256");
    if (!cJSON_IsString(sha) || strcmp(sha->valuestring, hash))
        tool_die("--reuse-scores: '%s' was calibrated on another model (SHA-256 differs)", o->reuse);
    if ((uint32_t)json_num(j, "group") != o->group || (uint32_t)json_num(j, "sinks") != o->sinks)
        tool_die("--reuse-scores: '%s' measured its errors with group %u and sinks %u; give the same --group and --sinks",
                 o->reuse, (unsigned)json_num(j, "group"), (unsigned)json_num(j, "sinks"));
    json_floats(cJSON_GetObjectItemCaseSensitive(j, "imp_k"), "imp_k", L, imp_k);
    json_floats(cJSON_GetObjectItemCaseSensitive(j, "imp_v"), "imp_v", L, imp_v);
    const cJSON *ek = cJSON_GetObjectItemCaseSensitive(j, "err_k"), *ev = cJSON_GetObjectItemCaseSensitive(j, "err_v");
    if (!cJSON_IsArray(ek) || !cJSON_IsArray(ev) || cJSON_GetArraySize(ek) != (int)L || cJSON_GetArraySize(ev) != (int)L)
        tool_die("--reuse-scores: 'err_k' and 'err_v' need %u rows", L);
    for (uint32_t l = 0; l < L; l++) {
        json_floats(cJSON_GetArrayItem(ek, (int)l), "err_k", VKMIX_CALIB_N_WIDTHS, err_k + (size_t)l * VKMIX_CALIB_N_WIDTHS);
        json_floats(cJSON_GetArrayItem(ev, (int)l), "err_v", VKMIX_CALIB_N_WIDTHS, err_v + (size_t)l * VKMIX_CALIB_N_WIDTHS);
    }
    *loss = (float)json_num(j, "loss");
    *bos = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "bos"));
    o->N = (uint32_t)json_num(j, "N");
    o->T = (uint32_t)json_num(j, "T");
    o->seed = (uint64_t)json_num(j, "seed");
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(j, "text");
    static char text[1024];
    snprintf(text, sizeof text, "%s", cJSON_IsString(tx) ? tx->valuestring : "?");
    o->text = text;
    cJSON_Delete(j);
    fprintf(stderr, "vkmix-calibrate: importance and measured errors from %s (text %s, %u windows of %u)\n", o->reuse,
            o->text, o->N, o->T);
}

int main(int argc, char **argv)
{
    tool_name = "vkmix-calibrate";
    opts o;
    parse(argc, argv, &o);

    char hash[65];
    if (sha256_file(o.model, hash)) tool_die("cannot read '%s'", o.model);
    vkmix_context *ctx = tool_context(o.device);
    vkmix_model *m = tool_model(ctx, o.model);
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    const uint32_t L = info.n_layer;
    if (o.ctx) tool_warn_context(tool_name, &info, o.ctx);
    check_target(&o, ctx, m);
    if (o.compat.fa_given || o.compat.ngl_given)
        fprintf(stderr, "vkmix-calibrate: note: -fa and -ngl are accepted and change nothing\n");

    /* importance and measured error: computed, or an earlier calibration's */
    double t0 = tool_now(), t_imp = 0, t_err = 0;
    float loss = 0;
    int bos = 0;
    float *imp_k = calloc(L, sizeof(float)), *imp_v = calloc(L, sizeof(float));
    float *err_k = calloc((size_t)L * VKMIX_CALIB_N_WIDTHS, sizeof(float));
    float *err_v = calloc((size_t)L * VKMIX_CALIB_N_WIDTHS, sizeof(float));
    if (!imp_k || !imp_v || !err_k || !err_v) tool_die("out of memory");
    if (o.reuse) reuse_scores(&o, hash, L, &bos, &loss, imp_k, imp_v, err_k, err_v);
    else measure(&o, ctx, m, &info, &bos, &loss, imp_k, imp_v, err_k, err_v, &t_imp, &t_err);

    /* the ablation: same scores, shuffled among layers */
    float *use_k = malloc(L * sizeof(float)), *use_v = malloc(L * sizeof(float));
    if (!use_k || !use_v) tool_die("out of memory");
    memcpy(use_k, imp_k, L * sizeof(float));
    memcpy(use_v, imp_v, L * sizeof(float));
    if (o.ablate >= 0) ablate(use_k, use_v, L, o.ablate);

    /* allocation */
    vkmix_calib_alloc_params ap;
    memset(&ap, 0, sizeof ap);
    ap.rule = o.rule == RULE_KVMIX ? VKMIX_CALIB_RULE_KVMIX : o.rule == RULE_TARGET ? VKMIX_CALIB_RULE_TARGET_BITS
                                                                                     : VKMIX_CALIB_RULE_BUDGET;
    ap.target_bits = o.target_bits;
    ap.target_bits_v = o.target_bits_v;
    ap.joint = o.joint;
    ap.budget_bytes = (uint64_t)(o.budget_mib * 1048576.0);
    ap.n_ctx = o.ctx;
    ap.group = o.group;
    ap.window = o.window;
    ap.sinks = o.sinks;
    ap.imp_k = use_k;
    ap.imp_v = use_v;
    ap.err_k = err_k;
    ap.err_v = err_v;
    vkmix_kv_config prof;
    const uint8_t *kb = prof.k_bits, *vb = prof.v_bits;
    vkmix_kv_memory mem;
    double objective = 0;
    vkmix_error e = vkmix_calibrate_allocate(m, &ap, &prof, &mem, &objective);
    if (e != VKMIX_OK) tool_die("allocation: %s: %s", vkmix_strerror(e), vkmix_context_last_error(ctx));
    const uint32_t n_ctx = o.ctx ? o.ctx : (info.n_ctx_train && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096);

    char rbuf[128];
    rule_text(&o, rbuf, sizeof rbuf);
    print_report(&o, &info, hash, rbuf, loss, t_imp, t_err, imp_k, imp_v, err_k, err_v, kb, vb, n_ctx, &mem, objective);
    fprintf(stderr, "vkmix-calibrate: done in %.1f s\n", tool_now() - t0);

    cJSON *sc = scores_json(&o, hash, bos, loss, L, imp_k, imp_v, err_k, err_v, rbuf, n_ctx, kb, vb, &mem, objective);
    if (o.scores) {
        char *s = cJSON_Print(sc);
        FILE *f = fopen(o.scores, "w");
        if (!f || !s || fputs(s, f) < 0 || fputc('\n', f) == EOF || fclose(f)) tool_die("cannot write '%s'", o.scores);
        free(s);
    }
    if (o.out) {
        /* the provenance: the scores plus the tool's name and version */
        cJSON_AddStringToObject(sc, "tool", "vkmix-calibrate " VKMIX_VERSION_STRING);
        cJSON_DeleteItemFromObjectCaseSensitive(sc, "format");
        char *s = cJSON_PrintUnformatted(sc);
        if (!s) tool_die("out of memory");
        char perr[512];
        e = vkmix_kv_profile_write(&prof, o.out, s, perr, sizeof perr);
        free(s);
        if (e != VKMIX_OK) tool_die("profile: %s: %s", vkmix_strerror(e), perr);
        fprintf(stderr, "vkmix-calibrate: wrote %s\n", o.out);
    }
    if (o.svg) write_svg(o.svg, tool_basename(o.model), rbuf, L, imp_k, imp_v, err_k, err_v, kb, vb, &mem, n_ctx);
    cJSON_Delete(sc);

    free(imp_k);
    free(imp_v);
    free(err_k);
    free(err_v);
    free(use_k);
    free(use_v);
    vkmix_model_free(m);
    uint32_t vmsg = vkmix_context_validation_messages(ctx);
    vkmix_context_free(ctx);
    if (vmsg) {
        fprintf(stderr, "%s: the Vulkan validation layer reported %u message(s)\n", tool_name, vmsg);
        return 2;
    }
    return 0;
}
