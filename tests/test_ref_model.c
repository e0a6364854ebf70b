/* The fp32 reference forward pass: naive ops on hand-computed cases, the KV
 * cache options, errors, and a greedy decode of stories260K. */
#include <math.h>
#include <string.h>
#include "ref_llama2c.h"
#include "ref/ref_model.h"
#include "testutil.h"

#define PI 3.14159265358979323846

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1.0 + fabs(b)); }

/* ------------------------------------------------------------------ ops */

static void test_rmsnorm_matvec_silu_softmax(void)
{
    /* rmsnorm of (1, 2, 3, 4): mean square 7.5 */
    float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, -1}, out[4];
    vkm_ref_rmsnorm(out, x, w, 4, 0.5f);
    double r = 1.0 / sqrt(7.5 + 0.5);
    for (int i = 0; i < 4; i++) CHECK(close_to(out[i], x[i] * r * w[i], 1e-6), "rmsnorm %d: %g", i, out[i]);
    vkm_ref_rmsnorm(out, x, NULL, 4, 0.0f);
    CHECK(close_to(out[3], 4 / sqrt(7.5), 1e-6), "rmsnorm no weight %g", out[3]);

    /* matvec: W is 2 rows of 3 */
    const float W[6] = {1, 2, 3, -1, 0, 2}, v[3] = {1, -1, 0.5f}, b[2] = {10, 20};
    float y[2];
    vkm_ref_matvec(y, W, v, NULL, 3, 2);
    CHECK(y[0] == 0.5f && y[1] == 0.0f, "matvec %g %g", y[0], y[1]);
    vkm_ref_matvec(y, W, v, b, 3, 2);
    CHECK(y[0] == 10.5f && y[1] == 20.0f, "matvec bias %g %g", y[0], y[1]);

    /* silu(g) * u */
    float g[3] = {0, 1, -2}, u[3] = {3, 2, 1}, s[3];
    vkm_ref_silu_mul(s, g, u, 3);
    CHECK(s[0] == 0.0f, "silu 0");
    CHECK(close_to(s[1], 2.0 / (1.0 + exp(-1.0)), 1e-6), "silu 1: %g", s[1]);
    CHECK(close_to(s[2], -2.0 / (1.0 + exp(2.0)), 1e-6), "silu -2: %g", s[2]);

    /* softmax of (1, 2, 3) and of a large shift (no overflow) */
    float p[3] = {1, 2, 3};
    vkm_ref_softmax(p, 3);
    double z = exp(1) + exp(2) + exp(3);
    for (int i = 0; i < 3; i++) CHECK(close_to(p[i], exp(i + 1) / z, 1e-6), "softmax %d", i);
    float big[2] = {1000, 1000 + logf(3.0f)};
    vkm_ref_softmax(big, 2);
    CHECK(close_to(big[0], 0.25, 1e-5) && close_to(big[1], 0.75, 1e-5), "softmax big %g %g", big[0], big[1]);
}

