/*
 * vkm_ref_grad_kv: dL/dW_k, dL/dW_v (and biases) against central finite
 * differences of an independent double-precision forward pass, on a tiny
 * random qwen2-style model (biases, NEOX RoPE with llama3 scaling, GQA,
 * untied output, a masked label), a GQA 3:1 llama-style one, and
 * stories260K; plus the loss definition (single shift, masking), thread
 * independence, errors and the speed on stories260K.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <math.h>
#include <string.h>
#include <time.h>
#include "ref_llama2c.h"
#include "ref/ref_model.h"
#include "testutil.h"

#define PI 3.14159265358979323846

/* ------------------------------------------------------------------ an independent double-precision model */

typedef struct dlayer {
    double *attn_norm, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
} dlayer;

typedef struct dmodel {
    vkm_hparams hp;
    double *tok_embd, *out_norm, *output; /* [V][D], [D], [V][D] */
    dlayer *layers;                       /* [n_layer]; missing biases are zero arrays */
    double *freqs;                        /* [head_dim/2] */
} dmodel;

static double *dcopy(const float *src, size_t n)
{
    double *d = calloc(n, sizeof(double));
    if (d && src)
        for (size_t i = 0; i < n; i++) d[i] = src[i];
    return d;
}

static void dmodel_free(dmodel *m)
{
    if (m->layers)
        for (uint32_t l = 0; l < m->hp.n_layer; l++) {
            dlayer *L = &m->layers[l];
            double *a[] = {L->attn_norm, L->wq, L->wk, L->wv, L->bq, L->bk, L->bv, L->wo,
                           L->ffn_norm, L->w_gate, L->w_up, L->w_down};
            for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) free(a[i]);
        }
    free(m->layers);
    free(m->tok_embd);
    free(m->out_norm);
    free(m->output);
    free(m->freqs);
    memset(m, 0, sizeof *m);
}

/* RoPE frequencies written out from the definitions, in double. */
static void dfreqs(const vkm_hparams *hp, double *f)
{
    for (uint32_t i = 0; i < hp->head_dim / 2; i++) {
        double freq = pow((double)hp->rope_theta, -(double)(2 * i) / hp->head_dim);
        if (hp->rope_scale_factor > 0) {
            double orig = hp->rope_orig_ctx, lo = hp->rope_low_freq_factor, hi = hp->rope_high_freq_factor;
            double wavelen = 2 * PI / freq;
            if (wavelen > orig / lo) freq /= hp->rope_scale_factor;
            else if (wavelen >= orig / hi) {
                double smooth = (orig / wavelen - lo) / (hi - lo);
                freq = (1 - smooth) * freq / hp->rope_scale_factor + smooth * freq;
            }
        }
        f[i] = freq;
    }
}

static int dmodel_init(dmodel *m, const vkm_ref_weights *w)
{
    memset(m, 0, sizeof *m);
    const vkm_hparams *hp = &w->hp;
    m->hp = *hp;
    const size_t D = hp->n_embd, V = hp->n_vocab, F = hp->n_ff;
    const size_t Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    m->tok_embd = dcopy(w->tok_embd, V * D);
    m->out_norm = dcopy(w->out_norm, D);
    m->output = dcopy(w->output, V * D);
    m->freqs = calloc(hp->head_dim / 2, sizeof(double));
    m->layers = calloc(hp->n_layer, sizeof(dlayer));
    if (!m->tok_embd || !m->out_norm || !m->output || !m->freqs || !m->layers) return -1;
    dfreqs(hp, m->freqs);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkm_ref_layer *s = &w->layers[l];
        dlayer *L = &m->layers[l];
        L->attn_norm = dcopy(s->attn_norm, D);
        L->wq = dcopy(s->wq, Q * D);
        L->wk = dcopy(s->wk, KV * D);
        L->wv = dcopy(s->wv, KV * D);
        L->bq = dcopy(s->bq, Q);
        L->bk = dcopy(s->bk, KV);
        L->bv = dcopy(s->bv, KV);
        L->wo = dcopy(s->wo, D * Q);
        L->ffn_norm = dcopy(s->ffn_norm, D);
        L->w_gate = dcopy(s->w_gate, F * D);
        L->w_up = dcopy(s->w_up, F * D);
        L->w_down = dcopy(s->w_down, D * F);
        if (!L->attn_norm || !L->wq || !L->wk || !L->wv || !L->bq || !L->bk || !L->bv || !L->wo ||
            !L->ffn_norm || !L->w_gate || !L->w_up || !L->w_down)
            return -1;
    }
    return 0;
}

