/* Token sampler; see sampler.h. */
#include "text/sampler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t id;
    float logit;     /* after the repetition penalty */
    double e;        /* exp((logit - max) / temperature) */
} smp_cand;

struct vkm_sampler {
    vkm_sampler_params p;
    uint64_t rng[4];        /* xoshiro256** state */
    int32_t *hist;          /* [repeat_last_n] ring buffer of accepted ids */
    uint32_t n_hist, hist_head;
    int32_t *hist_sorted;   /* [repeat_last_n] scratch */
    smp_cand *cand;         /* [cap] scratch */
    uint32_t cap;
    /* result of build(): cand[0..n_sorted) sorted, of which [0..n_kept) are
     * kept, with weights e summing to w_kept (the whole candidate mass when
     * nothing is cut, in which case the sorted part may be a prefix) */
    uint32_t n_sorted, n_kept;
    double w_kept;
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

/* Moves the candidates with e >= tau to the front of cand[0..n); returns
 * their count and their summed weight in *mass. */
static uint32_t gather(smp_cand *c, uint32_t n, double tau, double *mass)
{
    uint32_t m = 0;
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        if (c[i].e >= tau) {
            sum += c[i].e;
            if (i != m) {
                smp_cand t = c[m];
                c[m] = c[i];
                c[i] = t;
            }
            m++;
        }
    }
    *mass = sum;
    return m;
}

/* Sorts the smallest prefix (in the sampling order: logit desc, id asc) whose
 * weight reaches `target` (with slack for rounding) to the front; returns its
 * length. Selecting by a threshold on e keeps it a prefix of the order. */
static uint32_t sorted_prefix(smp_cand *c, uint32_t n, double target, double total)
{
    uint32_t m = n;
    if (n > 64) {
        const double slack = 1e-9 * total;
        for (double cexp = 4.0; cexp <= 64.0; cexp *= 2.0) {
            double mass;
            uint32_t k = gather(c, n, exp(-cexp), &mass);
            if (mass >= target + slack) { m = k; break; }
        }
    }
    qsort(c, m, sizeof *c, cand_cmp);
    return m;
}

/* Penalty, top-k, temperature, top-p, min-p: fills the n_sorted / n_kept /
 * w_kept fields (see the struct). u in [0, 1): the draw that follows (used to
 * sort only what it needs when nothing is cut); u < 0: sort all kept. */
