/* GGUF reader and writer: real files, writer round trip of every value type,
 * and every malformed case with its exact error code and a message that names
 * the key or tensor.
 *
 * `test_gguf --write-corpus DIR` also writes the crafted files (valid and bad)
 * into DIR: that is how tests/fuzz/corpus/gguf/ was generated. Bad files are
 * named bad-<what>-<expected vkmix_error>[-detail].gguf, valid ones ok-*.gguf. */
#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "testutil.h"
#include "fuzz/gguf_walk.h"

#include <math.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ helpers */

typedef struct {
    uint8_t *b;
    size_t n;
} buf;

static const char *g_corpus_dir = NULL; /* --write-corpus */
static int g_corpus_written = 0;

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t find_bytes(const buf *f, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= f->n; i++)
        if (memcmp(f->b + i, needle, k) == 0) return i;
    fprintf(stderr, "find_bytes: '%s' not in file\n", needle);
    abort(); /* test bug: crafted layout changed */
}

static buf buf_copy(const buf *f)
{
    buf c = {malloc(f->n ? f->n : 1), f->n};
    if (f->n) memcpy(c.b, f->b, f->n);
    return c;
}

static void corpus_write(const char *name, const buf *f)
{
    if (!g_corpus_dir) return;
    if (f->n >= 4096) {
        fprintf(stderr, "corpus seed %s is %zu bytes (limit 4 KiB): not written\n", name, f->n);
        tu_failures++;
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_corpus_dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(f->b, 1, f->n, fp) != f->n) {
        fprintf(stderr, "cannot write %s\n", path);
        tu_failures++;
    } else {
        g_corpus_written++;
    }
    if (fp) fclose(fp);
}

/* Writer helpers that abort the test on failure (test bugs, not reader bugs). */
#define W(call)                                                                        \
    do {                                                                               \
        vkmix_error we_ = (call);                                                      \
        if (we_ != VKMIX_OK) {                                                         \
            fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #call, we_); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

static buf finish(vkm_gguf_writer *w)
{
    buf f = {NULL, 0};
    char err[256];
    void *p = NULL;
    W(vkm_gguf_writer_write_memory(w, &p, &f.n, err, sizeof err));
    f.b = p;
    vkm_gguf_writer_free(w);
    return f;
}

/* Serialized array payload: u32 type | u64 count | elements */
static size_t arr_hdr(uint8_t *p, uint32_t type, uint64_t count)
{
    put_le(p, type, 4);
    put_le(p + 4, count, 8);
    return 12;
}

/* A small valid file whose last tensor ends exactly at the end of the file
 * (so every proper prefix is invalid). Keys and tensors with unique names so
 * the cases below can find and patch their bytes. */
static buf small_file(void)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_str(w, "general.architecture", "llama"));
    W(vkm_gguf_writer_add_u32(w, "test.count", 7));
    W(vkm_gguf_writer_add_u8(w, "test.dup0", 1));
    W(vkm_gguf_writer_add_u8(w, "test.dup1", 2));
    W(vkm_gguf_writer_add_bool(w, "test.flag", 1));
    const char *toks[] = {"a", "bc", "<s>"};
    W(vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3));
    float sc[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    W(vkm_gguf_writer_add_arr(w, "test.scores", VKM_GGUF_F32, sc, 4));
    uint8_t nested[64];
    size_t o = arr_hdr(nested, VKM_GGUF_ARRAY, 2);
    o += arr_hdr(nested + o, VKM_GGUF_I32, 1);
    put_le(nested + o, 5, 4), o += 4;
    o += arr_hdr(nested + o, VKM_GGUF_STRING, 1);
    put_le(nested + o, 2, 8), o += 8;
    memcpy(nested + o, "zz", 2), o += 2;
    W(vkm_gguf_writer_add_raw(w, "test.nested", VKM_GGUF_ARRAY, nested, o));
    float x[64], v[8];
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 30) * 0.1f;
    for (int i = 0; i < 8; i++) v[i] = (float)i;
    uint8_t q[68];
    W(vkm_ggml_quantize_row(VKM_GGML_Q8_0, x, q, 64));
    int64_t ne_a[2] = {32, 2}, ne_b[1] = {8};
    W(vkm_gguf_writer_add_tensor(w, "tok_a", VKM_GGML_Q8_0, 2, ne_a, q, sizeof q));
    W(vkm_gguf_writer_add_tensor(w, "tok_b", VKM_GGML_F32, 1, ne_b, v, sizeof v));
    return finish(w);
}

/* A file with one key/value given as raw bytes and no tensors, built by hand
 * (for values the writer refuses to produce). */
static buf hand_kv_file(const char *key, uint32_t type, const uint8_t *payload, size_t size)
{
    size_t kl = strlen(key);
    buf f = {malloc(24 + 8 + kl + 4 + size), 24 + 8 + kl + 4 + size};
    memcpy(f.b, "GGUF", 4);
    put_le(f.b + 4, 3, 4);
    put_le(f.b + 8, 0, 8);
    put_le(f.b + 16, 1, 8);
    put_le(f.b + 24, kl, 8);
    memcpy(f.b + 32, key, kl);
    put_le(f.b + 32 + kl, type, 4);
    if (size) memcpy(f.b + 36 + kl, payload, size);
    return f;
}

/* Opens f, walks it when valid; returns the code and fills err. */
static vkmix_error parse_walk(const buf *f, char *err, size_t errlen, int *walk_bad)
{
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open_memory(f->b, f->n, &g, err, errlen);
    *walk_bad = 0;
    if (e == VKMIX_OK) {
        *walk_bad = vkm_walk_gguf(g);
        vkm_gguf_close(g);
    } else if (g != NULL) {
        *walk_bad = 1; /* a failed open must leave *out NULL */
    }
    return e;
}

static int walk_ok(const vkm_gguf *g)
{
    int bad = vkm_walk_gguf(g);
    if (bad) fprintf(stderr, "walk found %d inconsistencies\n", bad);
    return bad == 0;
}

/* ------------------------------------------------------------------ real files */

/* Re-creates a parsed file with the writer (same keys, tensors, order) and
 * compares bytes: identical output means the writer lays files out exactly as
 * the tool that wrote the original (llama.cpp's gguf-py for the shared models). */
#define THEN(first, second) ((e = (first)) != VKMIX_OK ? e : (second))
static void check_rewrite_identical(const vkm_gguf *g, const char *what)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    int ok = 1;
    for (int64_t i = 0; i < vkm_gguf_n_kv(g) && ok; i++) {
        const char *k = vkm_gguf_key_name(g, i);
        int t = vkm_gguf_key_type(g, i);
        uint64_t u = 0;
        int64_t v = 0;
        double d = 0;
        float f = 0;
        int b = 0;
        const char *s = NULL;
        size_t n = 0;
        vkm_gguf_array a;
        vkmix_error e = VKMIX_OK;
        switch (t) {
        case VKM_GGUF_U8: e = THEN(vkm_gguf_get_u64(g, k, &u, NULL, 0), vkm_gguf_writer_add_u8(w, k, (uint8_t)u)); break;
        case VKM_GGUF_U16: e = THEN(vkm_gguf_get_u64(g, k, &u, NULL, 0), vkm_gguf_writer_add_u16(w, k, (uint16_t)u)); break;
        case VKM_GGUF_U32: e = THEN(vkm_gguf_get_u64(g, k, &u, NULL, 0), vkm_gguf_writer_add_u32(w, k, (uint32_t)u)); break;
        case VKM_GGUF_U64: e = THEN(vkm_gguf_get_u64(g, k, &u, NULL, 0), vkm_gguf_writer_add_u64(w, k, u)); break;
        case VKM_GGUF_I8: e = THEN(vkm_gguf_get_i64(g, k, &v, NULL, 0), vkm_gguf_writer_add_i8(w, k, (int8_t)v)); break;
        case VKM_GGUF_I16: e = THEN(vkm_gguf_get_i64(g, k, &v, NULL, 0), vkm_gguf_writer_add_i16(w, k, (int16_t)v)); break;
        case VKM_GGUF_I32: e = THEN(vkm_gguf_get_i64(g, k, &v, NULL, 0), vkm_gguf_writer_add_i32(w, k, (int32_t)v)); break;
        case VKM_GGUF_I64: e = THEN(vkm_gguf_get_i64(g, k, &v, NULL, 0), vkm_gguf_writer_add_i64(w, k, v)); break;
        case VKM_GGUF_F32: e = THEN(vkm_gguf_get_f32(g, k, &f, NULL, 0), vkm_gguf_writer_add_f32(w, k, f)); break;
        case VKM_GGUF_F64: e = THEN(vkm_gguf_get_f64(g, k, &d, NULL, 0), vkm_gguf_writer_add_f64(w, k, d)); break;
        case VKM_GGUF_BOOL: e = THEN(vkm_gguf_get_bool(g, k, &b, NULL, 0), vkm_gguf_writer_add_bool(w, k, b)); break;
        case VKM_GGUF_STRING: e = THEN(vkm_gguf_get_str(g, k, &s, &n, NULL, 0), vkm_gguf_writer_add_strn(w, k, s, n)); break;
        default: {
            e = vkm_gguf_get_arr(g, k, -1, &a, NULL, 0);
            if (e != VKMIX_OK) break;
            uint8_t *p = malloc((size_t)a.size + 12);
            arr_hdr(p, a.type, a.count);
            memcpy(p + 12, a.data, (size_t)a.size);
            e = vkm_gguf_writer_add_raw(w, k, VKM_GGUF_ARRAY, p, (size_t)a.size + 12);
            free(p);
        }
        }
        CHECK(e == VKMIX_OK, "%s: re-adding key %s: %d", what, k, e);
        ok = e == VKMIX_OK;
    }
    for (int64_t i = 0; i < vkm_gguf_n_tensors(g) && ok; i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        vkmix_error e = vkm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
        CHECK(e == VKMIX_OK, "%s: re-adding tensor %s: %d", what, t->name, e);
        ok = e == VKMIX_OK;
    }
    if (ok) {
        buf f = finish(w);
        size_t n = (size_t)vkm_gguf_file_size(g), first = 0;
        while (first < n && first < f.n && f.b[first] == ((const uint8_t *)vkm_gguf_file_data(g))[first]) first++;
        CHECK(f.n == n && first == n, "%s: writer output differs from the original (%zu vs %zu bytes, first diff at %zu)",
              what, f.n, n, first);
        free(f.b);
    } else {
        vkm_gguf_writer_free(w);
    }
}

