/* Contract checks shared by the fuzz targets (fuzz.h). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int vkm_fuzz_failures = 0;

#ifdef VKM_FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return VKM_FUZZ_MAIN(data, size); }
#endif

#ifndef VKM_FUZZ_SOURCE_DIR
#define VKM_FUZZ_SOURCE_DIR "."
#endif

const char *vkm_fuzz_asset_path(void)
{
    static char path[1024];
    const char *src = getenv("VKMIX_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/assets/stories260K-f16.gguf", src ? src : VKM_FUZZ_SOURCE_DIR);
    return path;
}

void vkm_fuzz_check_error(vkmix_error e, const char *err, size_t errlen, const char *what)
{
    FUZZ_ASSERT(e > VKMIX_OK && e < VKMIX_ERROR_COUNT_, "%s: error code %d", what, (int)e);
    FUZZ_ASSERT(memchr(err, 0, errlen) != NULL, "%s: message not terminated", what);
    FUZZ_ASSERT(err[0] != 0, "%s: error %d without a message", what, (int)e);
}

int vkm_fuzz_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        uint32_t k = vkm_tok_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (cp == VKM_TOK_CP_INVALID) return 0;
        i += k;
    }
    return 1;
}

/* Tokenizes with cap 0 first (the count), then into a buffer of exactly that
 * size; checks the answers agree and every id is in range. NULL when the
 * tokenizer refuses the text (allowed: VKMIX_ERROR_TOKENIZER). */
static int32_t *tokenize_all(const vkm_tokenizer *tok, const char *text, size_t len, int add_special,
                             int parse_special, size_t *n_out)
{
    size_t n = 0;
    vkmix_error e = vkm_tokenize(tok, text, len, add_special, parse_special, NULL, 0, &n);
    if (e == VKMIX_ERROR_TOKENIZER) return NULL;
    FUZZ_ASSERT(e == (n ? VKMIX_ERROR_INVALID_ARGUMENT : VKMIX_OK), "tokenize with cap 0: %d for %zu ids", (int)e, n);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return NULL;
    size_t n2 = 0;
    e = vkm_tokenize(tok, text, len, add_special, parse_special, ids, n, &n2);
    FUZZ_ASSERT(e == VKMIX_OK && n2 == n, "tokenize into %zu: %d, %zu ids", n, (int)e, n2);
    if (n > 0) {
        size_t n3 = 0;
        e = vkm_tokenize(tok, text, len, add_special, parse_special, ids, n - 1, &n3);
        FUZZ_ASSERT(e == VKMIX_ERROR_INVALID_ARGUMENT && n3 == n, "tokenize into %zu: %d, %zu", n - 1, (int)e, n3);
        e = vkm_tokenize(tok, text, len, add_special, parse_special, ids, n, &n2); /* ids again */
    }
    uint32_t nt = vkm_tokenizer_n_tokens(tok);
    for (size_t i = 0; i < n; i++) FUZZ_ASSERT(ids[i] >= 0 && (uint32_t)ids[i] < nt, "id %d of %u", ids[i], nt);
    *n_out = n;
    return ids;
}

/* vkm_detokenize into a buffer of exactly the size it asks for; NULL on failure. */
static char *detokenize_all(const vkm_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags, size_t *len)
{
    size_t need = 0;
    vkmix_error e = vkm_detokenize(tok, ids, n, flags, NULL, 0, &need);
    FUZZ_ASSERT(e == (need ? VKMIX_ERROR_INVALID_ARGUMENT : VKMIX_OK), "detokenize with cap 0: %d for %zu", (int)e, need);
    char *out = malloc(need + 1);
    if (!out) return NULL;
    size_t got = 0;
    e = vkm_detokenize(tok, ids, n, flags, out, need, &got);
    FUZZ_ASSERT(e == VKMIX_OK && got == need, "detokenize into %zu: %d, %zu", need, (int)e, got);
    *len = got;
    return out;
}

/* The streaming detokenizer's whole output. */
static char *detok_stream(const vkm_tokenizer *tok, const int32_t *ids, size_t n, unsigned flags, size_t *len)
{
    vkm_detok *d = NULL;
    vkmix_error e = vkm_detok_create(tok, flags, &d);
    FUZZ_ASSERT(e == VKMIX_OK && d, "detok_create: %d", (int)e);
    if (!d) return NULL;
    size_t cap = 64, w = 0;
    char *out = malloc(cap);
    for (size_t i = 0; out && i <= n; i++) {
        const char *p = NULL;
        size_t k = 0;
        e = i < n ? vkm_detok_push(d, ids[i], &p, &k) : vkm_detok_flush(d, &p, &k);
        FUZZ_ASSERT(e == VKMIX_OK, "detok push/flush: %d", (int)e);
        if (e != VKMIX_OK) k = 0;
        if (w + k > cap) {
            while (w + k > cap) cap *= 2;
            char *q = realloc(out, cap);
            if (!q) { free(out); out = NULL; break; }
            out = q;
        }
        if (k) memcpy(out + w, p, k);
        w += k;
    }
    vkm_detok_free(d);
    *len = w;
    return out;
}

void vkm_fuzz_check_tokenizer(const vkm_tokenizer *tok, const char *text, size_t len, int parse_special,
                              int round_trip, unsigned detok_flags)
{
    size_t n = 0;
    int32_t *ids = tokenize_all(tok, text, len, 0, parse_special, &n);
    if (!ids) {
        FUZZ_ASSERT(!round_trip, "a round-trip vocabulary refused a text");
        return;
    }
    /* with the special tokens the vocabulary asks for */
    size_t ns = 0;
    int32_t *sids = tokenize_all(tok, text, len, 1, parse_special, &ns);
    if (sids) {
        int bos = vkm_tokenizer_add_bos(tok), eos = vkm_tokenizer_add_eos(tok);
        FUZZ_ASSERT(ns == n + (size_t)bos + (size_t)eos, "%zu ids with specials, %zu without", ns, n);
        FUZZ_ASSERT(!bos || sids[0] == vkm_tokenizer_bos(tok), "first id %d is not bos", sids[0]);
        FUZZ_ASSERT(!eos || sids[ns - 1] == vkm_tokenizer_eos(tok), "last id %d is not eos", sids[ns - 1]);
        free(sids);
    }
    /* pieces: within the longest token, the "cap too small" answer */
    uint32_t max_len = vkm_tokenizer_max_token_len(tok);
    char piece[8];
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        vkmix_error e = vkm_token_to_piece_ex(tok, ids[i], 1, piece, sizeof piece, &k);
        FUZZ_ASSERT(k <= max_len, "piece of %d is %zu bytes, longest token %u", ids[i], k, max_len);
        FUZZ_ASSERT(e == (k <= sizeof piece ? VKMIX_OK : VKMIX_ERROR_INVALID_ARGUMENT), "piece %d: %d", ids[i], (int)e);
    }
    size_t dl = 0, sl = 0;
    char *dec = detokenize_all(tok, ids, n, detok_flags, &dl);
    char *str = detok_stream(tok, ids, n, detok_flags, &sl);
    if (dec && str) {
        FUZZ_ASSERT(vkm_fuzz_utf8_valid(str, sl), "the streaming detokenizer emitted invalid UTF-8");
        if (vkm_fuzz_utf8_valid(dec, dl))
            FUZZ_ASSERT(sl == dl && memcmp(str, dec, dl) == 0, "streamed text differs from the whole decode");
        if (round_trip)
            FUZZ_ASSERT(dl == len && memcmp(dec, text, len) == 0, "round trip: %zu bytes in, %zu out", len, dl);
    }
    free(dec);
    free(str);
    free(ids);
}
