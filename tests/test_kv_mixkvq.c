#define _POSIX_C_SOURCE 200809L /* setenv */
/* The MixKVQ cache policy on the GPU against its CPU simulation (vkm_kv_sim, the
 * math of kv_policy_mixkvq.c on the fp32 reference): random queries, keys and values
 * (channels of different scales, as real keys and queries have, so that the salience
 * spreads and the tiers differ between channels) are decoded token by token, or fed
 * as prefill chunks, through one layer of a vkm_kv_cache; the reference keeps FP16
 * K/V, lets the simulation observe every query (the query statistics), ages the same
 * blocks into the same tiers, and runs a plain attention. Every step's output must
 * match, and every tier map the GPU chose must equal the simulation's. Options
 * covered: target key bits (none, 2.5, 3, 4, 6), thresholds, G 32/64/128, head_dim
 * 8/16/64/80/128 (80: maps of 3 words, one value scale per head), GQA (1 to 4 query
 * heads per KV head), sinks, recent queries below the window and at its most (R + G),
 * the ring wrapped many times, 1000 tokens (4 splits of the attention), value widths
 * 2/3/4/16, 16-bit keys, prefill chunks of odd sizes. Where the target
 * is above the layer's key width the per-layer policy's simulation with the same
 * widths is run too: the GPU must be far closer to the MixKVQ reference than to it.
 * Then batched decode attention against the same rows alone, and a model:
 * stories260K with policy=mixkvq against the CPU reference model with the
 * simulation (decode, chunked prefill), and vkmix_batch_decode against the same rows
 * decoded alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/context.h"
#include "kv/kv_state.h"
#include "kv/mixkvq_device.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ref/kv_sim.h"
#include "ref/ref_from_model.h"
#include "runtime/session.h"
#include "kv_policy_test.h"
#include "testutil.h"

/* Tier maps of the first n tokens' packed blocks, GPU against the simulation: the count
 * of (layer, head, block) maps that differ (UINT32_MAX: read-back failed); *n_checked
 * counts the maps compared; *up counts the channels above 2 bits on the GPU. */
static uint32_t map_mismatches(vkm_cmd *cmd, const vkm_kv_cache *c, vkm_kv_sim *sim, uint32_t n, uint32_t *n_checked,
                               uint32_t *up)
{
    const uint32_t D = c->head_dim, MWW = (uint32_t)kvl_mix_map_words(D), nb = vkm_kv_blocks_at(&c->cfg, n);
    uint32_t bad = 0;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        const vkm_buffer *map = vkm_mixkvq_map(c, l);
        if (!map || !nb) continue;
        const uint64_t words = kvl_mix_map(c->n_kv_head * c->n_blocks, 0, 0, D);
        uint32_t *gpu = malloc((size_t)words * 4);
        if (!gpu || vkm_buffer_download(cmd, map, 0, gpu, words * 4) != VKMIX_OK) {
            free(gpu);
            return UINT32_MAX;
        }
        for (uint32_t h = 0; h < c->n_kv_head; h++)
            for (uint32_t b = 0; b < nb; b++) {
                const uint32_t *want = vkm_mixkvq_sim_map(vkm_kv_sim_state(sim), l, h, b);
                const uint32_t *got = gpu + kvl_mix_map(h * c->n_blocks + b, 0, 0, D);
                (*n_checked)++;
                if (!want || memcmp(want, got, MWW * 4) != 0) bad++;
                for (uint32_t w = 0; w < MWW; w++) *up += (uint32_t)__builtin_popcount(got[w]);
            }
        free(gpu);
    }
    return bad;
}

typedef struct mcase {
    const char *name;
    uint32_t n_head, n_kv, head_dim;
    const char *spec;      /* kXvY:policy=mixkvq:... */
    uint32_t G, R, S, T;
    uint32_t chunk;        /* 1: decode; > 1: prefill chunks of this many tokens (the last may be shorter) */
    uint64_t seed;
} mcase;

/* Channel scales of the test data: queries 0.5 .. 2.5 with channels 3, 11, 19, .. at 3x,
 * keys 0.25 .. 2.9 with those channels at 8x (outlier channels), both varying across
 * channels. */
static float q_scale(uint32_t d) { return (d % 8 == 3 ? 3.0f : 1.0f) * (0.5f + (float)((d * 5) % 9) / 4.0f); }
static float k_scale(uint32_t d) { return (d % 8 == 3 ? 8.0f : 1.0f) * (0.25f + (float)((d * 7) % 11) / 3.8f); }

