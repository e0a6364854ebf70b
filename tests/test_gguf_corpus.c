/* Feeds every file of the fuzz seed corpus (tests/fuzz/corpus/gguf) through
 * the GGUF reader and the fuzzer's walk (tests/fuzz/gguf_walk.h). Each file is
 * read into a buffer of exactly its size, so under ASan any over-read fails.
 * Names encode the expectation:
 *   ok-*.gguf                 must open and walk cleanly
 *   bad-<what>-<code>*.gguf   must fail with that vkmix_error code and a message
 *   anything else             (e.g. inputs added by libFuzzer) must not crash */
#define _POSIX_C_SOURCE 200809L
#include "gguf/gguf.h"
#include "testutil.h"
#include "fuzz/gguf_walk.h"

#include <ctype.h>
#include <dirent.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Expected code from "bad-<what>-<code>...": the first all-digit '-' field. */
static int expected_code(const char *name)
{
    const char *p = name + 4;
    while (*p) {
        const char *end = p;
        while (*end && *end != '-' && *end != '.') end++;
        int digits = end > p;
        for (const char *q = p; q < end; q++)
            if (!isdigit((unsigned char)*q)) digits = 0;
        if (digits) return atoi(p);
        if (*end != '-') break;
        p = end + 1;
    }
    return -1;
}

int main(void)
{
    const char *src = getenv("VKMIX_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/gguf", src ? src : ".");
    DIR *d = opendir(dir);
    REQUIRE(d != NULL, "cannot open the seed corpus %s (set VKMIX_SOURCE_DIR)", dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
            REQUIRE(names != NULL, "out of memory");
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);

    int n_ok = 0, n_bad = 0, n_other = 0;
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "cannot open %s", path);
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        unsigned char *data = malloc(size > 0 ? (size_t)size : 1);
        size_t got = size > 0 ? fread(data, 1, (size_t)size, f) : 0;
        fclose(f);
        CHECK(size >= 0 && got == (size_t)size, "cannot read %s", path);
        CHECK(size < 4096, "%s is %ld bytes: seeds must stay under 4 KiB", names[i], size);

        char err[512] = "";
        vkm_gguf *g = NULL;
        vkmix_error e = vkm_gguf_open_memory(size ? data : NULL, (size_t)got, &g, err, sizeof err);
        int walk_bad = 0;
        if (e == VKMIX_OK) {
            walk_bad = vkm_walk_gguf(g);
            vkm_gguf_close(g);
        } else {
            CHECK(g == NULL, "%s: failed open returned a handle", names[i]);
            CHECK(err[0] != 0, "%s: failure without a message", names[i]);
        }
        CHECK(walk_bad == 0, "%s: walk found %d inconsistencies", names[i], walk_bad);
        if (strncmp(names[i], "ok-", 3) == 0) {
            n_ok++;
            CHECK(e == VKMIX_OK, "%s: expected to open, got %d (%s)", names[i], e, err);
        } else if (strncmp(names[i], "bad-", 4) == 0) {
            n_bad++;
            int want = expected_code(names[i]);
            CHECK(want > 0, "%s: no expected code in the name", names[i]);
            CHECK((int)e == want, "%s: got %d (%s), want %d", names[i], e, err, want);
        } else {
            n_other++;
        }
        free(data);
        free(names[i]);
    }
    free(names);
    printf("corpus: %d ok, %d bad, %d other\n", n_ok, n_bad, n_other);
    CHECK(n_ok >= 5 && n_bad >= 30, "the seed corpus looks incomplete (%d ok, %d bad)", n_ok, n_bad);
    return tu_finish("test_gguf_corpus");
}
