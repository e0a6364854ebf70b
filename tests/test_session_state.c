/* What an embedder does with a session besides decoding (include/vkmix.h):
 *
 *   rewind   f16 and quantized: rewinding and feeding the same tokens again
 *            gives bit-identical logits while the FP16 window is intact
 *            (vkmix_session_rewind_is_exact says so); a deep rewind of a
 *            quantized cache refills the window's groups with exactly the CPU
 *            dequantization of their packed codes, and the logits stay close;
 *   state    saved to memory and to a file, restored into a fresh session: it
 *            continues with exactly the logits of the original (f16 and
 *            quantized, after the ring wrapped); a state of another model, of
 *            another KV configuration, truncated, damaged or too long is
 *            refused with a message that says which, and the session is left alone;
 *   memory   vkmix_session_memory counts every buffer the session holds (the
 *            device's live buffer bytes grow by exactly that at creation) and
 *            nothing grows afterwards (prefill, decode, batch decode, rewind,
 *            state save and load).
 * Model: assets/stories260K-f16.gguf. */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/context.h"
#include "kv/kv_state.h"
#include "kv/kv.h"
#include "runtime/session.h"
#include "testutil.h"

#define N_PROMPT 60

static vkmix_context *g_ctx;
static vkmix_model *g_m;
static uint32_t g_V;

static uint64_t live_bytes(void) { return __atomic_load_n(&g_ctx->dev.buffer_bytes, __ATOMIC_RELAXED); }

static vkmix_session *session(const char *kv, uint32_t n_ctx)
{
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.n_ctx = n_ctx;
    p.kv = kv;
    p.kv_window = 32;
    p.kv_sinks = kv ? 4 : 0;
    vkmix_session *s = NULL;
    if (vkmix_session_create(g_m, &p, &s) != VKMIX_OK) fprintf(stderr, "session: %s\n", vkmix_context_last_error(NULL));
    return s;
}

static int32_t argmax(const float *x)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < g_V; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

/* Decode tok[from..to) one at a time; L[t] = logits after token t. With
 * greedy, tok[t] is first chosen from L[t - 1]. */
static int decode(vkmix_session *s, int32_t *tok, float *L, uint32_t from, uint32_t to, int greedy)
{
    for (uint32_t t = from; t < to; t++) {
        if (greedy) tok[t] = argmax(L + (size_t)(t - 1) * g_V);
        if (vkmix_session_eval(s, &tok[t], 1, L + (size_t)t * g_V, 0) != VKMIX_OK) {
            fprintf(stderr, "decode at %u: %s\n", t, vkmix_context_last_error(NULL));
            return 0;
        }
    }
    return 1;
}

/* A prompt as one prefill, then greedy decode up to n tokens. */
static int start(vkmix_session *s, int32_t *tok, float *L, uint32_t n)
{
    tu_rng r;
    tu_rng_seed(&r, 42);
    for (int i = 0; i < N_PROMPT; i++) tok[i] = (int32_t)(tu_rng_u32(&r) % g_V);
    if (vkmix_session_eval(s, tok, N_PROMPT, L + (size_t)(N_PROMPT - 1) * g_V, 0) != VKMIX_OK) return 0;
    return decode(s, tok, L, N_PROMPT, n, 1);
}

static int same(const float *a, const float *b, uint32_t from, uint32_t to)
{
    return !memcmp(a + (size_t)from * g_V, b + (size_t)from * g_V, (size_t)(to - from) * g_V * 4);
}

/* ------------------------------------------------------------------ rewind */

