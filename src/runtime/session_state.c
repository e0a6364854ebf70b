/* What an embedder does with a session besides running it: rewind it, save
 * and restore its state (memory or file), ask what it holds on the device.
 *
 * State layout (version 1, host byte order):
 *   state_header (fixed size, below)
 *   payload: the cache's regions (kv/kv_state.h) in their fixed order, each
 *            head's used bytes one after the other.
 * The regions hold the same bytes per head whatever n_ctx, so a state loads
 * into any session of the same model and KV configuration with room for it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv_state.h"
#include "runtime/session.h"

/* MixKVQ keeps statistics of past queries (summed per query block) and packs keys in its
 * own format: dropping tokens would leave their queries in the sums, and the state's
 * regions (kv/kv_state.h) do not hold the statistics or the tier maps. So a MixKVQ session
 * refuses to rewind (except to its own length) and to save or load its state. */
/* MiKV (policy_state: importance that covers every query asked, the balancer's statistics) is
 * in the same position: those operations refuse both policies rather than give a cache that is
 * silently wrong. */
static vkmix_error policy_refuses(const vkmix_session *s, const char *what)
{
    if (s->cache.cfg.policy == VKMIX_KV_POLICY_MIXKVQ)
        return vkm_fail(&s->model->ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "%s: not supported with the mixkvq KV policy (its query statistics and tier maps are not "
                        "part of the session state)", what);
    if (s->cache.policy_state)
        return vkm_fail(&s->model->ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "%s: not supported with the %s KV policy (its importance and balancer state on the device "
                        "would not match the tokens kept)", what, vkm_kv_policy_name(s->cache.cfg.policy));
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ rewind */

void vkm_session_will_write(vkmix_session *s, uint32_t end)
{
    const uint32_t ring = s->cache.cfg.ring;
    if (s->cache.cfg.quantized && end > ring && end - ring > s->ring_from) s->ring_from = end - ring;
}

int vkmix_session_rewind_is_exact(const vkmix_session *s, uint32_t n)
{
    if (!s || n > s->n_past) return 0;
    if (n < s->n_past && (s->cache.cfg.policy == VKMIX_KV_POLICY_MIXKVQ || s->cache.policy_state))
        return 0; /* refused: policy_refuses */
    uint32_t b0, b1;
    vkm_kv_rewind_span(&s->cache, n, s->ring_from, &b0, &b1);
    return b0 >= b1;
}

vkmix_error vkmix_session_rewind(vkmix_session *s, uint32_t n)
{
    if (!s) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkm_device *dev = &s->model->ctx->dev;
    if (n > s->n_past)
        return vkm_fail(dev, VKMIX_ERROR_INVALID_ARGUMENT, "rewind to %u: the session holds %u tokens", n, s->n_past);
    if (n == s->n_past) return VKMIX_OK;
    vkmix_error pe = policy_refuses(s, "rewind");
    if (pe != VKMIX_OK) return pe;
    uint32_t b0, b1;
    vkm_kv_rewind_span(&s->cache, n, s->ring_from, &b0, &b1);
    if (b0 < b1) {
        /* the window's groups whose slots were overwritten get their packed values back */
        vkmix_error e = vkm_cmd_begin(&s->cmd);
        if (e == VKMIX_OK) e = vkm_kv_refill(&s->cmd, &s->cache, b0, b1);
        if (e == VKMIX_OK) e = vkm_cmd_submit(&s->cmd);
        if (e != VKMIX_OK) {
            vkmix_session_reset(s);
            return e;
        }
        s->ring_from = s->cache.cfg.sinks + b0 * s->cache.cfg.group;
    }
    s->n_past = n;
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ memory */

vkmix_error vkmix_session_memory(const vkmix_session *s, vkmix_session_mem *out)
{
    if (!s || !out) return VKMIX_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    uint64_t cache, linear, partials;
    vkm_kv_cache_bytes(&s->cache, &cache, &linear, &partials);
    out->kv_bytes = cache;
    out->attention_bytes = linear + partials + s->attn_scratch.size + s->attn.table.size + s->attn.part.size;
    const vkm_buffer *b = &s->sc.x;
    for (int i = 0; i < VKM_SCRATCH_N_BUFFERS; i++)
        if (&b[i] != &s->sc.logits) out->activation_bytes += b[i].size;
    out->logits_bytes = s->sc.logits.size;
    out->total_bytes = out->kv_bytes + out->attention_bytes + out->activation_bytes + out->logits_bytes;
    return VKMIX_OK;
}

/* ------------------------------------------------------------------ state */

#define STATE_MAGIC "VKMIXST\0"
#define STATE_VERSION 1u
#define STAGING_BYTES (64ull << 20)

typedef struct state_header {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t model_fingerprint;
    uint64_t config_hash;        /* widths per layer, group, value group, window, sinks, ring */
    uint64_t payload_bytes;
    uint32_t n_layer, n_kv_head, head_dim, quantized;
    uint32_t group, window, sinks, ring;
    uint32_t n_ctx, n_past, ring_from, pad;
    char kv_name[64];            /* for messages */
    char model_name[128];
} state_header;

static uint64_t config_hash(const vkm_kv_config *c)
{
    uint64_t h = vkm_hash(VKM_HASH_INIT, &c->quantized, sizeof c->quantized);
    h = vkm_hash(h, &c->n_layer, sizeof c->n_layer);
    h = vkm_hash(h, c->k_bits, c->n_layer);
    h = vkm_hash(h, c->v_bits, c->n_layer);
    uint32_t geo[5] = { c->group, c->v_group, c->window, c->sinks, c->ring };
    return vkm_hash(h, geo, sizeof geo);
}

static void describe(char *buf, size_t n, const char *name, uint32_t group, uint32_t window, uint32_t sinks)
{
    snprintf(buf, n, "'%s' (group %u, window %u, sinks %u)", name, group, window, sinks);
}

static uint64_t payload_bytes(const vkm_kv_cache *c, uint32_t n)
{
    uint32_t k = vkm_kv_state_regions(c, n, NULL, 0);
    vkm_kv_region *r = malloc((size_t)(k ? k : 1) * sizeof *r);
    uint64_t total = 0;
    if (!r) return UINT64_MAX;
    vkm_kv_state_regions(c, n, r, k);
    for (uint32_t i = 0; i < k; i++) total += r[i].bytes * r[i].n_heads;
    free(r);
    return total;
}

static void header_of(const vkmix_session *s, state_header *h)
{
    memset(h, 0, sizeof *h);
    const vkm_kv_cache *c = &s->cache;
    memcpy(h->magic, STATE_MAGIC, 8);
    h->version = STATE_VERSION;
    h->header_bytes = sizeof *h;
    h->model_fingerprint = s->model->fingerprint;
    h->config_hash = config_hash(&c->cfg);
    h->payload_bytes = payload_bytes(c, s->n_past);
    h->n_layer = c->n_layer;
    h->n_kv_head = c->n_kv_head;
    h->head_dim = c->head_dim;
    h->quantized = (uint32_t)c->cfg.quantized;
    h->group = c->cfg.group;
    h->window = c->cfg.window;
    h->sinks = c->cfg.sinks;
    h->ring = c->cfg.ring;
    h->n_ctx = s->n_ctx;
    h->n_past = s->n_past;
    h->ring_from = s->ring_from;
    snprintf(h->kv_name, sizeof h->kv_name, "%s", c->cfg.name);
    snprintf(h->model_name, sizeof h->model_name, "%s", s->model->info.name);
}

/* Refuses a header that is not for this session; names what differs. */
static vkmix_error check_header(const vkmix_session *s, const state_header *h, uint64_t available)
{
    vkm_device *dev = &s->model->ctx->dev;
    if (available < sizeof *h || memcmp(h->magic, STATE_MAGIC, 8))
        return vkm_fail(dev, VKMIX_ERROR_BAD_STATE, "not a vkmix session state (no header)");
    if (h->version != STATE_VERSION || h->header_bytes != sizeof *h)
        return vkm_fail(dev, VKMIX_ERROR_BAD_STATE, "session state layout version %u; this library reads version %u",
                        h->version, STATE_VERSION);
    char model_name[129];
    snprintf(model_name, sizeof model_name, "%.*s", (int)sizeof h->model_name, h->model_name);
    if (h->model_fingerprint != s->model->fingerprint || h->n_layer != s->cache.n_layer ||
        h->n_kv_head != s->cache.n_kv_head || h->head_dim != s->cache.head_dim)
        return vkm_fail(dev, VKMIX_ERROR_BAD_STATE,
                        "the session state is of another model ('%s', fingerprint %016llx); this session's model is "
                        "'%s' (fingerprint %016llx)", model_name, (unsigned long long)h->model_fingerprint,
                        s->model->info.name, (unsigned long long)s->model->fingerprint);
    const vkm_kv_config *c = &s->cache.cfg;
    if (h->config_hash != config_hash(c)) {
        char theirs[160], ours[160], name[65];
        snprintf(name, sizeof name, "%.*s", (int)sizeof h->kv_name, h->kv_name);
        describe(theirs, sizeof theirs, name, h->group, h->window, h->sinks);
        describe(ours, sizeof ours, c->name, c->group, c->window, c->sinks);
        return vkm_fail(dev, VKMIX_ERROR_BAD_STATE,
                        "the session state has another KV configuration: %s; this session's is %s", theirs, ours);
    }
    if (h->n_past > s->n_ctx)
        return vkm_fail(dev, VKMIX_ERROR_CONTEXT_OVERFLOW, "the session state holds %u tokens; this session's context is %u",
                        h->n_past, s->n_ctx);
    uint64_t want = payload_bytes(&s->cache, h->n_past);
    if (h->payload_bytes != want || available - sizeof *h != want)
        return vkm_fail(dev, VKMIX_ERROR_BAD_STATE,
                        "the session state is damaged: %llu bytes of data for %u tokens, %llu expected",
                        (unsigned long long)(available - sizeof *h), h->n_past, (unsigned long long)want);
    return VKMIX_OK;
}

/* Payload transfer through a staging buffer, in batches of whole pieces. */
typedef vkmix_error (*io_fn)(void *user, void *bytes, size_t n);

typedef struct piece {
    const vkm_buffer *buf;
    uint64_t off, n;
} piece;

static vkmix_error pieces_of(const vkm_kv_cache *c, uint32_t n_past, uint64_t chunk, piece **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    uint32_t k = vkm_kv_state_regions(c, n_past, NULL, 0);
    vkm_kv_region *r = malloc((size_t)(k ? k : 1) * sizeof *r);
    if (!r) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    vkm_kv_state_regions(c, n_past, r, k);
    size_t n = 0;
    for (uint32_t i = 0; i < k; i++) n += (size_t)r[i].n_heads * ((r[i].bytes + chunk - 1) / chunk);
    piece *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        free(r);
        return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    }
    size_t j = 0;
    for (uint32_t i = 0; i < k; i++)
        for (uint32_t h = 0; h < r[i].n_heads; h++)
            for (uint64_t o = 0; o < r[i].bytes; o += chunk)
                p[j++] = (piece){ r[i].buf, h * r[i].stride + o, r[i].bytes - o < chunk ? r[i].bytes - o : chunk };
    free(r);
    *out = p;
    *count = j;
    return VKMIX_OK;
}

/* save: device -> staging -> io; load: io -> staging -> device */
static vkmix_error transfer(vkmix_session *s, uint32_t n_past, int save, io_fn io, void *user)
{
    vkm_device *dev = &s->model->ctx->dev;
    uint64_t total = payload_bytes(&s->cache, n_past);
    if (!total) return VKMIX_OK;
    uint64_t chunk = total < STAGING_BYTES ? total : STAGING_BYTES;
    piece *p;
    size_t np;
    vkmix_error e = pieces_of(&s->cache, n_past, chunk, &p, &np);
    if (e != VKMIX_OK) return e;
    vkm_buffer st;
    e = vkm_buffer_create(dev, &st, chunk, save ? VKM_MEM_READBACK : VKM_MEM_HOST);
    for (size_t i = 0; i < np && e == VKMIX_OK;) {
        size_t j = i;
        uint64_t fill = 0;
        while (j < np && fill + p[j].n <= chunk) fill += p[j++].n;
        if (!save) e = io(user, st.mapped, fill);
        if (e == VKMIX_OK) e = vkm_cmd_begin(&s->cmd);
        if (e != VKMIX_OK) break;
        for (uint64_t at = 0; i < j; at += p[i].n, i++) {
            if (save) vkm_cmd_copy(&s->cmd, p[i].buf, p[i].off, &st, at, p[i].n);
            else vkm_cmd_copy(&s->cmd, &st, at, p[i].buf, p[i].off, p[i].n);
        }
        e = vkm_cmd_submit(&s->cmd);
        if (e == VKMIX_OK && save) e = io(user, st.mapped, fill);
    }
    vkm_buffer_destroy(dev, &st);
    free(p);
    return e;
}

vkmix_error vkmix_session_state_size(const vkmix_session *s, size_t *size)
{
    if (!s || !size) return VKMIX_ERROR_INVALID_ARGUMENT;
    *size = sizeof(state_header) + (size_t)payload_bytes(&s->cache, s->n_past);
    return VKMIX_OK;
}

typedef struct mem_io {
    char *p;
    size_t at, cap;
} mem_io;

static vkmix_error mem_write(void *u, void *bytes, size_t n)
{
    mem_io *m = u;
    if (m->at + n > m->cap) return VKMIX_ERROR_INTERNAL;
    memcpy(m->p + m->at, bytes, n);
    m->at += n;
    return VKMIX_OK;
}

static vkmix_error mem_read(void *u, void *bytes, size_t n)
{
    mem_io *m = u;
    if (m->at + n > m->cap) return VKMIX_ERROR_BAD_STATE;
    memcpy(bytes, m->p + m->at, n);
    m->at += n;
    return VKMIX_OK;
}

static vkmix_error file_write(void *u, void *bytes, size_t n)
{
    return fwrite(bytes, 1, n, u) == n ? VKMIX_OK : VKMIX_ERROR_IO;
}

static vkmix_error file_read(void *u, void *bytes, size_t n)
{
    return fread(bytes, 1, n, u) == n ? VKMIX_OK : VKMIX_ERROR_IO;
}

vkmix_error vkmix_session_state_save(vkmix_session *s, void *buf, size_t cap, size_t *written)
{
    if (!s || (!buf && cap)) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkmix_error pe = policy_refuses(s, "saving the session state");
    if (pe != VKMIX_OK) return pe;
    size_t need;
    vkmix_session_state_size(s, &need);
    if (written) *written = need;
    if (cap < need)
        return vkm_fail(&s->model->ctx->dev, VKMIX_ERROR_INVALID_ARGUMENT,
                        "the session state needs %zu bytes; the buffer holds %zu", need, cap);
    state_header h;
    header_of(s, &h);
    mem_io m = { buf, 0, cap };
    vkmix_error e = mem_write(&m, &h, sizeof h);
    if (e == VKMIX_OK) e = transfer(s, s->n_past, 1, mem_write, &m);
    return e;
}

/* Header checked against `available` bytes, then the payload from io. */
static vkmix_error load(vkmix_session *s, const state_header *h, uint64_t available, io_fn io, void *user)
{
    vkmix_error e = policy_refuses(s, "loading a session state");
    if (e == VKMIX_OK) e = check_header(s, h, available);
    if (e != VKMIX_OK) return e;
    vkmix_session_reset(s); /* a failure part-way leaves an empty session, never a mixed one */
    e = transfer(s, h->n_past, 0, io, user);
    if (e != VKMIX_OK) return e;
    s->n_past = h->n_past;
    s->ring_from = h->ring_from;
    return VKMIX_OK;
}

vkmix_error vkmix_session_state_load(vkmix_session *s, const void *buf, size_t size)
{
    if (!s || (!buf && size)) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    state_header h;
    memset(&h, 0, sizeof h);
    if (size >= sizeof h) memcpy(&h, buf, sizeof h);
    mem_io m = { (char *)buf, sizeof h, size };
    return load(s, &h, size, mem_read, &m);
}

vkmix_error vkmix_session_state_save_file(vkmix_session *s, const char *path)
{
    if (!s || !path) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkm_device *dev = &s->model->ctx->dev;
    vkmix_error pe = policy_refuses(s, "saving the session state");
    if (pe != VKMIX_OK) return pe;
    FILE *f = fopen(path, "wb");
    if (!f) return vkm_fail(dev, VKMIX_ERROR_IO, "cannot write %s: %s", path, strerror(errno));
    state_header h;
    header_of(s, &h);
    vkmix_error e = file_write(f, &h, sizeof h);
    if (e == VKMIX_OK) e = transfer(s, s->n_past, 1, file_write, f);
    if (fclose(f) != 0 && e == VKMIX_OK) e = VKMIX_ERROR_IO;
    if (e == VKMIX_ERROR_IO) return vkm_fail(dev, e, "writing %s: %s", path, strerror(errno));
    return e;
}

vkmix_error vkmix_session_state_load_file(vkmix_session *s, const char *path)
{
    if (!s || !path) return VKMIX_ERROR_INVALID_ARGUMENT;
    vkm_err_clear();
    vkm_device *dev = &s->model->ctx->dev;
    FILE *f = fopen(path, "rb");
    if (!f) return vkm_fail(dev, VKMIX_ERROR_IO, "cannot read %s: %s", path, strerror(errno));
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    state_header h;
    memset(&h, 0, sizeof h);
    vkmix_error e = VKMIX_OK;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) e = vkm_fail(dev, VKMIX_ERROR_IO, "cannot read %s", path);
    else if ((size_t)size >= sizeof h && fread(&h, 1, sizeof h, f) != sizeof h)
        e = vkm_fail(dev, VKMIX_ERROR_IO, "cannot read %s", path);
    if (e == VKMIX_OK) {
        e = load(s, &h, (uint64_t)size, file_read, f);
        if (e == VKMIX_ERROR_IO) vkm_fail(dev, e, "reading %s: %s", path, strerror(errno));
    }
    fclose(f);
    return e;
}
