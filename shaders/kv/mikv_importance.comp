#version 450
// MiKV importance (the attention each FP16 token received, H2O's score): one
// invocation per (KV head, ring slot) adds, for each query row of the step in
// order, the probabilities its NREP query heads gave the slot's token,
// exp(s - max) / sum from mikv_attn.comp's scores, while the token's block is still
// in the window (query j < S + R + (block + 1) G: vkm_mikv_accumulate). Tokens
// stored by this step start from 0 (the slot held an older token). No atomics:
// each slot is one invocation's.
#extension GL_GOOGLE_include_directive : require
#include "mikv.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NREP = 1;

layout(std430, binding = 0) restrict readonly buffer SC { float sc[]; };
layout(std430, binding = 1) restrict buffer A { uint aux[]; };

layout(push_constant) uniform P { uint S, R, G, ring, nq, pos0, n_rows, n_head, n_kv, o_score, o_ml; } pc;

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n_kv * pc.ring) return;
    const uint h = i / pc.ring, slot = i % pc.ring, last = pc.pos0 + pc.n_rows - 1u;
    if (last < pc.S || slot > last - pc.S) return;   // the slot never held a token
    const uint base = last - pc.S, t = base - (base - slot) % pc.ring, p = pc.S + t;   // its newest token
    if (t < pc.nq * pc.G) return;                     // packed before this step
    const uint at = pc.o_score + kvl_ring_score(h, slot, pc.ring);
    float imp = p >= pc.pos0 ? 0.0 : uintBitsToFloat(aux[at]);
    const uint e_b = pc.S + pc.R + (t / pc.G + 1u) * pc.G;   // the block leaves the window at e_b tokens
    for (uint r = 0u; r < pc.n_rows; r++) {
        const uint j = pc.pos0 + r;
        if (p > j || j >= e_b) continue;
        float acc = 0.0;
        for (uint k = 0u; k < NREP; k++) {
            const uint hq = h * NREP + k, x = r * pc.n_head + hq;
            acc += exp(sc[x * pc.ring + slot] - sc[pc.o_ml + 2u * x]) / sc[pc.o_ml + 2u * x + 1u];
        }
        imp += acc;
    }
    aux[at] = floatBitsToUint(imp);
}
