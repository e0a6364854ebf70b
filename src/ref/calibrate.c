/*
 * Calibration of per-layer KV widths (KVmix, arXiv 2506.08018):
 *   - layer importance ||dL/dW_k||_F, ||dL/dW_v||_F from the reference backward pass,
 *   - the measured error of the cache's quantization format on the model's own K and V,
 *   - allocation rules that turn both into a per-layer profile under an exact memory budget
 *     (a vkmix_kv_config; kv/kv_config.c reads and writes profile files).
 */
#include "ref/calibrate.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"
#include "model/model.h"
#include "ref/ref_from_model.h"

static const uint32_t measured_widths[VKMIX_CALIB_N_WIDTHS] = { 2, 3, 4, 8 };
static const uint32_t choice_widths[VKM_CALIB_N_CHOICES] = { 2, 3, 4, 8, 16 };

#define MAX_THREADS 64

uint32_t vkmix_calibrate_width(uint32_t i) { return i < VKMIX_CALIB_N_WIDTHS ? measured_widths[i] : 0; }

static vkmix_error failf(char *err, size_t errlen, vkmix_error e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static vkmix_error failf(char *err, size_t errlen, vkmix_error e, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return e;
}

uint32_t vkm_calib_labels(const int32_t *seq, uint32_t T)
{
    uint32_t n = 0;
    while (n < T && seq[n] >= 0) n++;
    return n > 1 ? n - 1 : 0;
}

/* Tokens in range, padding trailing. Fills len[s] (tokens before the first padding). */
static vkmix_error check_tokens(const vkm_hparams *hp, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                uint32_t *len, char *err, size_t errlen)
{
    for (uint32_t s = 0; s < n_seq; s++) {
        const int32_t *q = tokens + (size_t)s * T;
        uint32_t n = 0;
        while (n < T && q[n] >= 0) n++;
        for (uint32_t t = 0; t < T; t++) {
            if (t < n && (uint32_t)q[t] >= hp->n_vocab)
                return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                             "calibration token %d (sequence %u, position %u) is not in the vocabulary (%u)", q[t], s,
                             t, hp->n_vocab);
            if (t >= n && q[t] >= 0)
                return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                             "sequence %u: padding (negative tokens) must be trailing", s);
        }
        len[s] = n;
    }
    return VKMIX_OK;
}

static int clamp_threads(int n_threads, uint32_t n_seq)
{
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if ((uint32_t)n_threads > n_seq) n_threads = (int)n_seq;
    return n_threads;
}

/* Runs fn(arg_i) for i < n on n threads (the calling thread runs the first); 0 when all started. */
static int run_parallel(void *(*fn)(void *), void *args, size_t arg_size, int n)
{
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = { 0 };
    int fail = 0;
    for (int i = 1; i < n; i++) {
        started[i] = pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size) == 0;
        if (!started[i]) fn((char *)args + (size_t)i * arg_size); /* no thread: run it here */
    }
    fn(args);
    for (int i = 1; i < n; i++)
        if (started[i]) fail |= pthread_join(th[i], NULL) != 0;
    return fail;
}

/* --------------------------------------------------------------------------- importance */

typedef struct imp_job {
    const vkm_ref_weights *w;
    const int32_t *seq;
    uint32_t len;
    float **dwk, **dwv;   /* [n_layer] -> [kv_dim][n_embd], this worker's */
    float loss;
    vkmix_error e;
} imp_job;

static void *imp_worker(void *arg)
{
    imp_job *j = arg;
    if (j->seq) j->e = vkm_ref_grad_kv(j->w, j->seq, 1, j->len, 1, &j->loss, j->dwk, j->dwv, NULL, NULL);
    return NULL;
}

