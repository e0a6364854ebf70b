/* Decode attention over the packed cache: the fused kernels and their dispatch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv/kv.h"

/* Decode (one query position) straight from the packed store: kvq_attn + reduce.
 * Returns VKMIX_ERROR_UNSUPPORTED_DEVICE (nothing recorded) when the kernel's
 * shared memory does not fit the device; the caller then takes the linear path. */
vkmix_error vkm_kv_fused_decode(vkm_cmd *cmd, const vkm_kv_cache *c, const vkm_kv_side *K, const vkm_kv_side *V,
                                vkm_binding q, vkm_binding out, uint32_t nq, uint32_t pos0)
{
    vkmix_context *ctx = cmd->ctx;
    const uint32_t G = c->cfg.group, nrep = c->n_q_head / c->n_kv_head, D = c->head_dim;
    /* tuning knobs for experiments (docs/PERFORMANCE.md), read at context creation */
    uint32_t wg = ctx->tune.kvq_wg ? ctx->tune.kvq_wg : 128, tile = ctx->tune.kvq_tile ? ctx->tune.kvq_tile : 128;
    uint32_t max_splits = ctx->tune.kvq_splits ? ctx->tune.kvq_splits : VKM_KVQ_MAX_SPLITS;
    if (max_splits < 1 || max_splits > VKM_KVQ_SPLITS_CAP) max_splits = VKM_KVQ_MAX_SPLITS;
    if (wg & (wg - 1) || wg < 32) wg = 128;
    while (wg > ctx->dev.caps.max_wg_invocations) wg /= 2;
    if (tile < G) tile = G;
    const uint64_t ngv = D / c->cfg.v_group;
#define KVQ_SHARED(tl) ((uint64_t)nrep * (D + (tl) + wg) * 4 + (uint64_t)(tl) / G * D * 8 + (uint64_t)(tl) * ngv * 8 + \
                        (uint64_t)wg * ((D + wg - 1) / wg + 1) * 4)
    while (tile > G && KVQ_SHARED(tile) > ctx->dev.caps.max_shared_bytes) tile /= 2;
    if (KVQ_SHARED(tile) > ctx->dev.caps.max_shared_bytes) return VKMIX_ERROR_UNSUPPORTED_DEVICE;
#undef KVQ_SHARED
    uint32_t bps = (nq + max_splits - 1) / max_splits;
    if (bps < 1) bps = 1;
    /* the FP16 tokens (sinks + ring tail) are split too: one workgroup walking a
     * couple of hundred FP16 tokens serially was the critical path */
    const uint32_t fp16_chunk = 32;
    uint32_t S = c->cfg.sinks < pos0 + 1 ? c->cfg.sinks : pos0 + 1, r0 = c->cfg.sinks + nq * G;
    uint32_t n_fp16 = S + (pos0 + 1 > r0 ? pos0 + 1 - r0 : 0);
    uint32_t n_qsplits = (nq + bps - 1) / bps, n_fsplits = (n_fp16 + fp16_chunk - 1) / fp16_chunk;
    if (!n_fsplits) n_fsplits = 1;
    uint32_t n_splits = n_qsplits + n_fsplits;
    if (n_splits > VKM_KVQ_SPLITS_CAP + 64) return VKMIX_ERROR_UNSUPPORTED_DEVICE;
    const vkm_pipeline *p, *pr;
    uint32_t spec[8] = { wg, K->bits, V->bits, G, D, c->cfg.v_group, nrep, tile };
    vkmix_error e = vkm_pipe(ctx, VKM_SH_KVQ_ATTN, spec, 8, &p);
    if (e != VKMIX_OK) return e;
    struct { uint32_t S, ring, nq, n_blocks, p_end, bps, n_splits; float scale; uint32_t n_qsplits, fp16_chunk; } push = {
        c->cfg.sinks, c->cfg.ring, nq, c->n_blocks, pos0 + 1, bps, n_splits, 1.0f / sqrtf((float)D), n_qsplits, fp16_chunk
    };
    const vkm_buffer *ks = K->sinks.buf ? &K->sinks : &K->ring, *vs = V->sinks.buf ? &V->sinks : &V->ring;
    vkm_binding b[10] = { q, VKM_BIND(K->codes), VKM_BIND(K->meta), VKM_BIND(V->codes), VKM_BIND(V->meta),
                          VKM_BIND(*ks), VKM_BIND(K->ring), VKM_BIND(*vs), VKM_BIND(V->ring), VKM_BIND(c->part) };
    vkm_cmd_dispatch(cmd, p, b, 10, &push, sizeof push, n_splits, c->n_kv_head, 1);
    vkm_cmd_barrier(cmd);
    uint32_t wg2 = 512;
    while (wg2 > ctx->dev.caps.max_wg_invocations) wg2 /= 2;
    uint32_t spec2[3] = { wg2, D, VKM_KVQ_SPLITS_CAP + 64 };
    if ((e = vkm_pipe(ctx, VKM_SH_KVQ_ATTN_REDUCE, spec2, 3, &pr)) != VKMIX_OK) return e;
    vkm_binding b2[2] = { VKM_BIND(c->part), out };
    vkm_cmd_dispatch(cmd, pr, b2, 2, &n_splits, 4, c->n_q_head, 1, 1);
    return VKMIX_OK;
}


