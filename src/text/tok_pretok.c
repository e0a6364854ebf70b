/* GPT-2 style pre-tokenizers, written by hand (no regex library), and the
 * GPT-2 byte <-> unicode mapping.
 *
 * Each matcher returns the end of the leftmost match of the regex at a given
 * position, following the regex's semantics exactly: alternatives are tried in
 * order, quantifiers are greedy with backtracking where it matters (noted per
 * alternative). The class tables (tok_unicode.c) are complete Unicode 17.
 *
 * Approximations (documented):
 *  - (?i:'s|'t|...) folds ASCII only: "'S" matches, but not the exotic case
 *    folds a full Unicode engine would also accept ('ſ' U+017F for 's').
 *  - invalid UTF-8 bytes are single code points of no class ("other"), so they
 *    end up in the punctuation alternative; they never crash or stall.
 */
#include "text/tokenizer.h"

uint32_t vkm_tok_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    uint32_t need, v, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2; v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;          /* overlong */
        if (c == 0xED) hi = 0x9F;          /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3; v = c & 0x07;
        if (c == 0xF0) lo = 0x90;          /* overlong */
        if (c == 0xF4) hi = 0x8F;          /* > U+10FFFF */
    } else { *cp = VKM_TOK_CP_INVALID; return 1; }
    if (len < need + 1) { *cp = VKM_TOK_CP_INVALID; return 1; }
    for (uint32_t i = 1; i <= need; i++) {
        unsigned char d = s[i];
        if (d < lo || d > hi) { *cp = VKM_TOK_CP_INVALID; return 1; }
        lo = 0x80; hi = 0xBF;
        v = (v << 6) | (d & 0x3F);
    }
    *cp = v;
    return need + 1;
}

/* bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 to
 * U+0100.. in byte order. */
static int tok_byte_is_printable(unsigned b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t vkm_tok_byte_to_cp(uint8_t b)
{
    if (tok_byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++) n += !tok_byte_is_printable(i);
    return 256 + n;
}

int vkm_tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return tok_byte_is_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t n = cp - 256;
    for (unsigned i = 0; i < 256; i++) {
        if (tok_byte_is_printable(i)) continue;
        if (n == 0) return (int)i;
        n--;
    }
    return -1;
}

/* ---------------------------------------------------------------- scanning helpers */

typedef struct {
    const unsigned char *s;
    size_t len;
} tok_text;

#define CLS_OTHER 0u

/* class of the code point at pos (pos < len); *n receives its byte length */
static unsigned cls_at(const tok_text *t, size_t pos, size_t *n, uint32_t *cpo)
{
    uint32_t cp;
    *n = vkm_tok_utf8_decode(t->s + pos, t->len - pos, &cp);
    if (cpo) *cpo = cp;
    return cp == VKM_TOK_CP_INVALID ? CLS_OTHER : vkm_tok_cp_class(cp);
}

/* end of the run of code points of class `want` starting at pos (may be pos) */
static size_t run_of(const tok_text *t, size_t pos, unsigned want)
{
    while (pos < t->len) {
        size_t n;
        if (cls_at(t, pos, &n, NULL) != want) break;
        pos += n;
    }
    return pos;
}

/* like run_of but at most max code points (max 0: unlimited) */
static size_t run_of_max(const tok_text *t, size_t pos, unsigned want, unsigned max)
{
    unsigned k = 0;
    while (pos < t->len && (max == 0 || k < max)) {
        size_t n;
        if (cls_at(t, pos, &n, NULL) != want) break;
        pos += n;
        k++;
    }
    return pos;
}

static int is_crlf(unsigned char c) { return c == '\r' || c == '\n'; }

static unsigned char ascii_lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c; }

/* 's 't 're 've 'm 'll 'd at pos (t->s[pos] == '\''); 0 when none */
static size_t contraction(const tok_text *t, size_t pos, int icase)
{
    if (pos + 1 >= t->len) return 0;
    unsigned char a = t->s[pos + 1];
    if (icase) a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 >= t->len) return 0;
    unsigned char b = t->s[pos + 2];
    if (icase) b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    return 0;
}

