/* Tokenizer tests: SPM on the real stories260K vocabulary, an HF BPE
 * vocabulary with merges (tinystories-656k, through cJSON), and GPT-2 byte-level
 * BPE on a synthetic vocabulary, including the three hand-written pre-tokenizers
 * checked against splits made by a real regex engine (Python `regex`). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/tokenizer.h"

#define MAXT 4096

/* ---------------------------------------------------------------- helpers */

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

/* llama2.c tokenizer: int32 max_len, then per token f32 score, i32 len, bytes.
 * Converted as llama.cpp's GGUF has it: ' ' -> U+2581, <s>, </s>; types 2 unk,
 * 3 control for 1/2, 6 byte for 3..258, 1 otherwise. */
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

static vkm_tokenizer *make_spm(const vocab_buf *v, int with_types)
{
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_SPM;
    in.n_tokens = v->n;
    in.tokens = (const char *const *)v->tok;
    in.token_lens = v->len;
    in.scores = v->score;
    in.token_types = with_types ? v->type : NULL;
    in.bos_id = 1;
    in.eos_id = 2;
    in.unk_id = 0;
    vkm_tokenizer *t = NULL;
    char err[256] = "";
    vkmix_error e = vkm_tokenizer_create(&in, &t, err, sizeof err);
    CHECK(e == VKMIX_OK, "create: %s", err);
    return t;
}

static size_t enc(const vkm_tokenizer *t, const char *s, size_t len, int add_special, int parse_special,
                  int32_t *out)
{
    size_t n = 0;
    vkmix_error e = vkm_tokenize(t, s, len, add_special, parse_special, out, MAXT, &n);
    CHECK(e == VKMIX_OK, "tokenize failed: %s", vkmix_strerror(e));
    return e == VKMIX_OK ? n : 0;
}

/* decode into a static buffer (NUL-terminated); *n gets the length */
static const char *dec(const vkm_tokenizer *t, const int32_t *ids, size_t n_ids, unsigned flags, size_t *n)
{
    static char buf[1 << 16];
    size_t k = 0;
    vkmix_error e = vkm_detokenize(t, ids, n_ids, flags, buf, sizeof buf - 1, &k);
    CHECK(e == VKMIX_OK, "detokenize failed: %s", vkmix_strerror(e));
    if (e != VKMIX_OK) k = 0;
    buf[k] = 0;
    if (n) *n = k;
    return buf;
}

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

static void print_ids(const char *what, const int32_t *a, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)a[i]);
    fprintf(stderr, "\n");
}

#define CHECK_IDS(got, ngot, ...)                                                  \
    do {                                                                           \
        const int32_t exp_[] = { __VA_ARGS__ };                                    \
        size_t nexp_ = sizeof exp_ / sizeof exp_[0];                               \
        int ok_ = ids_equal(got, ngot, exp_, nexp_);                               \
        CHECK(ok_, "ids differ");                                                  \
        if (!ok_) { print_ids("expected", exp_, nexp_); print_ids("got", got, ngot); } \
    } while (0)

/* ---------------------------------------------------------------- SPM: stories260K */

