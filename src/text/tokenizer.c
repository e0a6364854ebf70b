/* Tokenizers: SentencePiece-style (SPM, score-driven merges with byte
 * fallback) and GPT-2 byte-level BPE (pre-tokenizer + merges by rank).
 *
 * Behaviour follows llama.cpp (llm_tokenizer_spm / llm_tokenizer_bpe) with
 * these deliberate differences:
 *  - SPM merges only form tokens of type normal or user-defined (never a
 *    control, unknown, unused or byte token), as SentencePiece does; llama.cpp
 *    would let plain text such as "<s>" merge into a control token when the
 *    scores allow it.
 *  - Special-token texts are found leftmost-longest in one pass over the text;
 *    llama.cpp searches the whole text for each special token in order of
 *    decreasing length. The two differ only when special texts overlap in the
 *    input. lstrip/rstrip attributes of added tokens are not supported.
 *  - BPE: a final symbol that is not in the vocabulary falls back to the tokens
 *    of its characters one by one (then unk, else nothing); llama.cpp looks the
 *    single bytes of the byte-mapped string up, which drops non-ASCII ones.
 *  - An SPM vocabulary given with merges (an HF BPE tokenizer with a "▁"
 *    metaspace and byte fallback, like tinystories) is encoded HF-style: space
 *    prefix and "▁" escaping as SPM, then merges by rank over the whole
 *    fragment, then byte tokens (or unk) for characters not in the vocabulary.
 *    HF's fuse_unk (consecutive unknowns -> one <unk>) is not done.
 *  - Token type 0 (undefined) and values outside 1..6 are treated as normal.
 */
#include "text/tokenizer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static void tok_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* String -> index map, open addressing. Keys live in a blob: key(i) =
 * blob + off[i], len[i]. slot holds index + 1 (0 = empty). */
typedef struct {
    uint32_t *slot;     /* [mask + 1] */
    uint32_t mask;
    const char *blob;
    const uint32_t *off, *len;
} tok_map;

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define HASH_INIT 0xcbf29ce484222325ull

