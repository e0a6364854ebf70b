/* Tokenizers (SentencePiece-style and GPT-2 byte-level BPE) and streaming
 * detokenization. Pure C, no Vulkan, no GGUF parsing: the model loader fills a
 * vkm_vocab_init from the GGUF metadata `tokenizer.ggml.*`.
 *
 * Behaviour follows llama.cpp's tokenizer unless noted (see the notes in
 * tokenizer.c for every deliberate difference).
 *
 * Thread safety: a vkm_tokenizer is immutable after creation; any number of
 * threads may tokenize/decode with one tokenizer at the same time. A vkm_detok
 * is single-threaded state. */
#ifndef VKM_TOKENIZER_H
#define VKM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "vkmix.h"

/* GGUF tokenizer.ggml.model: "llama" -> SPM, "gpt2" -> BPE */
typedef enum { VKM_VOCAB_SPM = 1, VKM_VOCAB_BPE = 2 } vkm_vocab_type;

/* GGUF tokenizer.ggml.pre: "llama-bpe"/"llama3" -> LLAMA3, "qwen2" -> QWEN2,
 * "gpt-2"/"default" -> GPT2. DEFAULT behaves as GPT2 for a BPE vocabulary and
 * is ignored by SPM. */
typedef enum {
    VKM_PRETOK_DEFAULT = 0,
    VKM_PRETOK_LLAMA3 = 1,
    VKM_PRETOK_QWEN2 = 2,
    VKM_PRETOK_GPT2 = 3
} vkm_pretok;

/* GGUF tokenizer.ggml.token_type values (llama.cpp's) */
enum {
    VKM_TOKTYPE_NORMAL = 1,
    VKM_TOKTYPE_UNKNOWN = 2,
    VKM_TOKTYPE_CONTROL = 3,
    VKM_TOKTYPE_USER_DEFINED = 4,
    VKM_TOKTYPE_UNUSED = 5,
    VKM_TOKTYPE_BYTE = 6
};

typedef struct vkm_vocab_init {
    vkm_vocab_type type;
    vkm_pretok pre;
    uint32_t n_tokens;
    const char *const *tokens;      /* [n_tokens] token text, not NUL-terminated */
    const uint32_t *token_lens;     /* [n_tokens] byte lengths; NULL: tokens are NUL-terminated */
    const float *scores;            /* [n_tokens] or NULL (all 0) */
    const int32_t *token_types;     /* [n_tokens] or NULL: see VKM_TOKTYPE_*; NULL derives them:
                                       unk_id -> unknown, bos/eos/eot/pad -> control,
                                       SPM texts "<0xXX>" -> byte, the rest normal */
    uint32_t n_merges;              /* BPE merges "a b", rank = index; an SPM vocabulary that */
    const char *const *merges;      /* comes with merges (HF BPE with a metaspace, "▁") is */
    const uint32_t *merge_lens;     /* encoded by merge rank instead of score; NULL lens: NUL-terminated */
    int32_t bos_id, eos_id, unk_id, pad_id, eot_id; /* -1 when absent */
    int add_bos, add_eos;           /* 0/1, or -1 for the default: SPM add_bos=1, BPE add_bos=1 only
                                       for LLAMA3; add_eos=0 */
    int add_space_prefix;           /* SPM: prepend a space (0/1, -1: default 1); BPE ignores it */
} vkm_vocab_init;

/* GGUF names to enums, for the model loader. Return 1 when the name is known
 * (then *out is set), 0 otherwise. Model: "llama" -> SPM, "gpt2" -> BPE.
 * Pre: "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
 * "midm-2.0", "lfm2" -> LLAMA3; "qwen2", "deepseek-r1-qwen" -> QWEN2; "gpt-2",
 * "phi-2", "roberta-bpe", "gigachat", "jina-*" -> GPT2 (llama.cpp uses these
 * regexes for them); "default" -> GPT2 (approximate: llama.cpp's "default" is
 * a four-regex chain close to GPT-2's). Other pre-tokenizers (deepseek, falcon,
 * starcoder, ...) are not implemented: a loader may fall back to GPT2 with a
 * warning.
 * Not done either: llama.cpp's clean_spaces for whole-sequence BPE decoding
 * (" ," -> ","), a lossy HF convenience. */
int vkm_vocab_type_from_name(const char *name, size_t len, vkm_vocab_type *out);
int vkm_pretok_from_name(const char *name, size_t len, vkm_pretok *out);