static const int32_t k_greedy[] = { 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                                    401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385 };
static const char k_greedy_text[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One";

static void round_trip(const vkm_tokenizer *t, const char *s, size_t len, int add_special)
{
    static int32_t ids[MAXT];
    size_t n = enc(t, s, len, add_special, 0, ids);
    size_t k;
    /* SPM: the leading space added by the encoder goes away after BOS, or at the
     * start with VKM_DETOK_STRIP_START when there is no BOS */
    const char *d = dec(t, ids, n, add_special ? 0 : VKM_DETOK_STRIP_START, &k);
    CHECK(k == len && memcmp(d, s, len) == 0, "round trip of \"%.*s\" (%zu bytes) gave \"%s\" (%zu bytes)",
          (int)len, s, len, d, k);
}

static void test_spm(void)
{
    int generated = 0;
    char *path = tu_tok512(&generated); /* ../shared's, or written from the shipped GGUF */
    if (!path) {
        CHECK(0, "stories260K's tok512.bin: neither ../shared's nor one written from assets/");
        return;
    }
    vocab_buf v = { 0 };
    int ok = load_tok512(path, &v);
    if (generated) remove(path);
    free(path);
    CHECK(ok, "cannot read tok512.bin");
    if (!ok) { vocab_free(&v); return; }
    vkm_tokenizer *t = make_spm(&v, 1);
    if (!t) { vocab_free(&v); return; }
    static int32_t ids[MAXT];
    size_t n, k;

    CHECK(vkm_tokenizer_n_tokens(t) == 512, "n_tokens");
    CHECK(vkm_tokenizer_bos(t) == 1 && vkm_tokenizer_eos(t) == 2 && vkm_tokenizer_add_bos(t) == 1 &&
          vkm_tokenizer_add_eos(t) == 0, "special ids / defaults");
    CHECK(vkm_tokenizer_find(t, "\xe2\x96\x81Once", 7) == 403, "find ▁Once");
    CHECK(vkm_tokenizer_find(t, "nope-nope", 9) == -1, "find absent");
    CHECK(vkm_tokenizer_is_eog(t, 2) && !vkm_tokenizer_is_eog(t, 1) && !vkm_tokenizer_is_eog(t, 403), "eog");

    /* decode the model's greedy output: whole sequence after BOS */
    int32_t seq[64];
    seq[0] = 1;
    memcpy(seq + 1, k_greedy, sizeof k_greedy);
    size_t nseq = 1 + sizeof k_greedy / sizeof k_greedy[0];
    const char *d = dec(t, seq, nseq, 0, &k);
    CHECK(strcmp(d, k_greedy_text) == 0, "greedy decode: \"%s\"", d);
    d = dec(t, k_greedy, nseq - 1, 0, &k);
    CHECK(d[0] == ' ' && strcmp(d + 1, k_greedy_text) == 0, "without BOS the space stays: \"%s\"", d);
    d = dec(t, k_greedy, nseq - 1, VKM_DETOK_STRIP_START, &k);
    CHECK(strcmp(d, k_greedy_text) == 0, "STRIP_START: \"%s\"", d);
    d = dec(t, seq, nseq, VKM_DETOK_KEEP_SPACE, &k);
    CHECK(d[0] == ' ' && strcmp(d + 1, k_greedy_text) == 0, "KEEP_SPACE: \"%s\"", d);
    d = dec(t, seq, nseq, VKM_DETOK_SPECIAL, &k);
    CHECK(strncmp(d, "<s>Once upon", 12) == 0, "SPECIAL renders BOS: \"%.20s\"", d);

    /* encode: the expected ids are the model's own (and those of a reference
     * implementation of the llama.cpp algorithm) */
    const char *s1 = "Once upon a time, there was a little girl named Lily.";
    n = enc(t, s1, strlen(s1), 1, 0, ids);
    CHECK_IDS(ids, n, 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426);
    CHECK(n == 16 && memcmp(ids + 1, k_greedy, 15 * sizeof *ids) == 0, "encode = greedy prefix");
    n = enc(t, s1, strlen(s1), 0, 0, ids);
    CHECK(n == 15 && ids[0] == 403, "no BOS without add_special");
    n = enc(t, "Hello world", 11, 1, 0, ids);
    CHECK_IDS(ids, n, 1, 346, 306, 414, 263, 304, 341);
    n = enc(t, "  two  spaces", 13, 1, 0, ids);
    CHECK_IDS(ids, n, 1, 410, 410, 259, 424, 414, 410, 262, 427, 412, 331, 419);
    n = enc(t, "a\nb", 3, 1, 0, ids);
    CHECK_IDS(ids, n, 1, 261, 13, 430);

    /* byte fallback */
    n = enc(t, "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac", 8, 1, 0, ids); /* é日本 */
    CHECK_IDS(ids, n, 1, 410, 485, 3 + 0xe6, 3 + 0x97, 3 + 0xa5, 3 + 0xe6, 3 + 0x9c, 3 + 0xac);
    for (size_t i = 3; i < n; i++) CHECK(vkm_tokenizer_token_type(t, ids[i]) == VKM_TOKTYPE_BYTE, "byte token");
    d = dec(t, ids, n, 0, &k);
    CHECK(strcmp(d, "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac") == 0, "byte fallback decode: \"%s\"", d);

    /* empty input */
    n = enc(t, "", 0, 1, 0, ids);
    CHECK_IDS(ids, n, 1);
    n = enc(t, "", 0, 0, 0, ids);
    CHECK(n == 0, "empty without BOS");

    /* cap too small: the needed count comes back */
    {
        int32_t small[3];
        size_t need = 0;
        vkmix_error e = vkm_tokenize(t, s1, strlen(s1), 1, 0, small, 3, &need);
        CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && need == 16, "small cap: e=%d need=%zu", (int)e, need);
        e = vkm_tokenize(t, s1, strlen(s1), 1, 0, NULL, 0, &need);
        CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && need == 16, "NULL out: e=%d need=%zu", (int)e, need);
        e = vkm_tokenize(t, s1, strlen(s1), 1, 0, small, 3, NULL);
        CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "NULL n_out");
        e = vkm_tokenize(NULL, s1, 1, 1, 0, small, 3, &need);
        CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "NULL tokenizer");
    }

    /* special tokens in text */
    n = enc(t, "<s>hi</s>", 9, 0, 1, ids);
    CHECK(n >= 3 && ids[0] == 1 && ids[n - 1] == 2, "parse_special finds <s> and </s>");
    {
        int32_t ref[16];
        size_t nr = enc(t, "hi", 2, 0, 0, ref); /* a space prefix after a special token, as llama.cpp */
        CHECK(n == nr + 2 && memcmp(ids + 1, ref, nr * sizeof *ref) == 0, "text between specials");
    }
    n = enc(t, "<s>hi</s>", 9, 0, 0, ids);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != 1 && ids[i] != 2, "no specials without parse_special");
    d = dec(t, ids, n, VKM_DETOK_STRIP_START, &k);
    CHECK(strcmp(d, "<s>hi</s>") == 0, "special text as plain text: \"%s\"", d);
    n = enc(t, "x<unk>y", 7, 0, 1, ids); /* <unk> is matched too (llama.cpp) */
    {
        int found = 0;
        for (size_t i = 0; i < n; i++) found |= ids[i] == 0;
        CHECK(found, "parse_special matches <unk>");
    }

    /* pieces */
    char pb[64];
    vkmix_error e = vkm_token_to_piece(t, 403, pb, sizeof pb, &k);
    CHECK(e == VKMIX_OK && k == 5 && memcmp(pb, " Once", 5) == 0, "piece 403");
    e = vkm_token_to_piece(t, 3 + 'A', pb, sizeof pb, &k);
    CHECK(e == VKMIX_OK && k == 1 && pb[0] == 'A', "byte piece");
    e = vkm_token_to_piece(t, 1, pb, sizeof pb, &k);
    CHECK(e == VKMIX_OK && k == 0, "control piece is empty");
    e = vkm_token_to_piece_ex(t, 1, 1, pb, sizeof pb, &k);
    CHECK(e == VKMIX_OK && k == 3 && memcmp(pb, "<s>", 3) == 0, "control piece with special");
    e = vkm_token_to_piece(t, 0, pb, sizeof pb, &k);
    CHECK(e == VKMIX_OK && k == 0, "unk piece is empty");
    e = vkm_token_to_piece(t, 403, pb, 2, &k);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && k == 5, "piece cap too small");
    e = vkm_token_to_piece(t, 512, pb, sizeof pb, &k);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT && k == 0, "piece bad id");
    e = vkm_token_to_piece(t, -1, pb, sizeof pb, &k);
    CHECK(e == VKMIX_ERROR_INVALID_ARGUMENT, "piece negative id");
    {
        uint32_t tl = 0;
        const char *tt = vkm_tokenizer_token_text(t, 403, &tl);
        CHECK(tt && tl == 7 && strcmp(tt, "\xe2\x96\x81Once") == 0, "token text");
        CHECK(vkm_tokenizer_token_text(t, 9999, &tl) == NULL && tl == 0, "token text bad id");
        CHECK(vkm_tokenizer_token_score(t, 260) == -1.0f, "score");
    }

    /* round trips */
    static const char *const rt[] = {
        "Once upon a time, there was a little girl named Lily.",
        " leading space", "trailing space ", "  many   spaces  ", "tabs\tand\nnewlines\r\n",
        "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac", "emoji \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd!",
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xce\xb3\xce\xb5\xce\xb9\xce\xac",
        "invalid \xff\xfe bytes \x80 here \xe6\x97", "<s> looks special </s>", "x",
    };
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        round_trip(t, rt[i], strlen(rt[i]), 1);
        round_trip(t, rt[i], strlen(rt[i]), 0);
    }
    round_trip(t, "nul\0inside", 10, 1);

    /* random bytes: never fails, always round-trips */
    {
        tu_rng r;
        tu_rng_seed(&r, 260);
        char buf[200];
        for (int it = 0; it < 300; it++) {
            size_t len = tu_rng_u32(&r) % sizeof buf;
            for (size_t i = 0; i < len; i++) {
                uint32_t x = tu_rng_u32(&r);
                buf[i] = (x & 3) ? "ab cde\n .\xc3\xa9"[x % 12] : (char)(x >> 8);
            }
            round_trip(t, buf, len, 1);
        }
    }

    /* the same vocabulary with types derived (token_types NULL) */
    vkm_tokenizer *t2 = make_spm(&v, 0);
    if (t2) {
        n = enc(t2, "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac Once", 12, 1, 0, ids);
        int32_t ref[64];
        size_t nr = enc(t, "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac Once", 12, 1, 0, ref);
        CHECK(ids_equal(ids, n, ref, nr), "derived types encode the same");
        CHECK(vkm_tokenizer_token_type(t2, 3 + 0x41) == VKM_TOKTYPE_BYTE &&
              vkm_tokenizer_token_type(t2, 1) == VKM_TOKTYPE_CONTROL &&
              vkm_tokenizer_token_type(t2, 0) == VKM_TOKTYPE_UNKNOWN, "derived types");
        vkm_tokenizer_free(t2);
    }

    /* no space prefix */
    {
        vkm_vocab_init in;
        vkm_vocab_init_defaults(&in);
        in.type = VKM_VOCAB_SPM;
        in.n_tokens = v.n;
        in.tokens = (const char *const *)v.tok;
        in.token_lens = v.len;
        in.scores = v.score;
        in.token_types = v.type;
        in.bos_id = 1;
        in.eos_id = 2;
        in.unk_id = 0;
        in.add_space_prefix = 0;
        in.add_eos = 1;
        vkm_tokenizer *t3 = NULL;
        CHECK(vkm_tokenizer_create(&in, &t3, NULL, 0) == VKMIX_OK, "create without space prefix");
        if (t3) {
            n = enc(t3, "Once", 4, 1, 0, ids);
            CHECK(n >= 3 && ids[0] == 1 && ids[1] != 403 && ids[n - 1] == 2, "no prefix: not ▁Once, EOS last");
            d = dec(t3, ids, n, 0, &k);
            CHECK(strcmp(d, "Once") == 0, "no prefix decode \"%s\"", d);
            vkm_tokenizer_free(t3);
        }
    }
    vkm_tokenizer_free(t);
    vocab_free(&v);
}

