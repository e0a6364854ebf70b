/* Sampler tests: greedy, top-k=1, the empirical distribution of 200k draws
 * against the analytically computed one, seeds, repetition penalty, errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/sampler.h"
#include "testutil.h"

static vkm_sampler *make(float temp, int32_t top_k, float top_p, float min_p, uint64_t seed)
{
    vkm_sampler_params p;
    vkm_sampler_default_params(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    vkm_sampler *s = NULL;
    char err[256] = "";
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_OK && s, "create: %s", err);
    return s;
}

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void random_logits(tu_rng *r, float *x, uint32_t n, float scale)
{
    for (uint32_t i = 0; i < n; i++) x[i] = scale * tu_rng_normal(r);
}

/* ---------------------------------------------------------------- analytic reference */

typedef struct { int32_t id; double logit; } ref_c;

static int ref_cmp(const void *a, const void *b)
{
    const ref_c *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

/* the distribution the spec describes, in doubles, over all n ids (0 when cut) */
static void reference(const float *logits, uint32_t n, float temp, int32_t top_k, float top_p, float min_p,
                      double *prob, double *margin)
{
    ref_c *c = malloc(n * sizeof *c);
    double *p = malloc(n * sizeof *p);
    for (uint32_t i = 0; i < n; i++) {
        c[i].id = (int32_t)i;
        c[i].logit = logits[i];
    }
    qsort(c, n, sizeof *c, ref_cmp);
    uint32_t k = (top_k > 0 && (uint32_t)top_k < n) ? (uint32_t)top_k : n;
    double sum = 0;
    for (uint32_t i = 0; i < k; i++) {
        p[i] = exp((c[i].logit - c[0].logit) / temp);
        sum += p[i];
    }
    for (uint32_t i = 0; i < k; i++) p[i] /= sum;
    *margin = 1.0;
    uint32_t m = k;
    if (top_p < 1.0f) {
        double cum = 0;
        for (uint32_t i = 0; i < k; i++) {
            cum += p[i];
            double dm = fabs(cum - (double)top_p);
            if (dm < *margin) *margin = dm;
            if (cum >= (double)top_p) { m = i + 1; break; }
        }
    }
    if (min_p > 0.0f) {
        uint32_t keep = 1;
        while (keep < m && p[keep] >= (double)min_p * p[0]) keep++;
        for (uint32_t i = 1; i < m; i++) {
            double dm = fabs(p[i] - (double)min_p * p[0]);
            if (dm < *margin) *margin = dm;
        }
        m = keep;
    }
    sum = 0;
    for (uint32_t i = 0; i < m; i++) sum += p[i];
    for (uint32_t i = 0; i < n; i++) prob[i] = 0;
    for (uint32_t i = 0; i < m; i++) prob[c[i].id] = p[i] / sum;
    free(c);
    free(p);
}

static void check_distribution(const char *name, float temp, int32_t top_k, float top_p, float min_p, uint64_t seed,
                               int N, float scale)
{
    enum { NMAX = 1024, DRAWS = 200000 };
    tu_rng r;
    tu_rng_seed(&r, seed);
    static float logits[NMAX];
    static double ref[NMAX];
    if (N > NMAX) N = NMAX;
    random_logits(&r, logits, (uint32_t)N, scale);
    double margin;
    reference(logits, (uint32_t)N, temp, top_k, top_p, min_p, ref, &margin);
    CHECK(margin > 1e-6, "%s: test logits too close to a cut-off (%g)", name, margin);
    vkm_sampler *s = make(temp, top_k, top_p, min_p, seed);
    if (!s) return;

    /* the sampler's own distribution */
    static int32_t ids[NMAX];
    static float pr[NMAX];
    size_t nk = 0;
    CHECK(vkm_sampler_distribution(s, logits, (uint32_t)N, ids, pr, (size_t)N, &nk, NULL, 0) == VKMIX_OK, "distribution");
    size_t nref = 0;
    for (int i = 0; i < N; i++) nref += ref[i] > 0;
    CHECK(nk == nref, "%s: %zu candidates kept, reference %zu", name, nk, nref);
    double maxd = 0;
    for (size_t i = 0; i < nk; i++) {
        double dd = fabs((double)pr[i] - ref[ids[i]]);
        if (dd > maxd) maxd = dd;
        if (i) CHECK(pr[i] <= pr[i - 1], "sorted");
    }
    CHECK(maxd < 1e-6, "%s: distribution differs from the reference by %g", name, maxd);

    /* 200k draws */
    static long cnt[NMAX];
    memset(cnt, 0, sizeof cnt);
    static float copy[NMAX];
    memcpy(copy, logits, sizeof copy);
    for (int i = 0; i < DRAWS; i++) {
        int32_t id = vkm_sampler_sample(s, logits, (uint32_t)N);
        if (id < 0 || id >= N) { CHECK(0, "bad id %d", (int)id); break; }
        cnt[id]++;
    }
    CHECK(memcmp(copy, logits, sizeof copy) == 0, "logits unchanged");
    double chi2 = 0, maxabs = 0;
    int df = -1;
    for (int i = 0; i < N; i++) {
        double f = (double)cnt[i] / DRAWS;
        if (fabs(f - ref[i]) > maxabs) maxabs = fabs(f - ref[i]);
        if (ref[i] == 0) {
            CHECK(cnt[i] == 0, "%s: id %d drawn %ld times but was cut", name, i, cnt[i]);
            continue;
        }
        double e = ref[i] * DRAWS;
        chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
        df++;
    }
    /* a generous bound: mean df, sd sqrt(2 df); 6 sd */
    double bound = df + 6.0 * sqrt(2.0 * (df > 0 ? df : 1)) + 10.0;
    CHECK(chi2 < bound, "%s: chi-square %.1f with %d dof (bound %.1f)", name, chi2, df, bound);
    CHECK(maxabs < 0.005, "%s: max |empirical - reference| = %g", name, maxabs);
    printf("%-32s n %4d kept %2zu  chi2 %6.1f (dof %2d)  max|diff| %.5f\n", name, N, nk, chi2, df, maxabs);
    vkm_sampler_free(s);
}

/* ---------------------------------------------------------------- tests */

static void test_defaults(void)
{
    vkm_sampler_params p;
    vkm_sampler_default_params(&p);
    CHECK(p.temperature == 0.8f && p.top_k == 40 && p.top_p == 0.95f && p.min_p == 0.05f && p.repeat_penalty == 1.0f &&
              p.repeat_last_n == 64 && p.seed == VKM_SAMPLER_DEFAULT_SEED,
          "defaults");
}

static void test_greedy(void)
{
    tu_rng r;
    tu_rng_seed(&r, 1);
    enum { N = 1000 };
    static float x[N];
    vkm_sampler *g = make(0.0f, 40, 0.95f, 0.05f, 1);
    vkm_sampler *gneg = make(-1.0f, 0, 1.0f, 0.0f, 1);
    if (!g || !gneg) return;
    for (int t = 0; t < 50; t++) {
        random_logits(&r, x, N, 3.0f);
        uint32_t a = argmax(x, N);
        CHECK(vkm_sampler_sample(g, x, N) == (int32_t)a, "greedy = argmax");
        CHECK(vkm_sampler_sample(gneg, x, N) == (int32_t)a, "temperature < 0 is greedy");
    }
    /* ties: lowest id */
    float tie[6] = { 1, 5, 2, 5, 5, -3 };
    CHECK(vkm_sampler_sample(g, tie, 6) == 1, "tie -> lowest id");
    /* top-k = 1 equals greedy at any temperature */
    const float temps[] = { 0.1f, 0.8f, 1.0f, 3.0f, 100.0f };
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
        vkm_sampler *k1 = make(temps[ti], 1, 1.0f, 0.0f, 1234 + ti);
        if (!k1) continue;
        for (int t = 0; t < 30; t++) {
            random_logits(&r, x, N, 1.0f);
            CHECK(vkm_sampler_sample(k1, x, N) == (int32_t)argmax(x, N), "top-k 1 = greedy at T=%g", (double)temps[ti]);
        }
        CHECK(vkm_sampler_sample(k1, tie, 6) == 1, "top-k 1 tie");
        vkm_sampler_free(k1);
    }
    /* -inf logits are never drawn; a single finite one always is */
    float inf[5] = { -INFINITY, -INFINITY, 0.5f, -INFINITY, -INFINITY };
    vkm_sampler *s = make(1.0f, 0, 1.0f, 0.0f, 5);
    if (s) {
        for (int i = 0; i < 100; i++) CHECK(vkm_sampler_sample(s, inf, 5) == 2, "only finite logit");
        vkm_sampler_free(s);
    }
    CHECK(vkm_sampler_sample(g, inf, 5) == 2, "greedy with -inf");
    vkm_sampler_free(g);
    vkm_sampler_free(gneg);
}

