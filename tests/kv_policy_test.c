/* What the MiKV and MixKVQ tests share (kv_policy_test.h). */
#include "kv_policy_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ref/ref_from_model.h"
#include "runtime/session.h"
#include "testutil.h"

int kvp_argmax(const float *x, uint32_t n)
{
    int best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int)i;
    return best;
}

vkmix_session *kvp_session(vkmix_model *m, const char *spec, uint32_t n_ctx, uint32_t S, uint32_t batch_rows)
{
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.n_ctx = n_ctx;
    p.kv = spec;
    p.kv_group = 32;
    p.kv_window = 32;
    p.kv_sinks = S;
    p.batch_rows = batch_rows;
    vkmix_session *s = NULL;
    if (vkmix_session_create(m, &p, &s) != VKMIX_OK) {
        fprintf(stderr, "session %s: %s\n", spec, vkmix_context_last_error(m->ctx));
        return NULL;
    }
    return s;
}

void kvp_model_vs_reference(vkmix_context *ctx, vkmix_model *m, const char *spec, uint32_t S, kvp_tiers_fn tiers,
                            kvp_model_result *r)
{
    memset(r, 0, sizeof *r);
    const uint32_t V = m->hp.n_vocab, T = 300;
    r->T = T;
    vkmix_session *s = kvp_session(m, spec, T, S, 0);
    CHECK(s != NULL, "session %s", spec);
    if (!s) return;
    r->ran = 1;
    /* the per-layer policy's prefill attends over an FP16 copy of the history; MiKV's and MixKVQ's read the codes */
    const int fp16_pre = s->cache.cfg.policy == VKMIX_KV_POLICY_LAYER;
    if (fp16_pre) tiers = NULL;
    vkm_ref_model rm;
    vkm_ref_state *st = NULL;
    vkm_kv_sim *sim = NULL;
    CHECK(vkm_model_ref_weights(m, &rm) == VKMIX_OK, "ref weights");
    CHECK(vkm_ref_state_create(&m->hp, T, 1, &st) == VKMIX_OK && vkm_kv_sim_create(&s->cache.cfg, st, &sim) == VKMIX_OK,
          "reference state");
    float *ref = malloc((size_t)T * V * 4), *gpu = malloc((size_t)T * V * 4);
    int32_t *toks = malloc(T * 4);
    CHECK(ref && gpu && toks, "out of memory");
    if (!ref || !gpu || !toks) goto done;
    toks[0] = 1;
    for (uint32_t i = 0; i < T; i++) {
        vkm_ref_forward(&rm.w, st, toks[i], i, ref + (size_t)i * V);
        vkm_kv_sim_advance(sim, i, i + 1, 0);
        if (vkmix_session_eval(s, &toks[i], 1, gpu, 0) != VKMIX_OK) {
            fprintf(stderr, "%s\n", vkmix_context_last_error(ctx));
            r->worst_dec = INFINITY;
            break;
        }
        double e = tu_rel_err(gpu, ref + (size_t)i * V, V);
        if (!(e <= r->worst_dec)) r->worst_dec = e;
        int next = kvp_argmax(gpu, V);
        r->agree += next == kvp_argmax(ref + (size_t)i * V, V);
        if (i + 1 < T) toks[i + 1] = i < 20 ? 3 + (int32_t)((i * 37) % 200) : next; /* a prompt, then greedy */
    }
    if (tiers) r->wrong_dec = tiers(&s->cmd, &s->cache, sim, T, &r->n_dec, &r->n_up);
    /* the same tokens as a prompt in chunks of n_batch (64): the reference ages after each chunk */
    vkmix_session_reset(s);
    vkm_kv_sim_free(sim);
    vkm_ref_state_free(st);
    sim = NULL;
    CHECK(vkm_ref_state_create(&m->hp, T, 1, &st) == VKMIX_OK && vkm_kv_sim_create(&s->cache.cfg, st, &sim) == VKMIX_OK,
          "reference state");
    r->chunk = s->n_batch;
    for (uint32_t i0 = 0; i0 < T; i0 += r->chunk) {
        uint32_t n = T - i0 < r->chunk ? T - i0 : r->chunk;
        for (uint32_t i = i0; i < i0 + n; i++) vkm_ref_forward(&rm.w, st, toks[i], i, ref + (size_t)i * V);
        vkm_kv_sim_advance(sim, i0, i0 + n, fp16_pre);
    }
    if (vkmix_session_eval(s, toks, T, gpu, 1) == VKMIX_OK) {
        for (uint32_t i = 0; i < T; i++) {
            double e = tu_rel_err(gpu + (size_t)i * V, ref + (size_t)i * V, V);
            if (!(e <= r->worst_pre)) r->worst_pre = e;
        }
        if (tiers) r->wrong_pre = tiers(&s->cmd, &s->cache, sim, T, &r->n_pre, &r->n_up);
    } else r->worst_pre = INFINITY;
done:
    free(ref);
    free(gpu);
    free(toks);
    vkm_kv_sim_free(sim);
    vkm_ref_state_free(st);
    vkm_ref_model_free(&rm);
    vkmix_session_free(s);
}