/* ---------------------------------------------------------------- HF BPE with metaspace: tinystories-656k */

static void test_hf_bpe(void)
{
    char *path = tu_shared_path("models/tinystories-656k/hf/tokenizer.json");
    if (!path) {
        fprintf(stderr, "tinystories-656k tokenizer.json missing: skipped\n");
        return;
    }
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f) { CHECK(0, "open tokenizer.json"); return; }
    fseek(f, 0, SEEK_END);
    long fl = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *js = malloc((size_t)fl + 1);
    size_t got = fread(js, 1, (size_t)fl, f);
    fclose(f);
    js[got] = 0;
    cJSON *root = cJSON_Parse(js);
    free(js);
    if (!root) { CHECK(0, "parse tokenizer.json"); return; }
    cJSON *model = cJSON_GetObjectItem(root, "model");
    cJSON *vocab = cJSON_GetObjectItem(model, "vocab");
    cJSON *merges = cJSON_GetObjectItem(model, "merges");
    int nv = cJSON_GetArraySize(vocab), nm = cJSON_GetArraySize(merges);
    CHECK(nv == 2048 && nm > 1000, "vocab %d merges %d", nv, nm);
    vocab_buf v = { 0 };
    vocab_alloc(&v, (uint32_t)nv);
    cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int id = it->valueint;
        if (id >= 0 && id < nv) {
            vocab_set(&v, (uint32_t)id, it->string, strlen(it->string));
            v.type[id] = id == 0 ? 2 : id <= 2 ? 3 : 1;
        }
    }
    char **mg = calloc((size_t)nm, sizeof *mg);
    int im = 0;
    cJSON_ArrayForEach(it, merges) {
        if (cJSON_IsString(it)) {
            mg[im] = malloc(strlen(it->valuestring) + 1);
            strcpy(mg[im], it->valuestring);
        } else { /* newer files: ["a", "b"] */
            const char *a = cJSON_GetArrayItem(it, 0)->valuestring, *b = cJSON_GetArrayItem(it, 1)->valuestring;
            mg[im] = malloc(strlen(a) + strlen(b) + 2);
            sprintf(mg[im], "%s %s", a, b);
        }
        im++;
    }
    cJSON_Delete(root);
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_SPM;
    in.n_tokens = v.n;
    in.tokens = (const char *const *)v.tok;
    in.token_lens = v.len;
    in.token_types = v.type;
    in.n_merges = (uint32_t)nm;
    in.merges = (const char *const *)mg;
    in.bos_id = 1;
    in.eos_id = 2;
    in.unk_id = 0;
    vkm_tokenizer *t = NULL;
    char err[256] = "";
    vkmix_error e = vkm_tokenizer_create(&in, &t, err, sizeof err);
    CHECK(e == VKMIX_OK, "create: %s", err);
    for (int i = 0; i < nm; i++) free(mg[i]);
    free(mg);
    if (t) {
        static const int32_t greedy[] = { 147, 201, 282, 215, 286, 598, 1662, 356, 499,
                                          826, 1363, 1145, 1652, 615, 242, 1482, 951, 628 };
        size_t k;
        int32_t seq[32];
        seq[0] = 1;
        memcpy(seq + 1, greedy, sizeof greedy);
        const char *d = dec(t, seq, 1 + sizeof greedy / sizeof greedy[0], 0, &k);
        const char *want = "Once upon a time, there was a little girl named Lily. She had a toy car that she "
                           "loved very much.";
        CHECK(strncmp(d, want, strlen(want)) == 0, "tinystories greedy decode: \"%s\"", d);
        CHECK(vkm_tokenizer_is_eog(t, 2), "eos is eog");

        /* encoding by merge rank; expected ids from a reference HF-BPE implementation */
        static int32_t ids[MAXT];
        const char *s1 = "Once upon a time, there was a little girl named Lily.";
        size_t n = enc(t, s1, strlen(s1), 0, 0, ids);
        CHECK_IDS(ids, n, 80, 147, 201, 282, 215, 286, 598, 629, 10);
        const char *s2 = "The cat sat on the mat.\nIt was happy!";
        n = enc(t, s2, strlen(s2), 1, 0, ids);
        CHECK_IDS(ids, n, 1, 80, 247, 411, 1214, 337, 175, 72, 122, 1044, 1907, 4);
        d = dec(t, ids, n, 0, &k);
        CHECK(strcmp(d, s2) == 0, "tinystories round trip: \"%s\"", d);
        const char *s3 = "Zo\xc3\xab's caf\xc3\xa9 is big."; /* ë and é are not in the vocabulary: unk */
        n = enc(t, s3, strlen(s3), 0, 0, ids);
        CHECK_IDS(ids, n, 80, 51, 67, 0, 228, 295, 58, 0, 80, 124, 428, 10);
        /* random text: encodes without error; text made only of vocabulary
         * characters round-trips */
        tu_rng r;
        tu_rng_seed(&r, 656);
        char buf[300];
        for (int itr = 0; itr < 200; itr++) {
            size_t len = tu_rng_u32(&r) % sizeof buf;
            int plain = itr & 1;
            for (size_t i = 0; i < len; i++) {
                uint32_t x = tu_rng_u32(&r);
                buf[i] = plain ? "abcdefghij lmnopqrst uvwxyz.,!\nThe "[x % 35] : (char)(x >> 8);
            }
            vkmix_error er = vkm_tokenize(t, buf, len, 1, 1, ids, MAXT, &n);
            CHECK(er == VKMIX_OK, "random text encodes");
            if (plain && er == VKMIX_OK) {
                d = dec(t, ids, n, 0, &k);
                CHECK(k == len && memcmp(d, buf, len) == 0, "tinystories round trip of plain text");
            }
        }
        vkm_tokenizer_free(t);
    }
    vocab_free(&v);
}

