// Quantized activations: the x of the integer weight products (matvec.comp),
// written by act_quant.comp. One token of n elements (n a multiple of 32) is
// ACT_Q_BYTES(n) = 2.5 n + 16 bytes, four planes (offsets in bytes):
//   hi[n]   int8   at 0          X = 256 hi + lo: the element as an int16
//   lo[n]   uint8  at n
//   meta[n/32]     at 2n         per 32-element block b: uvec4(bits of s_b, sum of X over
//                                elements 0..15 of the block, over 16..31, bits of the
//                                sum of x^2 over the block)
//   norm           at 2.5n       uvec4(1 with an RMS norm else 0, bits of eps, 0, 0)
// The element i of block b stands for  x_i = r * s_b * X_i  with
// s_b = max_i |v_i| / 32767 and X_i = roundEven(v_i / s_b), where v = x, or
// v = x * w for a fused RMS norm, whose factor r = 1 / sqrt(mean(x^2) + eps)
// the product computes from the blocks' sums of squares (no pass over the
// whole row here: every block is quantized on its own); without a norm r = 1.
// 16-bit precision per block: the relative error of a dot product is ~3e-5.
// A product reads 4 consecutive elements from one 32-bit word of hi and of lo,
// the order of 4 consecutive weights in qs words (integer dot products).

uint act_q_words(uint n) { return (5u * n) / 8u + 4u; }   // 32-bit words per token (2.5 n + 16 bytes)

// Quantizes one block: v[0..7] are its 32 values (already multiplied by the
// norm weight), ss the sum of squares of x over it. Writes hi (2 uvec4), lo
// (2 uvec4) and the block's meta.
void act_q_block(vec4 v[8], float ss, out uvec4 hi[2], out uvec4 lo[2], out uvec4 meta)
{
    vec4 m = max(abs(v[0]), abs(v[1]));
    [[unroll]] for (uint i = 2u; i < 8u; i++) m = max(m, abs(v[i]));
    float amax = max(max(m.x, m.y), max(m.z, m.w));
    float inv = amax > 0.0 ? 32767.0 / amax : 0.0;
    int s0 = 0, s1 = 0;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        ivec4 q = clamp(ivec4(roundEven(v[i] * inv)), ivec4(-32767), ivec4(32767));
        uvec4 u = uvec4(q);
        uint h = ((u.x >> 8) & 0xffu) | (((u.y >> 8) & 0xffu) << 8) | (((u.z >> 8) & 0xffu) << 16) | ((u.w >> 8) << 24);
        uint l = (u.x & 0xffu) | ((u.y & 0xffu) << 8) | ((u.z & 0xffu) << 16) | ((u.w & 0xffu) << 24);
        hi[i >> 2][i & 3u] = h;
        lo[i >> 2][i & 3u] = l;
        int s = q.x + q.y + q.z + q.w;
        if (i < 4u) s0 += s; else s1 += s;
    }
    meta = uvec4(floatBitsToUint(amax / 32767.0), uint(s0), uint(s1), floatBitsToUint(ss));
}
