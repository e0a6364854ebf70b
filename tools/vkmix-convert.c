/* vkmix-convert: rewrite a GGUF model's matrices as f16, q8_0 or q4_0.
 *   vkmix-convert [-v] IN.gguf OUT.gguf TYPE
 * Prints what it converted (with -v, every tensor) and the general.file_type written. */
#include <stdio.h>
#include <string.h>

#include "vkmix.h"

static const char *ftype_name(int32_t t)
{
    switch (t) {
    case 0: return "all f32";
    case 1: return "mostly f16";
    case 2: return "mostly q4_0";
    case 3: return "mostly q4_1";
    case 7: return "mostly q8_0";
    case 32: return "mostly bf16";
    default: return t < 0 ? "absent" : "other";
    }
}

static void on_tensor(const char *name, const char *from, const char *to, void *user)
{
    (void)user;
    if (strcmp(from, to)) printf("  %-40s %s -> %s\n", name, from, to);
    else printf("  %-40s %s (kept)\n", name, from);
}

int main(int argc, char **argv)
{
    int verbose = 0, a = 1;
    if (argc > 1 && (!strcmp(argv[1], "-v") || !strcmp(argv[1], "--verbose"))) verbose = 1, a = 2;
    if (argc - a != 3) {
        fprintf(stderr, "usage: vkmix-convert [-v] IN.gguf OUT.gguf f16|q8_0|q4_0\n"
                        "  matrices whose rows hold whole blocks (a multiple of 32) take the type; norms,\n"
                        "  biases and other rows stay as they are; general.file_type is updated; -v lists\n"
                        "  every tensor\n");
        return 2;
    }
    const char *in = argv[a], *out = argv[a + 1], *type = argv[a + 2];
    char err[512] = "";
    vkmix_convert_stats st;
    memset(&st, 0, sizeof st);
    if (verbose) st.on_tensor = on_tensor;
    vkmix_error e = vkmix_convert_gguf_stats(in, out, type, &st, err, sizeof err);
    if (e != VKMIX_OK) {
        fprintf(stderr, "vkmix-convert: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    uint32_t kept = st.n_tensors - st.n_converted;
    printf("vkmix-convert: %s -> %s: %u of %u tensors converted to %s", in, out, st.n_converted, st.n_tensors, type);
    if (kept) {
        printf(" (%u kept:", kept);
        if (st.n_kept_type) printf(" %u already %s%s", st.n_kept_type, type, kept > st.n_kept_type ? "," : "");
        if (kept > st.n_kept_type) printf(" %u norms, biases or rows %s cannot hold", kept - st.n_kept_type, type);
        printf(")");
    }
    printf("; tensor data %.2f MiB -> %.2f MiB\n", (double)st.bytes_in / 1048576.0, (double)st.bytes_out / 1048576.0);
    if (st.n_converted)
        printf("vkmix-convert: general.file_type %d (%s) -> %d (%s)\n", st.file_type_in, ftype_name(st.file_type_in),
               st.file_type_out, ftype_name(st.file_type_out));
    else
        printf("vkmix-convert: nothing to convert: general.file_type kept (%d, %s)\n", st.file_type_in,
               ftype_name(st.file_type_in));
    return 0;
}
