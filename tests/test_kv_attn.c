/* Decode attention v2 (src/kv/kv_attn.c: kvq_decode, attn_decode, attn_combine)
 * against the CPU reference of the same quantized math, over batches.
 *
 * A batch of B sequences, each with its own cache (its own widths, depth and
 * sinks), decodes one token per step: every active row stores its K/V, then ONE
 * vkm_kv_decode call computes all rows, then each cache ages. Rows join the
 * batch at different steps, so their depths differ; the ring of every cache
 * wraps many times. The CPU reference keeps FP16 K/V, quantizes the same groups
 * at the same steps (kv_sim) and runs a plain attention for each row.
 *
 * Tolerance: the packed kernel multiplies in FP16 (query times scale, centred
 * codes, probabilities times scale) and accumulates at most 32 channels or one
 * tile of tokens in FP16 before FP32: about 1e-3 of relative error against the
 * FP32 reference; FP16 layers are FP32 throughout (1e-5). */
#include <math.h>
#include <string.h>

#include "core/error.h"
#include "ref/kv_sim.h"
#include "runtime/session.h"
#include "testutil.h"

typedef struct { uint32_t n_head, n_kv, head_dim; } heads;
typedef struct { uint32_t kb, vb, sinks, start; } row_cfg;

#define MAXB 6

