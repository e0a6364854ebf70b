/* Malformed models made from the shipped assets/stories260K-f16.gguf (no
 * ../shared needed): each mutation must be refused with the exact message
 * that names the real problem, both by the CPU half of loading
 * (vkm_model_meta_read / vkm_model_vocab_read on a parsed GGUF) and through
 * the public vkmix_model_load ("<path>: <message>"). The unmodified file reads
 * back the hyper-parameters and vocabulary it holds. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "gguf/gguf.h"
#include "model/model_meta.h"
#include "testutil.h"

typedef struct {
    uint8_t *b;
    size_t n;
} buf;

static buf g_asset;

static int load_asset(void)
{
    const char *src = getenv("VKMIX_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/assets/stories260K-f16.gguf", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    g_asset.b = malloc((size_t)n);
    g_asset.n = g_asset.b ? fread(g_asset.b, 1, (size_t)n, f) : 0;
    fclose(f);
    return n > 0 && g_asset.n == (size_t)n;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Offset of the bytes just after the serialized string `name` (u64 length + bytes). */
static size_t after_name(const buf *f, const char *name)
{
    size_t l = strlen(name);
    for (size_t i = 8; i + l <= f->n; i++) {
        uint64_t len = 0;
        for (int k = 0; k < 8; k++) len |= (uint64_t)f->b[i - 8 + k] << (8 * k);
        if (len == l && memcmp(f->b + i, name, l) == 0) return i + l;
    }
    fprintf(stderr, "'%s' not found in the asset\n", name);
    exit(1);
}
/* the value of a scalar key (after its 4-byte type tag) */
static size_t key_val(const buf *f, const char *key) { return after_name(f, key) + 4; }

static void m_tensors_plus1(buf *f) { put_le(f->b + 8, 49, 8); }
static void m_keys_plus1(buf *f) { put_le(f->b + 16, 20, 8); }
static void m_ctx0(buf *f) { put_le(f->b + key_val(f, "llama.context_length"), 0, 4); }
static void m_embd65(buf *f) { put_le(f->b + key_val(f, "llama.embedding_length"), 65, 4); }
static void m_kv0(buf *f) { put_le(f->b + key_val(f, "llama.attention.head_count_kv"), 0, 4); }
static void m_ndims0(buf *f) { put_le(f->b + after_name(f, "output_norm.weight"), 0, 4); }
static void m_layers0(buf *f) { put_le(f->b + key_val(f, "llama.block_count"), 0, 4); }
static void m_kv3(buf *f) { put_le(f->b + key_val(f, "llama.attention.head_count_kv"), 3, 4); }
static void m_eps0(buf *f) { put_le(f->b + key_val(f, "llama.attention.layer_norm_rms_epsilon"), 0, 4); }
static void m_rope_dims(buf *f) { put_le(f->b + key_val(f, "llama.rope.dimension_count"), 4, 4); }
static void m_bos600(buf *f) { put_le(f->b + key_val(f, "tokenizer.ggml.bos_token_id"), 600, 4); }
static void m_arch(buf *f) { memcpy(f->b + after_name(f, "general.architecture") + 4 + 8, "gpt9x", 5); }
static void m_bos_type(buf *f) { put_le(f->b + after_name(f, "tokenizer.ggml.bos_token_id"), VKM_GGUF_F32, 4); }
static void m_embd_cols(buf *f) { put_le(f->b + after_name(f, "token_embd.weight") + 4, 32, 8); }
static void m_embd_rows(buf *f) { put_le(f->b + after_name(f, "token_embd.weight") + 12, 32, 8); }
typedef struct {
    const char *name;
    void (*make)(buf *f);
    vkmix_error code;
    const char *msg; /* the exact message */
} mcase;