/* ====================================================================== the decode attention (v2)
 *
 * One dispatch of kvq_decode.comp (packed groups) and one of attn_decode.comp
 * (FP16 tokens: sinks and the ring, or a whole FP16 layer) serve every row of
 * a batch; attn_combine.comp merges the splits. Each row is described by an
 * entry of the sequence table (struct vkm_attn_seq = AttnSeq in
 * shaders/kv/attn_seq.glsl): buffer device addresses of its cache and where
 * its splits start in the partials. */

_Static_assert(sizeof(vkm_attn_seq) == 112, "vkm_attn_seq must match AttnSeq in shaders/kv/attn_seq.glsl");

/* Workgroups the split heuristic aims for (enough to fill a large GPU; VKMIX_KVQ_SPLITS
 * overrides it), and the shortest split of a whole FP16 layer. */
#define ATTN_TARGET_WGS 1024u
#define ATTN_FP16_SPLIT_MIN 512u
/* FP16 tokens per split of a packed layer (its FP16 part is the ring and the sinks). */
#define ATTN_FP16_SPLIT_PACKED 64u

static uint32_t heads_per_wg(uint32_t nrep)
{
    uint32_t nr = 1;
    for (uint32_t d = 1; d <= 8 && d <= nrep; d++)
        if (nrep % d == 0) nr = d;
    return nr;
}

static int width_packed_ok(uint32_t b) { return b == 2 || b == 4 || b == 8; }

/* Which kernel a layer of a cache takes in decode. */
typedef enum { PATH_PACKED, PATH_FP16, PATH_OTHER } attn_path;

static attn_path path_of(const vkm_kv_cache *c, uint32_t layer, const vkm_device *dev)
{
    /* the per-layer policy's layers; the other policies decode through their table entry */
    if (!dev->bda || c->cfg.policy != VKMIX_KV_POLICY_LAYER) return PATH_OTHER;
    uint32_t kb = c->k[layer].bits, vb = c->v[layer].bits;
    if (kb >= 16 && vb >= 16) return PATH_FP16;
    if (width_packed_ok(kb) && width_packed_ok(vb) && c->head_dim % 8 == 0) return PATH_PACKED;
    return PATH_OTHER;
}

/* Splits of one row are a function of that row alone (its depth and its layer's widths),
 * never of the batch: a row of a batch computes exactly what it computes alone. */
static uint32_t target_wgs(const vkmix_context *ctx)
{
    uint32_t t = ctx->tune.kvq_splits ? ctx->tune.kvq_splits : ATTN_TARGET_WGS;
    return t > 8 * ATTN_TARGET_WGS ? 8 * ATTN_TARGET_WGS : t;
}