static uint32_t hash_fold(uint64_t h)
{
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static int map_init(tok_map *m, uint32_t n, const char *blob, const uint32_t *off,
                    const uint32_t *len)
{
    uint32_t cap = 16;
    while (cap < n * 2u + 2u) cap <<= 1;
    m->slot = calloc(cap, sizeof *m->slot);
    if (!m->slot) return 0;
    m->mask = cap - 1;
    m->blob = blob;
    m->off = off;
    m->len = len;
    return 1;
}

/* Insert index i; when the key exists: replace it (replace != 0) or keep the old one. */
static void map_insert(tok_map *m, uint32_t i, int replace)
{
    const char *k = m->blob + m->off[i];
    uint32_t kl = m->len[i];
    uint32_t h = hash_fold(hash_bytes(HASH_INIT, k, kl)) & m->mask;
    for (;;) {
        uint32_t s = m->slot[h];
        if (s == 0) { m->slot[h] = i + 1; return; }
        uint32_t j = s - 1;
        if (m->len[j] == kl && memcmp(m->blob + m->off[j], k, kl) == 0) {
            if (replace) m->slot[h] = i + 1;
            return;
        }
        h = (h + 1) & m->mask;
    }
}

static int32_t map_find(const tok_map *m, const char *k, size_t kl)
{
    if (!m->slot) return -1;
    uint32_t h = hash_fold(hash_bytes(HASH_INIT, k, kl)) & m->mask;
    for (;;) {
        uint32_t s = m->slot[h];
        if (s == 0) return -1;
        uint32_t j = s - 1;
        if (m->len[j] == kl && memcmp(m->blob + m->off[j], k, kl) == 0) return (int32_t)j;
        h = (h + 1) & m->mask;
    }
}

/* find the key a + ' ' + b */
static int32_t map_find_pair(const tok_map *m, const char *a, size_t al, const char *b, size_t bl)
{
    if (!m->slot) return -1;
    uint64_t hh = hash_bytes(HASH_INIT, a, al);
    hh = hash_bytes(hh, " ", 1);
    hh = hash_bytes(hh, b, bl);
    uint32_t h = hash_fold(hh) & m->mask;
    size_t kl = al + 1 + bl;
    for (;;) {
        uint32_t s = m->slot[h];
        if (s == 0) return -1;
        uint32_t j = s - 1;
        if (m->len[j] == kl) {
            const char *k = m->blob + m->off[j];
            if (memcmp(k, a, al) == 0 && k[al] == ' ' && memcmp(k + al + 1, b, bl) == 0) return (int32_t)j;
        }
        h = (h + 1) & m->mask;
    }
}

/* ---------------------------------------------------------------- the tokenizer */

struct vkm_tokenizer {
    vkm_vocab_type type;
    vkm_pretok pre;
    uint32_t n_tokens;
    char *blob;          /* token texts, each followed by a NUL */
    uint32_t *off;       /* [n_tokens] */
    uint32_t *len;       /* [n_tokens] */
    float *scores;       /* [n_tokens] */
    uint8_t *types;      /* [n_tokens] VKM_TOKTYPE_* */
    uint8_t *eog;        /* [n_tokens] 1: end of generation */
    tok_map tokmap;      /* text -> id, the last id wins for duplicate texts */
    uint32_t max_len;

    uint32_t n_merges;
    char *mblob;         /* merge strings, NUL-separated */
    uint32_t *moff, *mlen;
    tok_map mergemap;    /* "a b" -> rank, the first rank wins for duplicates */
    int use_merges;      /* SPM vocabulary encoded by merges */
    int ignore_merges;   /* BPE: a pre-token that is a whole token is taken as is (LLAMA3) */

    int32_t byte_tok[256]; /* SPM: <0xXX> (or the 1-byte text) token; BPE: the mapped char's token */
    char bpe_map[256][2];  /* BPE: UTF-8 of each byte's mapped code point */
    uint8_t bpe_map_len[256];

    int32_t bos, eos, unk, pad, eot;
    int add_bos, add_eos, add_space_prefix;

    /* tokens matched in raw text before encoding: control, unknown and
     * user-defined, grouped by first byte, longest first within a group */
    int32_t *special;        /* [n_special] */
    uint32_t n_special;
    uint32_t special_at[257];
};

void vkm_vocab_init_defaults(vkm_vocab_init *init)
{
    if (!init) return;
    memset(init, 0, sizeof *init);
    init->type = VKM_VOCAB_SPM;
    init->pre = VKM_PRETOK_DEFAULT;
    init->bos_id = init->eos_id = init->unk_id = init->pad_id = init->eot_id = -1;
    init->add_bos = init->add_eos = init->add_space_prefix = -1;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return name && strlen(want) == len && memcmp(name, want, len) == 0;
}

int vkm_vocab_type_from_name(const char *name, size_t len, vkm_vocab_type *out)
{
    if (name_is(name, len, "llama")) { if (out) *out = VKM_VOCAB_SPM; return 1; }
    if (name_is(name, len, "gpt2")) { if (out) *out = VKM_VOCAB_BPE; return 1; }
    return 0;
}

int vkm_pretok_from_name(const char *name, size_t len, vkm_pretok *out)
{
    /* the names llama.cpp (llama-vocab.cpp) gives these three regexes */
    static const struct { const char *name; vkm_pretok pre; } k[] = {
        { "llama3", VKM_PRETOK_LLAMA3 },     { "llama-v3", VKM_PRETOK_LLAMA3 },
        { "llama-bpe", VKM_PRETOK_LLAMA3 },  { "falcon3", VKM_PRETOK_LLAMA3 },
        { "falcon-h1", VKM_PRETOK_LLAMA3 },  { "pixtral", VKM_PRETOK_LLAMA3 },
        { "midm-2.0", VKM_PRETOK_LLAMA3 },   { "lfm2", VKM_PRETOK_LLAMA3 },
        { "qwen2", VKM_PRETOK_QWEN2 },       { "deepseek-r1-qwen", VKM_PRETOK_QWEN2 },
        { "gpt-2", VKM_PRETOK_GPT2 },        { "phi-2", VKM_PRETOK_GPT2 },
        { "roberta-bpe", VKM_PRETOK_GPT2 },  { "gigachat", VKM_PRETOK_GPT2 },
        { "jina-es", VKM_PRETOK_GPT2 },      { "jina-de", VKM_PRETOK_GPT2 },
        { "jina-v1-en", VKM_PRETOK_GPT2 },   { "jina-v2-es", VKM_PRETOK_GPT2 },
        { "jina-v2-de", VKM_PRETOK_GPT2 },   { "jina-v2-code", VKM_PRETOK_GPT2 },
        { "default", VKM_PRETOK_GPT2 },
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (name_is(name, len, k[i].name)) {
            if (out) *out = k[i].pre;
            return 1;
        }
    }
    return 0;
}

static const char *const tok_eog_names[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "_<EOT>", "<|return|>", "<|call|>",
    "<\xef\xbd\234end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", /* <｜end▁of▁sentence｜> */
    "<end_of_utterance>",
};

static int is_special_type(uint8_t t)
{
    return t == VKM_TOKTYPE_CONTROL || t == VKM_TOKTYPE_UNKNOWN || t == VKM_TOKTYPE_USER_DEFINED;
}

static int parse_byte_token(const char *s, uint32_t n, unsigned *b)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return 0;
    unsigned v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else return 0;
    }
    *b = v;
    return 1;
}

/* special tokens sorted by (first byte, longest first, id) */
typedef struct { uint32_t first, len; int32_t id; } tok_spec_key;

