/* Vocabularies for the tokenizer fuzzer:
 *   spm-260k        stories260K's (the shipped asset): scores, byte fallback
 *   spm-260k-nobyte the same without its <0xXX> tokens: what it cannot spell is <unk>
 *   spm-merges      HF-style: U+2581-escaped words, merges by rank, byte tokens; trained here
 *   bpe-gpt2        GPT-2 byte-level BPE trained here, with control and user-defined tokens
 *   bpe-llama3      the same with the LLAMA3 pre-tokenizer (ignore_merges, add_bos)
 *   bpe-qwen2       the same with the QWEN2 pre-tokenizer */
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocabs.h"
#include "gguf/gguf.h"
#include "model/model_meta.h"
#include "fuzz.h"

const char vkm_fuzz_sample_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. "
    "One day, she saw a big, red ball in the park. \"Can I play with it?\" she asked her mom. Her mom said yes! "
    "Lily ran and ran and ran. They're happy; it's what we'll do, isn't it? I'd say so. "
    "The caf\xc3\xa9 served na\xc3\xafve cr\xc3\xaapes. \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae "
    "\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88 and \xe4\xb8\xad\xe6\x96\x87 too. "
    "Numbers: 12345, 3.14159, 2024-01-01, 1000000. Emoji \xf0\x9f\x98\x80\xf0\x9f\x8e\x89 and tabs\tand\nnew lines\n\n"
    "    indented code(x) { return x + 1; } // comment\r\n";

/* ------------------------------------------------------------------ BPE training */

typedef struct {
    char **sym;   /* symbols of the word (malloc'ed strings) */
    uint32_t n;
} word;

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) abort();
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static void push(char ***v, uint32_t *n, char *s)
{
    *v = realloc(*v, (*n + 1) * sizeof **v);
    if (!*v) abort();
    (*v)[(*n)++] = s;
}

/* the UTF-8 of GPT-2's code point for byte b */
static size_t byte_char(unsigned char b, char *u)
{
    uint32_t cp = vkm_tok_byte_to_cp(b);
    if (cp < 0x80) { u[0] = (char)cp; return 1; }
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* word text (already escaped or mapped) -> its characters as symbols */
static void add_word(word **ws, uint32_t *nw, const char *s, size_t n)
{
    *ws = realloc(*ws, (*nw + 1) * sizeof **ws);
    if (!*ws) abort();
    word *w = &(*ws)[(*nw)++];
    w->sym = NULL;
    w->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = vkm_tok_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        push(&w->sym, &w->n, dup_n(s + i, k));
        i += k;
    }
}

static void split_words(const char *text, int spm, word **ws, uint32_t *nw)
{
    size_t len = strlen(text);
    char *buf = malloc(4 * len + 8);
    if (!buf) abort();
    if (spm) {
        size_t i = 0;
        while (i < len) {
            size_t j = i;
            while (j < len && text[j] != ' ') j++;
            size_t w = 0;
            memcpy(buf, "\xe2\x96\x81", 3), w = 3;
            memcpy(buf + w, text + i, j - i), w += j - i;
            add_word(ws, nw, buf, w);
            i = j + 1;
        }
    } else {
        size_t pos = 0;
        while (pos < len) {
            size_t end = vkm_tok_pretok_next(VKM_PRETOK_GPT2, text, len, pos);
            size_t w = 0;
            for (size_t i = pos; i < end; i++) w += byte_char((unsigned char)text[i], buf + w);
            add_word(ws, nw, buf, w);
            pos = end;
        }
    }
    free(buf);
}

static int has(char **v, uint32_t n, const char *s)
{
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(v[i], s)) return 1;
    return 0;
}

