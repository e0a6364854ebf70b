/* The host side of the MiKV and MixKVQ policies (issue 11), on the CPU only: the
 * selection and tier rules, the packed MixKVQ block, the accounting, and the CPU
 * simulations run over many decode steps (each policy reduces to the per-layer
 * cache where it must, bit for bit; importance keeps the attended tokens precise;
 * the balancer helps the per-token 8-bit tier). */
#include <math.h>
#include <string.h>

#include "ref/kv_sim.h"
#include "testutil.h"

static char err[512];

/* ------------------------------------------------------------------ rules */

static void test_mikv_rules(void)
{
    float imp[40];
    uint32_t mask[2];
    for (int i = 0; i < 40; i++) imp[i] = (float)(i % 7);
    vkm_mikv_select(imp, 40, 3, mask);
    /* 6 at tokens 6, 13, 20, 27, 34: the earliest three win */
    CHECK(mask[0] == ((1u << 6) | (1u << 13) | (1u << 20)) && mask[1] == 0, "top 3 with ties: %08x %08x", mask[0], mask[1]);
    vkm_mikv_select(imp, 40, 0, mask);
    CHECK(mask[0] == 0 && mask[1] == 0, "k = 0");
    vkm_mikv_select(imp, 40, 40, mask);
    CHECK(mask[0] == 0xffffffffu && mask[1] == 0xffu, "k = n");
    imp[39] = 100.0f;
    vkm_mikv_select(imp, 40, 1, mask);
    CHECK(mask[0] == 0 && mask[1] == 0x80u, "the largest, in the second word");
    CHECK(vkm_mikv_balance(4.0f, 1.0f) == 2.0f && vkm_mikv_balance(1.0f, 4.0f) == 0.5f, "sqrt(qmax / kmax)");
    CHECK(vkm_mikv_balance(0.0f, 3.0f) == 1.0f && vkm_mikv_balance(3.0f, 0.0f) == 1.0f &&
              vkm_mikv_balance(NAN, 1.0f) == 1.0f && vkm_mikv_balance(INFINITY, 1.0f) == 1.0f,
          "degenerate channels keep 1");
    CHECK(vkm_mikv_balance(1e12f, 1.0f) == 256.0f && vkm_mikv_balance(1.0f, 1e12f) == 1.0f / 256.0f, "clamped");
    vkm_kv_config c;
    memset(&c, 0, sizeof c);
    c.group = 32;
    c.window = 32;
    c.sinks = 2;
    c.mikv.important_fraction = 0.10f;
    CHECK(vkm_mikv_high_rows(&c) == 3, "10%% of 32 -> %u rows", vkm_mikv_high_rows(&c));
    c.mikv.important_fraction = 0.99f;
    CHECK(vkm_mikv_high_rows(&c) == 32, "99%% of 32 -> %u", vkm_mikv_high_rows(&c));
    /* accumulation stops when the token's block leaves the window: block 0 = positions 2..33,
     * it leaves at S + R + G = 66 tokens, so query 65 counts and query 66 does not */
    float acc[80], probs[2 * 80];
    for (int i = 0; i < 160; i++) probs[i] = 0.01f;
    memset(acc, 0, sizeof acc);
    vkm_mikv_accumulate(&c, acc, probs, 2, 65);
    CHECK(acc[0] == 0.0f && acc[1] == 0.0f && acc[2] == 0.02f && acc[33] == 0.02f && acc[65] == 0.02f, "query 65");
    vkm_mikv_accumulate(&c, acc, probs, 2, 66);
    CHECK(acc[2] == 0.02f && acc[33] == 0.02f && acc[34] == 0.04f && acc[66] == 0.02f, "query 66: block 0 is out");
}

static uint32_t sum_bits(const uint8_t *b, uint32_t D)
{
    uint32_t s = 0;
    for (uint32_t d = 0; d < D; d++) s += b[d];
    return s;
}