static int spec_cmp(const void *pa, const void *pb)
{
    const tok_spec_key *a = pa, *b = pb;
    if (a->first != b->first) return a->first < b->first ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

void vkm_tokenizer_free(vkm_tokenizer *tok)
{
    if (!tok) return;
    free(tok->blob);
    free(tok->off);
    free(tok->len);
    free(tok->scores);
    free(tok->types);
    free(tok->eog);
    free(tok->tokmap.slot);
    free(tok->mblob);
    free(tok->moff);
    free(tok->mlen);
    free(tok->mergemap.slot);
    free(tok->special);
    free(tok);
}

static int check_id(int32_t id, uint32_t n) { return id == -1 || (id >= 0 && (uint32_t)id < n); }

static vkmix_error tok_oom(char *err, size_t errlen)
{
    tok_seterr(err, errlen, "tokenizer: out of host memory");
    return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
}

/* What can be checked before anything is copied: types, counts, special ids. */
static vkmix_error check_init(const vkm_vocab_init *init, char *err, size_t errlen)
{
    if (init->type != VKM_VOCAB_SPM && init->type != VKM_VOCAB_BPE) {
        tok_seterr(err, errlen, "tokenizer: unknown vocabulary type %d", (int)init->type);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if ((unsigned)init->pre > VKM_PRETOK_GPT2) {
        tok_seterr(err, errlen, "tokenizer: unknown pre-tokenizer %d", (int)init->pre);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (init->n_tokens == 0 || !init->tokens) {
        tok_seterr(err, errlen, "tokenizer: empty vocabulary");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (init->n_tokens > (1u << 30)) {
        tok_seterr(err, errlen, "tokenizer: %u tokens is too many", init->n_tokens);
        return VKMIX_ERROR_TOKENIZER;
    }
    if (init->n_merges && !init->merges) {
        tok_seterr(err, errlen, "tokenizer: n_merges = %u but merges is NULL", init->n_merges);
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    if (init->n_merges > (1u << 30)) {
        tok_seterr(err, errlen, "tokenizer: %u merges is too many", init->n_merges);
        return VKMIX_ERROR_TOKENIZER;
    }
    const int32_t ids[5] = { init->bos_id, init->eos_id, init->unk_id, init->pad_id, init->eot_id };
    static const char *const id_names[5] = { "bos", "eos", "unk", "pad", "eot" };
    for (int i = 0; i < 5; i++) {
        if (!check_id(ids[i], init->n_tokens)) {
            tok_seterr(err, errlen, "tokenizer: %s id %d out of range [0, %u)", id_names[i], (int)ids[i],
                       init->n_tokens);
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
    }
    return VKMIX_OK;
}

/* The type of token i: as given (values outside 1..6 are normal), or derived
 * from the special ids and, for SPM, the "<0xXX>" texts. */
static uint8_t token_type_of(const vkm_tokenizer *t, const vkm_vocab_init *init, uint32_t i)
{
    if (init->token_types) {
        int32_t v = init->token_types[i];
        return (v >= 1 && v <= 6) ? (uint8_t)v : VKM_TOKTYPE_NORMAL;
    }
    unsigned b;
    int32_t id = (int32_t)i;
    if (id == t->unk) return VKM_TOKTYPE_UNKNOWN;
    if (id == t->bos || id == t->eos || id == t->eot || id == t->pad) return VKM_TOKTYPE_CONTROL;
    if (t->type == VKM_VOCAB_SPM && parse_byte_token(t->blob + t->off[i], t->len[i], &b)) return VKM_TOKTYPE_BYTE;
    return VKM_TOKTYPE_NORMAL;
}

/* Token texts into one blob, scores, types and the text -> id map. */
static vkmix_error copy_tokens(vkm_tokenizer *t, const vkm_vocab_init *init, char *err, size_t errlen)
{
    const uint32_t n = t->n_tokens;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!init->tokens[i]) {
            tok_seterr(err, errlen, "tokenizer: token %u is NULL", i);
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        uint64_t l = init->token_lens ? init->token_lens[i] : strlen(init->tokens[i]);
        total += l + 1;
    }
    if (total > 0xFFFFFFF0ull) {
        tok_seterr(err, errlen, "tokenizer: token texts exceed 4 GiB");
        return VKMIX_ERROR_TOKENIZER;
    }
    t->blob = malloc((size_t)total);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->scores = malloc(n * sizeof *t->scores);
    t->types = malloc(n);
    t->eog = calloc(n, 1);
    if (!t->blob || !t->off || !t->len || !t->scores || !t->types || !t->eog) return tok_oom(err, errlen);
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = init->token_lens ? init->token_lens[i] : (uint32_t)strlen(init->tokens[i]);
        memcpy(t->blob + pos, init->tokens[i], l);
        t->blob[pos + l] = 0;
        t->off[i] = pos;
        t->len[i] = l;
        if (l > t->max_len) t->max_len = l;
        pos += l + 1;
        t->scores[i] = init->scores ? init->scores[i] : 0.0f;
        t->types[i] = token_type_of(t, init, i);
    }
    if (!map_init(&t->tokmap, n, t->blob, t->off, t->len)) return tok_oom(err, errlen);
    for (uint32_t i = 0; i < n; i++) map_insert(&t->tokmap, i, 1);
    return VKMIX_OK;
}

/* BPE merges "left right" into a blob and the "a b" -> rank map. */
static vkmix_error copy_merges(vkm_tokenizer *t, const vkm_vocab_init *init, char *err, size_t errlen)
{
    const uint32_t m = init->n_merges;
    if (m == 0) return VKMIX_OK;
    uint64_t mtotal = 0;
    for (uint32_t i = 0; i < m; i++) {
        if (!init->merges[i]) {
            tok_seterr(err, errlen, "tokenizer: merge %u is NULL", i);
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
        mtotal += (init->merge_lens ? init->merge_lens[i] : strlen(init->merges[i])) + 1;
    }
    if (mtotal > 0xFFFFFFF0ull) {
        tok_seterr(err, errlen, "tokenizer: merges exceed 4 GiB");
        return VKMIX_ERROR_TOKENIZER;
    }
    t->mblob = malloc((size_t)mtotal);
    t->moff = malloc(m * sizeof *t->moff);
    t->mlen = malloc(m * sizeof *t->mlen);
    if (!t->mblob || !t->moff || !t->mlen) return tok_oom(err, errlen);
    uint32_t mp = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint32_t l = init->merge_lens ? init->merge_lens[i] : (uint32_t)strlen(init->merges[i]);
        const char *s = init->merges[i];
        /* a merge is "left right": a space that is neither first nor last */
        int ok = 0;
        for (uint32_t j = 1; j + 1 < l; j++)
            if (s[j] == ' ') { ok = 1; break; }
        if (!ok) {
            tok_seterr(err, errlen, "tokenizer: merge %u (\"%.*s\") is not \"left right\"", i,
                       (int)(l > 40 ? 40 : l), s);
            return VKMIX_ERROR_TOKENIZER;
        }
        memcpy(t->mblob + mp, s, l);
        t->mblob[mp + l] = 0;
        t->moff[i] = mp;
        t->mlen[i] = l;
        mp += l + 1;
    }
    t->n_merges = m;
    if (!map_init(&t->mergemap, m, t->mblob, t->moff, t->mlen)) return tok_oom(err, errlen);
    for (uint32_t i = 0; i < m; i++) map_insert(&t->mergemap, i, 0);
    return VKMIX_OK;
}

/* The token of each byte: SPM <0xXX> (or the 1-byte text); BPE the GPT-2 mapped character. */
static void find_byte_tokens(vkm_tokenizer *t)
{
    for (unsigned b = 0; b < 256; b++) {
        t->byte_tok[b] = -1;
        if (t->type == VKM_VOCAB_BPE) {
            uint32_t cp = vkm_tok_byte_to_cp((uint8_t)b);
            char *u = t->bpe_map[b];
            if (cp < 0x80) { u[0] = (char)cp; t->bpe_map_len[b] = 1; }
            else { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); t->bpe_map_len[b] = 2; }
            t->byte_tok[b] = map_find(&t->tokmap, u, t->bpe_map_len[b]);
        } else {
            char hex[8];
            snprintf(hex, sizeof hex, "<0x%02X>", b);
            int32_t id = map_find(&t->tokmap, hex, 6);
            if (id < 0) {
                char c = (char)b;
                id = map_find(&t->tokmap, &c, 1);
            }
            t->byte_tok[b] = id;
        }
    }
}

/* add_bos / add_eos / add_space_prefix with their defaults. */
static vkmix_error set_flags(vkm_tokenizer *t, const vkm_vocab_init *init, char *err, size_t errlen)
{
    int add_bos_default = (init->add_bos < 0);
    t->add_bos = add_bos_default ? (t->type == VKM_VOCAB_SPM || t->pre == VKM_PRETOK_LLAMA3) : (init->add_bos != 0);
    t->add_eos = init->add_eos < 0 ? 0 : (init->add_eos != 0);
    t->add_space_prefix =
        t->type == VKM_VOCAB_SPM ? (init->add_space_prefix < 0 ? 1 : init->add_space_prefix != 0) : 0;
    if (t->add_bos && t->bos < 0) {
        if (add_bos_default) {
            t->add_bos = 0;
        } else {
            tok_seterr(err, errlen, "tokenizer: add_bos is set but there is no bos token");
            return VKMIX_ERROR_INVALID_ARGUMENT;
        }
    }
    if (t->add_eos && t->eos < 0) {
        tok_seterr(err, errlen, "tokenizer: add_eos is set but there is no eos token");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    return VKMIX_OK;
}

/* Control, unknown and user-defined tokens matched in raw text: grouped by
 * first byte (special_at), longest first within a group. */
static vkmix_error index_specials(vkm_tokenizer *t, char *err, size_t errlen)
{
    const uint32_t n = t->n_tokens;
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n; i++)
        if (is_special_type(t->types[i]) && t->len[i] > 0) ns++;
    if (!ns) return VKMIX_OK;
    tok_spec_key *keys = malloc(ns * sizeof *keys);
    t->special = malloc(ns * sizeof *t->special);
    if (!keys || !t->special) {
        free(keys);
        return tok_oom(err, errlen);
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(is_special_type(t->types[i]) && t->len[i] > 0)) continue;
        keys[k].first = (unsigned char)t->blob[t->off[i]];
        keys[k].len = t->len[i];
        keys[k].id = (int32_t)i;
        k++;
    }
    qsort(keys, ns, sizeof *keys, spec_cmp);
    uint32_t j = 0;
    for (unsigned b = 0; b <= 256; b++) {
        while (j < ns && keys[j].first < b) j++;
        t->special_at[b] = j;
    }
    for (uint32_t i = 0; i < ns; i++) t->special[i] = keys[i].id;
    t->n_special = ns;
    free(keys);
    return VKMIX_OK;
}

/* End of generation: eos, eot, and the known end-of-turn texts (control or
 * user-defined, or any type when the types were derived). */
static void mark_eog(vkm_tokenizer *t, const vkm_vocab_init *init)
{
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    for (size_t i = 0; i < sizeof tok_eog_names / sizeof tok_eog_names[0]; i++) {
        const char *name = tok_eog_names[i];
        int32_t id = map_find(&t->tokmap, name, strlen(name));
        if (id < 0) continue;
        uint8_t ty = t->types[id];
        if (ty == VKM_TOKTYPE_CONTROL || ty == VKM_TOKTYPE_USER_DEFINED || !init->token_types) t->eog[id] = 1;
    }
}

vkmix_error vkm_tokenizer_create(const vkm_vocab_init *init, vkm_tokenizer **out, char *err,
                                 size_t errlen)
{
    if (out) *out = NULL;
    if (!init || !out) {
        tok_seterr(err, errlen, "tokenizer: NULL argument");
        return VKMIX_ERROR_INVALID_ARGUMENT;
    }
    vkmix_error e = check_init(init, err, errlen);
    if (e != VKMIX_OK) return e;
    vkm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tok_oom(err, errlen);
    t->type = init->type;
    t->pre = init->pre;
    t->n_tokens = init->n_tokens;
    t->bos = init->bos_id;
    t->eos = init->eos_id;
    t->unk = init->unk_id;
    t->pad = init->pad_id;
    t->eot = init->eot_id;
    if ((e = copy_tokens(t, init, err, errlen)) == VKMIX_OK && (e = copy_merges(t, init, err, errlen)) == VKMIX_OK) {
        t->use_merges = (t->type == VKM_VOCAB_SPM && t->n_merges > 0);
        t->ignore_merges = (t->type == VKM_VOCAB_BPE && t->pre == VKM_PRETOK_LLAMA3);
        find_byte_tokens(t);
        if ((e = set_flags(t, init, err, errlen)) == VKMIX_OK && (e = index_specials(t, err, errlen)) == VKMIX_OK)
            mark_eog(t, init);
    }
    if (e != VKMIX_OK) {
        vkm_tokenizer_free(t);
        return e;
    }
    *out = t;
    return VKMIX_OK;
}

/* ---------------------------------------------------------------- accessors */

static int valid_id(const vkm_tokenizer *t, int32_t id) { return t && id >= 0 && (uint32_t)id < t->n_tokens; }

uint32_t vkm_tokenizer_n_tokens(const vkm_tokenizer *t) { return t ? t->n_tokens : 0; }
vkm_vocab_type vkm_tokenizer_type(const vkm_tokenizer *t) { return t ? t->type : VKM_VOCAB_SPM; }
int32_t vkm_tokenizer_bos(const vkm_tokenizer *t) { return t ? t->bos : -1; }
int32_t vkm_tokenizer_eos(const vkm_tokenizer *t) { return t ? t->eos : -1; }
int32_t vkm_tokenizer_eot(const vkm_tokenizer *t) { return t ? t->eot : -1; }
int32_t vkm_tokenizer_unk(const vkm_tokenizer *t) { return t ? t->unk : -1; }
int32_t vkm_tokenizer_pad(const vkm_tokenizer *t) { return t ? t->pad : -1; }
int vkm_tokenizer_add_bos(const vkm_tokenizer *t) { return t ? t->add_bos : 0; }
int vkm_tokenizer_add_eos(const vkm_tokenizer *t) { return t ? t->add_eos : 0; }
uint32_t vkm_tokenizer_max_token_len(const vkm_tokenizer *t) { return t ? t->max_len : 0; }

int vkm_tokenizer_is_eog(const vkm_tokenizer *t, int32_t id) { return valid_id(t, id) && t->eog[id]; }

int32_t vkm_tokenizer_token_type(const vkm_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? t->types[id] : 0;
}

float vkm_tokenizer_token_score(const vkm_tokenizer *t, int32_t id)
{
    return valid_id(t, id) ? t->scores[id] : 0.0f;
}

const char *vkm_tokenizer_token_text(const vkm_tokenizer *t, int32_t id, uint32_t *len)
{
    if (!valid_id(t, id)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->len[id];
    return t->blob + t->off[id];
}

int32_t vkm_tokenizer_find(const vkm_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len)) return -1;
    return map_find(&t->tokmap, text ? text : "", len);
}

/* ---------------------------------------------------------------- encoding session */

typedef struct {
    int32_t prev, next;
    uint32_t off, n;     /* bytes of the working text */
} tok_sym;

typedef struct {
    double key;          /* higher first: SPM score, BPE -rank */
    int32_t left, right;
    uint32_t size;       /* byte length of the merged text when queued */
} tok_bigram;

typedef struct {
    const vkm_tokenizer *tok;
    int32_t *ids; size_t n_ids, cap_ids;
    char *work; size_t work_cap;       /* escaped / byte-mapped text */
    tok_sym *sym; size_t sym_cap;
    tok_bigram *heap; size_t n_heap, heap_cap;
    vkmix_error err;
} tok_sess;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > ((size_t)-1) / 2 / elem) return 0;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return 0;
    *p = q;
    *cap = nc;
    return 1;
}

