/*
 * Backward pass of the fp32 reference model: the mean next-token
 * cross-entropy of a batch and its gradients w.r.t. W_k, W_v (and b_k, b_v)
 * of every layer, for KVmix layer importance. See vkm_ref_grad_kv in
 * ref_model.h.
 *
 * One sequence at a time: a forward pass over its n positions keeps the
 * activations the backward pass needs, then the backward pass walks the
 * network in reverse. Notation for one position t (dX means dL/dX):
 *
 *   layer l:  h   = rmsnorm(x_in) * attn_norm
 *             q,k = rope(Wq h + bq), rope(Wk h + bk);  v = Wv h + bv
 *             a   = softmax(q . k_s / sqrt(hd)) v_s   (s <= t, per head)
 *             x_mid = x_in + Wo a
 *             hf  = rmsnorm(x_mid) * ffn_norm
 *             g, u = W_gate hf, W_up hf
 *             x_out = x_mid + W_down (silu(g) * u)
 *   final:    z = output (rmsnorm(x_out) * out_norm),  loss = -log softmax(z)[label]
 */
#include "ref/ref_model.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum grad_kind { GRAD_WK, GRAD_WV, GRAD_BK, GRAD_BV };

/* Activations of one sequence of up to n positions, the backward scratch and
 * this worker's gradient sums. */
typedef struct grad_ws {
    const vkm_ref_weights *w;
    const int32_t *tokens;       /* [n_seq][T] */
    uint32_t n_seq, T, first_seq, seq_step;
    double inv_count;            /* 1 / (number of labels in the whole batch) */
    const float *freqs;          /* [head_dim/2] */

    /* forward activations, position-major within each layer */
    float *x_in;                 /* [n_layer][n][n_embd] residual stream entering layer l */
    float *x_mid;                /* [n_layer][n][n_embd] after the attention residual */
    float *x_out;                /* [n][n_embd] entering the final norm */
    float *q;                    /* [n_layer][n][q_dim] after RoPE */
    float *k, *v;                /* [n_layer][n][kv_dim], k after RoPE */
    float *gate, *up;            /* [n_layer][n][n_ff] W_gate hf, W_up hf */

    /* backward */
    float *dx;                   /* [n][n_embd] dL/d(residual stream) */
    float *datt;                 /* [n][q_dim] dL/da */
    float *dq;                   /* [n][q_dim] */
    float *dk, *dv;              /* [n][kv_dim] */
    float *h, *dh;               /* [n_embd] */
    float *f1, *f2;              /* [n_ff] */
    float *tmp;                  /* [max(q_dim, n_embd)] */
    float *logits;               /* [n_vocab] */
    float *p, *dp;               /* [n] attention probabilities of one query and their grads */

    /* sums of this worker, indexed by grad_kind:
     * [GRAD_WK], [GRAD_WV]: [n_layer][kv_dim][n_embd];  [GRAD_BK], [GRAD_BV]: [n_layer][kv_dim] */
    float *g[4];
    double loss;                 /* sum of -log p(label) * inv_count */
} grad_ws;

static void ws_free(grad_ws *ws)
{
    float **arrays[] = {&ws->x_in, &ws->x_mid, &ws->x_out, &ws->q, &ws->k, &ws->v, &ws->gate,
                        &ws->up, &ws->dx, &ws->datt, &ws->dq, &ws->dk, &ws->dv, &ws->h,
                        &ws->dh, &ws->f1, &ws->f2, &ws->tmp, &ws->logits, &ws->p, &ws->dp,
                        &ws->g[GRAD_WK], &ws->g[GRAD_WV], &ws->g[GRAD_BK], &ws->g[GRAD_BV]};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        free(*arrays[i]);
        *arrays[i] = NULL;
    }
}