static void test_mixkvq_rules(void)
{
    const float A[4] = { 10.0f, 1.0f, 0.5f, 0.1f };
    uint8_t b[64];
    /* upgrade keys: 2->4 at 120, 12, 6, 1.2; 4->16 at 10, 1, 0.5, 0.1 */
    CHECK(vkm_mixkvq_tiers(A, 4, 8, 0, 0, b) == 8 && b[0] == 2 && b[3] == 2, "budget of all-2");
    CHECK(vkm_mixkvq_tiers(A, 4, 10, 0, 0, b) == 10 && b[0] == 4 && b[1] == 2, "one upgrade");
    CHECK(vkm_mixkvq_tiers(A, 4, 20, 0, 0, b) == 16 && b[0] == 4 && b[1] == 4 && b[2] == 4 && b[3] == 4,
          "20 bits: the FP16 step does not fit, every 2->4 does (%u %u %u %u)", b[0], b[1], b[2], b[3]);
    CHECK(vkm_mixkvq_tiers(A, 4, 30, 0, 0, b) == 28 && b[0] == 16 && b[1] == 4 && b[2] == 4 && b[3] == 4, "30 bits");
    CHECK(vkm_mixkvq_tiers(A, 4, 64, 0, 0, b) == 64 && b[3] == 16, "everything fits");
    /* thresholds, capped by the budget (undo the smallest keys first) */
    CHECK(vkm_mixkvq_tiers(A, 4, 64, 5.0f, 0.4f, b) == 26 && b[0] == 16 && b[1] == 4 && b[2] == 4 && b[3] == 2,
          "thresholds: %u %u %u %u", b[0], b[1], b[2], b[3]);
    CHECK(vkm_mixkvq_tiers(A, 4, 20, 5.0f, 0.4f, b) == 14 && b[0] == 4 && b[1] == 4 && b[2] == 4 && b[3] == 2,
          "thresholds capped: the FP16 step (key 10) does not fit after 120 and 12; 6 does");
    CHECK(vkm_mixkvq_tiers(A, 4, 10, 5.0f, 0.4f, b) == 10 && b[0] == 4 && b[1] == 2 && b[2] == 2, "capped harder");
    CHECK(vkm_mixkvq_tiers(A, 4, 64, 0.05f, 0.0f, b) == 64, "t16 alone: every channel at or above it is FP16");
    /* random saliences: within the budget, monotone in salience, nothing more fits */
    tu_rng r;
    tu_rng_seed(&r, 7);
    for (int it = 0; it < 200; it++) {
        const uint32_t D = 8 + tu_rng_u32(&r) % 57, budget = 2 * D + tu_rng_u32(&r) % (14 * D + 1);
        float a[64];
        for (uint32_t d = 0; d < D; d++) a[d] = expf(3.0f * tu_rng_normal(&r));
        uint32_t used = vkm_mixkvq_tiers(a, D, budget, 0, 0, b);
        CHECK(used == sum_bits(b, D) && used <= budget, "used %u of %u", used, budget);
        int mono = 1, all4 = 1, any4 = 0;
        for (uint32_t i = 0; i < D; i++) {
            all4 &= b[i] >= 4;
            any4 |= b[i] == 4;
            for (uint32_t j = 0; j < D; j++) mono &= !(a[i] > a[j] && b[i] < b[j]);
        }
        CHECK(mono, "D %u budget %u: a more salient channel never gets fewer bits", D, budget);
        CHECK(budget - used < 2 || (all4 && (budget - used < 12 || !any4)), "D %u budget %u used %u: room left", D,
              budget, used);
    }
    /* the permutation the tier map implies */
    const uint8_t bits[8] = { 2, 16, 4, 2, 16, 4, 4, 2 };
    uint16_t perm[8];
    uint32_t n16, n4;
    vkm_mixkvq_permutation(bits, 8, perm, &n16, &n4);
    const uint16_t want[8] = { 1, 4, 2, 5, 6, 0, 3, 7 };
    CHECK(n16 == 2 && n4 == 3 && !memcmp(perm, want, sizeof want), "stable tier order");
    const float imp[3] = { 1, 2, 0.5f }, mn[3] = { -3, 0, 1 }, mx[3] = { 3, 3, 1 };
    float sal[3];
    vkm_mixkvq_salience(imp, mn, mx, 3, sal);
    CHECK(sal[0] == 2.0f && sal[1] == 2.0f && sal[2] == 0.0f, "salience = I (max - min) / 3");
}