static void d_rmsnorm(double *out, const double *x, const double *w, size_t n, double eps)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + eps);
    for (size_t i = 0; i < n; i++) out[i] = x[i] * r * w[i];
}

static void d_matvec(double *out, const double *W, const double *x, const double *b, size_t n_in, size_t n_out)
{
    for (size_t r = 0; r < n_out; r++) {
        double s = b ? b[r] : 0.0;
        for (size_t c = 0; c < n_in; c++) s += W[r * n_in + c] * x[c];
        out[r] = s;
    }
}

static void d_rope(double *x, size_t n_heads, const dmodel *m, size_t pos)
{
    const size_t hd = m->hp.head_dim, half = hd / 2;
    for (size_t h = 0; h < n_heads; h++)
        for (size_t i = 0; i < half; i++) {
            double a = pos * m->freqs[i], c = cos(a), s = sin(a);
            size_t ia = m->hp.rope_type == VKM_ROPE_NEOX ? i : 2 * i;
            size_t ib = m->hp.rope_type == VKM_ROPE_NEOX ? i + half : 2 * i + 1;
            double *e = x + h * hd, x0 = e[ia], x1 = e[ib];
            e[ia] = x0 * c - x1 * s;
            e[ib] = x0 * s + x1 * c;
        }
}

/* Mean cross-entropy of the batch, computed over the whole sequence at once
 * (no KV cache): positions t predict toks[t+1]; a sequence ends at its first
 * negative token. NAN when there is nothing to predict or on allocation failure. */
static double d_loss(const dmodel *m, const int32_t *tokens, uint32_t n_seq, uint32_t T)
{
    const vkm_hparams *hp = &m->hp;
    const size_t D = hp->n_embd, V = hp->n_vocab, F = hp->n_ff, hd = hp->head_dim;
    const size_t H = hp->n_head, HKV = hp->n_head_kv, Q = H * hd, KV = HKV * hd;
    double *x = calloc(T * D, sizeof(double)), *h = calloc(D, sizeof(double));
    double *q = calloc(T * Q, sizeof(double)), *k = calloc(T * KV, sizeof(double));
    double *v = calloc(T * KV, sizeof(double)), *a = calloc(Q, sizeof(double));
    double *o = calloc(D, sizeof(double)), *g = calloc(F, sizeof(double));
    double *u = calloc(F, sizeof(double)), *z = calloc(V, sizeof(double)), *sc = calloc(T, sizeof(double));
    double total = 0;
    long count = 0;
    if (!x || !h || !q || !k || !v || !a || !o || !g || !u || !z || !sc) {
        total = NAN;
        goto out;
    }
    for (uint32_t s = 0; s < n_seq; s++) {
        const int32_t *tk = tokens + (size_t)s * T;
        size_t n = 0;
        while (n + 1 < T && tk[n] >= 0 && tk[n + 1] >= 0) n++;
        for (size_t t = 0; t < n; t++) memcpy(x + t * D, m->tok_embd + (size_t)tk[t] * D, D * sizeof(double));
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            const dlayer *L = &m->layers[l];
            for (size_t t = 0; t < n; t++) {
                d_rmsnorm(h, x + t * D, L->attn_norm, D, hp->norm_eps);
                d_matvec(q + t * Q, L->wq, h, L->bq, D, Q);
                d_matvec(k + t * KV, L->wk, h, L->bk, D, KV);
                d_matvec(v + t * KV, L->wv, h, L->bv, D, KV);
                d_rope(q + t * Q, H, m, t);
                d_rope(k + t * KV, HKV, m, t);
            }
            for (size_t t = 0; t < n; t++) { /* attention of t over 0..t, then the FFN */
                for (size_t hh = 0; hh < H; hh++) {
                    size_t kvh = hh / (H / HKV);
                    double max = -INFINITY, sum = 0;
                    for (size_t s2 = 0; s2 <= t; s2++) {
                        double d = 0;
                        for (size_t i = 0; i < hd; i++) d += q[t * Q + hh * hd + i] * k[s2 * KV + kvh * hd + i];
                        sc[s2] = d / sqrt((double)hd);
                        if (sc[s2] > max) max = sc[s2];
                    }
                    for (size_t s2 = 0; s2 <= t; s2++) sum += (sc[s2] = exp(sc[s2] - max));
                    for (size_t i = 0; i < hd; i++) {
                        double acc = 0;
                        for (size_t s2 = 0; s2 <= t; s2++) acc += sc[s2] / sum * v[s2 * KV + kvh * hd + i];
                        a[hh * hd + i] = acc;
                    }
                }
                d_matvec(o, L->wo, a, NULL, Q, D);
                for (size_t i = 0; i < D; i++) x[t * D + i] += o[i];
                d_rmsnorm(h, x + t * D, L->ffn_norm, D, hp->norm_eps);
                d_matvec(g, L->w_gate, h, NULL, D, F);
                d_matvec(u, L->w_up, h, NULL, D, F);
                for (size_t i = 0; i < F; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
                d_matvec(o, L->w_down, g, NULL, F, D);
                for (size_t i = 0; i < D; i++) x[t * D + i] += o[i];
            }
        }
        for (size_t t = 0; t < n; t++) {
            d_rmsnorm(h, x + t * D, m->out_norm, D, hp->norm_eps);
            d_matvec(z, m->output, h, NULL, D, V);
            double max = z[0], sum = 0;
            for (size_t i = 1; i < V; i++)
                if (z[i] > max) max = z[i];
            for (size_t i = 0; i < V; i++) sum += exp(z[i] - max);
            total += max + log(sum) - z[tk[t + 1]];
            count++;
        }
    }
    total = count ? total / count : NAN;
out:
    free(x); free(h); free(q); free(k); free(v); free(a); free(o); free(g); free(u); free(z); free(sc);
    return total;
}