void kvp_batch_vs_alone(vkmix_context *ctx, vkmix_model *m, const char *const specs[5], kvp_tiers_equal_fn tiers,
                        const char *what)
{
    enum { NB = 5, STEPS = 100 };
    const uint32_t V = m->hp.n_vocab;
    vkmix_session *ss[NB] = { 0 }, *solo[NB] = { 0 };
    int ok = 1;
    for (int i = 0; i < NB; i++) {
        ss[i] = kvp_session(m, specs[i], 256, i % 2 ? 2 : 0, i == 0 ? 3 : 0); /* the lead: 3 rows at a time */
        solo[i] = kvp_session(m, specs[i], 256, i % 2 ? 2 : 0, 0);
        ok &= ss[i] && solo[i];
    }
    CHECK(ok, "batch sessions");
    float *lb = malloc((size_t)NB * V * 4), *ls = malloc(V * 4);
    double worst[NB] = { 0 };
    int32_t cur[NB], prompt[80];
    for (int i = 0; i < 80; i++) prompt[i] = 3 + (i * 53) % 250;
    for (int i = 0; ok && i < NB; i++) {
        /* different depths: 40 .. 72 tokens (blocks packed from 64 + S on) */
        ok &= vkmix_session_eval(ss[i], prompt, 40 + 8 * (uint32_t)i, NULL, 0) == VKMIX_OK;
        ok &= vkmix_session_eval(solo[i], prompt, 40 + 8 * (uint32_t)i, NULL, 0) == VKMIX_OK;
        cur[i] = prompt[i];
    }
    for (int step = 0; ok && step < STEPS; step++) {
        if (vkmix_batch_decode(ss, cur, NB, lb) != VKMIX_OK) {
            fprintf(stderr, "batch: %s\n", vkmix_context_last_error(ctx));
            worst[0] = INFINITY;
            break;
        }
        for (int i = 0; i < NB; i++) {
            if (vkmix_session_eval(solo[i], &cur[i], 1, ls, 0) != VKMIX_OK) worst[i] = INFINITY;
            double e = tu_rel_err(lb + (size_t)i * V, ls, V);
            if (!(e <= worst[i])) worst[i] = e;
            cur[i] = kvp_argmax(lb + (size_t)i * V, V);
        }
    }
    for (int i = 0; ok && i < NB; i++) {
        uint32_t n = 0, differ = tiers(ss[i], solo[i], &n);
        printf("batch row %d (%s) vs alone over %d steps: worst relative logit error %.2e; tier %s differing %u of %u\n",
               i, specs[i], STEPS, worst[i], what, differ, n);
        CHECK(worst[i] <= 2e-3 && differ == 0, "batch decode row %d (%s): %.3e, %u tier %s differ", i, specs[i], worst[i],
              differ, what);
        if (ss[i]->cache.cfg.policy != VKMIX_KV_POLICY_LAYER && ss[i]->cache.cfg.k_bits[0] < 16)
            CHECK(n > 0, "batch row %d: no tier %s compared", i, what);
    }
    free(lb);
    free(ls);
    for (int i = 0; i < NB; i++) {
        vkmix_session_free(ss[i]);
        vkmix_session_free(solo[i]);
    }
}

void kvp_refusals(vkmix_model *m, const char *spec, const char *name)
{
    vkmix_session *s = kvp_session(m, spec, 128, 0, 0);
    CHECK(s != NULL, "session");
    if (!s) return;
    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = 3 + i;
    CHECK(vkmix_session_eval(s, toks, 40, NULL, 0) == VKMIX_OK, "eval");
    CHECK(vkmix_session_rewind_is_exact(s, 40) && !vkmix_session_rewind_is_exact(s, 39), "rewind_is_exact");
    CHECK(vkmix_session_rewind(s, 40) == VKMIX_OK, "rewind to the current length");
    vkmix_error e = vkmix_session_rewind(s, 39);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && strstr(vkmix_context_last_error(m->ctx), name), "rewind: %d %s", e,
          vkmix_context_last_error(m->ctx));
    size_t need = 0;
    vkmix_session_state_size(s, &need);
    void *buf = malloc(need ? need : 1);
    e = vkmix_session_state_save(s, buf, need, NULL);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && strstr(vkmix_context_last_error(m->ctx), name), "save: %d %s", e,
          vkmix_context_last_error(m->ctx));
    e = vkmix_session_state_load(s, buf, need);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && strstr(vkmix_context_last_error(m->ctx), name), "load: %d %s", e,
          vkmix_context_last_error(m->ctx));
    CHECK(s->n_past == 40, "the session is untouched: %u tokens", s->n_past);
    free(buf);
    vkmix_session_free(s);
}