/* The packed block against the per-layer format's dequantization of the same channels. */
static void test_mixkvq_pack(void)
{
    tu_rng r;
    tu_rng_seed(&r, 11);
    static const uint32_t shapes[3][2] = { { 32, 16 }, { 64, 80 }, { 32, 128 } };
    for (int s = 0; s < 3; s++) {
        const uint32_t G = shapes[s][0], D = shapes[s][1];
        float *x = malloc((size_t)G * D * 4), *y = malloc((size_t)G * D * 4), *ref = malloc((size_t)G * D * 4);
        float a[128];
        uint8_t bits[128];
        for (size_t i = 0; i < (size_t)G * D; i++) x[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(tu_rng_normal(&r) * (1 + (i % D) % 5)));
        for (uint32_t d = 0; d < D; d++) a[d] = tu_rng_uniform(&r);
        const uint32_t budget = 3 * D + D / 2;
        vkm_mixkvq_tiers(a, D, budget, 0, 0, bits);
        const uint32_t words = (uint32_t)kvl_mix_words(budget, G);
        uint32_t *region = malloc((words + 8) * 4), meta[128], map[8];
        for (uint32_t i = 0; i < words + 8; i++) region[i] = 0xdeadbeefu;
        vkm_mixkvq_pack(x, bits, G, D, budget, region, meta, map);
        int sentinel = 1;
        for (uint32_t i = words; i < words + 8; i++) sentinel &= region[i] == 0xdeadbeefu;
        CHECK(sentinel, "G %u D %u: the block stays in its %u words", G, D, words);
        vkm_mixkvq_unpack(region, meta, map, G, D, y);
        int ok = 1;
        for (uint32_t w = 0; w < 3; w++) {
            const uint32_t bw = w == 0 ? 16 : w == 1 ? 4 : 2;
            memcpy(ref, x, (size_t)G * D * 4);
            if (bw < 16) vkm_kv_sim_quantize(ref, G, D, 0, bw, G, 0);
            for (uint32_t d = 0; d < D; d++)
                if (bits[d] == bw)
                    for (uint32_t i = 0; i < G; i++) ok &= y[(size_t)i * D + d] == ref[(size_t)i * D + d];
        }
        CHECK(ok, "G %u D %u: unpack(pack) = the format's per-channel dequantization", G, D);
        free(x);
        free(y);
        free(ref);
        free(region);
    }
}

/* ------------------------------------------------------------------ accounting */

static vkm_hparams shapes(uint32_t L, uint32_t n_head, uint32_t n_kv, uint32_t D)
{
    vkm_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.n_layer = L;
    hp.n_head = n_head;
    hp.n_head_kv = n_kv;
    hp.head_dim = D;
    hp.n_embd = n_head * D;
    hp.n_ff = 8;
    hp.n_vocab = 8;
    hp.n_ctx_train = 4096;
    hp.rope_theta = 10000.0f;
    hp.norm_eps = 1e-5f;
    return hp;
}

static int resolve(const char *spec, const vkm_hparams *hp, uint32_t n_ctx, vkm_kv_config *c)
{
    vkmix_kv_config pub;
    if (vkm_kv_config_parse(spec, &pub, err, sizeof err) != VKMIX_OK ||
        vkm_kv_config_resolve_sim(&pub, hp, n_ctx, c, err, sizeof err) != VKMIX_OK) {
        fprintf(stderr, "%s: %s\n", spec, err);
        return 0;
    }
    return 1;
}