/* ------------------------------------------------------------------ finite differences */

typedef struct grads {
    uint32_t n_layer;
    size_t wlen, blen;
    float **wk, **wv, **bk, **bv; /* [n_layer] arrays */
    float *buf;
} grads;

static int grads_alloc(grads *g, const vkm_hparams *hp)
{
    g->n_layer = hp->n_layer;
    g->blen = (size_t)hp->n_head_kv * hp->head_dim;
    g->wlen = g->blen * hp->n_embd;
    const size_t per = 2 * g->wlen + 2 * g->blen;
    g->buf = calloc(per * hp->n_layer, sizeof(float));
    g->wk = calloc(4 * (size_t)hp->n_layer, sizeof(float *));
    if (!g->buf || !g->wk) return -1;
    g->wv = g->wk + hp->n_layer;
    g->bk = g->wv + hp->n_layer;
    g->bv = g->bk + hp->n_layer;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        float *p = g->buf + l * per;
        g->wk[l] = p;
        g->wv[l] = p + g->wlen;
        g->bk[l] = p + 2 * g->wlen;
        g->bv[l] = p + 2 * g->wlen + g->blen;
    }
    return 0;
}

static void grads_free(grads *g)
{
    free(g->buf);
    free(g->wk);
    memset(g, 0, sizeof *g);
}

typedef struct fd_case {
    const dmodel *m;
    const int32_t *tokens;
    uint32_t n_seq, T;
    double step;
    double worst; /* largest error seen, relative to the scale of the matrix */
} fd_case;

/* Central difference of d_loss along `dir` (a direction over `param`, NULL: unit vector at index j). */
static double fd(fd_case *c, double *param, size_t len, size_t j, const double *dir)
{
    double *saved = malloc(len * sizeof(double));
    if (!saved) return NAN;
    memcpy(saved, param, len * sizeof(double));
    double lp, lm;
    if (dir) {
        for (size_t i = 0; i < len; i++) param[i] = saved[i] + c->step * dir[i];
        lp = d_loss(c->m, c->tokens, c->n_seq, c->T);
        for (size_t i = 0; i < len; i++) param[i] = saved[i] - c->step * dir[i];
        lm = d_loss(c->m, c->tokens, c->n_seq, c->T);
    } else {
        param[j] = saved[j] + c->step;
        lp = d_loss(c->m, c->tokens, c->n_seq, c->T);
        param[j] = saved[j] - c->step;
        lm = d_loss(c->m, c->tokens, c->n_seq, c->T);
    }
    memcpy(param, saved, len * sizeof(double));
    free(saved);
    return (lp - lm) / (2 * c->step);
}

/* Checks an analytic gradient `g` of `param` (len entries) on its 4 largest
 * entries, 4 random ones and one random direction. Errors are measured
 * relative to the largest |g| of the array (entries near 0 are compared with
 * that scale) and must be below tol. */