static int run_batch(vkmix_context *ctx, heads hd, uint32_t G, const row_cfg *rc, uint32_t B, uint32_t steps, uint64_t seed,
                     const char *name, int f16)
{
    vkm_hparams hp = { 0 };
    hp.n_layer = 1;
    hp.n_head = hd.n_head;
    hp.n_head_kv = hd.n_kv;
    hp.head_dim = hd.head_dim;
    hp.n_embd = hd.n_head * hd.head_dim;
    hp.n_vocab = 8;
    hp.n_ff = 8;
    hp.rope_theta = 10000.0f;
    hp.norm_eps = 1e-5f;
    hp.n_ctx_train = steps;
    vkm_device *dev = &ctx->dev;
    vkm_cmd cmd;
    REQUIRE(vkm_cmd_create(&cmd, dev, ctx, false) == VKMIX_OK, "recording target");
    const uint32_t Q = hd.n_head * hd.head_dim, KV = hd.n_kv * hd.head_dim;
    vkm_kv_cache c[MAXB];
    vkm_ref_state *st[MAXB];
    memset(c, 0, sizeof c);
    for (uint32_t b = 0; b < B; b++) {
        char spec[16];
        snprintf(spec, sizeof spec, "k%uv%u", rc[b].kb, rc[b].vb);
        vkmix_session_params p;
        vkmix_session_default_params(&p);
        p.kv = spec;
        p.kv_group = G;
        p.kv_window = G; /* the smallest window: the ring wraps often */
        p.kv_sinks = rc[b].sinks;
        char err[256];
        REQUIRE(vkm_kv_config_from_params(&p, &hp, steps, &c[b].cfg, err, sizeof err) == VKMIX_OK, "config: %s", err);
        REQUIRE(vkm_kv_cache_create(ctx, &c[b], &hp, steps) == VKMIX_OK, "cache: %s", vkm_err_buf());
        REQUIRE(vkm_ref_state_create(&hp, steps, 1, &st[b]) == VKMIX_OK, "reference state");
    }
    /* the work area of the largest ring decides the partials' size */
    uint32_t big = 0;
    for (uint32_t b = 1; b < B; b++)
        if (vkm_attn_max_splits(ctx, &c[b]) > vkm_attn_max_splits(ctx, &c[big])) big = b;
    vkm_attn_work w;
    REQUIRE(vkm_attn_work_create(ctx, &w, &c[big], B > 2 ? B - 1 : B, B) == VKMIX_OK, "work: %s", vkm_err_buf());
    w.use_f16 = f16;
    vkm_buffer bq, bk, bv, bo, scratch;
    REQUIRE(vkm_buffer_create(dev, &bq, (uint64_t)B * Q * 4, VKM_MEM_HOST) == VKMIX_OK &&
                vkm_buffer_create(dev, &bk, (uint64_t)B * KV * 4, VKM_MEM_HOST) == VKMIX_OK &&
                vkm_buffer_create(dev, &bv, (uint64_t)B * KV * 4, VKM_MEM_HOST) == VKMIX_OK &&
                vkm_buffer_create(dev, &bo, (uint64_t)B * Q * 4, VKM_MEM_READBACK) == VKMIX_OK &&
                vkm_buffer_create(dev, &scratch, 1 << 20, VKM_MEM_DEVICE) == VKMIX_OK,
            "buffers");
    float *ref = malloc(Q * 4), *scores = malloc(steps * 4);
    tu_rng r;
    tu_rng_seed(&r, seed);
    double worst[MAXB] = { 0 };
    int bad = 0;
    for (uint32_t step = 0; step < steps; step++) {
        vkm_attn_row rows[MAXB];
        uint32_t n = 0, which[MAXB];
        float *q = bq.mapped, *k = bk.mapped, *v = bv.mapped;
        for (uint32_t b = 0; b < B; b++) {
            if (step < rc[b].start) continue;
            uint32_t pos = step - rc[b].start;
            float *qr = q + (size_t)b * Q, *kr0 = k + (size_t)b * KV, *vr0 = v + (size_t)b * KV;
            for (uint32_t i = 0; i < Q; i++) qr[i] = tu_rng_normal(&r);
            /* keys with an outlier channel (as real keys have) and an offset, values plain */
            for (uint32_t i = 0; i < KV; i++) kr0[i] = tu_rng_normal(&r) * (i % hd.head_dim == 3 ? 8.0f : 1.0f) + 0.5f;
            for (uint32_t i = 0; i < KV; i++) vr0[i] = tu_rng_normal(&r);
            float *kr = vkm_ref_k_at(st[b], 0, pos), *vr = vkm_ref_v_at(st[b], 0, pos);
            for (uint32_t i = 0; i < KV; i++) {
                kr[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(kr0[i]));
                vr[i] = vkmix_f16_to_f32(vkmix_f32_to_f16(vr0[i]));
            }
            rows[n] = (vkm_attn_row){ &c[b], b, pos, VKM_BIND(scratch) };
            which[n++] = b;
        }
        if (!n) continue;
        memset(bo.mapped, 0xff, (size_t)B * Q * 4); /* poison */
        const uint64_t kvb = (uint64_t)KV * 4;
        vkmix_error e = vkm_cmd_begin(&cmd);
        for (uint32_t i = 0; i < n && e == VKMIX_OK; i++) {
            uint32_t b = which[i];
            e = vkm_kv_cache_store(&cmd, &c[b], 0, VKM_BIND_RANGE(bk, b * kvb, kvb), VKM_BIND_RANGE(bv, b * kvb, kvb), 1,
                                   rows[i].pos0);
        }
        vkm_cmd_barrier(&cmd);
        if (e == VKMIX_OK) e = vkm_kv_decode(&cmd, &w, 0, rows, n, VKM_BIND(bq), VKM_BIND(bo));
        vkm_cmd_barrier(&cmd);
        int aged = 0;
        for (uint32_t i = 0; i < n && e == VKMIX_OK; i++) e = vkm_kv_cache_age(&cmd, &c[which[i]], 0, 1, rows[i].pos0, &aged);
        if (e == VKMIX_OK) e = vkm_cmd_submit(&cmd);
        REQUIRE(e == VKMIX_OK, "%s step %u: %s", name, step, vkm_err_buf());
        for (uint32_t i = 0; i < n; i++) {
            uint32_t b = which[i], pos = rows[i].pos0;
            vkm_ref_attention(ref, q + (size_t)b * Q, st[b]->k_cache, st[b]->v_cache, pos + 1, &hp, scores);
            double err = tu_rel_err((const float *)bo.mapped + (size_t)b * Q, ref, Q);
            if (err > worst[b]) worst[b] = err;
            /* FP32 arithmetic: 1e-5; one side FP16 and the other packed: the per-row path, which
             * attends over an FP16 copy of the history; the FP16-arithmetic variant (2/4-bit keys) */
            const int fp16k = rc[b].kb >= 16, fp16v = rc[b].vb >= 16;
            double tol = fp16k != fp16v ? 5e-3 : f16 && rc[b].kb < 8 && !fp16k ? 2e-2 : 1e-5;
            if (!(err <= tol) && bad++ < 4)
                fprintf(stderr, "  %s row %u k%uv%u pos %u: relative error %.3e\n", name, b, rc[b].kb, rc[b].vb, pos, err);
            vkm_kv_sim_step(&c[b].cfg, st[b], pos, pos + 1, 0);
        }
    }
    printf("%-10s%s G%-3u D%-3u heads %u/%u:", name, f16 ? " (f16)" : "", G, hd.head_dim, hd.n_head, hd.n_kv);
    for (uint32_t b = 0; b < B; b++)
        printf(" k%uv%u S%u (%u groups) %.1e;", rc[b].kb, rc[b].vb, rc[b].sinks,
               vkm_kv_blocks_at(&c[b].cfg, steps - rc[b].start), worst[b]);
    printf("\n");
    CHECK(bad == 0, "%s: %d row-steps over the tolerance", name, bad);
    free(ref);
    free(scores);
    for (uint32_t b = 0; b < B; b++) {
        vkm_ref_state_free(st[b]);
        vkm_kv_cache_free(dev, &c[b]);
    }
    vkm_attn_work_free(dev, &w);
    vkm_buffer_destroy(dev, &bq);
    vkm_buffer_destroy(dev, &bk);
    vkm_buffer_destroy(dev, &bv);
    vkm_buffer_destroy(dev, &bo);
    vkm_buffer_destroy(dev, &scratch);
    vkm_cmd_destroy(&cmd);
    return 0;
}

