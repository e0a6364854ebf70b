/* Streaming detokenizer tests: the stories260K greedy output, characters split
 * across byte tokens, U+FFFD for invalid sequences (Unicode's reference example
 * for maximal subparts), flags, reset, bad ids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/tokenizer.h"

/* ---------------------------------------------------------------- vocabularies */

typedef struct {
    uint32_t n;
    char **tok;
    uint32_t *len;
    float *score;
    int32_t *type;
} vocab_buf;

static void vocab_free(vocab_buf *v)
{
    if (v->tok)
        for (uint32_t i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->score);
    free(v->type);
    memset(v, 0, sizeof *v);
}

static int vocab_alloc(vocab_buf *v, uint32_t n)
{
    v->n = n;
    v->tok = calloc(n, sizeof *v->tok);
    v->len = calloc(n, sizeof *v->len);
    v->score = calloc(n, sizeof *v->score);
    v->type = calloc(n, sizeof *v->type);
    return v->tok && v->len && v->score && v->type;
}

static void vocab_set(vocab_buf *v, uint32_t i, const char *s, size_t n)
{
    v->tok[i] = malloc(n + 1);
    memcpy(v->tok[i], s, n);
    v->tok[i][n] = 0;
    v->len[i] = (uint32_t)n;
}

/* llama2.c tok512.bin as llama.cpp's GGUF has it (see test_tokenizer.c) */
static int load_tok512(const char *path, vocab_buf *v)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int32_t maxlen;
    if (fread(&maxlen, 4, 1, f) != 1 || !vocab_alloc(v, 512)) { fclose(f); return 0; }
    for (uint32_t i = 0; i < 512; i++) {
        float sc;
        int32_t l;
        char raw[256], conv[768];
        if (fread(&sc, 4, 1, f) != 1 || fread(&l, 4, 1, f) != 1 || l < 0 || l > 255 ||
            fread(raw, 1, (size_t)l, f) != (size_t)l) {
            fclose(f);
            return 0;
        }
        size_t w = 0;
        for (int32_t j = 0; j < l; j++) {
            if (raw[j] == ' ') { memcpy(conv + w, "\xe2\x96\x81", 3); w += 3; }
            else conv[w++] = raw[j];
        }
        if (i == 1) { strcpy(conv, "<s>"); w = 3; }
        if (i == 2) { strcpy(conv, "</s>"); w = 4; }
        vocab_set(v, i, conv, w);
        v->score[i] = sc;
        v->type[i] = i == 0 ? 2 : i <= 2 ? 3 : i <= 258 ? 6 : 1;
    }
    fclose(f);
    return 1;
}

/* ---------------------------------------------------------------- stream helpers */

typedef struct {
    char buf[1 << 14];
    size_t n;
    int chunks_valid;    /* every chunk was complete, valid UTF-8 */
} sink;

static int valid_utf8(const char *s, size_t n)
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

static void sink_add(sink *s, const char *p, size_t n)
{
    if (!valid_utf8(p, n)) s->chunks_valid = 0;
    if (s->n + n < sizeof s->buf) {
        memcpy(s->buf + s->n, p, n);
        s->n += n;
    }
    s->buf[s->n] = 0;
}

/* push ids one by one (then flush) into a fresh sink; returns bytes of the last push */
static size_t stream(vkm_detok *d, const int32_t *ids, size_t n, sink *s, int flush)
{
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t k;
        vkmix_error e = vkm_detok_push(d, ids[i], &p, &k);
        CHECK(e == VKMIX_OK, "push %d failed", (int)ids[i]);
        if (e == VKMIX_OK) sink_add(s, p, k);
        last = k;
    }
    if (flush) {
        const char *p;
        size_t k;
        CHECK(vkm_detok_flush(d, &p, &k) == VKMIX_OK, "flush");
        sink_add(s, p, k);
    }
    return last;
}

static void sink_init(sink *s)
{
    s->n = 0;
    s->buf[0] = 0;
    s->chunks_valid = 1;
}

/* ---------------------------------------------------------------- SPM: stories260K */

static const int32_t k_greedy[] = { 1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                                    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385 };
static const char k_greedy_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One";

