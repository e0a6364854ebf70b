/* Small helpers shared by the ctest programs. */
#ifndef VKMIX_TESTUTIL_H
#define VKMIX_TESTUTIL_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "vkmix.h"

#define TEST_SKIP 77

extern int tu_failures;

/* Record a failure (does not stop the test). */
#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            tu_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

/* Fail and return from main at once. */
#define REQUIRE(cond, ...)                                                        \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            return 1;                                                             \
        }                                                                         \
    } while (0)

/* Deterministic PRNG (xorshift64*), fixed seeds in every test. */
typedef struct { uint64_t s; } tu_rng;
void tu_rng_seed(tu_rng *r, uint64_t seed);
uint32_t tu_rng_u32(tu_rng *r);
float tu_rng_uniform(tu_rng *r);            /* [0, 1) */
float tu_rng_normal(tu_rng *r);             /* N(0, 1) */

/* Path of a file under ../shared (VKMIX_SHARED_DIR); NULL when it does not exist.
 * The returned string is malloc'ed. */
/* Relative L2 error ||a - b|| / ||b|| in double (INFINITY when a holds a NaN). */
double tu_rel_err(const float *a, const float *b, size_t n);

char *tu_shared_path(const char *rel);

/* stories260K as a GGUF file: ../shared's (f32 weights) when present, else the
 * shipped assets/stories260K-f16.gguf (the same model with f16 matrices); NULL when
 * neither exists. *is_f16 (may be NULL): 1 for the shipped copy. malloc'ed. */
char *tu_stories260k(int *is_f16);

/* stories260K's llama2.c tokenizer file (tok512.bin: int32 max length, then per
 * token float score, int32 length, bytes): ../shared's when present, else written
 * to a temporary file from the shipped GGUF's tokenizer.ggml.tokens and scores
 * (the same vocabulary: "\u2581" back to " "). NULL when neither works. malloc'ed;
 * *generated (may be NULL) is 1 for a temporary file (the caller may remove it). */
char *tu_tok512(int *generated);

/* Path of a file shipped in the repository (VKMIX_SOURCE_DIR/<rel>, e.g.
 * "assets/stories260K-f16.gguf"); NULL when it does not exist. malloc'ed. */
char *tu_source_path(const char *rel);

/* Writes at least `bytes` bytes of simple English story text (short sentences of a
 * fixed, TinyStories-like vocabulary, chosen by a seeded PRNG) to path: a text
 * fixture for the tests that need prose and not a particular corpus. 0 on success. */
int tu_write_story_text(const char *path, size_t bytes, uint64_t seed);

/* Create a context with validation on (VKMIX_VALIDATION=1 is set by ctest).
 * Returns NULL and prints why on failure. */
vkmix_context *tu_context(void);
/* Free the context; returns the number of validation messages it saw
 * (a test must fail when that is non-zero). */
uint32_t tu_context_done(vkmix_context *ctx);

/* Print the summary and return the exit code for main(). */
int tu_finish(const char *name);
#endif
