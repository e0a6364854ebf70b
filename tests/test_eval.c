/*
 * Smoke test of vkmix-calibrate and vkmix-eval on the shipped
 * assets/stories260K-f16.gguf and a story text generated here
 * (tu_write_story_text; 250 tokens, lavapipe): runs the built tools as a user
 * would, then checks
 *   - the f16 perplexity equals exp(mean NLL) recomputed here from the logits
 *     of an f16 session over the same tokens, chunk by chunk;
 *   - f16 against f16: KL exactly 0, top-1 agreement 100%, the same perplexity;
 *   - k8v8 has a small KL, below k2v2's, which is not 0 (the quantized cache is
 *     in the loop: window R = G = 32 so most of the history is quantized);
 *   - a calibrated profile loads and is evaluated; effective bits agree with
 *     vkmix_kv_memory_estimate;
 *   - the needle test writes its per-depth accuracy (a haystack folder generated here);
 *   - --chunks (llama-perplexity's method): every running value and the final
 *     estimate equal those recomputed here from an f16 session's logits, chunk by
 *     chunk, and the printed line is [1]p1,[2]p2,[3]p3,;
 *   - llama.cpp's flag names: -f, -c, -b, -ctk/-ctv in vkmix-eval; -f, -c, -t, -s
 *     and -ctk/-ctv (a --target-bits-of) in vkmix-calibrate;
 *   - bad arguments fail with a non-zero exit; an unreachable calibration target
 *     is refused before calibrating.
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

/* llama-perplexity's method recomputed: the text tokenized with BOS first, chunks of C
 * tokens (the first replaced by BOS), a fresh f16 session each, rows [C/2, C - 1) scored;
 * running[i] = exp(mean NLL) after chunk i; the chunk runs in evaluations of `batch` tokens.
 * Returns the tokens scored. */
