/*
 * Calibration (src/calibrate.c):
 *   - importance equals ||dL/dW||_F of one direct vkm_ref_grad_kv call over the
 *     whole batch (padding included), bit-identical for 1, 2 and 3 threads;
 *   - the measured error agrees with a round trip through the FP16 dequantizer,
 *     falls with the width, and is thread-count independent;
 *   - the KVmix counts, the kvmix rule, and the target-bits / budget rules: the
 *     dynamic program matches an exhaustive search, the profiles load and their
 *     effective bits (vkmix_kv_memory_estimate) meet the target;
 *   - stories260K through the public API (when ../shared is present);
 *   - bad inputs return errors.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "ref/calibrate.h"
#include "kv/kv.h"
#include "model/model.h"
#include "ref/ref_from_model.h"
#include "ref/ref_model.h"
#include "testutil.h"

/* ------------------------------------------------------------------ a random model */

typedef struct synth {
    vkm_ref_weights w;
    vkm_ref_layer layers[4];
    float *blob[64];
    int n_blob;
} synth;

static float *rnd(synth *s, tu_rng *r, size_t n, float base, float scale)
{
    float *a = malloc(n * sizeof *a);
    if (!a) abort();
    for (size_t i = 0; i < n; i++) a[i] = base + scale * tu_rng_normal(r);
    s->blob[s->n_blob++] = a;
    return a;
}

static void synth_init(synth *s, uint32_t n_layer, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    tu_rng r;
    tu_rng_seed(&r, seed);
    vkm_hparams *hp = &s->w.hp;
    hp->n_vocab = 40;
    hp->n_embd = 24;
    hp->n_layer = n_layer;
    hp->n_head = 4;
    hp->n_head_kv = 2;
    hp->head_dim = 8;
    hp->n_ff = 40;
    hp->n_ctx_train = 256;
    hp->rope_theta = 10000;
    hp->norm_eps = 1e-5f;
    hp->rope_type = VKM_ROPE_NORM;
    const size_t D = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    s->w.tok_embd = rnd(s, &r, hp->n_vocab * D, 0, 1.0f);
    s->w.out_norm = rnd(s, &r, D, 1, 0.1f);
    s->w.output = rnd(s, &r, hp->n_vocab * D, 0, 0.3f);
    for (uint32_t l = 0; l < n_layer; l++) {
        vkm_ref_layer *L = &s->layers[l];
        L->attn_norm = rnd(s, &r, D, 1, 0.1f);
        L->wq = rnd(s, &r, Q * D, 0, 0.3f);
        L->wk = rnd(s, &r, KV * D, 0, 0.3f * (1 + l)); /* layers differ */
        L->wv = rnd(s, &r, KV * D, 0, 0.3f);
        L->wo = rnd(s, &r, D * Q, 0, 0.2f);
        L->ffn_norm = rnd(s, &r, D, 1, 0.1f);
        L->w_gate = rnd(s, &r, F * D, 0, 0.2f);
        L->w_up = rnd(s, &r, F * D, 0, 0.2f);
        L->w_down = rnd(s, &r, D * F, 0, 0.2f);
    }
    s->w.layers = s->layers;
}

static void synth_free(synth *s)
{
    for (int i = 0; i < s->n_blob; i++) free(s->blob[i]);
}

static double frob(const float *a, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)a[i] * a[i];
    return sqrt(ss);
}

static int cancel_after_two(uint32_t done, uint32_t total, void *user)
{
    (void)total;
    *(uint32_t *)user = done;
    return done >= 2;
}

/* ------------------------------------------------------------------ importance */