int main(void)
{
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "context");
    if (!ctx->dev.bda) {
        printf("the device has no buffer device addresses: the v2 decode attention is not used\n");
        tu_context_done(ctx);
        return 77;
    }
    static const uint32_t w[4] = { 2, 4, 8, 16 };
    heads small = { 8, 4, 16 };
    /* every width pair (FP16 included), rows of different depths and sinks in one batch */
    for (int i = 0; i < 4; i++) {
        row_cfg rc[4];
        for (int j = 0; j < 4; j++) rc[j] = (row_cfg){ w[i], w[j], (uint32_t)((i + j) % 2 ? 4 : 0), (uint32_t)(j * 37) };
        char name[32];
        snprintf(name, sizeof name, "k%u-batch", w[i]);
        REQUIRE(!run_batch(ctx, small, 32, rc, 4, 2 * 128 + 64 + 120, 10 + i, name, 0), "case");
    }
    /* G 64 and 128, the head sizes of real models, GQA 1, 2, 4 and 7 */
    heads tiny = { 8, 4, 8 }, h64 = { 4, 1, 64 }, h80 = { 2, 1, 80 }, h96 = { 7, 1, 96 }, h128 = { 4, 1, 128 },
          h256 = { 2, 1, 256 }, mha = { 2, 2, 32 };
    row_cfg a[3] = { { 2, 2, 0, 0 }, { 4, 2, 3, 50 }, { 16, 16, 0, 11 } };
    REQUIRE(!run_batch(ctx, tiny, 64, a, 3, 10 * 64 + 64 + 5, 20, "tiny G64", 0), "case");
    REQUIRE(!run_batch(ctx, h64, 128, a, 3, 3 * 128 + 64 + 40, 21, "h64 G128", 0), "case");
    row_cfg b1[2] = { { 2, 4, 1, 0 }, { 8, 8, 0, 33 } };
    REQUIRE(!run_batch(ctx, h80, 32, b1, 2, 260, 22, "h80", 0), "case");
    REQUIRE(!run_batch(ctx, h96, 32, b1, 2, 260, 23, "h96 gqa7", 0), "case");
    row_cfg b2[2] = { { 2, 2, 0, 0 }, { 4, 4, 2, 20 } };
    REQUIRE(!run_batch(ctx, h128, 32, b2, 2, 300, 24, "h128", 0), "case");
    REQUIRE(!run_batch(ctx, h256, 64, b2, 2, 300, 25, "h256", 0), "case");
    REQUIRE(!run_batch(ctx, mha, 32, b2, 2, 260, 26, "mha", 0), "case");
    /* the FP16-arithmetic variant of the packed kernel (2- and 4-bit keys) */
    row_cfg h[4] = { { 2, 2, 0, 0 }, { 2, 4, 4, 30 }, { 4, 2, 0, 60 }, { 4, 8, 1, 7 } };
    REQUIRE(!run_batch(ctx, small, 32, h, 4, 2 * 128 + 64 + 40, 30, "f16-math", 1), "case");
    REQUIRE(!run_batch(ctx, h128, 32, h, 2, 300, 31, "h128 f16m", 1), "case");
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_kv_attn");
}
