#version 450
// Causal GQA attention over the FP16 cache of one layer, flash-style (online
// softmax), one workgroup per (split of the key range, group of G query heads
// sharing one KV head, query token). Every key and value is read once for the
// G heads of the group.
//
//   q:   [n_tok][n_head][D] f32 (after RoPE), query t at position pos0 + t
//   k/v: [n_kv_head][n_ctx][D] f16 (bound from KV head kv_base on)
// mode 0 (decode, split-K): write the split's partial (acc[D] relative to the
//   split's max m, m, and the sum of exp l) to scratch[h][split][D + 2];
//   attn_reduce combines the splits.
// mode 1 (prefill, one split): write out[t][h][:] = acc / l.
//
// Layout of a workgroup: NT = C * KP invocations, C = D/8 "chunk lanes" (each
// owns 8 dims: one uvec4 of a key/value row) times KP "key lanes". A tile is
// KT * KP keys; key lane kl takes keys t0 + j*KP + kl (j < KT), so for each j
// the workgroup reads KP consecutive rows of the cache (16 consecutive bytes
// per invocation). Partial dot products of the C chunk lanes are summed in
// shared memory (no barrier at all when C == 1). Every key lane keeps its own
// running max / sum / accumulator (no tile-wide max), and the key lanes are
// merged once at the end with the usual rescaling.
// With PF = 1 the next tile's keys and values are loaded before the current
// tile is computed (software pipelining: loads stay in flight across the
// barriers and the softmax math).
// Spec constants: 0 NT, 1 D (multiple of 8), 2 G, 3 KP, 4 KT, 5 PF.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint G = 1;
layout(constant_id = 3) const uint KP = 16;
layout(constant_id = 4) const uint KT = 1;
layout(constant_id = 5) const uint PF = 0;

layout(std430, binding = 0) restrict readonly buffer Q { vec4 q4[]; };
layout(std430, binding = 1) restrict readonly buffer KC { uvec4 kc4[]; };
layout(std430, binding = 2) restrict readonly buffer VC { uvec4 vc4[]; };
layout(std430, binding = 3) restrict writeonly buffer O { float o[]; };
layout(std430, binding = 4) restrict writeonly buffer S { float part[]; };
layout(push_constant) uniform P {
    uint n_head, n_kv_head, n_ctx, pos0;
    uint split_len, n_split, mode;
    float scale;
    uint hg_base;   // head group of gl_WorkGroupID.y == 0
    uint kv_base;   // KV head at the start of the k/v bindings
} pc;

const uint C = D / 8u;
const uint NT = gl_WorkGroupSize.x;
const float NEG = -1.0e30;
const uint MAXKT = 8u;   // register arrays below; KT <= MAXKT
const uint MAXG = 8u;

shared float sh_part[C > 1u ? G * KT * KP * C : 1u];
shared float sh_s[C > 1u ? G * KT * KP : 1u];
shared float sh_acc[KP * D];
shared float sh_m[KP];
shared float sh_l[KP];