static int emit(tok_sess *s, int32_t id)
{
    if (s->n_ids == s->cap_ids && !grow((void **)&s->ids, &s->cap_ids, s->n_ids + 1, sizeof *s->ids)) {
        s->err = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
    }
    s->ids[s->n_ids++] = id;
    return 1;
}

static int heap_before(const tok_bigram *a, const tok_bigram *b)
{
    if (a->key != b->key) return a->key > b->key;
    return a->left < b->left;
}

static int heap_push(tok_sess *s, tok_bigram bg)
{
    if (!grow((void **)&s->heap, &s->heap_cap, s->n_heap + 1, sizeof *s->heap)) {
        s->err = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
    }
    size_t i = s->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_before(&bg, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = bg;
    return 1;
}

static tok_bigram heap_pop(tok_sess *s)
{
    tok_bigram top = s->heap[0];
    tok_bigram last = s->heap[--s->n_heap];
    size_t i = 0, n = s->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!heap_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* a token SPM may produce from text: normal or user-defined */
static int32_t spm_lookup(const vkm_tokenizer *t, const char *s, size_t n)
{
    int32_t id = map_find(&t->tokmap, s, n);
    if (id < 0) return -1;
    uint8_t ty = t->types[id];
    return (ty == VKM_TOKTYPE_NORMAL || ty == VKM_TOKTYPE_USER_DEFINED) ? id : -1;
}

/* SPM fallback for a character that is not in the vocabulary: its byte
 * tokens when all exist, else one unk (SentencePiece / HF byte_fallback). */
static int emit_char_fallback(tok_sess *s, const char *p, size_t n)
{
    const vkm_tokenizer *t = s->tok;
    int all = 1;
    for (size_t i = 0; i < n; i++)
        if (t->byte_tok[(unsigned char)p[i]] < 0) all = 0;
    if (all) {
        for (size_t i = 0; i < n; i++)
            if (!emit(s, t->byte_tok[(unsigned char)p[i]])) return 0;
        return 1;
    }
    if (t->unk < 0) {
        s->err = VKMIX_ERROR_TOKENIZER;
        return 0;
    }
    return emit(s, t->unk);
}

/* Length of the UTF-8 character at p (n > 0 bytes available): a valid
 * sequence, or 1 for a byte that does not start one. llama.cpp uses the lead
 * byte's length alone, which can swallow the next bytes (even part of an
 * escaped space) into a bogus symbol; with valid input both agree. */
static size_t char_len(const char *p, size_t n)
{
    uint32_t cp;
    return vkm_tok_utf8_decode((const unsigned char *)p, n, &cp);
}

/* split the working text into symbols by UTF-8 lead bytes */
static int split_symbols(tok_sess *s, size_t len, size_t *n_sym)
{
    size_t k = 0, off = 0;
    while (off < len) {
        if (!grow((void **)&s->sym, &s->sym_cap, k + 1, sizeof *s->sym)) {
            s->err = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
            return 0;
        }
        size_t n = char_len(s->work + off, len - off);
        s->sym[k].off = (uint32_t)off;
        s->sym[k].n = (uint32_t)n;
        s->sym[k].prev = (int32_t)k - 1;
        off += n;
        s->sym[k].next = off == len ? -1 : (int32_t)k + 1;
        k++;
    }
    *n_sym = k;
    return 1;
}

static int spm_try_bigram(tok_sess *s, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 1;
    const tok_sym *a = &s->sym[l], *b = &s->sym[r];
    /* the two symbols are adjacent in the working text */
    int32_t id = spm_lookup(s->tok, s->work + a->off, a->n + b->n);
    if (id < 0) return 1;
    tok_bigram bg = { s->tok->scores[id], l, r, a->n + b->n };
    return heap_push(s, bg);
}

static int bpe_try_bigram(tok_sess *s, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return 1;
    const tok_sym *a = &s->sym[l], *b = &s->sym[r];
    int32_t rank = map_find_pair(&s->tok->mergemap, s->work + a->off, a->n, s->work + b->off, b->n);
    if (rank < 0) return 1;
    tok_bigram bg = { -(double)rank, l, r, a->n + b->n };
    return heap_push(s, bg);
}

/* Merge symbols of s->work until no queued bigram applies. bpe: rank-driven. */
static int merge_symbols(tok_sess *s, size_t n_sym, int bpe)
{
    s->n_heap = 0;
    for (size_t i = 1; i < n_sym; i++) {
        if (!(bpe ? bpe_try_bigram(s, (int32_t)i - 1, (int32_t)i) : spm_try_bigram(s, (int32_t)i - 1, (int32_t)i)))
            return 0;
    }
    while (s->n_heap) {
        tok_bigram bg = heap_pop(s);
        tok_sym *l = &s->sym[bg.left], *r = &s->sym[bg.right];
        /* stale: one side was merged away or grew since the bigram was queued */
        if (l->n == 0 || r->n == 0 || l->next != bg.right || l->n + r->n != bg.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->sym[r->next].prev = bg.left;
        if (bpe) {
            if (!bpe_try_bigram(s, l->prev, bg.left) || !bpe_try_bigram(s, bg.left, l->next)) return 0;
        } else {
            if (!spm_try_bigram(s, l->prev, bg.left) || !spm_try_bigram(s, bg.left, l->next)) return 0;
        }
    }
    return 1;
}

/* SPM: encode one raw-text fragment. */
static int spm_fragment(tok_sess *s, const char *text, size_t len, int prefix)
{
    const vkm_tokenizer *t = s->tok;
    /* escape: optional prefix space, then ' ' -> U+2581 */
    size_t need = 3 * (len + 1);
    if (!grow((void **)&s->work, &s->work_cap, need, 1)) {
        s->err = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
    }
    size_t w = 0;
    if (prefix) { memcpy(s->work, "\xe2\x96\x81", 3); w = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(s->work + w, "\xe2\x96\x81", 3); w += 3; }
        else s->work[w++] = text[i];
    }
    if (w == 0) return 1;
    size_t n_sym;
    if (!split_symbols(s, w, &n_sym)) return 0;
    if (!merge_symbols(s, n_sym, t->use_merges)) return 0;
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const tok_sym *y = &s->sym[i];
        int32_t id = spm_lookup(t, s->work + y->off, y->n);
        if (id >= 0) {
            if (!emit(s, id)) return 0;
            continue;
        }
        if (t->use_merges) {
            /* merged symbols not in the vocabulary: their characters one by one */
            size_t o = 0;
            while (o < y->n) {
                size_t cn = char_len(s->work + y->off + o, y->n - o);
                id = spm_lookup(t, s->work + y->off + o, cn);
                if (id >= 0) {
                    if (!emit(s, id)) return 0;
                } else if (!emit_char_fallback(s, s->work + y->off + o, cn)) {
                    return 0;
                }
                o += cn;
            }
        } else if (!emit_char_fallback(s, s->work + y->off, y->n)) {
            /* without merges a symbol not in the vocabulary is one character */
            return 0;
        }
    }
    return 1;
}

/* BPE: encode one pre-token (raw bytes). */
static int bpe_word(tok_sess *s, const char *word, size_t len)
{
    const vkm_tokenizer *t = s->tok;
    if (!grow((void **)&s->work, &s->work_cap, 2 * len, 1) ||
        !grow((void **)&s->sym, &s->sym_cap, len, sizeof *s->sym)) {
        s->err = VKMIX_ERROR_OUT_OF_HOST_MEMORY;
        return 0;
    }
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)word[i];
        s->sym[i].off = (uint32_t)w;
        s->sym[i].n = t->bpe_map_len[b];
        s->sym[i].prev = (int32_t)i - 1;
        s->sym[i].next = i + 1 == len ? -1 : (int32_t)i + 1;
        memcpy(s->work + w, t->bpe_map[b], t->bpe_map_len[b]);
        w += t->bpe_map_len[b];
    }
    if (t->ignore_merges) {
        int32_t id = map_find(&t->tokmap, s->work, w);
        if (id >= 0) return emit(s, id);
    }
    if (!merge_symbols(s, len, 1)) return 0;
    for (int32_t i = 0; i != -1; i = s->sym[i].next) {
        const tok_sym *y = &s->sym[i];
        int32_t id = map_find(&t->tokmap, s->work + y->off, y->n);
        if (id >= 0) {
            if (!emit(s, id)) return 0;
            continue;
        }
        /* not in the vocabulary: the mapped characters one by one */
        size_t o = 0;
        while (o < y->n) {
            size_t cn = char_len(s->work + y->off + o, y->n - o);
            id = map_find(&t->tokmap, s->work + y->off + o, cn);
            if (id < 0) id = t->unk;
            if (id >= 0 && !emit(s, id)) return 0;
            o += cn;
        }
    }
    return 1;
}