/* The tolerance of one output row against the simulation (relative L2 over the row). The
 * math is the same and the tiers are the same (the maps are compared bit for bit); what
 * differs is the order of fp32 sums (q.k over the permuted channels on the GPU, in channel
 * order on the CPU; the online softmax's sum; the weighted values: ~1e-6 relative, as the
 * per-layer test; up to 2.2e-5 measured at head_dim 128, where the outlier channels make
 * scores of tens and the softmax amplifies their rounding) and exp in the shader (a few
 * ulp). A block with wrong tiers (2-bit against 4-bit or FP16 channels) costs ~1e-2 on
 * the rows that attend to it, so 1e-4 separates rounding from a wrong decision (and the
 * maps are compared exactly besides). */
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
    const uint32_t T = mc->T, D = mc->head_dim;
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
    /* the per-layer comparison means something where MixKVQ spends more key bits */
    const int compare_layer = c.cfg.k_bits[0] < 16 && vkm_mixkvq_budget(&c.cfg, 0, D) > c.cfg.k_bits[0] * D;
    vkm_device *dev = &ctx->dev;
    vkm_cmd cmd;
    if (vkm_cmd_create(&cmd, dev, ctx, false) != VKMIX_OK) return 1;
    const uint32_t Q = mc->n_head * D, KV = mc->n_kv * D, NR = KVL_CHUNK;
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
    double worst = 0, sum_e = 0, sum_l = 0;
    int bad = 0;
    for (uint32_t pos0 = 0; pos0 < T;) {
        uint32_t n = mc->chunk;
        if (n > T - pos0) n = T - pos0;
        float *q = bq.mapped, *k = bk.mapped, *v = bv.mapped;
        for (uint32_t i = 0; i < n * Q; i++) q[i] = tu_rng_normal(&r) * q_scale(i % D);
        for (uint32_t i = 0; i < n * KV; i++) k[i] = tu_rng_normal(&r) * k_scale(i % D) + 0.5f;
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
            double e = tu_rel_err(g, ref + (size_t)i * Q, Q), el = tu_rel_err(g, refl, Q);
            if (!(e <= worst)) worst = e;
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
    uint32_t n_maps = 0, up = 0, wrong = map_mismatches(&cmd, &c, sim, T, &n_maps, &up);
    printf("%-22s %-34s G%-3u R%-3u S%u D%-3u heads %u/%u, %u tokens in %s%u, %u blocks packed: worst %.2e "
           "(mean %.2e; against the per-layer policy: mean %.2e); tier maps differing %u of %u, %.2f channels per "
           "block above 2 bits\n",
           mc->name, mc->spec, mc->G, mc->R, mc->S, D, mc->n_head, mc->n_kv, T, mc->chunk > 1 ? "chunks of " : "steps of ",
           mc->chunk, vkm_kv_blocks_at(&c.cfg, T), worst, sum_e / T, sum_l / T, wrong, n_maps,
           n_maps ? (double)up / n_maps : 0.0);
    CHECK(bad == 0, "%s: %d rows over %.0e (worst %.3e)", mc->name, bad, TOL, worst);
    CHECK(wrong == 0, "%s: %u of %u tier maps differ from the simulation's", mc->name, wrong, n_maps);
    if (c.cfg.k_bits[0] < 16) CHECK(n_maps > 0, "%s: no block was packed", mc->name);
    if (compare_layer) {
        /* the tiers are in effect: upgrades were taken, and the per-layer simulation is at least 10x further */
        CHECK(up > 0, "%s: no channel above 2 bits", mc->name);
        CHECK(sum_l > 10 * sum_e, "%s: mean error against MixKVQ %.3e, against the per-layer policy %.3e", mc->name,
              sum_e / T, sum_l / T);
    }
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

/* ------------------------------------------------------------------ accounting */

/* The bytes the cache allocates (sides, tier maps, query statistics) are the bytes the
 * accounting counts (mixkvq_sizes through vkm_kv_memory): effective bits include all. */
static void accounting(vkmix_context *ctx)
{
    static const char *specs[] = { "k2v2:policy=mixkvq:kbits=3", "k4v3:policy=mixkvq", "k16v2:policy=mixkvq",
                                   "k2v16:policy=mixkvq:kbits=2.5" };
    vkm_hparams hp = { 0 };
    hp.n_layer = 2;
    hp.n_head = 8;
    hp.n_head_kv = 2;
    hp.head_dim = 64;
    hp.n_embd = 512;
    hp.n_vocab = 8;
    hp.n_ff = 8;
    hp.n_ctx_train = 1000;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        vkmix_session_params p;
        vkmix_session_default_params(&p);
        p.kv = specs[i];
        p.kv_sinks = 4;
        vkm_kv_cache c;
        memset(&c, 0, sizeof c);
        char err[256];
        int ok = vkm_kv_config_from_params(&p, &hp, 1000, &c.cfg, err, sizeof err) == VKMIX_OK &&
                 vkm_kv_cache_create(ctx, &c, &hp, 1000) == VKMIX_OK;
        CHECK(ok, "%s: %s", specs[i], ok ? "" : err);
        if (!ok) continue;
        vkmix_kv_memory mem;
        vkm_kv_memory(&c.cfg, &hp, 1000, 0, &mem);
        uint64_t cache = 0, linear = 0, partials = 0;
        vkm_kv_cache_bytes(&c, &cache, &linear, &partials);
        printf("accounting %-32s: %llu bytes allocated, %llu counted (aux %llu), %.3f/%.3f effective bits\n", specs[i],
               (unsigned long long)cache, (unsigned long long)mem.total_bytes, (unsigned long long)mem.aux_bytes,
               mem.k_bits, mem.v_bits);
        CHECK(cache == mem.total_bytes && linear == 0, "%s: allocated %llu, counted %llu, linear %llu", specs[i],
              (unsigned long long)cache, (unsigned long long)mem.total_bytes, (unsigned long long)linear);
        vkm_kv_cache_free(&ctx->dev, &c);
    }
}

