#define _XOPEN_SOURCE 700
/* The model runtime end to end on the GPU:
 *  - greedy decoding from BOS reproduces the reference ids of both real models;
 *  - GPU logits match the fp32 CPU reference (relative error <= 1e-2) for every
 *    weight type, llama and qwen2, decode and chunked prefill;
 *  - two sessions on one model are independent;
 *  - context overflow, bad files, unsupported architectures and tensor types
 *    give errors, not crashes. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "ggml_types.h"
#include "model.h"
#include "synth.h"
#include "testutil.h"

static const int32_t ids_260k[32] = { 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338,
                                      401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385 };
static const int32_t ids_656k[32] = { 147, 201, 282, 215, 286, 598, 1662, 356, 499, 826, 1363, 1145, 1652, 615, 242, 1482,
                                      951, 628, 499, 826, 872, 921, 318, 385, 628, 499, 826, 617, 242, 198, 1047, 425 };

static int argmax(const float *x, uint32_t n)
{
    int best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = (int)i;
    return best;
}

static double rel_err(const float *a, const float *ref, uint32_t n)
{
    double num = 0, den = 0;
    for (uint32_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        if (isnan(a[i])) return INFINITY;
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void greedy_ids(vkmix_context *ctx, const char *rel, const int32_t *want)
{
    char *path = tu_shared_path(rel);
    if (!path) {
        printf("skip greedy: %s missing\n", rel);
        return;
    }
    vkmix_model *m = NULL;
    vkmix_error e = vkmix_model_load(ctx, path, NULL, &m);
    CHECK(e == VKMIX_OK, "load %s: %s", rel, vkmix_context_last_error(ctx));
    free(path);
    if (e != VKMIX_OK) return;
    vkmix_session *s = NULL;
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = 64;
    CHECK(vkmix_session_create(m, &sp, &s) == VKMIX_OK, "session: %s", vkmix_context_last_error(ctx));
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    float *logits = malloc(info.n_vocab * sizeof *logits);
    int32_t tok = info.bos;
    int match = 0;
    for (int i = 0; i < 32 && s; i++) {
        e = vkmix_session_eval(s, &tok, 1, logits, 0);
        if (e != VKMIX_OK) { CHECK(0, "eval: %s", vkmix_context_last_error(ctx)); break; }
        tok = argmax(logits, info.n_vocab);
        if (tok == want[i]) match++;
        else { CHECK(0, "%s: token %d is %d, want %d", rel, i, tok, want[i]); break; }
    }
    printf("%s: %d/32 greedy ids match\n", rel, match);
    free(logits);
    vkmix_session_free(s);
    vkmix_model_free(m);
}

/* Runs `n` tokens through GPU (decode one by one, then prefill in chunks) and the
 * CPU reference; returns the worst relative error of the logits. */
static double compare_with_ref(vkmix_context *ctx, vkmix_model *m, const int32_t *toks, uint32_t n)
{
    vkm_ref_model r;
    if (vkm_model_ref_weights(m, &r) != VKMIX_OK) return INFINITY;
    vkm_ref_state *st;
    if (vkm_ref_state_create(&m->hp, n, 1, &st) != VKMIX_OK) return INFINITY;
    const uint32_t V = m->hp.n_vocab;
    float *ref = malloc((size_t)n * V * 4), *gpu = malloc((size_t)n * V * 4);
    double worst = 0;
    for (uint32_t i = 0; i < n; i++)
        if (vkm_ref_forward(&r.w, st, toks[i], i, ref + (size_t)i * V) != VKMIX_OK) worst = INFINITY;
    /* decode path, one token at a time */
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = n + 4;
    sp.n_batch = 7; /* odd chunks for the prefill below */
    vkmix_session *s = NULL;
    if (vkmix_session_create(m, &sp, &s) != VKMIX_OK) {
        fprintf(stderr, "session: %s\n", vkmix_context_last_error(ctx));
        worst = INFINITY;
    }
    for (uint32_t i = 0; s && i < n; i++) {
        if (vkmix_session_eval(s, &toks[i], 1, gpu, 0) != VKMIX_OK) { worst = INFINITY; break; }
        double e = rel_err(gpu, ref + (size_t)i * V, V);
        if (e > worst) worst = e;
    }
    /* prefill path: all logits of a chunked prompt */
    vkmix_session_reset(s);
    if (s && vkmix_session_eval(s, toks, n, gpu, 1) == VKMIX_OK) {
        for (uint32_t i = 0; i < n; i++) {
            double e = rel_err(gpu + (size_t)i * V, ref + (size_t)i * V, V);
            if (e > worst) worst = e;
        }
    } else worst = INFINITY;
    vkmix_session_free(s);
    free(ref);
    free(gpu);
    vkm_ref_state_free(st);
    vkm_ref_model_free(&r);
    return worst;
}