static int bpe_fragment(tok_sess *s, const char *text, size_t len)
{
    vkm_pretok pre = s->tok->pre;
    if (pre == VKM_PRETOK_DEFAULT) pre = VKM_PRETOK_GPT2;
    size_t pos = 0;
    while (pos < len) {
        size_t e = vkm_tok_pretok_next(pre, text, len, pos);
        if (!bpe_word(s, text + pos, e - pos)) return 0;
        pos = e;
    }
    return 1;
}

/* the special token whose text starts at text[pos], longest first; -1 if none */
static int32_t special_at(const vkm_tokenizer *t, const char *text, size_t len, size_t pos,
                          int parse_special)
{
    unsigned b = (unsigned char)text[pos];
    for (uint32_t i = t->special_at[b]; i < t->special_at[b + 1]; i++) {
        int32_t id = t->special[i];
        uint32_t l = t->len[id];
        if (l > len - pos) continue;
        if (!parse_special && t->types[id] != VKM_TOKTYPE_USER_DEFINED) continue;
        if (memcmp(text + pos, t->blob + t->off[id], l) == 0) return id;
    }
    return -1;
}

static int encode_fragment(tok_sess *s, const char *text, size_t len, int *prev_special)
{
    if (len == 0) return 1;
    int ok;
    if (s->tok->type == VKM_VOCAB_SPM) ok = spm_fragment(s, text, len, s->tok->add_space_prefix && *prev_special);
    else ok = bpe_fragment(s, text, len);
    *prev_special = 0;
    return ok;
}