vkmix_error vkm_calib_importance(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                 int n_threads, vkmix_calibrate_progress_fn progress, void *user, float *loss,
                                 float *imp_k, float *imp_v, char *err, size_t errlen)
{
    if (!w || vkm_ref_weights_check(w) != VKMIX_OK)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "calibration: unusable reference weights");
    if (!tokens || n_seq == 0 || T < 2)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                     "calibration needs tokens, at least one sequence and T >= 2 (got %u x %u)", n_seq, T);
    const vkm_hparams *hp = &w->hp;
    const uint32_t L = hp->n_layer;
    const size_t mat = (size_t)hp->n_head_kv * hp->head_dim * hp->n_embd;
    uint32_t *len = malloc(n_seq * sizeof *len);
    if (!len) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = check_tokens(hp, tokens, n_seq, T, len, err, errlen);
    uint64_t total = 0;
    for (uint32_t s = 0; e == VKMIX_OK && s < n_seq; s++) total += len[s] > 1 ? len[s] - 1 : 0;
    if (e == VKMIX_OK && total == 0)
        e = failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "calibration: no token to predict (every sequence is "
                                                            "shorter than 2 tokens)");
    if (e != VKMIX_OK) {
        free(len);
        return e;
    }
    const int nt = clamp_threads(n_threads, n_seq);
    float *gbuf = malloc((size_t)nt * 2 * L * mat * sizeof(float));
    float **ptrs = malloc((size_t)nt * 2 * L * sizeof(float *));
    double *acc = calloc(2 * L * mat, sizeof(double)); /* [K|V][n_layer][mat] */
    imp_job jobs[MAX_THREADS];
    if (!gbuf || !ptrs || !acc) {
        e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto done;
    }
    for (int t = 0; t < nt; t++)
        for (uint32_t l = 0; l < 2 * L; l++) ptrs[((size_t)t * 2 * L) + l] = gbuf + (((size_t)t * 2 * L) + l) * mat;
    double loss_acc = 0;
    for (uint32_t s0 = 0; s0 < n_seq && e == VKMIX_OK; s0 += (uint32_t)nt) {
        int n = (int)(n_seq - s0 < (uint32_t)nt ? n_seq - s0 : (uint32_t)nt);
        for (int t = 0; t < n; t++) {
            uint32_t s = s0 + (uint32_t)t;
            jobs[t] = (imp_job){ w, len[s] > 1 ? tokens + (size_t)s * T : NULL, len[s], ptrs + (size_t)t * 2 * L,
                                 ptrs + (size_t)t * 2 * L + L, 0, VKMIX_OK };
        }
        if (run_parallel(imp_worker, jobs, sizeof jobs[0], n)) e = VKMIX_ERROR_INTERNAL;
        for (int t = 0; t < n && e == VKMIX_OK; t++) {
            if (!jobs[t].seq) continue;
            if (jobs[t].e != VKMIX_OK) {
                e = failf(err, errlen, jobs[t].e, "calibration: backward pass of sequence %u failed: %s", s0 + t,
                          vkmix_strerror(jobs[t].e));
                break;
            }
            /* L = sum_s (count_s / total) L_s, so dL/dW = sum_s (count_s / total) dL_s/dW */
            double wgt = (double)(len[s0 + t] - 1) / (double)total;
            loss_acc += wgt * jobs[t].loss;
            for (uint32_t kv = 0; kv < 2; kv++)
                for (uint32_t l = 0; l < L; l++) {
                    const float *g = (kv ? jobs[t].dwv : jobs[t].dwk)[l];
                    double *a = acc + ((size_t)kv * L + l) * mat;
                    for (size_t i = 0; i < mat; i++) a[i] += wgt * g[i];
                }
        }
        for (int t = 0; t < n && e == VKMIX_OK; t++)
            if (progress && progress(s0 + (uint32_t)t + 1, n_seq, user)) e = VKMIX_ERROR_CANCELLED;
        if (e == VKMIX_ERROR_CANCELLED) failf(err, errlen, e, "calibration cancelled");
    }
    if (e == VKMIX_OK) {
        if (loss) *loss = (float)loss_acc;
        for (uint32_t kv = 0; kv < 2; kv++) {
            float *out = kv ? imp_v : imp_k;
            if (!out) continue;
            for (uint32_t l = 0; l < L; l++) {
                const double *a = acc + ((size_t)kv * L + l) * mat;
                double ss = 0;
                for (size_t i = 0; i < mat; i++) ss += a[i] * a[i];
                out[l] = (float)sqrt(ss);
            }
        }
    }
done:
    free(len);
    free(gbuf);
    free(ptrs);
    free(acc);
    return e;
}

/* --------------------------------------------------------------------------- measured quantization error */

typedef struct kverr_job {
    const vkm_ref_weights *w;
    vkm_ref_state *st;
    const int32_t *seq;     /* NULL: nothing to do */
    uint32_t n_q;           /* tokens measured: positions sinks .. sinks + n_q - 1 */
    uint32_t sinks, group, v_group;
    double *sq;             /* [n_layer][2] sum x^2 */
    double *se;             /* [n_layer][2][VKMIX_CALIB_N_WIDTHS] sum (x - deq)^2 */
    vkmix_error e;
} kverr_job;

