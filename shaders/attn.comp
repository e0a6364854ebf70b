#version 450
// Causal GQA attention over the FP16 cache of one layer, flash-style (online
// softmax), one workgroup per (split of the key range, group of G query heads
// sharing one KV head, query token). Every key and value is read once for the
// G heads of the group.
//
//   q:   [n_tok][n_head][D] f32 (after RoPE), query t at position pos0 + t
//   k/v: [n_kv_head][n_ctx][D] f16 (bound from KV head kv_base on)
// mode 0 (decode, split-K): write the split's partial (unnormalized acc[D],
//   running max m, sum of exp l) to scratch[h][split][D + 2]; attn_reduce
//   combines the splits.
// mode 1 (prefill, one split): write out[t][h][:] = acc / l.
//
// Layout of a workgroup: NT = C * KP invocations, C = D/8 "chunk lanes" (each
// owns 8 dims: one uvec4 of a key/value row) times KP "key lanes". A tile of
// KP consecutive keys is processed at once: each invocation loads its uvec4 of
// its key (so consecutive invocations read consecutive 16 bytes of the cache),
// partial dot products are summed in shared memory, every invocation reads the
// tile's scores, updates the running max/sum and accumulates p * v for its 8
// dims. At the end the KP key lanes' accumulators are summed in shared memory.
// Spec constants: 0 NT, 1 D (multiple of 8), 2 G, 3 KP.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint D = 128;
layout(constant_id = 2) const uint G = 1;
layout(constant_id = 3) const uint KP = 16;

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

shared float sh_part[C > 1u ? G * KP * C : 1u];
shared float sh_s[G * KP];
shared float sh_acc[KP * D];
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

    vec4 qa[G], qb[G], aa[G], ab[G];
    float m[G], l[G];
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

    for (uint t0 = start; t0 < end; t0 += KP) {
        const uint key = t0 + kl;
        const bool valid = key < end;
        uvec4 kw = valid ? kc4[cbase + key * C] : uvec4(0u);
        uvec4 vw = valid ? vc4[cbase + key * C] : uvec4(0u);
        vec4 ka = h4lo(kw), kb = h4hi(kw);
        [[unroll]] for (uint g = 0u; g < G; g++) {
            float d = dot(qa[g], ka) + dot(qb[g], kb);
            if (C == 1u) sh_s[g * KP + kl] = valid ? d : NEG;
            else sh_part[(g * KP + kl) * C + c] = d;
        }
        barrier();
        if (C > 1u) {
            for (uint i = tid; i < G * KP; i += NT) {
                float s = 0.0;
                [[unroll]] for (uint j = 0u; j < C; j++) s += sh_part[i * C + j];
                sh_s[i] = t0 + (i % KP) < end ? s : NEG;
            }
            barrier();
        }
        vec4 va = h4lo(vw), vb = h4hi(vw);
        [[unroll]] for (uint g = 0u; g < G; g++) {
            float mx = NEG;
            for (uint j = 0u; j < KP; j++) mx = max(mx, sh_s[g * KP + j]);
            float mn = max(m[g], mx);
            float alpha = exp(m[g] - mn);
            float p = valid ? exp(sh_s[g * KP + kl] - mn) : 0.0;
            aa[g] = aa[g] * alpha + p * va;
            ab[g] = ab[g] * alpha + p * vb;
            l[g] = l[g] * alpha + p;
            m[g] = mn;
        }
        // with C > 1, sh_s is next written after the next tile's first barrier;
        // with C == 1 it is written before it
        if (C == 1u) barrier();
    }

    // sum the KP key lanes
    [[unroll]] for (uint g = 0u; g < G; g++) {
        uint h = h0 + g;
        sh_acc[kl * D + 8u * c + 0u] = aa[g].x;
        sh_acc[kl * D + 8u * c + 1u] = aa[g].y;
        sh_acc[kl * D + 8u * c + 2u] = aa[g].z;
        sh_acc[kl * D + 8u * c + 3u] = aa[g].w;
        sh_acc[kl * D + 8u * c + 4u] = ab[g].x;
        sh_acc[kl * D + 8u * c + 5u] = ab[g].y;
        sh_acc[kl * D + 8u * c + 6u] = ab[g].z;
        sh_acc[kl * D + 8u * c + 7u] = ab[g].w;
        if (c == 0u) sh_l[kl] = l[g];
        barrier();
        float lsum = 0.0;
        for (uint j = 0u; j < KP; j++) lsum += sh_l[j];
        for (uint i = tid; i < D; i += NT) {
            float a = 0.0;
            for (uint j = 0u; j < KP; j++) a += sh_acc[j * D + i];
            if (pc.mode == 1u) {
                o[(t * pc.n_head + h) * D + i] = a / lsum;
            } else {
                uint pb = (h * pc.n_split + split) * (D + 2u);
                part[pb + i] = a;
                if (i == 0u) {
                    part[pb + D] = m[g];
                    part[pb + D + 1u] = lsum;
                }
            }
        }
        barrier();
    }
}