vkmix_error vkm_tokenize(const vkm_tokenizer *tok, const char *text, size_t len, int add_special,
                         int parse_special, int32_t *out, size_t cap, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!text && len) || (!out && cap)) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (len > VKM_TOKENIZE_MAX_BYTES) return VKMIX_ERROR_INVALID_ARGUMENT;
    tok_sess s;
    memset(&s, 0, sizeof s);
    s.tok = tok;
    s.err = VKMIX_OK;
    int ok = 1;
    if (add_special && tok->add_bos) ok = emit(&s, tok->bos);
    int prev_special = 1;
    size_t start = 0, pos = 0;
    while (ok && pos < len) {
        int32_t id = tok->n_special ? special_at(tok, text, len, pos, parse_special) : -1;
        if (id < 0) {
            pos++;
            continue;
        }
        ok = encode_fragment(&s, text + start, pos - start, &prev_special) && emit(&s, id);
        prev_special = 1;
        pos += tok->len[id];
        start = pos;
    }
    if (ok) ok = encode_fragment(&s, text + start, len - start, &prev_special);
    if (ok && add_special && tok->add_eos) ok = emit(&s, tok->eos);
    vkmix_error e = ok ? VKMIX_OK : s.err;
    if (e == VKMIX_OK) {
        *n_out = s.n_ids;
        if (s.n_ids > cap) e = VKMIX_ERROR_INVALID_ARGUMENT;
        else if (s.n_ids) memcpy(out, s.ids, s.n_ids * sizeof *out);
    }
    free(s.ids);
    free(s.work);
    free(s.sym);
    free(s.heap);
    return e;
}