static vkm_tokenizer *make_spm(const vocab_buf *v)
{
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_SPM;
    in.n_tokens = v->n;
    in.tokens = (const char *const *)v->tok;
    in.token_lens = v->len;
    in.scores = v->score;
    in.token_types = v->type;
    in.bos_id = 1;
    in.eos_id = 2;
    in.unk_id = 0;
    vkm_tokenizer *t = NULL;
    char err[256] = "";
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_OK, "create: %s", err);
    return t;
}

static int byte_id(unsigned char b) { return 3 + b; } /* tok512: <0xXX> = 3 + XX */

static int test_spm(void)
{
    int generated = 0;
    char *path = tu_tok512(&generated); /* ../shared's, or written from the shipped GGUF */
    if (!path) return 0;
    vocab_buf v = { 0 };
    int ok = load_tok512(path, &v);
    if (generated) remove(path);
    free(path);
    CHECK(ok, "cannot read tok512.bin");
    vkm_tokenizer *t = ok ? make_spm(&v) : NULL;
    if (!t) { vocab_free(&v); return 1; }
    vkm_detok *d = NULL;
    CHECK(vkm_detok_create(t, 0, &d) == VKMIX_OK && d, "detok create");
    if (!d) { vkm_tokenizer_free(t); vocab_free(&v); return 1; }
    static sink s;
    const size_t ng = sizeof k_greedy / sizeof k_greedy[0];

    /* the model's greedy output, streamed after BOS */
    sink_init(&s);
    stream(d, k_greedy, ng, &s, 1);
    CHECK(strcmp(s.buf, k_greedy_text) == 0, "streamed greedy text: \"%s\"", s.buf);
    CHECK(s.chunks_valid, "chunks are valid UTF-8");

    /* without BOS (a continuation) the space stays; STRIP_START removes it */
    vkm_detok_reset(d);
    sink_init(&s);
    stream(d, k_greedy + 1, ng - 1, &s, 1);
    CHECK(s.buf[0] == ' ' && strcmp(s.buf + 1, k_greedy_text) == 0, "continuation keeps its space: \"%s\"", s.buf);
    vkm_detok *d2 = NULL;
    CHECK(vkm_detok_create(t, VKM_DETOK_STRIP_START, &d2) == VKMIX_OK, "create STRIP_START");
    if (d2) {
        sink_init(&s);
        stream(d2, k_greedy + 1, ng - 1, &s, 1);
        CHECK(strcmp(s.buf, k_greedy_text) == 0, "STRIP_START: \"%s\"", s.buf);
        vkm_detok_free(d2);
    }
    CHECK(vkm_detok_create(t, VKM_DETOK_KEEP_SPACE | VKM_DETOK_SPECIAL, &d2) == VKMIX_OK, "create KEEP|SPECIAL");
    if (d2) {
        sink_init(&s);
        stream(d2, k_greedy, ng, &s, 1);
        CHECK(strncmp(s.buf, "<s> Once upon", 13) == 0, "KEEP_SPACE|SPECIAL: \"%.20s\"", s.buf);
        vkm_detok_free(d2);
    }

    /* stream = whole-sequence decode for the encodings of several strings,
     * including characters split over byte tokens */
    static const char *const texts[] = {
        "Once upon a time \xf0\x9f\x98\x80 there was a \xe6\x97\xa5\xe6\x9c\xac cat.",
        "I \xe2\x9d\xa4\xef\xb8\x8f \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd emoji, caf\xc3\xa9, \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82!",
        "\xf0\x9f\x8e\x89", "plain",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int32_t ids[512];
        size_t n = 0;
        CHECK(vkm_tokenize(t, texts[i], strlen(texts[i]), 1, 0, ids, 512, &n) == VKMIX_OK, "tokenize");
        vkm_detok_reset(d);
        sink_init(&s);
        stream(d, ids, n, &s, 1);
        CHECK(strcmp(s.buf, texts[i]) == 0, "stream of \"%s\" gave \"%s\"", texts[i], s.buf);
        CHECK(s.chunks_valid, "chunks valid for \"%s\"", texts[i]);
    }

    /* an emoji over four byte tokens comes out whole with the last one */
    {
        const unsigned char em[4] = { 0xf0, 0x9f, 0x98, 0x80 };
        vkm_detok_reset(d);
        sink_init(&s);
        for (int i = 0; i < 4; i++) {
            const char *p;
            size_t k;
            CHECK(vkm_detok_push(d, byte_id(em[i]), &p, &k) == VKMIX_OK, "push byte");
            CHECK(k == (i == 3 ? 4u : 0u), "byte %d gives %zu bytes", i, k);
            if (i == 3) CHECK(k == 4 && memcmp(p, em, 4) == 0, "the emoji");
        }
    }

    /* invalid sequences become U+FFFD, output never stalls */
    {
        const char *p;
        size_t k;
        vkm_detok_reset(d);
        CHECK(vkm_detok_push(d, byte_id(0xe6), &p, &k) == VKMIX_OK && k == 0, "held lead byte");
        CHECK(vkm_detok_push(d, 403, &p, &k) == VKMIX_OK && k == 8 && memcmp(p, "\xef\xbf\xbd Once", 8) == 0,
              "lead byte + ▁Once -> U+FFFD + \" Once\" (%zu)", k);
        CHECK(vkm_detok_push(d, byte_id(0xff), &p, &k) == VKMIX_OK && k == 3 && memcmp(p, "\xef\xbf\xbd", 3) == 0,
              "0xFF -> U+FFFD at once");
        CHECK(vkm_detok_push(d, byte_id(0xf0), &p, &k) == VKMIX_OK && k == 0, "held 1");
        CHECK(vkm_detok_push(d, byte_id(0x9f), &p, &k) == VKMIX_OK && k == 0, "held 2");
        CHECK(vkm_detok_flush(d, &p, &k) == VKMIX_OK && k == 3 && memcmp(p, "\xef\xbf\xbd", 3) == 0,
              "flush of an incomplete tail: one U+FFFD");
        CHECK(vkm_detok_flush(d, &p, &k) == VKMIX_OK && k == 0, "second flush is empty");
        /* surrogate: ED A0 80 is three maximal subparts */
        int32_t sur[3] = { byte_id(0xed), byte_id(0xa0), byte_id(0x80) };
        sink_init(&s);
        stream(d, sur, 3, &s, 1);
        CHECK(strcmp(s.buf, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd") == 0, "surrogate -> 3 x U+FFFD");
        /* reset drops a held tail */
        CHECK(vkm_detok_push(d, byte_id(0xe6), &p, &k) == VKMIX_OK && k == 0, "held");
        vkm_detok_reset(d);
        CHECK(vkm_detok_push(d, 403, &p, &k) == VKMIX_OK && k == 5 && memcmp(p, " Once", 5) == 0, "after reset");
        /* bad ids are reported and change nothing */
        CHECK(vkm_detok_push(d, 512, &p, &k) == VKMIX_ERROR_INVALID_ARGUMENT && k == 0, "bad id");
        CHECK(vkm_detok_push(d, -1, &p, &k) == VKMIX_ERROR_INVALID_ARGUMENT && k == 0, "negative id");
        CHECK(vkm_detok_push(NULL, 3, &p, &k) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL detok");
        CHECK(vkm_detok_create(NULL, 0, &d2) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL tokenizer");
    }

    /* random id streams: the concatenated chunks are valid UTF-8 and equal the
     * whole-sequence decode whenever that is valid UTF-8 */
    {
        tu_rng r;
        tu_rng_seed(&r, 99);
        static char whole[1 << 14];
        for (int it = 0; it < 500; it++) {
            int32_t ids[40];
            size_t n = 1 + tu_rng_u32(&r) % 40;
            for (size_t i = 0; i < n; i++) {
                uint32_t x = tu_rng_u32(&r);
                /* mostly byte tokens of UTF-8 lead/continuation bytes, some text tokens */
                ids[i] = (x & 1) ? (int32_t)(259 + (x >> 8) % 253) : byte_id((unsigned char)(0x80 + (x >> 8) % 0x78));
            }
            vkm_detok_reset(d);
            sink_init(&s);
            stream(d, ids, n, &s, 1);
            CHECK(s.chunks_valid && valid_utf8(s.buf, s.n), "random stream output is valid UTF-8");
            size_t wn = 0;
            CHECK(vkm_detokenize(t, ids, n, 0, whole, sizeof whole, &wn) == VKMIX_OK, "detokenize");
            if (valid_utf8(whole, wn)) CHECK(wn == s.n && memcmp(whole, s.buf, wn) == 0, "stream = decode");
        }
    }
    vkm_detok_free(d);
    vkm_tokenizer_free(t);
    vocab_free(&v);
    return 1;
}

/* ---------------------------------------------------------------- BPE: byte tokens only */

static vkm_tokenizer *make_bytes_bpe(vocab_buf *v)
{
    if (!vocab_alloc(v, 258)) return NULL;
    for (unsigned i = 0; i < 256; i++) {
        uint32_t cp = vkm_tok_byte_to_cp((uint8_t)i);
        char u[2];
        size_t n;
        if (cp < 0x80) { u[0] = (char)cp; n = 1; }
        else { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
        vocab_set(v, i, u, n);
        v->type[i] = 1;
    }
    vocab_set(v, 256, "<|im_end|>", 10);
    v->type[256] = 3;
    vocab_set(v, 257, "<|im_start|>", 12);
    v->type[257] = 3;
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_BPE;
    in.pre = VKM_PRETOK_QWEN2;
    in.n_tokens = v->n;
    in.tokens = (const char *const *)v->tok;
    in.token_lens = v->len;
    in.token_types = v->type;
    in.eos_id = 256;
    in.bos_id = 257;
    vkm_tokenizer *t = NULL;
    CHECK(vkm_tokenizer_create(&in, &t, NULL, 0) == VKMIX_OK, "create bytes BPE");
    return t;
}

static void test_bpe(void)
{
    vocab_buf v = { 0 };
    vkm_tokenizer *t = make_bytes_bpe(&v);
    vkm_detok *d = NULL;
    if (!t || vkm_detok_create(t, 0, &d) != VKMIX_OK) {
        CHECK(0, "setup");
        vkm_tokenizer_free(t);
        vocab_free(&v);
        return;
    }
    static sink s;
    /* Unicode 16.0, section 3.9, table 3-8 (maximal subparts):
     * 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a FFFD FFFD FFFD b FFFD c FFFD FFFD d */
    static const unsigned char ex[] = { 0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64 };
    static const char want[] = "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd" "d";
    int32_t ids[16];
    for (size_t i = 0; i < sizeof ex; i++) ids[i] = ex[i];
    sink_init(&s);
    stream(d, ids, sizeof ex, &s, 1);
    CHECK(strcmp(s.buf, want) == 0, "Unicode table 3-8 example, one byte per push");
    CHECK(s.chunks_valid, "valid chunks");
    /* BPE never strips a leading space; BOS is not special there */
    vkm_detok_reset(d);
    sink_init(&s);
    int32_t seq[4] = { 257, ' ', 'h', 'i' };
    stream(d, seq, 4, &s, 1);
    CHECK(strcmp(s.buf, " hi") == 0, "BPE keeps the space: \"%s\"", s.buf);
    /* control tokens: nothing, or their text with VKM_DETOK_SPECIAL */
    vkm_detok_reset(d);
    sink_init(&s);
    int32_t seq2[3] = { 'o', 'k', 256 };
    stream(d, seq2, 3, &s, 1);
    CHECK(strcmp(s.buf, "ok") == 0, "control hidden: \"%s\"", s.buf);
    vkm_detok *ds = NULL;
    if (vkm_detok_create(t, VKM_DETOK_SPECIAL, &ds) == VKMIX_OK) {
        sink_init(&s);
        stream(ds, seq2, 3, &s, 1);
        CHECK(strcmp(s.buf, "ok<|im_end|>") == 0, "control shown: \"%s\"", s.buf);
        /* a control token between the halves of a character: the held bytes are
         * an invalid sequence when text follows, never reordered */
        int32_t seq3[4] = { 0xE6, 256, 0x97, 0xA5 };
        vkm_detok_reset(ds);
        sink_init(&s);
        stream(ds, seq3, 4, &s, 1);
        CHECK(strcmp(s.buf, "\xef\xbf\xbd<|im_end|>\xef\xbf\xbd\xef\xbf\xbd") == 0, "interrupted character: \"%s\"", s.buf);
        vkm_detok_free(ds);
    }
    vkm_detok_free(d);
    vkm_tokenizer_free(t);
    vocab_free(&v);
}

int main(void)
{
    test_bpe();
    int ran = test_spm();
    int rc = tu_finish("test_detok");
    if (!ran && rc == 0) {
        fprintf(stderr, "stories260K's vocabulary missing (../shared and assets/): SPM part skipped\n");
        return TEST_SKIP;
    }
    return rc;
}