static char *tmp_path(const char *name)
{
    const char *dir = getenv("VKMIX_BINARY_DIR");
    if (!dir) dir = "/tmp";
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void synthetic_types(vkmix_context *ctx)
{
    static const struct { const char *arch; uint32_t wtype, etype; int tied; } cases[] = {
        { "llama", VKM_GGML_F32, VKM_GGML_F32, 1 },  { "llama", VKM_GGML_F16, VKM_GGML_F16, 0 },
        { "llama", VKM_GGML_BF16, VKM_GGML_F16, 0 }, { "llama", VKM_GGML_Q8_0, VKM_GGML_Q8_0, 1 },
        { "llama", VKM_GGML_Q4_0, VKM_GGML_Q8_0, 0 }, { "llama", VKM_GGML_Q4_K, VKM_GGML_Q6_K, 0 },
        { "llama", VKM_GGML_Q6_K, VKM_GGML_Q4_K, 1 }, { "qwen2", VKM_GGML_F16, VKM_GGML_F16, 0 },
        { "qwen2", VKM_GGML_Q4_K, VKM_GGML_Q8_0, 1 },
    };
    int32_t toks[19];
    tu_rng rng;
    tu_rng_seed(&rng, 99);
    toks[0] = 1;
    for (int i = 1; i < 19; i++) toks[i] = 3 + (int32_t)(tu_rng_u32(&rng) % 297);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        vkm_synth_spec sp = { cases[c].arch, 300, 256, 2, 8, 4, 512, 128, cases[c].wtype, cases[c].etype,
                              cases[c].tied, 10000.0f, 1000 + c };
        char *path = tmp_path("test_model_synth.gguf");
        char err[256] = "";
        vkmix_error e = vkm_synth_write(&sp, path, err, sizeof err);
        CHECK(e == VKMIX_OK, "synth: %s", err);
        vkmix_model *m = NULL;
        if (e == VKMIX_OK) e = vkmix_model_load(ctx, path, NULL, &m);
        CHECK(e == VKMIX_OK, "load synthetic: %s", vkmix_context_last_error(ctx));
        if (e == VKMIX_OK) {
            double err_rel = compare_with_ref(ctx, m, toks, 19);
            printf("synthetic %s %s (embd %s%s): worst relative logit error %.2e\n", cases[c].arch,
                   vkm_ggml_type_name(cases[c].wtype), vkm_ggml_type_name(cases[c].etype), cases[c].tied ? ", tied" : "",
                   err_rel);
            CHECK(err_rel <= 1e-2, "%s %s: relative error %.3e > 1e-2", cases[c].arch,
                  vkm_ggml_type_name(cases[c].wtype), err_rel);
        }
        vkmix_model_free(m);
        remove(path);
        free(path);
    }
}

static void real_vs_ref(vkmix_context *ctx, const char *rel)
{
    char *path = tu_shared_path(rel);
    if (!path) return;
    vkmix_model *m = NULL;
    if (vkmix_model_load(ctx, path, NULL, &m) == VKMIX_OK) {
        int32_t toks[12] = { 1 };
        for (int i = 1; i < 12; i++) toks[i] = ids_260k[i - 1] % (int32_t)m->hp.n_vocab;
        double e = compare_with_ref(ctx, m, toks, 12);
        printf("%s: worst relative logit error vs CPU reference %.2e\n", rel, e);
        CHECK(e <= 1e-2, "%s: relative error %.3e", rel, e);
    } else CHECK(0, "load %s: %s", rel, vkmix_context_last_error(ctx));
    vkmix_model_free(m);
    free(path);
}

/* Two sessions on one model, interleaved, give the same logits as one alone. */
static void two_sessions(vkmix_context *ctx)
{
    char *path = tmp_path("test_model_two.gguf");
    vkm_synth_spec sp = { "llama", 300, 64, 2, 4, 2, 128, 64, VKM_GGML_F16, VKM_GGML_F16, 1, 10000.0f, 5 };
    char err[256];
    if (vkm_synth_write(&sp, path, err, sizeof err) != VKMIX_OK) { CHECK(0, "synth: %s", err); free(path); return; }
    vkmix_model *m = NULL;
    if (vkmix_model_load(ctx, path, NULL, &m) != VKMIX_OK) { CHECK(0, "load"); free(path); return; }
    vkmix_session *a = NULL, *b = NULL;
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.n_ctx = 16;
    CHECK(vkmix_session_create(m, &p, &a) == VKMIX_OK && vkmix_session_create(m, &p, &b) == VKMIX_OK, "sessions");
    float la[300], lb[300], solo[300];
    int32_t ta[4] = { 1, 260, 261, 262 }, tb[4] = { 1, 270, 290, 280 };
    for (int i = 0; i < 4; i++) {
        vkmix_session_eval(a, &ta[i], 1, la, 0);
        vkmix_session_eval(b, &tb[i], 1, lb, 0);
    }
    vkmix_session_reset(a);
    CHECK(vkmix_session_n_past(a) == 0, "reset");
    vkmix_session_eval(a, tb, 4, solo, 0);
    CHECK(rel_err(lb, solo, 300) < 1e-5, "session b interleaved = alone (%.2e)", rel_err(lb, solo, 300));
    CHECK(rel_err(la, solo, 300) > 1e-3, "different prompts differ");
    /* context overflow: 13 more tokens do not fit in 16 with 4 used */
    int32_t many[13];
    for (int i = 0; i < 13; i++) many[i] = 260 + i;
    CHECK(vkmix_session_eval(a, many, 13, NULL, 0) == VKMIX_ERROR_CONTEXT_OVERFLOW, "overflow");
    CHECK(vkmix_session_n_past(a) == 4, "nothing run on overflow (n_past %u)", vkmix_session_n_past(a));
    CHECK(strstr(vkmix_context_last_error(ctx), "16") != NULL, "message names the context: %s", vkmix_context_last_error(ctx));
    int32_t bad = 300;
    CHECK(vkmix_session_eval(a, &bad, 1, NULL, 0) == VKMIX_ERROR_INVALID_ARGUMENT, "token out of vocabulary");
    vkmix_session *c = NULL;
    CHECK(vkmix_session_create(m, &(vkmix_session_params){ .n_ctx = 16, .kv = "k9v9" }, &c) == VKMIX_ERROR_BAD_PROFILE &&
              c == NULL, "bad kv config refused");
    vkmix_session_free(a);
    vkmix_session_free(b);
    vkmix_model_free(m);
    remove(path);
    free(path);
}

