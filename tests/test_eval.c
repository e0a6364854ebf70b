/*
 * Smoke test of vkmix-calibrate and vkmix-eval on stories260K (250
 * tokens, lavapipe): runs the built tools as a user would, then checks
 *   - the f16 perplexity equals exp(mean NLL) recomputed here from the logits
 *     of an f16 session over the same tokens, chunk by chunk;
 *   - f16 against f16: KL exactly 0, top-1 agreement 100%, the same perplexity;
 *   - k8v8 has a small KL, below k2v2's, which is not 0 (the quantized cache is
 *     in the loop: window R = G = 32 so most of the history is quantized);
 *   - a calibrated profile loads and is evaluated; effective bits agree with
 *     vkmix_kv_memory_estimate;
 *   - the needle test writes its per-depth accuracy;
 *   - bad arguments fail with a non-zero exit.
 * The tools exit with 2 when the validation layer (on under ctest) reports anything.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char bindir[1024], model[1024], tmp[256];

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static cJSON *load_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_Parse(buf);
}

static const cJSON *cache_named(const cJSON *root, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "caches"))
    {
        const cJSON *n = cJSON_GetObjectItem(c, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return c;
    }
    return NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* exp(mean NLL) of an f16 session over BOS + the first n text tokens, scoring rows 1 .. n-1
 * (each text token after the first), chunks of 64 with every row's logits. */