static void *kverr_worker(void *arg)
{
    kverr_job *j = arg;
    if (!j->seq) return NULL;
    const vkm_hparams *hp = &j->w->hp;
    const uint32_t H = hp->n_head_kv, D = hp->head_dim, n = j->n_q, end = j->sinks + n;
    for (uint32_t p = 0; p < end && j->e == VKMIX_OK; p++) j->e = vkm_ref_forward(j->w, j->st, j->seq[p], p, NULL);
    if (j->e != VKMIX_OK) return NULL;
    const size_t elems = (size_t)H * n * D;
    uint16_t *x16 = malloc(elems * sizeof *x16);
    float *xf = malloc(elems * sizeof *xf), *y = malloc(elems * sizeof *y);
    /* the largest packing (8 bits): codes of one byte per element, meta at most one word per element */
    uint32_t *codes = malloc(elems + 64), *meta = malloc(elems * 4 + 64);
    if (!x16 || !xf || !y || !codes || !meta) {
        j->e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto out;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (uint32_t kind = 0; kind < 2; kind++) {
            /* [head][token][channel], FP16 as the cache stores it */
            double sq = 0;
            for (uint32_t h = 0; h < H; h++)
                for (uint32_t t = 0; t < n; t++) {
                    const float *row = (kind ? vkm_ref_v_at(j->st, l, j->sinks + t) : vkm_ref_k_at(j->st, l, j->sinks + t)) +
                                       (size_t)h * D;
                    for (uint32_t d = 0; d < D; d++) {
                        size_t i = ((size_t)h * n + t) * D + d;
                        x16[i] = vkmix_f32_to_f16(row[d]);
                        xf[i] = vkmix_f16_to_f32(x16[i]);
                        sq += (double)xf[i] * xf[i];
                    }
                }
            j->sq[l * 2 + kind] = sq;
            for (uint32_t wi = 0; wi < VKMIX_CALIB_N_WIDTHS; wi++) {
                vkmix_kvq_shape sh = { kind ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, measured_widths[wi],
                                       kind ? j->v_group : j->group, D, H, n };
                vkmix_error e = vkmix_kvq_quantize_cpu(&sh, x16, codes, meta);
                if (e == VKMIX_OK) e = vkm_kvq_dequantize_f32(&sh, codes, meta, y);
                if (e != VKMIX_OK) {
                    j->e = e;
                    goto out;
                }
                double se = 0;
                for (size_t i = 0; i < elems; i++) {
                    double d = (double)y[i] - xf[i];
                    se += d * d;
                }
                j->se[(l * 2 + kind) * VKMIX_CALIB_N_WIDTHS + wi] = se;
            }
        }
out:
    free(x16);
    free(xf);
    free(y);
    free(codes);
    free(meta);
    return NULL;
}

vkmix_error vkm_calib_kv_error(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                               uint32_t group, uint32_t sinks, int n_threads, vkmix_calibrate_progress_fn progress,
                               void *user, float *err_k, float *err_v, char *err, size_t errlen)
{
    if (!w || vkm_ref_weights_check(w) != VKMIX_OK)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "calibration: unusable reference weights");
    if (!tokens || n_seq == 0 || T == 0)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "calibration needs tokens and at least one sequence");
    if (!group) group = 32;
    if (group != 32 && group != 64 && group != 128)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "KV group %u must be 32, 64 or 128", group);
    const vkm_hparams *hp = &w->hp;
    if (hp->head_dim % 8 || hp->head_dim > 1024)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                     "head_dim %u: the KV format needs a multiple of 8, at most 1024", hp->head_dim);
    if (sinks >= T)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "sinks (%u) must be fewer than T (%u)", sinks, T);
    const uint32_t L = hp->n_layer, v_group = hp->head_dim % group == 0 ? group : hp->head_dim;
    uint32_t *len = malloc(n_seq * sizeof *len);
    if (!len) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkmix_error e = check_tokens(hp, tokens, n_seq, T, len, err, errlen);
    uint64_t measured = 0;
    for (uint32_t s = 0; e == VKMIX_OK && s < n_seq; s++)
        measured += len[s] >= sinks + group ? (len[s] - sinks) / group * group : 0;
    if (e == VKMIX_OK && measured == 0)
        e = failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                  "calibration: no sequence has sinks + group = %u tokens to quantize", sinks + group);
    if (e != VKMIX_OK) {
        free(len);
        return e;
    }
    const int nt = clamp_threads(n_threads, n_seq);
    const size_t per = (size_t)L * 2 * (1 + VKMIX_CALIB_N_WIDTHS);
    double *res = calloc((size_t)n_seq * per, sizeof(double)); /* per sequence: sq [L][2], se [L][2][W] */
    vkm_ref_state *st[MAX_THREADS] = { 0 };
    kverr_job jobs[MAX_THREADS];
    if (!res) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (int t = 0; t < nt && e == VKMIX_OK; t++) e = vkm_ref_state_create(hp, T, 1, &st[t]);
    for (uint32_t s0 = 0; s0 < n_seq && e == VKMIX_OK; s0 += (uint32_t)nt) {
        int n = (int)(n_seq - s0 < (uint32_t)nt ? n_seq - s0 : (uint32_t)nt);
        for (int t = 0; t < n; t++) {
            uint32_t s = s0 + (uint32_t)t;
            uint32_t n_q = len[s] >= sinks + group ? (len[s] - sinks) / group * group : 0;
            double *r = res + (size_t)s * per;
            jobs[t] = (kverr_job){ w, st[t], n_q ? tokens + (size_t)s * T : NULL, n_q, sinks, group, v_group,
                                   r, r + (size_t)L * 2, VKMIX_OK };
        }
        if (run_parallel(kverr_worker, jobs, sizeof jobs[0], n)) e = VKMIX_ERROR_INTERNAL;
        for (int t = 0; t < n && e == VKMIX_OK; t++)
            if (jobs[t].e != VKMIX_OK)
                e = failf(err, errlen, jobs[t].e, "calibration: quantization error of sequence %u failed: %s", s0 + t,
                          vkmix_strerror(jobs[t].e));
        for (int t = 0; t < n && e == VKMIX_OK; t++)
            if (progress && progress(s0 + (uint32_t)t + 1, n_seq, user))
                e = failf(err, errlen, VKMIX_ERROR_CANCELLED, "calibration cancelled");
    }
    if (e == VKMIX_OK) {
        /* sums in sequence order: the same for any n_threads */
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t kind = 0; kind < 2; kind++) {
                float *out = kind ? err_v : err_k;
                double sq = 0, se[VKMIX_CALIB_N_WIDTHS] = { 0 };
                for (uint32_t s = 0; s < n_seq; s++) {
                    const double *r = res + (size_t)s * per;
                    sq += r[l * 2 + kind];
                    for (uint32_t wi = 0; wi < VKMIX_CALIB_N_WIDTHS; wi++)
                        se[wi] += r[(size_t)L * 2 + (l * 2 + kind) * VKMIX_CALIB_N_WIDTHS + wi];
                }
                if (out)
                    for (uint32_t wi = 0; wi < VKMIX_CALIB_N_WIDTHS; wi++)
                        out[l * VKMIX_CALIB_N_WIDTHS + wi] = sq > 0 ? (float)(se[wi] / sq) : 0.0f;
            }
    }
    for (int t = 0; t < nt; t++) vkm_ref_state_free(st[t]);
    free(res);
    free(len);
    return e;
}