/* Patch the type of one tensor in a GGUF file (the type field follows the dims). */
static int patch_tensor_type(const char *path, const char *name, uint32_t type)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    char *buf = malloc((size_t)n);
    fseek(f, 0, SEEK_SET);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(buf); return 0; }
    size_t len = strlen(name);
    int ok = 0;
    for (long i = 8; i + (long)len + 4 < n; i++) {
        uint64_t slen;
        memcpy(&slen, buf + i - 8, 8);
        if (slen == len && !memcmp(buf + i, name, len)) {
            uint32_t nd;
            memcpy(&nd, buf + i + len, 4);
            long at = i + (long)len + 4 + 8 * (long)nd;
            fseek(f, at, SEEK_SET);
            ok = fwrite(&type, 4, 1, f) == 1;
            break;
        }
    }
    fclose(f);
    free(buf);
    return ok;
}

static void bad_files(vkmix_context *ctx)
{
    vkmix_model *m = (vkmix_model *)ctx;
    CHECK(vkmix_model_load(ctx, "/nonexistent/x.gguf", NULL, &m) == VKMIX_ERROR_IO && m == NULL, "missing file");
    char *path = tmp_path("test_model_bad.gguf");
    char err[256];
    /* n_embd 256 so that a Q5_K row (256 elements per block) is well-formed for the reader */
    vkm_synth_spec sp = { "gpt9", 300, 256, 1, 4, 2, 256, 64, VKM_GGML_F16, VKM_GGML_F16, 1, 10000.0f, 5 };
    CHECK(vkm_synth_write(&sp, path, err, sizeof err) == VKMIX_OK, "synth");
    CHECK(vkmix_model_load(ctx, path, NULL, &m) == VKMIX_ERROR_UNSUPPORTED_ARCH, "unsupported arch");
    CHECK(strstr(vkmix_context_last_error(ctx), "gpt9") != NULL, "names the arch: %s", vkmix_context_last_error(ctx));
    sp.arch = "llama";
    CHECK(vkm_synth_write(&sp, path, err, sizeof err) == VKMIX_OK, "synth");
    CHECK(patch_tensor_type(path, "blk.0.attn_k.weight", VKM_GGML_Q5_K), "patch");
    CHECK(vkmix_model_load(ctx, path, NULL, &m) == VKMIX_ERROR_UNSUPPORTED_TENSOR_TYPE, "unsupported tensor type");
    CHECK(strstr(vkmix_context_last_error(ctx), "Q5_K") && strstr(vkmix_context_last_error(ctx), "blk.0.attn_k.weight"),
          "message: %s", vkmix_context_last_error(ctx));
    /* truncated file */
    CHECK(vkm_synth_write(&sp, path, err, sizeof err) == VKMIX_OK, "synth");
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fclose(f);
        CHECK(truncate(path, n / 2) == 0, "truncate");
    }
    vkmix_error e = vkmix_model_load(ctx, path, NULL, &m);
    CHECK(e == VKMIX_ERROR_GGUF_TRUNCATED, "truncated file: %s (%s)", vkmix_strerror(e), vkmix_context_last_error(ctx));
    remove(path);
    free(path);
}

int main(void)
{
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "context");
    greedy_ids(ctx, "models/stories260K/stories260K.gguf", ids_260k);
    greedy_ids(ctx, "models/tinystories-656k/TinyStories-656K-Q8_0.gguf", ids_656k);
    real_vs_ref(ctx, "models/stories260K/stories260K.gguf");
    real_vs_ref(ctx, "models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
    synthetic_types(ctx);
    two_sessions(ctx);
    bad_files(ctx);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return tu_finish("test_model");
}
