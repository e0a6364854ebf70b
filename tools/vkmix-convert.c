/* vkmix-convert: rewrite a GGUF model's matrices as f16, q8_0 or q4_0.
 *   vkmix-convert IN.gguf OUT.gguf TYPE */
#include <stdio.h>

#include "vkmix.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: vkmix-convert IN.gguf OUT.gguf f16|q8_0|q4_0\n");
        return 2;
    }
    char err[512] = "";
    vkmix_error e = vkmix_convert_gguf(argv[1], argv[2], argv[3], err, sizeof err);
    if (e != VKMIX_OK) {
        fprintf(stderr, "vkmix-convert: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    return 0;
}
