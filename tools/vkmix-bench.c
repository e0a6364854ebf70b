/* vkmix-bench: the headless benchmark (public API only).
 *
 *   vkmix-bench [-m FILE | --synthetic NAME[,NAME] [--wtype f16,q4_0]] [tests] [output]
 *   vkmix-bench kernels [options]         KV quantize/dequantize against a copy kernel
 *
 * Tests (comma lists, as in llama-bench): -p prompt tokens, -n generated tokens,
 * -d depth already in the cache (filled with random keys and values), -b sequences
 * decoding together ("max": as many as fit), --kv configs or profile files,
 * -r repetitions; --attn times decode attention alone against a copy kernel.
 * Every (model, kv, depth) first checks decode attention against a CPU reference,
 * so that a fast wrong kernel cannot post a number.
 * Output: a Markdown table, -o json / -o csv, --svg FILE (t/s and KV MiB against depth). */
#include "common/tool.c" /* first: it sets the feature-test macros */
#include "common/llama_flags.c" /* --kv-policy, as vkmix and vkmix-eval read it */
#include "vkmix_bench.h"

#define MAXL 16

typedef struct {
    int device;
    const char *format, *svg, *model_path;
    char *synth[MAXL];
    int n_synth;
    char *wtypes[MAXL];
    int n_wtypes;
    uint32_t p[MAXL], n[MAXL], d[MAXL], b[MAXL];
    int np, nn, nd, nb;
    char *kv[MAXL];
    const char *kv_policy;  /* --kv-policy, NULL: not given */
    int nkv;
    uint32_t reps, group, window, sinks;
    int attn;
    int variants[4], n_variants;   /* --attn: kernels to time (vkmix_attn_variant) */
} opts;

typedef struct {
    char model[96], kv[64], test[32];
    uint32_t depth, batch;
    double k_bits, v_bits, kv_mib, mean, sd; /* t/s (or GB/s in attn mode) */
    double us, copy_gbps, ratio, check;
    double read_gbps, read_frac;   /* attn: the read kernel of the same run, and the fraction of it */
    double cache_read_gbps;        /* attn: the read kernel over the caches' own buffers */
    char variant[16];
    uint32_t dispatches;
    double disp, barr;        /* decode: dispatches and barriers recorded per generated token */
} row;

static row *rows;
static int n_rows, cap_rows;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkmix-bench [-m FILE | --synthetic NAMES [--wtype f16,q4_0]] [options]\n"
            "       vkmix-bench kernels [--heads N --tokens N --head-dim N --group N --bits LIST -r N -o FMT]\n"
            "       vkmix-bench matvec [--wtype LIST --shapes RxC,... --tokens LIST --sweep -r N -o FMT]\n"
            "                          weight products per type against the read kernel (default: every type at\n"
            "                          4096x4096, 14336x4096, 4096x14336, 128256x4096; --mv-wg/--mv-rows/--mv-unroll LIST;\n"
            "                          --mv-max-tok N: tokens per dispatch up to 16 (default 4 integer, 8 float types);\n"
            "                          more than 16 tokens: the prefill kernel, --coopmat or --scalar)\n"
            "  --synthetic LIST  random-weight models with real shapes: %s\n"
            "  -p LIST           prompt lengths to time (prefill), default none\n"
            "  -n LIST           generated tokens to time (decode), default 32\n"
            "  -d LIST           depth already in the cache, default 0\n"
            "  -b LIST           sequences decoding together, or 'max' (as many as fit), default 1\n"
            "  --kv LIST         KV configs: f16, kXvY (X,Y in 2,3,4,8,16), or profile .json files; default f16\n"
            "  --kv-group N --kv-window N --kv-sinks N   cache options for quantized configs\n"
            "  --kv-policy P[:opts]  policy of every quantized --kv item: layer, mikv, mixkvq (e.g.\n"
            "                    mikv:frac=0.05, mixkvq:kbits=3; docs/KVCACHE.md)\n"
            "  -r N              repetitions, default 3\n"
            "  --attn            time decode attention alone (GB/s against the read kernel of the same run);\n"
            "                    -b LIST sets the batch (one dispatch set for all its sequences)\n"
            "  --attn-variants L kernels to time with --attn: v2 (default), v1 (previous kernels), v2-f32\n"
            "  -o md|json|csv    output format, default md\n"
            "  --svg FILE        chart of decode t/s and KV MiB against depth\n"
            "  --device N, --list-devices\n",
            vkmix_synthetic_models());
}

static int split_list(char *s, char **out, int cap)
{
    int n = 0;
    for (char *t = strtok(s, ","); t && n < cap; t = strtok(NULL, ",")) out[n++] = t;
    return n;
}