static void test_rewind(const char *kv)
{
    const uint32_t N = kv ? 170 : 100, n_ctx = 256;
    vkmix_session *s = session(kv, n_ctx);
    if (!s) { CHECK(0, "session"); return; }
    int32_t *tok = calloc(n_ctx, 4);
    float *L = calloc((size_t)n_ctx * g_V, 4), *L2 = calloc((size_t)n_ctx * g_V, 4);
    /* 1. a shallow rewind: the FP16 window is intact, replay is exact */
    uint32_t n1 = 65, top1 = 80;
    CHECK(start(s, tok, L, top1), "%s: first run", kv ? kv : "f16");
    CHECK(vkmix_session_rewind_is_exact(s, n1) == 1, "%s: rewind to %u is exact", kv ? kv : "f16", n1);
    CHECK(vkmix_session_rewind(s, n1) == VKMIX_OK && vkmix_session_n_past(s) == n1, "rewind");
    CHECK(decode(s, tok, L2, n1, top1, 0) && same(L, L2, n1, top1), "%s: replay after rewinding to %u is bit-identical",
          kv ? kv : "f16", n1);
    CHECK(vkmix_session_rewind(s, top1 + 1) == VKMIX_ERROR_INVALID_ARGUMENT, "rewind past n_past refused");
    printf("%-5s rewind %u -> %u: exact, %u replayed logits identical\n", kv ? kv : "f16", top1, n1, top1 - n1);
    if (!kv) {
        /* an f16 cache rewinds exactly from anywhere */
        CHECK(decode(s, tok, L, top1, N, 1), "continue");
        CHECK(vkmix_session_rewind_is_exact(s, N_PROMPT) == 1, "f16 rewinds exactly");
        CHECK(vkmix_session_rewind(s, N_PROMPT) == VKMIX_OK && decode(s, tok, L2, N_PROMPT, N, 0) &&
                  same(L, L2, N_PROMPT, N), "f16: deep replay identical");
    } else {
        /* 2. a deep rewind: the window's ring slots were overwritten since */
        CHECK(decode(s, tok, L, top1, N, 1), "continue to %u", N);
        const uint32_t n2 = 80;
        CHECK(vkmix_session_rewind_is_exact(s, n2) == 0, "%s: rewind %u -> %u is not exact", kv, N, n2);
        /* the groups to refill: those of the window [S + q G, n2) that start below N - ring (older slots
         * were overwritten by the last `ring` positions written) */
        const vkm_kv_cache *c = &s->cache;
        const uint32_t G = c->cfg.group, S = c->cfg.sinks, H = c->n_kv_head, D = c->head_dim;
        const uint32_t lost = N - c->cfg.ring < n2 ? N - c->cfg.ring : n2;
        const uint32_t b0 = vkm_kv_blocks_at(&c->cfg, n2), b1 = (lost - S + G - 1) / G;
        uint32_t s0, s1;
        vkm_kv_rewind_span(c, n2, s->ring_from, &s0, &s1);
        CHECK(s0 == b0 && s1 == b1, "refill span [%u, %u), expected [%u, %u)", s0, s1, b0, b1);
        CHECK(vkmix_session_rewind(s, n2) == VKMIX_OK, "deep rewind");
        /* every group of the window that was refilled holds the CPU dequantization of its codes */
        int bad = 0, checked = 0;
        for (uint32_t l = 0; l < c->n_layer; l++)
            for (int is_v = 0; is_v < 2; is_v++) {
                const vkm_kv_side *sd = is_v ? &c->v[l] : &c->k[l];
                uint16_t *ring = malloc(sd->ring.size);
                uint32_t *codes = malloc(sd->codes.size), *meta = malloc(sd->meta.size);
                vkm_cmd *cmd = &s->cmd;
                CHECK(vkm_buffer_download(cmd, &sd->ring, 0, ring, sd->ring.size) == VKMIX_OK &&
                          vkm_buffer_download(cmd, &sd->codes, 0, codes, sd->codes.size) == VKMIX_OK &&
                          vkm_buffer_download(cmd, &sd->meta, 0, meta, sd->meta.size) == VKMIX_OK, "download");
                uint16_t *y = malloc((size_t)G * D * 2);
                for (uint32_t h = 0; h < H; h++)
                    for (uint32_t b = b0; b < b1; b++) {
                        vkmix_kvq_shape sh = { is_v ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, sd->bits,
                                               is_v ? c->cfg.v_group : G, D, 1, G };
                        const uint32_t *cp, *mp;
                        if (!is_v) {
                            cp = codes + ((size_t)h * c->n_blocks + b) * (G * sd->bits / 32) * D;
                            mp = meta + ((size_t)h * c->n_blocks + b) * D;
                        } else {
                            cp = codes + ((size_t)h * c->n_blocks * G + (size_t)b * G) * kvl_v_wpt(sd->bits, D);
                            mp = meta + ((size_t)h * c->n_blocks * G + (size_t)b * G) * (D / c->cfg.v_group);
                        }
                        vkmix_kvq_dequantize_cpu(&sh, cp, mp, y);
                        const uint16_t *got = ring + ((size_t)h * c->cfg.ring + (b * G) % c->cfg.ring) * D;
                        for (uint32_t i = 0; i < G * D; i++, checked++) {
                            int d = (int)got[i] - (int)y[i];
                            bad += d > 1 || d < -1; /* the GPU converts to FP16 itself: 1 ulp */
                        }
                    }
                free(y);
                free(ring);
                free(codes);
                free(meta);
            }
        CHECK(b1 > b0 && checked > 0 && bad == 0, "refilled groups [%u, %u): %d of %d values differ from the CPU "
              "dequantization", b0, b1, bad, checked);
        /* the replay is close to the original (the window holds dequantized values instead of FP16 ones) */
        const uint32_t n3 = n2 + 30;
        CHECK(decode(s, tok, L2, n2, n3, 0), "replay after the deep rewind");
        double worst = 0;
        int agree = 0;
        for (uint32_t t = n2; t < n3; t++) {
            double num = 0, den = 0;
            for (uint32_t i = 0; i < g_V; i++) {
                double d = (double)L2[(size_t)t * g_V + i] - L[(size_t)t * g_V + i];
                num += d * d;
                den += (double)L[(size_t)t * g_V + i] * L[(size_t)t * g_V + i];
            }
            double rel = sqrt(num / den);
            if (rel > worst) worst = rel;
            agree += argmax(L2 + (size_t)t * g_V) == argmax(L + (size_t)t * g_V);
        }
        CHECK(!same(L, L2, n2, n3), "the deep rewind is not exact (as documented)");
        CHECK(worst < 0.2 && agree >= 24, "after the deep rewind the logits stay close: worst relative L2 %.4f, top-1 "
              "agreement %d/30", worst, agree);
        printf("%-5s rewind %u -> %u: groups [%u, %u) refilled = CPU dequantization (%d values); replay: worst rel L2 "
               "%.4f, top-1 %d/30\n", kv, N, n2, b0, b1, checked, worst, agree);
    }
    free(tok);
    free(L);
    free(L2);
    vkmix_session_free(s);
}