vec4 h4lo(uvec4 w) { return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)); }
vec4 h4hi(uvec4 w) { return vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)); }

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint c = tid % C, kl = tid / C;
    const uint split = gl_WorkGroupID.x, t = gl_WorkGroupID.z;
    const uint hg = pc.hg_base + gl_WorkGroupID.y;
    const uint grp = pc.n_head / pc.n_kv_head;
    const uint h0 = hg * G;
    const uint kvh = h0 / grp - pc.kv_base;
    const uint n_kv = pc.pos0 + t + 1u;
    const uint start = split * pc.split_len;
    const uint end = min(start + pc.split_len, n_kv);

    vec4 qa[MAXG], qb[MAXG], aa[MAXG], ab[MAXG];
    float m[MAXG], l[MAXG];
    [[unroll]] for (uint g = 0u; g < G; g++) {
        uint qi = ((t * pc.n_head + h0 + g) * D + 8u * c) / 4u;
        qa[g] = q4[qi] * pc.scale;
        qb[g] = q4[qi + 1u] * pc.scale;
        aa[g] = vec4(0.0);
        ab[g] = vec4(0.0);
        m[g] = NEG;
        l[g] = 0.0;
    }
    const uint cbase = kvh * pc.n_ctx * C + c;   // uvec4 index of (position 0, chunk c)

    uvec4 kw[MAXKT], vw[MAXKT];
    if (PF == 1u) {
        [[unroll]] for (uint j = 0u; j < KT; j++) {
            uint key = min(start + j * KP + kl, end - 1u);
            kw[j] = kc4[cbase + key * C];
            vw[j] = vc4[cbase + key * C];
        }
    }
    for (uint t0 = start; t0 < end; t0 += KT * KP) {
        uvec4 nk[MAXKT], nv[MAXKT];
        [[unroll]] for (uint j = 0u; j < KT; j++) {
            // clamped: loads stay in bounds, keys past the end are skipped below
            uint key = min(t0 + (PF == 1u ? KT * KP : 0u) + j * KP + kl, end - 1u);
            nk[j] = kc4[cbase + key * C];
            nv[j] = vc4[cbase + key * C];
        }
        if (PF == 0u) {
            [[unroll]] for (uint j = 0u; j < KT; j++) {
                kw[j] = nk[j];
                vw[j] = nv[j];
            }
        }
        float sc[MAXKT * MAXG];
        [[unroll]] for (uint j = 0u; j < KT; j++) {
            vec4 ka = h4lo(kw[j]), kb = h4hi(kw[j]);
            [[unroll]] for (uint g = 0u; g < G; g++) {
                float d = dot(qa[g], ka) + dot(qb[g], kb);
                if (C == 1u) sc[j * G + g] = d;
                else sh_part[((g * KT + j) * KP + kl) * C + c] = d;
            }
        }
        if (C > 1u) {
            barrier();
            for (uint i = tid; i < G * KT * KP; i += NT) {
                float s = 0.0;
                [[unroll]] for (uint x = 0u; x < C; x++) s += sh_part[i * C + x];
                sh_s[i] = s;
            }
            barrier();
            [[unroll]] for (uint j = 0u; j < KT; j++)
                [[unroll]] for (uint g = 0u; g < G; g++) sc[j * G + g] = sh_s[(g * KT + j) * KP + kl];
        }
        [[unroll]] for (uint j = 0u; j < KT; j++) {
            if (t0 + j * KP + kl >= end) continue;
            vec4 va = h4lo(vw[j]), vb = h4hi(vw[j]);
            [[unroll]] for (uint g = 0u; g < G; g++) {
                float s = sc[j * G + g];
                float mn = max(m[g], s);
                float alpha = exp(m[g] - mn);
                float p = exp(s - mn);
                aa[g] = aa[g] * alpha + p * va;
                ab[g] = ab[g] * alpha + p * vb;
                l[g] = l[g] * alpha + p;
                m[g] = mn;
            }
        }
        if (PF == 1u) {
            [[unroll]] for (uint j = 0u; j < KT; j++) {
                kw[j] = nk[j];
                vw[j] = nv[j];
            }
        }
        // sh_part is next written before the next tile's first barrier, and last
        // read before this tile's second one; sh_s is next written after the
        // next tile's first barrier: no third barrier needed.
    }

    // merge the KP key lanes: M = max m, acc = sum exp(m - M) acc, l = sum exp(m - M) l
    [[unroll]] for (uint g = 0u; g < G; g++) {
        uint h = h0 + g;
        if (c == 0u) {
            sh_m[kl] = m[g];
            sh_l[kl] = l[g];
        }
        barrier();
        float M = NEG;
        for (uint j = 0u; j < KP; j++) M = max(M, sh_m[j]);
        float w = exp(m[g] - M);   // 0 for a lane that saw no key
        vec4 wa = aa[g] * w, wb = ab[g] * w;
        uint ab0 = kl * D + 8u * c;
        sh_acc[ab0 + 0u] = wa.x;
        sh_acc[ab0 + 1u] = wa.y;
        sh_acc[ab0 + 2u] = wa.z;
        sh_acc[ab0 + 3u] = wa.w;
        sh_acc[ab0 + 4u] = wb.x;
        sh_acc[ab0 + 5u] = wb.y;
        sh_acc[ab0 + 6u] = wb.z;
        sh_acc[ab0 + 7u] = wb.w;
        barrier();
        float L = 0.0;
        for (uint j = 0u; j < KP; j++) L += exp(sh_m[j] - M) * sh_l[j];
        for (uint i = tid; i < D; i += NT) {
            float a = 0.0;
            for (uint j = 0u; j < KP; j++) a += sh_acc[j * D + i];
            if (pc.mode == 1u) {
                o[(t * pc.n_head + h) * D + i] = a / L;
            } else {
                uint pb = (h * pc.n_split + split) * (D + 2u);
                part[pb + i] = a;
                if (i == 0u) {
                    part[pb + D] = M;
                    part[pb + D + 1u] = L;
                }
            }
        }
        barrier();
    }
}