static int parse_u32_list(const char *s, uint32_t *out, int cap, int allow_max)
{
    int n = 0;
    while (*s && n < cap) {
        if (allow_max && !strncmp(s, "max", 3)) {
            out[n++] = 0;
            s += 3;
        } else {
            char *end;
            long v = strtol(s, &end, 10);
            if (end == s || v < 0 || v > 100000000) return -1;
            out[n++] = (uint32_t)v;
            s = end;
        }
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

static void add_row(const row *r)
{
    if (n_rows == cap_rows) {
        cap_rows = cap_rows ? cap_rows * 2 : 64;
        rows = realloc(rows, cap_rows * sizeof *rows);
        if (!rows) { fprintf(stderr, "vkmix-bench: out of memory\n"); exit(1); }
    }
    rows[n_rows++] = *r;
}

static void stats(const double *x, uint32_t n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (uint32_t i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (uint32_t i = 0; i < n; i++) q += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static void session_params(const opts *o, const char *kv, uint32_t n_ctx, vkmix_session_params *p)
{
    vkmix_session_default_params(p);
    p->n_ctx = n_ctx;
    p->kv = kv; /* f16, kXvY[:options] or a profile .json: the library's parser */
    p->kv_group = o->group;
    p->kv_window = o->window;
    p->kv_sinks = o->sinks;
}

/* Sessions for a batch: b of them, or as many as fit when b == 0. */
static uint32_t make_sessions(vkmix_context *ctx, vkmix_model *m, const vkmix_session_params *sp, uint32_t b,
                              vkmix_session ***out)
{
    uint32_t want = b;
    if (!b) {
        vkmix_device_info di;
        vkmix_context_device_info(ctx, &di);
        vkmix_model_info mi;
        vkmix_model_get_info(m, &mi);
        vkmix_kv_memory mem;
        if (vkmix_kv_memory_estimate(m, sp, 0, &mem) != VKMIX_OK) return 0;
        double per = (double)mem.total_bytes + 8.0 * 1048576.0; /* + activations of one row and partials */
        double avail = (double)di.device_local_bytes - (double)mi.weight_bytes - 2.0 * 1073741824.0;
        want = avail > per ? (uint32_t)(avail / per) : 1;
        if (want > 1024) want = 1024;
    }
    vkmix_session **ss = calloc(want, sizeof *ss);
    uint32_t n = 0;
    /* the first session leads the batch: it holds the activations, logits and attention
     * partials of every row; the others only their caches (one row of activations) */
    vkmix_session_params lead = *sp, rest = *sp;
    lead.batch_rows = want;
    rest.n_batch = 1;
    while (n < want && vkmix_session_create(m, n ? &rest : &lead, &ss[n]) == VKMIX_OK) n++;
    if (n < want && b) {
        fprintf(stderr, "vkmix-bench: only %u of %u sessions fit: %s\n", n, want, vkmix_context_last_error(ctx));
    }
    *out = ss;
    return n;
}

static void free_sessions(vkmix_session **ss, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) vkmix_session_free(ss[i]);
    free(ss);
}

/* --attn: decode attention alone for each batch size and kernel variant */
static int bench_attn(const opts *o, vkmix_context *ctx, vkmix_model *m, const char *mname, const char *kv, uint32_t d,
                      const vkmix_session_params *sp, const vkmix_kv_memory *mem_d)
{
    int rc = 0;
    for (int bi = 0; bi < o->nb; bi++) {
        vkmix_session **ss = NULL;
        uint32_t b = make_sessions(ctx, m, sp, o->b[bi], &ss);
        if (!b) {
            fprintf(stderr, "vkmix-bench: no session fits: %s\n", vkmix_context_last_error(ctx));
            free(ss);
            rc = 1;
            continue;
        }
        vkmix_error e = VKMIX_OK;
        for (uint32_t i = 0; i < b && e == VKMIX_OK; i++) e = vkmix_session_fill_synthetic(ss[i], d ? d : 1, 1 + i);
        for (int vi = 0; vi < o->n_variants && e == VKMIX_OK; vi++) {
            vkmix_attn_bench ab;
            e = vkmix_bench_attention(ss, b, o->reps * 4, (vkmix_attn_variant)o->variants[vi], &ab);
            if (e != VKMIX_OK) break;
            row r;
            memset(&r, 0, sizeof r);
            snprintf(r.model, sizeof r.model, "%s", mname);
            snprintf(r.kv, sizeof r.kv, "%s", kv);
            snprintf(r.variant, sizeof r.variant, "%s", vkmix_attn_variant_name((vkmix_attn_variant)o->variants[vi]));
            snprintf(r.test, sizeof r.test, "attn@d%u", d);
            r.depth = d;
            r.batch = b;
            r.k_bits = mem_d->k_bits;
            r.v_bits = mem_d->v_bits;
            r.kv_mib = (double)mem_d->total_bytes / 1048576.0;
            r.check = ab.check_rel_err;
            r.us = ab.us_per_layer;
            r.mean = ab.gbps;
            r.copy_gbps = ab.copy_gbps;
            r.ratio = ab.gbps / ab.copy_gbps;
            r.read_gbps = ab.read_gbps;
            r.read_frac = ab.gbps / ab.read_gbps;
            r.cache_read_gbps = ab.cache_read_gbps;
            r.dispatches = ab.dispatches_per_layer;
            add_row(&r);
            fprintf(stderr, "vkmix-bench: %s %s d%u b%u %s: %.2f us/layer, %.0f GB/s, %.2f of read (%.0f GB/s; over the cache buffers %.0f)\n",
                    mname, kv, d, b, r.variant, r.us, r.mean, r.read_frac, r.read_gbps, r.cache_read_gbps);
        }
        if (e != VKMIX_OK) {
            fprintf(stderr, "vkmix-bench: %s %s depth %u batch %u: %s\n", mname, kv, d, b, vkmix_context_last_error(ctx));
            rc = 1;
        }
        free_sessions(ss, b);
    }
    return rc;
}

/* ------------------------------------------------------------------ progress on stderr */

/* A bar on a terminal, lines otherwise (tool_progress): one step per timed test. */
static tool_progress g_pr;
static uint64_t g_done, g_total;

/* The timed tests of one (model, cache, depth). */
static uint64_t tests_per_block(const opts *o)
{
    if (o->attn) return 1;
    uint64_t n = 0;
    for (int i = 0; i < o->np; i++) n += o->p[i] != 0;
    for (int i = 0; i < o->nn; i++) n += (uint64_t)(o->n[i] != 0) * (uint64_t)o->nb;
    return n;
}

static void bench_step(const char *mname, const char *kv, const char *test, uint32_t batch)
{
    static char what[200];
    g_done++;
    if (batch > 1) snprintf(what, sizeof what, "%s, %s, %s x%u", mname, kv, test, batch);
    else snprintf(what, sizeof what, "%s, %s, %s", mname, kv, test);
    g_pr.what = what;
    if (g_total) tool_progress_update(&g_pr, g_done, g_total);
}

static int bench_model(const opts *o, vkmix_context *ctx, vkmix_model *m, const char *mname)
{
    vkmix_model_info mi;
    vkmix_model_get_info(m, &mi);
    int rc = 0;
    const uint64_t base = g_done, per_block = tests_per_block(o);
    for (int ki = 0; ki < o->nkv; ki++)
        for (int di = 0; di < o->nd; di++) {
            g_done = base + (uint64_t)(ki * o->nd + di) * per_block; /* a block that failed early skips its tests */
            uint32_t d = o->d[di];
            uint32_t need = 1;
            for (int i = 0; i < o->np; i++) need = o->p[i] + 1 > need ? o->p[i] + 1 : need;
            for (int i = 0; i < o->nn; i++) need = o->n[i] + 1 > need ? o->n[i] + 1 : need;
            vkmix_session_params sp;
            session_params(o, o->kv[ki], d + need + 1, &sp);
            vkmix_kv_memory mem, mem_d;
            if (vkmix_kv_memory_estimate(m, &sp, 0, &mem) != VKMIX_OK ||
                vkmix_kv_memory_estimate(m, &sp, d ? d : 1, &mem_d) != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: %s: %s\n", o->kv[ki], vkmix_context_last_error(ctx));
                rc = 1;
                continue;
            }
            /* check (and, with --attn, time) decode attention at this depth */
            if (o->attn) {
                rc |= bench_attn(o, ctx, m, mname, o->kv[ki], d, &sp, &mem_d);
                char t[32];
                snprintf(t, sizeof t, "attention@d%u", d);
                bench_step(mname, o->kv[ki], t, 1);
                continue;
            }
            vkmix_session *s = NULL;
            if (vkmix_session_create(m, &sp, &s) != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: session: %s\n", vkmix_context_last_error(ctx));
                rc = 1;
                continue;
            }
            vkmix_attn_bench ab;
            vkmix_error e = vkmix_session_fill_synthetic(s, d ? d : 1, 1);
            if (e == VKMIX_OK) e = vkmix_bench_attention(&s, 1, 1, VKMIX_ATTN_V2, &ab);
            vkmix_session_free(s);
            if (e != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: %s %s depth %u: %s\n", mname, o->kv[ki], d, vkmix_context_last_error(ctx));
                rc = 1;
                continue;
            }
            row r;
            memset(&r, 0, sizeof r);
            snprintf(r.model, sizeof r.model, "%s", mname);
            snprintf(r.kv, sizeof r.kv, "%s", o->kv[ki]);
            r.depth = d;
            r.k_bits = mem_d.k_bits; /* at this depth, metadata included */
            r.v_bits = mem_d.v_bits;
            r.kv_mib = (double)mem_d.total_bytes / 1048576.0;
            r.check = ab.check_rel_err;
            /* prefill tests */
            for (int pi = 0; pi < o->np; pi++) {
                uint32_t p = o->p[pi];
                if (!p) continue;
                double *ts = calloc(o->reps, sizeof *ts);
                int32_t *toks = malloc(p * 4);
                for (uint32_t i = 0; i < p; i++) toks[i] = 3 + (int32_t)((i * 7919u) % (mi.n_vocab - 3));
                vkmix_session *ps = NULL;
                e = vkmix_session_create(m, &sp, &ps);
                for (uint32_t rep = 0; rep <= o->reps && e == VKMIX_OK; rep++) {
                    if ((e = vkmix_session_fill_synthetic(ps, d, 2 + rep)) != VKMIX_OK) break;
                    double t0 = tool_now();
                    e = vkmix_session_eval(ps, toks, p, NULL, 0);
                    if (rep) ts[rep - 1] = p / (tool_now() - t0); /* rep 0 warms up */
                }
                vkmix_session_free(ps);
                if (e != VKMIX_OK) {
                    fprintf(stderr, "vkmix-bench: pp%u: %s\n", p, vkmix_context_last_error(ctx));
                    rc = 1;
                } else {
                    snprintf(r.test, sizeof r.test, "pp%u@d%u", p, d);
                    r.batch = 1;
                    stats(ts, o->reps, &r.mean, &r.sd);
                    add_row(&r);
                }
                free(ts);
                free(toks);
                char t[32];
                snprintf(t, sizeof t, "pp%u@d%u", p, d);
                bench_step(mname, o->kv[ki], t, 1);
            }
            /* decode tests */
            for (int ni = 0; ni < o->nn; ni++)
                for (int bi = 0; bi < o->nb; bi++) {
                    uint32_t n = o->n[ni];
                    if (!n) continue;
                    vkmix_session **ss = NULL;
                    uint32_t b = make_sessions(ctx, m, &sp, o->b[bi], &ss);
                    if (!b) {
                        fprintf(stderr, "vkmix-bench: no session fits: %s\n", vkmix_context_last_error(ctx));
                        free(ss);
                        rc = 1;
                        bench_step(mname, o->kv[ki], "(failed)", 1);
                        continue;
                    }
                    double *ts = calloc(o->reps, sizeof *ts);
                    int32_t *cur = malloc(b * 4);
                    e = VKMIX_OK;
                    for (uint32_t rep = 0; rep <= o->reps && e == VKMIX_OK; rep++) {
                        for (uint32_t i = 0; i < b && e == VKMIX_OK; i++) e = vkmix_session_fill_synthetic(ss[i], d, 3 + i);
                        for (uint32_t i = 0; i < b; i++) cur[i] = 3 + (int32_t)(i % (mi.n_vocab - 3));
                        double t0 = tool_now();
                        for (uint32_t k = 0; k < n && e == VKMIX_OK; k++)
                            e = b == 1 ? vkmix_session_eval(ss[0], cur, 1, NULL, 0) : vkmix_batch_decode(ss, cur, b, NULL);
                        if (rep) ts[rep - 1] = (double)n * b / (tool_now() - t0);
                    }
                    if (e != VKMIX_OK) {
                        fprintf(stderr, "vkmix-bench: tg%u b%u: %s\n", n, b, vkmix_context_last_error(ctx));
                        rc = 1;
                    } else {
                        uint32_t nd = 0, nbar = 0;   /* the last step's recording, per token of the batch */
                        vkmix_session_step_counts(ss[0], &nd, &nbar);
                        r.disp = (double)nd / b;
                        r.barr = (double)nbar / b;
                        snprintf(r.test, sizeof r.test, "tg%u@d%u", n, d);
                        r.batch = b;
                        stats(ts, o->reps, &r.mean, &r.sd);
                        add_row(&r);
                    }
                    free(ts);
                    free(cur);
                    free_sessions(ss, b);
                    char t[32];
                    snprintf(t, sizeof t, "tg%u@d%u", n, d);
                    bench_step(mname, o->kv[ki], t, b);
                }
            fflush(stdout);
        }
    g_done = base + (uint64_t)o->nkv * o->nd * per_block;
    return rc;
}

static void print_rows(const opts *o, const char *device)
{
    if (!strcmp(o->format, "json")) {
        printf("{\"device\": \"%s\", \"results\": [\n", device);
        for (int i = 0; i < n_rows; i++) {
            row *r = &rows[i];
            printf("  {\"model\": \"%s\", \"kv\": \"%s\", \"k_bits\": %.4f, \"v_bits\": %.4f, \"kv_mib\": %.3f, "
                   "\"test\": \"%s\", \"depth\": %u, \"batch\": %u, \"%s\": %.4f, \"sd\": %.4f, \"us_per_layer\": %.4f, "
                   "\"copy_gbps\": %.2f, \"ratio_vs_copy\": %.4f, \"read_gbps\": %.2f, \"fraction_of_read\": %.4f, "
                   "\"cache_read_gbps\": %.2f, \"variant\": \"%s\", \"dispatches_per_layer\": %u, \"check_rel_err\": %.3e, "
                   "\"dispatches_per_token\": %.2f, \"barriers_per_token\": %.2f}%s\n",
                   r->model, r->kv, r->k_bits, r->v_bits, r->kv_mib, r->test, r->depth, r->batch,
                   o->attn ? "gbps" : "tokens_per_s", r->mean, r->sd, r->us, r->copy_gbps, r->ratio, r->read_gbps,
                   r->read_frac, r->cache_read_gbps, r->variant, r->dispatches, r->check, r->disp, r->barr,
                   i + 1 < n_rows ? "," : "");
        }
        printf("]}\n");
    } else if (!strcmp(o->format, "csv")) {
        printf("device,model,kv,k_bits,v_bits,kv_mib,test,depth,batch,%s,sd,us_per_layer,copy_gbps,ratio_vs_copy,check_rel_err,"
               "dispatches_per_token,barriers_per_token\n",
               o->attn ? "gbps" : "tokens_per_s");
        for (int i = 0; i < n_rows; i++) {
            row *r = &rows[i];
            printf("\"%s\",\"%s\",%s,%.4f,%.4f,%.3f,%s,%u,%u,%.4f,%.4f,%.4f,%.2f,%.4f,%.3e,%.2f,%.2f\n", device, r->model,
                   r->kv, r->k_bits, r->v_bits, r->kv_mib, r->test, r->depth, r->batch, r->mean, r->sd, r->us, r->copy_gbps,
                   r->ratio, r->check, r->disp, r->barr);
        }
    } else {
        printf("device: %s\n\n", device);
        if (o->attn) {
            printf("| model | kv | K bits | V bits | KV MiB | test | batch | kernel | us/layer | GB/s | read GB/s | of read | copy GB/s | check |\n");
            printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            for (int i = 0; i < n_rows; i++) {
                row *r = &rows[i];
                char chk[32];
                if (r->check < 0) snprintf(chk, sizeof chk, "its tests"); /* a policy: checked by its own tests */
                else snprintf(chk, sizeof chk, "%.1e", r->check);
                printf("| %s | %s | %.2f | %.2f | %.1f | %s | %u | %s | %.2f | %.0f | %.0f | %.2f | %.0f | %s |\n", r->model,
                       r->kv, r->k_bits, r->v_bits, r->kv_mib, r->test, r->batch, r->variant, r->us, r->mean, r->read_gbps,
                       r->read_frac, r->copy_gbps, chk);
            }
        } else {
            printf("| model | kv | K bits | V bits | KV MiB | test | batch | t/s | dispatches/token | barriers/token |\n"
                   "|---|---|---|---|---|---|---|---|---|---|\n");
            for (int i = 0; i < n_rows; i++) {
                row *r = &rows[i];
                printf("| %s | %s | %.2f | %.2f | %.1f | %s | %u | %.2f ± %.2f | ", r->model, r->kv, r->k_bits, r->v_bits,
                       r->kv_mib, r->test, r->batch, r->mean, r->sd);
                if (r->disp > 0) printf("%.1f | %.1f |\n", r->disp, r->barr);
                else printf("- | - |\n");
            }
        }
    }
}

/* decode t/s (left axis, solid) and KV MiB (right axis, dashed) against depth, a line per kv config */
static void write_svg(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "vkmix-bench: cannot write %s\n", path); return; }
    double maxd = 1, maxt = 1, maxm = 1;
    for (int i = 0; i < n_rows; i++) {
        if (strncmp(rows[i].test, "tg", 2) || rows[i].batch != 1) continue;
        if (rows[i].depth > maxd) maxd = rows[i].depth;
        if (rows[i].mean > maxt) maxt = rows[i].mean;
        if (rows[i].kv_mib > maxm) maxm = rows[i].kv_mib;
    }
    const double W = 720, H = 420, L = 70, R = 80, T = 40, B = 60, pw = W - L - R, ph = H - T - B;
    static const char *col[] = { "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f" };
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">decode tokens/s (solid) and KV MiB (dashed) against depth</text>\n", W / 2);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T + ph, L + pw, T + ph);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L, T, L, T + ph);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L + pw, T, L + pw, T + ph);
    for (int k = 0; k <= 4; k++) {
        double y = T + ph - ph * k / 4.0;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3g</text>\n", L - 6, y + 4, maxt * k / 4.0);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">%.3g</text>\n", L + pw + 6, y + 4, maxm * k / 4.0);
        double x = L + pw * k / 4.0;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", x, T + ph + 18, maxd * k / 4.0);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">depth (tokens in the cache)</text>\n", L + pw / 2, H - 18);
    fprintf(f, "<text transform=\"translate(18,%.0f) rotate(-90)\" text-anchor=\"middle\">decode tokens/s</text>\n", T + ph / 2);
    fprintf(f, "<text transform=\"translate(%.0f,%.0f) rotate(90)\" text-anchor=\"middle\">KV MiB at that depth</text>\n", W - 14, T + ph / 2);
    char seen[16][160];
    int ns = 0;
    for (int i = 0; i < n_rows; i++) {
        if (strncmp(rows[i].test, "tg", 2) || rows[i].batch != 1) continue;
        char key[160];
        snprintf(key, sizeof key, "%s %s", rows[i].model, rows[i].kv);
        int found = 0;
        for (int j = 0; j < ns; j++) found |= !strcmp(seen[j], key);
        if (found || ns == 16) continue;
        snprintf(seen[ns], sizeof seen[ns], "%s", key);
        const char *c = col[ns % 8];
        for (int pass = 0; pass < 2; pass++) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", c, pass ? " stroke-dasharray=\"6,4\"" : "");
            for (int j = 0; j < n_rows; j++) {
                char k2[160];
                snprintf(k2, sizeof k2, "%s %s", rows[j].model, rows[j].kv);
                if (strcmp(k2, key) || strncmp(rows[j].test, "tg", 2) || rows[j].batch != 1) continue;
                double v = pass ? rows[j].kv_mib / maxm : rows[j].mean / maxt;
                fprintf(f, "%.1f,%.1f ", L + pw * rows[j].depth / maxd, T + ph - ph * v);
            }
            fprintf(f, "\"/>\n");
        }
        fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                L + 10, T + 8 + 16.0 * ns, c, L + 30, T + 13 + 16.0 * ns, key);
        ns++;
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