/* ---------------------------------------------------------------- pre-tokenizers */

struct pretok_case {
    vkm_pretok pre;
    const char *text;
    const char *pieces[32];
};

/* Generated with Python's `regex` module (Unicode 17) from the three patterns:
 *   LLAMA3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   QWEN2  the same with \p{N}
 *   GPT2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (regex.findall(pattern, text)). */
static const struct pretok_case k_pretok_cases[] = {
    { VKM_PRETOK_LLAMA3, "I'm here, they'RE done. Don't!",
      { "I", "'m", " here", ",", " they", "'RE", " done", ".", " Don", "'t", "!", NULL } },
    { VKM_PRETOK_LLAMA3, "12345 apples",
      { "123", "45", " apples", NULL } },
    { VKM_PRETOK_LLAMA3, "Hello!!! ...  world??\n\nNext",
      { "Hello", "!!!", " ...", " ", " world", "??\n\n", "Next", NULL } },
    { VKM_PRETOK_LLAMA3, "line1\r\nline2\n \n  indented",
      { "line", "1", "\r\n", "line", "2", "\n \n", " ", " indented", NULL } },
    { VKM_PRETOK_LLAMA3, "a   b",
      { "a", "  ", " b", NULL } },
    { VKM_PRETOK_LLAMA3, "  leading and trailing   ",
      { " ", " leading", " and", " trailing", "   ", NULL } },
    { VKM_PRETOK_LLAMA3, "Привет мир, Γειά σου! שלום עולם مرحبا नमस्ते สวัสดี 안녕하세요 こんにちは 日本語 ＡＢＣ１２３",
      { "Привет", " мир", ",", " Γειά", " σου", "!", " שלום", " עולם", " مرحبا", " नमस", "्त", "े", " สว", "ัสด", "ี", " 안녕하세요", " こんにちは", " 日本語", " ＡＢＣ", "１２３", NULL } },
    { VKM_PRETOK_LLAMA3, "emoji 😀👍🏽 test 🎉!",
      { "emoji", " 😀👍🏽", " test", " 🎉!", NULL } },
    { VKM_PRETOK_LLAMA3, "tab\there\t\tx",
      { "tab", "\there", "\t", "\tx", NULL } },
    { VKM_PRETOK_LLAMA3, "'s's 'll've",
      { "'s", "'s", " '", "ll", "'ve", NULL } },
    { VKM_PRETOK_LLAMA3, "$3.14 costs 1,000,000",
      { "$", "3", ".", "14", " costs", " ", "1", ",", "000", ",", "000", NULL } },
    { VKM_PRETOK_LLAMA3, "\"quoted\" (paren) [x]",
      { "\"quoted", "\"", " (", "paren", ")", " [", "x", "]", NULL } },
    { VKM_PRETOK_QWEN2, "I'm here, they'RE done. Don't!",
      { "I", "'m", " here", ",", " they", "'RE", " done", ".", " Don", "'t", "!", NULL } },
    { VKM_PRETOK_QWEN2, "12345 apples",
      { "1", "2", "3", "4", "5", " apples", NULL } },
    { VKM_PRETOK_QWEN2, "Hello!!! ...  world??\n\nNext",
      { "Hello", "!!!", " ...", " ", " world", "??\n\n", "Next", NULL } },
    { VKM_PRETOK_QWEN2, "line1\r\nline2\n \n  indented",
      { "line", "1", "\r\n", "line", "2", "\n \n", " ", " indented", NULL } },
    { VKM_PRETOK_QWEN2, "a   b",
      { "a", "  ", " b", NULL } },
    { VKM_PRETOK_QWEN2, "  leading and trailing   ",
      { " ", " leading", " and", " trailing", "   ", NULL } },
    { VKM_PRETOK_QWEN2, "Привет мир, Γειά σου! שלום עולם مرحبا नमस्ते สวัสดี 안녕하세요 こんにちは 日本語 ＡＢＣ１２３",
      { "Привет", " мир", ",", " Γειά", " σου", "!", " שלום", " עולם", " مرحبا", " नमस", "्त", "े", " สว", "ัสด", "ี", " 안녕하세요", " こんにちは", " 日本語", " ＡＢＣ", "１", "２", "３", NULL } },
    { VKM_PRETOK_QWEN2, "emoji 😀👍🏽 test 🎉!",
      { "emoji", " 😀👍🏽", " test", " 🎉!", NULL } },
    { VKM_PRETOK_QWEN2, "tab\there\t\tx",
      { "tab", "\there", "\t", "\tx", NULL } },
    { VKM_PRETOK_QWEN2, "'s's 'll've",
      { "'s", "'s", " '", "ll", "'ve", NULL } },
    { VKM_PRETOK_QWEN2, "$3.14 costs 1,000,000",
      { "$", "3", ".", "1", "4", " costs", " ", "1", ",", "0", "0", "0", ",", "0", "0", "0", NULL } },
    { VKM_PRETOK_QWEN2, "\"quoted\" (paren) [x]",
      { "\"quoted", "\"", " (", "paren", ")", " [", "x", "]", NULL } },
    { VKM_PRETOK_GPT2, "I'm here, they'RE done. Don't!",
      { "I", "'m", " here", ",", " they", "'", "RE", " done", ".", " Don", "'t", "!", NULL } },
    { VKM_PRETOK_GPT2, "12345 apples",
      { "12345", " apples", NULL } },
    { VKM_PRETOK_GPT2, "Hello!!! ...  world??\n\nNext",
      { "Hello", "!!!", " ...", " ", " world", "??", "\n", "\n", "Next", NULL } },
    { VKM_PRETOK_GPT2, "line1\r\nline2\n \n  indented",
      { "line", "1", "\r", "\n", "line", "2", "\n \n ", " indented", NULL } },
    { VKM_PRETOK_GPT2, "a   b",
      { "a", "  ", " b", NULL } },
    { VKM_PRETOK_GPT2, "  leading and trailing   ",
      { " ", " leading", " and", " trailing", "   ", NULL } },
    { VKM_PRETOK_GPT2, "Привет мир, Γειά σου! שלום עולם مرحبا नमस्ते สวัสดี 안녕하세요 こんにちは 日本語 ＡＢＣ１２３",
      { "Привет", " мир", ",", " Γειά", " σου", "!", " שלום", " עולם", " مرحبا", " नमस", "्", "त", "े", " สว", "ั", "สด", "ี", " 안녕하세요", " こんにちは", " 日本語", " ＡＢＣ", "１２３", NULL } },
    { VKM_PRETOK_GPT2, "emoji 😀👍🏽 test 🎉!",
      { "emoji", " 😀👍🏽", " test", " 🎉!", NULL } },
    { VKM_PRETOK_GPT2, "tab\there\t\tx",
      { "tab", "\t", "here", "\t", "\t", "x", NULL } },
    { VKM_PRETOK_GPT2, "'s's 'll've",
      { "'s", "'s", " '", "ll", "'ve", NULL } },
    { VKM_PRETOK_GPT2, "$3.14 costs 1,000,000",
      { "$", "3", ".", "14", " costs", " 1", ",", "000", ",", "000", NULL } },
    { VKM_PRETOK_GPT2, "\"quoted\" (paren) [x]",
      { "\"", "quoted", "\"", " (", "paren", ")", " [", "x", "]", NULL } },
};

