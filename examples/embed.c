/* embed: the smallest program that embeds vkmix, as a game or an app would.
 *
 *   embed MODEL.gguf ["prompt"]
 *
 * Creates a context on the default Vulkan device, loads the model, evaluates
 * the prompt, generates 16 tokens greedily, prints them as they come, and frees
 * everything. Build it against an installed vkmix with
 *   find_package(vkmix REQUIRED)  +  target_link_libraries(app PRIVATE vkmix::vkmix)
 * or with pkg-config:  cc embed.c $(pkg-config --cflags --libs vkmix)
 *
 * An application that already has a VkDevice fills vkmix_context_params.external
 * instead (see the comment at the top of vkmix.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkmix.h"

/* On failure: print the code and the context's detail, jump to cleanup. */
#define CHECK(call)                                                                                  \
    do {                                                                                             \
        vkmix_error e_ = (call);                                                                     \
        if (e_ != VKMIX_OK) {                                                                        \
            fprintf(stderr, "embed: %s: %s %s\n", #call, vkmix_strerror(e_),                         \
                    ctx ? vkmix_context_last_error(ctx) : "");                                       \
            goto cleanup;                                                                            \
        }                                                                                            \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: embed MODEL.gguf [prompt]\n");
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    int rc = 1;
    vkmix_context *ctx = NULL;
    vkmix_model *model = NULL;
    vkmix_session *session = NULL;
    vkmix_sampler *sampler = NULL;
    vkmix_detokenizer *detok = NULL;
    float *logits = NULL;

    /* 1. a context: vkmix creates its own Vulkan instance and device */
    char err[512] = "";
    vkmix_context_params cp;
    vkmix_context_default_params(&cp);
    cp.error_buf = err;
    cp.error_buf_size = sizeof err;
    vkmix_error e = vkmix_context_create(&cp, &ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, "embed: no Vulkan context: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }

    /* 2. the model, and a session (KV cache) of 256 tokens */
    CHECK(vkmix_model_load(ctx, argv[1], NULL, &model));
    vkmix_model_info info;
    CHECK(vkmix_model_get_info(model, &info));
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = 256;
    CHECK(vkmix_session_create(model, &sp, &session));

    /* 3. greedy sampling and a streaming detokenizer (whole UTF-8 characters only) */
    vkmix_sampler_params smp;
    vkmix_sampler_default_params(&smp);
    smp.temperature = 0.0f;
    CHECK(vkmix_sampler_create(&smp, &sampler));
    CHECK(vkmix_detokenizer_create(model, &detok));

    /* 4. the prompt: text -> tokens (with BOS) -> one evaluation */
    int32_t tokens[256];
    size_t n = 0;
    CHECK(vkmix_tokenize(model, prompt, strlen(prompt), 1, 0, tokens, 256, &n));
    logits = malloc(info.n_vocab * sizeof *logits);
    if (!logits) goto cleanup;
    CHECK(vkmix_session_eval(session, tokens, (uint32_t)n, logits, 0));

    /* 5. 16 tokens, one at a time */
    printf("%s", prompt);
    for (int i = 0; i < 16; i++) {
        int32_t tok;
        CHECK(vkmix_sampler_sample(sampler, logits, info.n_vocab, &tok));
        if (vkmix_token_is_eog(model, tok)) break;
        const char *text;
        size_t len;
        CHECK(vkmix_detokenizer_push(detok, tok, &text, &len));
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        CHECK(vkmix_session_eval(session, &tok, 1, logits, 0));
    }
    const char *text;
    size_t len;
    CHECK(vkmix_detokenizer_flush(detok, &text, &len));
    fwrite(text, 1, len, stdout);
    printf("\n");
    rc = 0;

cleanup:
    /* 6. free in reverse order; every free accepts NULL */
    free(logits);
    vkmix_detokenizer_free(detok);
    vkmix_sampler_free(sampler);
    vkmix_session_free(session);
    vkmix_model_free(model);
    vkmix_context_free(ctx);
    return rc;
}