/* ------------------------------------------------------------------ batched decode, one layer */

/* The decode attention of a batch (vkm_kv_decode: every row's store, a barrier, the
 * attention of all rows, a barrier, every row's age, as the session records it) with
 * MixKVQ rows of different options and depths and a per-layer row, against twin caches
 * decoding alone with the same inputs: the outputs must be identical (each MixKVQ row
 * runs the same kernels on its own buffers; nothing is shared between rows), and so
 * must the tier maps. */
static void batch_attention(vkmix_context *ctx)
{
    enum { NB = 5, T = 260 };
    static const char *specs[NB] = { "k2v2:policy=mixkvq:kbits=3", "k3v4:policy=mixkvq:kbits=4", "k2v2",
                                     "k4v2:policy=mixkvq:kbits=6:t16=20:t4=2", "k16v2:policy=mixkvq" };
    vkm_hparams hp = { 0 };
    hp.n_layer = 1;
    hp.n_head = 8;
    hp.n_head_kv = 4;
    hp.head_dim = 16;
    hp.n_embd = 128;
    hp.n_vocab = 8;
    hp.n_ff = 8;
    hp.rope_theta = 10000.0f;
    hp.norm_eps = 1e-5f;
    hp.n_ctx_train = T;
    vkm_device *dev = &ctx->dev;
    const uint32_t Q = 8 * 16, KV = 4 * 16;
    vkm_kv_cache cb[NB], ca[NB];
    memset(cb, 0, sizeof cb);
    memset(ca, 0, sizeof ca);
    vkm_cmd cmd;
    vkm_buffer bq, bk, bv, bo, bo1, scratch;
    vkm_attn_work w;
    int ok = vkm_cmd_create(&cmd, dev, ctx, false) == VKMIX_OK;
    for (int i = 0; ok && i < NB; i++) {
        vkmix_session_params p;
        vkmix_session_default_params(&p);
        p.kv = specs[i];
        p.kv_window = 32;
        p.kv_sinks = 2;
        char err[256];
        ok = vkm_kv_config_from_params(&p, &hp, T, &cb[i].cfg, err, sizeof err) == VKMIX_OK &&
             vkm_kv_config_from_params(&p, &hp, T, &ca[i].cfg, err, sizeof err) == VKMIX_OK &&
             vkm_kv_cache_create(ctx, &cb[i], &hp, T) == VKMIX_OK && vkm_kv_cache_create(ctx, &ca[i], &hp, T) == VKMIX_OK;
    }
    ok = ok && vkm_buffer_create(dev, &bq, NB * Q * 4, VKM_MEM_HOST) == VKMIX_OK &&
         vkm_buffer_create(dev, &bk, NB * KV * 4, VKM_MEM_HOST) == VKMIX_OK &&
         vkm_buffer_create(dev, &bv, NB * KV * 4, VKM_MEM_HOST) == VKMIX_OK &&
         vkm_buffer_create(dev, &bo, NB * Q * 4, VKM_MEM_READBACK) == VKMIX_OK &&
         vkm_buffer_create(dev, &bo1, NB * Q * 4, VKM_MEM_READBACK) == VKMIX_OK &&
         vkm_buffer_create(dev, &scratch, vkm_op_attention_scratch(ctx, 8, 16, T), VKM_MEM_DEVICE) == VKMIX_OK &&
         vkm_attn_work_create(ctx, &w, &cb[2], NB, NB) == VKMIX_OK;
    CHECK(ok, "batch attention setup: %s", vkm_err_buf());
    if (!ok) return;
    /* the per-layer row is a control: with FP16 arithmetic (the batched kernel's default) its
     * scores, in the hundreds with these outlier channels, round by ~3e-2 (measured); FP32 */
    w.use_f16 = 0;
    tu_rng r;
    tu_rng_seed(&r, 77);
    uint32_t pos[NB];
    double worst = 0, worst_layer = 0;
    for (int i = 0; i < NB; i++) pos[i] = 20 + 37 * (uint32_t)i; /* depths 20 .. 168 at the first batch step */
    const uint64_t qb = Q * 4, kb = KV * 4;
    for (int step = -168; step < 80 && ok; step++) {
        float *q = bq.mapped, *k = bk.mapped, *v = bv.mapped;
        for (uint32_t i = 0; i < NB * Q; i++) q[i] = tu_rng_normal(&r) * q_scale(i % 16);
        for (uint32_t i = 0; i < NB * KV; i++) k[i] = tu_rng_normal(&r) * k_scale(i % 16) + 0.5f;
        for (uint32_t i = 0; i < NB * KV; i++) v[i] = tu_rng_normal(&r);
        ok = vkm_cmd_begin(&cmd) == VKMIX_OK;
        /* the twins alone (and, before the batch steps, the batch caches alone too, up to their depths) */
        for (int i = 0; ok && i < NB; i++) {
            if (step < 0 && (int)pos[i] + step < 0) continue;
            const uint32_t p0 = step < 0 ? (uint32_t)((int)pos[i] + step) : pos[i] + (uint32_t)step;
            vkm_binding qi = VKM_BIND_RANGE(bq, i * qb, qb), ki = VKM_BIND_RANGE(bk, i * kb, kb),
                        vi = VKM_BIND_RANGE(bv, i * kb, kb), oi = VKM_BIND_RANGE(bo1, i * qb, qb);
            ok = vkm_kv_cache_attend(&cmd, &ca[i], 0, qi, ki, vi, oi, VKM_BIND(scratch), 1, p0) == VKMIX_OK;
            if (ok && step < 0)
                ok = vkm_kv_cache_attend(&cmd, &cb[i], 0, qi, ki, vi, VKM_BIND_RANGE(bo, i * qb, qb), VKM_BIND(scratch), 1,
                                         p0) == VKMIX_OK;
        }
        if (ok && step >= 0) {
            vkm_attn_row rows[NB];
            for (int i = 0; ok && i < NB; i++) {
                rows[i] = (vkm_attn_row){ &cb[i], (uint32_t)i, pos[i] + (uint32_t)step, VKM_BIND(scratch) };
                ok = vkm_kv_cache_store(&cmd, &cb[i], 0, VKM_BIND_RANGE(bk, i * kb, kb), VKM_BIND_RANGE(bv, i * kb, kb), 1,
                                        rows[i].pos0) == VKMIX_OK;
            }
            vkm_cmd_barrier(&cmd);
            ok = ok && vkm_kv_decode(&cmd, &w, 0, rows, NB, VKM_BIND(bq), VKM_BIND(bo)) == VKMIX_OK;
            vkm_cmd_barrier(&cmd);
            for (int i = 0; ok && i < NB; i++) ok = vkm_kv_cache_age(&cmd, &cb[i], 0, 1, rows[i].pos0, NULL) == VKMIX_OK;
        }
        ok = ok && vkm_cmd_submit(&cmd) == VKMIX_OK;
        if (ok && step >= 0)
            for (int i = 0; i < NB; i++) {
                double e = tu_rel_err((const float *)bo.mapped + i * Q, (const float *)bo1.mapped + i * Q, Q);
                double *wp = cb[i].cfg.policy == VKMIX_KV_POLICY_MIXKVQ ? &worst : &worst_layer;
                if (!(e <= *wp)) *wp = e;
            }
    }
    CHECK(ok, "batch attention: %s", vkm_err_buf());
    uint32_t nm = 0, diff = 0;
    for (int i = 0; ok && i < NB; i++) {
        const vkm_buffer *xa = vkm_mixkvq_map(&ca[i], 0), *xb = vkm_mixkvq_map(&cb[i], 0);
        if (!xa || !xb) continue;
        const uint32_t words = (uint32_t)kvl_mix_map(4 * ca[i].n_blocks, 0, 0, 16);
        uint32_t *ma = malloc(words * 4), *mb = malloc(words * 4);
        ok = vkm_buffer_download(&cmd, xa, 0, ma, words * 4) == VKMIX_OK &&
             vkm_buffer_download(&cmd, xb, 0, mb, words * 4) == VKMIX_OK;
        const uint32_t nb = vkm_kv_blocks_at(&ca[i].cfg, pos[i] + 80);
        for (uint32_t h = 0; ok && h < 4; h++)
            for (uint32_t b = 0; b < nb; b++, nm++)
                diff += memcmp(ma + kvl_mix_map(h * ca[i].n_blocks + b, 0, 0, 16),
                               mb + kvl_mix_map(h * ca[i].n_blocks + b, 0, 0, 16), kvl_mix_map_words(16) * 4) != 0;
        free(ma);
        free(mb);
    }
    /* the per-layer row takes the batched kernels (kvq_decode) in the batch and kvq_attn alone: rounding apart */
    printf("batched decode attention, %d rows over 80 steps against the same rows alone: worst relative difference "
           "%.2e (MixKVQ rows), %.2e (the per-layer row); tier maps differing %u of %u\n",
           NB, worst, worst_layer, diff, nm);
    CHECK(ok && worst == 0 && diff == 0 && nm > 0, "batch rows differ from alone: %.3e, maps %u of %u", worst, diff, nm);
    /* the control: kvq_decode's order of sums against kvq_attn's (~1e-5 measured) */
    CHECK(worst_layer <= 1e-4, "the per-layer row in the batch: %.3e", worst_layer);
    for (int i = 0; i < NB; i++) {
        vkm_kv_cache_free(dev, &cb[i]);
        vkm_kv_cache_free(dev, &ca[i]);
    }
    vkm_attn_work_free(dev, &w);
    vkm_cmd_destroy(&cmd);
    vkm_buffer_destroy(dev, &bq);
    vkm_buffer_destroy(dev, &bk);
    vkm_buffer_destroy(dev, &bv);
    vkm_buffer_destroy(dev, &bo);
    vkm_buffer_destroy(dev, &bo1);
    vkm_buffer_destroy(dev, &scratch);
}