static const char *pre_name(vkm_pretok p)
{
    return p == VKM_PRETOK_LLAMA3 ? "llama3" : p == VKM_PRETOK_QWEN2 ? "qwen2" : "gpt2";
}

static void test_pretok(void)
{
    for (size_t c = 0; c < sizeof k_pretok_cases / sizeof k_pretok_cases[0]; c++) {
        const struct pretok_case *pc = &k_pretok_cases[c];
        size_t len = strlen(pc->text), pos = 0;
        int i = 0, ok = 1;
        while (pos < len) {
            size_t e = vkm_tok_pretok_next(pc->pre, pc->text, len, pos);
            const char *want = pc->pieces[i];
            if (!want || strlen(want) != e - pos || memcmp(want, pc->text + pos, e - pos) != 0) {
                CHECK(0, "%s split of \"%s\": piece %d is \"%.*s\", expected \"%s\"", pre_name(pc->pre), pc->text,
                      i, (int)(e - pos), pc->text + pos, want ? want : "(end)");
                ok = 0;
                break;
            }
            pos = e;
            i++;
        }
        if (ok) CHECK(pc->pieces[i] == NULL, "%s split of \"%s\": too few pieces", pre_name(pc->pre), pc->text);
    }
    /* invalid UTF-8 never stalls: every piece advances, pieces tile the input */
    const char bad[] = "a\xff\xfe b\x80\xc3 \xe6\x97\n\xf0\x9f\x98 12\xed\xa0\x80x";
    for (int p = 1; p <= 3; p++) {
        size_t pos = 0, len = sizeof bad - 1, steps = 0;
        while (pos < len && steps < 100) {
            size_t e = vkm_tok_pretok_next((vkm_pretok)p, bad, len, pos);
            CHECK(e > pos && e <= len, "piece advances");
            if (e <= pos) break;
            pos = e;
            steps++;
        }
        CHECK(pos == len, "pieces tile the input");
    }
    /* UTF-8 decoder */
    uint32_t cp;
    CHECK(vkm_tok_utf8_decode((const unsigned char *)"\xe2\x96\x81", 3, &cp) == 3 && cp == 0x2581, "decode 3");
    CHECK(vkm_tok_utf8_decode((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp) == 4 && cp == 0x1F600, "decode 4");
    CHECK(vkm_tok_utf8_decode((const unsigned char *)"\xc0\xaf", 2, &cp) == 1 && cp == VKM_TOK_CP_INVALID, "overlong");
    CHECK(vkm_tok_utf8_decode((const unsigned char *)"\xed\xa0\x80", 3, &cp) == 1 && cp == VKM_TOK_CP_INVALID, "surrogate");
    CHECK(vkm_tok_utf8_decode((const unsigned char *)"\xe2\x96", 2, &cp) == 1 && cp == VKM_TOK_CP_INVALID, "truncated");
    /* classes */
    CHECK(vkm_tok_cp_class('a') == VKM_CP_LETTER && vkm_tok_cp_class('7') == VKM_CP_NUMBER &&
          vkm_tok_cp_class('\n') == VKM_CP_SPACE && vkm_tok_cp_class('!') == 0, "ascii classes");
    CHECK(vkm_tok_cp_class(0x65E5) == VKM_CP_LETTER && vkm_tok_cp_class(0xAC00) == VKM_CP_LETTER &&
          vkm_tok_cp_class(0x0915) == VKM_CP_LETTER && vkm_tok_cp_class(0x0E01) == VKM_CP_LETTER &&
          vkm_tok_cp_class(0x3042) == VKM_CP_LETTER && vkm_tok_cp_class(0xFF21) == VKM_CP_LETTER &&
          vkm_tok_cp_class(0x05D0) == VKM_CP_LETTER && vkm_tok_cp_class(0x0628) == VKM_CP_LETTER &&
          vkm_tok_cp_class(0x0531) == VKM_CP_LETTER && vkm_tok_cp_class(0x20000) == VKM_CP_LETTER,
          "letters of many scripts");
    CHECK(vkm_tok_cp_class(0x0663) == VKM_CP_NUMBER && vkm_tok_cp_class(0xFF11) == VKM_CP_NUMBER &&
          vkm_tok_cp_class(0x0967) == VKM_CP_NUMBER && vkm_tok_cp_class(0x2167) == VKM_CP_NUMBER &&
          vkm_tok_cp_class(0x00B2) == VKM_CP_NUMBER, "numbers");
    CHECK(vkm_tok_cp_class(0x3000) == VKM_CP_SPACE && vkm_tok_cp_class(0x00A0) == VKM_CP_SPACE &&
          vkm_tok_cp_class(0x2028) == VKM_CP_SPACE && vkm_tok_cp_class(0x200B) == 0 &&
          vkm_tok_cp_class(0x1F600) == 0 && vkm_tok_cp_class(0x0301) == 0 && vkm_tok_cp_class(0x10FFFF) == 0,
          "spaces and others");
    /* GPT-2 byte mapping */
    int bij = 1;
    for (unsigned b = 0; b < 256; b++) bij &= vkm_tok_cp_to_byte(vkm_tok_byte_to_cp((uint8_t)b)) == (int)b;
    CHECK(bij, "byte mapping is a bijection");
    CHECK(vkm_tok_byte_to_cp(' ') == 0x120 && vkm_tok_byte_to_cp('\n') == 0x10A && vkm_tok_byte_to_cp('A') == 'A' &&
          vkm_tok_byte_to_cp(0xAD) == 0x143 && vkm_tok_byte_to_cp(0) == 0x100, "GPT-2 byte mapping values");
    CHECK(vkm_tok_cp_to_byte(0x144) == -1 && vkm_tok_cp_to_byte(' ') == -1, "unmapped code points");
}

/* ---------------------------------------------------------------- GPT-2 BPE, synthetic vocabulary */

/* UTF-8 of the GPT-2 mapped form of raw bytes s */
static size_t map_bytes(const char *s, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = vkm_tok_byte_to_cp((uint8_t)s[i]);
        if (cp < 0x80) out[w++] = (char)cp;
        else { out[w++] = (char)(0xC0 | (cp >> 6)); out[w++] = (char)(0x80 | (cp & 0x3F)); }
    }
    return w;
}