static int ws_alloc(grad_ws *ws, const vkm_hparams *hp, size_t n)
{
    const size_t L = hp->n_layer, D = hp->n_embd, F = hp->n_ff;
    const size_t Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    ws->x_in = calloc(L * n * D, sizeof(float));
    ws->x_mid = calloc(L * n * D, sizeof(float));
    ws->x_out = calloc(n * D, sizeof(float));
    ws->q = calloc(L * n * Q, sizeof(float));
    ws->k = calloc(L * n * KV, sizeof(float));
    ws->v = calloc(L * n * KV, sizeof(float));
    ws->gate = calloc(L * n * F, sizeof(float));
    ws->up = calloc(L * n * F, sizeof(float));
    ws->dx = calloc(n * D, sizeof(float));
    ws->datt = calloc(n * Q, sizeof(float));
    ws->dq = calloc(n * Q, sizeof(float));
    ws->dk = calloc(n * KV, sizeof(float));
    ws->dv = calloc(n * KV, sizeof(float));
    ws->h = calloc(D, sizeof(float));
    ws->dh = calloc(D, sizeof(float));
    ws->f1 = calloc(F, sizeof(float));
    ws->f2 = calloc(F, sizeof(float));
    ws->tmp = calloc(Q > D ? Q : D, sizeof(float));
    ws->logits = calloc(hp->n_vocab, sizeof(float));
    ws->p = calloc(n, sizeof(float));
    ws->dp = calloc(n, sizeof(float));
    ws->g[GRAD_WK] = calloc(L * KV * D, sizeof(float));
    ws->g[GRAD_WV] = calloc(L * KV * D, sizeof(float));
    ws->g[GRAD_BK] = calloc(L * KV, sizeof(float));
    ws->g[GRAD_BV] = calloc(L * KV, sizeof(float));
    return ws->x_in && ws->x_mid && ws->x_out && ws->q && ws->k && ws->v && ws->gate && ws->up &&
           ws->dx && ws->datt && ws->dq && ws->dk && ws->dv && ws->h && ws->dh && ws->f1 &&
           ws->f2 && ws->tmp && ws->logits && ws->p && ws->dp && ws->g[GRAD_WK] &&
           ws->g[GRAD_WV] && ws->g[GRAD_BK] && ws->g[GRAD_BV];
}

/* ------------------------------------------------------------------ backward building blocks */

/* dx += W^T dy for W with n_out rows of n_in. */
static void matvec_t_acc(float *dx, const float *W, const float *dy, uint32_t n_in, uint32_t n_out)
{
    for (uint32_t r = 0; r < n_out; r++) {
        const float *row = W + (size_t)r * n_in;
        const float d = dy[r];
        for (uint32_t c = 0; c < n_in; c++) dx[c] += row[c] * d;
    }
}

/* G += dy x^T for G with n_out rows of n_in (a weight gradient). */
static void outer_acc(float *G, const float *dy, const float *x, uint32_t n_in, uint32_t n_out)
{
    for (uint32_t r = 0; r < n_out; r++) {
        float *row = G + (size_t)r * n_in;
        const float d = dy[r];
        for (uint32_t c = 0; c < n_in; c++) row[c] += d * x[c];
    }
}

/* y = x * rinv * w with rinv = 1/sqrt(mean(x^2) + eps). Given dy, adds dx:
 *   g = dy * w,  dx = rinv * g - x * rinv^3 * (g . x) / n. */
static void rmsnorm_backward_acc(float *dx, const float *x, const float *w, const float *dy,
                                 uint32_t n, float eps)
{
    float ss = 0.0f, gx = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        ss += x[i] * x[i];
        gx += dy[i] * w[i] * x[i];
    }
    const float rinv = 1.0f / sqrtf(ss / (float)n + eps);
    const float c = rinv * rinv * rinv * gx / (float)n;
    for (uint32_t i = 0; i < n; i++) dx[i] += rinv * dy[i] * w[i] - x[i] * c;
}

/* ------------------------------------------------------------------ one sequence */