/* Whitespace alternatives shared by all three regexes, at a whitespace code
 * point at pos. with_nl: try \s*[\r\n]+ first (LLAMA3/QWEN2).
 *   \s*[\r\n]+  : \s* takes the whole run and backtracks to the last CR/LF in
 *                 it; [\r\n]+ then matches that one char: end = last CR/LF + 1.
 *   \s+(?!\S)   : the whole run when it reaches the end of text, otherwise the
 *                 run minus its last code point (the lookahead then sees
 *                 whitespace), which needs a run of two or more.
 *   \s+         : the whole run. */
static size_t whitespace_alts(const tok_text *t, size_t pos, int with_nl)
{
    size_t e = pos, last_start = pos, nl_end = 0, k = 0;
    while (e < t->len) {
        size_t n;
        if (cls_at(t, e, &n, NULL) != VKM_CP_SPACE) break;
        if (is_crlf(t->s[e])) nl_end = e + 1;
        last_start = e;
        e += n;
        k++;
    }
    if (with_nl && nl_end) return nl_end;
    if (e == t->len) return e;
    if (k >= 2) return last_start;
    return e;
}

/* LLAMA3 (max_digits 3) and QWEN2 (max_digits 1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t next_llama3(const tok_text *t, size_t pos, unsigned max_digits)
{
    size_t n0;
    uint32_t cp0;
    unsigned c0 = cls_at(t, pos, &n0, &cp0);
    /* 1: contractions, ASCII case-insensitive */
    if (t->s[pos] == '\'') {
        size_t e = contraction(t, pos, 1);
        if (e) return e;
    }
    /* 2: [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c0 == VKM_CP_LETTER) return run_of(t, pos, VKM_CP_LETTER);
    if (c0 != VKM_CP_NUMBER && !is_crlf(t->s[pos]) && pos + n0 < t->len) {
        size_t n1;
        if (cls_at(t, pos + n0, &n1, NULL) == VKM_CP_LETTER) return run_of(t, pos + n0, VKM_CP_LETTER);
    }
    /* 3: \p{N}{1,3} (QWEN2: \p{N}) */
    if (c0 == VKM_CP_NUMBER) return run_of_max(t, pos, VKM_CP_NUMBER, max_digits);
    /* 4:  ?[^\s\p{L}\p{N}]+[\r\n]*  */
    {
        size_t p = pos;
        if (t->s[pos] == ' ' && pos + 1 < t->len) p = pos + 1;
        size_t n1;
        if (p < t->len && cls_at(t, p, &n1, NULL) == CLS_OTHER) {
            size_t e = run_of(t, p, CLS_OTHER);
            while (e < t->len && is_crlf(t->s[e])) e++;
            return e;
        }
    }
    /* 5-7: whitespace */
    if (c0 == VKM_CP_SPACE) return whitespace_alts(t, pos, 1);
    return pos + n0; /* unreachable: every code point has one of the classes above */
}

/* GPT2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t next_gpt2(const tok_text *t, size_t pos)
{
    size_t n0;
    unsigned c0 = cls_at(t, pos, &n0, NULL);
    if (t->s[pos] == '\'') {
        size_t e = contraction(t, pos, 0);
        if (e) return e;
    }
    /* " ?X+" for X = L, N, other: the optional space is taken when X follows */
    size_t p = pos;
    unsigned c = c0;
    if (t->s[pos] == ' ' && pos + 1 < t->len) {
        size_t n1;
        unsigned c1 = cls_at(t, pos + 1, &n1, NULL);
        if (c1 != VKM_CP_SPACE) { p = pos + 1; c = c1; }
    }
    if (c != VKM_CP_SPACE) return run_of(t, p, c);
    return whitespace_alts(t, pos, 0);
}

size_t vkm_tok_pretok_next(vkm_pretok pre, const char *text, size_t len, size_t pos)
{
    tok_text t = { (const unsigned char *)text, len };
    if (pos >= len) return len;
    size_t e;
    switch (pre) {
    case VKM_PRETOK_LLAMA3: e = next_llama3(&t, pos, 3); break;
    case VKM_PRETOK_QWEN2: e = next_llama3(&t, pos, 1); break;
    default: e = next_gpt2(&t, pos); break;
    }
    return e > pos ? e : pos + 1;
}
