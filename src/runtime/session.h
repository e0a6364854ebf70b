/* Sessions and their KV cache. */
#ifndef VKM_SESSION_H
#define VKM_SESSION_H

#include "kv/kv_cache.h"
#include "model/model.h"

/* Activations of up to `cap` rows (tokens of one sequence, or one token of each
 * sequence of a batch). */
typedef struct vkm_scratch {
    uint32_t cap, logit_rows;
    vkm_buffer x;            /* [cap][n_embd] residual stream */
    vkm_buffer h;            /* [cap][max(n_embd, n_ff)] normed input */
    vkm_buffer q;            /* [cap][n_head*head_dim] */
    vkm_buffer k, v;         /* [cap][n_head_kv*head_dim] */
    vkm_buffer att;          /* [cap][n_head*head_dim] attention output */
    vkm_buffer o;            /* [cap][n_embd] block output */
    vkm_buffer g;            /* [cap][n_ff] gate (then silu(gate) * up) */
    vkm_buffer u;            /* [cap][2 n_ff] up, or gate and up interleaved (fused weight, prefill) */
    vkm_buffer ids;          /* [cap] int32, host-visible */
    vkm_buffer logits;       /* [logit_rows][n_vocab] f32, host-readable */
    vkm_buffer freqs;        /* [head_dim/2] RoPE frequencies */
    vkm_buffer xq;           /* [min(cap, 16)] quantized activations (ops/ops.h: vkm_op_act_quant) of
                              * max(n_embd, n_head*head_dim, n_ff) elements: the integer products' input */
} vkm_scratch;
#define VKM_SCRATCH_N_BUFFERS 13

/* Allocates the buffers and uploads the RoPE frequencies (recorded on cmd). */
vkmix_error vkm_scratch_create(vkmix_model *m, vkm_cmd *cmd, vkm_scratch *s, uint32_t cap, uint32_t logit_rows);
void vkm_scratch_free(vkm_device *dev, vkm_scratch *s);

struct vkmix_session {
    vkmix_model *model;
    uint32_t n_ctx, n_batch, n_past;
    uint32_t ring_from;      /* quantized caches: positions >= ring_from still hold their own values in the FP16
                              * ring; older slots were overwritten (their groups are packed). See kv/kv_state.h */
    vkm_cmd cmd;             /* the session's own recording target: every eval records and submits here */
    vkm_scratch sc;
    vkm_buffer attn_scratch; /* split-K partials of the FP16 attention */
    vkm_kv_cache cache;
    vkm_attn_work attn;       /* decode attention table and partials (devices with buffer device addresses),
                               * also for vkmix_batch_decode led by this session */
};

/* Positions up to end - 1 are about to be written: slots of positions older
 * than end - ring are overwritten (session_state.c). Call before the forward pass. */
void vkm_session_will_write(vkmix_session *s, uint32_t end);

#endif
