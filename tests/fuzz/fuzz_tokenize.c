/* Fuzz target: text -> tokens -> text on the vocabularies of fuzz_vocabs.c.
 * Input: byte 0 picks the vocabulary (low bits) and parse_special (bit 7);
 * the rest is the text, any bytes. Contracts (fuzz_util.c): ids in range,
 * consistent "cap too small" answers, streamed output valid UTF-8 and equal
 * to the whole decode when that is valid UTF-8, and the round trip where it
 * must hold: every byte-level BPE text (specials parsed or not, rendered as
 * text), and SPM text with byte fallback when specials are not parsed and the
 * text has no U+2581 (which SPM uses for the space). */
#include <string.h>

#include "fuzz.h"
#include "fuzz_vocabs.h"

static int has_metaspace(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return 1;
    return 0;
}

int vkm_fuzz_tokenize(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int n = 0;
    const vkm_fuzz_vocab *vocabs = vkm_fuzz_vocabs(&n);
    const vkm_fuzz_vocab *v = &vocabs[(data[0] & 0x7f) % n];
    if (!v->tok) return 0; /* test_fuzz_corpus checks that every vocabulary builds */
    int parse_special = data[0] >> 7;
    const uint8_t *text = data + 1;
    size_t len = size - 1;
    int round_trip = v->round_trip && (!v->spm || (!parse_special && !has_metaspace(text, len)));
    vkm_fuzz_check_tokenizer(v->tok, (const char *)text, len, parse_special, round_trip, v->detok_flags);
    return 0;
}
