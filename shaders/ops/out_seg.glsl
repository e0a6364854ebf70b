// Where output row R (of all rows, row_base included) of token c goes in y:
// the rows are cut into up to three segments [0, sa), [sa, sb), [sb, n_out),
// each stored token-major on its own: y = [n_tok][sa] [n_tok][sb - sa]
// [n_tok][n_out - sb]. One segment (sa = sb = n_out) is plain [n_tok][n_out];
// three are the q, k and v of the fused Q/K/V product.
uint out_index(uint R, uint c, uint n_out, uint n_tok, uint sa, uint sb)
{
    if (R < sa) return c * sa + R;
    if (R < sb) return n_tok * sa + c * (sb - sa) + (R - sa);
    return n_tok * sb + c * (n_out - sb) + (R - sb);
}