static void test_rope(void)
{
    /* one head of 4: pairs have freqs 1 and theta^(-1/2) = 0.01 for theta 1e4 */
    vkm_hparams hp = {0};
    hp.head_dim = 4;
    hp.rope_theta = 10000.0f;
    float f[2];
    vkm_rope_freqs(&hp, f);
    CHECK(f[0] == 1.0f && close_to(f[1], 0.01, 1e-6), "freqs %g %g", f[0], f[1]);

    const uint32_t pos = 3;
    const double c0 = cos(3.0), s0 = sin(3.0), c1 = cos(0.03), s1 = sin(0.03);
    /* NORM: pairs (x0, x1), (x2, x3) */
    float x[4] = {1, 2, 3, 4};
    vkm_ref_rope(x, 1, 4, pos, f, VKM_ROPE_NORM);
    double en[4] = {1 * c0 - 2 * s0, 1 * s0 + 2 * c0, 3 * c1 - 4 * s1, 3 * s1 + 4 * c1};
    for (int i = 0; i < 4; i++) CHECK(close_to(x[i], en[i], 1e-5), "rope norm %d: %g vs %g", i, x[i], en[i]);
    /* NEOX: pairs (x0, x2), (x1, x3) */
    float y[4] = {1, 2, 3, 4};
    vkm_ref_rope(y, 1, 4, pos, f, VKM_ROPE_NEOX);
    double ex[4] = {1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 1 * s0 + 3 * c0, 2 * s1 + 4 * c1};
    for (int i = 0; i < 4; i++) CHECK(close_to(y[i], ex[i], 1e-5), "rope neox %d: %g vs %g", i, y[i], ex[i]);

    /* several heads get the same rotation; the inverse undoes it; pos 0 is the identity */
    float z[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    vkm_ref_rope(z, 2, 4, pos, f, VKM_ROPE_NORM);
    for (int i = 0; i < 4; i++) CHECK(z[i] == x[i] && z[4 + i] == x[i], "rope heads %d", i);
    vkm_ref_rope_inverse(z, 2, 4, pos, f, VKM_ROPE_NORM);
    for (int i = 0; i < 8; i++) CHECK(close_to(z[i], 1 + i % 4, 1e-6), "rope inverse %d: %g", i, z[i]);
    float w0[4] = {1, 2, 3, 4};
    vkm_ref_rope(w0, 1, 4, 0, f, VKM_ROPE_NEOX);
    for (int i = 0; i < 4; i++) CHECK(w0[i] == (float)(i + 1), "rope pos 0");
}

/* Meta's llama3 apply_scaling, written out in double. */
static double llama3_freq(double theta, int i, int head_dim, double factor, double low, double high, double orig)
{
    double freq = 1.0 / pow(theta, (double)(2 * i) / head_dim);
    double wavelen = 2 * PI / freq;
    if (wavelen < orig / high) return freq;
    if (wavelen > orig / low) return freq / factor;
    double smooth = (orig / wavelen - low) / (high - low);
    return (1 - smooth) * freq / factor + smooth * freq;
}

static void test_rope_llama3(void)
{
    /* Llama 3.1 settings: all three branches occur at head_dim 128 */
    vkm_hparams hp = {0};
    hp.head_dim = 128;
    hp.rope_theta = 500000.0f;
    hp.rope_scale_factor = 8.0f;
    hp.rope_low_freq_factor = 1.0f;
    hp.rope_high_freq_factor = 4.0f;
    hp.rope_orig_ctx = 8192;
    float f[64];
    vkm_rope_freqs(&hp, f);
    int kept = 0, scaled = 0, smooth = 0;
    for (int i = 0; i < 64; i++) {
        double ref = llama3_freq(500000.0, i, 128, 8, 1, 4, 8192);
        double plain = 1.0 / pow(500000.0, i / 64.0);
        CHECK(close_to(f[i], ref, 2e-5), "llama3 freq %d: %g vs %g", i, f[i], ref);
        if (fabs(ref - plain) < 1e-12 * plain) kept++;
        else if (fabs(ref - plain / 8) < 1e-12 * plain) scaled++;
        else smooth++;
    }
    CHECK(kept > 0 && scaled > 0 && smooth > 0, "llama3 branches %d %d %d", kept, scaled, smooth);

    /* a hand case: head_dim 8, theta 1e4, factor 8, low 1, high 4, orig 64:
     * freqs 1, 0.1, 0.01, 0.001 with wavelengths 6.28 (kept, < 16), 62.8 (smooth), 628 and 6283 (/8) */
    hp.head_dim = 8;
    hp.rope_theta = 10000.0f;
    hp.rope_orig_ctx = 64;
    float g[4];
    vkm_rope_freqs(&hp, g);
    double sm = (64.0 / (2 * PI / 0.1) - 1.0) / 3.0;
    CHECK(close_to(g[0], 1.0, 1e-6), "llama3 hand 0: %g", g[0]);
    CHECK(close_to(g[1], (1 - sm) * 0.1 / 8 + sm * 0.1, 1e-5), "llama3 hand 1: %g", g[1]);
    CHECK(close_to(g[2], 0.01 / 8, 1e-5), "llama3 hand 2: %g", g[2]);
    CHECK(close_to(g[3], 0.001 / 8, 1e-5), "llama3 hand 3: %g", g[3]);
    hp.rope_scale_factor = 0.0f; /* disabled: plain frequencies */
    vkm_rope_freqs(&hp, g);
    CHECK(close_to(g[3], 0.001, 1e-5), "llama3 off: %g", g[3]);
}

static void test_attention(void)
{
    /* one head, head_dim 2, two cached positions, stride 3 (padding between rows) */
    const float q[2] = {1, 2};
    const float k[6] = {1, 0, 99, 0, 1, 99};
    const float v[6] = {10, 20, 99, 30, 40, 99};
    float out[2], sc[2];
    vkm_ref_attention_head(out, q, k, v, 2, 3, 2, 0.5f, sc);
    double p0 = 1.0 / (1.0 + exp(0.5)), p1 = 1.0 - p0; /* scores 0.5 and 1.0 */
    CHECK(close_to(sc[0], p0, 1e-6) && close_to(sc[1], p1, 1e-6), "attention p %g %g", sc[0], sc[1]);
    CHECK(close_to(out[0], 10 * p0 + 30 * p1, 1e-6) && close_to(out[1], 20 * p0 + 40 * p1, 1e-6),
          "attention out %g %g", out[0], out[1]);
    /* a span: start at position 1 only */
    vkm_ref_attention_head(out, q, k + 3, v + 3, 1, 3, 2, 0.5f, sc);
    CHECK(out[0] == 30 && out[1] == 40 && sc[0] == 1.0f, "attention span");

    /* GQA: 6 query heads over 2 KV heads (3:1), head_dim 2. KV head j holds
     * constant value rows (j+1)*(1, 10); query head h must read head h / 3. */
    vkm_hparams hp = {0};
    hp.n_head = 6;
    hp.n_head_kv = 2;
    hp.head_dim = 2;
    for (uint32_t h = 0; h < 6; h++) CHECK(vkm_ref_kv_head(&hp, h) == h / 3, "kv head of %u", h);
    float kc[3 * 4], vc[3 * 4], qq[12], o[12], scr[3];
    tu_rng rng;
    tu_rng_seed(&rng, 7);
    for (int t = 0; t < 3; t++)
        for (int j = 0; j < 2; j++) {
            kc[t * 4 + j * 2 + 0] = tu_rng_normal(&rng);
            kc[t * 4 + j * 2 + 1] = tu_rng_normal(&rng);
            vc[t * 4 + j * 2 + 0] = (float)(j + 1) * (1 + t);
            vc[t * 4 + j * 2 + 1] = (float)(j + 1) * 10;
        }
    for (int i = 0; i < 12; i++) qq[i] = tu_rng_normal(&rng);
    vkm_ref_attention(o, qq, kc, vc, 3, &hp, scr);
    for (uint32_t h = 0; h < 6; h++) {
        uint32_t j = h / 3;
        CHECK(close_to(o[h * 2 + 1], (j + 1) * 10.0, 1e-6), "GQA head %u reads kv head %u: %g", h, j, o[h * 2 + 1]);
        /* and the weights come from keys of the same kv head */
        float ref[2], s2[3];
        vkm_ref_attention_head(ref, qq + h * 2, kc + j * 2, vc + j * 2, 3, 4, 2, 1.0f / sqrtf(2.0f), s2);
        CHECK(ref[0] == o[h * 2] && ref[1] == o[h * 2 + 1], "GQA head %u", h);
    }
}

/* ------------------------------------------------------------------ a tiny random model */

/* 2 layers, 4 query heads on 2 KV heads, head_dim 4, q/k/v biases, NEOX RoPE, tied output. */
typedef struct tiny_model {
    vkm_ref_weights w;
    vkm_ref_layer layers[2];
    float *buf;
} tiny_model;

static float *tiny_take(float **p, size_t n, tu_rng *rng, float scale, float base)
{
    float *r = *p;
    for (size_t i = 0; i < n; i++) r[i] = base + scale * tu_rng_normal(rng);
    *p += n;
    return r;
}

static int tiny_init(tiny_model *m)
{
    vkm_hparams *hp = &m->w.hp;
    memset(m, 0, sizeof *m);
    hp->n_vocab = 11; hp->n_embd = 12; hp->n_layer = 2; hp->n_head = 4; hp->n_head_kv = 2;
    hp->head_dim = 4; hp->n_ff = 20; hp->n_ctx_train = 64;
    hp->rope_theta = 10000.0f; hp->norm_eps = 1e-6f; hp->rope_type = VKM_ROPE_NEOX;
    const size_t D = 12, Q = 16, KV = 8, F = 20, V = 11;
    size_t per_layer = D + Q * D + 2 * KV * D + Q + 2 * KV + D * Q + D + 2 * F * D + D * F;
    m->buf = malloc((V * D + D + 2 * per_layer) * sizeof(float));
    if (!m->buf) return -1;
    tu_rng rng;
    tu_rng_seed(&rng, 42);
    float *p = m->buf;
    m->w.tok_embd = tiny_take(&p, V * D, &rng, 1.0f, 0.0f);
    m->w.out_norm = tiny_take(&p, D, &rng, 0.1f, 1.0f);
    m->w.output = m->w.tok_embd;
    for (int l = 0; l < 2; l++) {
        vkm_ref_layer *L = &m->layers[l];
        L->attn_norm = tiny_take(&p, D, &rng, 0.1f, 1.0f);
        L->wq = tiny_take(&p, Q * D, &rng, 0.3f, 0.0f);
        L->wk = tiny_take(&p, KV * D, &rng, 0.3f, 0.0f);
        L->wv = tiny_take(&p, KV * D, &rng, 0.3f, 0.0f);
        L->bq = tiny_take(&p, Q, &rng, 0.1f, 0.0f);
        L->bk = tiny_take(&p, KV, &rng, 0.1f, 0.0f);
        L->bv = tiny_take(&p, KV, &rng, 0.1f, 0.0f);
        L->wo = tiny_take(&p, D * Q, &rng, 0.3f, 0.0f);
        L->ffn_norm = tiny_take(&p, D, &rng, 0.1f, 1.0f);
        L->w_gate = tiny_take(&p, F * D, &rng, 0.3f, 0.0f);
        L->w_up = tiny_take(&p, F * D, &rng, 0.3f, 0.0f);
        L->w_down = tiny_take(&p, D * F, &rng, 0.3f, 0.0f);
    }
    m->w.layers = m->layers;
    return 0;
}

/* ------------------------------------------------------------------ state, cache, errors */

static int argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int)best;
}