static void test_importance_synth(void)
{
    synth s;
    synth_init(&s, 3, 7);
    const uint32_t N = 5, T = 12, L = 3;
    const size_t mat = (size_t)s.w.hp.n_head_kv * s.w.hp.head_dim * s.w.hp.n_embd;
    int32_t tok[5 * 12];
    tu_rng r;
    tu_rng_seed(&r, 3);
    for (uint32_t i = 0; i < N * T; i++) tok[i] = (int32_t)(tu_rng_u32(&r) % s.w.hp.n_vocab);
    for (uint32_t t = 7; t < T; t++) tok[1 * T + t] = -1; /* sequence 1: 7 tokens, 6 labels */
    for (uint32_t t = 1; t < T; t++) tok[3 * T + t] = -1; /* sequence 3: 1 token, no label */

    /* direct: one call over the whole batch */
    float *gk[3], *gv[3], loss_direct = 0;
    for (uint32_t l = 0; l < L; l++) {
        gk[l] = malloc(mat * sizeof(float));
        gv[l] = malloc(mat * sizeof(float));
    }
    CHECK(vkm_ref_grad_kv(&s.w, tok, N, T, 1, &loss_direct, gk, gv, NULL, NULL) == VKMIX_OK, "direct gradient");

    float ik[3][3], iv[3][3], loss[3];
    char err[256];
    for (int th = 1; th <= 3; th++) {
        uint32_t seen = 0;
        vkmix_error e = vkm_calib_importance(&s.w, tok, N, T, th, cancel_after_two, &seen, &loss[th - 1], ik[th - 1],
                                             iv[th - 1], err, sizeof err);
        CHECK(e == VKMIX_ERROR_CANCELLED, "progress returning 1 cancels (%d threads): %s", th, vkmix_strerror(e));
        e = vkm_calib_importance(&s.w, tok, N, T, th, NULL, NULL, &loss[th - 1], ik[th - 1], iv[th - 1], err,
                                 sizeof err);
        CHECK(e == VKMIX_OK, "importance with %d threads: %s", th, err);
    }
    CHECK(fabsf(loss[0] - loss_direct) <= 1e-5f * fabsf(loss_direct), "loss %.7f vs direct %.7f", loss[0], loss_direct);
    for (uint32_t l = 0; l < L; l++) {
        double dk = frob(gk[l], mat), dv = frob(gv[l], mat);
        CHECK(fabs(ik[0][l] - dk) <= 2e-5 * dk, "layer %u: I_K %.7g vs direct %.7g", l, ik[0][l], dk);
        CHECK(fabs(iv[0][l] - dv) <= 2e-5 * dv, "layer %u: I_V %.7g vs direct %.7g", l, iv[0][l], dv);
        for (int th = 1; th < 3; th++) {
            CHECK(ik[th][l] == ik[0][l] && iv[th][l] == iv[0][l], "layer %u: bit-identical with %d threads", l, th + 1);
            CHECK(loss[th] == loss[0], "loss identical with %d threads", th + 1);
        }
    }
    /* one sequence alone: the weights are the label shares, so a sequence with every
     * label equals a direct call on that sequence */
    float ik1[3], iv1[3];
    CHECK(vkm_calib_importance(&s.w, tok, 1, T, 2, NULL, NULL, NULL, ik1, iv1, err, sizeof err) == VKMIX_OK, "one");
    CHECK(vkm_ref_grad_kv(&s.w, tok, 1, T, 1, NULL, gk, gv, NULL, NULL) == VKMIX_OK, "direct one");
    for (uint32_t l = 0; l < L; l++)
        CHECK(fabs(ik1[l] - frob(gk[l], mat)) <= 2e-5 * ik1[l], "one sequence, layer %u", l);

    /* bad inputs */
    int32_t bad[12];
    memcpy(bad, tok, sizeof bad);
    bad[4] = 40;
    CHECK(vkm_calib_importance(&s.w, bad, 1, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT && strstr(err, "vocabulary"), "token out of range: %s", err);
    memcpy(bad, tok, sizeof bad);
    bad[3] = -1;
    CHECK(vkm_calib_importance(&s.w, bad, 1, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT && strstr(err, "trailing"), "padding in the middle: %s", err);
    CHECK(vkm_calib_importance(&s.w, tok + 3 * T, 1, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "no label at all");
    CHECK(vkm_calib_importance(&s.w, tok, 0, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "0 sequences");
    CHECK(vkm_calib_importance(&s.w, tok, 1, 1, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "T 1");
    CHECK(vkm_calib_importance(&s.w, NULL, 1, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "NULL tokens");
    CHECK(vkm_calib_importance(NULL, tok, 1, T, 1, NULL, NULL, NULL, ik1, iv1, err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "NULL weights");
    for (uint32_t l = 0; l < L; l++) {
        free(gk[l]);
        free(gv[l]);
    }
    synth_free(&s);
}

/* ------------------------------------------------------------------ measured error */

static void test_kv_error_synth(void)
{
    synth s;
    synth_init(&s, 2, 11);
    const uint32_t N = 3, T = 72, L = 2, W = VKMIX_CALIB_N_WIDTHS;
    int32_t *tok = malloc(N * T * sizeof *tok);
    tu_rng r;
    tu_rng_seed(&r, 5);
    for (uint32_t i = 0; i < N * T; i++) tok[i] = (int32_t)(tu_rng_u32(&r) % s.w.hp.n_vocab);
    float ek[3][2 * 4], ev[3][2 * 4];
    char err[256];
    for (int th = 1; th <= 3; th++)
        CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 32, 4, th, NULL, NULL, ek[th - 1], ev[th - 1], err, sizeof err) ==
                  VKMIX_OK, "kv error (%d threads): %s", th, err);
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t i = 0; i < W; i++) {
            CHECK(ek[1][l * W + i] == ek[0][l * W + i] && ek[2][l * W + i] == ek[0][l * W + i] &&
                      ev[1][l * W + i] == ev[0][l * W + i] && ev[2][l * W + i] == ev[0][l * W + i],
                  "layer %u width %u: identical for any thread count", l, vkmix_calibrate_width(i));
            if (i) CHECK(ek[0][l * W + i] < ek[0][l * W + i - 1] && ev[0][l * W + i] < ev[0][l * W + i - 1],
                         "layer %u: error falls with the width", l);
        }
    for (uint32_t l = 0; l < L; l++)
        CHECK(ek[0][l * W] > 1e-3 && ek[0][l * W] < 0.5 && ek[0][l * W + 3] < 1e-4, "layer %u: plausible key error "
              "%.3g / %.3g", l, ek[0][l * W], ek[0][l * W + 3]);

    /* independent: layer 1 keys of positions 4 .. 67 of every sequence, through the FP16 dequantizer */
    vkm_ref_state *st = NULL;
    CHECK(vkm_ref_state_create(&s.w.hp, T, 1, &st) == VKMIX_OK, "state");
    const uint32_t H = s.w.hp.n_head_kv, D = s.w.hp.head_dim, n = 64;
    uint16_t *x = malloc((size_t)H * n * D * 2), *y = malloc((size_t)H * n * D * 2);
    uint32_t *codes = malloc((size_t)H * n * D * 4), *meta = malloc((size_t)H * n * D * 4);
    double se[4] = { 0 }, sq = 0;
    for (uint32_t sidx = 0; sidx < N; sidx++) {
        for (uint32_t p = 0; p < 4 + n; p++) vkm_ref_forward(&s.w, st, tok[sidx * T + p], p, NULL);
        for (uint32_t h = 0; h < H; h++)
            for (uint32_t t = 0; t < n; t++)
                for (uint32_t d = 0; d < D; d++) {
                    float v = vkm_ref_k_at(st, 1, 4 + t)[h * D + d];
                    x[((size_t)h * n + t) * D + d] = vkmix_f32_to_f16(v);
                    sq += (double)v * v;
                }
        for (uint32_t i = 0; i < W; i++) {
            vkmix_kvq_shape sh = { VKMIX_KV_KEYS, vkmix_calibrate_width(i), 32, D, H, n };
            vkmix_kvq_quantize_cpu(&sh, x, codes, meta);
            vkmix_kvq_dequantize_cpu(&sh, codes, meta, y);
            for (size_t k = 0; k < (size_t)H * n * D; k++) {
                double d = (double)vkmix_f16_to_f32(y[k]) - vkmix_f16_to_f32(x[k]);
                se[i] += d * d;
            }
        }
    }
    for (uint32_t i = 0; i < W; i++) {
        double want = se[i] / sq, got = ek[0][1 * W + i];
        /* FP16 rounding of the dequantized values adds at most ~2^-22 relative MSE */
        CHECK(fabs(got - want) <= 0.02 * want + 1e-6, "width %u: %.6g vs FP16 round trip %.6g",
              vkmix_calibrate_width(i), got, want);
    }
    free(x);
    free(y);
    free(codes);
    free(meta);
    vkm_ref_state_free(st);

    /* value grouping: head_dim 8 is not divisible by 32, so values use whole heads; G 64 is valid */
    CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 64, 0, 2, NULL, NULL, ek[0], ev[0], err, sizeof err) == VKMIX_OK,
          "group 64: %s", err);
    CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 48, 0, 2, NULL, NULL, ek[0], ev[0], err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "group 48");
    CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 128, 0, 2, NULL, NULL, ek[0], ev[0], err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT && strstr(err, "tokens"), "too short for a group: %s", err);
    CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 32, T, 2, NULL, NULL, ek[0], ev[0], err, sizeof err) ==
              VKMIX_ERROR_INVALID_ARGUMENT, "sinks >= T");
    uint32_t seen = 0;
    CHECK(vkm_calib_kv_error(&s.w, tok, N, T, 32, 0, 1, cancel_after_two, &seen, ek[0], ev[0], err, sizeof err) ==
              VKMIX_ERROR_CANCELLED && seen == 2, "cancel");
    free(tok);
    synth_free(&s);
}