void vkm_fuzz_bpe_train(const char *text, int spm, uint32_t max_merges, vkm_fuzz_bpe *out)
{
    memset(out, 0, sizeof *out);
    word *ws = NULL;
    uint32_t nw = 0;
    split_words(text, spm, &ws, &nw);
    for (uint32_t i = 0; i < nw; i++)
        for (uint32_t k = 0; k < ws[i].n; k++)
            if (!has(out->chars, out->n_chars, ws[i].sym[k])) push(&out->chars, &out->n_chars, dup_n(ws[i].sym[k], strlen(ws[i].sym[k])));
    while (out->n_merges < max_merges) {
        /* the most frequent adjacent pair (first seen wins ties) */
        char **pairs = NULL;
        uint32_t np = 0, *cnt = NULL;
        for (uint32_t i = 0; i < nw; i++) {
            for (uint32_t k = 0; k + 1 < ws[i].n; k++) {
                size_t la = strlen(ws[i].sym[k]), lb = strlen(ws[i].sym[k + 1]);
                char *p = malloc(la + lb + 2);
                if (!p) abort();
                memcpy(p, ws[i].sym[k], la);
                p[la] = ' ';
                memcpy(p + la + 1, ws[i].sym[k + 1], lb + 1);
                uint32_t j = 0;
                while (j < np && strcmp(pairs[j], p)) j++;
                if (j < np) {
                    cnt[j]++;
                    free(p);
                } else {
                    push(&pairs, &np, p);
                    cnt = realloc(cnt, np * sizeof *cnt);
                    if (!cnt) abort();
                    cnt[np - 1] = 1;
                }
            }
        }
        uint32_t best = 0;
        for (uint32_t j = 1; j < np; j++)
            if (cnt[j] > cnt[best]) best = j;
        if (np == 0 || cnt[best] < 2) {
            for (uint32_t j = 0; j < np; j++) free(pairs[j]);
            free(pairs);
            free(cnt);
            break;
        }
        char *m = pairs[best];
        char *sp = strchr(m, ' ');
        size_t la = (size_t)(sp - m);
        /* merge it everywhere */
        for (uint32_t i = 0; i < nw; i++) {
            word *w = &ws[i];
            for (uint32_t k = 0; k + 1 < w->n; k++) {
                if (strlen(w->sym[k]) == la && !memcmp(w->sym[k], m, la) && !strcmp(w->sym[k + 1], sp + 1)) {
                    size_t lb = strlen(w->sym[k + 1]);
                    char *s = malloc(la + lb + 1);
                    if (!s) abort();
                    memcpy(s, w->sym[k], la);
                    memcpy(s + la, w->sym[k + 1], lb + 1);
                    free(w->sym[k]);
                    free(w->sym[k + 1]);
                    w->sym[k] = s;
                    memmove(&w->sym[k + 1], &w->sym[k + 2], (w->n - k - 2) * sizeof *w->sym);
                    w->n--;
                }
            }
        }
        char *made = malloc(strlen(m));
        if (!made) abort();
        memcpy(made, m, la);
        strcpy(made + la, sp + 1);
        uint32_t k = out->n_merges;
        push(&out->merges, &k, m);
        k = out->n_merges;
        push(&out->merged, &k, made);
        out->n_merges = k;
        for (uint32_t j = 0; j < np; j++)
            if (j != best) free(pairs[j]);
        free(pairs);
        free(cnt);
    }
    for (uint32_t i = 0; i < nw; i++) {
        for (uint32_t k = 0; k < ws[i].n; k++) free(ws[i].sym[k]);
        free(ws[i].sym);
    }
    free(ws);
}

void vkm_fuzz_bpe_free(vkm_fuzz_bpe *b)
{
    for (uint32_t i = 0; i < b->n_chars; i++) free(b->chars[i]);
    for (uint32_t i = 0; i < b->n_merges; i++) {
        free(b->merges[i]);
        free(b->merged[i]);
    }
    free(b->chars);
    free(b->merges);
    free(b->merged);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ the vocabularies */

typedef struct {
    char **text;
    int32_t *type;
    uint32_t n;
} toklist;

static void add_tok(toklist *l, const char *s, int32_t type)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (!strcmp(l->text[i], s)) return;
    l->text = realloc(l->text, (l->n + 1) * sizeof *l->text);
    l->type = realloc(l->type, (l->n + 1) * sizeof *l->type);
    if (!l->text || !l->type) abort();
    l->text[l->n] = dup_n(s, strlen(s));
    l->type[l->n++] = type;
}