/* ------------------------------------------------------------------ a model */


/* stories260K with policy=mixkvq against the CPU reference model running the simulation
 * (its kv_hook feeds every query of every layer to the policy): a prompt then greedy
 * generation token by token, then the same tokens as a chunked prompt. The attention
 * matches the simulation to ~1e-5 (above); the rest of the GPU forward pass differs from
 * the fp32 reference by more, and the per-layer policy run first on the same tokens shows
 * that floor (~8e-4 worst on lavapipe): the logits within 2e-3. The tier decisions are
 * compared too: the GPU's q and k differ from the reference's by that rounding, so a
 * near-tie of salience could go either way; at most 2% of the maps may differ. */
static void model_vs_reference(vkmix_context *ctx, vkmix_model *m, const char *spec, uint32_t S)
{
    kvp_model_result r;
    kvp_model_vs_reference(ctx, m, spec, S, map_mismatches, &r);
    if (!r.ran) return;
    const int is_mix = strstr(spec, "policy=mixkvq") != NULL;
    printf("stories260K %s (G32 R32 S%u, %u tokens, prefill chunks of %u): worst relative logit error decode %.2e, "
           "prefill %.2e; greedy argmax agrees %u/%u; tier maps differing from the reference's: %u (decode), %u "
           "(prefill) of %u\n",
           spec, S, r.T, r.chunk, r.worst_dec, r.worst_pre, r.agree, r.T, r.wrong_dec, r.wrong_pre, r.n_dec);
    /* A GPU's own rounding (fused multiply-adds in the products and RoPE) can move a key across
     * a code boundary before it is packed: on the H200 (2026-12-02, scalar products) the prefill
     * of k4v2 kbits=5 reached 3.2e-3 with every tier map equal and greedy 300/300, the per-layer
     * control 1.0e-3; lavapipe stays near 7e-4. The CPU driver keeps the tight bound. */
    const double pre_bound = ctx->dev.caps.quirk_cpu_device ? 2e-3 : 5e-3;
    CHECK(r.worst_dec <= 2e-3 && r.worst_pre <= pre_bound, "%s: decode %.3e prefill %.3e", spec, r.worst_dec, r.worst_pre);
    CHECK(r.agree >= r.T - 2, "%s: greedy tokens agree %u/%u", spec, r.agree, r.T);
    if (is_mix) {
        CHECK(r.n_dec > 0 && r.n_pre == r.n_dec && r.n_up > 0, "%s: %u maps, %u channels above 2 bits", spec, r.n_dec,
              r.n_up);
        CHECK(r.wrong_dec <= r.n_dec / 50 && r.wrong_pre <= r.n_dec / 50, "%s: tier maps differ: %u, %u of %u", spec,
              r.wrong_dec, r.wrong_pre, r.n_dec);
    }
}