/* ------------------------------------------------------------------ allocation */

static vkm_hparams shape(uint32_t n_layer, uint32_t kv_heads, uint32_t head_dim)
{
    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_vocab = 100;
    hp.n_embd = kv_heads * head_dim * 2;
    hp.n_layer = n_layer;
    hp.n_head = kv_heads * 2;
    hp.n_head_kv = kv_heads;
    hp.head_dim = head_dim;
    hp.n_ff = 64;
    hp.n_ctx_train = 4096;
    hp.rope_theta = 10000;
    hp.norm_eps = 1e-5f;
    return hp;
}

/* errors that fall with the width (sometimes not convexly), importance spread over decades */
static void random_scores(tu_rng *r, uint32_t L, float *ik, float *iv, float *ek, float *ev)
{
    for (uint32_t l = 0; l < L; l++) {
        ik[l] = powf(10, 2 * tu_rng_uniform(r) - 1);
        iv[l] = powf(10, 2 * tu_rng_uniform(r) - 1);
        float a = 0.02f + 0.05f * tu_rng_uniform(r), b = 0.02f + 0.05f * tu_rng_uniform(r);
        const float f[4] = { 1, 0.2f + 0.3f * tu_rng_uniform(r), 0.05f, 0.0002f };
        for (int i = 0; i < 4; i++) {
            ek[l * 4 + i] = a * f[i];
            ev[l * 4 + i] = b * f[i] * (0.5f + tu_rng_uniform(r));
        }
        for (int i = 1; i < 4; i++) ev[l * 4 + i] = fminf(ev[l * 4 + i], ev[l * 4 + i - 1]);
    }
}