/* ---------------------------------------------------------------- decoding */

/* Writes the piece into buf when it fits; returns its size either way. */
static size_t piece_into(const vkm_tokenizer *t, int32_t id, int special, char *buf, size_t cap)
{
    uint8_t ty = t->types[id];
    const char *s = t->blob + t->off[id];
    uint32_t n = t->len[id];
    if (ty == VKM_TOKTYPE_CONTROL || ty == VKM_TOKTYPE_UNKNOWN) {
        if (!special) return 0;
        if (n && n <= cap) memcpy(buf, s, n);
        return n;
    }
    if (ty == VKM_TOKTYPE_UNUSED) return 0;
    if (ty == VKM_TOKTYPE_USER_DEFINED) {
        if (n && n <= cap) memcpy(buf, s, n);
        return n;
    }
    if (ty == VKM_TOKTYPE_BYTE) {
        unsigned b;
        if (parse_byte_token(s, n, &b)) {
            if (cap >= 1) buf[0] = (char)b;
            return 1;
        }
        if (n && n <= cap) memcpy(buf, s, n);
        return n;
    }
    size_t w = 0;
    if (t->type == VKM_VOCAB_SPM) {
        /* U+2581 -> ' ' */
        for (uint32_t i = 0; i < n;) {
            if (i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                (unsigned char)s[i + 2] == 0x81) {
                if (w < cap) buf[w] = ' ';
                w++;
                i += 3;
            } else {
                if (w < cap) buf[w] = s[i];
                w++;
                i++;
            }
        }
        return w;
    }
    /* BPE: unicode -> bytes; code points outside the mapping are copied as is */
    for (uint32_t i = 0; i < n;) {
        uint32_t cp;
        uint32_t k = vkm_tok_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = cp == VKM_TOK_CP_INVALID ? -1 : vkm_tok_cp_to_byte(cp);
        if (b >= 0) {
            if (w < cap) buf[w] = (char)b;
            w++;
        } else {
            for (uint32_t j = 0; j < k; j++) {
                if (w < cap) buf[w] = s[i + j];
                w++;
            }
        }
        i += k;
    }
    return w;
}