/* vkmix_batch_decode with MixKVQ rows (and a per-layer row among them) against twin
 * sessions decoding alone, after blocks were packed and tiered. The attention of a
 * MixKVQ row is bit-identical in a batch (batch_attention above); the rest of the forward
 * pass is not (the batch's matmuls against one row's matvecs), and the per-layer row in
 * the same batch shows that floor (~3e-4 relative on the logits of this tiny model on
 * lavapipe). So: the logits within 2e-3, and every tier map identical (the decisions did
 * not move with that rounding). */
/* The MixKVQ tier maps of a batch row against the same row alone (kvp_batch_vs_alone). */
static uint32_t maps_equal(vkmix_session *sa, vkmix_session *sb, uint32_t *n)
{
    uint32_t differ = 0;
    *n = 0;
    for (uint32_t l = 0; l < sa->model->hp.n_layer; l++) {
        const vkm_buffer *a = vkm_mixkvq_map(&sa->cache, l), *b = vkm_mixkvq_map(&sb->cache, l);
        if (!a || !b) continue;
        const vkm_kv_cache *c = &sa->cache;
        const uint32_t D = c->head_dim, words = (uint32_t)kvl_mix_map(c->n_kv_head * c->n_blocks, 0, 0, D);
        uint32_t *ma = malloc(words * 4), *mb = malloc(words * 4);
        if (ma && mb && vkm_buffer_download(&sa->cmd, a, 0, ma, words * 4) == VKMIX_OK &&
            vkm_buffer_download(&sb->cmd, b, 0, mb, words * 4) == VKMIX_OK)
            for (uint32_t h = 0; h < c->n_kv_head; h++)
                for (uint32_t blk = 0; blk < vkm_kv_blocks_at(&c->cfg, sa->n_past); blk++, (*n)++)
                    differ += memcmp(ma + kvl_mix_map(h * c->n_blocks + blk, 0, 0, D),
                                     mb + kvl_mix_map(h * c->n_blocks + blk, 0, 0, D), kvl_mix_map_words(D) * 4) != 0;
        free(ma);
        free(mb);
    }
    return differ;
}