/* Forward over positions 0..n-1 of `toks`, keeping the activations. */
static void seq_forward(grad_ws *ws, const int32_t *toks, uint32_t n)
{
    const vkm_ref_weights *w = ws->w;
    const vkm_hparams *hp = &w->hp;
    const uint32_t D = hp->n_embd, F = hp->n_ff, hd = hp->head_dim;
    const uint32_t Q = hp->n_head * hd, KV = hp->n_head_kv * hd;
    const float eps = hp->norm_eps;

    for (uint32_t t = 0; t < n; t++)
        memcpy(ws->x_in + (size_t)t * D, w->tok_embd + (size_t)toks[t] * D, D * sizeof(float));

    for (uint32_t l = 0; l < hp->n_layer; l++) {
        const vkm_ref_layer *L = &w->layers[l];
        float *x_in = ws->x_in + (size_t)l * n * D, *x_mid = ws->x_mid + (size_t)l * n * D;
        float *q = ws->q + (size_t)l * n * Q, *k = ws->k + (size_t)l * n * KV, *v = ws->v + (size_t)l * n * KV;
        float *gate = ws->gate + (size_t)l * n * F, *up = ws->up + (size_t)l * n * F;
        float *x_next = l + 1 < hp->n_layer ? ws->x_in + (size_t)(l + 1) * n * D : ws->x_out;

        for (uint32_t t = 0; t < n; t++) {
            vkm_ref_rmsnorm(ws->h, x_in + (size_t)t * D, L->attn_norm, D, eps);
            vkm_ref_matvec(q + (size_t)t * Q, L->wq, ws->h, L->bq, D, Q);
            vkm_ref_matvec(k + (size_t)t * KV, L->wk, ws->h, L->bk, D, KV);
            vkm_ref_matvec(v + (size_t)t * KV, L->wv, ws->h, L->bv, D, KV);
            vkm_ref_rope(q + (size_t)t * Q, hp->n_head, hd, t, ws->freqs, hp->rope_type);
            vkm_ref_rope(k + (size_t)t * KV, hp->n_head_kv, hd, t, ws->freqs, hp->rope_type);
        }
        for (uint32_t t = 0; t < n; t++) {
            /* position t attends to 0..t of this layer's keys and values */
            vkm_ref_attention(ws->tmp, q + (size_t)t * Q, k, v, t + 1, hp, ws->p);
            float *xm = x_mid + (size_t)t * D;
            vkm_ref_matvec(xm, L->wo, ws->tmp, NULL, Q, D);
            for (uint32_t i = 0; i < D; i++) xm[i] += x_in[(size_t)t * D + i];

            vkm_ref_rmsnorm(ws->h, xm, L->ffn_norm, D, eps);
            vkm_ref_matvec(gate + (size_t)t * F, L->w_gate, ws->h, NULL, D, F);
            vkm_ref_matvec(up + (size_t)t * F, L->w_up, ws->h, NULL, D, F);
            vkm_ref_silu_mul(ws->f1, gate + (size_t)t * F, up + (size_t)t * F, F);
            float *xo = x_next + (size_t)t * D;
            vkm_ref_matvec(xo, L->w_down, ws->f1, NULL, F, D);
            for (uint32_t i = 0; i < D; i++) xo[i] += xm[i];
        }
    }
}

/* Loss of positions 0..n-1 (labels toks[1..n]) and dx = dL/dx_out. */
static void seq_loss_backward(grad_ws *ws, const int32_t *toks, uint32_t n)
{
    const vkm_ref_weights *w = ws->w;
    const uint32_t D = w->hp.n_embd, V = w->hp.n_vocab;
    for (uint32_t t = 0; t < n; t++) {
        float *dx = ws->dx + (size_t)t * D;
        memset(dx, 0, D * sizeof(float));
        const int32_t label = toks[t + 1];
        if (label < 0) continue; /* padding: not part of the loss */

        const float *xo = ws->x_out + (size_t)t * D;
        vkm_ref_rmsnorm(ws->h, xo, w->out_norm, D, w->hp.norm_eps);
        vkm_ref_matvec(ws->logits, w->output, ws->h, NULL, D, V);
        /* loss = logsumexp(z) - z[label]; dz = (softmax(z) - onehot(label)) * inv_count */
        float *z = ws->logits;
        float max = z[0];
        for (uint32_t i = 1; i < V; i++)
            if (z[i] > max) max = z[i];
        double sum = 0.0;
        for (uint32_t i = 0; i < V; i++) sum += exp((double)z[i] - max);
        ws->loss += ((double)max + log(sum) - z[label]) * ws->inv_count;
        for (uint32_t i = 0; i < V; i++) {
            float p = (float)(exp((double)z[i] - max) / sum);
            z[i] = (p - (i == (uint32_t)label ? 1.0f : 0.0f)) * (float)ws->inv_count;
        }
        /* through the output projection and the final norm */
        memset(ws->dh, 0, D * sizeof(float));
        matvec_t_acc(ws->dh, w->output, z, D, V);
        rmsnorm_backward_acc(dx, xo, w->out_norm, ws->dh, D, w->hp.norm_eps);
    }
}

