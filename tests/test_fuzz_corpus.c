/* Replays every fuzz target (tests/fuzz/fuzz_*.c) over its committed inputs:
 *   tests/fuzz/corpus/<target>/   seeds (the fuzzer starts from them)
 *   tests/fuzz/regress/<target>/  inputs a fuzzing run once crashed on or
 *                                 broke a contract with (tests/fuzz/run.sh
 *                                 copies them there); they must pass now.
 * Each input is read into a buffer of exactly its size, so under ASan
 * (tests/run_all.sh) an over-read fails. A broken contract is a failed check
 * naming the file.
 *
 *   test_fuzz_corpus --write-seeds DIR   regenerates the seeds of model_meta,
 *                                        tokenize, kv_config and session_state
 *                                        into DIR/<target>/ (a device is needed)
 * (the gguf seeds come from test_gguf --write-corpus). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "fuzz_vocabs.h"
#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "testutil.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static const struct {
    const char *name;
    fuzz_fn fn;
    int min_seeds;
} k_targets[] = {
    {"gguf", vkm_fuzz_gguf, 30},
    {"model_meta", vkm_fuzz_model_meta, 4},
    {"tokenize", vkm_fuzz_tokenize, 30},
    {"kv_config", vkm_fuzz_kv_config, 10},
    {"session_state", vkm_fuzz_session_state, 8},
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs fn over every file of dir; returns the number of files (-1: no such dir). */
static int replay_dir(const char *dir, const char *target, fuzz_fn fn)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        if (!names) break;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "cannot open %s", path);
        if (f) {
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fseek(f, 0, SEEK_SET);
            uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
            size_t got = data && size > 0 ? fread(data, 1, (size_t)size, f) : 0;
            fclose(f);
            CHECK(size >= 0 && got == (size_t)size, "cannot read %s", path);
            int before = vkm_fuzz_failures;
            fn(size > 0 ? data : NULL, got);
            CHECK(vkm_fuzz_failures == before, "%s: %s broke %d contract(s)", target, names[i],
                  vkm_fuzz_failures - before);
            free(data);
        }
        free(names[i]);
    }
    free(names);
    return (int)n;
}

/* ------------------------------------------------------------------ seeds */

static const char *g_seed_dir;