static void test_accounting(void)
{
    const vkm_hparams hp = shapes(2, 8, 2, 64);
    const uint32_t n_ctx = 1000;
    vkm_kv_config lay, mk, mk16, mq;
    if (!resolve("k2v2:w=128", &hp, n_ctx, &lay) || !resolve("k2v2:w=128:policy=mikv", &hp, n_ctx, &mk) ||
        !resolve("k2v2:w=128:policy=mikv:hi=16:balance=0", &hp, n_ctx, &mk16) ||
        !resolve("k2v2:w=128:policy=mixkvq:kbits=3", &hp, n_ctx, &mq)) {
        CHECK(0, "configs");
        return;
    }
    vkmix_kv_memory a, b, c, d;
    vkm_kv_memory(&lay, &hp, n_ctx, 0, &a);
    vkm_kv_memory(&mk, &hp, n_ctx, 0, &b);
    vkm_kv_memory(&mk16, &hp, n_ctx, 0, &c);
    vkm_kv_memory(&mq, &hp, n_ctx, 0, &d);
    const uint64_t H = 2, D = 64, L = 2, nb = (n_ctx + 31) / 32, rows = H * nb * 3, ring = 224;
    /* MiKV 8 bits: per high row D bytes of codes and D/32 scale/min words, for K and V */
    CHECK(b.code_bytes == a.code_bytes + L * 2 * rows * D && b.meta_bytes == a.meta_bytes + L * 2 * rows * (D / 32) * 4,
          "mikv high rows: codes %llu meta %llu", (unsigned long long)(b.code_bytes - a.code_bytes),
          (unsigned long long)(b.meta_bytes - a.meta_bytes));
    CHECK(b.aux_bytes == L * (H * nb * 4 + H * ring * 4 + 3 * H * D * 4), "mikv aux: masks, importance, balancer: %llu",
          (unsigned long long)b.aux_bytes);
    CHECK(b.total_bytes == a.total_bytes + (b.code_bytes - a.code_bytes) + (b.meta_bytes - a.meta_bytes) + b.aux_bytes &&
              b.k_bits > a.k_bits && b.v_bits > a.v_bits,
          "mikv counts everything: K %.4f > %.4f bits", b.k_bits, a.k_bits);
    CHECK(c.fp16_bytes == a.fp16_bytes + L * 2 * rows * D * 2 && c.aux_bytes == L * (H * nb * 4 + H * ring * 4),
          "mikv FP16 rows, no balancer");
    /* MixKVQ at 3 bits: floor(3 D) bits per token, maps of 2 D bits per block, query statistics */
    CHECK(d.code_bytes == a.code_bytes + L * H * nb * 32 * D / 8 && d.meta_bytes == a.meta_bytes,
          "mixkvq codes: %llu vs %llu", (unsigned long long)d.code_bytes, (unsigned long long)a.code_bytes);
    CHECK(d.aux_bytes == L * (H * nb * 2 * 2 * 4 + H * (ring / 32) * D * 4), "mixkvq aux: maps and statistics %llu",
          (unsigned long long)d.aux_bytes);
    CHECK(d.v_bits == a.v_bits && d.k_bits > a.k_bits + 1.0, "mixkvq: values unchanged, keys + 1 bit and more (%.3f %.3f)",
          d.k_bits, a.k_bits);
    /* at a depth: only the packed blocks count */
    vkmix_kv_memory e;
    vkm_kv_memory(&mk, &hp, n_ctx, 300, &e);
    const uint64_t nq = (300 - 128) / 32;
    CHECK(e.code_bytes == L * 2 * (H * nq * 32 * D * 2 / 8 + H * nq * 3 * D), "mikv at 300 tokens: %llu",
          (unsigned long long)e.code_bytes);
}

/* ------------------------------------------------------------------ simulations over decode steps */