/* ------------------------------------------------------------------ state */

static void test_state(const char *kv, uint32_t N)
{
    const char *name = kv ? kv : "f16";
    const uint32_t n_ctx = 256, more = 16;
    vkmix_session *a = session(kv, n_ctx), *b = session(kv, n_ctx), *c = session(kv, n_ctx);
    if (!a || !b || !c) {
        CHECK(0, "sessions");
        return;
    }
    int32_t *tok = calloc(n_ctx, 4);
    float *L = calloc((size_t)n_ctx * g_V, 4), *LB = calloc((size_t)n_ctx * g_V, 4), *LC = calloc((size_t)n_ctx * g_V, 4);
    CHECK(start(a, tok, L, N), "%s: run to %u", name, N);
    size_t size = 0, written = 0;
    CHECK(vkmix_session_state_size(a, &size) == VKMIX_OK && size > 0, "state size");
    char *buf = malloc(size);
    CHECK(vkmix_session_state_save(a, buf, size - 1, &written) == VKMIX_ERROR_INVALID_ARGUMENT && written == size,
          "a short buffer is refused and told the size");
    CHECK(vkmix_session_state_save(a, buf, size, &written) == VKMIX_OK && written == size, "save to memory");
    char path[256];
    snprintf(path, sizeof path, "/tmp/vkmix_state_%d_%s.bin", (int)getpid(), name);
    CHECK(vkmix_session_state_save_file(a, path) == VKMIX_OK, "save to %s: %s", path, vkmix_context_last_error(NULL));
    /* the original goes on */
    CHECK(decode(a, tok, L, N, N + more, 1), "continue the original");
    /* restored sessions go on identically */
    CHECK(vkmix_session_eval(b, tok, 3, NULL, 0) == VKMIX_OK, "b holds other tokens before the load");
    CHECK(vkmix_session_state_load(b, buf, size) == VKMIX_OK && vkmix_session_n_past(b) == N, "load from memory: %s",
          vkmix_context_last_error(NULL));
    memcpy(LB + (size_t)(N - 1) * g_V, L + (size_t)(N - 1) * g_V, (size_t)g_V * 4);
    CHECK(decode(b, tok, LB, N, N + more, 0) && same(L, LB, N, N + more), "%s: restored from memory: identical logits",
          name);
    CHECK(vkmix_session_state_load_file(c, path) == VKMIX_OK && vkmix_session_n_past(c) == N, "load from file: %s",
          vkmix_context_last_error(NULL));
    CHECK(decode(c, tok, LC, N, N + more, 0) && same(L, LC, N, N + more), "%s: restored from a file: identical logits",
          name);
    printf("%-5s state of %u tokens (%zu bytes) restored from memory and from a file: %u identical steps\n", name, N,
           size, more);
    unlink(path);
    free(buf);
    free(tok);
    free(L);
    free(LB);
    free(LC);
    vkmix_session_free(a);
    vkmix_session_free(b);
    vkmix_session_free(c);
}