typedef struct {
    vocab_buf v;
    char **merges;
    uint32_t n_merges;
} bpe_vocab;

/* ids 0..255: the byte tokens (in byte order); then the merges' results; then
 * extra whole-word tokens and specials */
static const char *const k_merges[] = {
    "h e", "\xc4\xa0 t", "\xc4\xa0t he", "l l", "e ll", "he ll", "hell o", /* 0..6 */
    "1 2", "12 3", "4 5",                                                  /* 7..9 */
    "' s", "\xc4\x8a \xc4\x8a",                                            /* 10..11 */
    "a b", "b c", "y z", "x y",                                            /* 12..15: rank order */
    "\xc4\xa0 hello",                                                      /* 16 */
};
#define N_EXTRA 7
static const char *const k_extra[N_EXTRA] = {
    "\xc4\xa0world", /* a whole word without a merge path: only LLAMA3's ignore_merges finds it */
    "<|im_start|>", "<|im_end|>", "<|eot_id|>", "<tool>", "<|x|>", "<|x|>y",
};
enum { ID_WORLD = 256 + 17, ID_IM_START, ID_IM_END, ID_EOT, ID_TOOL, ID_X, ID_XY };

static int make_bpe_vocab(bpe_vocab *b)
{
    uint32_t nm = sizeof k_merges / sizeof k_merges[0];
    if (!vocab_alloc(&b->v, 256 + nm + N_EXTRA)) return 0;
    char tmp[64];
    for (unsigned i = 0; i < 256; i++) {
        char c = (char)i;
        size_t n = map_bytes(&c, 1, tmp);
        vocab_set(&b->v, i, tmp, n);
        b->v.type[i] = 1;
    }
    for (uint32_t m = 0; m < nm; m++) {
        /* the merged token is the merge without its space */
        const char *s = k_merges[m];
        const char *sp = strchr(s, ' ');
        size_t n = 0;
        memcpy(tmp, s, (size_t)(sp - s));
        n = (size_t)(sp - s);
        strcpy(tmp + n, sp + 1);
        n += strlen(sp + 1);
        vocab_set(&b->v, 256 + m, tmp, n);
        b->v.type[256 + m] = 1;
    }
    for (uint32_t i = 0; i < N_EXTRA; i++) {
        uint32_t id = 256 + nm + i;
        vocab_set(&b->v, id, k_extra[i], strlen(k_extra[i]));
        b->v.type[id] = i == 0 ? 1 : i == 4 ? 4 : 3;
    }
    b->merges = (char **)k_merges;
    b->n_merges = nm;
    return 1;
}