static const mcase k_cases[] = {
    /* the five of issue 13 */
    {"header promises one tensor more", m_tensors_plus1, VKMIX_ERROR_GGUF_BAD_VALUE,
     "tensor #48 has an empty name; the header promises 49 tensors, maybe more than the file holds"},
    {"context_length 0", m_ctx0, VKMIX_ERROR_GGUF_BAD_VALUE, "key 'llama.context_length' is 0, outside 1..16777216"},
    {"embedding_length not a multiple of head_count", m_embd65, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'llama.embedding_length' (65) is not a multiple of 'llama.attention.head_count' (8), and "
     "'llama.attention.key_length' is absent: no head size"},
    {"head_count_kv 0", m_kv0, VKMIX_ERROR_GGUF_BAD_VALUE, "key 'llama.attention.head_count_kv' is 0, outside 1..8"},
    {"tensor with 0 dimensions", m_ndims0, VKMIX_ERROR_GGUF_OVERFLOW,
     "tensor 'output_norm.weight': n_dims 0 is not in 1..4"},
    /* more of the same kind */
    {"header promises one key more", m_keys_plus1, VKMIX_ERROR_GGUF_OVERFLOW,
     "tensor #0: name length 144115188075855872 exceeds the 699878 bytes left in the file; does the header promise "
     "more keys (20) than the file holds?"},
    {"block_count 0", m_layers0, VKMIX_ERROR_GGUF_BAD_VALUE, "key 'llama.block_count' is 0, outside 1..1024"},
    {"head_count_kv 3", m_kv3, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'llama.attention.head_count' (8) is not a multiple of 'llama.attention.head_count_kv' (3)"},
    {"rms epsilon 0", m_eps0, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'llama.attention.layer_norm_rms_epsilon' is 0, must be a finite number > 0"},
    {"partial rope", m_rope_dims, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'llama.rope.dimension_count' (4): partial RoPE (of head_dim 8) is not supported"},
    {"unsupported architecture", m_arch, VKMIX_ERROR_UNSUPPORTED_ARCH,
     "unsupported architecture 'gpt9x' (vkmix runs llama and qwen2)"},
    {"embedding width not embedding_length", m_embd_cols, VKMIX_ERROR_GGUF_BAD_VALUE,
     "tensor token_embd.weight has shape [32, 512, 1, 1], expected [64, n_vocab <= 16777216]"},
    {"embedding rows fewer than tokens", m_embd_rows, VKMIX_ERROR_GGUF_BAD_VALUE,
     "tokenizer.ggml.tokens has 512 entries but the embedding has 32 rows"},
    {"bos id out of range", m_bos600, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'tokenizer.ggml.bos_token_id' is 600, not a token id (the vocabulary has 512 tokens)"},
    {"bos id of type f32", m_bos_type, VKMIX_ERROR_GGUF_BAD_VALUE,
     "key 'tokenizer.ggml.bos_token_id' has type f32, expected an integer (i64)"},
};

/* The CPU half: parse, hyper-parameters, vocabulary. */
static vkmix_error read_cpu(const buf *f, char *err, size_t errlen, vkm_model_meta *meta, vkm_tokenizer **tok)
{
    vkm_gguf *g = NULL;
    *tok = NULL;
    vkmix_error e = vkm_gguf_open_memory(f->b, f->n, &g, err, errlen);
    if (e == VKMIX_OK) e = vkm_model_meta_read(g, meta, err, errlen);
    if (e == VKMIX_OK) e = vkm_model_vocab_read(g, meta->hp.n_vocab, tok, err, errlen);
    vkm_gguf_close(g);
    return e;
}

static void test_asset_reads(void)
{
    char err[512] = "";
    vkm_model_meta meta;
    vkm_tokenizer *tok = NULL;
    vkmix_error e = read_cpu(&g_asset, err, sizeof err, &meta, &tok);
    CHECK(e == VKMIX_OK, "asset: %s", err);
    if (e != VKMIX_OK) return;
    const vkm_hparams *hp = &meta.hp;
    CHECK(meta.arch == VKM_ARCH_LLAMA && !strcmp(meta.arch_name, "llama") && !strcmp(meta.name, "llama"), "arch %s",
          meta.arch_name);
    CHECK(hp->n_embd == 64 && hp->n_layer == 5 && hp->n_head == 8 && hp->n_head_kv == 4 && hp->head_dim == 8 &&
              hp->n_ff == 172 && hp->n_vocab == 512 && hp->n_ctx_train == 2048,
          "hparams %u %u %u %u %u %u %u %u", hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim,
          hp->n_ff, hp->n_vocab, hp->n_ctx_train);
    CHECK(hp->norm_eps == 1e-5f && hp->rope_theta == 10000.0f && hp->rope_type == VKM_ROPE_NORM, "eps %g theta %g",
          (double)hp->norm_eps, (double)hp->rope_theta);
    CHECK(vkm_model_meta_check(&meta), "meta invariants");
    /* freq_i = 10000^(-2i/8) */
    CHECK(meta.rope_freqs[0] == 1.0f && meta.rope_freqs[2] > 0.00999f && meta.rope_freqs[2] < 0.01001f,
          "rope freqs %g %g", (double)meta.rope_freqs[0], (double)meta.rope_freqs[2]);
    CHECK(vkm_tokenizer_n_tokens(tok) == 512 && vkm_tokenizer_bos(tok) == 1 && vkm_tokenizer_eos(tok) == 2 &&
              vkm_tokenizer_unk(tok) == 0 && vkm_tokenizer_pad(tok) == -1 && vkm_tokenizer_type(tok) == VKM_VOCAB_SPM,
          "vocabulary");
    int32_t ids[16];
    size_t n = 0;
    CHECK(vkm_tokenize(tok, "Once", 4, 1, 0, ids, 16, &n) == VKMIX_OK && n >= 2 && ids[0] == 1, "tokenize");
    vkm_tokenizer_free(tok);
}

int main(void)
{
    REQUIRE(load_asset(), "cannot read assets/stories260K-f16.gguf (set VKMIX_SOURCE_DIR)");
    test_asset_reads();

    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "context");
    const char *bin = getenv("VKMIX_BINARY_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/test_model_malformed.gguf", bin ? bin : ".");
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const mcase *c = &k_cases[i];
        buf f = {malloc(g_asset.n), g_asset.n};
        REQUIRE(f.b, "out of memory");
        memcpy(f.b, g_asset.b, f.n);
        c->make(&f);

        char err[512] = "";
        vkm_model_meta meta;
        vkm_tokenizer *tok = NULL;
        vkmix_error e = read_cpu(&f, err, sizeof err, &meta, &tok);
        CHECK(e == c->code, "%s: code %d (%s), want %d", c->name, e, err, c->code);
        CHECK(!strcmp(err, c->msg), "%s:\n  got  \"%s\"\n  want \"%s\"", c->name, err, c->msg);
        CHECK(tok == NULL, "%s: a tokenizer despite the error", c->name);
        vkm_tokenizer_free(tok);

        /* the same through the public API, from a file */
        FILE *fp = fopen(path, "wb");
        CHECK(fp && fwrite(f.b, 1, f.n, fp) == f.n, "write %s", path);
        if (fp) fclose(fp);
        vkmix_model *m = (vkmix_model *)&f;
        e = vkmix_model_load(ctx, path, NULL, &m);
        char want[1536];
        snprintf(want, sizeof want, "%s: %s", path, c->msg);
        CHECK(e == c->code && m == NULL, "%s: vkmix_model_load gave %d", c->name, e);
        CHECK(!strcmp(vkmix_context_last_error(ctx), want), "%s: vkmix_model_load said \"%s\"", c->name,
              vkmix_context_last_error(ctx));
        if (getenv("VKMIX_TEST_VERBOSE")) printf("%-48s %2d %s\n", c->name, e, err);
        free(f.b);
    }
    remove(path);
    free(g_asset.b);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_model_malformed");
}
