// RoPE helpers shared by rope.comp and rope_store.comp.
// sin and cos of a, absolute error ~1e-7 for |a| < 2^17 * pi/2 (about 2e5 rad)
vec2 sincos_(float a)
{
    // pi/2 = P1 + ... + P6; P1..P5 have at most 7 significant bits, so k * Pi is
    // exact for |k| < 2^17 and each subtraction below is exact (Sterbenz) or tiny.
    const float P1 = 1.5625;                     // 0x3fc80000
    const float P2 = 0.0081787109375;            // 0x3c060000
    const float P3 = 0.00011730194091796875;     // 0x38f60000
    const float P4 = 3.129243850708008e-07;      // 0x34a80000
    const float P5 = 9.89530235528946e-10;       // 0x30880000
    const float P6 = 2.5633440682570896e-12;     // 0x2c34611a
    precise float k = floor(a * 0.63661977236758134 + 0.5);
    precise float r = a - k * P1;
    r = r - k * P2;
    r = r - k * P3;
    r = r - k * P4;
    r = r - k * P5;
    r = r - k * P6;
    float z = r * r;
    // minimax polynomials on [-pi/4, pi/4] (Cephes sinf/cosf)
    float s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
    float c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
    int q = int(k) & 3;
    if (q == 0) return vec2(s, c);
    if (q == 1) return vec2(c, -s);
    if (q == 2) return vec2(-s, -c);
    return vec2(-c, s);
}