/* --------------------------------------------------------------------------- allocation */

void vkmix_calibrate_kvmix_counts(uint32_t n_layer, uint32_t *n_important, uint32_t *n_general)
{
    uint32_t imp = n_layer / 10, gen = n_layer / 10;
    if (n_layer >= 2 && imp == 0) imp = 1; /* the paper's floor(0.1 n) promotes nothing below 10 layers */
    if (n_important) *n_important = imp;
    if (n_general) *n_general = gen;
}

/* One knapsack item: a layer's K or V with its options (choice_widths order). */
typedef struct calib_item {
    uint64_t cost[VKM_CALIB_N_CHOICES];
    double val[VKM_CALIB_N_CHOICES];
} calib_item;

static uint64_t layer_bytes(vkm_kv_config *c, const vkm_hparams *hp, uint32_t n_ctx, uint32_t l, int is_v,
                            uint32_t bits)
{
    uint8_t *b = is_v ? c->v_bits : c->k_bits;
    uint8_t keep = b[l];
    b[l] = (uint8_t)bits;
    vkm_kv_sizes s;
    vkm_kv_layer_sizes(c, hp, n_ctx, 0, l, is_v, &s);
    b[l] = keep;
    return s.code_bytes + s.meta_bytes + s.ring_bytes + s.sink_bytes + s.fp16_bytes;
}