static int test_stories260k(void)
{
    int f16 = 0; /* the shipped copy: its matrices are F16, norms and ffn_down (rows of 172) F32 */
    char *path = tu_stories260k(&f16);
    if (!path) return 77;
    char err[256] = "";
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open(path, &g, err, sizeof err);
    free(path);
    REQUIRE(e == VKMIX_OK, "open stories260K: %s", err);
    const char *s = NULL;
    size_t n = 0;
    CHECK(vkm_gguf_get_str(g, "general.architecture", &s, &n, err, sizeof err) == VKMIX_OK && n == 5 &&
              strcmp(s, "llama") == 0, "architecture: %s", err);
    uint32_t u = 0;
    CHECK(vkm_gguf_get_u32(g, "llama.block_count", &u, err, sizeof err) == VKMIX_OK && u == 5, "block_count %u", u);
    CHECK(vkm_gguf_get_u32(g, "llama.embedding_length", &u, err, sizeof err) == VKMIX_OK && u == 64, "embd %u", u);
    CHECK(vkm_gguf_get_u32(g, "llama.attention.head_count_kv", &u, err, sizeof err) == VKMIX_OK && u == 4, "kv heads");
    CHECK(vkm_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, err, sizeof err) == VKMIX_OK && u == 1, "bos %u", u);
    CHECK(vkm_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, err, sizeof err) == VKMIX_OK && u == 2, "eos %u", u);
    float eps = 0;
    CHECK(vkm_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps, err, sizeof err) == VKMIX_OK &&
              fabsf(eps - 1e-5f) < 1e-10f, "rms eps %g", eps);
    CHECK(vkm_gguf_n_tensors(g) == 48, "%lld tensors", (long long)vkm_gguf_n_tensors(g));
    CHECK(vkm_gguf_version(g) == 3 && vkm_gguf_alignment(g) == 32, "version/alignment");
    vkm_gguf_array a;
    CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &a, err, sizeof err) == VKMIX_OK &&
              a.count == 512, "tokens: %s", err);
    const char *t = NULL;
    CHECK(vkm_gguf_arr_str(&a, 1, &t, &n) == VKMIX_OK && n == 3 && memcmp(t, "<s>", 3) == 0, "token 1");
    CHECK(vkm_gguf_arr_str(&a, 2, &t, &n) == VKMIX_OK && n == 4 && memcmp(t, "</s>", 4) == 0, "token 2");
    CHECK(vkm_gguf_arr_str(&a, 512, &t, &n) == VKMIX_ERROR_INVALID_ARGUMENT, "token 512 out of range");
    CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &a, err, sizeof err) == VKMIX_OK &&
              a.count == 512 && a.size == 2048, "scores: %s", err);
    int64_t all_f32 = 0, all_f16 = 0;
    for (int64_t i = 0; i < vkm_gguf_n_tensors(g); i++) {
        all_f32 += vkm_gguf_tensor_at(g, i)->type == VKM_GGML_F32;
        all_f16 += vkm_gguf_tensor_at(g, i)->type == VKM_GGML_F16;
    }
    CHECK(f16 ? all_f32 == 16 && all_f16 == 32 : all_f32 == 48, "%lld F32, %lld F16 tensors", (long long)all_f32,
          (long long)all_f16);
    const vkm_gguf_tensor *te = NULL;
    CHECK(vkm_gguf_get_tensor(g, "token_embd.weight", &te, err, sizeof err) == VKMIX_OK, "%s", err);
    if (te) {
        CHECK(te->n_dims == 2 && te->ne[0] == 64 && te->ne[1] == 512 && te->ne[2] == 1 && te->ne[3] == 1 &&
                  te->n_elements == 64 * 512 && te->n_bytes == 64 * 512 * (f16 ? 2u : 4u),
              "token_embd shape");
        CHECK(((const uint8_t *)te->data - (const uint8_t *)vkm_gguf_file_data(g)) % 32 == 0, "data aligned");
    }
    const vkm_gguf_tensor *wq = NULL;
    CHECK(vkm_gguf_get_tensor(g, "blk.4.attn_k.weight", &wq, err, sizeof err) == VKMIX_OK && wq->ne[0] == 64 &&
              wq->ne[1] == 32, "blk.4.attn_k.weight");
    CHECK(walk_ok(g), "walk");
    check_rewrite_identical(g, "stories260K");
    vkm_gguf_close(g);
    return 0;
}

static int test_tinystories_q8(void)
{
    char *path = tu_shared_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
    if (!path) return 77;
    char err[256] = "";
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open(path, &g, err, sizeof err);
    free(path);
    REQUIRE(e == VKMIX_OK, "open TinyStories-656K-Q8_0: %s", err);
    int nq = 0, nf = 0, other = 0;
    for (int64_t i = 0; i < vkm_gguf_n_tensors(g); i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        if (t->type == VKM_GGML_Q8_0) nq++;
        else if (t->type == VKM_GGML_F32) nf++;
        else other++;
        if (t->type == VKM_GGML_F32) CHECK(t->n_dims == 1 && strstr(t->name, "norm"), "F32 %s is a norm", t->name);
    }
    CHECK(vkm_gguf_n_tensors(g) == 20 && nq == 15 && nf == 5 && other == 0, "tensors %lld: %d q8_0, %d f32, %d other",
          (long long)vkm_gguf_n_tensors(g), nq, nf, other);
    uint32_t u = 0;
    CHECK(vkm_gguf_get_u32(g, "general.file_type", &u, err, sizeof err) == VKMIX_OK && u == 7, "file_type %u", u);
    CHECK(vkm_gguf_get_u32(g, "llama.rope.dimension_count", &u, err, sizeof err) == VKMIX_OK && u == 16, "rope dim");
    CHECK(vkm_gguf_get_u32(g, "llama.embedding_length", &u, err, sizeof err) == VKMIX_OK && u == 128, "embd");
    const vkm_gguf_tensor *t = NULL;
    CHECK(vkm_gguf_get_tensor(g, "output.weight", &t, err, sizeof err) == VKMIX_ERROR_GGUF_MISSING_KEY &&
              strstr(err, "'output.weight'"), "no output.weight (tied): %s", err);
    CHECK(vkm_gguf_get_tensor(g, "token_embd.weight", &t, err, sizeof err) == VKMIX_OK && t->type == VKM_GGML_Q8_0 &&
              t->ne[0] == 128 && t->ne[1] == 2048 && t->n_bytes == 2048 * 4 * 34, "token_embd");
    int b = 0;
    CHECK(vkm_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, err, sizeof err) == VKMIX_OK && b == 1, "add_bos");
    vkm_gguf_array a;
    CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &a, err, sizeof err) == VKMIX_OK &&
              a.count == 2048, "tokens");
    const char *s;
    size_t n;
    CHECK(vkm_gguf_arr_str(&a, 1, &s, &n) == VKMIX_OK && n == 15 && memcmp(s, "<|start_story|>", 15) == 0, "bos piece");
    CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.token_type", VKM_GGUF_I32, &a, err, sizeof err) == VKMIX_OK &&
              a.count == 2048, "token_type");
    CHECK(walk_ok(g), "walk");
    check_rewrite_identical(g, "TinyStories-656K-Q8_0");
    vkm_gguf_close(g);
    return 0;
}

/* ------------------------------------------------------------------ writer round trip */