/* Given dx = dL/dx_out of layer l, accumulates the W_k/W_v gradients of layer l
 * and turns dx into dL/dx_in of layer l (skipped for layer 0, nothing below needs it). */
static void layer_backward(grad_ws *ws, uint32_t l, uint32_t n)
{
    const vkm_ref_weights *w = ws->w;
    const vkm_hparams *hp = &w->hp;
    const vkm_ref_layer *L = &w->layers[l];
    const uint32_t D = hp->n_embd, F = hp->n_ff, hd = hp->head_dim;
    const uint32_t Q = hp->n_head * hd, KV = hp->n_head_kv * hd;
    const float eps = hp->norm_eps, scale = 1.0f / sqrtf((float)hd);
    const float *x_in = ws->x_in + (size_t)l * n * D, *x_mid = ws->x_mid + (size_t)l * n * D;
    const float *q = ws->q + (size_t)l * n * Q, *k = ws->k + (size_t)l * n * KV, *v = ws->v + (size_t)l * n * KV;
    const float *gate = ws->gate + (size_t)l * n * F, *up = ws->up + (size_t)l * n * F;

    /* feed-forward: x_out = x_mid + W_down (silu(g) * u); the residual passes dx through */
    for (uint32_t t = 0; t < n; t++) {
        float *dx = ws->dx + (size_t)t * D;
        const float *g = gate + (size_t)t * F, *u = up + (size_t)t * F;
        float *dg = ws->f1, *du = ws->f2;
        /* dm = W_down^T dx, m = silu(g) * u */
        memset(dg, 0, F * sizeof(float));
        matvec_t_acc(dg, L->w_down, dx, F, D);
        for (uint32_t i = 0; i < F; i++) {
            float sig = 1.0f / (1.0f + expf(-g[i]));
            float dm = dg[i];
            du[i] = dm * g[i] * sig;                               /* d/du: silu(g) */
            dg[i] = dm * u[i] * sig * (1.0f + g[i] * (1.0f - sig)); /* d/dg: u * silu'(g) */
        }
        memset(ws->dh, 0, D * sizeof(float));
        matvec_t_acc(ws->dh, L->w_gate, dg, D, F);
        matvec_t_acc(ws->dh, L->w_up, du, D, F);
        rmsnorm_backward_acc(dx, x_mid + (size_t)t * D, L->ffn_norm, ws->dh, D, eps);
    }

    /* attention: x_mid = x_in + Wo a */
    for (uint32_t t = 0; t < n; t++) {
        float *da = ws->datt + (size_t)t * Q;
        memset(da, 0, Q * sizeof(float));
        matvec_t_acc(da, L->wo, ws->dx + (size_t)t * D, Q, D);
    }
    memset(ws->dq, 0, (size_t)n * Q * sizeof(float));
    memset(ws->dk, 0, (size_t)n * KV * sizeof(float));
    memset(ws->dv, 0, (size_t)n * KV * sizeof(float));
    for (uint32_t head = 0; head < hp->n_head; head++) {
        const uint32_t kvh = vkm_ref_kv_head(hp, head);
        const size_t qo = (size_t)head * hd, ko = (size_t)kvh * hd;
        for (uint32_t t = 0; t < n; t++) {
            const float *qt = q + (size_t)t * Q + qo, *da = ws->datt + (size_t)t * Q + qo;
            float *p = ws->p, *dp = ws->dp;
            /* recompute p_s = softmax_s(scale q_t . k_s), s <= t */
            for (uint32_t s = 0; s <= t; s++) {
                const float *ks = k + (size_t)s * KV + ko;
                float dot = 0.0f;
                for (uint32_t i = 0; i < hd; i++) dot += qt[i] * ks[i];
                p[s] = dot * scale;
            }
            vkm_ref_softmax(p, t + 1);
            /* a_t = sum_s p_s v_s:  dv_s += p_s da_t,  dp_s = da_t . v_s */
            float pdp = 0.0f;
            for (uint32_t s = 0; s <= t; s++) {
                const float *vs = v + (size_t)s * KV + ko;
                float *dvs = ws->dv + (size_t)s * KV + ko;
                float d = 0.0f;
                for (uint32_t i = 0; i < hd; i++) {
                    dvs[i] += p[s] * da[i];
                    d += da[i] * vs[i];
                }
                dp[s] = d;
                pdp += p[s] * d;
            }
            /* softmax: dscore_s = p_s (dp_s - sum_r p_r dp_r); score_s = scale q_t . k_s */
            float *dqt = ws->dq + (size_t)t * Q + qo;
            for (uint32_t s = 0; s <= t; s++) {
                const float ds = p[s] * (dp[s] - pdp) * scale;
                const float *ks = k + (size_t)s * KV + ko;
                float *dks = ws->dk + (size_t)s * KV + ko;
                for (uint32_t i = 0; i < hd; i++) {
                    dqt[i] += ds * ks[i];
                    dks[i] += ds * qt[i];
                }
            }
        }
    }

    /* RoPE is a rotation: its backward is the inverse rotation. Then the projections. */
    float *gwk = ws->g[GRAD_WK] + (size_t)l * KV * D, *gwv = ws->g[GRAD_WV] + (size_t)l * KV * D;
    float *gbk = ws->g[GRAD_BK] + (size_t)l * KV, *gbv = ws->g[GRAD_BV] + (size_t)l * KV;
    for (uint32_t t = 0; t < n; t++) {
        float *dq = ws->dq + (size_t)t * Q, *dk = ws->dk + (size_t)t * KV, *dv = ws->dv + (size_t)t * KV;
        vkm_ref_rope_inverse(dq, hp->n_head, hd, t, ws->freqs, hp->rope_type);
        vkm_ref_rope_inverse(dk, hp->n_head_kv, hd, t, ws->freqs, hp->rope_type);

        const float *xi = x_in + (size_t)t * D;
        vkm_ref_rmsnorm(ws->h, xi, L->attn_norm, D, eps); /* h of the forward pass */
        outer_acc(gwk, dk, ws->h, D, KV);
        outer_acc(gwv, dv, ws->h, D, KV);
        for (uint32_t i = 0; i < KV; i++) {
            gbk[i] += dk[i];
            gbv[i] += dv[i];
        }
        if (l == 0) continue;
        memset(ws->dh, 0, D * sizeof(float));
        matvec_t_acc(ws->dh, L->wq, dq, D, Q);
        matvec_t_acc(ws->dh, L->wk, dk, D, KV);
        matvec_t_acc(ws->dh, L->wv, dv, D, KV);
        rmsnorm_backward_acc(ws->dx + (size_t)t * D, xi, L->attn_norm, ws->dh, D, eps);
    }
}

