/* Streaming detokenization: complete UTF-8 only, invalid bytes as U+FFFD.
 * See vkm_detok in tokenizer.h for the rules. */
#include "text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

struct vkm_detok {
    const vkm_tokenizer *tok;
    unsigned flags;
    int strip;              /* remove one leading space from the next non-empty piece */
    unsigned char held[4];  /* incomplete UTF-8 tail of the previous push */
    size_t n_held;
    char *piece;            /* [max_token_len + 1] */
    size_t piece_cap;
    char *out;              /* returned text */
    size_t out_cap;
};

static const char k_fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };

static int initial_strip(const vkm_detok *d)
{
    return vkm_tokenizer_type(d->tok) == VKM_VOCAB_SPM && (d->flags & VKM_DETOK_STRIP_START) &&
           !(d->flags & VKM_DETOK_KEEP_SPACE);
}

vkmix_error vkm_detok_create(const vkm_tokenizer *tok, unsigned flags, vkm_detok **out)
{
    if (out) *out = NULL;
    if (!tok || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_detok *d = calloc(1, sizeof *d);
    if (!d) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    d->tok = tok;
    d->flags = flags;
    d->piece_cap = (size_t)vkm_tokenizer_max_token_len(tok) + 1;
    d->piece = malloc(d->piece_cap);
    /* worst case of one push: 3 held bytes + a piece, each byte -> 3 bytes of U+FFFD */
    d->out_cap = 3 * (d->piece_cap + 4);
    d->out = malloc(d->out_cap);
    if (!d->piece || !d->out) {
        vkm_detok_free(d);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    vkm_detok_reset(d);
    *out = d;
    return VKMIX_OK;
}

void vkm_detok_free(vkm_detok *d)
{
    if (!d) return;
    free(d->piece);
    free(d->out);
    free(d);
}

void vkm_detok_reset(vkm_detok *d)
{
    if (!d) return;
    d->n_held = 0;
    d->strip = initial_strip(d);
}

/* Bytes needed by a sequence starting with lead byte c and the valid range of
 * its second byte; 0 when c cannot start a sequence. */
static unsigned seq_need(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

/* Validates in[0..n) into out; stops before an incomplete tail, whose length
 * goes to *tail (0 when final: then the tail becomes U+FFFD). Returns bytes
 * written. out must hold 3 * n bytes. */
static size_t utf8_repair(const unsigned char *in, size_t n, char *out, size_t *tail, int final)
{
    size_t i = 0, w = 0;
    *tail = 0;
    while (i < n) {
        unsigned char lo, hi;
        unsigned need = seq_need(in[i], &lo, &hi);
        if (need == 0) {
            memcpy(out + w, k_fffd, 3);
            w += 3;
            i++;
            continue;
        }
        if (need == 1) {
            out[w++] = (char)in[i++];
            continue;
        }
        /* count the valid continuation bytes present */
        unsigned k = 1;
        while (k < need && i + k < n) {
            unsigned char c = in[i + k];
            unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (c < l || c > h) break;
            k++;
        }
        if (k == need) {
            memcpy(out + w, in + i, need);
            w += need;
            i += need;
        } else if (i + k == n && !final) {
            *tail = n - i; /* incomplete so far: wait for more bytes */
            return w;
        } else {
            /* a maximal invalid subpart: one U+FFFD, resume at the bad byte */
            memcpy(out + w, k_fffd, 3);
            w += 3;
            i += k;
        }
    }
    return w;
}

vkmix_error vkm_detok_push(vkm_detok *d, int32_t id, const char **text, size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!d || !text || !len) return VKMIX_ERROR_INVALID_ARGUMENT;
    size_t k;
    vkmix_error e = vkm_token_to_piece_ex(d->tok, id, (d->flags & VKM_DETOK_SPECIAL) != 0, d->piece,
                                          d->piece_cap, &k);
    if (e != VKMIX_OK) return e;
    const char *p = d->piece;
    if (vkm_tok_detok_strip_after(d->tok, d->flags, id)) {
        d->strip = 1;
    } else if (k > 0) {
        if (d->strip && p[0] == ' ') { p++; k--; }
        d->strip = 0;
    }
    /* held tail + piece -> one input run (held <= 3 bytes, placed before the piece) */
    unsigned char in[4 + 8];
    const unsigned char *src;
    size_t n = d->n_held + k;
    unsigned char *tmp = NULL;
    if (d->n_held == 0) {
        src = (const unsigned char *)p;
    } else if (n <= sizeof in) {
        memcpy(in, d->held, d->n_held);
        memcpy(in + d->n_held, p, k);
        src = in;
    } else {
        tmp = malloc(n);
        if (!tmp) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        memcpy(tmp, d->held, d->n_held);
        memcpy(tmp + d->n_held, p, k);
        src = tmp;
    }
    size_t tail;
    size_t w = utf8_repair(src, n, d->out, &tail, 0);
    memcpy(d->held, src + n - tail, tail); /* tail <= 3, may overlap only with `in`/tmp */
    d->n_held = tail;
    free(tmp);
    *text = d->out;
    *len = w;
    return VKMIX_OK;
}

vkmix_error vkm_detok_flush(vkm_detok *d, const char **text, size_t *len)
{
    if (text) *text = "";
    if (len) *len = 0;
    if (!d || !text || !len) return VKMIX_ERROR_INVALID_ARGUMENT;
    size_t tail;
    unsigned char in[4];
    memcpy(in, d->held, d->n_held);
    size_t w = utf8_repair(in, d->n_held, d->out, &tail, 1);
    d->n_held = 0;
    *text = d->out;
    *len = w;
    return VKMIX_OK;
}