/* ------------------------------------------------------------------ kernels mode */

static int run_kernels(int argc, char **argv)
{
    uint32_t heads = 8, tokens = 0, head_dim = 128, group = 32, reps = 20, bits[8] = { 2, 3, 4, 8 };
    int n_bits = 4, device = -1;
    const char *format = "md";
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "vkmix-bench: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--heads")) heads = (uint32_t)atoi(v);
        else if (!strcmp(a, "--tokens")) tokens = (uint32_t)atoi(v);
        else if (!strcmp(a, "--head-dim")) head_dim = (uint32_t)atoi(v);
        else if (!strcmp(a, "--group")) group = (uint32_t)atoi(v);
        else if (!strcmp(a, "-r")) reps = (uint32_t)atoi(v);
        else if (!strcmp(a, "-o")) format = v;
        else if (!strcmp(a, "--device")) device = atoi(v);
        else if (!strcmp(a, "--bits")) {
            n_bits = parse_u32_list(v, bits, 8, 0);
            if (n_bits <= 0) { fprintf(stderr, "vkmix-bench: bad --bits %s\n", v); return 2; }
        } else { fprintf(stderr, "vkmix-bench: unknown option %s\n", a); return 2; }
    }
    if (!heads || !head_dim || !group || !reps) { fprintf(stderr, "vkmix-bench: sizes must be positive\n"); return 2; }
    vkmix_context *ctx = tool_context(device);
    vkmix_error e;
    vkmix_device_info info;
    vkmix_context_device_info(ctx, &info);
    if (!tokens) tokens = info.type == VKMIX_DEVICE_CPU ? 8192 : 131072;
    tokens = tokens / group * group;
    int md = !strcmp(format, "md"), js = !strcmp(format, "json");
    if (md) printf("device: %s\nshape: %u heads x %u tokens x head_dim %u, group %u, median of %u\n\n"
                   "| kernel | bits | MiB moved | time (us) | GB/s | vs copy |\n|---|---|---|---|---|---|\n",
                   info.name, heads, tokens, head_dim, group, reps);
    else if (js) printf("{\"device\": \"%s\", \"heads\": %u, \"tokens\": %u, \"head_dim\": %u, \"group\": %u, \"results\": [",
                        info.name, heads, tokens, head_dim, group);
    else printf("device,kernel,kind,bits,bytes,time_us,gbps,ratio_vs_copy\n");
    int first = 1, rc = 0;
    for (int bi = 0; bi < n_bits && !rc; bi++)
        for (int kind = 0; kind < 2 && !rc; kind++) {
            vkmix_kvq_shape s = { kind ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, bits[bi], group, head_dim, heads, tokens };
            vkmix_kvq_bench b;
            if ((e = vkmix_kvq_bench_run(ctx, &s, reps, &b)) != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(ctx));
                rc = 1;
                break;
            }
            double copy = b.copy_bytes / (b.copy_ms * 1e6);
            struct { const char *name; double ms, bytes; } rs[4] = {
                { "copy", b.copy_ms, b.copy_bytes }, { "read", b.read_ms, b.read_bytes },
                { "quantize", b.quant_ms, b.quant_bytes }, { "dequantize", b.dequant_ms, b.dequant_bytes } };
            const char *kn = kind ? "values" : "keys";
            for (int r = 0; r < 4; r++) {
                double g = rs[r].bytes / (rs[r].ms * 1e6);
                if (md) printf("| %s %s | %u | %.1f | %.1f | %.1f | %.2f |\n", rs[r].name, r > 1 ? kn : "", bits[bi],
                               rs[r].bytes / 1048576.0, rs[r].ms * 1e3, g, g / copy);
                else if (js) {
                    printf("%s{\"kernel\": \"%s\", \"kind\": \"%s\", \"bits\": %u, \"bytes\": %.0f, \"time_us\": %.3f, "
                           "\"gbps\": %.2f, \"ratio_vs_copy\": %.4f}", first ? "" : ", ", rs[r].name, kn, bits[bi],
                           rs[r].bytes, rs[r].ms * 1e3, g, g / copy);
                    first = 0;
                } else printf("\"%s\",%s,%s,%u,%.0f,%.3f,%.2f,%.4f\n", info.name, rs[r].name, kn, bits[bi], rs[r].bytes,
                              rs[r].ms * 1e3, g, g / copy);
            }
        }
    if (js) printf("]}\n");
    vkmix_context_free(ctx);
    return rc;
}