static vkm_tokenizer *make_bpe(const bpe_vocab *b, vkm_pretok pre)
{
    vkm_vocab_init in;
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_BPE;
    in.pre = pre;
    in.n_tokens = b->v.n;
    in.tokens = (const char *const *)b->v.tok;
    in.token_lens = b->v.len;
    in.token_types = b->v.type;
    in.n_merges = b->n_merges;
    in.merges = (const char *const *)b->merges;
    in.bos_id = ID_IM_START; /* stands in for a BOS */
    in.eos_id = ID_IM_END;
    vkm_tokenizer *t = NULL;
    char err[256] = "";
    vkmix_error e = vkm_tokenizer_create(&in, &t, err, sizeof err);
    CHECK(e == VKMIX_OK, "create bpe: %s", err);
    return t;
}

static int32_t tid(const vkm_tokenizer *t, const char *raw)
{
    char m[256];
    size_t n = map_bytes(raw, strlen(raw), m);
    return vkm_tokenizer_find(t, m, n);
}

static void test_bpe(void)
{
    bpe_vocab b = { 0 };
    if (!make_bpe_vocab(&b)) { CHECK(0, "alloc"); return; }
    vkm_tokenizer *g = make_bpe(&b, VKM_PRETOK_GPT2);
    vkm_tokenizer *l3 = make_bpe(&b, VKM_PRETOK_LLAMA3);
    vkm_tokenizer *q = make_bpe(&b, VKM_PRETOK_QWEN2);
    if (!g || !l3 || !q) goto done;
    static int32_t ids[MAXT];
    size_t n, k;
    const char *d;

    CHECK(vkm_tokenizer_add_bos(l3) == 1 && vkm_tokenizer_add_bos(g) == 0 && vkm_tokenizer_add_bos(q) == 0,
          "add_bos defaults per pre-tokenizer");

    /* merges by rank */
    n = enc(g, "hello the", 9, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "hello"), tid(g, " the"));
    n = enc(g, "abc", 3, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "ab"), 'c'); /* "a b" (rank 12) before "b c" (13) */
    n = enc(g, "xyz", 3, 0, 0, ids);
    CHECK_IDS(ids, n, 'x', tid(g, "yz")); /* "y z" (14) before "x y" (15) */
    n = enc(g, "hellohello", 10, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "hello"), tid(g, "hello"));
    n = enc(g, "he's", 4, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "he"), tid(g, "'s"));
    n = enc(g, "\n\n\n", 3, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "\n\n"), tid(g, "\n"));
    /* " hello" merges to "Ġhello" (rank 16) in every pre-tokenizer */
    n = enc(g, " hello", 6, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, " hello"));

    /* digits: LLAMA3 groups of 3, QWEN2 single digits, GPT2 one run */
    n = enc(l3, "12345", 5, 0, 0, ids);
    CHECK_IDS(ids, n, tid(l3, "123"), tid(l3, "45"));
    n = enc(q, "12345", 5, 0, 0, ids);
    CHECK_IDS(ids, n, '1', '2', '3', '4', '5');
    n = enc(g, "12345", 5, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, "123"), tid(g, "45"));

    /* ignore_merges (LLAMA3): a pre-token that is a whole token is taken as is */
    n = enc(l3, " world", 6, 0, 0, ids);
    CHECK_IDS(ids, n, ID_WORLD);
    n = enc(g, " world", 6, 0, 0, ids);
    CHECK_IDS(ids, n, tid(g, " "), 'w', 'o', 'r', 'l', 'd');

    /* BOS for LLAMA3 with add_special */
    n = enc(l3, "hello", 5, 1, 0, ids);
    CHECK_IDS(ids, n, ID_IM_START, tid(l3, "hello"));

    /* non-ASCII: byte tokens of the UTF-8 */
    n = enc(g, "\xc3\xa9", 2, 0, 0, ids);
    CHECK_IDS(ids, n, 0xc3, 0xa9);

    /* special tokens */
    const char *chat = "<|im_start|>user\nhello<|im_end|>";
    n = enc(q, chat, strlen(chat), 0, 1, ids);
    CHECK(n >= 3 && ids[0] == ID_IM_START && ids[n - 1] == ID_IM_END, "parse_special chat markers");
    d = dec(q, ids, n, 0, &k);
    CHECK(strcmp(d, "user\nhello") == 0, "control tokens decode to nothing: \"%s\"", d);
    d = dec(q, ids, n, VKM_DETOK_SPECIAL, &k);
    CHECK(strcmp(d, chat) == 0, "SPECIAL decode: \"%s\"", d);
    n = enc(q, chat, strlen(chat), 0, 0, ids);
    for (size_t i = 0; i < n; i++) CHECK(ids[i] != ID_IM_START && ids[i] != ID_IM_END, "no specials when not parsing");
    d = dec(q, ids, n, 0, &k);
    CHECK(strcmp(d, chat) == 0, "plain-text markers round trip: \"%s\"", d);
    /* user-defined tokens are matched even without parse_special (llama.cpp, HF) */
    n = enc(q, "a<tool>b", 8, 0, 0, ids);
    CHECK_IDS(ids, n, 'a', ID_TOOL, 'b');
    d = dec(q, ids, n, 0, &k);
    CHECK(strcmp(d, "a<tool>b") == 0, "user-defined piece is its text: \"%s\"", d);
    /* longest match first */
    n = enc(q, "<|x|>yz<|x|>", 12, 0, 1, ids);
    CHECK_IDS(ids, n, ID_XY, 'z', ID_X);
    /* end of generation by name */
    CHECK(vkm_tokenizer_is_eog(q, ID_EOT) && vkm_tokenizer_is_eog(q, ID_IM_END) && !vkm_tokenizer_is_eog(q, ID_IM_START) &&
          !vkm_tokenizer_is_eog(q, ID_TOOL) && !vkm_tokenizer_is_eog(q, 'a'), "is_eog");

    /* pieces reverse the byte mapping */
    char pb[16];
    CHECK(vkm_token_to_piece(g, tid(g, " the"), pb, sizeof pb, &k) == VKMIX_OK && k == 4 && memcmp(pb, " the", 4) == 0,
          "BPE piece");
    CHECK(vkm_token_to_piece(g, 0xc3, pb, sizeof pb, &k) == VKMIX_OK && k == 1 && (unsigned char)pb[0] == 0xc3,
          "BPE byte piece");

    /* round trips for all three (byte-level: every byte string) */
    static const char *const rt[] = {
        "I'm here, they'RE done. Don't!", "12345 apples", "Hello!!! ...  world??\n\nNext",
        "line1\r\nline2\n \n  indented", "a   b", "  leading and trailing   ",
        "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd!",
        "bad \xff\xfe\x80 utf8 \xe6\x97", "",
    };
    vkm_tokenizer *all[3] = { g, l3, q };
    for (int ti = 0; ti < 3; ti++)
        for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
            n = enc(all[ti], rt[i], strlen(rt[i]), 0, 0, ids);
            d = dec(all[ti], ids, n, 0, &k);
            CHECK(k == strlen(rt[i]) && memcmp(d, rt[i], k) == 0, "BPE round trip %d of \"%s\": \"%s\"", ti, rt[i], d);
        }
    {
        tu_rng r;
        tu_rng_seed(&r, 2);
        char buf[160];
        for (int it = 0; it < 300; it++) {
            size_t len = tu_rng_u32(&r) % sizeof buf;
            for (size_t i = 0; i < len; i++) buf[i] = (char)tu_rng_u32(&r);
            for (int ti = 0; ti < 3; ti++) {
                n = enc(all[ti], buf, len, 0, 1, ids);
                d = dec(all[ti], ids, n, VKM_DETOK_SPECIAL, &k);
                CHECK(k == len && memcmp(d, buf, len) == 0, "random bytes round trip");
            }
        }
    }