uint32_t vkm_attn_max_splits(const vkmix_context *ctx, const vkm_kv_cache *c)
{
    /* packed splits: at most the target per KV head; FP16 splits: of the ring and sinks (64
     * tokens each), or of a whole FP16 layer (at most the target per KV head, + 1) */
    uint32_t per_head = target_wgs(ctx) / (c->n_kv_head ? c->n_kv_head : 1);
    uint32_t fp16 = (c->cfg.sinks + c->cfg.ring + ATTN_FP16_SPLIT_PACKED - 1) / ATTN_FP16_SPLIT_PACKED + 1;
    return per_head + (fp16 > 1 ? fp16 : 1) + 2;
}

vkmix_error vkm_attn_work_create(vkmix_context *ctx, vkm_attn_work *w, const vkm_kv_cache *c, uint32_t cap_rows,
                                 uint32_t table_rows)
{
    memset(w, 0, sizeof *w);
    w->cap_rows = cap_rows ? cap_rows : 1;
    w->table_rows = table_rows > w->cap_rows ? table_rows : w->cap_rows;
    cap_rows = w->cap_rows;
    w->n_layer = c->n_layer;
    w->n_head = c->n_q_head;
    w->head_dim = c->head_dim;
    w->max_splits_row = vkm_attn_max_splits(ctx, c);
    w->cap_splits = cap_rows * w->max_splits_row;
    w->use_f16 = !ctx->tune.kvq_f32;
    vkmix_error e = vkm_buffer_create(&ctx->dev, &w->table, (uint64_t)c->n_layer * w->table_rows * sizeof(vkm_attn_seq),
                                      VKM_MEM_HOST);
    if (e == VKMIX_OK)
        e = vkm_buffer_create(&ctx->dev, &w->part,
                              (uint64_t)w->cap_splits * c->n_q_head * (c->head_dim + 2) * 4, VKM_MEM_DEVICE);
    if (e != VKMIX_OK) vkm_attn_work_free(&ctx->dev, w);
    return e;
}

void vkm_attn_work_free(vkm_device *dev, vkm_attn_work *w)
{
    vkm_buffer_destroy(dev, &w->table);
    vkm_buffer_destroy(dev, &w->part);
}

/* The table entry of one row (splits and part_base filled by the caller). */
static void seq_of(vkm_device *dev, const vkm_kv_cache *c, uint32_t layer, uint32_t q_row, uint32_t pos0, vkm_attn_seq *s)
{
    const vkm_kv_side *K = &c->k[layer], *V = &c->v[layer];
    memset(s, 0, sizeof *s);
    s->q_row = q_row;
    s->p_end = pos0 + 1;
    if (K->bits >= 16) {                 /* a whole FP16 layer: the ring holds every position */
        s->kring = vkm_buffer_address(dev, &K->ring);
        s->vring = vkm_buffer_address(dev, &V->ring);
        s->n_ring = c->n_ctx;
        return;
    }
    s->kcodes = vkm_buffer_address(dev, &K->codes);
    s->kmeta = vkm_buffer_address(dev, &K->meta);
    s->vcodes = vkm_buffer_address(dev, &V->codes);
    s->vmeta = vkm_buffer_address(dev, &V->meta);
    s->kring = vkm_buffer_address(dev, &K->ring);
    s->vring = vkm_buffer_address(dev, &V->ring);
    s->ksink = vkm_buffer_address(dev, &K->sinks);
    s->vsink = vkm_buffer_address(dev, &V->sinks);
    s->n_sinks = c->cfg.sinks;
    s->n_ring = c->cfg.ring;
    s->nq = vkm_kv_blocks_at(&c->cfg, pos0);
    s->n_blocks = c->n_blocks;
}