static void batch_vs_alone(vkmix_context *ctx, vkmix_model *m)
{
    static const char *const specs[5] = { "k2v2:policy=mixkvq:kbits=3", "k3v4:policy=mixkvq:kbits=4", "k2v2",
                                          "k4v2:policy=mixkvq:kbits=6:t16=20:t4=2", "k16v2:policy=mixkvq" };
    kvp_batch_vs_alone(ctx, m, specs, maps_equal, "maps");
}

/* What a MixKVQ session refuses: dropping tokens (rewind) and saving or loading its state,
 * whose regions do not hold the query statistics and tier maps (they would come back
 * silently wrong). A rewind to the current length is a no-op and allowed. */

/* The typed public configuration (vkmix_session_params.kv_config). MixKVQ with its
 * parameters set as fields against the same configuration as a spec string: identical
 * logits (the same kernels on the same inputs). And MixKVQ on top of a per-layer profile
 * (keys 2/4/16 and values 4/2 by layer, the budget from each layer's key width): it runs,
 * its logits are finite, and exactly the layers with packed keys keep tier maps (the
 * model-level accuracy of the policy is checked above against the CPU reference). */
static void typed_config(vkmix_model *m)
{
    const uint32_t V = m->hp.n_vocab, T = 120;
    vkmix_kv_config kc;
    vkmix_kv_config_default(&kc);
    kc.policy = VKMIX_KV_POLICY_MIXKVQ;
    kc.n_layer = 0; /* uniform: every entry */
    for (uint32_t l = 0; l < VKMIX_KV_MAX_LAYERS; l++) {
        kc.k_bits[l] = 2;
        kc.v_bits[l] = 2;
    }
    kc.group = 32;
    kc.window = 32;
    kc.mixkvq.target_key_bits = 3.0f;
    snprintf(kc.name, sizeof kc.name, "typed");
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.n_ctx = T;
    p.kv_config = &kc;
    vkmix_session *a = NULL, *b = kvp_session(m, "k2v2:policy=mixkvq:kbits=3", T, 0, 0);
    CHECK(vkmix_session_create(m, &p, &a) == VKMIX_OK && b, "typed session: %s", vkmix_context_last_error(m->ctx));
    /* a per-layer profile under MixKVQ: keys 2, 4, 16, ... and values 4, 2, ... by layer */
    vkmix_kv_config kp = kc;
    kp.n_layer = m->hp.n_layer;
    for (uint32_t l = 0; l < kp.n_layer; l++) {
        kp.k_bits[l] = l % 3 == 0 ? 2 : l % 3 == 1 ? 4 : 16;
        kp.v_bits[l] = l % 2 ? 2 : 4;
    }
    kp.mixkvq.target_key_bits = 0; /* the layer's key width is the budget */
    kp.mixkvq.recent_queries = 64;
    p.kv_config = &kp;
    vkmix_session *c = NULL;
    CHECK(vkmix_session_create(m, &p, &c) == VKMIX_OK, "typed profile session: %s", vkmix_context_last_error(m->ctx));
    if (!a || !b || !c) {
        vkmix_session_free(a);
        vkmix_session_free(b);
        vkmix_session_free(c);
        return;
    }
    float *la = malloc((size_t)T * V * 4), *lb = malloc((size_t)T * V * 4), *lc = malloc((size_t)T * V * 4);
    int32_t toks[T];
    for (uint32_t i = 0; i < T; i++) toks[i] = 3 + (int32_t)((i * 41) % 250);
    int ok = vkmix_session_eval(a, toks, T, la, 1) == VKMIX_OK && vkmix_session_eval(b, toks, T, lb, 1) == VKMIX_OK &&
             vkmix_session_eval(c, toks, T, lc, 1) == VKMIX_OK;
    int finite = 1;
    for (size_t i = 0; ok && i < (size_t)T * V; i++) finite &= isfinite(lc[i]) != 0;
    uint32_t maps = 0;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) maps += vkm_mixkvq_map(&c->cache, l) != NULL;
    printf("typed configuration: MixKVQ k2v2 kbits=3 typed against the spec: logits %s; a per-layer profile under "
           "MixKVQ (keys 2/4/16, values 4/2 by layer): %u of %u layers with tier maps, logits %s\n",
           ok && !memcmp(la, lb, (size_t)T * V * 4) ? "identical" : "DIFFERENT", maps, m->hp.n_layer,
           finite ? "finite" : "NOT FINITE");
    CHECK(ok && !memcmp(la, lb, (size_t)T * V * 4), "typed config and spec differ");
    CHECK(ok && finite && maps == m->hp.n_layer - m->hp.n_layer / 3, "profile under MixKVQ: %u maps, finite %d", maps,
          finite);
    free(la);
    free(lb);
    free(lc);
    vkmix_session_free(a);
    vkmix_session_free(b);
    vkmix_session_free(c);
}