static void write_seed(const char *target, const char *name, const void *p, size_t n)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", g_seed_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) CHECK(0, "mkdir %s", path);
    snprintf(path, sizeof path, "%s/%s/%s", g_seed_dir, target, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(p, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

#define W(call) CHECK((call) == VKMIX_OK, "%s", #call)

static void write_gguf_seed(const char *name, vkm_gguf_writer *w)
{
    void *p = NULL;
    size_t n = 0;
    char err[256];
    W(vkm_gguf_writer_write_memory(w, &p, &n, err, sizeof err));
    if (p) write_seed("model_meta", name, p, n);
    free(p);
    vkm_gguf_writer_free(w);
}

/* a zero tensor of type `type` [ne0, ne1] */
static void add_zero_tensor(vkm_gguf_writer *w, const char *name, uint32_t type, int64_t ne0, int64_t ne1)
{
    int64_t ne[4] = {ne0, ne1, 1, 1};
    uint64_t bytes = 0;
    W(vkm_ggml_tensor_size(type, ne, &bytes));
    void *z = calloc(1, bytes ? bytes : 1);
    W(vkm_gguf_writer_add_tensor(w, name, type, ne1 == 1 ? 1 : 2, ne, z, bytes));
    free(z);
}

/* stories260K's metadata, all of it, with token_embd.weight as zeros in Q4_0 */
static void seed_s260k(void)
{
    vkm_gguf *g = NULL;
    char err[512];
    vkmix_error e = vkm_gguf_open(vkm_fuzz_asset_path(), &g, err, sizeof err);
    CHECK(e == VKMIX_OK, "asset: %s", err);
    if (e != VKMIX_OK) return;
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    for (int64_t i = 0; i < vkm_gguf_n_kv(g); i++) {
        const void *p;
        uint64_t size;
        W(vkm_gguf_key_raw(g, i, &p, &size));
        W(vkm_gguf_writer_add_raw(w, vkm_gguf_key_name(g, i), (uint32_t)vkm_gguf_key_type(g, i), p, (size_t)size));
    }
    add_zero_tensor(w, "token_embd.weight", VKM_GGML_Q4_0, 64, 512);
    write_gguf_seed("s260k-meta-q4.gguf", w);
    vkm_gguf_close(g);
}

/* a tiny llama with every optional key, rope_freqs.weight and a chat template */
static void seed_tiny_llama(int ctx0)
{
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_str(w, "general.architecture", "llama"));
    W(vkm_gguf_writer_add_str(w, "general.name", "tiny"));
    W(vkm_gguf_writer_add_u32(w, "llama.embedding_length", 16));
    W(vkm_gguf_writer_add_u32(w, "llama.block_count", 1));
    W(vkm_gguf_writer_add_u32(w, "llama.feed_forward_length", 32));
    W(vkm_gguf_writer_add_u32(w, "llama.attention.head_count", 2));
    W(vkm_gguf_writer_add_u32(w, "llama.attention.head_count_kv", 1));
    W(vkm_gguf_writer_add_u32(w, "llama.context_length", ctx0 ? 0 : 128));
    W(vkm_gguf_writer_add_u32(w, "llama.attention.key_length", 8));
    W(vkm_gguf_writer_add_u32(w, "llama.attention.value_length", 8));
    W(vkm_gguf_writer_add_u32(w, "llama.rope.dimension_count", 8));
    W(vkm_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f));
    W(vkm_gguf_writer_add_f32(w, "llama.rope.freq_base", 500000.0f));
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "<0x41>", "\xe2\x96\x81", "a", "b", "c",
                                       "\xe2\x96\x81" "a", "ab", "<|eot_id|>", "<tool>"};
    const uint32_t n = sizeof toks / sizeof toks[0];
    float scores[sizeof toks / sizeof toks[0]];
    int32_t types[sizeof toks / sizeof toks[0]];
    for (uint32_t i = 0; i < n; i++) scores[i] = -(float)i, types[i] = VKM_TOKTYPE_NORMAL;
    types[0] = VKM_TOKTYPE_UNKNOWN, types[1] = types[2] = types[10] = VKM_TOKTYPE_CONTROL;
    types[3] = VKM_TOKTYPE_BYTE, types[11] = VKM_TOKTYPE_USER_DEFINED;
    W(vkm_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama"));
    W(vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, n));
    W(vkm_gguf_writer_add_arr(w, "tokenizer.ggml.scores", VKM_GGUF_F32, scores, n));
    W(vkm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", VKM_GGUF_I32, types, n));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0));
    W(vkm_gguf_writer_add_i32(w, "tokenizer.ggml.padding_token_id", -1));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", 10));
    W(vkm_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1));
    W(vkm_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 0));
    W(vkm_gguf_writer_add_bool(w, "tokenizer.ggml.add_space_prefix", 1));
    W(vkm_gguf_writer_add_str(w, "tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}"));
    add_zero_tensor(w, "token_embd.weight", VKM_GGML_F32, 16, n);
    float f[4] = {1.0f, 1.0f, 2.0f, 8.0f};
    int64_t ne[1] = {4};
    W(vkm_gguf_writer_add_tensor(w, "rope_freqs.weight", VKM_GGML_F32, 1, ne, f, sizeof f));
    write_gguf_seed(ctx0 ? "tiny-llama-ctx0.gguf" : "tiny-llama.gguf", w);
}

/* a tiny qwen2 with a GPT-2 byte-level BPE vocabulary, merges and specials */
static void seed_tiny_qwen2(void)
{
    vkm_fuzz_bpe b;
    vkm_fuzz_bpe_train(vkm_fuzz_sample_text, 0, 40, &b);
    const char **toks = calloc(256 + b.n_merges + 3, sizeof *toks);
    int32_t *types = calloc(256 + b.n_merges + 3, sizeof *types);
    char bytes[256][3];
    uint32_t n = 0;
    for (unsigned c = 0; c < 256; c++) {
        uint32_t cp = vkm_tok_byte_to_cp((uint8_t)c);
        memset(bytes[c], 0, 3);
        if (cp < 0x80) bytes[c][0] = (char)cp;
        else bytes[c][0] = (char)(0xC0 | (cp >> 6)), bytes[c][1] = (char)(0x80 | (cp & 0x3F));
        types[n] = VKM_TOKTYPE_NORMAL;
        toks[n++] = bytes[c];
    }
    for (uint32_t i = 0; i < b.n_merges; i++) types[n] = VKM_TOKTYPE_NORMAL, toks[n++] = b.merged[i];
    types[n] = VKM_TOKTYPE_CONTROL, toks[n++] = "<|endoftext|>";
    types[n] = VKM_TOKTYPE_CONTROL, toks[n++] = "<|im_start|>";
    types[n] = VKM_TOKTYPE_CONTROL, toks[n++] = "<|im_end|>";
    vkm_gguf_writer *w;
    W(vkm_gguf_writer_create(&w));
    W(vkm_gguf_writer_add_str(w, "general.architecture", "qwen2"));
    W(vkm_gguf_writer_add_u32(w, "qwen2.embedding_length", 8));
    W(vkm_gguf_writer_add_u32(w, "qwen2.block_count", 2));
    W(vkm_gguf_writer_add_u32(w, "qwen2.feed_forward_length", 16));
    W(vkm_gguf_writer_add_u32(w, "qwen2.attention.head_count", 1));
    W(vkm_gguf_writer_add_u32(w, "qwen2.context_length", 32768));
    W(vkm_gguf_writer_add_f32(w, "qwen2.rope.freq_base", 1000000.0f));
    W(vkm_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2"));
    W(vkm_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen2"));
    W(vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, n));
    W(vkm_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", VKM_GGUF_I32, types, n));
    W(vkm_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)b.merges, NULL, b.n_merges));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", n - 1));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", n - 3));
    W(vkm_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", n - 3));
    W(vkm_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0));
    W(vkm_gguf_writer_add_str(w, "tokenizer.chat_template", "<|im_start|>{{ role }}\n{{ content }}<|im_end|>"));
    add_zero_tensor(w, "token_embd.weight", VKM_GGML_F16, 8, n);
    write_gguf_seed("tiny-qwen2-bpe.gguf", w);
    free(toks);
    free(types);
    vkm_fuzz_bpe_free(&b);
}

