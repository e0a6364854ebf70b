/*
 * vkmix_convert_gguf_stats and vkmix-convert on the shipped assets/stories260K-f16.gguf:
 *   - every matrix whose rows hold whole q8_0 blocks becomes q8_0, the others (norms,
 *     ffn_down's rows of 172) keep their type, as the output file's tensors say;
 *   - general.file_type is written: 7 (llama.cpp's MOSTLY_Q8_0; the asset has none),
 *     2 for q4_0, and a second conversion that changes nothing keeps the input's;
 *   - the stats count what the file holds (tensors, converted, bytes);
 *   - the metadata is otherwise copied (general.architecture, the vocabulary size);
 *   - the program prints the summary, and an unknown type fails.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/ggml_types.h"
#include "gguf/gguf.h"
#include "testutil.h"

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

static int32_t file_type_of(const char *path)
{
    char err[256];
    vkm_gguf *g = NULL;
    uint32_t ft = 0;
    if (vkm_gguf_open(path, &g, err, sizeof err) != VKMIX_OK) return -2;
    int32_t r = vkm_gguf_find_key(g, "general.file_type") < 0 ? -1
                : vkm_gguf_get_u32(g, "general.file_type", &ft, err, sizeof err) == VKMIX_OK ? (int32_t)ft : -3;
    vkm_gguf_close(g);
    return r;
}

int main(void)
{
    char *in = tu_source_path("assets/stories260K-f16.gguf");
    REQUIRE(in, "assets/stories260K-f16.gguf not found (VKMIX_SOURCE_DIR)");
    char tmp[] = "/tmp/vkmix_test_convert_XXXXXX";
    REQUIRE(mkdtemp(tmp), "mkdtemp");
    char q8[300], q8b[300], q4[300], out[300], cmd[2048], err[512];
    snprintf(q8, sizeof q8, "%s/q8.gguf", tmp);
    snprintf(q8b, sizeof q8b, "%s/q8b.gguf", tmp);
    snprintf(q4, sizeof q4, "%s/q4.gguf", tmp);
    snprintf(out, sizeof out, "%s/convert.out", tmp);

    CHECK(file_type_of(in) == -1, "the asset has no general.file_type (%d)", file_type_of(in));
    vkmix_convert_stats st;
    memset(&st, 0, sizeof st);
    REQUIRE(vkmix_convert_gguf_stats(in, q8, "q8_0", &st, err, sizeof err) == VKMIX_OK, "convert: %s", err);
    CHECK(st.file_type_in == -1 && st.file_type_out == 7, "file type %d -> %d", st.file_type_in, st.file_type_out);
    CHECK(file_type_of(q8) == 7, "q8_0 output: general.file_type %d, want 7", file_type_of(q8));

    /* the output's tensors against the input's, and the stats */
    vkm_gguf *gi = NULL, *go = NULL;
    REQUIRE(vkm_gguf_open(in, &gi, err, sizeof err) == VKMIX_OK, "%s", err);
    REQUIRE(vkm_gguf_open(q8, &go, err, sizeof err) == VKMIX_OK, "%s", err);
    CHECK(vkm_gguf_n_tensors(gi) == vkm_gguf_n_tensors(go) && st.n_tensors == (uint32_t)vkm_gguf_n_tensors(go),
          "tensors %lld / %lld / stats %u", (long long)vkm_gguf_n_tensors(gi), (long long)vkm_gguf_n_tensors(go),
          st.n_tensors);
    uint32_t conv = 0;
    uint64_t bin = 0, bout = 0;
    for (int64_t i = 0; i < vkm_gguf_n_tensors(gi); i++) {
        const vkm_gguf_tensor *a = vkm_gguf_tensor_at(gi, i);
        int64_t j = vkm_gguf_find_tensor(go, a->name);
        CHECK(j >= 0, "%s missing", a->name);
        if (j < 0) continue;
        const vkm_gguf_tensor *b = vkm_gguf_tensor_at(go, j);
        int matrix = a->n_dims >= 2 && a->ne[1] > 1 && a->ne[0] % 32 == 0;
        uint32_t want = matrix ? VKM_GGML_Q8_0 : a->type;
        CHECK(b->type == want, "%s: type %s, want %s", a->name, vkm_ggml_type_name(b->type), vkm_ggml_type_name(want));
        CHECK(a->n_elements == b->n_elements, "%s: shape", a->name);
        conv += b->type != a->type;
        bin += a->n_bytes;
        bout += b->n_bytes;
    }
    CHECK(conv == 32 && st.n_converted == conv && st.n_kept_type == 0, "converted %u, stats %u (kept %u)", conv,
          st.n_converted, st.n_kept_type);
    CHECK(st.bytes_in == bin && st.bytes_out == bout && bout < bin, "bytes %llu -> %llu, stats %llu -> %llu",
          (unsigned long long)bin, (unsigned long long)bout, (unsigned long long)st.bytes_in,
          (unsigned long long)st.bytes_out);
    /* the rest of the metadata is copied */
    const char *arch_in = NULL, *arch_out = NULL;
    CHECK(vkm_gguf_get_str(gi, "general.architecture", &arch_in, NULL, err, sizeof err) == VKMIX_OK &&
              vkm_gguf_get_str(go, "general.architecture", &arch_out, NULL, err, sizeof err) == VKMIX_OK &&
              !strcmp(arch_in, arch_out),
          "general.architecture copied");
    CHECK(vkm_gguf_n_kv(go) == vkm_gguf_n_kv(gi) + 1 - (vkm_gguf_find_key(gi, "general.alignment") >= 0),
          "keys: %lld in, %lld out (file_type added)", (long long)vkm_gguf_n_kv(gi), (long long)vkm_gguf_n_kv(go));
    vkm_gguf_close(gi);
    vkm_gguf_close(go);

    /* nothing left to convert: the input's file type stays */
    memset(&st, 0, sizeof st);
    CHECK(vkmix_convert_gguf_stats(q8, q8b, "q8_0", &st, err, sizeof err) == VKMIX_OK, "%s", err);
    CHECK(st.n_converted == 0 && st.n_kept_type == 32 && file_type_of(q8b) == 7, "reconvert: %u converted, %u kept, type %d",
          st.n_converted, st.n_kept_type, file_type_of(q8b));
    /* q4_0 (the plain entry point) */
    CHECK(vkmix_convert_gguf(in, q4, "q4_0", err, sizeof err) == VKMIX_OK, "%s", err);
    CHECK(file_type_of(q4) == 2, "q4_0 output: general.file_type %d, want 2", file_type_of(q4));
    CHECK(vkmix_convert_gguf(in, q4, "q5_0", err, sizeof err) == VKMIX_ERROR_INVALID_ARGUMENT && strstr(err, "q5_0"),
          "an unknown type: %s", err);

    /* the program */
    const char *bd = getenv("VKMIX_BINARY_DIR");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-convert' '%s' '%s' q8_0 > '%s' 2>&1", bd ? bd : ".", in, q8b, out);
    CHECK(sh(cmd) == 0, "%s", cmd);
    CHECK(file_has(out, "32 of 48 tensors converted to q8_0 (16 kept: 16 norms, biases or rows q8_0 cannot hold)"),
          "the summary");
    CHECK(file_has(out, "general.file_type -1 (absent) -> 7 (mostly q8_0)"), "the file type line");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-convert' -v '%s' '%s' q8_0 > '%s' 2>&1", bd ? bd : ".", in, q8b, out);
    CHECK(sh(cmd) == 0 && file_has(out, "blk.0.attn_q.weight") && file_has(out, "f16 -> q8_0") &&
              file_has(out, "f32 (kept)"),
          "-v lists the tensors");
    snprintf(cmd, sizeof cmd, "'%s/vkmix-convert' '%s' '%s' q5_0 > '%s' 2>&1", bd ? bd : ".", in, q8b, out);
    CHECK(sh(cmd) == 1 && file_has(out, "is not f16, q8_0 or q4_0"), "an unknown type exits 1");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    sh(cmd);
    free(in);
    return tu_finish("test_convert");
}