/* The cache geometry of the params as the session would build it (widths set later). */
static vkmix_error geometry(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, vkm_kv_config *c, char *err,
                            size_t errlen)
{
    vkmix_kv_config pub;
    vkmix_kv_config_default(&pub);
    memset(pub.k_bits, 2, sizeof pub.k_bits);
    memset(pub.v_bits, 2, sizeof pub.v_bits);
    pub.group = p->group;
    pub.window = p->window;
    pub.sinks = p->sinks;
    return vkm_kv_config_resolve(&pub, hp, p->n_ctx, c, err, errlen);
}

static void finish_config(vkm_kv_config *c, const vkm_hparams *hp)
{
    c->quantized = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) c->quantized |= c->k_bits[l] < 16 || c->v_bits[l] < 16;
}

static int finite_nonneg(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(a[i] >= 0) || isinf(a[i])) return 0;
    return 1;
}

static vkmix_error check_alloc(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, char *err, size_t errlen)
{
    const uint32_t L = hp->n_layer;
    if (!p) return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: no parameters");
    if (L == 0 || L > VKM_KV_MAX_LAYERS)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: %u layers (1 .. %d supported)", L,
                     VKM_KV_MAX_LAYERS);
    if (p->n_ctx == 0) return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: context length 0");
    if (!p->imp_k || !p->imp_v || !finite_nonneg(p->imp_k, L) || !finite_nonneg(p->imp_v, L))
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                     "allocation: importance scores for K and V must be given, finite and >= 0");
    if (p->rule == VKMIX_CALIB_RULE_KVMIX) {
        if ((p->err_k && !finite_nonneg(p->err_k, (size_t)L * VKMIX_CALIB_N_WIDTHS)) ||
            (p->err_v && !finite_nonneg(p->err_v, (size_t)L * VKMIX_CALIB_N_WIDTHS)))
            return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: errors must be finite and >= 0");
        return VKMIX_OK;
    }
    if (p->rule != VKMIX_CALIB_RULE_TARGET_BITS && p->rule != VKMIX_CALIB_RULE_BUDGET)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: unknown rule %d", (int)p->rule);
    if (!p->err_k || !p->err_v || !finite_nonneg(p->err_k, (size_t)L * VKMIX_CALIB_N_WIDTHS) ||
        !finite_nonneg(p->err_v, (size_t)L * VKMIX_CALIB_N_WIDTHS))
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT,
                     "allocation: measured errors for K and V must be given, finite and >= 0");
    if (p->rule == VKMIX_CALIB_RULE_TARGET_BITS && !(p->target_bits > 0 && p->target_bits <= 64))
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: target bits %g is not in (0, 64]",
                     p->target_bits);
    if (p->rule == VKMIX_CALIB_RULE_TARGET_BITS && p->target_bits_v != 0 && !(p->target_bits_v > 0 && p->target_bits_v <= 64))
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: V target bits %g is not in (0, 64]",
                     p->target_bits_v);
    if (p->rule == VKMIX_CALIB_RULE_BUDGET && p->budget_bytes == 0)
        return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: budget of 0 bytes");
    return VKMIX_OK;
}

static double err_of(const float *e, uint32_t l, uint32_t choice)
{
    return choice < VKMIX_CALIB_N_WIDTHS ? e[(size_t)l * VKMIX_CALIB_N_WIDTHS + choice] : 0.0;
}

/* Items and budgets. Problem 0 (and 1 when K and V are separate). */
typedef struct calib_problem {
    uint32_t n_prob;
    uint32_t m[2];              /* items per problem */
    calib_item *items[2];
    uint32_t *layer[2];         /* item -> layer (+ n_layer for a V item) */
    uint64_t budget[2];
} calib_problem;

static void problem_free(calib_problem *pr)
{
    for (int i = 0; i < 2; i++) {
        free(pr->items[i]);
        free(pr->layer[i]);
    }
}