static void check_param(fd_case *c, const char *what, uint32_t layer, double *param, const float *g,
                        size_t len, tu_rng *rng, double tol)
{
    double gmax = 0;
    for (size_t i = 0; i < len; i++)
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    CHECK(gmax > 1e-7, "%s layer %u: gradient is zero", what, layer);
    if (!(gmax > 1e-7)) return;

    size_t idx[8];
    int used = 0;
    for (int r = 0; r < 4; r++) { /* the largest entries */
        size_t best = 0;
        double bv = -1;
        for (size_t i = 0; i < len; i++) {
            int taken = 0;
            for (int u = 0; u < used; u++) taken |= idx[u] == i;
            if (!taken && fabs(g[i]) > bv) {
                bv = fabs(g[i]);
                best = i;
            }
        }
        idx[used++] = best;
    }
    for (int r = 0; r < 4; r++) idx[used++] = tu_rng_u32(rng) % len;

    for (int u = 0; u < used; u++) {
        double num = fd(c, param, len, idx[u], NULL);
        double err = fabs(num - g[idx[u]]) / (gmax + fabs(num));
        if (err > c->worst) c->worst = err;
        CHECK(err < tol, "%s layer %u [%zu]: analytic %.7g, finite difference %.7g (err %.2g)", what, layer,
              idx[u], g[idx[u]], num, err);
    }
    /* one random direction over the whole array: <g, d> vs the directional derivative */
    double *dir = calloc(len, sizeof(double));
    if (!dir) return;
    double gd = 0, gnorm = 0, dnorm = 0;
    for (size_t i = 0; i < len; i++) {
        dir[i] = tu_rng_normal(rng);
        gd += g[i] * dir[i];
        gnorm += (double)g[i] * g[i];
        dnorm += dir[i] * dir[i];
    }
    double num = fd(c, param, len, 0, dir);
    double err = fabs(num - gd) / (sqrt(gnorm * dnorm) + 1e-30);
    if (err > c->worst) c->worst = err;
    CHECK(err < tol, "%s layer %u direction: analytic %.7g, finite difference %.7g (err %.2g)", what, layer, gd,
          num, err);
    free(dir);
}

/* ------------------------------------------------------------------ the loss, by hand from vkm_ref_forward */

/* Mean cross-entropy from the KV-cache forward pass: logits of position t
 * scored against tokens[t+1], labels < 0 skipped. */
static double loss_from_forward(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq, uint32_t T)
{
    const uint32_t V = w->hp.n_vocab;
    float *logits = malloc(V * sizeof(float));
    double total = 0;
    long count = 0;
    for (uint32_t s = 0; s < n_seq && logits; s++) {
        const int32_t *tk = tokens + (size_t)s * T;
        vkm_ref_state *st = NULL;
        if (vkm_ref_state_create(&w->hp, T, 0, &st) != VKMIX_OK) break;
        for (uint32_t t = 0; t + 1 < T && tk[t] >= 0; t++) {
            if (vkm_ref_forward(w, st, tk[t], t, logits) != VKMIX_OK) break;
            if (tk[t + 1] < 0) continue;
            double max = logits[0], sum = 0;
            for (uint32_t i = 1; i < V; i++)
                if (logits[i] > max) max = logits[i];
            for (uint32_t i = 0; i < V; i++) sum += exp(logits[i] - max);
            total += max + log(sum) - logits[tk[t + 1]];
            count++;
        }
        vkm_ref_state_free(st);
    }
    free(logits);
    return count ? total / count : NAN;
}