static void test_seeds(void)
{
    enum { N = 50, L = 1000 };
    tu_rng r;
    tu_rng_seed(&r, 3);
    float x[N];
    random_logits(&r, x, N, 1.0f);
    static int32_t a[L], b[L], c[L];
    vkm_sampler *s1 = make(1.0f, 0, 1.0f, 0.0f, 42);
    vkm_sampler *s2 = make(1.0f, 0, 1.0f, 0.0f, 42);
    vkm_sampler *s3 = make(1.0f, 0, 1.0f, 0.0f, 43);
    if (!s1 || !s2 || !s3) return;
    for (int i = 0; i < L; i++) {
        a[i] = vkm_sampler_sample(s1, x, N);
        b[i] = vkm_sampler_sample(s2, x, N);
        c[i] = vkm_sampler_sample(s3, x, N);
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same sequence");
    int diff = 0;
    for (int i = 0; i < L; i++) diff += a[i] != c[i];
    CHECK(diff > L / 2, "different seeds differ (%d of %d positions)", diff, L);
    /* reset repeats the sequence */
    vkm_sampler_reset(s1);
    int same = 1;
    for (int i = 0; i < L; i++) same &= vkm_sampler_sample(s1, x, N) == a[i];
    CHECK(same, "reset repeats");
    vkm_sampler_set_seed(s3, 42);
    same = 1;
    for (int i = 0; i < L; i++) same &= vkm_sampler_sample(s3, x, N) == a[i];
    CHECK(same, "set_seed(42) gives seed 42's sequence");
    /* pinned values: the PRNG (xoshiro256** from splitmix64) and the draw are
     * part of the format; a change here breaks reproducibility across versions */
    static const int32_t golden[16] = { 41, 28, 8, 44, 11, 5, 26, 7, 17, 21, 8, 14, 4, 14, 26, 13 };
    int g_ok = 1;
    for (int i = 0; i < 16; i++) g_ok &= a[i] == golden[i];
    if (!g_ok) {
        fprintf(stderr, "first draws:");
        for (int i = 0; i < 16; i++) fprintf(stderr, " %d,", (int)a[i]);
        fprintf(stderr, "\n");
    }
    CHECK(g_ok, "pinned sequence for seed 42");
    vkm_sampler_free(s1);
    vkm_sampler_free(s2);
    vkm_sampler_free(s3);
}

static void test_penalty(void)
{
    vkm_sampler_params p;
    vkm_sampler_default_params(&p);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.2f;
    p.repeat_last_n = 2;
    vkm_sampler *s = NULL;
    CHECK(vkm_sampler_create(&p, &s, NULL, 0) == VKMIX_OK, "create");
    if (!s) return;
    float pos[4] = { 2.0f, 1.9f, -1.0f, -1.1f };
    CHECK(vkm_sampler_sample(s, pos, 4) == 0, "no history: argmax");
    vkm_sampler_accept(s, 0);
    CHECK(vkm_sampler_sample(s, pos, 4) == 1, "positive logit divided: 2.0/1.2 < 1.9");
    CHECK(pos[0] == 2.0f, "logits not modified");
    float neg[3] = { -1.0f, -1.1f, -5.0f };
    CHECK(vkm_sampler_sample(s, neg, 3) == 1, "negative logit multiplied: -1.2 < -1.1");
    /* once per distinct token, not per occurrence */
    float once[2] = { 2.0f, 1.5f };
    vkm_sampler_accept(s, 0); /* history: 0, 0 */
    CHECK(vkm_sampler_sample(s, once, 2) == 0, "penalty applied once: 1.667 > 1.5");
    /* the window: after two other tokens, 0 is no longer penalized */
    vkm_sampler_accept(s, 7);
    vkm_sampler_accept(s, 8);
    CHECK(vkm_sampler_sample(s, pos, 4) == 0, "out of the window");
    /* ids outside the vocabulary in the history are ignored */
    vkm_sampler_accept(s, 1000);
    vkm_sampler_accept(s, -3);
    CHECK(vkm_sampler_sample(s, pos, 4) == 0, "foreign ids ignored");
    vkm_sampler_accept(s, 0);
    vkm_sampler_reset(s);
    CHECK(vkm_sampler_sample(s, pos, 4) == 0, "reset clears the history");
    vkm_sampler_free(s);

    /* with sampling: the penalized distribution */
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 64;
    CHECK(vkm_sampler_create(&p, &s, NULL, 0) == VKMIX_OK, "create");
    if (!s) return;
    vkm_sampler_accept(s, 0);
    vkm_sampler_accept(s, 2);
    float x[3] = { 1.0f, 0.5f, -1.0f };
    int32_t ids[3];
    float pr[3];
    size_t n = 0;
    CHECK(vkm_sampler_distribution(s, x, 3, ids, pr, 3, &n, NULL, 0) == VKMIX_OK && n == 3, "distribution");
    /* penalized logits: 0.5, 0.5, -2.0 */
    double e0 = exp(0.0), e2 = exp(-2.5), z = 2 * e0 + e2;
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 2, "order with a tie: lower id first");
    CHECK(fabs(pr[0] - e0 / z) < 1e-6 && fabs(pr[1] - e0 / z) < 1e-6 && fabs(pr[2] - e2 / z) < 1e-6,
          "penalized probabilities");
    vkm_sampler_free(s);
}