static vkmix_error build_problem(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, vkm_kv_config *c,
                                 calib_problem *pr)
{
    memset(pr, 0, sizeof *pr);
    const uint32_t L = hp->n_layer;
    const int separate = p->rule == VKMIX_CALIB_RULE_TARGET_BITS && !p->joint;
    pr->n_prob = separate ? 2 : 1;
    const double elems = (double)L * hp->n_head_kv * p->n_ctx * hp->head_dim; /* of K (or of V) */
    for (uint32_t q = 0; q < pr->n_prob; q++) {
        pr->m[q] = separate ? L : 2 * L;
        pr->items[q] = calloc(pr->m[q], sizeof(calib_item));
        pr->layer[q] = calloc(pr->m[q], sizeof(uint32_t));
        if (!pr->items[q] || !pr->layer[q]) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        if (p->rule == VKMIX_CALIB_RULE_BUDGET) pr->budget[q] = p->budget_bytes;
        else {
            double tb = separate && q == 1 && p->target_bits_v > 0 ? p->target_bits_v : p->target_bits;
            double b = tb * elems * (separate ? 1.0 : 2.0) / 8.0;
            pr->budget[q] = (uint64_t)floor(b * (1.0 + 1e-12));
        }
        for (uint32_t i = 0; i < pr->m[q]; i++) {
            uint32_t is_v = separate ? q : i >= L, l = separate ? i : i % L;
            pr->layer[q][i] = l + (is_v ? L : 0);
            const float imp = is_v ? p->imp_v[l] : p->imp_k[l];
            for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++) {
                pr->items[q][i].cost[j] = layer_bytes(c, hp, p->n_ctx, l, (int)is_v, choice_widths[j]);
                pr->items[q][i].val[j] = (double)imp * err_of(is_v ? p->err_v : p->err_k, l, j);
            }
        }
    }
    return VKMIX_OK;
}

#define GRID 8192u

/* Multiple-choice knapsack: minimise sum val subject to sum cost <= budget.
 * Dynamic program over the items on costs rounded up to a grid, then a greedy
 * pass with the exact costs. choice: [m] out. */
static vkmix_error mckp(const calib_item *it, uint32_t m, uint64_t budget, uint8_t *choice, uint64_t *min_cost)
{
    uint64_t base = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint64_t mc = it[i].cost[0];
        for (uint32_t j = 1; j < VKM_CALIB_N_CHOICES; j++)
            if (it[i].cost[j] < mc) mc = it[i].cost[j];
        base += mc;
    }
    *min_cost = base;
    if (base > budget) return VKMIX_ERROR_BAD_PROFILE;
    const uint64_t slack = budget - base;
    uint64_t unit = (slack + GRID - 1) / GRID;
    if (unit == 0) unit = 1;
    const uint32_t C = (uint32_t)(slack / unit);
    double *dp = malloc((C + 1) * sizeof(double)), *nx = malloc((C + 1) * sizeof(double));
    uint8_t *pick = malloc((size_t)m * (C + 1));
    uint32_t *dd = malloc((size_t)m * VKM_CALIB_N_CHOICES * sizeof(uint32_t));
    vkmix_error e = VKMIX_OK;
    if (!dp || !nx || !pick || !dd) {
        e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        goto out;
    }
    for (uint32_t i = 0; i < m; i++) {
        uint64_t mc = UINT64_MAX;
        for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++)
            if (it[i].cost[j] < mc) mc = it[i].cost[j];
        for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++) {
            uint64_t d = (it[i].cost[j] - mc + unit - 1) / unit;
            dd[i * VKM_CALIB_N_CHOICES + j] = d > C ? UINT32_MAX : (uint32_t)d;
        }
    }
    for (uint32_t c = 0; c <= C; c++) dp[c] = 0;
    for (uint32_t i = 0; i < m; i++) {
        for (uint32_t c = 0; c <= C; c++) {
            double best = INFINITY;
            uint8_t bj = 0;
            for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++) {
                uint32_t d = dd[i * VKM_CALIB_N_CHOICES + j];
                if (d > c) continue;
                double v = dp[c - d] + it[i].val[j];
                if (v < best) { /* strict: on a tie the cheaper (earlier) width stays */
                    best = v;
                    bj = (uint8_t)j;
                }
            }
            nx[c] = best;
            pick[(size_t)i * (C + 1) + c] = bj;
        }
        double *t = dp;
        dp = nx;
        nx = t;
    }
    uint32_t c = C;
    for (uint32_t i = m; i-- > 0;) {
        choice[i] = pick[(size_t)i * (C + 1) + c];
        c -= dd[i * VKM_CALIB_N_CHOICES + choice[i]];
    }
    /* greedy: spend what the rounding left, best objective decrease first */
    uint64_t used = 0;
    for (uint32_t i = 0; i < m; i++) used += it[i].cost[choice[i]];
    for (;;) {
        double best_gain = 0;
        int64_t best_extra = 0;
        uint32_t bi = UINT32_MAX, bj = 0;
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++) {
                int64_t extra = (int64_t)it[i].cost[j] - (int64_t)it[i].cost[choice[i]];
                if (extra > 0 && (uint64_t)extra > budget - used) continue;
                double gain = it[i].val[choice[i]] - it[i].val[j];
                if (gain <= 0) continue;
                if (bi == UINT32_MAX || gain > best_gain || (gain == best_gain && extra < best_extra)) {
                    best_gain = gain;
                    best_extra = extra;
                    bi = i;
                    bj = j;
                }
            }
        if (bi == UINT32_MAX) break;
        used = (uint64_t)((int64_t)used + best_extra);
        choice[bi] = (uint8_t)bj;
    }