/* Fills *init with the "absent" values: all pointers NULL, ids -1, flags -1. */
void vkm_vocab_init_defaults(vkm_vocab_init *init);

typedef struct vkm_tokenizer vkm_tokenizer;

/* Copies everything it needs from *init. Errors: VKMIX_ERROR_INVALID_ARGUMENT
 * (NULL pointers, bad type, ids out of range), VKMIX_ERROR_TOKENIZER
 * (malformed merges, a 4 GiB vocabulary), VKMIX_ERROR_OUT_OF_HOST_MEMORY. */
vkmix_error vkm_tokenizer_create(const vkm_vocab_init *init, vkm_tokenizer **out,
                                 char *err, size_t errlen);
void vkm_tokenizer_free(vkm_tokenizer *tok);

/* Encodes len bytes of text (any bytes; invalid UTF-8 never fails).
 * add_special: BOS (and EOS) per the vocabulary's add_bos/add_eos.
 * parse_special: texts of control tokens (and <unk>) in the input become those
 *   ids. User-defined tokens are always matched, as in llama.cpp and HF.
 * Writes at most cap ids to out (out may be NULL when cap is 0) and the count to
 * *n_out. When cap is too small: VKMIX_ERROR_INVALID_ARGUMENT with *n_out =
 * the count needed (nothing useful in out). VKMIX_ERROR_TOKENIZER when a
 * character has no token at all (SPM without byte tokens and without unk).
 * Texts longer than VKM_TOKENIZE_MAX_BYTES are refused (INVALID_ARGUMENT). */
#define VKM_TOKENIZE_MAX_BYTES (256u * 1024u * 1024u)
vkmix_error vkm_tokenize(const vkm_tokenizer *tok, const char *text, size_t len,
                         int add_special, int parse_special,
                         int32_t *out, size_t cap, size_t *n_out);

/* The bytes token id stands for, with control/unknown tokens rendered as empty.
 * SPM: "▁" -> ' ', <0xAB> -> the byte 0xAB; BPE: GPT-2 byte-to-unicode reversed.
 * User-defined tokens give their text as is. Unused tokens give nothing.
 * cap too small: VKMIX_ERROR_INVALID_ARGUMENT with *n = the size needed.
 * id out of range: VKMIX_ERROR_INVALID_ARGUMENT with *n = 0. No NUL is added. */
vkmix_error vkm_token_to_piece(const vkm_tokenizer *tok, int32_t id, char *buf, size_t cap,
                               size_t *n);
/* Same; special != 0 renders control and unknown tokens as their text. */
vkmix_error vkm_token_to_piece_ex(const vkm_tokenizer *tok, int32_t id, int special,
                                  char *buf, size_t cap, size_t *n);

/* Accessors. Out-of-range ids give 0 / NULL / -1. */
uint32_t vkm_tokenizer_n_tokens(const vkm_tokenizer *tok);
vkm_vocab_type vkm_tokenizer_type(const vkm_tokenizer *tok);
int32_t vkm_tokenizer_bos(const vkm_tokenizer *tok);
int32_t vkm_tokenizer_eos(const vkm_tokenizer *tok);
int32_t vkm_tokenizer_eot(const vkm_tokenizer *tok);
int32_t vkm_tokenizer_unk(const vkm_tokenizer *tok);
int32_t vkm_tokenizer_pad(const vkm_tokenizer *tok);
int vkm_tokenizer_add_bos(const vkm_tokenizer *tok);
int vkm_tokenizer_add_eos(const vkm_tokenizer *tok);
/* End of generation: eos, eot, and control/user-defined tokens whose text is one
 * of <|eot_id|> <|eom_id|> <|im_end|> <|end|> <end_of_turn> <|endoftext|>
 * <|end_of_text|> <EOT> _<EOT> <|return|> <|call|> <｜end▁of▁sentence｜>
 * <end_of_utterance>. */
int vkm_tokenizer_is_eog(const vkm_tokenizer *tok, int32_t id);
int32_t vkm_tokenizer_token_type(const vkm_tokenizer *tok, int32_t id); /* VKM_TOKTYPE_*, 0 if bad id */
float vkm_tokenizer_token_score(const vkm_tokenizer *tok, int32_t id);
/* The token's raw vocabulary text (NUL-terminated copy; *len gets the length,
 * which may be less than strlen if the text has a NUL). NULL for a bad id. */
const char *vkm_tokenizer_token_text(const vkm_tokenizer *tok, int32_t id, uint32_t *len);
/* Id of the token whose vocabulary text is exactly text[0..len), -1 if none
 * (with duplicate texts, the highest id, as llama.cpp's map keeps). */