static void seed_tokenize(void)
{
#define T(name, lit) {name, lit, sizeof lit - 1}
    const struct { const char *name; const char *text; size_t len; } texts[] = {
        {"sample", vkm_fuzz_sample_text, strlen(vkm_fuzz_sample_text)},
        T("empty", ""),
        T("spaces", "  a  b   "),
        T("specials", "<s>hi</s><|im_start|>user\n<tool><|im_end|>x<|endoftext|> Lily<unk>"),
        T("invalid-utf8", "a\x80" "b\xc0\xaf" "c\xed\xa0\x80" "d\xf4\x90\x80\x80" "e\xff\xfe" "f\xe2\x82"),
        T("truncated-tail", "caf\xc3"),
        T("metaspace", "\xe2\x96\x81word \xe2\x96\x81\xe2\x96\x81"),
        T("cjk-emoji", "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\xf0\x9f\x98\x80 \xe4\xb8\xad"),
        T("nul-ctrl", "a\0b\x01\x1f\t\r\n"),
        T("numbers", "12345678901234567890 3.14 -7 1e10"),
        T("contractions", "I'm you're he'll they've it's DON'T"),
    };
#undef T
    int nv = 0;
    const vkm_fuzz_vocab *v = vkm_fuzz_vocabs(&nv);
    for (int vi = 0; vi < nv; vi++) {
        for (size_t ti = 0; ti < sizeof texts / sizeof texts[0]; ti++) {
            for (int ps = 0; ps < 2; ps++) {
                if (ps && ti % 3) continue; /* parse_special on a third of them */
                uint8_t buf[1024];
                buf[0] = (uint8_t)(vi | (ps << 7));
                memcpy(buf + 1, texts[ti].text, texts[ti].len);
                char name[128];
                snprintf(name, sizeof name, "%s-%s%s", v[vi].name, texts[ti].name, ps ? "-special" : "");
                write_seed("tokenize", name, buf, texts[ti].len + 1);
            }
        }
    }
}

/* KV configurations (fuzz_kv_config.c): byte 0 n_layer - 1 | head_dim bits 6-7 (8, 64, 12, 128),
 * byte 1 profile bit 0 | overrides; then the spec or the profile */
