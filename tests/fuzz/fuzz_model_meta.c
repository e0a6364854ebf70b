/* Fuzz target: a GGUF file -> the model's metadata on the CPU, as loading
 * does before any weight reaches a device (src/model/model_meta.c):
 * hyper-parameters and RoPE frequencies, the tokenizer, the chat template.
 * Contracts: every failure has a known code and a message; hyper-parameters
 * that were accepted pass vkm_model_meta_check; an accepted vocabulary fits
 * the embedding, its special ids are token ids, and it tokenizes and decodes
 * a fixed text (invalid UTF-8 included) within the tokenizer contracts. The
 * vocabulary is read even when the hyper-parameters fail (then with the
 * largest vocabulary allowed), so each half is fuzzed on its own. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gguf/gguf.h"
#include "model/model_meta.h"

static const char k_text[] = "Once upon a time <s> <|im_start|>user\n caf\xc3\xa9 \xe2\x96\x81\xff\xc0\x80 \xf0\x9f\x98";

static void check_vocab(const vkm_tokenizer *tok, uint32_t n_vocab)
{
    uint32_t n = vkm_tokenizer_n_tokens(tok);
    FUZZ_ASSERT(n >= 1 && n <= n_vocab, "%u tokens for %u embedding rows", n, n_vocab);
    int32_t ids[5] = {vkm_tokenizer_bos(tok), vkm_tokenizer_eos(tok), vkm_tokenizer_unk(tok), vkm_tokenizer_pad(tok),
                      vkm_tokenizer_eot(tok)};
    for (int i = 0; i < 5; i++) FUZZ_ASSERT(ids[i] == -1 || (ids[i] >= 0 && (uint32_t)ids[i] < n), "special id %d", ids[i]);
    FUZZ_ASSERT(!vkm_tokenizer_add_bos(tok) || ids[0] >= 0, "add_bos without bos");
    FUZZ_ASSERT(!vkm_tokenizer_add_eos(tok) || ids[1] >= 0, "add_eos without eos");
    uint32_t max_len = vkm_tokenizer_max_token_len(tok);
    for (uint32_t i = 0; i < n && i < 4096; i++) {
        uint32_t len = 0;
        const char *s = vkm_tokenizer_token_text(tok, (int32_t)i, &len);
        FUZZ_ASSERT(s && len <= max_len && s[len] == 0, "token %u text", i);
        size_t k = 0;
        vkmix_error e = vkm_token_to_piece_ex(tok, (int32_t)i, 1, NULL, 0, &k);
        FUZZ_ASSERT(e == (k ? VKMIX_ERROR_INVALID_ARGUMENT : VKMIX_OK) && k <= max_len, "piece of %u: %d, %zu", i, (int)e, k);
    }
    vkm_fuzz_check_tokenizer(tok, k_text, sizeof k_text - 1, 1, 0, VKM_DETOK_SPECIAL);
    vkm_fuzz_check_tokenizer(tok, k_text, sizeof k_text - 1, 0, 0, VKM_DETOK_STRIP_START);
}

int vkm_fuzz_model_meta(const uint8_t *data, size_t size)
{
    char err[512];
    memset(err, 0x55, sizeof err);
    vkm_gguf *g = NULL;
    vkmix_error e = vkm_gguf_open_memory(size ? data : NULL, size, &g, err, sizeof err);
    if (e != VKMIX_OK) {
        FUZZ_ASSERT(g == NULL, "failed open returned a handle");
        vkm_fuzz_check_error(e, err, sizeof err, "vkm_gguf_open_memory");
        return 0;
    }
    vkm_model_meta meta;
    memset(err, 0x55, sizeof err);
    e = vkm_model_meta_read(g, &meta, err, sizeof err);
    uint32_t n_vocab = VKM_MAX_VOCAB;
    if (e == VKMIX_OK) {
        const vkm_hparams *hp = &meta.hp;
        FUZZ_ASSERT(vkm_model_meta_check(&meta),
                    "accepted hyper-parameters break their invariants: embd %u layer %u ff %u head %u/%u dim %u "
                    "ctx %u vocab %u eps %g theta %g freqs[0] %g",
                    hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_ctx_train,
                    hp->n_vocab, (double)hp->norm_eps, (double)hp->rope_theta, (double)meta.rope_freqs[0]);
        n_vocab = meta.hp.n_vocab;
    } else {
        vkm_fuzz_check_error(e, err, sizeof err, "vkm_model_meta_read");
    }
    vkm_tokenizer *tok = (vkm_tokenizer *)err;
    memset(err, 0x55, sizeof err);
    e = vkm_model_vocab_read(g, n_vocab, &tok, err, sizeof err);
    if (e == VKMIX_OK) {
        FUZZ_ASSERT(tok != NULL, "vocabulary accepted without a tokenizer");
        if (tok) check_vocab(tok, n_vocab);
        vkm_tokenizer_free(tok);
    } else {
        FUZZ_ASSERT(tok == NULL, "failed vocabulary returned a tokenizer");
        vkm_fuzz_check_error(e, err, sizeof err, "vkm_model_vocab_read");
    }
    char *tmpl = NULL;
    e = vkm_model_chat_template_read(g, &tmpl);
    FUZZ_ASSERT(e == VKMIX_OK || e == VKMIX_ERROR_OUT_OF_HOST_MEMORY, "chat template: %d", (int)e);
    free(tmpl);
    vkm_gguf_close(g);
    return 0;
}
