/* What the MiKV and MixKVQ tests (test_kv_mikv.c, test_kv_mixkvq.c) share: argmax,
 * sessions of the policy on stories260K's geometry, and the model against the CPU
 * reference model running the policy's simulation. */
#ifndef VKMIX_KV_POLICY_TEST_H
#define VKMIX_KV_POLICY_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "kv/kv.h"
#include "ref/kv_sim.h"
#include "vkmix.h"

int kvp_argmax(const float *x, uint32_t n);

/* A session of spec with G 32, R 32, S sinks (NULL after a message on stderr). */
vkmix_session *kvp_session(vkmix_model *m, const char *spec, uint32_t n_ctx, uint32_t S, uint32_t batch_rows);

/* The policy's tier decisions of the first n tokens, GPU against the simulation: how
 * many differ; *n_checked counts those compared, *n_up (may be NULL) what the policy
 * counts as promoted. */
typedef uint32_t (*kvp_tiers_fn)(vkm_cmd *cmd, const vkm_kv_cache *c, vkm_kv_sim *sim, uint32_t n, uint32_t *n_checked,
                                 uint32_t *n_up);

typedef struct kvp_model_result {
    int ran;                      /* the session existed */
    uint32_t T, chunk;            /* tokens, prefill chunk */
    double worst_dec, worst_pre;  /* worst relative logit error, token by token and as a chunked prompt */
    uint32_t agree;               /* greedy argmax equal to the reference's (decode) */
    uint32_t wrong_dec, wrong_pre, n_dec, n_pre, n_up; /* tier decisions (a non-layer policy) */
} kvp_model_result;

/* stories260K (m) with spec against the CPU reference model with the simulation (its kv_hook
 * feeds every query of every layer to the policy): T = 300 tokens, a 20-token prompt then
 * greedy generation token by token, then the same tokens as a prompt in chunks of the
 * session's batch, the reference ageing after each chunk. tiers: NULL for the per-layer policy. */
void kvp_model_vs_reference(vkmix_context *ctx, vkmix_model *m, const char *spec, uint32_t S, kvp_tiers_fn tiers,
                            kvp_model_result *r);

/* The tier decisions of a batch row's session a against the same row's session alone b:
 * how many differ; *n_compared counts those compared. */
typedef uint32_t (*kvp_tiers_equal_fn)(vkmix_session *a, vkmix_session *b, uint32_t *n_compared);

/* vkmix_batch_decode of the 5 sessions of specs (the first decoding 3 rows at a time, sinks 2
 * on the odd ones, prompts of 40..72 tokens so blocks are packed and tiered) against twin
 * sessions decoding alone, 100 greedy steps: every row's logits within 2e-3 and its tier
 * decisions equal (what: "masks" or "maps", in the messages). */
void kvp_batch_vs_alone(vkmix_context *ctx, vkmix_model *m, const char *const specs[5], kvp_tiers_equal_fn tiers,
                        const char *what);

/* A session of spec (a stateful policy named `name`) refuses rewinding below its length and
 * saving or loading its state, with an error that names the policy, and stays untouched. */
void kvp_refusals(vkmix_model *m, const char *spec, const char *name);

#endif
