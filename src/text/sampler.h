/* Token sampler (CPU): repetition penalty -> top-k -> temperature -> softmax
 * -> top-p -> min-p -> a draw from its own seeded PRNG (xoshiro256**), so a
 * seed gives the same sequence on every run and machine.
 *
 * Note: llama.cpp's default chain applies the temperature after min-p; this
 * order (from the vkmix design) applies it before top-p/min-p, so top-p and
 * min-p see the tempered distribution. */
#ifndef VKM_SAMPLER_H
#define VKM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"

typedef struct vkm_sampler_params {
    float temperature;      /* <= 0: greedy (argmax, ties -> lowest id); default 0.8 */
    int32_t top_k;          /* <= 0: off; default 40 */
    float top_p;            /* [0, 1], 1: off; default 0.95 */
    float min_p;            /* [0, 1], 0: off; default 0.05 */
    float repeat_penalty;   /* > 0, 1: off (default). llama.cpp rule: logit > 0 -> logit / p,
                               else logit * p, once per distinct token of the window */
    int32_t repeat_last_n;  /* >= 0: window of accepted tokens for the penalty; default 64 */
    uint64_t seed;          /* default VKM_SAMPLER_DEFAULT_SEED */
} vkm_sampler_params;

#define VKM_SAMPLER_DEFAULT_SEED 0x766b6d6978ull /* "vkmix" */

typedef struct vkm_sampler vkm_sampler;

void vkm_sampler_default_params(vkm_sampler_params *params);

/* Checks the parameters: VKMIX_ERROR_INVALID_ARGUMENT with a message when one
 * is NaN or out of range. */
vkmix_error vkm_sampler_create(const vkm_sampler_params *params, vkm_sampler **out,
                               char *err, size_t errlen);
void vkm_sampler_free(vkm_sampler *s);
/* Clears the history and reseeds the PRNG with params.seed. */
void vkm_sampler_reset(vkm_sampler *s);
/* Clears the history and reseeds the PRNG with seed (params.seed becomes seed). */
void vkm_sampler_set_seed(vkm_sampler *s, uint64_t seed);
const vkm_sampler_params *vkm_sampler_params_of(const vkm_sampler *s);

/* Draws a token id from logits[0..n_vocab) (not modified). The scratch memory
 * is sized on first use and grows when n_vocab does. Returns -1 on any error
 * (use vkm_sampler_sample2 for the reason). */
int32_t vkm_sampler_sample(vkm_sampler *s, const float *logits, uint32_t n_vocab);

/* Same with an error code: VKMIX_ERROR_INVALID_ARGUMENT for NULL pointers,
 * n_vocab 0, a NaN or +inf logit, or all logits -inf;
 * VKMIX_ERROR_OUT_OF_HOST_MEMORY. *out is -1 on error. */
vkmix_error vkm_sampler_sample2(vkm_sampler *s, const float *logits, uint32_t n_vocab,
                                int32_t *out, char *err, size_t errlen);

/* The distribution the next draw would use, without drawing: the kept
 * candidates in decreasing probability (ties: lower id first), probabilities
 * summing to 1 (greedy: the argmax with 1). Writes up to cap entries (ids and
 * probs may be NULL when cap is 0) and the count to *n; cap too small:
 * VKMIX_ERROR_INVALID_ARGUMENT with *n = count. */
vkmix_error vkm_sampler_distribution(vkm_sampler *s, const float *logits, uint32_t n_vocab,
                                     int32_t *ids, float *probs, size_t cap, size_t *n,
                                     char *err, size_t errlen);

/* Adds id to the history the repetition penalty looks at. */
void vkm_sampler_accept(vkm_sampler *s, int32_t id);

#endif