/* Number of positions of one sequence that predict a label: the sequence ends
 * at its first negative token (trailing padding), and its last token predicts nothing. */
static uint32_t n_predicted(const int32_t *toks, uint32_t T)
{
    uint32_t len = 0;
    while (len < T && toks[len] >= 0) len++;
    return len < 2 ? 0 : len - 1;
}

static void *worker(void *arg)
{
    grad_ws *ws = arg;
    for (uint32_t s = ws->first_seq; s < ws->n_seq; s += ws->seq_step) {
        const int32_t *toks = ws->tokens + (size_t)s * ws->T;
        const uint32_t n = n_predicted(toks, ws->T);
        if (n == 0) continue;
        seq_forward(ws, toks, n);
        seq_loss_backward(ws, toks, n);
        for (uint32_t l = ws->w->hp.n_layer; l-- > 0;) layer_backward(ws, l, n);
    }
    return NULL;
}

/* ------------------------------------------------------------------ entry point */

/* dst[j] = sum over workers i = 0, 1, ... (in that order) of ws[i].g[kind][offset + j]. */
static void reduce(float *dst, const grad_ws *ws, int n_workers, enum grad_kind kind, size_t offset, size_t len)
{
    for (size_t j = 0; j < len; j++) {
        float sum = 0.0f;
        for (int i = 0; i < n_workers; i++) sum += ws[i].g[kind][offset + j];
        dst[j] = sum;
    }
}

