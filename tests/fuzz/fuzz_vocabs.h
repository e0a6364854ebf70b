/* The vocabularies the tokenizer fuzzer runs (fuzz_vocabs.c), built once. */
#ifndef VKM_FUZZ_VOCABS_H
#define VKM_FUZZ_VOCABS_H

#include "text/tokenizer.h"

typedef struct {
    const char *name;
    vkm_tokenizer *tok;
    int spm;            /* SPM: the round trip needs parse_special 0 and no U+2581 in the text */
    int round_trip;     /* decoding gives the text back (under the conditions above) */
    unsigned detok_flags;
} vkm_fuzz_vocab;

/* NULL entries when a vocabulary cannot be built (e.g. the asset is missing);
 * *n gets the count. */
const vkm_fuzz_vocab *vkm_fuzz_vocabs(int *n);

/* BPE training over `text` split into words, for the vocabularies and the
 * seeds: the merged symbols and the merges "left right" in rank order.
 * spm: words are " "-separated, each prefixed with U+2581, characters as is;
 * otherwise GPT-2 pre-tokens in the byte-to-unicode mapping. Returns the
 * number of merges (<= max_merges); the strings are malloc'ed. */
typedef struct {
    char **chars;  uint32_t n_chars;   /* initial symbols (every character seen) */
    char **merges; uint32_t n_merges;  /* "left right" */
    char **merged; /* [n_merges] the symbol each merge makes */
} vkm_fuzz_bpe;
void vkm_fuzz_bpe_train(const char *text, int spm, uint32_t max_merges, vkm_fuzz_bpe *out);
void vkm_fuzz_bpe_free(vkm_fuzz_bpe *b);
extern const char vkm_fuzz_sample_text[];

#endif