int32_t vkm_tokenizer_find(const vkm_tokenizer *tok, const char *text, size_t len);
/* Longest token text in bytes (an upper bound for any piece). */
uint32_t vkm_tokenizer_max_token_len(const vkm_tokenizer *tok);

/* Whole-sequence decode: the concatenated pieces, raw bytes (no UTF-8 repair),
 * with the same leading-space rule and flags as vkm_detok. cap too small:
 * VKMIX_ERROR_INVALID_ARGUMENT with *n_out = needed. Ids out of range:
 * VKMIX_ERROR_INVALID_ARGUMENT. */
vkmix_error vkm_detokenize(const vkm_tokenizer *tok, const int32_t *ids, size_t n_ids,
                           unsigned flags, char *buf, size_t cap, size_t *n_out);

/* ---------------------------------------------------------------- streaming */

/* Flags of vkm_detok_create / vkm_detokenize. */
enum {
    VKM_DETOK_SPECIAL = 1u,     /* render control/unknown tokens as their text */
    VKM_DETOK_STRIP_START = 2u, /* SPM: also strip the space prefix of the first piece of the
                                   stream when no BOS came first (llama_detokenize's rule) */
    VKM_DETOK_KEEP_SPACE = 4u   /* never strip a leading space */
};

/* Streaming detokenizer. push(id) appends the token's bytes and returns only
 * complete UTF-8 sequences: an incomplete tail (at most 3 bytes) is held back
 * until the next push; bytes that cannot start or continue a valid sequence
 * become U+FFFD (one per maximal invalid subpart, as WHATWG/Unicode recommend),
 * so output never stalls; flush() emits what is held (an incomplete tail as one
 * U+FFFD).
 *
 * Leading space (SPM vocabularies with add_space_prefix only): the encoder adds
 * a space before the text, so the first piece after a BOS token ("▁Once") has
 * its one leading space removed, as SentencePiece's decoder does. Text that
 * does not follow a BOS (a continuation of a prompt that was not pushed) keeps
 * its space unless VKM_DETOK_STRIP_START is given. Note: llama.cpp's
 * llama_detokenize strips the space of the very first token only and so keeps
 * it when the sequence starts with BOS; llama-cli's streaming output never
 * strips it. We follow SentencePiece/HF here.
 *
 * The returned pointer refers to memory owned by the detokenizer, valid until
 * the next call on it; the text is not NUL-terminated. */
typedef struct vkm_detok vkm_detok;
vkmix_error vkm_detok_create(const vkm_tokenizer *tok, unsigned flags, vkm_detok **out);
void vkm_detok_free(vkm_detok *d);
void vkm_detok_reset(vkm_detok *d);
vkmix_error vkm_detok_push(vkm_detok *d, int32_t id, const char **text, size_t *len);
vkmix_error vkm_detok_flush(vkm_detok *d, const char **text, size_t *len);

/* ---------------------------------------------------------------- internals (tests use them) */

/* Code point classes of the pre-tokenizer regexes (tok_unicode.c). */
enum { VKM_CP_LETTER = 1, VKM_CP_NUMBER = 2, VKM_CP_SPACE = 4 };
unsigned vkm_tok_cp_class(uint32_t cp);

/* Decodes one UTF-8 sequence at s[0..len) (len >= 1). Invalid or truncated
 * sequences, overlongs and surrogates decode as one byte with a code point of
 * VKM_TOK_CP_INVALID. Returns the number of bytes used (1..4). */
#define VKM_TOK_CP_INVALID 0xFFFFFFFFu
uint32_t vkm_tok_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* End of the pre-token that starts at text[pos] (pos < len): the regex of `pre`
 * (see tok_pretok.c) matched at pos. Always > pos. */
size_t vkm_tok_pretok_next(vkm_pretok pre, const char *text, size_t len, size_t pos);

/* 1 when a detokenizer with these flags strips the leading space of the piece
 * that follows token id (SPM with add_space_prefix, id is BOS). */
int vkm_tok_detok_strip_after(const vkm_tokenizer *tok, unsigned flags, int32_t id);

/* GPT-2 bytes_to_unicode: the code point byte b maps to (U+0021..U+0143). */
uint32_t vkm_tok_byte_to_cp(uint8_t b);
/* Inverse: the byte for code point cp, or -1 when cp is not in the mapping. */
int vkm_tok_cp_to_byte(uint32_t cp);

#endif