typedef struct hook_log {
    int n_calls, order_ok, fail_at_call;
    uint32_t next_layer, next_pos;
} hook_log;

/* Rounds the just-stored row to FP16 by hand and checks the call order. */
static vkmix_error hook_round(void *user, vkm_ref_state *s, uint32_t layer, uint32_t pos)
{
    hook_log *log = user;
    if (layer != log->next_layer || pos != log->next_pos) log->order_ok = 0;
    log->next_layer = (layer + 1) % s->hp.n_layer;
    log->next_pos = log->next_layer == 0 ? pos + 1 : pos;
    if (++log->n_calls == log->fail_at_call) return VKMIX_ERROR_CANCELLED;
    float *k = vkm_ref_k_at(s, layer, pos), *v = vkm_ref_v_at(s, layer, pos);
    for (uint32_t i = 0; i < s->kv_dim; i++) {
        k[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(k[i]));
        v[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(v[i]));
    }
    return VKMIX_OK;
}

static void test_state(void)
{
    tiny_model m;
    if (tiny_init(&m) != 0) {
        CHECK(0, "out of memory");
        return;
    }
    const vkm_hparams *hp = &m.w.hp;
    const uint32_t n_ctx = 8, V = hp->n_vocab;
    vkm_ref_state *s32 = NULL, *s16 = NULL, *shook = NULL;
    CHECK(vkm_ref_state_create(hp, n_ctx, 0, &s32) == VKMIX_OK, "create");
    CHECK(vkm_ref_state_create(hp, n_ctx, 1, &s16) == VKMIX_OK, "create fp16");
    CHECK(vkm_ref_state_create(hp, n_ctx, 0, &shook) == VKMIX_OK, "create hook");
    if (!s32 || !s16 || !shook) goto done;
    CHECK(s32->kv_dim == 8 && s32->q_dim == 16, "dims");

    hook_log log = {0, 1, -1, 0, 0};
    shook->kv_hook = hook_round;
    shook->kv_hook_user = &log;
    const int32_t toks[6] = {3, 1, 4, 1, 5, 9};
    float l32[11], l16[11], lh[11];
    int all_ok = 1, differs = 0;
    for (uint32_t pos = 0; pos < 6; pos++) {
        all_ok &= vkm_ref_forward(&m.w, s32, toks[pos], pos, l32) == VKMIX_OK;
        all_ok &= vkm_ref_forward(&m.w, s16, toks[pos], pos, l16) == VKMIX_OK;
        all_ok &= vkm_ref_forward(&m.w, shook, toks[pos], pos, lh) == VKMIX_OK;
        /* a hook that rounds to FP16 reproduces the FP16 cache bit for bit */
        CHECK(memcmp(l16, lh, sizeof l16) == 0, "fp16 hook == fp16 cache at pos %u", pos);
        for (uint32_t i = 0; i < V; i++) differs |= l16[i] != l32[i];
    }
    CHECK(all_ok, "forward failed");
    CHECK(differs, "fp16 rounding changed nothing");
    CHECK(log.n_calls == 6 * 2 && log.order_ok, "hook calls %d, order %d", log.n_calls, log.order_ok);
    /* at pos 0 of layer 0 both caches saw the same input: fp16 = round(fp32) */
    for (uint32_t i = 0; i < s32->kv_dim; i++) {
        float k32 = vkm_ref_k_at(s32, 0, 0)[i], k16 = vkm_ref_k_at(s16, 0, 0)[i];
        float v32 = vkm_ref_v_at(s32, 0, 0)[i], v16 = vkm_ref_v_at(s16, 0, 0)[i];
        CHECK(k16 == vkmix_f16_to_f32(vkmix_f32_to_f16(k32)), "fp16 k %u", i);
        CHECK(v16 == vkmix_f16_to_f32(vkmix_f32_to_f16(v32)), "fp16 v %u", i);
    }
    /* every stored element of the fp16 cache is representable in fp16 */
    for (uint32_t l = 0; l < hp->n_layer; l++)
        for (uint32_t pos = 0; pos < 6; pos++)
            for (uint32_t i = 0; i < s16->kv_dim; i++) {
                float k = vkm_ref_k_at(s16, l, pos)[i];
                CHECK(k == vkmix_f16_to_f32(vkmix_f32_to_f16(k)), "fp16 representable");
            }
    /* the cache row the forward pass writes is what attention reads: overwriting an
     * earlier entry changes later logits, and re-running a position reproduces it */
    float again[11];
    CHECK(vkm_ref_forward(&m.w, s32, toks[5], 5, again) == VKMIX_OK, "rerun");
    CHECK(memcmp(again, l32, sizeof again) == 0, "rerun of a position is identical");
    vkm_ref_v_at(s32, 1, 2)[3] += 1.0f;
    CHECK(vkm_ref_forward(&m.w, s32, toks[5], 5, again) == VKMIX_OK, "rerun");
    CHECK(memcmp(again, l32, sizeof again) != 0, "an overwritten cache entry is used");

    /* a failing hook stops the pass with its code */
    log = (hook_log){0, 1, 3, 0, 0};
    CHECK(vkm_ref_forward(&m.w, shook, 1, 0, lh) == VKMIX_OK, "hook ok");
    CHECK(vkm_ref_forward(&m.w, shook, 1, 1, lh) == VKMIX_ERROR_CANCELLED, "hook error propagates");

    /* errors, not crashes */
    CHECK(vkm_ref_forward(&m.w, s32, -1, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "token -1");
    CHECK(vkm_ref_forward(&m.w, s32, (int32_t)V, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "token n_vocab");
    CHECK(vkm_ref_forward(&m.w, s32, 0, n_ctx, l32) == VKMIX_ERROR_CONTEXT_OVERFLOW, "pos n_ctx");
    CHECK(vkm_ref_forward(&m.w, s32, 0, n_ctx - 1, NULL) == VKMIX_OK, "last pos, no logits");
    CHECK(vkm_ref_forward(NULL, s32, 0, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL weights");
    CHECK(vkm_ref_forward(&m.w, NULL, 0, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL state");
    vkm_ref_weights bad = m.w;
    bad.hp.n_ff = 21;
    CHECK(vkm_ref_forward(&bad, s32, 0, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "hparams mismatch");
    bad = m.w;
    bad.output = NULL;
    CHECK(vkm_ref_forward(&bad, s32, 0, 0, l32) == VKMIX_ERROR_INVALID_ARGUMENT, "missing tensor");

    vkm_ref_state *sx = s32; /* a failed create must set it to NULL */
    vkm_hparams h2 = *hp;
    h2.n_head = 3; /* not a multiple of n_head_kv */
    CHECK(vkm_ref_state_create(&h2, 8, 0, &sx) == VKMIX_ERROR_INVALID_ARGUMENT && !sx, "bad GQA");
    h2 = *hp;
    h2.head_dim = 5;
    CHECK(vkm_ref_state_create(&h2, 8, 0, &sx) == VKMIX_ERROR_INVALID_ARGUMENT, "odd head_dim");
    h2 = *hp;
    h2.rope_scale_factor = 8;
    h2.rope_low_freq_factor = 4;
    h2.rope_high_freq_factor = 1;
    h2.rope_orig_ctx = 64;
    CHECK(vkm_ref_state_create(&h2, 8, 0, &sx) == VKMIX_ERROR_INVALID_ARGUMENT, "bad llama3 scaling");
    CHECK(vkm_ref_state_create(hp, 0, 0, &sx) == VKMIX_ERROR_INVALID_ARGUMENT, "n_ctx 0");
    CHECK(vkm_ref_state_create(NULL, 8, 0, &sx) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL hparams");
    CHECK(vkm_ref_state_create(hp, 8, 0, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL out");
    vkm_ref_state_free(NULL);
done:
    vkm_ref_state_free(s32);
    vkm_ref_state_free(s16);
    vkm_ref_state_free(shook);
    free(m.buf);
}

/* ------------------------------------------------------------------ stories260K */

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
    CHECK(hp->n_embd == 64 && hp->n_ff == 172 && hp->n_layer == 5 && hp->n_head == 8 &&
          hp->n_head_kv == 4 && hp->n_vocab == 512 && hp->head_dim == 8, "header");
    CHECK(vkm_ref_weights_check(&m.w) == VKMIX_OK, "weights");

    static const int expect[32] = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                                   421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408,
                                   419, 292, 411, 322, 265, 282, 295, 433, 426, 385};
    vkm_ref_state *s = NULL;
    CHECK(vkm_ref_state_create(hp, 64, 0, &s) == VKMIX_OK, "state");
    float logits[512];
    int token = 1, got[32], n_match = 0;
    for (uint32_t pos = 0; s && pos < 32; pos++) {
        if (vkm_ref_forward(&m.w, s, token, pos, logits) != VKMIX_OK) {
            CHECK(0, "forward at %u", pos);
            break;
        }
        token = got[pos] = argmax(logits, 512);
        if (got[pos] == expect[pos] && n_match == (int)pos) n_match++;
    }
    CHECK(n_match == 32, "greedy decode matches %d of 32 tokens", n_match);
    if (n_match != 32) {
        for (int i = 0; i < 32; i++) fprintf(stderr, "%d ", got[i]);
        fputc('\n', stderr);
    }

    /* with an FP16 cache the same story still begins the same way */
    vkm_ref_state *s16 = NULL;
    CHECK(vkm_ref_state_create(hp, 64, 1, &s16) == VKMIX_OK, "state fp16");
    token = 1;
    int n16 = 0;
    for (uint32_t pos = 0; s16 && pos < 8; pos++) {
        if (vkm_ref_forward(&m.w, s16, token, pos, logits) != VKMIX_OK) break;
        token = argmax(logits, 512);
        if (token == expect[pos] && n16 == (int)pos) n16++;
    }
    CHECK(n16 == 8, "fp16 cache: %d of 8 tokens", n16);
    vkm_ref_state_free(s);
    vkm_ref_state_free(s16);
    ref_llama2c_free(&m);
    return 1;
}

int main(void)
{
    test_rmsnorm_matvec_silu_softmax();
    test_rope();
    test_rope_llama3();
    test_attention();
    test_state();
    if (!test_stories260k())
        printf("test_ref_model: skipped the stories260K part: it needs ../shared's llama2.c checkpoint "
               "models/stories260K/stories260K.bin (the independent reference)\n");
    return tu_finish("test_ref_model");
}