static void test_refusals(void)
{
    vkmix_session *q = session("k4v2", 256), *f = session(NULL, 256), *q2 = session("k2v2", 256), *small = session("k4v2", 64);
    if (!q || !f || !q2 || !small) {
        CHECK(0, "sessions");
        return;
    }
    int32_t *tok = calloc(256, 4);
    float *L = calloc((size_t)256 * g_V, 4);
    CHECK(start(q, tok, L, 70), "run");
    size_t size;
    vkmix_session_state_size(q, &size);
    char *buf = malloc(size), *bad = malloc(size);
    CHECK(vkmix_session_state_save(q, buf, size, NULL) == VKMIX_OK, "save");
    CHECK(vkmix_session_eval(f, tok, 5, NULL, 0) == VKMIX_OK, "f holds 5 tokens");
    const char *msg;
#define REFUSED(sess, data, n, code, text, what)                                                                       \
    do {                                                                                                               \
        vkmix_error e_ = vkmix_session_state_load(sess, data, n);                                                      \
        msg = vkmix_context_last_error(NULL);                                                                          \
        CHECK(e_ == (code) && strstr(msg, text), "%s: %s (%s)", what, vkmix_strerror(e_), msg);                        \
        printf("refused (%s): %s\n", what, msg);                                                                       \
    } while (0)
    REFUSED(f, buf, size, VKMIX_ERROR_BAD_STATE, "KV configuration", "k4v2 state into an f16 session");
    CHECK(vkmix_session_n_past(f) == 5, "a refused state leaves the session alone");
    REFUSED(q2, buf, size, VKMIX_ERROR_BAD_STATE, "k2v2", "k4v2 state into a k2v2 session");
    REFUSED(small, buf, size, VKMIX_ERROR_CONTEXT_OVERFLOW, "context", "70 tokens into a context of 64");
    REFUSED(q, buf, size - 1, VKMIX_ERROR_BAD_STATE, "damaged", "truncated");
    memcpy(bad, buf, size);
    memset(bad, 0, 8);
    REFUSED(q, bad, size, VKMIX_ERROR_BAD_STATE, "not a vkmix session state", "no magic");
    memcpy(bad, buf, size);
    bad[8] ^= 0x7f; /* the layout version */
    REFUSED(q, bad, size, VKMIX_ERROR_BAD_STATE, "version", "another layout version");
    REFUSED(q, buf, 10, VKMIX_ERROR_BAD_STATE, "not a vkmix session state", "10 bytes");
    CHECK(vkmix_session_state_load_file(q, "/nonexistent/vkmix.state") == VKMIX_ERROR_IO, "missing file");
    /* another model: a synthetic one with stories260K's vocabulary size */
    vkmix_model *other = NULL;
    CHECK(vkmix_model_create_synthetic(g_ctx, "tiny", "f16", 1, &other) == VKMIX_OK, "synthetic model");
    vkmix_session_params p;
    vkmix_session_default_params(&p);
    p.n_ctx = 256;
    p.kv = "k4v2";
    p.kv_window = 32;
    p.kv_sinks = 4;
    vkmix_session *o = NULL;
    CHECK(other && vkmix_session_create(other, &p, &o) == VKMIX_OK, "session of the other model");
    if (o) REFUSED(o, buf, size, VKMIX_ERROR_BAD_STATE, "another model", "state of another model");
    vkmix_session_free(o);
    vkmix_model_free(other);
    /* after all that, the state still loads where it belongs */
    CHECK(vkmix_session_state_load(q, buf, size) == VKMIX_OK && vkmix_session_n_past(q) == 70, "the good state loads");
#undef REFUSED
    free(buf);
    free(bad);
    free(tok);
    free(L);
    vkmix_session_free(q);
    vkmix_session_free(f);
    vkmix_session_free(q2);
    vkmix_session_free(small);
}

/* ------------------------------------------------------------------ memory */