typedef struct run {
    vkm_ref_state *st;
    vkm_kv_sim *sim;     /* NULL: the per-layer policy, stateless */
    vkm_kv_config cfg;
} run;

static int run_open(run *r, const char *spec, const vkm_hparams *hp, uint32_t T)
{
    if (!resolve(spec, hp, T, &r->cfg)) return 0;
    if (vkm_ref_state_create(hp, T, 1, &r->st) != VKMIX_OK) {
        fprintf(stderr, "%s: reference state\n", spec);
        return 0;
    }
    if (r->cfg.policy != VKMIX_KV_POLICY_LAYER && vkm_kv_sim_create(&r->cfg, r->st, &r->sim) != VKMIX_OK) return 0;
    return 1;
}

static void run_close(run *r)
{
    vkm_kv_sim_free(r->sim);
    vkm_ref_state_free(r->st);
    memset(r, 0, sizeof *r);
}

/* Stores k, v of pos, lets the policy see q, advances. */
static int run_step(run *r, uint32_t pos, const float *q, const float *k, const float *v)
{
    const uint32_t kv = r->st->kv_dim;
    float *kr = vkm_ref_k_at(r->st, 0, pos), *vr = vkm_ref_v_at(r->st, 0, pos);
    for (uint32_t i = 0; i < kv; i++) {
        kr[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(k[i]));
        vr[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(v[i]));
    }
    if (r->sim) {
        if (vkm_kv_sim_observe(r->sim, 0, pos, q) != VKMIX_OK) return 0;
        return vkm_kv_sim_advance(r->sim, pos, pos + 1, 0) == VKMIX_OK;
    }
    return vkm_kv_sim_step(&r->cfg, r->st, pos, pos + 1, 0) == VKMIX_OK;
}

typedef struct gen {
    tu_rng r;
    uint32_t Q, KV, D;
    float outlier;        /* scale of key channel 3 */
    float q_outlier;      /* scale of query channel 3 */
    int magnets;          /* 1: position 2 + 32 i + 7 has a key along u, queries lean on u */
    float *q, *k, *v, *u; /* [Q], [KV], [KV], [D] */
} gen;

static void gen_init(gen *g, uint64_t seed, const vkm_hparams *hp)
{
    memset(g, 0, sizeof *g);
    tu_rng_seed(&g->r, seed);
    g->D = hp->head_dim;
    g->Q = hp->n_head * g->D;
    g->KV = hp->n_head_kv * g->D;
    g->outlier = g->q_outlier = 1.0f;
    g->q = malloc(g->Q * 4);
    g->k = malloc(g->KV * 4);
    g->v = malloc(g->KV * 4);
    g->u = malloc(g->D * 4);
    for (uint32_t d = 0; d < g->D; d++) g->u[d] = tu_rng_normal(&g->r);
}

static void gen_free(gen *g)
{
    free(g->q);
    free(g->k);
    free(g->v);
    free(g->u);
}

static void gen_next(gen *g, uint32_t pos, uint32_t S)
{
    const int magnet = g->magnets && pos >= S && (pos - S) % 32 == 7;
    for (uint32_t i = 0; i < g->Q; i++)
        g->q[i] = tu_rng_normal(&g->r) * (i % g->D == 3 ? g->q_outlier : 1.0f) + (g->magnets ? 0.6f * g->u[i % g->D] : 0.0f);
    for (uint32_t i = 0; i < g->KV; i++) {
        g->k[i] = (magnet ? 3.0f * g->u[i % g->D] : tu_rng_normal(&g->r)) * (i % g->D == 3 ? g->outlier : 1.0f);
        g->v[i] = tu_rng_normal(&g->r);
    }
}

static int same_arrays(run *a, run *b, uint32_t T)
{
    return !memcmp(a->st->k_cache, b->st->k_cache, (size_t)T * a->st->kv_dim * 4) &&
           !memcmp(a->st->v_cache, b->st->v_cache, (size_t)T * a->st->kv_dim * 4);
}