static void seed_kv_config(void)
{
    static const struct { const char *name; uint8_t b0, b1; const char *text; } seeds[] = {
        {"spec-k4v2", 4, 0x00, "k4v2"},
        {"spec-f16", 4, 0x00, "f16"},
        {"spec-options", 0x40 | 1, 0x00, "k3v8:g=64:w=256:s=4"},
        {"spec-override-geometry", 4, 0x04 | 0x10 | 0x20, "k2v4:g=32"},
        {"spec-head-dim-12", 0x80 | 3, 0x00, "k4v4"},
        {"spec-mikv", 4, 0x00, "k4v2:policy=mikv:frac=0.2:hi=16:balance=0"},
        {"spec-mixkvq", 4, 0x00, "k4v2:policy=mixkvq:kbits=3.5:t16=2:t4=1:block=64:queries=32"},
        {"spec-bad-width", 4, 0x00, "k5v2"},
        {"spec-trailing", 4, 0x00, "k4v2x"},
        {"spec-bad-option", 4, 0x00, "k4v2:g=48:w=8"},
        {"spec-sinks-over", 4, 0x60, "k2v2:s=600"},
        {"profile-v2", 4, 0x01 | 0x20,
         "{\"format\":\"vkmix-kv-profile\",\"version\":2,\"policy\":\"layer\",\"n_layer\":5,\"group\":32,\"window\":64,"
         "\"sinks\":4,\"layers\":[{\"k\":2,\"v\":2},{\"k\":3,\"v\":4},{\"k\":4,\"v\":2},{\"k\":8,\"v\":8},{\"k\":16,\"v\":16}],"
         "\"provenance\":{\"rule\":\"kvmix\",\"tokens\":2048}}"},
        {"profile-v1", 1, 0x01, "{\"n_layer\":2,\"layers\":[{\"k\":4,\"v\":4},{\"k\":2,\"v\":3}],\"provenance\":\"hand\"}"},
        {"profile-mikv", 1, 0x01,
         "{\"version\":2,\"policy\":\"mikv\",\"layers\":[{\"k\":4,\"v\":4},{\"k\":2,\"v\":2}],"
         "\"mikv\":{\"important_fraction\":0.1,\"high_bits\":8,\"outlier_balancer\":true}}"},
        {"profile-wrong-layers", 4, 0x01, "{\"layers\":[{\"k\":4,\"v\":4}]}"},
        {"profile-bad-width", 0, 0x01, "{\"layers\":[{\"k\":4.5,\"v\":4}]}"},
        {"profile-negative-group", 0, 0x01, "{\"group\":-32,\"layers\":[{\"k\":4,\"v\":4}]}"},
        {"profile-newer", 0, 0x01, "{\"version\":3,\"layers\":[{\"k\":4,\"v\":4}]}"},
        {"profile-not-json", 0, 0x01, "{\"layers\":[{\"k\":4,"},
        {"profile-huge-numbers", 0, 0x01, "{\"window\":1e300,\"layers\":[{\"k\":1e20,\"v\":-1e20}]}"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        uint8_t buf[1024];
        size_t n = strlen(seeds[i].text);
        buf[0] = seeds[i].b0;
        buf[1] = seeds[i].b1;
        memcpy(buf + 2, seeds[i].text, n);
        write_seed("kv_config", seeds[i].name, buf, n + 2);
    }
}

/* Saved states of the four sessions of fuzz_session_state.c at a few depths,
 * and states fed to a session they do not fit (refused). */
static uint8_t *state_of(int k, uint32_t depth, size_t *n)
{
    vkmix_session *s = vkm_fuzz_state_session(k);
    *n = 0;
    if (!s) return NULL;
    vkmix_session_reset(s);
    int32_t toks[256];
    for (uint32_t i = 0; i < depth && i < 256; i++) toks[i] = i == 0 ? 1 : (int32_t)((i * 37 + 11) % 512);
    /* two chunks: the second a single token, as decoding would */
    if (depth > 1) W(vkmix_session_eval(s, toks, depth - 1, NULL, 0));
    if (depth > 0) W(vkmix_session_eval(s, toks + depth - 1, 1, NULL, 0));
    size_t need = 0;
    W(vkmix_session_state_size(s, &need));
    uint8_t *buf = malloc(need + 1);
    if (buf) W(vkmix_session_state_save(s, buf + 1, need, n));
    return buf;
}

/* The name ends with "-n<N>": the tokens the session holds after the input
 * (0 when the state is refused; an accepted one is rewound to half its length,
 * then one token is evaluated when bit 2 of byte 0 is set), checked by
 * check_state_seeds. */
static void write_state_seed(const char *name, uint8_t b0, uint8_t *buf, size_t n, uint32_t expect)
{
    if (!buf) return;
    buf[0] = b0;
    char full[128];
    snprintf(full, sizeof full, "%s-n%u", name, expect);
    write_seed("session_state", full, buf, n + 1);
}

static void seed_session_state(void)
{
    static const struct { int k; uint32_t depth; } st[] = {
        {0, 0}, {0, 7}, {1, 7}, {1, 128}, {2, 48}, {3, 30},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        size_t n = 0;
        uint8_t *buf = state_of(st[i].k, st[i].depth, &n);
        char name[64];
        snprintf(name, sizeof name, "%s-ctx%d-at%u", st[i].k & 1 ? "k4v2" : "f16", st[i].k & 2 ? 48 : 128, st[i].depth);
        int eval = i % 2;
        write_state_seed(name, (uint8_t)(st[i].k | (eval ? 4 : 0)), buf, n, st[i].depth / 2 + (uint32_t)eval);
        free(buf);
    }
    size_t n = 0;
    uint8_t *buf = state_of(0, 10, &n);
    write_state_seed("f16-into-k4v2", 1, buf, n, 0);             /* another configuration */
    write_state_seed("f16-ctx128-into-ctx48", 2 | 4, buf, n, 6); /* 10 tokens fit a context of 48 */
    if (n > 200) write_state_seed("f16-truncated", 0, buf, n - 100, 0);
    if (n > 200) {
        buf[1 + 20] ^= 0x40;                                      /* the header's model fingerprint */
        write_state_seed("f16-damaged-header", 0, buf, n, 0);
    }
    free(buf);
    buf = state_of(1, 60, &n);
    write_state_seed("k4v2-ctx128-at60-into-ctx48", 3, buf, n, 0); /* too long for the context */
    free(buf);
}

/* ------------------------------------------------------------------ oracle sanity */

/* The session_state seeds are accepted or refused as their names say ("-n<N>"). */
static void check_state_seeds(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *tag = strrchr(de->d_name, 'n');
        if (de->d_name[0] == '.' || !tag || tag == de->d_name || tag[-1] != '-') continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        uint8_t *buf = malloc(1 << 18);
        size_t n = buf ? fread(buf, 1, 1 << 18, f) : 0;
        fclose(f);
        if (n > 0) {
            vkm_fuzz_session_state(buf, n);
            vkmix_session *s = vkm_fuzz_state_session(buf[0] & 3);
            uint32_t want = (uint32_t)atoi(tag + 1), got = s ? vkmix_session_n_past(s) : 0;
            CHECK(got == want, "session_state seed %s: the session holds %u tokens, want %u (%s)", de->d_name, got,
                  want, vkmix_context_last_error(vkm_fuzz_state_context()));
        }
        free(buf);
    }
    closedir(d);
}