static void test_memory(const char *kv)
{
    const char *name = kv ? kv : "f16";
    uint64_t before = live_bytes();
    vkmix_session *s = session(kv, 256), *t = session(kv, 256);
    if (!s || !t) {
        CHECK(0, "sessions");
        return;
    }
    uint64_t after = live_bytes();
    vkmix_session_mem m, mt;
    CHECK(vkmix_session_memory(s, &m) == VKMIX_OK && vkmix_session_memory(t, &mt) == VKMIX_OK, "memory");
    CHECK(m.total_bytes == m.kv_bytes + m.attention_bytes + m.activation_bytes + m.logits_bytes, "total is the sum");
    CHECK(after - before == m.total_bytes + mt.total_bytes,
          "%s: the device holds %llu more bytes after two sessions; vkmix_session_memory counts %llu", name,
          (unsigned long long)(after - before), (unsigned long long)(m.total_bytes + mt.total_bytes));
    vkmix_model_info info;
    vkmix_model_get_info(g_m, &info);
    vkmix_kv_memory kvm;
    vkmix_session_kv_memory(s, &kvm);
    /* buffers are rounded up to 16 bytes: at most 4 buffers per layer and side */
    CHECK(m.kv_bytes >= kvm.total_bytes && m.kv_bytes < kvm.total_bytes + 16ull * 4 * 2 * info.n_layer,
          "kv bytes %llu vs accounting %llu", (unsigned long long)m.kv_bytes, (unsigned long long)kvm.total_bytes);
    if (kv) {
        uint64_t lin = 2ull * info.n_head_kv * 256 * info.head_dim * 2;
        CHECK(m.attention_bytes >= lin, "the prefill's linear history (%llu bytes) is allocated at creation",
              (unsigned long long)lin);
    }
    /* nothing grows: prefill, decode, batch decode, rewind, state save / load */
    int32_t *tok = calloc(256, 4);
    float *L = calloc((size_t)256 * g_V, 4);
    CHECK(start(s, tok, L, 64) && vkmix_session_eval(t, tok, 40, NULL, 0) == VKMIX_OK, "run");
    vkmix_session *pair[2] = { s, t };
    int32_t two[2] = { 1, 2 };
    CHECK(vkmix_batch_decode(pair, two, 2, NULL) == VKMIX_OK, "batch decode");
    CHECK(vkmix_session_rewind(s, 50) == VKMIX_OK, "rewind");
    size_t size;
    vkmix_session_state_size(s, &size);
    char *buf = malloc(size);
    CHECK(vkmix_session_state_save(s, buf, size, NULL) == VKMIX_OK && vkmix_session_state_load(t, buf, size) == VKMIX_OK,
          "save / load");
    CHECK(live_bytes() == after, "%s: the device's live buffers did not grow (%llu -> %llu)", name,
          (unsigned long long)after, (unsigned long long)live_bytes());
    printf("%-5s session: %llu bytes (kv %llu, attention %llu, activations %llu, logits %llu), all at creation\n", name,
           (unsigned long long)m.total_bytes, (unsigned long long)m.kv_bytes, (unsigned long long)m.attention_bytes,
           (unsigned long long)m.activation_bytes, (unsigned long long)m.logits_bytes);
    free(buf);
    free(tok);
    free(L);
    vkmix_session_free(s);
    vkmix_session_free(t);
    CHECK(live_bytes() == before, "freeing the sessions returns every byte");
}

int main(void)
{
    char *path = tu_source_path("assets/stories260K-f16.gguf");
    REQUIRE(path, "assets/stories260K-f16.gguf not found (VKMIX_SOURCE_DIR)");
    g_ctx = tu_context();
    REQUIRE(g_ctx, "no Vulkan context");
    REQUIRE(vkmix_model_load(g_ctx, path, NULL, &g_m) == VKMIX_OK, "model: %s", vkmix_context_last_error(g_ctx));
    vkmix_model_info info;
    vkmix_model_get_info(g_m, &info);
    g_V = info.n_vocab;
    test_memory(NULL);
    test_memory("k4v2");
    test_rewind(NULL);
    test_rewind("k4v2");
    test_state(NULL, 70);
    test_state("k4v2", 140); /* the ring (128 slots) wrapped, groups are packed */
    test_refusals();
    vkmix_model_free(g_m);
    free(path);
    CHECK(tu_context_done(g_ctx) == 0, "validation messages");
    return tu_finish("test_session_state");
}