/* ------------------------------------------------------------------ matvec mode */

/* Every weight type at the decode shapes of Llama-3-8B against the read
 * ceiling of the same run; --sweep tries kernel shapes and keeps the best. */
static int run_matvec(int argc, char **argv)
{
    char *types[MAXL];
    static char tdef[] = "q4_0,q8_0,q4_k,q6_k,f16,bf16";
    int nt = split_list(tdef, types, MAXL);
    uint32_t shapes[MAXL][2] = { { 4096, 4096 }, { 14336, 4096 }, { 4096, 14336 }, { 128256, 4096 } };
    int ns = 4, nw = 1, nr = 1, nu = 1, ntok = 1, device = -1, sweep = 0, emulate = 0, user_shape = 0, tiled = 0, max_tok = 0;
    uint32_t reps = 20, wgs[MAXL] = { 0 }, rws[MAXL] = { 0 }, uns[MAXL] = { 0 }, toks[MAXL] = { 1 }, one_r = 0, one_c = 0;
    const char *format = "md";
    for (int i = 2; i < argc; i++) {
        char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sweep")) { sweep = 1; continue; }
        if (!strcmp(a, "--emulate-idot")) { emulate = 1; continue; }
        if (!strcmp(a, "--scalar")) { tiled = 2; continue; }
        if (!strcmp(a, "--coopmat")) { tiled = 1; continue; }
        if (!v) { fprintf(stderr, "vkmix-bench: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--wtype")) nt = split_list(v, types, MAXL);
        else if (!strcmp(a, "--rows")) one_r = (uint32_t)atoi(v), user_shape = 1;
        else if (!strcmp(a, "--cols")) one_c = (uint32_t)atoi(v), user_shape = 1;
        else if (!strcmp(a, "--shapes")) {   /* ROWSxCOLS,... */
            ns = 0;
            for (char *t = strtok(v, ","); t && ns < MAXL; t = strtok(NULL, ","))
                if (sscanf(t, "%ux%u", &shapes[ns][0], &shapes[ns][1]) == 2) ns++;
            user_shape = 2;
        } else if (!strcmp(a, "--tokens")) ntok = parse_u32_list(v, toks, MAXL, 0);
        else if (!strcmp(a, "-r")) reps = (uint32_t)atoi(v);
        else if (!strcmp(a, "--mv-wg")) nw = parse_u32_list(v, wgs, MAXL, 0);
        else if (!strcmp(a, "--mv-rows")) nr = parse_u32_list(v, rws, MAXL, 0);
        else if (!strcmp(a, "--mv-unroll")) nu = parse_u32_list(v, uns, MAXL, 0);
        else if (!strcmp(a, "--mv-max-tok")) max_tok = atoi(v);
        else if (!strcmp(a, "-o")) format = v;
        else if (!strcmp(a, "--device")) device = atoi(v);
        else { fprintf(stderr, "vkmix-bench: unknown option %s\n", a); return 2; }
    }
    if (nw <= 0 || nr <= 0 || nu <= 0 || ntok <= 0 || ns <= 0 || !reps) { fprintf(stderr, "vkmix-bench: bad matvec options\n"); return 2; }
    if (sweep) {
        static const uint32_t sw[] = { 32, 64, 128, 256 }, sr[] = { 1, 2, 4, 8 }, su[] = { 1, 2 };
        nw = 4, nr = 4, nu = 2;
        memcpy(wgs, sw, sizeof sw), memcpy(rws, sr, sizeof sr), memcpy(uns, su, sizeof su);
    }
    vkmix_context *ctx = tool_context(device);
    vkmix_device_info info;
    vkmix_context_device_info(ctx, &info);
    int cpu = info.type == VKMIX_DEVICE_CPU;
    if (user_shape == 1) {
        shapes[0][0] = one_r ? one_r : 4096;
        shapes[0][1] = one_c ? one_c : 4096;
        ns = 1;
    } else if (cpu && !user_shape) {   /* lavapipe: a smoke test of the benchmark itself */
        for (int i = 0; i < ns; i++) shapes[i][0] = shapes[i][0] / 8 / 32 * 32, shapes[i][1] = shapes[i][1] / 8 / 256 * 256;
    }
    double read = 0;
    uint64_t read_bytes = cpu ? (32ull << 20) : (1ull << 30);
    vkmix_error e = vkmix_bench_read(ctx, read_bytes, reps, &read);
    if (e != VKMIX_OK) {
        fprintf(stderr, "vkmix-bench: read kernel: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(ctx));
        vkmix_context_free(ctx);
        return 1;
    }
    int js = !strcmp(format, "json");
    if (js) printf("{\"device\": \"%s\", \"read_gbps\": %.2f, \"results\": [", info.name, read);
    else printf("device: %s\nread kernel (uvec4 loads, best of 9 shapes, %llu MiB): %.0f GB/s\nmedian of %u runs; GB/s of the "
                "weights' GGUF bytes; kernel shape wg/rows/unroll (0: default)\n\n"
                "| weights | rows x cols | tokens | MiB | us | GB/s | vs read | TFLOP/s | wg/rows/unroll | quantize x us | check |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|\n", info.name, (unsigned long long)(read_bytes >> 20), read, reps);
    int rc = 0, first = 1;
    for (int t = 0; t < nt && !rc; t++)
        for (int si = 0; si < ns && !rc; si++)
            for (int k = 0; k < ntok && !rc; k++) {
                vkmix_matvec_bench best;
                memset(&best, 0, sizeof best);
                uint32_t bw = 0, br = 0, bu = 0;
                for (int w = 0; w < nw && !rc; w++)
                    for (int r = 0; r < nr && !rc; r++)
                        for (int u = 0; u < nu && !rc; u++) {
                            vkmix_matvec_opts o = { types[t], shapes[si][0], shapes[si][1], toks[k], reps,
                                                    wgs[w], rws[r], uns[u], (uint32_t)emulate, (uint32_t)tiled,
                                                    (uint32_t)max_tok };
                            vkmix_matvec_bench b;
                            if ((e = vkmix_bench_matvec_run(ctx, &o, &b)) != VKMIX_OK) {
                                fprintf(stderr, "vkmix-bench: %s %ux%u: %s: %s\n", types[t], shapes[si][0], shapes[si][1],
                                        vkmix_strerror(e), vkmix_context_last_error(ctx));
                                rc = 1;
                                break;
                            }
                            if (b.check_rel_err > 1e-2) {
                                fprintf(stderr, "vkmix-bench: %s %ux%u wg %u rows %u unroll %u: wrong result (rel err %.2e)\n",
                                        types[t], shapes[si][0], shapes[si][1], wgs[w], rws[r], uns[u], b.check_rel_err);
                                rc = 1;
                                break;
                            }
                            if (nw * nr * nu > 1)
                                fprintf(stderr, "%s %ux%u t%u wg %u rows %u unroll %u: %.0f GB/s\n", types[t], shapes[si][0],
                                        shapes[si][1], toks[k], wgs[w], rws[r], uns[u], b.gbps);
                            if (b.gbps > best.gbps) best = b, bw = wgs[w], br = rws[r], bu = uns[u];
                        }
                if (rc) break;
                if (js) {
                    printf("%s\n  {\"wtype\": \"%s\", \"rows\": %u, \"cols\": %u, \"tokens\": %u, \"bytes\": %.0f, "
                           "\"time_us\": %.3f, \"gbps\": %.2f, \"ratio_vs_read\": %.4f, \"mv_wg\": %u, \"mv_rows\": %u, "
                           "\"mv_unroll\": %u, \"quant_us\": %.3f, \"tflops\": %.3f, \"copies\": %u, \"check_rel_err\": %.3e}",
                           first ? "" : ",", types[t], shapes[si][0], shapes[si][1], toks[k], best.weight_bytes, best.us,
                           best.gbps, best.gbps / read, bw, br, bu, best.quant_us, best.tflops, best.copies,
                           best.check_rel_err);
                    first = 0;
                } else
                    printf("| %s | %u x %u | %u | %.1f | %.1f | %.0f | %.2f | %.1f | %u/%u/%u | %.1f | %.1e |\n", types[t],
                           shapes[si][0], shapes[si][1], toks[k], best.weight_bytes / 1048576.0, best.us, best.gbps,
                           best.gbps / read, best.tflops, bw, br, bu, best.quant_us, best.check_rel_err);
                fflush(stdout);
            }
    if (js) printf("\n]}\n");
    vkmix_context_free(ctx);
    return rc;
}

static int list_devices(void)
{
    vkmix_device_info d[16];
    uint32_t n = 0;
    char err[512] = "";
    vkmix_error e = vkmix_list_devices(d, 16, &n, err, sizeof err);
    if (e != VKMIX_OK) { fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), err); return 1; }
    for (uint32_t i = 0; i < n && i < 16; i++)
        printf("%u: %s (%s, %llu MiB)%s\n", i, d[i].name,
               d[i].type == VKMIX_DEVICE_DISCRETE ? "discrete" : d[i].type == VKMIX_DEVICE_CPU ? "cpu" : "other",
               (unsigned long long)(d[i].device_local_bytes >> 20), d[i].usable ? "" : " [unusable]");
    return 0;
}