vkmix_error vkm_ref_grad_kv(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq,
                            uint32_t T, int n_threads, float *loss_out,
                            float **dwk, float **dwv, float **dbk, float **dbv)
{
    vkmix_error e = vkm_ref_weights_check(w);
    if (e != VKMIX_OK) return e;
    if (!tokens || n_seq == 0 || T < 2) return VKMIX_ERROR_INVALID_ARGUMENT;
    const vkm_hparams *hp = &w->hp;

    /* validate the tokens and count the labels of the whole batch */
    uint64_t count = 0;
    for (uint32_t s = 0; s < n_seq; s++) {
        const int32_t *toks = tokens + (size_t)s * T;
        const uint32_t n = n_predicted(toks, T);
        for (uint32_t t = 0; t < T; t++) {
            if (toks[t] >= 0 && (uint32_t)toks[t] >= hp->n_vocab) return VKMIX_ERROR_INVALID_ARGUMENT;
            if (toks[t] >= 0 && t > 0 && toks[t - 1] < 0) return VKMIX_ERROR_INVALID_ARGUMENT; /* padding is trailing */
        }
        count += n;
    }
    if (count == 0) return VKMIX_ERROR_INVALID_ARGUMENT;

    /* the activations of one sequence: n_layer * (T-1) rows of the widest vector */
    const uint64_t Q = (uint64_t)hp->n_head * hp->head_dim;
    uint64_t widest = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    if (Q > widest) widest = Q;
    if ((uint64_t)hp->n_layer * (T - 1) * widest > (1ull << 40) / sizeof(float))
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;

    if (n_threads < 1) n_threads = 1;
    if ((uint32_t)n_threads > n_seq) n_threads = (int)n_seq;
    const size_t max_n = T - 1;
    grad_ws *ws = calloc((size_t)n_threads, sizeof *ws);
    float *freqs = calloc(hp->head_dim / 2, sizeof(float));
    if (!ws || !freqs) {
        free(ws);
        free(freqs);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    vkm_rope_freqs(hp, freqs);
    e = VKMIX_OK;
    for (int i = 0; i < n_threads; i++) {
        ws[i].w = w;
        ws[i].tokens = tokens;
        ws[i].n_seq = n_seq;
        ws[i].T = T;
        ws[i].first_seq = (uint32_t)i;
        ws[i].seq_step = (uint32_t)n_threads;
        ws[i].inv_count = 1.0 / (double)count;
        ws[i].freqs = freqs;
        if (!ws_alloc(&ws[i], hp, max_n)) e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }

    if (e == VKMIX_OK) {
        /* workers 1.. on their own threads, worker 0 here; a worker whose thread
         * cannot start runs here too (same result, only slower) */
        pthread_t *tid = calloc((size_t)n_threads, sizeof *tid);
        char *started = calloc((size_t)n_threads, 1);
        if (!tid || !started) {
            e = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        } else {
            for (int i = 1; i < n_threads; i++)
                started[i] = pthread_create(&tid[i], NULL, worker, &ws[i]) == 0;
            worker(&ws[0]);
            for (int i = 1; i < n_threads; i++) {
                if (started[i]) pthread_join(tid[i], NULL);
                else worker(&ws[i]);
            }
        }
        free(tid);
        free(started);
    }

    if (e == VKMIX_OK) {
        /* add the workers' sums in a fixed order */
        const size_t KV = (size_t)hp->n_head_kv * hp->head_dim, D = hp->n_embd;
        double loss = 0.0;
        for (int i = 0; i < n_threads; i++) loss += ws[i].loss;
        if (loss_out) *loss_out = (float)loss;
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            if (dwk && dwk[l]) reduce(dwk[l], ws, n_threads, GRAD_WK, l * KV * D, KV * D);
            if (dwv && dwv[l]) reduce(dwv[l], ws, n_threads, GRAD_WV, l * KV * D, KV * D);
            if (dbk && dbk[l]) reduce(dbk[l], ws, n_threads, GRAD_BK, l * KV, KV);
            if (dbv && dbv[l]) reduce(dbv[l], ws, n_threads, GRAD_BV, l * KV, KV);
        }
    }
    for (int i = 0; i < n_threads; i++) ws_free(&ws[i]);
    free(ws);
    free(freqs);
    return e;
}