static vkmix_error build(vkm_sampler *s, const float *logits, uint32_t n_vocab, double u, char *err,
                         size_t errlen)
{
    if (!logits || n_vocab == 0) {
        smp_seterr(err, errlen, "sampler: %s", logits ? "n_vocab is 0" : "logits is NULL");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (n_vocab > s->cap) {
        smp_cand *c = realloc(s->cand, (size_t)n_vocab * sizeof *c);
        if (!c) {
            smp_seterr(err, errlen, "sampler: out of host memory");
            return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        }
        s->cand = c;
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
        s->cand[0].e = 1.0;
        s->n_sorted = s->n_kept = 1;
        s->w_kept = 1.0;
        return VKMIX_OK;
    }

    /* top-k: a heap of the k best (or all), -inf dropped */
    uint32_t k = n_vocab;
    if (s->p.top_k > 0 && (uint32_t)s->p.top_k < n_vocab) k = (uint32_t)s->p.top_k;
    uint32_t nh = 0, j = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        smp_cand c = { (int32_t)i, logits[i], 0.0 };
        if (j < n_pen && (uint32_t)s->hist_sorted[j] == i) { c.logit = PENALIZE(c.logit); j++; }
        if (isinf(c.logit)) continue; /* -inf: probability 0 */
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
    if (nh == 0) {
        smp_seterr(err, errlen, "sampler: all logits are -inf");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }

    /* temperature + softmax weights (normalized below where needed) */
    float maxl = s->cand[0].logit;
    for (uint32_t i = 1; i < nh; i++)
        if (s->cand[i].logit > maxl) maxl = s->cand[i].logit;
    const double inv_t = 1.0 / (double)s->p.temperature;
    const double m = (double)maxl * inv_t;
    double z = 0.0;
    for (uint32_t i = 0; i < nh; i++) {
        double e = exp((double)s->cand[i].logit * inv_t - m);
        s->cand[i].e = e;
        z += e;
    }

    /* sort what the cuts (or the draw) need */
    const int cut_p = s->p.top_p < 1.0f, cut_min = s->p.min_p > 0.0f;
    uint32_t ns;
    if (cut_min) {
        double mass;
        ns = gather(s->cand, nh, (double)s->p.min_p * (1.0 - 1e-6), &mass); /* max weight is 1 */
        qsort(s->cand, ns, sizeof *s->cand, cand_cmp);
    } else if (cut_p) {
        ns = sorted_prefix(s->cand, nh, (double)s->p.top_p * z, z);
    } else if (u >= 0.0) {
        ns = sorted_prefix(s->cand, nh, u * z, z);
    } else {
        ns = nh;
        qsort(s->cand, ns, sizeof *s->cand, cand_cmp);
    }

    /* top-p: the shortest prefix whose probability reaches top_p */
    uint32_t n = ns;
    if (cut_p) {
        double cum = 0.0;
        for (uint32_t i = 0; i < ns; i++) {
            cum += s->cand[i].e / z;
            if (cum >= (double)s->p.top_p) { n = i + 1; break; }
        }
    }
    /* min-p: p >= min_p * p_max (sorted, so a prefix) */
    if (cut_min) {
        double thr = (double)s->p.min_p * (s->cand[0].e / z);
        uint32_t keep = 1;
        while (keep < n && s->cand[keep].e / z >= thr) keep++;
        n = keep;
    }
    s->n_sorted = ns;
    s->n_kept = n;
    if (cut_p || cut_min) {
        double w = 0.0;
        for (uint32_t i = 0; i < n; i++) w += s->cand[i].e;
        s->w_kept = w;
    } else {
        s->n_kept = nh; /* everything is kept; only a prefix may be sorted */
        s->w_kept = z;
    }
    return VKMIX_OK;
}

vkmix_error vkm_sampler_sample2(vkm_sampler *s, const float *logits, uint32_t n_vocab, int32_t *out,
                                char *err, size_t errlen)
{
    if (out) *out = -1;
    if (!s || !out) {
        smp_seterr(err, errlen, "sampler: NULL argument");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    const int greedy = s->p.temperature <= 0.0f;
    /* the draw is made first (and always, when not greedy) so that the stream
     * of random numbers does not depend on the logits */
    double u = greedy ? 0.0 : rng_uniform(s);
    vkmix_error e = build(s, logits, n_vocab, u, err, errlen);
    if (e != VKMIX_OK) return e;
    if (greedy) {
        *out = s->cand[0].id;
        return VKMIX_OK;
    }
    /* the first kept candidate (in order) whose cumulative weight exceeds u * total */
    const double target = u * s->w_kept;
    uint32_t lim = s->n_kept < s->n_sorted ? s->n_kept : s->n_sorted;
    uint32_t pick = lim - 1;
    double cum = 0.0;
    for (uint32_t i = 0; i < lim; i++) {
        cum += s->cand[i].e;
        if (target < cum) { pick = i; break; }
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
    vkmix_error e = build(s, logits, n_vocab, -1.0, err, errlen);
    if (e != VKMIX_OK) return e;
    uint32_t n = s->n_kept;
    *n_out = n;
    if (n > cap) {
        smp_seterr(err, errlen, "sampler: %u candidates do not fit in %zu", n, cap);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = s->cand[i].id;
        probs[i] = (float)(s->cand[i].e / s->w_kept);
    }
    return VKMIX_OK;
}
