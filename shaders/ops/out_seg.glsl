// Outputs in up to three buffers: output row R (of all rows, row_base
// included) of token c goes to y0[c][R] when R < sa, to y1[c][R - sa] when
// R < sb, else to y2[c][R - sb] (each token-major, rows of sa, sb - sa and
// n_out - sb). One output (sa = sb = n_out) is plain y0 = [n_tok][n_out];
// three are the q, k and v of the fused Q/K/V product. The including shader
// declares y0 (binding 2), y1 (4) and y2 (5); a single output binds y0's
// buffer to all three.
void out_store(uint R, uint c, float v, bool add, uint n_out, uint sa, uint sb)
{
    if (R < sa) {
        uint o = c * sa + R;
        y0[o] = add ? y0[o] + v : v;
    } else if (R < sb) {
        uint o = c * (sb - sa) + R - sa;
        y1[o] = add ? y1[o] + v : v;
    } else {
        uint o = c * (n_out - sb) + R - sb;
        y2[o] = add ? y2[o] + v : v;
    }
}