out:
    free(dp);
    free(nx);
    free(pick);
    free(dd);
    return e;
}

static void rank_desc(const float *imp, uint32_t n, uint32_t *order)
{
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    for (uint32_t i = 1; i < n; i++) { /* insertion sort, stable: ties keep the lower layer first */
        uint32_t x = order[i], j = i;
        while (j > 0 && imp[order[j - 1]] < imp[x]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
}

vkmix_error vkm_calib_allocate(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, uint8_t *k_bits,
                               uint8_t *v_bits, vkmix_kv_memory *mem, double *objective, char *err, size_t errlen)
{
    if (!hp || !k_bits || !v_bits) return failf(err, errlen, VKMIX_ERROR_INVALID_ARGUMENT, "allocation: NULL argument");
    vkmix_error e = check_alloc(hp, p, err, errlen);
    if (e != VKMIX_OK) return e;
    vkm_kv_config c;
    e = geometry(hp, p, &c, err, errlen);
    if (e != VKMIX_OK) return e;
    const uint32_t L = hp->n_layer;
    if (p->rule == VKMIX_CALIB_RULE_KVMIX) {
        uint32_t imp, gen, *order = malloc(L * sizeof *order);
        if (!order) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        vkmix_calibrate_kvmix_counts(L, &imp, &gen);
        rank_desc(p->imp_k, L, order);
        for (uint32_t r = 0; r < L; r++) c.k_bits[order[r]] = r < imp + gen ? 3 : 2;
        rank_desc(p->imp_v, L, order);
        for (uint32_t r = 0; r < L; r++) c.v_bits[order[r]] = r < imp + gen ? 4 : 2;
        free(order);
    } else {
        calib_problem pr;
        e = build_problem(hp, p, &c, &pr);
        for (uint32_t q = 0; q < pr.n_prob && e == VKMIX_OK; q++) {
            uint8_t *choice = malloc(pr.m[q]);
            uint64_t min_cost = 0;
            e = choice ? mckp(pr.items[q], pr.m[q], pr.budget[q], choice, &min_cost) : VKMIX_ERROR_OUT_OF_HOST_MEMORY;
            if (e == VKMIX_ERROR_BAD_PROFILE) {
                const double elems = (double)L * hp->n_head_kv * p->n_ctx * hp->head_dim;
                if (p->rule == VKMIX_CALIB_RULE_BUDGET)
                    failf(err, errlen, e,
                          "a KV cache for %u tokens needs at least %.3f MiB (all layers at 2 bits, with the FP16 "
                          "window and metadata); the budget is %.3f MiB",
                          p->n_ctx, min_cost / 1048576.0, p->budget_bytes / 1048576.0);
                else
                    failf(err, errlen, e,
                          "%.3f effective bits%s cannot be reached at context %u: the smallest is %.3f (all layers "
                          "at 2 bits, with the FP16 window and metadata)",
                          q == 1 && p->target_bits_v > 0 ? p->target_bits_v : p->target_bits, pr.n_prob == 2 ? (q ? " for V" : " for K") : " (K and V jointly)", p->n_ctx,
                          8.0 * (double)min_cost / (elems * (pr.n_prob == 2 ? 1.0 : 2.0)));
            }
            for (uint32_t i = 0; i < pr.m[q] && e == VKMIX_OK; i++) {
                uint32_t id = pr.layer[q][i];
                (id >= L ? c.v_bits : c.k_bits)[id % L] = (uint8_t)choice_widths[choice[i]];
            }
            free(choice);
        }
        problem_free(&pr);
        if (e != VKMIX_OK) return e;
    }
    finish_config(&c, hp);
    memcpy(k_bits, c.k_bits, L);
    memcpy(v_bits, c.v_bits, L);
    if (mem) vkm_kv_memory(&c, hp, p->n_ctx, 0, mem);
    if (objective) {
        double o = 0;
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t j = 0; j < VKM_CALIB_N_CHOICES; j++) {
                if (p->err_k && c.k_bits[l] == choice_widths[j]) o += (double)p->imp_k[l] * err_of(p->err_k, l, j);
                if (p->err_v && c.v_bits[l] == choice_widths[j]) o += (double)p->imp_v[l] * err_of(p->err_v, l, j);
            }
        *objective = o;
    }
    return VKMIX_OK;
}

double vkm_calib_exhaustive(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, uint8_t *k_bits,
                            uint8_t *v_bits)
{
    if (!hp || !p || check_alloc(hp, p, NULL, 0) != VKMIX_OK || p->rule == VKMIX_CALIB_RULE_KVMIX) return INFINITY;
    vkm_kv_config c;
    if (geometry(hp, p, &c, NULL, 0) != VKMIX_OK) return INFINITY;
    calib_problem pr;
    double total = 0;
    if (build_problem(hp, p, &c, &pr) != VKMIX_OK) total = INFINITY;
    for (uint32_t q = 0; q < pr.n_prob && isfinite(total); q++) {
        const uint32_t m = pr.m[q];
        uint8_t idx[64] = { 0 }, best_idx[64] = { 0 };
        double best = INFINITY;
        if (m > 12) {
            total = INFINITY;
            break;
        }
        for (;;) {
            uint64_t cost = 0;
            double v = 0;
            for (uint32_t i = 0; i < m; i++) {
                cost += pr.items[q][i].cost[idx[i]];
                v += pr.items[q][i].val[idx[i]];
            }
            if (cost <= pr.budget[q] && v < best) {
                best = v;
                memcpy(best_idx, idx, m);
            }
            uint32_t i = 0;
            while (i < m && ++idx[i] == VKM_CALIB_N_CHOICES) idx[i++] = 0;
            if (i == m) break;
        }
        total += best;
        for (uint32_t i = 0; i < m && isfinite(best); i++) {
            uint32_t id = pr.layer[q][i];
            (id >= hp->n_layer ? v_bits : k_bits)[id % hp->n_layer] = (uint8_t)choice_widths[best_idx[i]];
        }
    }
    problem_free(&pr);
    return total;
}

/* --------------------------------------------------------------------------- public wrappers */

static uint32_t default_ctx(const vkm_hparams *hp)
{
    return hp->n_ctx_train && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
}

vkmix_error vkmix_calibrate_importance(const vkmix_model *model, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                       int n_threads, vkmix_calibrate_progress_fn progress, void *user,
                                       float *loss, float *imp_k, float *imp_v)
{
    if (!model) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkm_ref_model r;
    vkmix_error e = vkm_model_ref_weights(model, &r);
    if (e != VKMIX_OK) return failf(vkm_err_buf(), VKM_ERR_SIZE, e, "calibration: fp32 copies of the weights failed");
    e = vkm_calib_importance(&r.w, tokens, n_seq, T, n_threads, progress, user, loss, imp_k, imp_v, vkm_err_buf(),
                             VKM_ERR_SIZE);
    vkm_ref_model_free(&r);
    return e;
}

vkmix_error vkmix_calibrate_kv_error(const vkmix_model *model, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                     uint32_t group, uint32_t sinks, int n_threads,
                                     vkmix_calibrate_progress_fn progress, void *user, float *err_k, float *err_v)
{
    if (!model) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkm_ref_model r;
    vkmix_error e = vkm_model_ref_weights(model, &r);
    if (e != VKMIX_OK) return failf(vkm_err_buf(), VKM_ERR_SIZE, e, "calibration: fp32 copies of the weights failed");
    e = vkm_calib_kv_error(&r.w, tokens, n_seq, T, group, sinks, n_threads, progress, user, err_k, err_v, vkm_err_buf(),
                           VKM_ERR_SIZE);
    vkm_ref_model_free(&r);
    return e;
}

vkmix_error vkmix_calibrate_allocate(const vkmix_model *model, const vkmix_calib_alloc_params *params,
                                     vkmix_kv_config *out, vkmix_kv_memory *mem, double *objective)
{
    if (!model || !params || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkmix_calib_alloc_params p = *params;
    if (!p.n_ctx) p.n_ctx = default_ctx(&model->hp);
    vkmix_kv_config c;
    vkmix_kv_config_default(&c);
    vkmix_error e = vkm_calib_allocate(&model->hp, &p, c.k_bits, c.v_bits, mem, objective, vkm_err_buf(), VKM_ERR_SIZE);
    if (e != VKMIX_OK) return e;
    c.n_layer = model->hp.n_layer;
    c.group = p.group;
    c.window = p.window;
    c.sinks = p.sinks;
    snprintf(c.name, sizeof c.name, "calibrated");
    *out = c;
    return VKMIX_OK;
}
