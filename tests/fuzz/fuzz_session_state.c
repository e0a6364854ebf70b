/* Fuzz target: saved session state -> vkmix_session_state_load, on lavapipe
 * (or whatever device the loader gives), with the shipped model.
 * Input: byte 0: bits 0-1 pick one of four sessions (f16 or k4v2 with a
 *        32-token window and 4 sinks; n_ctx 128 or 48); bit 2: after a
 *        successful load, evaluate one more token; the rest: the state.
 * Contracts: a refused state has a known code and a message, and leaves the
 * session as it was (empty: each input starts from a reset session); an
 * accepted one holds at most n_ctx tokens, saves back to a state of the size
 * vkmix_session_state_size gives, and that state loads again and saves to the
 * same bytes (a fixed point); rewinding it to half its length and evaluating
 * from there work; the validation layer (when on) reports nothing. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define N_SESSIONS 4

static struct {
    int tried, ok;
    vkmix_context *ctx;
    vkmix_model *model;
    vkmix_session *s[N_SESSIONS];
    float *logits;
} g;

static void teardown(void)
{
    for (int i = 0; i < N_SESSIONS; i++) vkmix_session_free(g.s[i]);
    vkmix_model_free(g.model);
    vkmix_context_free(g.ctx);
    free(g.logits);
}

/* The sessions of byte 0's bits 0-1: f16 / k4v2:w=32:s=4, n_ctx 128 / 48. */
vkmix_session *vkm_fuzz_state_session(int i)
{
    if (!g.tried) {
        g.tried = 1;
        char err[512] = "";
        vkmix_context_params cp;
        vkmix_context_default_params(&cp);
        cp.error_buf = err;
        cp.error_buf_size = sizeof err;
        if (vkmix_context_create(&cp, &g.ctx) != VKMIX_OK) {
            fprintf(stderr, "fuzz_session_state: no context: %s\n", err);
            return NULL;
        }
        if (vkmix_model_load(g.ctx, vkm_fuzz_asset_path(), NULL, &g.model) != VKMIX_OK) {
            fprintf(stderr, "fuzz_session_state: %s\n", vkmix_context_last_error(g.ctx));
            return NULL;
        }
        vkmix_model_info info;
        vkmix_model_get_info(g.model, &info);
        g.logits = malloc(info.n_vocab * sizeof *g.logits);
        g.ok = g.logits != NULL;
        for (int k = 0; k < N_SESSIONS && g.ok; k++) {
            vkmix_session_params p;
            vkmix_session_default_params(&p);
            p.n_ctx = k & 2 ? 48 : 128;
            p.kv = k & 1 ? "k4v2:w=32:s=4" : "f16";
            if (vkmix_session_create(g.model, &p, &g.s[k]) != VKMIX_OK) {
                fprintf(stderr, "fuzz_session_state: session: %s\n", vkmix_context_last_error(g.ctx));
                g.ok = 0;
            }
        }
        atexit(teardown);
    }
    return g.ok ? g.s[i & 3] : NULL;
}

vkmix_context *vkm_fuzz_state_context(void) { return g.ctx; }

int vkm_fuzz_session_state(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    vkmix_session *s = vkm_fuzz_state_session(data[0] & 3);
    if (!s) return 0; /* test_fuzz_corpus checks that the sessions exist */
    vkmix_session_reset(s);
    const uint8_t *state = data + 1;
    size_t n = size - 1;
    vkmix_error e = vkmix_session_state_load(s, n ? state : (const void *)data, n);
    if (e != VKMIX_OK) {
        const char *msg = vkmix_context_last_error(g.ctx);
        FUZZ_ASSERT(e > VKMIX_OK && e < VKMIX_ERROR_COUNT_ && msg && msg[0], "refusal %d without a message", (int)e);
        FUZZ_ASSERT(vkmix_session_n_past(s) == 0, "a refused state changed the session (%u tokens)",
                    vkmix_session_n_past(s));
    } else {
        uint32_t past = vkmix_session_n_past(s), n_ctx = vkmix_session_n_ctx(s);
        FUZZ_ASSERT(past <= n_ctx, "%u tokens in a context of %u", past, n_ctx);
        size_t need = 0, w1 = 0, w2 = 0;
        e = vkmix_session_state_size(s, &need);
        FUZZ_ASSERT(e == VKMIX_OK && need > 0, "state size: %d", (int)e);
        uint8_t *a = malloc(need ? need : 1), *b = malloc(need ? need : 1);
        if (a && b && e == VKMIX_OK) {
            e = vkmix_session_state_save(s, a, need, &w1);
            FUZZ_ASSERT(e == VKMIX_OK && w1 == need, "save: %d, %zu of %zu bytes", (int)e, w1, need);
            e = vkmix_session_state_load(s, a, w1);
            FUZZ_ASSERT(e == VKMIX_OK, "a saved state does not load: %s", vkmix_context_last_error(g.ctx));
            e = vkmix_session_state_save(s, b, need, &w2);
            FUZZ_ASSERT(e == VKMIX_OK && w2 == w1 && !memcmp(a, b, w1), "save -> load -> save is not a fixed point");
        }
        free(a);
        free(b);
        /* the loaded bookkeeping drives a rewind (a refill from packed groups when the ring was reused) */
        e = vkmix_session_rewind(s, past / 2);
        FUZZ_ASSERT(e == VKMIX_OK && vkmix_session_n_past(s) == past / 2, "rewind to %u after a load: %s", past / 2,
                    vkmix_context_last_error(g.ctx));
        if ((data[0] & 4) && vkmix_session_n_past(s) < n_ctx) {
            int32_t tok = 1;
            e = vkmix_session_eval(s, &tok, 1, g.logits, 0);
            FUZZ_ASSERT(e == VKMIX_OK, "eval after a load: %s", vkmix_context_last_error(g.ctx));
        }
    }
    FUZZ_ASSERT(vkmix_context_validation_messages(g.ctx) == 0, "the validation layer reported %u message(s)",
                vkmix_context_validation_messages(g.ctx));
    return 0;
}