static const float k_f32s[] = {1.5f, -2.25f, 0.0f, 1e-30f};
static const double k_f64s[] = {3.141592653589793, -1e300, 5e-324};
static const uint8_t k_u8s[] = {0, 1, 255};
static const int8_t k_i8s[] = {-128, 0, 127};
static const uint16_t k_u16s[] = {0, 65535, 1234};
static const int16_t k_i16s[] = {-32768, 32767, -1};
static const uint32_t k_u32s[] = {0, 4294967295u, 77};
static const int32_t k_i32s[] = {-1, 0, 2147483647, -2147483647 - 1};
static const uint64_t k_u64s[] = {0, 18446744073709551615ull, 1ull << 40};
static const int64_t k_i64s[] = {INT64_MIN, INT64_MAX, -5};
static const uint8_t k_bools[] = {1, 0, 1, 1};
static const char *const k_strs[] = {"", "x", "h\xc3\xa9llo", "a\0b"};
static const size_t k_str_lens[] = {0, 1, 6, 3};

/* Builds a file with every value type and a few tensors; fills the tensor
 * sources so the test can compare. alignment: 0 (default) or a power of two. */
static buf alltypes_file(uint32_t alignment, uint8_t *q8src, uint8_t *q4ksrc, uint16_t *f16src, uint8_t *q5ksrc)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    if (alignment) W(vkm_gguf_writer_add_u32(w, "general.alignment", alignment));
    W(vkm_gguf_writer_add_u8(w, "t.u8", 250));
    W(vkm_gguf_writer_add_i8(w, "t.i8", -7));
    W(vkm_gguf_writer_add_u16(w, "t.u16", 65000));
    W(vkm_gguf_writer_add_i16(w, "t.i16", -30000));
    W(vkm_gguf_writer_add_u32(w, "t.u32", 4000000000u));
    W(vkm_gguf_writer_add_i32(w, "t.i32", -2000000000));
    W(vkm_gguf_writer_add_u64(w, "t.u64", 0xFEDCBA9876543210ull));
    W(vkm_gguf_writer_add_i64(w, "t.i64", -9000000000000000000ll));
    W(vkm_gguf_writer_add_i64(w, "t.i64small", 12));
    W(vkm_gguf_writer_add_f32(w, "t.f32", 3.5f));
    W(vkm_gguf_writer_add_f64(w, "t.f64", -1e300));
    W(vkm_gguf_writer_add_f64(w, "t.f64small", 0.125));
    W(vkm_gguf_writer_add_bool(w, "t.true", 1));
    W(vkm_gguf_writer_add_bool(w, "t.false", 0));
    W(vkm_gguf_writer_add_str(w, "t.str", "hello"));
    W(vkm_gguf_writer_add_strn(w, "t.strnul", "a\0b", 3));
    W(vkm_gguf_writer_add_str(w, "t.empty", ""));
    W(vkm_gguf_writer_add_arr(w, "a.u8", VKM_GGUF_U8, k_u8s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.i8", VKM_GGUF_I8, k_i8s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.u16", VKM_GGUF_U16, k_u16s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.i16", VKM_GGUF_I16, k_i16s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.u32", VKM_GGUF_U32, k_u32s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.i32", VKM_GGUF_I32, k_i32s, 4));
    W(vkm_gguf_writer_add_arr(w, "a.u64", VKM_GGUF_U64, k_u64s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.i64", VKM_GGUF_I64, k_i64s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.f32", VKM_GGUF_F32, k_f32s, 4));
    W(vkm_gguf_writer_add_arr(w, "a.f64", VKM_GGUF_F64, k_f64s, 3));
    W(vkm_gguf_writer_add_arr(w, "a.bool", VKM_GGUF_BOOL, k_bools, 4));
    W(vkm_gguf_writer_add_arr(w, "a.empty", VKM_GGUF_I32, NULL, 0));
    W(vkm_gguf_writer_add_arr_str(w, "a.str", k_strs, k_str_lens, 4));
    W(vkm_gguf_writer_add_arr_str(w, "a.str_empty", NULL, NULL, 0));
    /* array of 3 arrays: [i32 1 2], [string "p" "qq"], [array of [u8 9]] */
    uint8_t p[128];
    size_t o = arr_hdr(p, VKM_GGUF_ARRAY, 3);
    o += arr_hdr(p + o, VKM_GGUF_I32, 2);
    put_le(p + o, 1, 4), o += 4;
    put_le(p + o, 2, 4), o += 4;
    o += arr_hdr(p + o, VKM_GGUF_STRING, 2);
    put_le(p + o, 1, 8), o += 8;
    p[o++] = 'p';
    put_le(p + o, 2, 8), o += 8;
    p[o++] = 'q', p[o++] = 'q';
    o += arr_hdr(p + o, VKM_GGUF_ARRAY, 1);
    o += arr_hdr(p + o, VKM_GGUF_U8, 1);
    p[o++] = 9;
    W(vkm_gguf_writer_add_raw(w, "a.nested", VKM_GGUF_ARRAY, p, o));

    tu_rng r;
    tu_rng_seed(&r, 42);
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = tu_rng_normal(&r);
    W(vkm_ggml_quantize_row(VKM_GGML_Q8_0, x, q8src, 64));
    W(vkm_ggml_quantize_row(VKM_GGML_Q8_0, x + 64, q8src + 68, 64));
    W(vkm_ggml_quantize_row(VKM_GGML_Q4_K, x, q4ksrc, 256));
    for (int i = 0; i < 120; i++) f16src[i] = vkmix_f32_to_f16(x[i]);
    for (int i = 0; i < 176; i++) q5ksrc[i] = (uint8_t)tu_rng_u32(&r);
    float f32src[15];
    for (int i = 0; i < 15; i++) f32src[i] = (float)i * 0.5f;
    int64_t ne_f32[2] = {3, 5}, ne_q8[2] = {64, 2}, ne_f16[4] = {2, 3, 4, 5}, ne_k[1] = {256};
    W(vkm_gguf_writer_add_tensor(w, "w.f32", VKM_GGML_F32, 2, ne_f32, f32src, sizeof f32src));
    W(vkm_gguf_writer_add_tensor(w, "w.q8_0", VKM_GGML_Q8_0, 2, ne_q8, q8src, 136));
    W(vkm_gguf_writer_add_tensor(w, "w.f16", VKM_GGML_F16, 4, ne_f16, f16src, 240));
    W(vkm_gguf_writer_add_tensor(w, "w.q4_K", VKM_GGML_Q4_K, 1, ne_k, q4ksrc, 144));
    W(vkm_gguf_writer_add_tensor(w, "w.q5_K", VKM_GGML_Q5_K, 1, ne_k, q5ksrc, 176)); /* known, unsupported */
    return finish(w);
}

static void check_alltypes(const vkm_gguf *g, uint32_t alignment, const uint8_t *q8src, const uint8_t *q4ksrc,
                           const uint16_t *f16src, const uint8_t *q5ksrc)
{
    char err[256];
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f;
    double d;
    int b;
    const char *s;
    size_t n;
    uint64_t align = alignment ? alignment : 32;
    CHECK(vkm_gguf_version(g) == 3 && vkm_gguf_alignment(g) == align, "version %u alignment %llu", vkm_gguf_version(g),
          (unsigned long long)vkm_gguf_alignment(g));
    CHECK(vkm_gguf_n_kv(g) == 32 + (alignment ? 1 : 0), "n_kv %lld", (long long)vkm_gguf_n_kv(g));
    CHECK(vkm_gguf_data_offset(g) % align == 0, "data offset aligned");

    /* exact values and coercions */
    CHECK(vkm_gguf_get_u32(g, "t.u8", &u32, err, sizeof err) == VKMIX_OK && u32 == 250, "u8 as u32");
    CHECK(vkm_gguf_get_i64(g, "t.u8", &i64, err, sizeof err) == VKMIX_OK && i64 == 250, "u8 as i64");
    CHECK(vkm_gguf_get_i32(g, "t.i8", &i32, err, sizeof err) == VKMIX_OK && i32 == -7, "i8 as i32");
    CHECK(vkm_gguf_get_u32(g, "t.i8", &u32, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE && strstr(err, "'t.i8'"),
          "negative i8 as u32: %s", err);
    CHECK(vkm_gguf_get_u32(g, "t.u16", &u32, err, sizeof err) == VKMIX_OK && u32 == 65000, "u16");
    CHECK(vkm_gguf_get_i32(g, "t.i16", &i32, err, sizeof err) == VKMIX_OK && i32 == -30000, "i16");
    CHECK(vkm_gguf_get_u32(g, "t.u32", &u32, err, sizeof err) == VKMIX_OK && u32 == 4000000000u, "u32");
    CHECK(vkm_gguf_get_i32(g, "t.u32", &i32, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "u32 4e9 as i32");
    CHECK(vkm_gguf_get_i32(g, "t.i32", &i32, err, sizeof err) == VKMIX_OK && i32 == -2000000000, "i32");
    CHECK(vkm_gguf_get_u64(g, "t.i32", &u64, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "negative as u64");
    CHECK(vkm_gguf_get_u64(g, "t.u64", &u64, err, sizeof err) == VKMIX_OK && u64 == 0xFEDCBA9876543210ull, "u64");
    CHECK(vkm_gguf_get_i64(g, "t.u64", &i64, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "big u64 as i64");
    CHECK(vkm_gguf_get_u32(g, "t.u64", &u32, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "big u64 as u32");
    CHECK(vkm_gguf_get_i64(g, "t.i64", &i64, err, sizeof err) == VKMIX_OK && i64 == -9000000000000000000ll, "i64");
    CHECK(vkm_gguf_get_u32(g, "t.i64small", &u32, err, sizeof err) == VKMIX_OK && u32 == 12, "small i64 as u32");
    CHECK(vkm_gguf_get_f32(g, "t.f32", &f, err, sizeof err) == VKMIX_OK && f == 3.5f, "f32");
    CHECK(vkm_gguf_get_f64(g, "t.f32", &d, err, sizeof err) == VKMIX_OK && d == 3.5, "f32 as f64");
    CHECK(vkm_gguf_get_f64(g, "t.f64", &d, err, sizeof err) == VKMIX_OK && d == -1e300, "f64");
    CHECK(vkm_gguf_get_f32(g, "t.f64", &f, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE && strstr(err, "'t.f64'"),
          "f64 -1e300 does not fit f32: %s", err);
    CHECK(vkm_gguf_get_f32(g, "t.f64small", &f, err, sizeof err) == VKMIX_OK && f == 0.125f, "f64 as f32");
    CHECK(vkm_gguf_get_f32(g, "t.u32", &f, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "u32 as f32");
    CHECK(vkm_gguf_get_bool(g, "t.true", &b, err, sizeof err) == VKMIX_OK && b == 1, "true");
    CHECK(vkm_gguf_get_bool(g, "t.false", &b, err, sizeof err) == VKMIX_OK && b == 0, "false");
    CHECK(vkm_gguf_get_bool(g, "t.u8", &b, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "u8 as bool");
    CHECK(vkm_gguf_get_u32(g, "t.true", &u32, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "bool as u32");
    CHECK(vkm_gguf_get_str(g, "t.str", &s, &n, err, sizeof err) == VKMIX_OK && n == 5 && strcmp(s, "hello") == 0,
          "str");
    CHECK(vkm_gguf_get_str(g, "t.strnul", &s, &n, err, sizeof err) == VKMIX_OK && n == 3 && memcmp(s, "a\0b", 4) == 0,
          "str with NUL");
    CHECK(vkm_gguf_get_str(g, "t.empty", &s, &n, err, sizeof err) == VKMIX_OK && n == 0 && s[0] == 0, "empty str");
    CHECK(vkm_gguf_get_str(g, "t.u8", &s, &n, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE && strstr(err, "'t.u8'"),
          "u8 as str: %s", err);
    CHECK(vkm_gguf_get_u32(g, "t.str", &u32, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "str as u32");
    CHECK(vkm_gguf_get_u32(g, "nope.missing", &u32, err, sizeof err) == VKMIX_ERROR_GGUF_MISSING_KEY &&
              strstr(err, "'nope.missing'"), "missing: %s", err);
    CHECK(vkm_gguf_get_str(g, "nope.missing", &s, &n, NULL, 0) == VKMIX_ERROR_GGUF_MISSING_KEY, "missing, no err buf");
    CHECK(vkm_gguf_find_key(g, "t.str") >= 0 && vkm_gguf_find_key(g, "t.st") == -1, "find_key");
    CHECK(vkm_gguf_key_type(g, vkm_gguf_find_key(g, "a.nested")) == VKM_GGUF_ARRAY, "key type");

    /* arrays */
    vkm_gguf_array a;
    struct { const char *key; uint32_t type; const void *src; uint64_t count; } arrs[] = {
        {"a.u8", VKM_GGUF_U8, k_u8s, 3},       {"a.i8", VKM_GGUF_I8, k_i8s, 3},
        {"a.u16", VKM_GGUF_U16, k_u16s, 3},    {"a.i16", VKM_GGUF_I16, k_i16s, 3},
        {"a.u32", VKM_GGUF_U32, k_u32s, 3},    {"a.i32", VKM_GGUF_I32, k_i32s, 4},
        {"a.u64", VKM_GGUF_U64, k_u64s, 3},    {"a.i64", VKM_GGUF_I64, k_i64s, 3},
        {"a.f32", VKM_GGUF_F32, k_f32s, 4},    {"a.f64", VKM_GGUF_F64, k_f64s, 3},
        {"a.bool", VKM_GGUF_BOOL, k_bools, 4}, {"a.empty", VKM_GGUF_I32, NULL, 0},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        vkmix_error e = vkm_gguf_get_arr(g, arrs[i].key, (int)arrs[i].type, &a, err, sizeof err);
        CHECK(e == VKMIX_OK, "%s: %s", arrs[i].key, err);
        if (e != VKMIX_OK) continue;
        size_t es = vkm_gguf_type_size(arrs[i].type);
        CHECK(a.type == arrs[i].type && a.count == arrs[i].count && a.size == a.count * es, "%s header", arrs[i].key);
        CHECK(a.count == 0 || memcmp(a.data, arrs[i].src, (size_t)(a.count * es)) == 0, "%s raw bytes", arrs[i].key);
    }
    CHECK(vkm_gguf_get_arr(g, "a.i32", VKM_GGUF_F32, &a, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE &&
              strstr(err, "'a.i32'"), "wrong element type: %s", err);
    CHECK(vkm_gguf_get_arr(g, "t.str", -1, &a, err, sizeof err) == VKMIX_ERROR_GGUF_BAD_VALUE, "str as array");
    CHECK(vkm_gguf_get_arr(g, "a.i32", -1, &a, err, sizeof err) == VKMIX_OK, "a.i32");
    CHECK(vkm_gguf_arr_i64(&a, 3, &i64) == VKMIX_OK && i64 == INT32_MIN, "a.i32[3]");
    CHECK(vkm_gguf_arr_u64(&a, 0, &u64) == VKMIX_ERROR_GGUF_BAD_VALUE, "a.i32[0] = -1 as u64");
    CHECK(vkm_gguf_arr_i64(&a, 4, &i64) == VKMIX_ERROR_INVALID_ARGUMENT, "a.i32[4] out of range");
    CHECK(vkm_gguf_arr_f32(&a, 0, &f) == VKMIX_ERROR_GGUF_BAD_VALUE, "i32 element as f32");
    CHECK(vkm_gguf_get_arr(g, "a.u64", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_u64(&a, 1, &u64) == VKMIX_OK &&
              u64 == UINT64_MAX && vkm_gguf_arr_i64(&a, 1, &i64) == VKMIX_ERROR_GGUF_BAD_VALUE, "a.u64[1]");
    CHECK(vkm_gguf_get_arr(g, "a.i64", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_i64(&a, 0, &i64) == VKMIX_OK &&
              i64 == INT64_MIN, "a.i64[0]");
    CHECK(vkm_gguf_get_arr(g, "a.f32", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_f32(&a, 1, &f) == VKMIX_OK &&
              f == -2.25f && vkm_gguf_arr_f32(&a, 3, &f) == VKMIX_OK && f == 1e-30f, "a.f32");
    CHECK(vkm_gguf_get_arr(g, "a.f64", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_f64(&a, 2, &d) == VKMIX_OK &&
              d == 5e-324 && vkm_gguf_arr_f32(&a, 1, &f) == VKMIX_ERROR_GGUF_BAD_VALUE, "a.f64");
    CHECK(vkm_gguf_get_arr(g, "a.bool", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_bool(&a, 1, &b) == VKMIX_OK &&
              b == 0 && vkm_gguf_arr_bool(&a, 3, &b) == VKMIX_OK && b == 1, "a.bool");
    CHECK(vkm_gguf_get_arr(g, "a.i8", -1, &a, err, sizeof err) == VKMIX_OK && vkm_gguf_arr_i64(&a, 0, &i64) == VKMIX_OK &&
              i64 == -128, "a.i8[0]");
    CHECK(vkm_gguf_get_arr(g, "a.str", VKM_GGUF_STRING, &a, err, sizeof err) == VKMIX_OK && a.count == 4, "a.str");
    for (uint64_t i = 0; i < 4; i++)
        CHECK(vkm_gguf_arr_str(&a, i, &s, &n) == VKMIX_OK && n == k_str_lens[i] && memcmp(s, k_strs[i], n) == 0,
              "a.str[%llu]", (unsigned long long)i);
    CHECK(vkm_gguf_arr_i64(&a, 0, &i64) == VKMIX_ERROR_GGUF_BAD_VALUE, "string element as i64");
    CHECK(vkm_gguf_get_arr(g, "a.str_empty", VKM_GGUF_STRING, &a, err, sizeof err) == VKMIX_OK && a.count == 0 &&
              vkm_gguf_arr_str(&a, 0, &s, &n) == VKMIX_ERROR_INVALID_ARGUMENT, "a.str_empty");
    CHECK(vkm_gguf_get_arr(g, "a.nested", VKM_GGUF_ARRAY, &a, err, sizeof err) == VKMIX_OK && a.count == 3, "nested");
    vkm_gguf_array sub, sub2;
    CHECK(vkm_gguf_arr_sub(&a, 0, &sub) == VKMIX_OK && sub.type == VKM_GGUF_I32 && sub.count == 2 &&
              vkm_gguf_arr_i64(&sub, 1, &i64) == VKMIX_OK && i64 == 2, "nested[0]");
    CHECK(vkm_gguf_arr_sub(&a, 1, &sub) == VKMIX_OK && sub.type == VKM_GGUF_STRING && sub.count == 2 &&
              vkm_gguf_arr_str(&sub, 1, &s, &n) == VKMIX_OK && n == 2 && memcmp(s, "qq", 2) == 0, "nested[1]");
    CHECK(vkm_gguf_arr_sub(&a, 2, &sub) == VKMIX_OK && sub.type == VKM_GGUF_ARRAY && sub.count == 1 &&
              vkm_gguf_arr_sub(&sub, 0, &sub2) == VKMIX_OK && sub2.type == VKM_GGUF_U8 && sub2.count == 1 &&
              vkm_gguf_arr_u64(&sub2, 0, &u64) == VKMIX_OK && u64 == 9, "nested[2][0][0]");
    CHECK(vkm_gguf_arr_sub(&a, 3, &sub) == VKMIX_ERROR_INVALID_ARGUMENT, "nested[3] out of range");

    /* tensors */
    CHECK(vkm_gguf_n_tensors(g) == 5, "n_tensors");
    struct { const char *name; uint32_t type; uint32_t nd; int64_t ne[4]; uint64_t bytes; const void *src; } ts[] = {
        {"w.f32", VKM_GGML_F32, 2, {3, 5, 1, 1}, 60, NULL},
        {"w.q8_0", VKM_GGML_Q8_0, 2, {64, 2, 1, 1}, 136, q8src},
        {"w.f16", VKM_GGML_F16, 4, {2, 3, 4, 5}, 240, f16src},
        {"w.q4_K", VKM_GGML_Q4_K, 1, {256, 1, 1, 1}, 144, q4ksrc},
        {"w.q5_K", VKM_GGML_Q5_K, 1, {256, 1, 1, 1}, 176, q5ksrc},
    };
    uint64_t expect_off = 0;
    for (int i = 0; i < 5; i++) {
        const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
        CHECK(t && strcmp(t->name, ts[i].name) == 0, "tensor %d name", i);
        if (!t) continue;
        CHECK(vkm_gguf_find_tensor(g, ts[i].name) == i, "find %s", ts[i].name);
        CHECK(t->type == ts[i].type && t->n_dims == ts[i].nd && memcmp(t->ne, ts[i].ne, sizeof t->ne) == 0 &&
                  t->n_bytes == ts[i].bytes && t->n_elements == (uint64_t)(ts[i].ne[0] * ts[i].ne[1] * ts[i].ne[2] * ts[i].ne[3]),
              "%s info", ts[i].name);
        CHECK(t->offset == expect_off && t->offset % align == 0, "%s offset %llu, want %llu", ts[i].name,
              (unsigned long long)t->offset, (unsigned long long)expect_off);
        expect_off = (t->offset + t->n_bytes + align - 1) / align * align;
        if (ts[i].src) CHECK(memcmp(t->data, ts[i].src, (size_t)t->n_bytes) == 0, "%s data", ts[i].name);
    }
    const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, 0);
    if (t) {
        float v[15];
        CHECK(vkm_ggml_dequantize_row(t->type, t->data, v, 15) == VKMIX_OK && v[14] == 7.0f, "w.f32 data");
    }
    CHECK(vkm_gguf_find_tensor(g, "w.q8") == -1, "find missing tensor");
    CHECK(vkm_gguf_file_size(g) == vkm_gguf_data_offset(g) + expect_off, "file ends after the padded last tensor");
    CHECK(walk_ok(g), "walk");
}

static void test_writer_roundtrip(void)
{
    static const uint32_t aligns[] = {0, 1, 64, 4096};
    for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
        uint8_t q8[136], q4k[144], q5k[176];
        uint16_t f16[120];
        buf f = alltypes_file(aligns[ai], q8, q4k, f16, q5k);
        /* header bytes as llama.cpp writes them */
        CHECK(memcmp(f.b, "GGUF\x03\x00\x00\x00", 8) == 0, "magic + version 3");
        char err[256] = "";
        vkm_gguf *g = NULL;
        vkmix_error e = vkm_gguf_open_memory(f.b, f.n, &g, err, sizeof err);
        CHECK(e == VKMIX_OK, "alltypes (alignment %u): %s", aligns[ai], err);
        if (e == VKMIX_OK) check_alltypes(g, aligns[ai], q8, q4k, f16, q5k);
        vkm_gguf_close(g);
        if (aligns[ai] == 0) corpus_write("ok-alltypes.gguf", &f);
        if (aligns[ai] == 1) corpus_write("ok-alltypes-align1.gguf", &f);

        /* the same through a file and mmap */
        if (aligns[ai] == 0) {
            const char *dir = getenv("VKMIX_BINARY_DIR");
            char path[1024];
            snprintf(path, sizeof path, "%s/test_gguf_roundtrip.gguf", dir ? dir : ".");
            vkm_gguf_writer *w;
            W(vkm_gguf_writer_create(&w));
            W(vkm_gguf_writer_add_str(w, "general.architecture", "llama"));
            int64_t ne[1] = {32};
            W(vkm_gguf_writer_add_tensor(w, "w", VKM_GGML_Q8_0, 1, ne, q8, 34));
            CHECK(vkm_gguf_writer_write_file(w, path, err, sizeof err) == VKMIX_OK, "write_file: %s", err);
            vkm_gguf_writer_free(w);
            e = vkm_gguf_open(path, &g, err, sizeof err);
            CHECK(e == VKMIX_OK, "open written file: %s", err);
            if (e == VKMIX_OK) {
                const vkm_gguf_tensor *t = NULL;
                CHECK(vkm_gguf_get_tensor(g, "w", &t, err, sizeof err) == VKMIX_OK && memcmp(t->data, q8, 34) == 0,
                      "mmapped tensor data");
                CHECK(vkm_gguf_file_size(g) == vkm_gguf_data_offset(g) + 64, "34 data bytes padded to 64");
                vkm_gguf_close(g);
            }
            remove(path);
        }
        free(f.b);
    }
}

static void test_writer_refusals(void)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_u32(w, "k", 1));
    CHECK(vkm_gguf_writer_add_str(w, "k", "again") == VKMIX_ERROR_GGUF_DUPLICATE, "duplicate key");
    CHECK(vkm_gguf_writer_add_u32(w, "general.alignment", 48) == VKMIX_ERROR_GGUF_BAD_VALUE, "alignment 48");
    CHECK(vkm_gguf_writer_add_u32(w, "general.alignment", 0) == VKMIX_ERROR_GGUF_BAD_VALUE, "alignment 0");
    CHECK(vkm_gguf_writer_add_u64(w, "general.alignment", 64) == VKMIX_ERROR_GGUF_BAD_VALUE, "alignment as u64");
    CHECK(vkm_gguf_writer_add_arr(w, "a", 13, "x", 1) == VKMIX_ERROR_GGUF_BAD_TYPE, "unknown array type");
    CHECK(vkm_gguf_writer_add_arr(w, "a", VKM_GGUF_STRING, "x", 1) == VKMIX_ERROR_INVALID_ARGUMENT, "string via add_arr");
    uint8_t two = 2;
    CHECK(vkm_gguf_writer_add_arr(w, "a", VKM_GGUF_BOOL, &two, 1) == VKMIX_ERROR_GGUF_BAD_VALUE, "bool 2");
    uint8_t raw[12];
    arr_hdr(raw, VKM_GGUF_U32, 5); /* claims 5 elements, has none */
    CHECK(vkm_gguf_writer_add_raw(w, "r", VKM_GGUF_ARRAY, raw, 12) == VKMIX_ERROR_GGUF_OVERFLOW, "raw short array");
    CHECK(vkm_gguf_writer_add_raw(w, "r", 99, raw, 1) == VKMIX_ERROR_GGUF_BAD_TYPE, "raw unknown type");
    CHECK(vkm_gguf_writer_add_raw(w, "r", VKM_GGUF_U8, raw, 2) == VKMIX_ERROR_GGUF_BAD_VALUE, "raw trailing bytes");
    float x[64] = {0};
    int64_t ne[2] = {32, 2}, ne_bad[1] = {48};
    W(vkm_gguf_writer_add_tensor(w, "t", VKM_GGML_F32, 2, ne, x, 256));
    CHECK(vkm_gguf_writer_add_tensor(w, "t", VKM_GGML_F32, 2, ne, x, 256) == VKMIX_ERROR_GGUF_DUPLICATE, "dup tensor");
    CHECK(vkm_gguf_writer_add_tensor(w, "u", 4, 2, ne, x, 256) == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "type 4");
    CHECK(vkm_gguf_writer_add_tensor(w, "u", VKM_GGML_Q8_0, 1, ne_bad, x, 51) == VKMIX_ERROR_GGUF_BAD_VALUE, "48 q8_0");
    CHECK(vkm_gguf_writer_add_tensor(w, "u", VKM_GGML_F32, 2, ne, x, 255) == VKMIX_ERROR_INVALID_ARGUMENT, "size");
    CHECK(vkm_gguf_writer_add_tensor(w, "u", VKM_GGML_F32, 5, ne, x, 256) == VKMIX_ERROR_INVALID_ARGUMENT, "5 dims");
    CHECK(vkm_gguf_writer_add_tensor(w, "u", VKM_GGML_F32, 0, ne, x, 4) == VKMIX_ERROR_INVALID_ARGUMENT, "0 dims");
    CHECK(vkm_gguf_writer_add_tensor(w, "", VKM_GGML_F32, 2, ne, x, 256) == VKMIX_ERROR_INVALID_ARGUMENT, "empty name");
    CHECK(vkm_gguf_writer_add_u32(w, "", 1) == VKMIX_ERROR_INVALID_ARGUMENT, "empty key");
    char err[128];
    CHECK(vkm_gguf_writer_write_file(w, "/nonexistent-dir/x.gguf", err, sizeof err) == VKMIX_ERROR_IO &&
              strstr(err, "/nonexistent-dir/x.gguf"), "write to a bad path: %s", err);
    vkm_gguf_writer_free(w);
    vkm_gguf_writer_free(NULL);
}

/* ------------------------------------------------------------------ malformed files */

/* Field locations in small_file(), found by the unique names. */
static size_t key_off(const buf *f, const char *key) { return find_bytes(f, key); }
static size_t key_type_off(const buf *f, const char *key) { return key_off(f, key) + strlen(key); }
static size_t key_val_off(const buf *f, const char *key) { return key_type_off(f, key) + 4; }
static size_t tns_off(const buf *f, const char *name) { return find_bytes(f, name) + strlen(name); } /* n_dims */

static void m_magic(buf *f) { f->b[3] = 'X'; }
static void m_version1(buf *f) { put_le(f->b + 4, 1, 4); }
static void m_version4(buf *f) { put_le(f->b + 4, 4, 4); }
static void m_bigendian(buf *f) { put_le(f->b + 4, 0x03000000u, 4); }
static void m_v2(buf *f) { put_le(f->b + 4, 2, 4); }
static void m_empty(buf *f) { f->n = 0; }
static void m_short(buf *f) { f->n = 3; }
static void m_nkv_huge(buf *f) { put_le(f->b + 16, 1ull << 40, 8); }
static void m_nt_huge(buf *f) { put_le(f->b + 8, 1ull << 40, 8); }
static void m_nkv_max(buf *f) { put_le(f->b + 16, UINT64_MAX, 8); }
static void m_keylen_huge(buf *f) { put_le(f->b + 24, 1ull << 62, 8); }
static void m_strlen_huge(buf *f) { put_le(f->b + key_val_off(f, "general.architecture"), 1ull << 62, 8); }
static void m_strlen_over(buf *f) { put_le(f->b + key_val_off(f, "general.architecture"), f->n, 8); }
static void m_arrcount_huge(buf *f) { put_le(f->b + key_val_off(f, "tokenizer.ggml.tokens") + 4, 1ull << 60, 8); }
static void m_arrcount_f32(buf *f) { put_le(f->b + key_val_off(f, "test.scores") + 4, 1ull << 62, 8); }
static void m_arrcount_max(buf *f) { put_le(f->b + key_val_off(f, "test.scores") + 4, UINT64_MAX, 8); }
static void m_nested_count(buf *f) { put_le(f->b + key_val_off(f, "test.nested") + 12 + 4, 1ull << 61, 8); }
static void m_ndims5(buf *f) { put_le(f->b + tns_off(f, "tok_a"), 5, 4); }
static void m_ndims0(buf *f) { put_le(f->b + tns_off(f, "tok_a"), 0, 4); }
static void m_nt_plus1(buf *f) { put_le(f->b + 8, 3, 8); }   /* the file holds 2 tensor infos */
static void m_nkv_plus1(buf *f) { put_le(f->b + 16, 9, 8); }  /* the file holds 8 keys */
static void m_keyempty(buf *f)
{
    free(f->b);
    uint8_t p[4] = {1, 0, 0, 0};
    *f = hand_kv_file("", VKM_GGUF_U32, p, sizeof p);
}
static void m_zerodim(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 4 + 8, 0, 8); }
static void m_dimoverflow(buf *f)
{
    put_le(f->b + tns_off(f, "tok_a") + 4, 1ull << 37, 8);
    put_le(f->b + tns_off(f, "tok_a") + 12, 1ull << 30, 8);
}
static void m_bytesoverflow(buf *f) { put_le(f->b + tns_off(f, "tok_b") + 4, 1ull << 62, 8); }
static void m_dimneg(buf *f) { put_le(f->b + tns_off(f, "tok_b") + 4, 1ull << 63, 8); }
static void m_offset_past(buf *f) { put_le(f->b + tns_off(f, "tok_b") + 16, 1ull << 20, 8); }
static void m_offset_huge(buf *f) { put_le(f->b + tns_off(f, "tok_b") + 16, UINT64_MAX - 31, 8); }
static void m_offset_misaligned(buf *f) { f->b[tns_off(f, "tok_b") + 16] += 1; }
static void m_data_past(buf *f) { put_le(f->b + tns_off(f, "tok_b") + 4, 16, 8); }
static void m_dupkey(buf *f) { f->b[key_off(f, "test.dup1") + 8] = '0'; }
static void m_duptensor(buf *f) { f->b[find_bytes(f, "tok_b") + 4] = 'a'; }
static void m_valuetype(buf *f) { put_le(f->b + key_type_off(f, "test.count"), 13, 4); }
static void m_valuetype_max(buf *f) { put_le(f->b + key_type_off(f, "test.count"), UINT32_MAX, 4); }
static void m_arrtype(buf *f) { put_le(f->b + key_val_off(f, "tokenizer.ggml.tokens"), 99, 4); }
static void m_nested_type(buf *f) { put_le(f->b + key_val_off(f, "test.nested") + 12, 77, 4); }
static void m_ttype4(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 20, 4, 4); }
static void m_ttype33(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 20, 33, 4); }
static void m_ttype1000(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 20, 1000, 4); }
static void m_known_unsupported_ok(buf *f)
{   /* a known type vkmix cannot run (IQ4_NL) is not the reader's business: it parses */
    put_le(f->b + tns_off(f, "tok_b") + 4, 1, 8);   /* tok_b shrinks to 1 float (4 bytes) */
    put_le(f->b + tns_off(f, "tok_a") + 20, VKM_GGML_IQ4_NL, 4); /* 32-wide, 18 bytes/block */
}
static void m_rowlen(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 4, 48, 8); }
static void m_rowlen_k(buf *f) { put_le(f->b + tns_off(f, "tok_a") + 20, VKM_GGML_Q4_K, 4); }
static void m_bool2(buf *f) { f->b[key_val_off(f, "test.flag")] = 2; }
static void m_keynul(buf *f) { f->b[key_off(f, "test.count") + 9] = 0; }
static void m_tensornul(buf *f) { f->b[find_bytes(f, "tok_b") + 3] = 0; }

static buf align_file(int as_string)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    if (as_string) W(vkm_gguf_writer_add_str(w, "general.alignmenX", "32"));
    else W(vkm_gguf_writer_add_u32(w, "general.alignment", 32));
    W(vkm_gguf_writer_add_u32(w, "test.count", 3));
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne[1] = {8};
    W(vkm_gguf_writer_add_tensor(w, "tok_b", VKM_GGML_F32, 1, ne, v, sizeof v));
    return finish(w);
}
static void m_align_npot(buf *f)
{
    free(f->b);
    *f = align_file(0);
    put_le(f->b + key_val_off(f, "general.alignment"), 48, 4);
}
static void m_align_zero(buf *f)
{
    free(f->b);
    *f = align_file(0);
    put_le(f->b + key_val_off(f, "general.alignment"), 0, 4);
}
static void m_align_huge(buf *f)
{   /* a legal power of two, but the data section then starts past the end */
    free(f->b);
    *f = align_file(0);
    put_le(f->b + key_val_off(f, "general.alignment"), 1u << 31, 4);
}
static void m_align_type(buf *f)
{
    free(f->b);
    *f = align_file(1);
    f->b[find_bytes(f, "general.alignmenX") + 16] = 't';
}

static buf nested_file(int levels)
{   /* `levels` arrays, each holding one array, the innermost holding one u8 */
    uint8_t p[16 * 12 + 1];
    size_t o = 0;
    for (int i = 0; i < levels; i++) o += arr_hdr(p + o, i == levels - 1 ? VKM_GGUF_U8 : VKM_GGUF_ARRAY, 1);
    p[o++] = 42;
    return hand_kv_file("test.deep", VKM_GGUF_ARRAY, p, o);
}
static void m_nested_ok(buf *f) { free(f->b); *f = nested_file(VKM_GGUF_MAX_NESTING); }
static void m_nested_deep(buf *f) { free(f->b); *f = nested_file(VKM_GGUF_MAX_NESTING + 1); }
static void m_notensors_ok(buf *f)
{
    free(f->b);
    uint8_t p[8 + 5];
    put_le(p, 5, 8);
    memcpy(p + 8, "llama", 5);
    *f = hand_kv_file("general.architecture", VKM_GGUF_STRING, p, sizeof p); /* no padding at all */
}
static void m_quant_types_ok(buf *f)
{
    free(f->b);
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_str(w, "general.architecture", "llama"));
    W(vkm_gguf_writer_add_u32(w, "general.alignment", 1)); /* unaligned tensor data */
    static const uint32_t types[] = {VKM_GGML_F32,  VKM_GGML_F16,   VKM_GGML_BF16,  VKM_GGML_Q8_0,
                                     VKM_GGML_Q4_0, VKM_GGML_Q4_K,  VKM_GGML_Q6_K,  VKM_GGML_Q5_K,
                                     VKM_GGML_IQ2_XXS, VKM_GGML_MXFP4, VKM_GGML_I32, VKM_GGML_NVFP4};
    tu_rng r;
    tu_rng_seed(&r, 7);
    float x[256];
    uint8_t q[512];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const vkm_ggml_type_info *ti = vkm_ggml_type_get(types[i]);
        int64_t ne[1] = {ti->block_size == 1 ? 8 : ti->block_size};
        uint64_t bytes = 0;
        W(vkm_ggml_row_size(types[i], ne[0], &bytes));
        for (int j = 0; j < 256; j++) x[j] = tu_rng_normal(&r);
        if (ti->supported) W(vkm_ggml_quantize_row(types[i], x, q, ne[0]));
        else for (uint64_t j = 0; j < bytes; j++) q[j] = (uint8_t)tu_rng_u32(&r);
        char name[32];
        snprintf(name, sizeof name, "w.%s", ti->name);
        W(vkm_gguf_writer_add_tensor(w, name, types[i], 1, ne, q, bytes));
    }
    *f = finish(w);
}

typedef struct {
    const char *name;     /* corpus file name: bad-<what>-<code>.gguf or ok-<what>.gguf */
    vkmix_error code;
    const char *needle;   /* the message must contain this */
    void (*make)(buf *f); /* mutates a copy of small_file() (or replaces it) */
} file_case;

static const file_case k_cases[] = {
    {"ok-small.gguf", VKMIX_OK, NULL, NULL},
    {"ok-v2.gguf", VKMIX_OK, NULL, m_v2},
    {"ok-nested-max.gguf", VKMIX_OK, NULL, m_nested_ok},
    {"ok-notensors-nopadding.gguf", VKMIX_OK, NULL, m_notensors_ok},
    {"ok-quant-types-align1.gguf", VKMIX_OK, NULL, m_quant_types_ok},
    {"ok-known-unsupported-type.gguf", VKMIX_OK, NULL, m_known_unsupported_ok},
    {"bad-magic-10.gguf", VKMIX_ERROR_GGUF_MAGIC, "magic", m_magic},
    {"bad-version1-10.gguf", VKMIX_ERROR_GGUF_MAGIC, "version 1 ", m_version1},
    {"bad-version4-10.gguf", VKMIX_ERROR_GGUF_MAGIC, "version 4 ", m_version4},
    {"bad-bigendian-10.gguf", VKMIX_ERROR_GGUF_MAGIC, "big-endian", m_bigendian},
    {"bad-empty-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "too short", m_empty},
    {"bad-short-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "too short", m_short},
    {"bad-nkv-huge-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "n_kv", m_nkv_huge},
    {"bad-nkv-max-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "n_kv", m_nkv_max},
    {"bad-ntensors-huge-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "n_tensors", m_nt_huge},
    {"bad-keylen-huge-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "key #0", m_keylen_huge},
    {"bad-strlen-huge-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'general.architecture'", m_strlen_huge},
    {"bad-strlen-over-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'general.architecture'", m_strlen_over},
    {"bad-arrcount-huge-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tokenizer.ggml.tokens'", m_arrcount_huge},
    {"bad-arrcount-f32-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'test.scores'", m_arrcount_f32},
    {"bad-arrcount-max-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'test.scores'", m_arrcount_max},
    {"bad-nested-count-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'test.nested'", m_nested_count},
    {"bad-nested-deep-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'test.deep'", m_nested_deep},
    {"bad-ndims5-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tok_a'", m_ndims5},
    {"bad-zerodim-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tok_a'", m_zerodim},
    {"bad-ndims0-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "tensor 'tok_a': n_dims 0 is not in 1..4", m_ndims0},
    {"bad-ntensors-plus1-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW,
     "; does the header promise more tensors (3) than the file holds?", m_nt_plus1},
    {"bad-nkv-plus1-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "; does the header promise more keys (9) than the file holds?",
     m_nkv_plus1},
    {"bad-keyempty-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE,
     "key #0 has an empty name; the header promises 1 key, maybe more than the file holds", m_keyempty},
    {"bad-dim-product-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tok_a'", m_dimoverflow},
    {"bad-bytes-overflow-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tok_b'", m_bytesoverflow},
    {"bad-dim-negative-12.gguf", VKMIX_ERROR_GGUF_OVERFLOW, "'tok_b'", m_dimneg},
    {"bad-offset-past-end-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "'tok_b'", m_offset_past},
    {"bad-offset-huge-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "'tok_b'", m_offset_huge},
    {"bad-offset-misaligned-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "'tok_b': offset 97 is not a multiple",
     m_offset_misaligned},
    {"bad-data-past-end-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "'tok_b'", m_data_past},
    {"bad-dupkey-13.gguf", VKMIX_ERROR_GGUF_DUPLICATE, "duplicate key 'test.dup0'", m_dupkey},
    {"bad-duptensor-13.gguf", VKMIX_ERROR_GGUF_DUPLICATE, "duplicate tensor 'tok_a'", m_duptensor},
    {"bad-valuetype-14.gguf", VKMIX_ERROR_GGUF_BAD_TYPE, "'test.count'", m_valuetype},
    {"bad-valuetype-max-14.gguf", VKMIX_ERROR_GGUF_BAD_TYPE, "'test.count'", m_valuetype_max},
    {"bad-arrtype-14.gguf", VKMIX_ERROR_GGUF_BAD_TYPE, "'tokenizer.ggml.tokens'", m_arrtype},
    {"bad-nested-type-14.gguf", VKMIX_ERROR_GGUF_BAD_TYPE, "'test.nested'", m_nested_type},
    {"bad-tensortype4-17.gguf", VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type 4 in tensor 'tok_a'",
     m_ttype4},
    {"bad-tensortype33-17.gguf", VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type 33 in tensor 'tok_a'",
     m_ttype33},
    {"bad-tensortype1000-17.gguf", VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE,
     "unsupported tensor type 1000 in tensor 'tok_a'", m_ttype1000},
    {"bad-rowlen-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'tok_a': row length 48", m_rowlen},
    {"bad-rowlen-q4k-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'tok_a': row length 32", m_rowlen_k},
    {"bad-bool2-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'test.flag'", m_bool2},
    {"bad-keynul-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "NUL", m_keynul},
    {"bad-tensornul-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "NUL", m_tensornul},
    {"bad-align-npot-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'general.alignment': 48", m_align_npot},
    {"bad-align-zero-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'general.alignment': 0", m_align_zero},
    {"bad-align-type-16.gguf", VKMIX_ERROR_GGUF_BAD_VALUE, "'general.alignment'", m_align_type},
    {"bad-align-huge-11.gguf", VKMIX_ERROR_GGUF_TRUNCATED, "'tok_b'", m_align_huge},
};

static void test_cases(void)
{
    buf base = small_file();
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const file_case *c = &k_cases[i];
        buf f = buf_copy(&base);
        if (c->make) c->make(&f);
        char err[512] = "";
        int walk_bad = 0;
        vkmix_error e = parse_walk(&f, err, sizeof err, &walk_bad);
        CHECK(e == c->code, "%s: got %d (%s), want %d", c->name, e, err, c->code);
        if (c->needle) CHECK(strstr(err, c->needle) != NULL, "%s: message \"%s\" lacks \"%s\"", c->name, err, c->needle);
        if (e != VKMIX_OK) CHECK(err[0] != 0, "%s: empty message", c->name);
        CHECK(walk_bad == 0, "%s: walk found %d problems", c->name, walk_bad);
        if (getenv("VKMIX_TEST_VERBOSE")) printf("%-34s %2d %s\n", c->name, e, err);
        /* a NULL or tiny error buffer must be fine too */
        vkm_gguf *g = NULL;
        CHECK(vkm_gguf_open_memory(f.b, f.n, &g, NULL, 0) == c->code, "%s without err buffer", c->name);
        vkm_gguf_close(g);
        char tiny[4];
        CHECK(vkm_gguf_open_memory(f.b, f.n, &g, tiny, sizeof tiny) == c->code && strlen(tiny) < 4, "%s tiny", c->name);
        vkm_gguf_close(g);
        corpus_write(c->name, &f);
        free(f.b);
    }
    free(base.b);
}

/* Every proper prefix of a valid file fails (with TRUNCATED or OVERFLOW: a
 * length field that claims more than what is left is an OVERFLOW), never
 * crashes; a few of them become corpus seeds. */
static void test_prefixes(void)
{
    uint8_t q8[136], q4k[144], q5k[176];
    uint16_t f16[120];
    buf files[2] = {small_file(), alltypes_file(0, q8, q4k, f16, q5k)};
    for (int fi = 0; fi < 2; fi++) {
        buf *f = &files[fi];
        int counts[2] = {0, 0};
        char err[512];
        int walk_bad;
        /* the file may end with padding after the last tensor: prefixes that only cut
         * padding are valid, so cut up to the end of the last tensor's data */
        size_t end = 0;
        vkm_gguf *g = NULL;
        CHECK(vkm_gguf_open_memory(f->b, f->n, &g, err, sizeof err) == VKMIX_OK, "full file %d: %s", fi, err);
        for (int64_t i = 0; i < vkm_gguf_n_tensors(g); i++) {
            const vkm_gguf_tensor *t = vkm_gguf_tensor_at(g, i);
            size_t e = (size_t)(vkm_gguf_data_offset(g) + t->offset + t->n_bytes);
            if (e > end) end = e;
        }
        vkm_gguf_close(g);
        CHECK(end > f->n - 32 && end <= f->n, "file %d: data ends at %zu of %zu", fi, end, f->n);
        for (size_t n = 0; n < end; n++) {
            buf p = {malloc(n ? n : 1), n}; /* exact-size copy so ASan sees any overread */
            memcpy(p.b, f->b, n);
            err[0] = 0;
            vkmix_error e = parse_walk(&p, err, sizeof err, &walk_bad);
            CHECK(e == VKMIX_ERROR_GGUF_TRUNCATED || e == VKMIX_ERROR_GGUF_OVERFLOW, "file %d prefix %zu: %d (%s)", fi,
                  n, e, err);
            CHECK(err[0] != 0, "file %d prefix %zu: no message", fi, n);
            if (e == VKMIX_ERROR_GGUF_TRUNCATED) counts[0]++;
            if (e == VKMIX_ERROR_GGUF_OVERFLOW) counts[1]++;
            if (fi == 0 && (n == 7 || n == 20 || n == 40 || n == 100 || n == f->n / 2 || n == f->n - 60 ||
                            n == f->n - 1)) {
                char name[64];
                snprintf(name, sizeof name, "bad-truncated-%d-at%zu.gguf", (int)e, n);
                corpus_write(name, &p);
            }
            free(p.b);
        }
        CHECK(counts[0] > 0 && counts[1] > 0, "file %d: %d truncated, %d overflow", fi, counts[0], counts[1]);
        free(f->b);
    }
}

/* Flip bits at every byte of the small file: never a crash, every failure a
 * GGUF error with a message, every success walks cleanly. */
static void test_bitflips(void)
{
    buf base = small_file();
    static const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
    int ok = 0, failed = 0;
    for (size_t i = 0; i < base.n; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            buf f = buf_copy(&base);
            f.b[i] ^= masks[m];
            char err[512] = "";
            int walk_bad = 0;
            vkmix_error e = parse_walk(&f, err, sizeof err, &walk_bad);
            if (e == VKMIX_OK) {
                ok++;
                CHECK(walk_bad == 0, "flip %zu^%02x: walk found %d problems", i, masks[m], walk_bad);
            } else {
                failed++;
                CHECK(e >= VKMIX_ERROR_GGUF_MAGIC && e <= VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE &&
                          e != VKMIX_ERROR_GGUF_MISSING_KEY && err[0],
                      "flip %zu^%02x: code %d (%s)", i, masks[m], e, err);
            }
            free(f.b);
        }
    }
    CHECK(ok > 0 && failed > 0, "bitflips: %d ok, %d failed", ok, failed);
    free(base.b);
}

static void test_open_errors(void)
{
    char err[256] = "";
    vkm_gguf *g = (vkm_gguf *)&err; /* must be reset to NULL */
    CHECK(vkm_gguf_open("/nonexistent/model.gguf", &g, err, sizeof err) == VKMIX_ERROR_IO && g == NULL &&
              strstr(err, "/nonexistent/model.gguf"), "missing file: %s", err);
    CHECK(vkm_gguf_open("/", &g, err, sizeof err) == VKMIX_ERROR_IO, "directory: %s", err);
    CHECK(vkm_gguf_open(NULL, &g, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL path");
    CHECK(vkm_gguf_open_memory("GGUF", 4, NULL, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL out");
    CHECK(vkm_gguf_open_memory(NULL, 0, &g, err, sizeof err) == VKMIX_ERROR_GGUF_TRUNCATED, "NULL, 0");
    CHECK(vkm_gguf_open_memory(NULL, 10, &g, err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL, 10");
    const char *dir = getenv("VKMIX_BINARY_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/test_gguf_empty.gguf", dir ? dir : ".");
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fclose(fp);
        CHECK(vkm_gguf_open(path, &g, err, sizeof err) == VKMIX_ERROR_GGUF_TRUNCATED && g == NULL, "empty file: %s", err);
        remove(path);
    }
    vkm_gguf_close(NULL);
    CHECK(vkm_gguf_n_kv(NULL) == 0 && vkm_gguf_find_key(NULL, "x") == -1 && vkm_gguf_tensor_at(NULL, 0) == NULL,
          "NULL handle accessors");
    CHECK(strcmp(vkm_gguf_type_name(VKM_GGUF_STRING), "string") == 0 && strcmp(vkm_gguf_type_name(13), "unknown") == 0,
          "type names");
}

/* A vocab-sized file: 150k-entry string and f32 arrays and 300 tensors. Opening
 * must not copy the arrays, and every lookup must be direct (hash / index):
 * the whole test takes milliseconds, printed for the record. */
static void test_large(void)
{
    enum { NV = 150000, NT = 300 };
    char (*tok)[16] = malloc(sizeof(*tok) * NV);
    const char **strs = malloc(sizeof(*strs) * NV);
    float *scores = malloc(sizeof(float) * NV);
    for (int i = 0; i < NV; i++) {
        snprintf(tok[i], sizeof tok[i], "tok%d", i);
        strs[i] = tok[i];
        scores[i] = (float)-i;
    }
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, NV));
    W(vkm_gguf_writer_add_arr(w, "tokenizer.ggml.scores", VKM_GGUF_F32, scores, NV));
    float row[32] = {0};
    for (int i = 0; i < NT; i++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
        int64_t ne[1] = {32};
        row[0] = (float)i;
        W(vkm_gguf_writer_add_tensor(w, name, VKM_GGML_F32, 1, ne, row, sizeof row));
    }
    buf f = finish(w);
    clock_t t0 = clock();
    char err[256];
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open_memory(f.b, f.n, &g, err, sizeof err);
    clock_t t1 = clock();
    CHECK(e == VKMIX_OK, "large: %s", err);
    if (e == VKMIX_OK) {
        vkm_gguf_array a, sc;
        CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.tokens", VKM_GGUF_STRING, &a, err, sizeof err) == VKMIX_OK &&
                  a.count == NV, "tokens");
        CHECK(vkm_gguf_get_arr(g, "tokenizer.ggml.scores", VKM_GGUF_F32, &sc, err, sizeof err) == VKMIX_OK &&
                  (const uint8_t *)sc.data > f.b && (const uint8_t *)sc.data < f.b + f.n, "scores point into the buffer");
        int bad = 0;
        for (int i = NV - 1; i >= 0; i--) {
            const char *s;
            size_t n;
            float x;
            if (vkm_gguf_arr_str(&a, (uint64_t)i, &s, &n) != VKMIX_OK || n != strlen(tok[i]) || memcmp(s, tok[i], n))
                bad++;
            if (vkm_gguf_arr_f32(&sc, (uint64_t)i, &x) != VKMIX_OK || x != (float)-i) bad++;
        }
        for (int i = 0; i < NT; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.ffn_up.weight", i);
            int64_t k = vkm_gguf_find_tensor(g, name);
            float v = -1;
            if (k == i) memcpy(&v, vkm_gguf_tensor_at(g, k)->data, 4);
            if (k != i || v != (float)i) bad++;
        }
        CHECK(bad == 0, "large: %d lookups wrong", bad);
    }
    clock_t t2 = clock();
    printf("large file (%zu bytes): open %.1f ms, 150k strings + 150k floats + 300 tensors looked up in %.1f ms\n",
           f.n, 1000.0 * (double)(t1 - t0) / CLOCKS_PER_SEC, 1000.0 * (double)(t2 - t1) / CLOCKS_PER_SEC);
    vkm_gguf_close(g);
    free(f.b);
    free(tok);
    free(strs);
    free(scores);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0) g_corpus_dir = argv[2];
    test_writer_roundtrip();
    test_writer_refusals();
    test_cases();
    test_prefixes();
    test_bitflips();
    test_open_errors();
    test_large();
    int r1 = test_stories260k();
    int r2 = test_tinystories_q8();
    if (g_corpus_dir) printf("wrote %d corpus files to %s\n", g_corpus_written, g_corpus_dir);
    if (r1 == 77) fprintf(stderr, "stories260K missing (../shared and assets/): its real-file checks skipped\n");
    if (r2 == 77) fprintf(stderr, "../shared's TinyStories-656K missing: its real-file checks skipped\n");
    if (r1 == 1 || r2 == 1) tu_failures++;
    if (tu_failures == 0 && r1 == 77 && r2 == 77) return TEST_SKIP;
    return tu_finish("test_gguf");
}