static void toklist_free(toklist *l)
{
    for (uint32_t i = 0; i < l->n; i++) free(l->text[i]);
    free(l->text);
    free(l->type);
}

static int32_t find_tok(const toklist *l, const char *s)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (!strcmp(l->text[i], s)) return (int32_t)i;
    return -1;
}

static vkm_tokenizer *make(const toklist *l, const vkm_fuzz_bpe *b, vkm_vocab_type type, vkm_pretok pre)
{
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = type;
    in.pre = pre;
    in.n_tokens = l->n;
    in.tokens = (const char *const *)l->text;
    in.token_types = l->type;
    in.n_merges = b->n_merges;
    in.merges = (const char *const *)b->merges;
    if (type == VKM_VOCAB_SPM) {
        in.unk_id = find_tok(l, "<unk>");
        in.bos_id = find_tok(l, "<s>");
        in.eos_id = find_tok(l, "</s>");
    } else {
        in.bos_id = find_tok(l, "<|begin_of_text|>");
        in.eos_id = find_tok(l, "<|endoftext|>");
        in.eot_id = find_tok(l, "<|im_end|>");
    }
    vkm_tokenizer *t = NULL;
    char err[256];
    if (vkm_tokenizer_create(&in, &t, err, sizeof err) != VKMIX_OK) {
        fprintf(stderr, "fuzz vocabulary: %s\n", err);
        return NULL;
    }
    return t;
}

static vkm_tokenizer *spm_merges_vocab(void)
{
    vkm_fuzz_bpe b;
    vkm_fuzz_bpe_train(vkm_fuzz_sample_text, 1, 200, &b);
    toklist l = {0};
    add_tok(&l, "<unk>", VKM_TOKTYPE_UNKNOWN);
    add_tok(&l, "<s>", VKM_TOKTYPE_CONTROL);
    add_tok(&l, "</s>", VKM_TOKTYPE_CONTROL);
    for (unsigned c = 0; c < 256; c++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", c);
        add_tok(&l, hex, VKM_TOKTYPE_BYTE);
    }
    for (uint32_t i = 0; i < b.n_chars; i++) add_tok(&l, b.chars[i], VKM_TOKTYPE_NORMAL);
    for (uint32_t i = 0; i < b.n_merges; i++) add_tok(&l, b.merged[i], VKM_TOKTYPE_NORMAL);
    vkm_tokenizer *t = make(&l, &b, VKM_VOCAB_SPM, VKM_PRETOK_DEFAULT);
    toklist_free(&l);
    vkm_fuzz_bpe_free(&b);
    return t;
}

static vkm_tokenizer *bpe_vocab(vkm_pretok pre)
{
    vkm_fuzz_bpe b;
    vkm_fuzz_bpe_train(vkm_fuzz_sample_text, 0, 300, &b);
    toklist l = {0};
    for (unsigned c = 0; c < 256; c++) {
        char u[4] = {0};
        byte_char((unsigned char)c, u);
        add_tok(&l, u, VKM_TOKTYPE_NORMAL);
    }
    for (uint32_t i = 0; i < b.n_merges; i++) add_tok(&l, b.merged[i], VKM_TOKTYPE_NORMAL);
    add_tok(&l, "<|endoftext|>", VKM_TOKTYPE_CONTROL);
    add_tok(&l, "<|begin_of_text|>", VKM_TOKTYPE_CONTROL);
    add_tok(&l, "<|im_start|>", VKM_TOKTYPE_CONTROL);
    add_tok(&l, "<|im_end|>", VKM_TOKTYPE_CONTROL);
    add_tok(&l, "<|im_end|>x", VKM_TOKTYPE_CONTROL); /* a longer special sharing a prefix */
    add_tok(&l, "<tool>", VKM_TOKTYPE_USER_DEFINED);
    add_tok(&l, " Lily", VKM_TOKTYPE_USER_DEFINED);   /* user-defined text that plain text contains */
    vkm_tokenizer *t = make(&l, &b, VKM_VOCAB_BPE, pre);
    toklist_free(&l);
    vkm_fuzz_bpe_free(&b);
    return t;
}

