/* Token sampler; see sampler.h. */
#include "sampler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t id;
    float logit;     /* after the repetition penalty */
} smp_cand;

struct vkm_sampler {
    vkm_sampler_params p;
    uint64_t rng[4];        /* xoshiro256** state */
    int32_t *hist;          /* [repeat_last_n] ring buffer of accepted ids */
    uint32_t n_hist, hist_head;
    int32_t *hist_sorted;   /* [repeat_last_n] scratch */
    smp_cand *cand;         /* [cap] scratch */
    double *prob;           /* [cap] scratch */
    uint32_t cap;
};

static void smp_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- PRNG */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* uniform in [0, 1) with 53 random bits */
static double rng_uniform(vkm_sampler *s) { return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53; }

static void seed_rng(vkm_sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ---------------------------------------------------------------- lifecycle */

void vkm_sampler_default_params(vkm_sampler_params *p)
{
    if (!p) return;
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = VKM_SAMPLER_DEFAULT_SEED;
}

vkmix_error vkm_sampler_create(const vkm_sampler_params *p, vkm_sampler **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    if (!p || !out) {
        smp_seterr(err, errlen, "sampler: NULL argument");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (isnan(p->temperature) || isinf(p->temperature)) {
        smp_seterr(err, errlen, "sampler: temperature must be finite");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f)) {
        smp_seterr(err, errlen, "sampler: top_p %g is not in [0, 1]", (double)p->top_p);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) {
        smp_seterr(err, errlen, "sampler: min_p %g is not in [0, 1]", (double)p->min_p);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty)) {
        smp_seterr(err, errlen, "sampler: repeat_penalty %g must be finite and > 0", (double)p->repeat_penalty);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (p->repeat_last_n < 0) {
        smp_seterr(err, errlen, "sampler: repeat_last_n %d must be >= 0", (int)p->repeat_last_n);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    vkm_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->p = *p;
    if (p->repeat_last_n > 0) {
        s->hist = malloc((size_t)p->repeat_last_n * sizeof *s->hist);
        s->hist_sorted = malloc((size_t)p->repeat_last_n * sizeof *s->hist_sorted);
        if (!s->hist || !s->hist_sorted) goto oom;
    }
    vkm_sampler_reset(s);
    *out = s;
    return VKMIX_OK;
oom:
    vkm_sampler_free(s);
    smp_seterr(err, errlen, "sampler: out of host memory");
    return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
}

void vkm_sampler_free(vkm_sampler *s)
{
    if (!s) return;
    free(s->hist);
    free(s->hist_sorted);
    free(s->cand);
    free(s->prob);
    free(s);
}

void vkm_sampler_reset(vkm_sampler *s)
{
    if (!s) return;
    s->n_hist = 0;
    s->hist_head = 0;
    seed_rng(s, s->p.seed);
}

void vkm_sampler_set_seed(vkm_sampler *s, uint64_t seed)
{
    if (!s) return;
    s->p.seed = seed;
    vkm_sampler_reset(s);
}

const vkm_sampler_params *vkm_sampler_params_of(const vkm_sampler *s) { return s ? &s->p : NULL; }

void vkm_sampler_accept(vkm_sampler *s, int32_t id)
{
    if (!s || s->p.repeat_last_n <= 0) return;
    uint32_t n = (uint32_t)s->p.repeat_last_n;
    s->hist[s->hist_head] = id;
    s->hist_head = (s->hist_head + 1) % n;
    if (s->n_hist < n) s->n_hist++;
}

/* ---------------------------------------------------------------- sampling */

static int cand_better(const smp_cand *a, const smp_cand *b)
{
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

static int cand_cmp(const void *pa, const void *pb)
{
    const smp_cand *a = pa, *b = pb;
    if (cand_better(a, b)) return -1;
    if (cand_better(b, a)) return 1;
    return 0;
}

static int int_cmp(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return a < b ? -1 : (a > b);
}

/* min-heap on "better": the root is the worst of the kept candidates */
static void heap_sift_down(smp_cand *h, uint32_t n, uint32_t i)
{
    smp_cand x = h[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_better(&h[c], &h[c + 1])) c++;
        if (!cand_better(&x, &h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heap_sift_up(smp_cand *h, uint32_t i)
{
    smp_cand x = h[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!cand_better(&h[p], &x)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

/* Builds the kept candidates with normalized probabilities in s->cand /
 * s->prob. Returns the count (>= 1) or 0 on error (with err set). */
static vkmix_error build(vkm_sampler *s, const float *logits, uint32_t n_vocab, uint32_t *n_kept,
                         char *err, size_t errlen)
{
    if (!logits || n_vocab == 0) {
        smp_seterr(err, errlen, "sampler: %s", logits ? "n_vocab is 0" : "logits is NULL");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (n_vocab > s->cap) {
        smp_cand *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
        if (!c) goto oom;
        s->cand = c;
        double *pr = realloc(s->prob, (size_t)n_vocab * sizeof *pr);
        if (!pr) goto oom;
        s->prob = pr;
        s->cap = n_vocab;
    }
    for (uint32_t i = 0; i < n_vocab; i++) {
        float v = logits[i];
        if (isnan(v) || (isinf(v) && v > 0)) {
            smp_seterr(err, errlen, "sampler: logit %u is %s", i, isnan(v) ? "NaN" : "+inf");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
    }

    /* repetition penalty: one adjustment per distinct id in the window */
    uint32_t n_pen = 0;
    if (s->p.repeat_penalty != 1.0f && s->n_hist > 0) {
        memcpy(s->hist_sorted, s->hist, s->n_hist * sizeof *s->hist);
        qsort(s->hist_sorted, s->n_hist, sizeof *s->hist_sorted, int_cmp);
        for (uint32_t i = 0; i < s->n_hist; i++) {
            int32_t id = s->hist_sorted[i];
            if (id < 0 || (uint32_t)id >= n_vocab) continue;
            if (n_pen > 0 && s->hist_sorted[n_pen - 1] == id) continue;
            s->hist_sorted[n_pen++] = id;
        }
    }
    const float rp = s->p.repeat_penalty;
#define PENALIZE(v) ((v) > 0.0f ? (v) / rp : (v) * rp)

    /* greedy */
    if (s->p.temperature <= 0.0f) {
        uint32_t best = 0;
        float bv = -INFINITY;
        int any = 0;
        uint32_t j = 0; /* walks hist_sorted[0..n_pen) in id order */
        for (uint32_t i = 0; i < n_vocab; i++) {
            float v = logits[i];
            if (j < n_pen && (uint32_t)s->hist_sorted[j] == i) { v = PENALIZE(v); j++; }
            if (!any || v > bv) { bv = v; best = i; any = 1; }
        }
        if (isinf(bv)) {
            smp_seterr(err, errlen, "sampler: all logits are -inf");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        s->cand[0].id = (int32_t)best;
        s->cand[0].logit = bv;
        s->prob[0] = 1.0;
        *n_kept = 1;
        return VKMIX_OK;
    }

    /* top-k (a heap of the k best), then sort */
    uint32_t k = n_vocab;
    if (s->p.top_k > 0 && (uint32_t)s->p.top_k < n_vocab) k = (uint32_t)s->p.top_k;
    uint32_t nh = 0, j = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        smp_cand c = { (int32_t)i, logits[i] };
        if (j < n_pen && (uint32_t)s->hist_sorted[j] == i) { c.logit = PENALIZE(c.logit); j++; }
        if (k == n_vocab) {
            s->cand[nh++] = c;
        } else if (nh < k) {
            s->cand[nh] = c;
            heap_sift_up(s->cand, nh);
            nh++;
        } else if (cand_better(&c, &s->cand[0])) {
            s->cand[0] = c;
            heap_sift_down(s->cand, nh, 0);
        }
    }
#undef PENALIZE
    qsort(s->cand, nh, sizeof *s->cand, cand_cmp);
    while (nh > 0 && isinf(s->cand[nh - 1].logit)) nh--; /* -inf: probability 0 */
    if (nh == 0) {
        smp_seterr(err, errlen, "sampler: all logits are -inf");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }

    /* temperature + softmax */
    const double inv_t = 1.0 / (double)s->p.temperature;
    const double m = (double)s->cand[0].logit * inv_t;
    double sum = 0.0;
    for (uint32_t i = 0; i < nh; i++) {
        double e = exp((double)s->cand[i].logit * inv_t - m);
        s->prob[i] = e;
        sum += e;
    }
    for (uint32_t i = 0; i < nh; i++) s->prob[i] /= sum;

    /* top-p: the shortest prefix whose mass reaches top_p */
    uint32_t n = nh;
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        for (uint32_t i = 0; i < nh; i++) {
            cum += s->prob[i];
            if (cum >= (double)s->p.top_p) { n = i + 1; break; }
        }
    }
    /* min-p: p >= min_p * p_max (sorted, so a prefix) */
    if (s->p.min_p > 0.0f) {
        double thr = (double)s->p.min_p * s->prob[0];
        uint32_t keep = 1;
        while (keep < n && s->prob[keep] >= thr) keep++;
        n = keep;
    }
    sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += s->prob[i];
    for (uint32_t i = 0; i < n; i++) s->prob[i] /= sum;
    *n_kept = n;
    return VKMIX_OK;
oom:
    smp_seterr(err, errlen, "sampler: out of host memory");
    return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
}

vkmix_error vkm_sampler_sample2(vkm_sampler *s, const float *logits, uint32_t n_vocab, int32_t *out,
                                char *err, size_t errlen)
{
    if (out) *out = -1;
    if (!s || !out) {
        smp_seterr(err, errlen, "sampler: NULL argument");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    uint32_t n;
    vkmix_error e = build(s, logits, n_vocab, &n, err, errlen);
    if (e != VKMIX_OK) return e;
    if (s->p.temperature <= 0.0f) {
        *out = s->cand[0].id;
        return VKMIX_OK;
    }
    double u = rng_uniform(s), cum = 0.0;
    uint32_t pick = n - 1;
    for (uint32_t i = 0; i < n; i++) {
        cum += s->prob[i];
        if (u < cum) { pick = i; break; }
    }
    *out = s->cand[pick].id;
    return VKMIX_OK;
}

int32_t vkm_sampler_sample(vkm_sampler *s, const float *logits, uint32_t n_vocab)
{
    int32_t id = -1;
    if (vkm_sampler_sample2(s, logits, n_vocab, &id, NULL, 0) != VKMIX_OK) return -1;
    return id;
}

vkmix_error vkm_sampler_distribution(vkm_sampler *s, const float *logits, uint32_t n_vocab, int32_t *ids,
                                     float *probs, size_t cap, size_t *n_out, char *err, size_t errlen)
{
    if (n_out) *n_out = 0;
    if (!s || !n_out || (cap && (!ids || !probs))) {
        smp_seterr(err, errlen, "sampler: NULL argument");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    uint32_t n;
    vkmix_error e = build(s, logits, n_vocab, &n, err, errlen);
    if (e != VKMIX_OK) return e;
    *n_out = n;
    if (n > cap) {
        smp_seterr(err, errlen, "sampler: %u candidates do not fit in %zu", n, cap);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = s->cand[i].id;
        probs[i] = (float)s->prob[i];
    }
    return VKMIX_OK;
}
