/* Shared by the fuzz targets (tests/fuzz/fuzz_*.c). Each target is a function
 *   int vkm_fuzz_<name>(const uint8_t *data, size_t size)
 * that never crashes and checks contracts with FUZZ_ASSERT. It is built twice:
 *  - as a libFuzzer program (tests/fuzz/CMakeLists.txt, clang), where
 *    VKM_FUZZ_MAIN names the target and a broken contract traps;
 *  - into the ctest program test_fuzz_corpus, which replays every committed
 *    seed and regression input of every target (a broken contract is a failed
 *    check there, and ASan/UBSan runs of the suite cover the rest). */
#ifndef VKM_FUZZ_H
#define VKM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "text/tokenizer.h"
#include "vkmix.h"

extern int vkm_fuzz_failures;

#ifdef VKM_FUZZ_MAIN
#define VKM_FUZZ_BROKEN() __builtin_trap()
#else
#define VKM_FUZZ_BROKEN() (vkm_fuzz_failures++)
#endif

#define FUZZ_ASSERT(cond, ...)                                                        \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: contract broken: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            VKM_FUZZ_BROKEN();                                                        \
        }                                                                             \
    } while (0)

/* The targets. */
int vkm_fuzz_gguf(const uint8_t *data, size_t size);
int vkm_fuzz_model_meta(const uint8_t *data, size_t size);
int vkm_fuzz_tokenize(const uint8_t *data, size_t size);
int vkm_fuzz_kv_config(const uint8_t *data, size_t size);
int vkm_fuzz_session_state(const uint8_t *data, size_t size);

/* fuzz_session_state.c: its sessions (byte 0's bits 0-1; created on first
 * use, NULL without a device) and their context, for the seeds. */
vkmix_session *vkm_fuzz_state_session(int i);
vkmix_context *vkm_fuzz_state_context(void);

/* A failed call's contract: a known error code, a NUL-terminated non-empty
 * message in err[0..errlen). what names the call for the report. */
void vkm_fuzz_check_error(vkmix_error e, const char *err, size_t errlen, const char *what);

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or truncation). */
int vkm_fuzz_utf8_valid(const char *s, size_t n);

/* Tokenizer contracts on text[0..len): every id in range, the "cap too small"
 * answers, pieces and whole-sequence decoding consistent, the streaming
 * detokenizer's output valid UTF-8. round_trip: also decoding gives the text
 * back (the caller knows when that must hold; see fuzz_tokenize.c). */
void vkm_fuzz_check_tokenizer(const vkm_tokenizer *tok, const char *text, size_t len, int parse_special,
                              int round_trip, unsigned detok_flags);

/* assets/stories260K-f16.gguf: $VKMIX_SOURCE_DIR, else the source folder the
 * fuzzer was configured from. */
const char *vkm_fuzz_asset_path(void);

#endif