vkmix_error vkm_token_to_piece_ex(const vkm_tokenizer *tok, int32_t id, int special, char *buf,
                                  size_t cap, size_t *n)
{
    if (n) *n = 0;
    if (!tok || !n || (!buf && cap)) return VKMIX_ERROR_INVALID_ARGUMENT;
    if (!valid_id(tok, id)) return VKMIX_ERROR_INVALID_ARGUMENT;
    size_t need = piece_into(tok, id, special, buf, cap);
    *n = need;
    return need <= cap ? VKMIX_OK : VKMIX_ERROR_INVALID_ARGUMENT;
}

vkmix_error vkm_token_to_piece(const vkm_tokenizer *tok, int32_t id, char *buf, size_t cap, size_t *n)
{
    return vkm_token_to_piece_ex(tok, id, 0, buf, cap, n);
}

int vkm_tok_detok_strip_after(const vkm_tokenizer *tok, unsigned flags, int32_t id)
{
    return tok->type == VKM_VOCAB_SPM && tok->add_space_prefix && !(flags & VKM_DETOK_KEEP_SPACE) &&
           id >= 0 && id == tok->bos;
}

vkmix_error vkm_detokenize(const vkm_tokenizer *tok, const int32_t *ids, size_t n_ids,
                           unsigned flags, char *buf, size_t cap, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!ids && n_ids) || (!buf && cap)) return VKMIX_ERROR_INVALID_ARGUMENT;
    int special = (flags & VKM_DETOK_SPECIAL) != 0;
    int strip = tok->type == VKM_VOCAB_SPM && tok->add_space_prefix && (flags & VKM_DETOK_STRIP_START) &&
                !(flags & VKM_DETOK_KEEP_SPACE);
    char *piece = malloc(tok->max_len + 1);
    if (!piece) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    size_t w = 0;
    vkmix_error e = VKMIX_OK;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (!valid_id(tok, id)) { e = VKMIX_ERROR_INVALID_ARGUMENT; break; }
        size_t k = piece_into(tok, id, special, piece, tok->max_len + 1);
        const char *p = piece;
        if (vkm_tok_detok_strip_after(tok, flags, id)) {
            strip = 1;
        } else if (k > 0) {
            if (strip && p[0] == ' ') { p++; k--; }
            strip = 0;
        }
        if (k && w + k <= cap) memcpy(buf + w, p, k);
        w += k;
    }
    free(piece);
    if (e != VKMIX_OK) return e;
    *n_out = w;
    return w <= cap ? VKMIX_OK : VKMIX_ERROR_INVALID_ARGUMENT;
}