static int rel_close(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

/* ------------------------------------------------------------------ synthetic models */

typedef struct synth {
    vkm_ref_weights w;
    vkm_ref_layer layers[3];
    float *buf;
} synth;

static float *take(float **p, size_t n, tu_rng *rng, float base, float scale)
{
    float *r = *p;
    for (size_t i = 0; i < n; i++) r[i] = base + scale * tu_rng_normal(rng);
    *p += n;
    return r;
}

/* qwen2 = 1: 4 query heads on 2 KV heads, biases, NEOX RoPE with llama3
 * scaling (orig ctx 64, so kept, smoothed and scaled frequencies all occur),
 * untied output. qwen2 = 0: 6 query heads on 2 KV heads (3:1), no biases,
 * NORM RoPE, tied output. head_dim 8, 3 layers either way. */
static int synth_init(synth *m, int qwen2, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    vkm_hparams *hp = &m->w.hp;
    hp->n_vocab = 37; hp->n_embd = 24; hp->n_layer = 3;
    hp->n_head = qwen2 ? 4 : 6; hp->n_head_kv = 2; hp->head_dim = 8;
    hp->n_ff = 40; hp->n_ctx_train = 64; hp->rope_theta = 10000.0f; hp->norm_eps = 1e-5f;
    hp->rope_type = qwen2 ? VKM_ROPE_NEOX : VKM_ROPE_NORM;
    if (qwen2) {
        hp->rope_scale_factor = 8.0f; hp->rope_low_freq_factor = 1.0f;
        hp->rope_high_freq_factor = 4.0f; hp->rope_orig_ctx = 64;
    }
    const size_t V = hp->n_vocab, D = hp->n_embd, F = hp->n_ff;
    const size_t Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t per_layer = 2 * D + Q * D + 2 * KV * D + Q + 2 * KV + D * Q + 3 * F * D;
    m->buf = malloc((2 * V * D + D + 3 * per_layer) * sizeof(float));
    if (!m->buf) return -1;
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    float *p = m->buf;
    m->w.tok_embd = take(&p, V * D, &rng, 0.0f, 1.0f);
    m->w.out_norm = take(&p, D, &rng, 1.0f, 0.2f);
    m->w.output = qwen2 ? take(&p, V * D, &rng, 0.0f, 0.5f) : m->w.tok_embd;
    const float ws = 0.35f;
    for (uint32_t l = 0; l < 3; l++) {
        vkm_ref_layer *L = &m->layers[l];
        L->attn_norm = take(&p, D, &rng, 1.0f, 0.2f);
        L->wq = take(&p, Q * D, &rng, 0.0f, ws);
        L->wk = take(&p, KV * D, &rng, 0.0f, ws);
        L->wv = take(&p, KV * D, &rng, 0.0f, ws);
        if (qwen2) {
            L->bq = take(&p, Q, &rng, 0.0f, 0.3f);
            L->bk = take(&p, KV, &rng, 0.0f, 0.3f);
            L->bv = take(&p, KV, &rng, 0.0f, 0.3f);
        }
        L->wo = take(&p, D * Q, &rng, 0.0f, ws);
        L->ffn_norm = take(&p, D, &rng, 1.0f, 0.2f);
        L->w_gate = take(&p, F * D, &rng, 0.0f, ws);
        L->w_up = take(&p, F * D, &rng, 0.0f, ws);
        L->w_down = take(&p, D * F, &rng, 0.0f, ws);
    }
    m->w.layers = m->layers;
    return 0;
}

/* ------------------------------------------------------------------ the tests */

/* Loss and all W_k/W_v gradients (and biases) of `w` vs finite differences. */
static void check_model(const char *name, const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq,
                        uint32_t T, const uint32_t *layers, int n_layers_checked, int check_bias,
                        uint64_t seed)
{
    grads g;
    dmodel dm;
    if (grads_alloc(&g, &w->hp) != 0 || dmodel_init(&dm, w) != 0) {
        CHECK(0, "%s: out of memory", name);
        goto done;
    }
    float loss = NAN;
    vkmix_error e = vkm_ref_grad_kv(w, tokens, n_seq, T, 2, &loss, g.wk, g.wv, g.bk, g.bv);
    CHECK(e == VKMIX_OK, "%s: vkm_ref_grad_kv: %s", name, vkmix_strerror(e));
    if (e != VKMIX_OK) goto done;

    /* the loss: the double model and the KV-cache forward pass agree */
    double dl = d_loss(&dm, tokens, n_seq, T), fl = loss_from_forward(w, tokens, n_seq, T);
    CHECK(rel_close(loss, dl, 2e-5), "%s: loss %.8g vs double model %.8g", name, loss, dl);
    CHECK(rel_close(loss, fl, 2e-5), "%s: loss %.8g vs vkm_ref_forward by hand %.8g", name, loss, fl);

    fd_case c = {&dm, tokens, n_seq, T, 1e-3, 0};
    tu_rng rng;
    tu_rng_seed(&rng, seed);
    for (int i = 0; i < n_layers_checked; i++) {
        uint32_t l = layers[i];
        dlayer *L = &dm.layers[l];
        check_param(&c, "W_k", l, L->wk, g.wk[l], g.wlen, &rng, 2e-3);
        check_param(&c, "W_v", l, L->wv, g.wv[l], g.wlen, &rng, 2e-3);
        if (check_bias) {
            check_param(&c, "b_k", l, L->bk, g.bk[l], g.blen, &rng, 2e-3);
            check_param(&c, "b_v", l, L->bv, g.bv[l], g.blen, &rng, 2e-3);
        }
    }
    printf("%s: loss %.6f, worst finite-difference error %.2g\n", name, loss, c.worst);
done:
    grads_free(&g);
    dmodel_free(&dm);
}

static void test_synthetic(void)
{
    for (int qwen2 = 1; qwen2 >= 0; qwen2--) {
        synth m;
        if (synth_init(&m, qwen2, 1234 + (uint64_t)qwen2) != 0) {
            CHECK(0, "out of memory");
            return;
        }
        CHECK(vkm_ref_weights_check(&m.w) == VKMIX_OK, "synthetic weights");
        /* two sequences of T = 10; the second has 7 tokens and trailing padding */
        enum { T = 10 };
        int32_t tokens[2 * T];
        tu_rng rng;
        tu_rng_seed(&rng, 99);
        for (int i = 0; i < 2 * T; i++) tokens[i] = (int32_t)(tu_rng_u32(&rng) % 37);
        tokens[T + 7] = tokens[T + 8] = tokens[T + 9] = -1;
        const uint32_t layers[3] = {0, 1, 2};
        check_model(qwen2 ? "synthetic qwen2 (GQA 4:2, NEOX, llama3 scaling, biases, padding)"
                          : "synthetic llama (GQA 3:1, NORM, tied)",
                    &m.w, tokens, 2, T, layers, 3, 1, 7 + (uint64_t)qwen2);
        free(m.buf);
    }
}

/* Loss and gradients of a padded batch are the count-weighted mix of its parts;
 * thread count does not matter; bad batches are errors. */
static void test_masking_threads_errors(void)
{
    synth m;
    if (synth_init(&m, 1, 555) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    const vkm_hparams *hp = &m.w.hp;
    enum { T = 9 };
    int32_t batch[3 * T];
    tu_rng rng;
    tu_rng_seed(&rng, 3);
    for (int i = 0; i < 3 * T; i++) batch[i] = (int32_t)(tu_rng_u32(&rng) % hp->n_vocab);
    for (int t = 5; t < T; t++) batch[T + t] = -1; /* sequence 1: 5 tokens, 4 labels */
    for (int t = 1; t < T; t++) batch[2 * T + t] = -7; /* sequence 2: nothing to predict */

    grads gp, ga, gb, g1, g3;
    int ok = grads_alloc(&gp, hp) == 0 && grads_alloc(&ga, hp) == 0 && grads_alloc(&gb, hp) == 0 &&
             grads_alloc(&g1, hp) == 0 && grads_alloc(&g3, hp) == 0;
    CHECK(ok, "out of memory");
    if (!ok) goto done;
    float lp = 0, la = 0, lb = 0, l1 = 0, l3 = 0;
    CHECK(vkm_ref_grad_kv(&m.w, batch, 3, T, 2, &lp, gp.wk, gp.wv, gp.bk, gp.bv) == VKMIX_OK, "padded");
    CHECK(vkm_ref_grad_kv(&m.w, batch, 1, T, 1, &la, ga.wk, ga.wv, ga.bk, ga.bv) == VKMIX_OK, "seq 0");
    CHECK(vkm_ref_grad_kv(&m.w, batch + T, 1, 5, 1, &lb, gb.wk, gb.wv, gb.bk, gb.bv) == VKMIX_OK, "seq 1 unpadded");
    /* 8 labels in sequence 0, 4 in sequence 1 */
    double mix = (8.0 * la + 4.0 * lb) / 12.0;
    CHECK(rel_close(lp, mix, 1e-6), "padded loss %.8g vs unpadded parts %.8g", lp, mix);
    double worst = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (size_t i = 0; i < gp.wlen; i++) {
            double want = (8.0 * ga.wk[l][i] + 4.0 * gb.wk[l][i]) / 12.0;
            double want_v = (8.0 * ga.wv[l][i] + 4.0 * gb.wv[l][i]) / 12.0;
            double d = fmax(fabs(gp.wk[l][i] - want), fabs(gp.wv[l][i] - want_v));
            if (d > worst) worst = d;
        }
    CHECK(worst < 1e-6, "padded gradients differ from the unpadded parts by %g", worst);

    /* 1 and 3 threads: the same up to summation order */
    CHECK(vkm_ref_grad_kv(&m.w, batch, 3, T, 1, &l1, g1.wk, g1.wv, NULL, NULL) == VKMIX_OK, "1 thread");
    CHECK(vkm_ref_grad_kv(&m.w, batch, 3, T, 3, &l3, g3.wk, g3.wv, NULL, NULL) == VKMIX_OK, "3 threads");
    CHECK(rel_close(l1, lp, 1e-6) && rel_close(l3, lp, 1e-6), "loss by threads %.9g %.9g %.9g", l1, lp, l3);
    worst = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (size_t i = 0; i < gp.wlen; i++) {
            worst = fmax(worst, fabs(g1.wk[l][i] - gp.wk[l][i]) + fabs(g3.wk[l][i] - gp.wk[l][i]));
            worst = fmax(worst, fabs(g1.wv[l][i] - gp.wv[l][i]) + fabs(g3.wv[l][i] - gp.wv[l][i]));
        }
    CHECK(worst < 1e-6, "gradients depend on the thread count: %g", worst);
    /* a single worker gives bit-identical results whatever n_threads asks for */
    CHECK(vkm_ref_grad_kv(&m.w, batch, 1, T, 4, &l3, g3.wk, g3.wv, NULL, NULL) == VKMIX_OK, "1 seq, 4 threads");
    CHECK(l3 == la && memcmp(g3.wk[1], ga.wk[1], g3.wlen * sizeof(float)) == 0, "1 seq, 4 threads identical");

    /* every output may be NULL, and so may single layers */
    float *some[3] = {NULL, g1.wk[1], NULL};
    CHECK(vkm_ref_grad_kv(&m.w, batch, 3, T, 2, NULL, some, NULL, NULL, NULL) == VKMIX_OK, "partial outputs");
    CHECK(memcmp(g1.wk[1], gp.wk[1], gp.wlen * sizeof(float)) == 0, "partial output equals full one");
    CHECK(vkm_ref_grad_kv(&m.w, batch, 3, T, 2, NULL, NULL, NULL, NULL, NULL) == VKMIX_OK, "no outputs");

    /* errors */
    int32_t bad[T];
    memcpy(bad, batch, sizeof bad);
    bad[3] = (int32_t)hp->n_vocab;
    CHECK(vkm_ref_grad_kv(&m.w, bad, 1, T, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT,
          "token n_vocab");
    memcpy(bad, batch, sizeof bad);
    bad[3] = -1; /* padding followed by tokens */
    CHECK(vkm_ref_grad_kv(&m.w, bad, 1, T, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT,
          "padding in the middle");
    CHECK(vkm_ref_grad_kv(&m.w, batch + 2 * T, 1, T, 1, &l1, NULL, NULL, NULL, NULL) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "nothing to predict");
    CHECK(vkm_ref_grad_kv(&m.w, batch, 1, 1, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "T 1");
    CHECK(vkm_ref_grad_kv(&m.w, batch, 0, T, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "0 seqs");
    CHECK(vkm_ref_grad_kv(&m.w, NULL, 1, T, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL");
    CHECK(vkm_ref_grad_kv(NULL, batch, 1, T, 1, &l1, NULL, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL w");
done:
    grads_free(&gp);
    grads_free(&ga);
    grads_free(&gb);
    grads_free(&g1);
    grads_free(&g3);
    free(m.buf);
}

/* The labels are the inputs shifted exactly once, checked against a closed
 * form that needs no model code: every token embeds to the same vector e and
 * every block adds zero (W_o = W_down = 0), so every position has the same
 * logits z = output (rmsnorm(e) * out_norm) and
 * L = mean_t (logsumexp(z) - z[tokens[t+1]]). */
static void test_single_shift(void)
{
    synth m;
    if (synth_init(&m, 0, 77) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    vkm_hparams *hp = &m.w.hp;
    const size_t D = hp->n_embd, V = hp->n_vocab;
    /* every token embeds to the same vector e; every block adds 0 (W_o and W_down zero) */
    float *embd = calloc(V * D, sizeof(float)), *outm = calloc(V * D, sizeof(float));
    float *zero = calloc(D * (hp->n_ff > hp->n_head * hp->head_dim ? hp->n_ff : hp->n_head * hp->head_dim),
                         sizeof(float));
    if (!embd || !outm || !zero) {
        CHECK(0, "out of memory");
        goto done;
    }
    tu_rng rng;
    tu_rng_seed(&rng, 5);
    for (size_t c = 0; c < D; c++) {
        float e = tu_rng_normal(&rng);
        for (size_t v = 0; v < V; v++) embd[v * D + c] = e;
    }
    for (size_t i = 0; i < V * D; i++) outm[i] = tu_rng_normal(&rng);
    m.w.tok_embd = embd;
    m.w.output = outm;
    for (int l = 0; l < 3; l++) {
        m.layers[l].wo = zero;
        m.layers[l].w_down = zero;
    }
    /* z = output (rmsnorm(e) * out_norm) */
    double z[64], h[64], ss = 0;
    for (size_t c = 0; c < D; c++) ss += (double)embd[c] * embd[c];
    for (size_t c = 0; c < D; c++) h[c] = embd[c] / sqrt(ss / D + hp->norm_eps) * m.w.out_norm[c];
    double max = -INFINITY, sum = 0;
    for (size_t v = 0; v < V; v++) {
        z[v] = 0;
        for (size_t c = 0; c < D; c++) z[v] += outm[v * D + c] * h[c];
        if (z[v] > max) max = z[v];
    }
    for (size_t v = 0; v < V; v++) sum += exp(z[v] - max);
    const double lse = max + log(sum);

    const int32_t toks[6] = {0, 5, 11, 2, 30, 17};
    double single = 0, twice = 0;
    for (int t = 0; t < 5; t++) single += lse - z[toks[t + 1]];
    for (int t = 0; t < 4; t++) twice += lse - z[toks[t + 2]];
    single /= 5;
    twice /= 4;
    float loss = 0;
    CHECK(vkm_ref_grad_kv(&m.w, toks, 1, 6, 1, &loss, NULL, NULL, NULL, NULL) == VKMIX_OK, "grad");
    CHECK(rel_close(loss, single, 1e-5), "loss %.8g, single shift %.8g (double shift would be %.8g)", loss, single,
          twice);
    CHECK(!rel_close(twice, single, 1e-3), "test tokens do not tell the shifts apart");
done:
    free(embd);
    free(outm);
    free(zero);
    free(m.buf);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* stories260K: finite differences on a short story, then the speed of N=16, T=128. */
static int test_stories260k(void)
{
    char *path = tu_shared_path("models/stories260K/stories260K.bin");
    if (!path) return 0;
    ref_llama2c m;
    int rc = ref_llama2c_load(path, &m);
    free(path);
    CHECK(rc == 0, "load stories260K.bin");
    if (rc != 0) return 1;
    const vkm_hparams *hp = &m.w.hp;

    /* BOS + the start of the model's own greedy story */
    static const int32_t story[16] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
    int32_t two[2 * 12];
    memcpy(two, story, 12 * sizeof(int32_t));
    memcpy(two + 12, story + 4, 12 * sizeof(int32_t)); /* a second sequence starting mid-story */
    const uint32_t layers[3] = {0, 2, 4};
    check_model("stories260K", &m.w, two, 2, 12, layers, 3, 1, 11);

    /* speed: 16 random sequences of 128 tokens on 2 threads */
    enum { N = 16, TT = 128 };
    int32_t *toks = malloc(N * TT * sizeof(int32_t));
    grads g;
    if (!toks || grads_alloc(&g, hp) != 0) {
        CHECK(0, "out of memory");
        free(toks);
        ref_llama2c_free(&m);
        return 1;
    }
    tu_rng rng;
    tu_rng_seed(&rng, 2024);
    for (int i = 0; i < N * TT; i++) toks[i] = (int32_t)(tu_rng_u32(&rng) % hp->n_vocab);
    float loss = 0;
    double t0 = now_s();
    vkmix_error e = vkm_ref_grad_kv(&m.w, toks, N, TT, 2, &loss, g.wk, g.wv, NULL, NULL);
    double dt = now_s() - t0;
    CHECK(e == VKMIX_OK && isfinite(loss), "grad N=16 T=128");
    printf("stories260K N=%d T=%d on 2 threads: %.3f s, loss %.4f; ||dL/dW_k||, ||dL/dW_v|| per layer:", N, TT, dt,
           loss);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        double nk = 0, nv = 0;
        for (size_t i = 0; i < g.wlen; i++) {
            nk += (double)g.wk[l][i] * g.wk[l][i];
            nv += (double)g.wv[l][i] * g.wv[l][i];
        }
        printf(" (%.4g, %.4g)", sqrt(nk), sqrt(nv));
        CHECK(nk > 0 && nv > 0 && isfinite(nk) && isfinite(nv), "layer %u norms", l);
    }
    printf("\n");
    free(toks);
    grads_free(&g);
    ref_llama2c_free(&m);
    return 1;
}

int main(void)
{
    test_synthetic();
    test_masking_threads_errors();
    test_single_shift();
    if (!test_stories260k())
        printf("test_ref_grad: skipped the stories260K part: it needs ../shared's llama2.c checkpoint "
               "models/stories260K/stories260K.bin (the independent reference)\n");
    return tu_finish("test_ref_grad");
}