static uint32_t div_up(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

/* The packed kernel's shape for a layer: workgroup size, tile, pairs per invocation. */
typedef struct { uint32_t wg, tile, nr, kp, vp; } packed_shape;

static int packed_shape_of(const vkmix_context *ctx, const vkm_kv_cache *c, uint32_t kb, uint32_t vb, int f32, packed_shape *o)
{
    const uint32_t D = c->head_dim, nr = heads_per_wg(c->n_q_head / c->n_kv_head), nrp = (nr + 1) / 2;
    const uint32_t ktpw = 32 / kb, kppw = 16 / kb, vtpw = 32 / vb, vppw = 16 / vb, wptv = (D * vb + 31) / 32;
    /* pairs per invocation: 4 by default (a knob for experiments) */
    /* pairs per invocation: 4 token pairs of a key word, every channel pair of a value
     * word (the H200 sweep of 2026-12-02: 93 -> 72 us for k2v2 at 32k); knobs for experiments */
    uint32_t kp = ctx->tune.kvq_kp ? ctx->tune.kvq_kp : 4, vp = ctx->tune.kvq_vp ? ctx->tune.kvq_vp : 16;
    if (kp > kppw) kp = kppw;
    if (vp > vppw) vp = vppw;
    if (kppw % kp || vppw % vp) return 0;
    const uint32_t kgrp = kppw / kp, vgrp = vppw / vp;
    for (uint32_t wg = 128; wg >= 32; wg /= 2) {
        if (wg > ctx->dev.caps.max_wg_invocations || (ctx->tune.kvq_wg && wg != ctx->tune.kvq_wg)) continue;
        if (wptv * vgrp > wg) continue;
        static const uint32_t tiles[] = { 512, 1024, 2048, 256, 128, 4096 };   /* in order of preference */
        for (uint32_t ti = 0; ti < sizeof tiles / sizeof tiles[0]; ti++) {
            uint32_t tile = tiles[ti];
            if (tile < wg || tile < ktpw || (ctx->tune.kvq_tile && tile != ctx->tune.kvq_tile)) continue;
            uint32_t rows = tile / ktpw;
            if (rows * kgrp > wg || wg % (rows * kgrp)) continue;
            uint32_t cs = wg / (rows * kgrp);
            if (D % (4 * cs)) continue;   /* uvec4 loads: 4 channels at a time per slice */
            uint64_t red = (uint64_t)cs * tile * nr, red2 = (uint64_t)(wg / (wptv * vgrp)) * wptv * vtpw;
            /* s_red, s_p and s_q of kvq_decode.glsl (pairs of FP16, or of FP32 with f32) */
            uint64_t shared = (red > red2 ? red : red2) * 4 + ((uint64_t)tile + D) * nrp * (f32 ? 8 : 4);
            if (shared > ctx->dev.caps.max_shared_bytes) continue;
            *o = (packed_shape){ wg, tile, nr, kp, vp };
            return 1;
        }
    }
    return 0;
}

/* Up to cap_rows rows: their table entries from table[layer][tbase], their partials from split 0. */
static vkmix_error decode_chunk(vkm_cmd *cmd, vkm_attn_work *w, uint32_t layer, const vkm_attn_row *rows, uint32_t n,
                                vkm_binding q, vkm_binding out, uint32_t tbase)
{
    vkmix_context *ctx = cmd->ctx;
    vkm_device *dev = &ctx->dev;
    const uint32_t seq_base = layer * w->table_rows + tbase;
    vkm_attn_seq *table = (vkm_attn_seq *)w->table.mapped + seq_base;
    const uint32_t H = w->n_head, D = w->head_dim;
    vkmix_error e;
    /* rows the v2 kernels cannot take go through the per-row path; the others are
     * grouped by the layer's widths and group (one dispatch per distinct shape) */
    uint32_t done_mask_n = 0, part_next = 0;
    uint8_t *done = calloc(n ? n : 1, 1);
    if (!done) return VKMIX_ERROR_OUT_OF_HOST_MEMORY;
    for (uint32_t i = 0; i < n; i++) {
        if (path_of(rows[i].c, layer, dev) != PATH_OTHER) continue;
        done[i] = 1;
        done_mask_n++;
        const uint64_t qb = (uint64_t)H * D * 4;
        vkm_binding qr = { q.buf, q.offset + rows[i].q_row * qb, qb }, orow = { out.buf, out.offset + rows[i].q_row * qb, qb };
        e = vkm_kv_cache_attention(cmd, rows[i].c, layer, qr, orow, rows[i].scratch, 1, rows[i].pos0);
        if (e != VKMIX_OK) goto fail;
    }
    uint32_t used = 0;   /* table entries filled */
    while (done_mask_n < n) {
        /* the first row not done sets the shape; take every row of the same shape */
        uint32_t lead = 0;
        while (done[lead]) lead++;
        const vkm_kv_cache *c0 = rows[lead].c;
        const attn_path path = path_of(c0, layer, dev);
        const uint32_t kb = c0->k[layer].bits, vb = c0->v[layer].bits, G = c0->cfg.group, VG = c0->cfg.v_group;
        const uint32_t nrep = c0->n_q_head / c0->n_kv_head, nr = heads_per_wg(nrep), hch = nrep / nr;
        uint32_t first = used, m = 0;
        for (uint32_t i = lead; i < n; i++) {
            const vkm_kv_cache *c = rows[i].c;
            if (done[i] || path_of(c, layer, dev) != path || c->k[layer].bits != kb || c->v[layer].bits != vb ||
                c->cfg.group != G || c->cfg.v_group != VG)
                continue;
            done[i] = 1;
            done_mask_n++;
            table[used + m] = (vkm_attn_seq){ 0 };
            seq_of(dev, c, layer, rows[i].q_row, rows[i].pos0, &table[used + m]);
            m++;
        }
        /* splits: about ATTN_TARGET_WGS workgroups over the rows of this dispatch */
        uint32_t want = target_wgs(ctx) / (c0->n_kv_head * hch) ? target_wgs(ctx) / (c0->n_kv_head * hch) : 1;
        /* VKMIX_ATTN_SPLIT_BATCH: the rows of this dispatch share the target (an experiment: by
         * default a row's splits depend on the row alone, see target_wgs) */
        if (ctx->tune.attn_split_batch && m > 1) want = want / m ? want / m : 1;
        packed_shape ps = { 0, 0, nr };
        /* FP16 arithmetic for 2/4-bit keys on heads of 64 channels or more (measured on the Llama-3
         * shape, head_dim 128: 9.4e-4 of the output); smaller heads stay in FP32, where FP16 reached
         * 1.1e-2 (head_dim 16) and tiny models gain nothing from the speed */
        const int f32 = kb >= 8 || !w->use_f16 || D < 64;
        if (path == PATH_PACKED && !packed_shape_of(ctx, c0, kb, vb, f32, &ps)) {
            e = vkm_fail(dev, VKMIX_ERROR_UNSUPPORTED_DEVICE, "decode attention: no kernel shape fits the device");
            goto fail;
        }
        uint32_t max_q = 0, max_f = 0;
        for (uint32_t j = 0; j < m; j++) {
            vkm_attn_seq *s = &table[first + j];
            if (s->nq) {
                uint32_t min_bps = ps.tile / G ? ps.tile / G : 1;
                uint32_t bps = div_up(s->nq, want);
                if (bps < min_bps) bps = min_bps;
                s->blocks_per_split = bps;
                s->n_qsplits = div_up(s->nq, bps);
            }
            uint32_t n_fp16 = (s->p_end < s->n_sinks ? s->p_end : s->n_sinks) +
                              (s->p_end > s->n_sinks + s->nq * G ? s->p_end - s->n_sinks - s->nq * G : 0);
            uint32_t f = path == PATH_FP16 ? div_up(n_fp16, want) : ATTN_FP16_SPLIT_PACKED;
            if (path == PATH_FP16 && f < ATTN_FP16_SPLIT_MIN) f = ATTN_FP16_SPLIT_MIN;
            s->fp16_per_split = f;
            s->n_fsplits = n_fp16 ? div_up(n_fp16, f) : 0;
            s->part_base = part_next;
            part_next += s->n_qsplits + s->n_fsplits;
            if (s->n_qsplits > max_q) max_q = s->n_qsplits;
            if (s->n_fsplits > max_f) max_f = s->n_fsplits;
        }
        if (part_next > w->cap_splits) {
            e = vkm_fail(dev, VKMIX_ERROR_INTERNAL, "decode attention: %u splits for a partials buffer of %u", part_next,
                         w->cap_splits);
            goto fail;
        }
        const vkm_pipeline *p;
        struct { uint32_t seq0, n_head; float scale; } push = { seq_base + first, H, 1.0f / sqrtf((float)D) };
        vkm_binding b[3] = { VKM_BIND(w->table), q, VKM_BIND(w->part) };
        if (max_q) {
            uint32_t spec[12] = { ps.wg, kb, vb, G, D, VG, nrep, nr, ps.tile, ps.kp, ps.vp, ctx->dev.caps.subgroup_arith };
            /* FP16 arithmetic by default for 2- and 4-bit keys (use_f16; its rounding, ~1e-3 of the
             * output, stays far below the quantization error), 1.7x faster than FP32 on the H200
             * (2026-12-02, docs/PERFORMANCE.md); FP32 for 8-bit keys and with VKMIX_KVQ_F32=1 */
            vkm_shader sh = f32 ? VKM_SH_KVQ_DECODE_F32 : VKM_SH_KVQ_DECODE;
            if ((e = vkm_pipe(ctx, sh, spec, 12, &p)) != VKMIX_OK) goto fail;
            vkm_cmd_dispatch(cmd, p, b, 3, &push, sizeof push, max_q, c0->n_kv_head * hch, m);
        }
        if (max_f) {
            uint32_t wg = 128 <= ctx->dev.caps.max_wg_invocations ? 128 : 64;
            uint32_t spec[6] = { wg, D, nrep, nr, G, ctx->dev.caps.subgroup_arith };
            if ((e = vkm_pipe(ctx, VKM_SH_ATTN_DECODE, spec, 6, &p)) != VKMIX_OK) goto fail;
            vkm_cmd_dispatch(cmd, p, b, 3, &push, sizeof push, max_f, c0->n_kv_head * hch, m);
        }
        vkm_cmd_barrier(cmd);
        uint32_t wg2 = 256;
        while (wg2 > ctx->dev.caps.max_wg_invocations) wg2 /= 2;
        uint32_t cw = D % 32 == 0 ? 32 : D % 16 == 0 ? 16 : 8;   /* channels per combine workgroup */
        uint32_t spec2[4] = { wg2, D, w->max_splits_row, cw };
        if ((e = vkm_pipe(ctx, VKM_SH_ATTN_COMBINE, spec2, 4, &p)) != VKMIX_OK) goto fail;
        struct { uint32_t seq0, n_head; } push2 = { seq_base + first, H };
        vkm_binding b2[3] = { VKM_BIND(w->table), VKM_BIND(w->part), out };
        vkm_cmd_dispatch(cmd, p, b2, 3, &push2, sizeof push2, H, D / cw, m);
        used += m;
        /* the next shape's dispatches reuse the partials: wait for this combine */
        if (done_mask_n < n) vkm_cmd_barrier(cmd);
    }
    free(done);
    return VKMIX_OK;
fail:
    free(done);
    return e;
}

vkmix_error vkm_kv_decode(vkm_cmd *cmd, vkm_attn_work *w, uint32_t layer, const vkm_attn_row *rows, uint32_t n,
                          vkm_binding q, vkm_binding out)
{
    if (n > w->table_rows || layer >= w->n_layer)
        return vkm_fail(&cmd->ctx->dev, VKMIX_ERROR_INTERNAL, "decode attention: %u rows for a table of %u", n,
                        w->table_rows);
    /* chunks of cap_rows rows share the partials: each waits for the previous one's combine */
    for (uint32_t r0 = 0; r0 < n; r0 += w->cap_rows) {
        uint32_t m = n - r0 < w->cap_rows ? n - r0 : w->cap_rows;
        if (r0) vkm_cmd_barrier(cmd);
        vkmix_error e = decode_chunk(cmd, w, layer, rows + r0, m, q, out, r0);
        if (e != VKMIX_OK) return e;
    }
    return VKMIX_OK;
}