static uint32_t ppl_chunks_direct(const char *text_path, uint32_t C, uint32_t batch, uint32_t n_chunks, double *running)
{
    vkmix_context *ctx = tu_context();
    if (!ctx) return 0;
    vkmix_model *m = NULL;
    uint32_t cnt = 0;
    if (vkmix_model_load(ctx, model, NULL, &m) != VKMIX_OK) goto out;
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    FILE *f = fopen(text_path, "rb");
    static char text[1 << 16];
    size_t tl = f ? fread(text, 1, sizeof text, f) : 0;
    if (f) fclose(f);
    static int32_t tok[1 << 16];
    size_t nt = 0;
    if (vkmix_tokenize(m, text, tl, 1, 0, tok, 1 << 16, &nt) != VKMIX_OK || nt < (size_t)C * n_chunks) goto out;
    CHECK(tok[0] == info.bos, "BOS first");
    const uint32_t V = info.n_vocab;
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = C;
    vkmix_session *s = NULL;
    if (vkmix_session_create(m, &sp, &s) != VKMIX_OK) goto out;
    float *lg = malloc((size_t)C * V * sizeof(float));
    double nll = 0;
    for (uint32_t i = 0; lg && i < n_chunks; i++) {
        int32_t *w = tok + (size_t)i * C;
        w[0] = info.bos;
        vkmix_session_reset(s);
        for (uint32_t p0 = 0; p0 < C; p0 += batch) /* as the tool feeds them: -b batch */
            CHECK(vkmix_session_eval(s, w + p0, C - p0 < batch ? C - p0 : batch, lg + (size_t)p0 * V, 1) == VKMIX_OK,
                  "eval");
        for (uint32_t r = C / 2; r + 1 < C; r++) {
            const float *z = lg + (size_t)r * V;
            double mx = z[0], sum = 0;
            for (uint32_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (uint32_t v = 0; v < V; v++) sum += exp(z[v] - mx);
            nll += mx + log(sum) - z[w[r + 1]];
            cnt++;
        }
        running[i] = exp(nll / cnt);
    }
    free(lg);
    vkmix_session_free(s);
out:
    vkmix_model_free(m);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    return cnt;
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

int main(void)
{
    char *mp = tu_source_path("assets/stories260K-f16.gguf");
    const char *bd = getenv("VKMIX_BINARY_DIR");
    REQUIRE(mp, "assets/stories260K-f16.gguf not found (VKMIX_SOURCE_DIR)");
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
    char cmd[8192], text[512], prof[512], out[512], niah[512], hp[512];
    snprintf(text, sizeof text, "%s/text.txt", tmp);
    snprintf(hp, sizeof hp, "%s/haystack", tmp);
    snprintf(prof, sizeof prof, "%s/profile.json", tmp);
    snprintf(out, sizeof out, "%s/eval.json", tmp);
    snprintf(niah, sizeof niah, "%s/niah.json", tmp);
    /* a small story text, and a haystack folder of two such "essays" */
    REQUIRE(tu_write_story_text(text, 4000, 1) == 0, "text");
    snprintf(cmd, sizeof cmd, "mkdir '%s'", hp);
    REQUIRE(sh(cmd) == 0, "haystack folder");
    for (int k = 0; k < 2; k++) {
        char hf[600];
        snprintf(hf, sizeof hf, "%s/essay%d.txt", hp, k);
        REQUIRE(tu_write_story_text(hf, 3000, 10 + (uint64_t)k) == 0, "haystack");
    }

    /* calibrate a profile (4 windows of 64 tokens) */
    char scores[600], prof_t[600], prof_r[600], errr[600];
    snprintf(scores, sizeof scores, "%s/scores.json", tmp);
    snprintf(prof_t, sizeof prof_t, "%s/target.json", tmp);
    snprintf(prof_r, sizeof prof_r, "%s/target-reused.json", tmp);
    snprintf(errr, sizeof errr, "%s/reuse.err", tmp);
    snprintf(cmd, sizeof cmd,
             "'%s/vkmix-calibrate' -m '%s' --text '%s' -N 4 -T 64 --seed 3 -o '%s' --scores '%s' > /dev/null 2>&1",
             bindir, model, text, prof, scores);
    CHECK(sh(cmd) == 0, "vkmix-calibrate: %s", cmd);
    /* --reuse-scores: another rule from the same calibration equals a fresh calibration */
    snprintf(cmd, sizeof cmd,
             "'%s/vkmix-calibrate' -m '%s' --text '%s' -N 4 -T 64 --seed 3 --target-bits-of k3v3 -o '%s' > /dev/null 2>&1",
             bindir, model, text, prof_t);
    CHECK(sh(cmd) == 0, "vkmix-calibrate --target-bits-of k3v3: %s", cmd);
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --reuse-scores '%s' --target-bits-of k3v3 -o '%s' > /dev/null 2>'%s'",
             bindir, model, scores, prof_r, errr);
    CHECK(sh(cmd) == 0, "vkmix-calibrate --reuse-scores: %s", cmd);
    CHECK(file_has(errr, "importance and measured errors from") && !file_has(errr, "importance: "),
          "--reuse-scores computes nothing");
    {
        cJSON *a = load_json(prof_t), *b = load_json(prof_r);
        const char *keys[] = { "k_bits", "v_bits", "objective", "imp_k", "err_v", "N", "T", "seed", "loss", "text" };
        const cJSON *pa = cJSON_GetObjectItem(a, "provenance"), *pb = cJSON_GetObjectItem(b, "provenance");
        CHECK(a && b && cJSON_GetObjectItem(a, "layers") &&
                  cJSON_Compare(cJSON_GetObjectItem(a, "layers"), cJSON_GetObjectItem(b, "layers"), 1),
              "--reuse-scores: the same widths as a fresh calibration");
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK(pa && pb && cJSON_Compare(cJSON_GetObjectItem(pa, keys[k]), cJSON_GetObjectItem(pb, keys[k]), 1),
                  "--reuse-scores: provenance '%s' equal", keys[k]);
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --reuse-scores '%s' --group 64 -o '%s' > /dev/null 2>'%s'",
             bindir, model, scores, prof_r, errr);
    CHECK(sh(cmd) == 1 && file_has(errr, "measured its errors with group 0"), "--reuse-scores with another group");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --reuse-scores '%s' -o '%s' > /dev/null 2>'%s'", bindir, model,
             prof, prof_r, errr);
    CHECK(sh(cmd) == 1 && file_has(errr, "is not a vkmix-calibrate --scores file"), "--reuse-scores of a profile");

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
    CHECK(ppl > 1 && ppl < 30, "stories260K on story text: PPL %.3f", ppl);
    CHECK(num(f16, "kl_mean") == 0 && num(f16, "kl_max") == 0 && num(f16, "top1_agreement") == 1,
          "f16 vs f16: KL %g (max %g), top-1 %g", num(f16, "kl_mean"), num(f16, "kl_max"),
          num(f16, "top1_agreement"));
    CHECK(num(f16, "ppl") == num(ref, "ppl"), "f16 vs f16: same PPL");
    double kl8 = num(k8, "kl_mean"), kl2 = num(k2, "kl_mean"), k2_bits = num(k2, "k_bits");
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

    /* --kv-policy: onto every quantized item, as its :policy= option; f16 untouched */
    {
        char pol[600];
        snprintf(pol, sizeof pol, "%s/policy.json", tmp);
        snprintf(cmd, sizeof cmd,
                 "'%s/vkmix-eval' -m '%s' --text '%s' --max-tokens 120 -c 128 --kv f16,k2v2:w=32 --kv-policy mikv:frac=0.25 "
                 "-o '%s' > /dev/null 2>&1",
                 bindir, model, text, pol);
        CHECK(sh(cmd) == 0, "vkmix-eval --kv-policy: %s", cmd);
        cJSON *pj2 = load_json(pol);
        REQUIRE(pj2, "--kv-policy JSON");
        const cJSON *mk = cache_named(pj2, "k2v2:w=32:policy=mikv:frac=0.25"), *f = cache_named(pj2, "f16");
        CHECK(mk && f, "--kv-policy: the cache is named with its policy, f16 stays f16");
        CHECK(mk && num(mk, "k_bits") > k2_bits + 0.5 && num(mk, "kl_mean") > 0,
              "--kv-policy mikv: more bits than k2v2 (%.3f vs %.3f), KL %.3g", mk ? num(mk, "k_bits") : 0, k2_bits,
              mk ? num(mk, "kl_mean") : 0);
        cJSON_Delete(pj2);
        snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s' --text '%s' --kv k2v2 --kv-policy evict > /dev/null 2>'%s'",
                 bindir, model, text, errr);
        CHECK(sh(cmd) == 1 && file_has(errr, "is not layer, mikv or mixkvq"), "--kv-policy evict is refused");
    }

    /* bad arguments */
    snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s/none.gguf' --text '%s' > /dev/null 2>&1", bindir, tmp, text);
    CHECK(sh(cmd) == 1, "missing model");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s' --text '%s' --kv k5v5 > /dev/null 2>&1", bindir, model, text);
    CHECK(sh(cmd) == 1, "bad --kv");
    /* an unreachable target is refused before any calibration (the importance pass prints
     * its progress on stderr: absent) */
    char errf[600];
    snprintf(errf, sizeof errf, "%s/calib.err", tmp);
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' --text '%s' --target-bits 1 -N 1 -T 40 > /dev/null 2>'%s'",
             bindir, model, text, errf);
    CHECK(sh(cmd) == 1, "unreachable target");
    CHECK(file_has(errf, "target K 1 / V 1 bits is unreachable: the smallest cache, 2 bits everywhere, takes K 4.7500 / V 9.7500"),
          "the unreachable target's message");
    CHECK(file_has(errf, "nothing was calibrated") && !file_has(errf, "importance"), "refused before calibrating");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' -f '%s' --budget-mib 0.01 -c 512 > /dev/null 2>'%s'",
             bindir, model, text, errf);
    CHECK(sh(cmd) == 1, "unreachable budget");
    CHECK(file_has(errf, "--budget-mib 0.01 is unreachable: the smallest cache, 2 bits everywhere, takes 0.2441 MiB"),
          "the unreachable budget's message");
    /* llama.cpp's names in vkmix-calibrate: -ctk q4_0 -ctv q4_0 is --target-bits-of k4v4 */
    char prof2[600];
    snprintf(prof2, sizeof prof2, "%s/profile2.json", tmp);
    snprintf(cmd, sizeof cmd,
             "'%s/vkmix-calibrate' --model '%s' -f '%s' -N 2 -T 40 -s 3 -t 1 -c 2048 -ctk q4_0 -ctv q4_0 -fa "
             "-o '%s' > /dev/null 2>&1",
             bindir, model, text, prof2);
    CHECK(sh(cmd) == 0, "vkmix-calibrate with llama.cpp's flags: %s", cmd);
    CHECK(file_has(prof2, "target-bits K 6.75, V 9.75 (those of k4v4)"), "-ctk q4_0 -ctv q4_0: the bits of k4v4");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-calibrate' -m '%s' -f '%s' -ctk q5_0 > /dev/null 2>'%s'", bindir, model, text,
             errf);
    CHECK(sh(cmd) == 1 && file_has(errf, "no 5-bit cache width"), "-ctk q5_0 in vkmix-calibrate");

    /* --chunks: llama-perplexity's method, against the recomputation here */
    {
        char cj[300], co[300], ce[300];
        snprintf(cj, sizeof cj, "%s/chunks.json", tmp);
        snprintf(co, sizeof co, "%s/chunks.out", tmp);
        snprintf(ce, sizeof ce, "%s/chunks.err", tmp);
        snprintf(cmd, sizeof cmd,
                 "'%s/vkmix-eval' --model '%s' -f '%s' -c 64 --chunks 3 -b 32 -ctk q4_0 -ctv q4_0 -t 4 -o '%s' >'%s' "
                 "2>'%s'",
                 bindir, model, text, cj, co, ce);
        CHECK(sh(cmd) == 0, "vkmix-eval --chunks: %s", cmd);
        double run[3] = { 0, 0, 0 };
        uint32_t cnt = ppl_chunks_direct(text, 64, 32, 3, run);
        CHECK(cnt == 3 * 31, "3 chunks of 64 score 31 tokens each: %u", cnt);
        cJSON *jc = load_json(cj);
        REQUIRE(jc, "--chunks JSON");
        const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(jc, "caches"), 0), *q4 = cache_named(jc, "k4v4");
        const cJSON *jr = cJSON_GetObjectItem(r0, "ppl_running");
        CHECK(num(cJSON_GetObjectItem(jc, "text"), "scored_tokens") == 93, "93 tokens scored");
        CHECK(cJSON_GetArraySize(jr) == 3, "three running values");
        char line[256] = "", want[64];
        for (int i = 0; i < 3; i++) {
            double v = cJSON_GetArrayItem(jr, i) ? cJSON_GetArrayItem(jr, i)->valuedouble : NAN;
            CHECK(fabs(v - run[i]) <= 1e-6 * run[i], "chunk %d: running PPL %.9f, recomputed %.9f", i + 1, v, run[i]);
            snprintf(line + strlen(line), sizeof line - strlen(line), "[%d]%.4f,", i + 1, run[i]);
        }
        CHECK(run[0] > 1 && run[0] < 30, "stories260K on story text: PPL %.3f", run[0]);
        CHECK(file_has(co, line), "the running line '%s' on stdout", line);
        snprintf(want, sizeof want, "Final estimate: PPL = %.4f +/- ", run[2]);
        CHECK(file_has(co, want), "'%s' on stdout", want);
        CHECK(fabs(num(r0, "ppl") - run[2]) <= 1e-6 * run[2], "final PPL %.9f vs %.9f", num(r0, "ppl"), run[2]);
        CHECK(num(r0, "ppl_stderr") > 0 && num(r0, "ppl_stderr") < run[2], "standard error %g", num(r0, "ppl_stderr"));
        /* -ctk q4_0 -ctv q4_0 is the one cache compared (k4v4), with its own running line */
        CHECK(q4 && cJSON_GetArraySize(cJSON_GetObjectItem(q4, "ppl_running")) == 3, "k4v4's running values");
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(jc, "caches")) == 2, "f16 and k4v4 only");
        CHECK(file_has(co, "k4v4: [1]"), "k4v4's running line");
        /* the warnings: at context 64 k4v4 never packs a token, and costs more than f16 */
        CHECK(file_has(ce, "warning: the k4v4 cache never quantizes a token at context 64"), "never-quantizes warning");
        CHECK(file_has(ce, "more than the f16 cache's"), "memory warning");
        CHECK(file_has(ce, "-t 4 is accepted and unused"), "-t note");
        cJSON_Delete(jc);
        /* too short a text for two chunks, and --chunks with --stride */
        snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s' -f '%s' -c 2048 --chunks 1 > /dev/null 2>'%s'", bindir, model,
                 text, ce);
        CHECK(sh(cmd) == 1 && file_has(ce, "needs at least 4096 (two chunks)"), "--chunks on a short text");
        snprintf(cmd, sizeof cmd, "'%s/vkmix-eval' -m '%s' -f '%s' -c 64 --chunks 1 --stride 8 > /dev/null 2>&1", bindir,
                 model, text);
        CHECK(sh(cmd) == 1, "--chunks with --stride");
    }

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    sh(cmd);
    free(mp);
    return tu_finish("test_eval");
}