/* stories260K's vocabulary; without_bytes: its byte tokens dropped */
static vkm_tokenizer *asset_vocab(int without_bytes)
{
    vkm_gguf *g = NULL;
    char err[512];
    if (vkm_gguf_open(vkm_fuzz_asset_path(), &g, err, sizeof err) != VKMIX_OK) {
        fprintf(stderr, "fuzz vocabulary: %s\n", err);
        return NULL;
    }
    vkm_tokenizer *t = NULL;
    if (!without_bytes) {
        if (vkm_model_vocab_read(g, 512, &t, err, sizeof err) != VKMIX_OK) fprintf(stderr, "fuzz vocabulary: %s\n", err);
        vkm_gguf_close(g);
        return t;
    }
    vkm_gguf_array toks, scores;
    if (vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &toks, NULL, 0) == VKMIX_OK &&
        vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &scores, NULL, 0) == VKMIX_OK) {
        uint32_t n = 0;
        const char **s = calloc(toks.count, sizeof *s);
        uint32_t *len = calloc(toks.count, sizeof *len);
        float *sc = calloc(toks.count, sizeof *sc);
        for (uint64_t i = 0; s && len && sc && i < toks.count; i++) {
            size_t l;
            if (vkm_gguf_arr_str(&toks, i, &s[n], &l) != VKMIX_OK) continue;
            if (l == 6 && !memcmp(s[n], "<0x", 3)) continue;
            len[n] = (uint32_t)l;
            (void)vkm_gguf_arr_f32(&scores, i, &sc[n]);
            n++;
        }
        vkm_vocab_init in;
        vkm_vocab_init_defaults(&in);
        in.type = VKM_VOCAB_SPM;
        in.n_tokens = n;
        in.tokens = s;
        in.token_lens = len;
        in.scores = sc;
        in.unk_id = 0;
        in.bos_id = 1;
        in.eos_id = 2;
        if (vkm_tokenizer_create(&in, &t, err, sizeof err) != VKMIX_OK) fprintf(stderr, "fuzz vocabulary: %s\n", err);
        free(s);
        free(len);
        free(sc);
    }
    vkm_gguf_close(g);
    return t;
}

static vkm_fuzz_vocab g_vocabs[6];
static int g_built = 0;

static void free_vocabs(void)
{
    for (int i = 0; i < 6; i++) vkm_tokenizer_free(g_vocabs[i].tok);
}

const vkm_fuzz_vocab *vkm_fuzz_vocabs(int *n)
{
    if (!g_built) {
        g_built = 1;
        g_vocabs[0] = (vkm_fuzz_vocab){"spm-260k", asset_vocab(0), 1, 1, VKM_DETOK_STRIP_START};
        g_vocabs[1] = (vkm_fuzz_vocab){"spm-260k-nobyte", asset_vocab(1), 1, 0, VKM_DETOK_SPECIAL};
        g_vocabs[2] = (vkm_fuzz_vocab){"spm-merges", spm_merges_vocab(), 1, 1, VKM_DETOK_STRIP_START};
        g_vocabs[3] = (vkm_fuzz_vocab){"bpe-gpt2", bpe_vocab(VKM_PRETOK_GPT2), 0, 1, VKM_DETOK_SPECIAL};
        g_vocabs[4] = (vkm_fuzz_vocab){"bpe-llama3", bpe_vocab(VKM_PRETOK_LLAMA3), 0, 1, VKM_DETOK_SPECIAL};
        g_vocabs[5] = (vkm_fuzz_vocab){"bpe-qwen2", bpe_vocab(VKM_PRETOK_QWEN2), 0, 1, VKM_DETOK_SPECIAL};
        atexit(free_vocabs);
    }
    *n = 6;
    return g_vocabs;
}