static double ppl_direct(const char *text_path, uint32_t n_max, uint32_t n_ctx)
{
    vkmix_context *ctx = tu_context();
    if (!ctx) return NAN;
    vkmix_model *m = NULL;
    double ppl = NAN;
    if (vkmix_model_load(ctx, model, NULL, &m) != VKMIX_OK) goto out;
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    FILE *f = fopen(text_path, "rb");
    static char text[1 << 16];
    size_t tl = f ? fread(text, 1, sizeof text, f) : 0;
    if (f) fclose(f);
    static int32_t tok[1 << 16];
    size_t nt = 0;
    if (vkmix_tokenize(m, text, tl, 0, 0, tok + 1, (1 << 16) - 1, &nt) != VKMIX_OK) goto out;
    if (nt > n_max) nt = n_max;
    tok[0] = info.bos;
    const uint32_t Lw = (uint32_t)nt + 1, V = info.n_vocab;
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = n_ctx;
    sp.n_batch = 64;
    vkmix_session *s = NULL;
    if (vkmix_session_create(m, &sp, &s) != VKMIX_OK) goto out;
    float *lg = malloc((size_t)64 * V * sizeof(float));
    double nll = 0;
    uint32_t cnt = 0;
    for (uint32_t p0 = 0; p0 < Lw; p0 += 64) {
        uint32_t c = Lw - p0 < 64 ? Lw - p0 : 64;
        CHECK(vkmix_session_eval(s, tok + p0, c, lg, 1) == VKMIX_OK, "eval");
        for (uint32_t i = 0; i < c; i++) {
            uint32_t r = p0 + i;
            if (r < 1 || r + 1 >= Lw) continue;
            const float *z = lg + (size_t)i * V;
            double mx = z[0], sum = 0;
            for (uint32_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (uint32_t v = 0; v < V; v++) sum += exp(z[v] - mx);
            nll += mx + log(sum) - z[tok[r + 1]];
            cnt++;
        }
    }
    ppl = exp(nll / cnt);
    CHECK(cnt == nt - 1, "scored %u of %zu", cnt, nt);
    free(lg);
    vkmix_session_free(s);
out:
    vkmix_model_free(m);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return ppl;
}

int main(void)
{
    char *mp = tu_shared_path("models/stories260K/stories260K.gguf");
    char *tp = tu_shared_path("data/tinystories/tinystories_validation_prefix.txt");
    char *hp = tu_shared_path("data/niah-haystack/PaulGrahamEssays");
    const char *bd = getenv("VKMIX_BINARY_DIR");
    if (!mp || !tp || !hp) {
        printf("test_eval: ../shared missing, skipped\n");
        return TEST_SKIP;
    }
    snprintf(bindir, sizeof bindir, "%s", bd ? bd : ".");
    snprintf(model, sizeof model, "%s", mp);
    char probe[1200];
    snprintf(probe, sizeof probe, "%s/vkmix-eval", bindir);
    if (access(probe, X_OK) != 0) {
        printf("test_eval: %s not built, skipped\n", probe);
        return TEST_SKIP;
    }
    snprintf(tmp, sizeof tmp, "/tmp/vkmix_test_eval_XXXXXX");
    REQUIRE(mkdtemp(tmp), "mkdtemp");
    char cmd[4096], text[512], prof[512], out[512], niah[512];
    snprintf(text, sizeof text, "%s/text.txt", tmp);
    snprintf(prof, sizeof prof, "%s/profile.json", tmp);
    snprintf(out, sizeof out, "%s/eval.json", tmp);
    snprintf(niah, sizeof niah, "%s/niah.json", tmp);
    /* a small text file: the first 2000 bytes of the TinyStories prefix */
    snprintf(cmd, sizeof cmd, "head -c 2000 '%s' > '%s'", tp, text);
    REQUIRE(sh(cmd) == 0, "text");

    /* calibrate a profile (4 windows of 64 tokens) */
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --text '%s' -N 4 -T 64 --seed 3 -o '%s' > /dev/null 2>&1",
             bindir, model, text, prof);
    CHECK(sh(cmd) == 0, "vkmix-calibrate: %s", cmd);

    /* evaluate */
    snprintf(cmd, sizeof cmd,
             "'%s/vkmix-eval' -m '%s' --text '%s' --max-tokens 250 -c 256 "
             "--kv f16,k8v8:w=32,k2v2:w=32,'%s':w=32 -o '%s' > /dev/null 2>&1",
             bindir, model, text, prof, out);
    CHECK(sh(cmd) == 0, "vkmix-eval: %s", cmd);
    cJSON *j = load_json(out);
    REQUIRE(j, "eval JSON");
    const cJSON *ref = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "caches"), 0);
    const cJSON *f16 = cache_named(j, "f16"), *k8 = cache_named(j, "k8v8:w=32"), *k2 = cache_named(j, "k2v2:w=32"),
                *pj = cache_named(j, "profile.json:w=32");
    REQUIRE(ref && f16 && k8 && k2 && pj, "every cache in the JSON");
    CHECK(num(cJSON_GetObjectItem(j, "text"), "scored_tokens") == 249, "249 tokens scored (one window)");

    double ppl = ppl_direct(text, 250, 256);
    CHECK(fabs(num(ref, "ppl") - ppl) <= 1e-6 * ppl, "f16 PPL %.9f vs exp(mean NLL) from the logits %.9f",
          num(ref, "ppl"), ppl);
    CHECK(ppl > 1.5 && ppl < 20, "stories260K on TinyStories: PPL %.3f", ppl);
    CHECK(num(f16, "kl_mean") == 0 && num(f16, "kl_max") == 0 && num(f16, "top1_agreement") == 1,
          "f16 vs f16: KL %g (max %g), top-1 %g", num(f16, "kl_mean"), num(f16, "kl_max"),
          num(f16, "top1_agreement"));
    CHECK(num(f16, "ppl") == num(ref, "ppl"), "f16 vs f16: same PPL");
    double kl8 = num(k8, "kl_mean"), kl2 = num(k2, "kl_mean");
    CHECK(kl8 >= 0 && kl8 < 1e-3, "k8v8 KL %.3g is small", kl8);
    CHECK(kl2 > 0 && kl8 < kl2, "k8v8 KL %.3g below k2v2's %.3g", kl8, kl2);
    CHECK(num(k8, "top1_agreement") > 0.97, "k8v8 top-1 %.4f", num(k8, "top1_agreement"));
    CHECK(num(pj, "kl_mean") > 0 && num(pj, "kl_mean") < 1, "profile KL %.3g", num(pj, "kl_mean"));
    /* effective bits beside every result: the session's accounting */
    {
        vkmix_context *ctx = tu_context();
        vkmix_model *m = NULL;
        if (ctx && vkmix_model_load(ctx, model, NULL, &m) == VKMIX_OK) {
            vkmix_session_params sp;
            vkmix_session_default_params(&sp);
            sp.n_ctx = 256;
            sp.kv = "k2v2";
            sp.kv_window = 32;
            vkmix_kv_memory mem;
            CHECK(vkmix_kv_memory_estimate(m, &sp, 0, &mem) == VKMIX_OK, "estimate");
            CHECK(fabs(num(k2, "k_bits") - mem.k_bits) < 1e-9 && fabs(num(k2, "v_bits") - mem.v_bits) < 1e-9,
                  "k2v2 bits %.4f %.4f vs estimate %.4f %.4f", num(k2, "k_bits"), num(k2, "v_bits"), mem.k_bits,
                  mem.v_bits);
            CHECK(num(ref, "k_bits") == 16 && num(ref, "v_bits") == 16, "f16 is 16 bits");
        } else CHECK(0, "model");
        vkmix_model_free(m);
        if (ctx) CHECK(tu_context_done(ctx) == 0, "validation");
    }
    cJSON_Delete(j);

    /* needle in a haystack: structure only (story models do not retrieve pass keys) */
    snprintf(cmd, sizeof cmd,
             "'%s/vkmix-eval' -m '%s' --haystack '%s' --niah-ctx 96 -c 128 --trials 1 --depths 0,1 --kv k4v4 "
             "--answer-tokens 4 -o '%s' > /dev/null 2>&1",
             bindir, model, hp, niah);
    CHECK(sh(cmd) == 0, "needle: %s", cmd);
    j = load_json(niah);
    CHECK(j && cJSON_GetArraySize(cJSON_GetObjectItem(cache_named(j, "k4v4"), "niah_accuracy")) == 2 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(cache_named(j, "k4v4"), "niah_answers")) == 2,
          "needle accuracy per depth and the answers");
    cJSON_Delete(j);

    /* bad arguments */
    snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s/none.gguf' --text '%s' > /dev/null 2>&1", bindir, tmp, text);
    CHECK(sh(cmd) == 1, "missing model");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s' --text '%s' --kv k5v5 > /dev/null 2>&1", bindir, model, text);
    CHECK(sh(cmd) == 1, "bad --kv");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --text '%s' --target-bits 1 -N 1 -T 40 > /dev/null 2>&1",
             bindir, model, text);
    CHECK(sh(cmd) == 1, "unreachable target");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    sh(cmd);
    free(mp);
    free(tp);
    free(hp);
    return tu_finish("test_eval");
}