int main(void)
{
    /* The stories260K comparison holds prefill to the reference's exact math: scalar weight
     * products. On a device with matrix units their FP16 operands moved the 2-bit prefill by
     * 6.8e-3 for the per-layer control and 5.9e-3 for MixKVQ on the H200 (2026-12-02; decode
     * 6e-4 to 1e-3); test_model bounds that path. lavapipe has no matrix units: no change. */
    setenv("VKMIX_MATMUL", "scalar", 1);
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "context");
    static const mcase cases[] = {
        /* name, heads, spec, G, R, S, T, chunk, seed; the ring is R + G + 64 rounded to G */
        { "k2v2 kbits3", 8, 4, 16, "k2v2:policy=mixkvq:kbits=3", 32, 32, 0, 400, 1, 1 },
        { "k2v4 kbits4 G64 GQA4", 4, 1, 64, "k2v4:policy=mixkvq:kbits=4", 64, 64, 2, 350, 1, 2 },
        { "k4v2 D8 S4", 8, 4, 8, "k4v2:policy=mixkvq", 32, 32, 4, 300, 1, 3 },
        { "k2v2 thresholds", 8, 4, 16, "k2v2:policy=mixkvq:kbits=6:t16=20:t4=2", 32, 32, 0, 300, 1, 4 },
        { "k3v3 kbits2.5 q32 S1", 6, 2, 16, "k3v3:policy=mixkvq:kbits=2.5:queries=32", 32, 64, 1, 300, 1, 5 },
        { "k16v2", 4, 2, 16, "k16v2:policy=mixkvq", 32, 32, 0, 200, 1, 6 },
        { "k2v16 kbits3 S3", 4, 2, 16, "k2v16:policy=mixkvq:kbits=3", 32, 32, 3, 250, 1, 7 },
        { "k2v2 MHA D128", 4, 4, 128, "k2v2:policy=mixkvq:kbits=2.5", 32, 32, 2, 300, 1, 14 },
        { "k2v2 D80 VG=D", 4, 2, 80, "k2v2:policy=mixkvq:kbits=3", 32, 32, 0, 220, 1, 15 },
        { "k2v3 long: 4 splits", 4, 2, 8, "k2v3:policy=mixkvq:kbits=3", 32, 32, 1, 1000, 1, 11 },
        { "prefill k2v2 kbits3 S4", 8, 4, 16, "k2v2:policy=mixkvq:kbits=3", 32, 32, 4, 400, 64, 8 },
        { "prefill k2v4 G64 37", 4, 1, 64, "k2v4:policy=mixkvq:kbits=4:queries=64", 64, 64, 0, 400, 37, 9 },
        /* queries = R + G with chunks of 64: the statistics ring (ring / G query blocks) is exactly full at aging */
        { "prefill q=R+G 64", 8, 4, 16, "k2v2:policy=mixkvq:kbits=3:queries=64", 32, 32, 3, 400, 64, 12 },
        { "prefill G128 37", 4, 2, 16, "k2v4:policy=mixkvq:kbits=3", 128, 128, 0, 700, 37, 13 },
        { "prefill k4v2 D8 13", 8, 4, 8, "k4v2:policy=mixkvq:kbits=6:t16=20:t4=2", 32, 32, 2, 300, 13, 10 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) REQUIRE(!run_case(ctx, &cases[i]), "%s", cases[i].name);
    accounting(ctx);
    batch_attention(ctx);
    char *path = tu_source_path("assets/stories260K-f16.gguf");
    vkmix_model *m = NULL;
    REQUIRE(vkmix_model_load(ctx, path, NULL, &m) == VKMIX_OK, "%s: %s", path, vkmix_context_last_error(ctx));
    free(path);
    /* the per-layer rows below are controls that show the forward pass's own floor; their
     * batched decode kernel's default FP16 arithmetic would add its rounding (6e-2 on these
     * logits, measured): FP32 for them (MixKVQ does not use that kernel) */
    const uint32_t f32_was = ctx->tune.kvq_f32;
    ctx->tune.kvq_f32 = 1;
    model_vs_reference(ctx, m, "k2v2", 2);
    model_vs_reference(ctx, m, "k2v2:policy=mixkvq:kbits=3", 2);
    model_vs_reference(ctx, m, "k4v2:policy=mixkvq:kbits=5:queries=64", 0);
    batch_vs_alone(ctx, m);
    typed_config(m);
    kvp_refusals(m, "k2v2:policy=mixkvq:kbits=3", "mixkvq");
    ctx->tune.kvq_f32 = f32_was;
    vkmix_model_free(m);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_kv_mixkvq");
}