done:
    vkm_tokenizer_free(g);
    vkm_tokenizer_free(l3);
    vkm_tokenizer_free(q);
    vocab_free(&b.v);
}

/* ---------------------------------------------------------------- bad input to create */

static void test_errors(void)
{
    const char *toks[] = { "a", "b", "ab" };
    vkm_vocab_init in;
    vkm_tokenizer *t = NULL;
    char err[128];
    CHECK(vkm_tokenizer_create(NULL, &t, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT && !t, "NULL init");
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_BPE;
    in.n_tokens = 3;
    in.tokens = toks;
    CHECK(vkm_tokenizer_create(&in, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL out");
    in.type = (vkm_vocab_type)7;
    err[0] = 0;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT && err[0], "bad type");
    in.type = VKM_VOCAB_BPE;
    in.n_tokens = 0;
    CHECK(vkm_tokenizer_create(&in, &t, NULL, 0) == VKMIX_ERROR_INVALID_ARGUMENT, "no tokens");
    in.n_tokens = 3;
    in.eos_id = 3;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "eos out of range");
    in.eos_id = -1;
    const char *bad_merges[] = { "a b", "ab" };
    in.n_merges = 2;
    in.merges = bad_merges;
    err[0] = 0;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_ERROR_TOKENIZER && err[0], "merge without space");
    in.merges = NULL;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL merges");
    in.n_merges = 1;
    in.merges = bad_merges;
    in.add_bos = 1;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "add_bos without bos");
    in.add_bos = -1;
    CHECK(vkm_tokenizer_create(&in, &t, err, sizeof err) == VKMIX_OK && t, "minimal BPE (NUL-terminated texts)");
    if (t) {
        int32_t ids[8];
        size_t n = 0;
        CHECK(vkm_tokenize(t, "abz", 3, 1, 1, ids, 8, &n) == VKMIX_OK, "tokenize");
        CHECK_IDS(ids, n, 2); /* "z" has no token and there is no unk: dropped */
        vkm_tokenizer_free(t);
    }
    /* SPM without byte tokens and without unk: an unknown character is an error */
    vkm_vocab_init_defaults(&in);
    in.type = VKM_VOCAB_SPM;
    const char *stoks[] = { "\xe2\x96\x81", "a" };
    in.n_tokens = 2;
    in.tokens = stoks;
    CHECK(vkm_tokenizer_create(&in, &t, NULL, 0) == VKMIX_OK, "tiny SPM");
    if (t) {
        int32_t ids[8];
        size_t n = 0;
        CHECK(vkm_tokenize(t, "aa", 2, 1, 0, ids, 8, &n) == VKMIX_OK && n == 3, "tiny SPM encode");
        CHECK(vkm_tokenize(t, "q", 1, 1, 0, ids, 8, &n) == VKMIX_ERROR_TOKENIZER, "no token for q");
        vkm_tokenizer_free(t);
    }
    vkm_tokenizer_free(NULL);

    vkm_pretok pre = VKM_PRETOK_DEFAULT;
    vkm_vocab_type vt = VKM_VOCAB_SPM;
    CHECK(vkm_pretok_from_name("llama-bpe", 9, &pre) && pre == VKM_PRETOK_LLAMA3, "llama-bpe");
    CHECK(vkm_pretok_from_name("qwen2", 5, &pre) && pre == VKM_PRETOK_QWEN2, "qwen2");
    CHECK(vkm_pretok_from_name("gpt-2", 5, &pre) && pre == VKM_PRETOK_GPT2, "gpt-2");
    CHECK(!vkm_pretok_from_name("qwen", 4, &pre) && !vkm_pretok_from_name(NULL, 0, &pre), "unknown pre");
    CHECK(vkm_vocab_type_from_name("gpt2", 4, &vt) && vt == VKM_VOCAB_BPE, "gpt2 model");
    CHECK(vkm_vocab_type_from_name("llama", 5, &vt) && vt == VKM_VOCAB_SPM, "llama model");
    CHECK(!vkm_vocab_type_from_name("bert", 4, &vt), "unknown model");
}

int main(void)
{
    test_pretok();
    test_bpe();
    test_errors();
    test_spm();
    test_hf_bpe();
    return tu_finish("test_tokenizer");
}