static void mem_of(const vkm_hparams *hp, uint32_t n_ctx, uint32_t group, uint32_t window, uint32_t sinks,
                   const uint8_t *kb, const uint8_t *vb, vkmix_kv_memory *mem)
{
    vkmix_session_params sp;
    memset(&sp, 0, sizeof sp);
    sp.kv = "k2v2";
    sp.kv_group = group;
    sp.kv_window = window;
    sp.kv_sinks = sinks;
    vkm_kv_config c;
    char err[256];
    if (vkm_kv_config_from_params(&sp, hp, n_ctx, &c, err, sizeof err) != VKMIX_OK) abort();
    memcpy(c.k_bits, kb, hp->n_layer);
    memcpy(c.v_bits, vb, hp->n_layer);
    vkm_kv_memory(&c, hp, n_ctx, 0, mem);
}

static void test_counts_and_kvmix(void)
{
    const uint32_t n[] = { 1, 2, 5, 9, 10, 19, 32, 40, 80 };
    const uint32_t want_imp[] = { 0, 1, 1, 1, 1, 1, 3, 4, 8 }, want_gen[] = { 0, 0, 0, 0, 1, 1, 3, 4, 8 };
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
        uint32_t a = 99, b = 99;
        vkmix_calibrate_kvmix_counts(n[i], &a, &b);
        CHECK(a == want_imp[i] && b == want_gen[i], "%u layers: %u important + %u general", n[i], a, b);
    }
    vkm_hparams hp = shape(32, 8, 128);
    float ik[32], iv[32];
    for (uint32_t l = 0; l < 32; l++) {
        ik[l] = (float)((l * 7) % 32);   /* layers with the largest: 9 (31), 18 (30), 27 (29), 4 (28), 13, 22 */
        iv[l] = (float)(31 - l);          /* 0, 1, 2, 3, 4, 5 */
    }
    vkmix_calib_alloc_params p;
    memset(&p, 0, sizeof p);
    p.rule = VKMIX_CALIB_RULE_KVMIX;
    p.n_ctx = 4096;
    p.imp_k = ik;
    p.imp_v = iv;
    uint8_t kb[32], vb[32];
    vkmix_kv_memory mem;
    char err[256];
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, &mem, NULL, err, sizeof err) == VKMIX_OK, "kvmix: %s", err);
    int nk3 = 0, nv4 = 0;
    for (uint32_t l = 0; l < 32; l++) {
        int top_k = ik[l] >= 26, top_v = iv[l] >= 26;
        CHECK(kb[l] == (top_k ? 3 : 2) && vb[l] == (top_v ? 4 : 2), "layer %u: k%u v%u", l, kb[l], vb[l]);
        nk3 += kb[l] == 3;
        nv4 += vb[l] == 4;
    }
    CHECK(nk3 == 6 && nv4 == 6, "6 promoted each (%d, %d)", nk3, nv4);
    vkmix_kv_memory m2;
    mem_of(&hp, 4096, 0, 0, 0, kb, vb, &m2);
    CHECK(m2.total_bytes == mem.total_bytes && m2.k_bits == mem.k_bits, "memory of the kvmix profile");
    /* ties: the lower layer first */
    for (uint32_t l = 0; l < 32; l++) ik[l] = iv[l] = 1;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_OK, "ties");
    for (uint32_t l = 0; l < 32; l++) CHECK(kb[l] == (l < 6 ? 3 : 2), "tie layer %u", l);
    /* 5 layers: one important layer */
    vkm_hparams h5 = shape(5, 4, 8);
    float k5[5] = { 0.2f, 0.5f, 0.4f, 0.7f, 0.1f }, v5[5] = { 0.6f, 0.9f, 1.3f, 1.0f, 0.6f };
    p.imp_k = k5;
    p.imp_v = v5;
    CHECK(vkm_calib_allocate(&h5, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_OK, "5 layers");
    CHECK(!memcmp(kb, (uint8_t[]){ 2, 2, 2, 3, 2 }, 5) && !memcmp(vb, (uint8_t[]){ 2, 2, 4, 2, 2 }, 5),
          "5 layers: K3 on layer 3, V4 on layer 2");
}