/* --kv-policy P[:opts]: appended as :policy=P[:opts] to every quantized --kv item that
 * names no policy (tool_kv_with_policy, as vkmix and vkmix-eval do). 0, or 1 after a message. */
static int apply_policy(opts *o)
{
    if (!tool_kv_policy_ok(o->kv_policy)) {
        fprintf(stderr, "vkmix-bench: --kv-policy: '%s' is not layer, mikv or mixkvq\n", o->kv_policy);
        return 1;
    }
    for (int i = 0; i < o->nkv; i++)
        if (!(o->kv[i] = tool_kv_with_policy(o->kv_policy, o->kv[i]))) return 1; /* lives until exit, as argv does */
    return 0;
}

int main(int argc, char **argv)
{
    tool_name = "vkmix-bench";
    if (argc >= 2 && !strcmp(argv[1], "kernels")) return run_kernels(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "matvec")) return run_matvec(argc, argv);
    opts o;
    memset(&o, 0, sizeof o);
    o.n_variants = 1; /* v2 */
    o.device = -1;
    o.format = "md";
    o.reps = 3;
    o.n[0] = 32; o.nn = 1;
    o.d[0] = 0; o.nd = 1;
    o.b[0] = 1; o.nb = 1;
    static char f16[] = "f16";
    o.kv[0] = f16; o.nkv = 1;
    static char wdef[] = "q4_0";
    o.wtypes[0] = wdef; o.n_wtypes = 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--list-devices")) return list_devices();
        if (!strcmp(a, "--attn")) { o.attn = 1; continue; }
        if (!strcmp(a, "--attn-variants") && i + 1 < argc) {
            char *list = argv[++i];
            o.n_variants = 0;
            for (char *t = strtok(list, ","); t && o.n_variants < 4; t = strtok(NULL, ",")) {
                int vk = -1;
                for (int k = 0; k < VKMIX_ATTN_VARIANTS_; k++)
                    if (!strcmp(t, vkmix_attn_variant_name((vkmix_attn_variant)k))) vk = k;
                if (vk < 0) {
                    fprintf(stderr, "vkmix-bench: unknown attention kernel '%s' (v2, v1, v2-f32)\n", t);
                    return 2;
                }
                o.variants[o.n_variants++] = vk;
            }
            continue;
        }
        if (!v) { fprintf(stderr, "vkmix-bench: %s needs a value\n", a); usage(stderr); return 2; }
        i++;
        int bad = 0;
        if (!strcmp(a, "-m")) o.model_path = v;
        else if (!strcmp(a, "--synthetic")) o.n_synth = split_list(v, o.synth, MAXL);
        else if (!strcmp(a, "--wtype")) o.n_wtypes = split_list(v, o.wtypes, MAXL);
        else if (!strcmp(a, "-p")) bad = (o.np = parse_u32_list(v, o.p, MAXL, 0)) < 0;
        else if (!strcmp(a, "-n")) bad = (o.nn = parse_u32_list(v, o.n, MAXL, 0)) < 0;
        else if (!strcmp(a, "-d")) bad = (o.nd = parse_u32_list(v, o.d, MAXL, 0)) <= 0;
        else if (!strcmp(a, "-b")) bad = (o.nb = parse_u32_list(v, o.b, MAXL, 1)) <= 0;
        else if (!strcmp(a, "--kv")) o.nkv = split_list(v, o.kv, MAXL);
        else if (!strcmp(a, "--kv-policy")) o.kv_policy = v;
        else if (!strcmp(a, "--kv-group")) o.group = (uint32_t)atoi(v);
        else if (!strcmp(a, "--kv-window")) o.window = (uint32_t)atoi(v);
        else if (!strcmp(a, "--kv-sinks")) o.sinks = (uint32_t)atoi(v);
        else if (!strcmp(a, "-r")) bad = (o.reps = (uint32_t)atoi(v)) == 0;
        else if (!strcmp(a, "-o")) o.format = v;
        else if (!strcmp(a, "--svg")) o.svg = v;
        else if (!strcmp(a, "--device")) o.device = atoi(v);
        else { fprintf(stderr, "vkmix-bench: unknown option %s\n", a); usage(stderr); return 2; }
        if (bad) { fprintf(stderr, "vkmix-bench: bad value for %s: %s\n", a, v); return 2; }
    }
    if (strcmp(o.format, "md") && strcmp(o.format, "json") && strcmp(o.format, "csv")) {
        fprintf(stderr, "vkmix-bench: -o must be md, json or csv\n");
        return 2;
    }
    if (o.kv_policy && apply_policy(&o)) return 2;
    if (!o.model_path && !o.n_synth) { fprintf(stderr, "vkmix-bench: give -m FILE or --synthetic NAME\n"); usage(stderr); return 2; }
    vkmix_context *ctx = tool_context(o.device);
    vkmix_error e;
    vkmix_device_info info;
    vkmix_context_device_info(ctx, &info);
    int rc = 0;
    g_total = (uint64_t)((o.model_path ? 1 : 0) + o.n_synth * o.n_wtypes) * o.nkv * o.nd * tests_per_block(&o);
    tool_progress_start(&g_pr, "vkmix-bench");
    if (g_total) tool_progress_update(&g_pr, 0, g_total);
    if (o.model_path) {
        vkmix_model *m = NULL;
        if ((e = vkmix_model_load(ctx, o.model_path, NULL, &m)) != VKMIX_OK) {
            fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(ctx));
            rc = 1;
        } else {
            vkmix_model_info mi;
            vkmix_model_get_info(m, &mi);
            char name[160];
            snprintf(name, sizeof name, "%s %s", mi.name, mi.weight_type);
            rc |= bench_model(&o, ctx, m, name);
            vkmix_model_free(m);
        }
    }
    for (int si = 0; si < o.n_synth; si++)
        for (int wi = 0; wi < o.n_wtypes; wi++) {
            vkmix_model *m = NULL;
            if ((e = vkmix_model_create_synthetic(ctx, o.synth[si], o.wtypes[wi], 1, &m)) != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(ctx));
                rc = 1;
                continue;
            }
            char name[160];
            snprintf(name, sizeof name, "%s %s", o.synth[si], o.wtypes[wi]);
            rc |= bench_model(&o, ctx, m, name);
            vkmix_model_free(m);
        }
    print_rows(&o, info.name);
    if (o.svg) write_svg(o.svg);
    free(rows);
    vkmix_context_free(ctx);
    return rc;
}