static void test_sims(void)
{
    const vkm_hparams hp = shapes(1, 4, 2, 16);
    const uint32_t T = 2 + 32 + 32 * 8 + 20, S = 2;
    gen g;
    run a = { 0 }, b = { 0 };
    /* 1. MiKV without high rows and without the balancer is the per-layer cache, bit for bit */
    gen_init(&g, 1, &hp);
    g.outlier = 8.0f;
    int ok = run_open(&a, "k3v2:w=32:s=2", &hp, T) && run_open(&b, "k3v2:w=32:s=2:policy=mikv:frac=0.01:balance=0", &hp, T);
    for (uint32_t p = 0; ok && p < T; p++) {
        gen_next(&g, p, S);
        ok = run_step(&a, p, g.q, g.k, g.v) && run_step(&b, p, g.q, g.k, g.v);
    }
    CHECK(ok && same_arrays(&a, &b, T), "mikv with 0 high rows = the per-layer cache");
    run_close(&a);
    run_close(&b);
    gen_free(&g);
    /* 2. MixKVQ at a 2-bit budget is the per-layer k2 cache, bit for bit */
    gen_init(&g, 2, &hp);
    ok = run_open(&a, "k2v3:w=32:s=2", &hp, T) && run_open(&b, "k2v3:w=32:s=2:policy=mixkvq", &hp, T);
    for (uint32_t p = 0; ok && p < T; p++) {
        gen_next(&g, p, S);
        ok = run_step(&a, p, g.q, g.k, g.v) && run_step(&b, p, g.q, g.k, g.v);
    }
    CHECK(ok && same_arrays(&a, &b, T), "mixkvq at 2 bits = the per-layer k2 cache");
    run_close(&a);
    run_close(&b);
    gen_free(&g);
    /* 3. MiKV keeps the attended tokens precise: a "magnet" key per block draws the queries */
    gen_init(&g, 3, &hp);
    g.magnets = 1;
    float *orig_k = malloc((size_t)T * g.KV * 4);
    ok = run_open(&b, "k2v2:w=32:s=2:policy=mikv:balance=0", &hp, T);
    for (uint32_t p = 0; ok && p < T; p++) {
        gen_next(&g, p, S);
        for (uint32_t i = 0; i < g.KV; i++) orig_k[(size_t)p * g.KV + i] = vkmix_f16_to_f32(vkmix_f32_to_f16(g.k[i]));
        ok = run_step(&b, p, g.q, g.k, g.v);
    }
    const uint32_t nq = vkm_kv_blocks_at(&b.cfg, T);
    double mag = 0, other = 0;
    uint32_t n_mag = 0, n_other = 0;
    for (uint32_t p = S; ok && p < S + nq * 32; p++) {
        double e2 = 0, x2 = 0;
        for (uint32_t i = 0; i < g.KV; i++) {
            double dlt = (double)vkm_ref_k_at(b.st, 0, p)[i] - orig_k[(size_t)p * g.KV + i];
            e2 += dlt * dlt;
            x2 += (double)orig_k[(size_t)p * g.KV + i] * orig_k[(size_t)p * g.KV + i];
        }
        if ((p - S) % 32 == 7) mag += sqrt(e2 / x2), n_mag++;
        else other += sqrt(e2 / x2), n_other++;
    }
    printf("mikv: attended tokens (8-bit tier) relative key error %.4f, the others (2 bits) %.4f\n", mag / (n_mag ? n_mag : 1),
           other / (n_other ? n_other : 1));
    CHECK(ok && nq >= 8 && n_mag == nq && mag / n_mag < 0.02 && other / n_other > 0.2,
          "attended tokens at 8 bits: relative error %.4f, the others at 2 bits %.4f", mag / (n_mag ? n_mag : 1),
          other / (n_other ? n_other : 1));
    run_close(&b);
    free(orig_k);
    gen_free(&g);
    /* 4. the balancer: neutral for the per-channel low tier (up to FP16 rounding), and it
     *    shrinks a key outlier channel that the per-token 8-bit tier must share a scale with */
    double err_q[2] = { 0, 0 };
    for (int bal = 0; bal < 2; bal++) {
        gen_init(&g, 4, &hp);
        g.outlier = 40.0f;
        g.q_outlier = 0.05f;
        float *keep = malloc((size_t)T * g.KV * 4);
        char spec[96];
        snprintf(spec, sizeof spec, "k2v2:w=32:s=2:policy=mikv:frac=0.99:balance=%d", bal);
        ok = run_open(&b, spec, &hp, T);
        for (uint32_t p = 0; ok && p < T; p++) {
            gen_next(&g, p, S);
            for (uint32_t i = 0; i < g.KV; i++) keep[(size_t)p * g.KV + i] = vkmix_f16_to_f32(vkmix_f32_to_f16(g.k[i]));
            ok = run_step(&b, p, g.q, g.k, g.v);
        }
        /* error of q . k over the packed tokens for fresh queries of the same distribution */
        const uint32_t n_packed = vkm_kv_blocks_at(&b.cfg, T) * 32;
        for (int t = 0; ok && t < 16; t++) {
            gen_next(&g, 0, S);
            for (uint32_t h = 0; h < hp.n_head; h++)
                for (uint32_t p = S; p < S + n_packed; p++) {
                    const uint32_t kh = h / 2;
                    double a1 = 0, a2 = 0;
                    for (uint32_t d = 0; d < g.D; d++) {
                        a1 += (double)g.q[h * g.D + d] * vkm_ref_k_at(b.st, 0, p)[kh * g.D + d];
                        a2 += (double)g.q[h * g.D + d] * keep[(size_t)p * g.KV + kh * g.D + d];
                    }
                    err_q[bal] += (a1 - a2) * (a1 - a2);
                }
        }
        CHECK(ok, "balancer run %d", bal);
        run_close(&b);
        free(keep);
        gen_free(&g);
    }
    printf("mikv balancer, 8-bit per-token tier, key outlier channel: q.k squared error %.4g with, %.4g without\n",
           err_q[1], err_q[0]);
    CHECK(err_q[1] < 0.25 * err_q[0], "the balancer on the 8-bit per-token tier: score error %.4g against %.4g without",
          err_q[1], err_q[0]);
    /* neutral for the low tier: with no high rows the balanced keys differ from the unbalanced
     * ones only by the FP16 rounding of k * b */
    gen_init(&g, 5, &hp);
    g.outlier = 40.0f;
    g.q_outlier = 0.05f;
    ok = run_open(&a, "k2v2:w=32:s=2:policy=mikv:frac=0.01:balance=0", &hp, T) &&
         run_open(&b, "k2v2:w=32:s=2:policy=mikv:frac=0.01:balance=1", &hp, T);
    for (uint32_t p = 0; ok && p < T; p++) {
        gen_next(&g, p, S);
        ok = run_step(&a, p, g.q, g.k, g.v) && run_step(&b, p, g.q, g.k, g.v);
    }
    double num = 0, den = 0;
    for (size_t i = 0; ok && i < (size_t)T * g.KV; i++) {
        double dl = (double)a.st->k_cache[i] - b.st->k_cache[i];
        num += dl * dl;
        den += (double)a.st->k_cache[i] * a.st->k_cache[i];
    }
    printf("mikv balancer on the per-channel low tier: relative change of the keys %.4f\n", sqrt(num / den));
    CHECK(ok && sqrt(num / den) < 0.05 && num > 0, "balanced per-channel keys: relative difference %.4f", sqrt(num / den));
    run_close(&a);
    run_close(&b);
    gen_free(&g);
}

int main(void)
{
    test_mikv_rules();
    test_mixkvq_rules();
    test_mixkvq_pack();
    test_accounting();
    test_sims();
    return tu_finish("test_kv_policy_ref");
}