static void test_errors(void)
{
    vkm_sampler_params p;
    vkm_sampler *s = (vkm_sampler *)&p; /* must be reset to NULL on failure */
    char err[256];
    vkm_sampler_default_params(&p);
    p.top_p = 1.5f;
    err[0] = 0;
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT && !s && err[0], "top_p > 1");
    vkm_sampler_default_params(&p);
    p.top_p = NAN;
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "top_p NaN");
    vkm_sampler_default_params(&p);
    p.min_p = -0.1f;
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "min_p < 0");
    vkm_sampler_default_params(&p);
    p.temperature = NAN;
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "temperature NaN");
    vkm_sampler_default_params(&p);
    p.repeat_penalty = 0.0f;
    CHECK(vkm_sampler_create(&p, &s, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "repeat_penalty 0");
    vkm_sampler_default_params(&p);
    p.repeat_last_n = -1;
    CHECK(vkm_sampler_create(&p, &s, NULL, 0) == VKMIX_ERROR_INVALID_ARGUMENT, "repeat_last_n < 0");
    CHECK(vkm_sampler_create(NULL, &s, NULL, 0) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL params");

    vkm_sampler_default_params(&p);
    CHECK(vkm_sampler_create(&p, &s, NULL, 0) == VKMIX_OK && s, "create");
    if (!s) return;
    float x[4] = { 1, 2, 3, 4 };
    int32_t id = 7;
    err[0] = 0;
    CHECK(vkm_sampler_sample2(s, x, 0, &id, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT && id == -1 && err[0],
          "n_vocab 0");
    CHECK(vkm_sampler_sample(s, x, 0) == -1, "sample: -1 on error");
    CHECK(vkm_sampler_sample(s, NULL, 4) == -1, "NULL logits");
    x[2] = NAN;
    CHECK(vkm_sampler_sample2(s, x, 4, &id, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NaN logit: %s", err);
    x[2] = INFINITY;
    CHECK(vkm_sampler_sample(s, x, 4) == -1, "+inf logit");
    float ninf[3] = { -INFINITY, -INFINITY, -INFINITY };
    CHECK(vkm_sampler_sample(s, ninf, 3) == -1, "all -inf");
    vkm_sampler_params gp = p;
    gp.temperature = 0;
    vkm_sampler *g = NULL;
    CHECK(vkm_sampler_create(&gp, &g, NULL, 0) == VKMIX_OK, "greedy create");
    CHECK(vkm_sampler_sample(g, ninf, 3) == -1, "greedy all -inf");
    vkm_sampler_free(g);
    CHECK(vkm_sampler_sample2(NULL, x, 4, &id, NULL, 0) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL sampler");
    {
        int32_t ids[1];
        float pr[1];
        size_t n = 0;
        float y[4] = { 4, 3, 2, 1 };
        vkmix_error e = vkm_sampler_distribution(s, y, 4, ids, pr, 1, &n, NULL, 0);
        CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && n > 1, "distribution cap too small");
    }
    /* scratch grows and shrinks with n_vocab */
    static float big[100000];
    tu_rng r;
    tu_rng_seed(&r, 8);
    random_logits(&r, big, 100000, 1.0f);
    float y[4] = { 4, 3, 2, 1 };
    int32_t a = vkm_sampler_sample(s, y, 4);
    int32_t bid = vkm_sampler_sample(s, big, 100000);
    int32_t c = vkm_sampler_sample(s, y, 4);
    CHECK(a >= 0 && a < 4 && bid >= 0 && bid < 100000 && c >= 0 && c < 4, "vocab sizes change");
    vkm_sampler_free(s);
    vkm_sampler_free(NULL);
}

int main(void)
{
    test_defaults();
    test_greedy();
    test_seeds();
    test_penalty();
    test_errors();
    check_distribution("T0.7 k20 p0.9 m0.05", 0.7f, 20, 0.9f, 0.05f, 11, 64, 2.0f);
    check_distribution("T1 (plain softmax)", 1.0f, 0, 1.0f, 0.0f, 12, 64, 2.0f);
    check_distribution("T1.5 p0.8", 1.5f, 0, 0.8f, 0.0f, 13, 64, 2.0f);
    check_distribution("T1.2 k10 m0.1", 1.2f, 10, 1.0f, 0.1f, 14, 64, 2.0f);
    check_distribution("defaults T0.8 k40 p.95 m.05", 0.8f, 40, 0.95f, 0.05f, 15, 64, 2.0f);
    /* larger vocabularies: the partial-sort paths (top-p prefix, draw prefix) */
    check_distribution("n300 T1 (plain softmax)", 1.0f, 0, 1.0f, 0.0f, 16, 300, 1.0f);
    check_distribution("n1000 T0.9 p0.7", 0.9f, 0, 0.7f, 0.0f, 17, 1000, 1.5f);
    check_distribution("n1000 T1 k500 m0.2", 1.0f, 500, 1.0f, 0.2f, 18, 1000, 1.0f);
    return tu_finish("test_sampler");
}