static void test_target_bits(void)
{
    tu_rng r;
    tu_rng_seed(&r, 21);
    char err[256];
    /* DP == exhaustive on small problems of several shapes, separate and joint, and budgets */
    const struct { uint32_t L, H, D, ctx, G, R, S; } shapes[] = {
        { 4, 2, 8, 512, 32, 32, 0 },      /* head_dim 8: V 2/3/4 bits cost the same */
        { 3, 4, 16, 2048, 32, 128, 4 },
        { 4, 8, 128, 4096, 64, 128, 0 },
        { 2, 4, 64, 300, 32, 64, 2 },
    };
    int compared = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        vkm_hparams hp = shape(shapes[si].L, shapes[si].H, shapes[si].D);
        const uint32_t L = hp.n_layer;
        for (int trial = 0; trial < 12; trial++) {
            float ik[8], iv[8], ek[32], ev[32];
            random_scores(&r, L, ik, iv, ek, ev);
            vkmix_calib_alloc_params p;
            memset(&p, 0, sizeof p);
            p.n_ctx = shapes[si].ctx;
            p.group = shapes[si].G;
            p.window = shapes[si].R;
            p.sinks = shapes[si].S;
            p.imp_k = ik;
            p.imp_v = iv;
            p.err_k = ek;
            p.err_v = ev;
            /* the all-2-bit floor, then targets above it */
            uint8_t k2[8], v2[8];
            memset(k2, 2, sizeof k2);
            memset(v2, 2, sizeof v2);
            vkmix_kv_memory floor_mem;
            mem_of(&hp, p.n_ctx, p.group, p.window, p.sinks, k2, v2, &floor_mem);
            const int mode = trial % 3; /* 0: separate, 1: joint, 2: budget */
            p.rule = mode == 2 ? VKMIX_CALIB_RULE_BUDGET : VKMIX_CALIB_RULE_TARGET_BITS;
            p.joint = mode == 1;
            double lo = mode == 1 ? (floor_mem.k_bits + floor_mem.v_bits) / 2
                                  : (floor_mem.k_bits > floor_mem.v_bits ? floor_mem.k_bits : floor_mem.v_bits);
            p.target_bits = lo + (17 - lo) * tu_rng_uniform(&r) * 0.6;
            p.budget_bytes = (uint64_t)(floor_mem.total_bytes * (1 + 2.5 * tu_rng_uniform(&r)));
            uint8_t kb[8], vb[8], xk[8], xv[8];
            vkmix_kv_memory mem;
            double obj = -1;
            vkmix_error e = vkm_calib_allocate(&hp, &p, kb, vb, &mem, &obj, err, sizeof err);
            CHECK(e == VKMIX_OK, "shape %zu trial %d: %s", si, trial, err);
            if (e != VKMIX_OK) continue;
            double best = vkm_calib_exhaustive(&hp, &p, xk, xv);
            CHECK(isfinite(best), "exhaustive finds a solution");
            CHECK(fabs(obj - best) <= 1e-9 * best + 1e-15, "shape %zu trial %d (mode %d): DP %.12g vs exhaustive %.12g",
                  si, trial, mode, obj, best);
            compared++;
            vkmix_kv_memory m2;
            mem_of(&hp, p.n_ctx, p.group, p.window, p.sinks, kb, vb, &m2);
            CHECK(m2.total_bytes == mem.total_bytes, "reported memory is the profile's");
            if (mode == 0)
                CHECK(mem.k_bits <= p.target_bits + 1e-9 && mem.v_bits <= p.target_bits + 1e-9,
                      "separate: K %.4f V %.4f <= %.4f", mem.k_bits, mem.v_bits, p.target_bits);
            else if (mode == 1)
                CHECK((mem.k_bits + mem.v_bits) / 2 <= p.target_bits + 1e-9, "joint: %.4f <= %.4f",
                      (mem.k_bits + mem.v_bits) / 2, p.target_bits);
            else CHECK(mem.total_bytes <= p.budget_bytes, "budget: %llu <= %llu", (unsigned long long)mem.total_bytes,
                       (unsigned long long)p.budget_bytes);
        }
    }
    CHECK(compared >= 40, "compared %d", compared);

    /* a real shape: 32 layers, 8 KV heads x 128, context 4096, G 32, R 128 */
    vkm_hparams hp = shape(32, 8, 128);
    float ik[32], iv[32], ek[128], ev[128];
    random_scores(&r, 32, ik, iv, ek, ev);
    vkmix_calib_alloc_params p;
    memset(&p, 0, sizeof p);
    p.rule = VKMIX_CALIB_RULE_TARGET_BITS;
    p.n_ctx = 4096;
    p.imp_k = ik;
    p.imp_v = iv;
    p.err_k = ek;
    p.err_v = ev;
    double prev_obj = INFINITY;
    for (double b = 4.0; b <= 9.0; b += 0.5) { /* the all-2-bit floor is 3.875 here */
        p.target_bits = b;
        uint8_t kb[32], vb[32];
        vkmix_kv_memory mem;
        double obj;
        CHECK(vkm_calib_allocate(&hp, &p, kb, vb, &mem, &obj, err, sizeof err) == VKMIX_OK, "%.1f bits: %s", b, err);
        /* within the smallest step (one layer 2 -> 3 bits: 1/32 bit) of the target */
        CHECK(mem.k_bits <= b + 1e-9 && mem.k_bits > b - 0.05, "K %.4f for target %.1f", mem.k_bits, b);
        CHECK(mem.v_bits <= b + 1e-9 && mem.v_bits > b - 0.05, "V %.4f for target %.1f", mem.v_bits, b);
        CHECK(obj <= prev_obj, "more bits never cost quality (%.6g then %.6g)", prev_obj, obj);
        prev_obj = obj;
        /* the important layers get at least the bits of less important ones of the same error curve shape */
    }
    /* infeasible: below the all-2-bit floor */
    p.target_bits = 2.0;
    uint8_t kb[32], vb[32];
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(err, "smallest is"), "target below the floor: %s", err);
    p.rule = VKMIX_CALIB_RULE_BUDGET;
    p.budget_bytes = 1 << 20;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(err, "MiB"), "budget too small: %s", err);
    /* bad inputs */
    p.rule = VKMIX_CALIB_RULE_TARGET_BITS;
    p.target_bits = 0;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "0 bits");
    p.target_bits = 4;
    p.err_v = NULL;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "no err");
    p.err_v = ev;
    ik[3] = NAN;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NaN");
    ik[3] = -1;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "negative");
    ik[3] = 1;
    p.rule = (vkmix_calib_rule)7;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "rule 7");
    p.rule = VKMIX_CALIB_RULE_TARGET_BITS;
    p.group = 48;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE, "group 48");
    p.group = 64;
    p.window = 32;
    CHECK(vkm_calib_allocate(&hp, &p, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_BAD_PROFILE, "window < G");
    p.window = 0;
    CHECK(vkm_calib_allocate(&hp, NULL, kb, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL");
    CHECK(vkm_calib_allocate(&hp, &p, NULL, vb, NULL, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL k");
}

/* ------------------------------------------------------------------ stories260K through the public API */

static int test_stories(void)
{
    char *path = tu_stories260k(NULL);
    if (!path) {
        CHECK(0, "stories260K: neither ../shared's nor assets/stories260K-f16.gguf (VKMIX_SOURCE_DIR)");
        return 1;
    }
    vkmix_context *ctx = tu_context();
    if (!ctx) {
        free(path);
        CHECK(0, "context");
        return 1;
    }
    vkmix_model *m = NULL;
    vkmix_error e = vkmix_model_load(ctx, path, NULL, &m);
    CHECK(e == VKMIX_OK, "load: %s", vkmix_context_last_error(ctx));
    if (e != VKMIX_OK) {
        tu_context_done(ctx);
        free(path);
        return 1;
    }
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    const uint32_t L = info.n_layer, N = 4, T = 64;
    int32_t *tok = malloc(N * T * sizeof *tok);
    tu_rng r;
    tu_rng_seed(&r, 9);
    for (uint32_t i = 0; i < N * T; i++) tok[i] = (int32_t)(3 + tu_rng_u32(&r) % (info.n_vocab - 3));
    for (uint32_t s = 0; s < N; s++) tok[s * T] = info.bos;

    float loss, ik[8], iv[8], ik2[8], iv2[8];
    e = vkmix_calibrate_importance(m, tok, N, T, 2, NULL, NULL, &loss, ik, iv);
    CHECK(e == VKMIX_OK, "importance: %s", vkmix_context_last_error(ctx));
    CHECK(vkmix_calibrate_importance(m, tok, N, T, 1, NULL, NULL, NULL, ik2, iv2) == VKMIX_OK, "1 thread");
    CHECK(!memcmp(ik, ik2, L * 4) && !memcmp(iv, iv2, L * 4), "bit-identical with 1 and 2 threads");
    /* direct: one vkm_ref_grad_kv call over the batch on the model's fp32 weights */
    vkm_ref_model rm;
    CHECK(vkm_model_ref_weights(m, &rm) == VKMIX_OK, "ref weights");
    {
        const size_t mat = (size_t)info.n_head_kv * info.head_dim * info.n_embd;
        float *gk[8], *gv[8], dl = 0;
        for (uint32_t l = 0; l < L; l++) {
            gk[l] = malloc(mat * 4);
            gv[l] = malloc(mat * 4);
        }
        CHECK(vkm_ref_grad_kv(&rm.w, tok, N, T, 2, &dl, gk, gv, NULL, NULL) == VKMIX_OK, "direct");
        CHECK(fabsf(dl - loss) <= 1e-5f * dl, "loss %.7f vs direct %.7f", loss, dl);
        for (uint32_t l = 0; l < L; l++) {
            double dk = frob(gk[l], mat), dv = frob(gv[l], mat);
            CHECK(fabs(ik[l] - dk) <= 2e-5 * dk && fabs(iv[l] - dv) <= 2e-5 * dv,
                  "layer %u: I_K %.7g I_V %.7g vs direct %.7g %.7g", l, ik[l], iv[l], dk, dv);
            free(gk[l]);
            free(gv[l]);
        }
    }
    vkm_ref_model_free(&rm);
    for (uint32_t l = 0; l < L; l++) CHECK(ik[l] > 0 && iv[l] > 0 && isfinite(ik[l]), "layer %u scores", l);
    CHECK(loss > 1 && loss < 40, "loss %.3f on random tokens", loss);

    float ek[8 * 4], ev[8 * 4];
    e = vkmix_calibrate_kv_error(m, tok, N, T, 32, 0, 2, NULL, NULL, ek, ev);
    CHECK(e == VKMIX_OK, "kv error: %s", vkmix_context_last_error(ctx));
    /* allocation through the public API, a profile on disk, and the session's own accounting */
    char prof[] = "/tmp/vkmix_test_calibrate_XXXXXX";
    int fd = mkstemp(prof);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);
    vkmix_calib_alloc_params p;
    memset(&p, 0, sizeof p);
    p.imp_k = ik;
    p.imp_v = iv;
    p.err_k = ek;
    p.err_v = ev;
    p.n_ctx = 2048; /* at 512 tokens the FP16 ring alone is 7 bits per element */
    const vkmix_calib_rule rules[3] = { VKMIX_CALIB_RULE_KVMIX, VKMIX_CALIB_RULE_TARGET_BITS,
                                        VKMIX_CALIB_RULE_BUDGET };
    for (int i = 0; i < 3; i++) {
        p.rule = rules[i];
        p.target_bits = 10.5;
        p.budget_bytes = 600000;
        vkmix_kv_config kc;
        vkmix_kv_memory mem, est;
        char werr[256];
        e = vkmix_calibrate_allocate(m, &p, &kc, &mem, NULL);
        CHECK(e == VKMIX_OK, "rule %d: %s", i, vkmix_context_last_error(ctx));
        CHECK(kc.n_layer == L && kc.policy == VKMIX_KV_POLICY_LAYER && kc.group == 0, "rule %d: the returned config", i);
        const uint8_t *vb = kc.v_bits;
        e = vkmix_kv_profile_write(&kc, prof, "{\"test\": true}", werr, sizeof werr);
        CHECK(e == VKMIX_OK, "write: %s", werr);
        vkmix_session_params sp;
        vkmix_session_default_params(&sp);
        sp.n_ctx = 2048;
        sp.kv_profile = prof;
        e = vkmix_kv_memory_estimate(m, &sp, 0, &est);
        CHECK(e == VKMIX_OK, "the profile loads: %s", vkmix_context_last_error(ctx));
        CHECK(est.total_bytes == mem.total_bytes && est.k_bits == mem.k_bits && est.v_bits == mem.v_bits,
              "rule %d: the session counts what the allocator counted (%.4f %.4f vs %.4f %.4f)", i, est.k_bits,
              est.v_bits, mem.k_bits, mem.v_bits);
        if (rules[i] == VKMIX_CALIB_RULE_TARGET_BITS)
            CHECK(est.k_bits <= 10.5 && est.v_bits <= 10.5, "target: K %.3f V %.3f <= 10.5", est.k_bits, est.v_bits);
        if (rules[i] == VKMIX_CALIB_RULE_BUDGET) CHECK(est.total_bytes <= 600000, "budget: %llu", (unsigned long long)est.total_bytes);
        if (rules[i] == VKMIX_CALIB_RULE_TARGET_BITS)
            for (uint32_t l = 0; l < L; l++) CHECK(vb[l] != 2 && vb[l] != 3, "head_dim 8: V 4 bits cost what 2 bits cost");
    }
    /* the writer refuses bad widths and bad provenance, and reports unwritable paths */
    vkmix_kv_config kc;
    char werr[256];
    vkmix_kv_config_default(&kc);
    kc.n_layer = L;
    memset(kc.k_bits, 2, L);
    memset(kc.v_bits, 2, L);
    kc.v_bits[2] = 5;
    CHECK(vkmix_kv_profile_write(&kc, prof, NULL, werr, sizeof werr) == VKMIX_ERROR_BAD_PROFILE &&
              strstr(werr, "layer 2: value width 5"), "width 5: %s", werr);
    kc.v_bits[2] = 2;
    kc.group = 32;
    kc.window = 64;
    kc.sinks = 4;
    CHECK(vkmix_kv_profile_write(&kc, prof, "[1,2]", werr, sizeof werr) == VKMIX_ERROR_INVALID_ARGUMENT, "provenance");
    CHECK(vkmix_kv_profile_write(&kc, "/nonexistent/dir/p.json", NULL, werr, sizeof werr) == VKMIX_ERROR_IO, "unwritable");
    CHECK(vkmix_kv_profile_write(&kc, prof, NULL, werr, sizeof werr) == VKMIX_OK, "geometry");
    {
        vkmix_session_params sp;
        vkmix_session_default_params(&sp);
        sp.n_ctx = 512;
        sp.kv_profile = prof;
        vkmix_kv_memory est;
        CHECK(vkmix_kv_memory_estimate(m, &sp, 0, &est) == VKMIX_OK, "profile with geometry loads");
    }
    unlink(prof);
    /* public API errors */
    CHECK(vkmix_calibrate_importance(NULL, tok, N, T, 1, NULL, NULL, NULL, ik, iv) == VKMIX_ERROR_INVALID_ARGUMENT,
          "NULL model");
    CHECK(vkmix_calibrate_importance(m, tok, 0, T, 1, NULL, NULL, NULL, ik, iv) == VKMIX_ERROR_INVALID_ARGUMENT &&
              vkmix_context_last_error(ctx)[0], "0 sequences, with a message");
    tok[5] = (int32_t)info.n_vocab;
    CHECK(vkmix_calibrate_kv_error(m, tok, N, T, 32, 0, 1, NULL, NULL, ek, ev) == VKMIX_ERROR_INVALID_ARGUMENT,
          "token out of range");
    CHECK(vkmix_calibrate_allocate(m, NULL, &kc, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL params");
    CHECK(vkmix_calibrate_width(0) == 2 && vkmix_calibrate_width(3) == 8 && vkmix_calibrate_width(4) == 0, "widths");
    free(tok);
    vkmix_model_free(m);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    free(path);
    return 1;
}

int main(void)
{
    test_importance_synth();
    test_kv_error_synth();
    test_counts_and_kvmix();
    test_target_bits();
    test_stories(); /* ../shared's stories260K, or the shipped f16 copy */
    return tu_finish("test_calibrate");
}