/* The round trips the tokenize target relies on really hold on the sample,
 * and the merges really merge (a vocabulary of single characters would make
 * the round trip trivial). */
static void check_vocabs(void)
{
    int nv = 0;
    const vkm_fuzz_vocab *v = vkm_fuzz_vocabs(&nv);
    for (int i = 0; i < nv; i++) {
        CHECK(v[i].tok != NULL, "vocabulary %s did not build", v[i].name);
        if (!v[i].tok) continue;
        const char *s = vkm_fuzz_sample_text;
        size_t len = strlen(s), n = 0;
        int32_t ids[1024];
        vkmix_error e = vkm_tokenize(v[i].tok, s, len, 0, 0, ids, 1024, &n);
        CHECK(e == VKMIX_OK && n > 0 && n < 3 * len / 4, "%s: %zu tokens for %zu bytes (%d)", v[i].name, n, len, (int)e);
        char out[2048];
        size_t k = 0;
        if (e == VKMIX_OK) e = vkm_detokenize(v[i].tok, ids, n, v[i].detok_flags, out, sizeof out, &k);
        if (v[i].round_trip)
            CHECK(e == VKMIX_OK && k == len && !memcmp(out, s, len), "%s: sample does not round-trip", v[i].name);
        else
            CHECK(e == VKMIX_OK && k != len, "%s: the no-byte vocabulary round-trips the sample", v[i].name);
        printf("%-16s %6u tokens, sample: %zu bytes -> %zu tokens\n", v[i].name, vkm_tokenizer_n_tokens(v[i].tok), len, n);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        g_seed_dir = argv[2];
        seed_s260k();
        seed_tiny_llama(0);
        seed_tiny_llama(1);
        seed_tiny_qwen2();
        seed_tokenize();
        seed_kv_config();
        seed_session_state();
        return tu_finish("test_fuzz_corpus --write-seeds");
    }
    check_vocabs();
    CHECK(vkm_fuzz_state_session(0) != NULL, "the session_state target has no session (no device?)");
    const char *src = getenv("VKMIX_SOURCE_DIR");
    for (size_t t = 0; t < sizeof k_targets / sizeof k_targets[0]; t++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".", k_targets[t].name);
        int seeds = replay_dir(dir, k_targets[t].name, k_targets[t].fn);
        CHECK(seeds >= k_targets[t].min_seeds, "%s: %d seeds in %s (want >= %d)", k_targets[t].name, seeds, dir,
              k_targets[t].min_seeds);
        if (!strcmp(k_targets[t].name, "session_state")) check_state_seeds(dir);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src ? src : ".", k_targets[t].name);
        int regress = replay_dir(dir, k_targets[t].name, k_targets[t].fn);
        printf("%-10s %3d seeds, %3d regression inputs replayed\n", k_targets[t].name, seeds, regress < 0 ? 0 : regress);
    }
    return tu_finish("test_fuzz_corpus");
}
