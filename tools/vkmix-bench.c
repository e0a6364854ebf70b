/* vkmix-bench: the headless benchmark.
 *
 *   vkmix-bench kernels [options]   time KV quantize/dequantize against a copy kernel
 *
 * Output: a Markdown table, or -o json / -o csv for machines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkmix.h"

typedef struct {
    int device;
    const char *format; /* md, json, csv */
    uint32_t heads, tokens, head_dim, group, reps;
    uint32_t bits[8];
    int n_bits;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkmix-bench kernels [options]\n"
            "  --heads N        KV heads (default 8)\n"
            "  --tokens N       tokens per head (default: 131072 on GPUs, 8192 on CPU devices)\n"
            "  --head-dim N     head dimension (default 128)\n"
            "  --group N        group size (default 32)\n"
            "  --bits LIST      comma list of widths (default 2,3,4,8)\n"
            "  -r N             timed repetitions, median reported (default 20)\n"
            "  -o md|json|csv   output format (default md)\n"
            "  --device N       Vulkan device index (default: automatic)\n"
            "  --list-devices   list Vulkan devices and exit\n");
}

static int parse_list(const char *s, uint32_t *out, int cap)
{
    int n = 0;
    while (*s && n < cap) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0) return -1;
        out[n++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int list_devices(void)
{
    vkmix_device_info d[16];
    uint32_t n = 0;
    char err[512] = "";
    vkmix_error e = vkmix_list_devices(d, 16, &n, err, sizeof err);
    if (e != VKMIX_OK) {
        fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    for (uint32_t i = 0; i < n && i < 16; i++)
        printf("%u: %s (%s, %llu MiB)%s\n", i, d[i].name,
               d[i].type == VKMIX_DEVICE_DISCRETE ? "discrete" : d[i].type == VKMIX_DEVICE_CPU ? "cpu" : "other",
               (unsigned long long)(d[i].device_local_bytes >> 20), d[i].usable ? "" : " [unusable]");
    return 0;
}

static int run_kernels(const opts *o)
{
    char err[1024] = "";
    vkmix_context_params p;
    vkmix_context_default_params(&p);
    p.device_index = o->device;
    p.error_buf = err;
    p.error_buf_size = sizeof err;
    vkmix_context *ctx = NULL;
    vkmix_error e = vkmix_context_create(&p, &ctx);
    if (e != VKMIX_OK) {
        fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), err);
        return 1;
    }
    vkmix_device_info info;
    vkmix_context_device_info(ctx, &info);
    uint32_t tokens = o->tokens ? o->tokens : (info.type == VKMIX_DEVICE_CPU ? 8192 : 131072);
    tokens = tokens / o->group * o->group;
    int md = !strcmp(o->format, "md"), js = !strcmp(o->format, "json"), csv = !strcmp(o->format, "csv");
    if (md) {
        printf("device: %s\n", info.name);
        printf("shape: %u heads x %u tokens x head_dim %u, group %u, median of %u\n\n", o->heads, tokens, o->head_dim,
               o->group, o->reps);
        printf("| kernel | bits | MiB moved | time (us) | GB/s | vs copy |\n|---|---|---|---|---|---|\n");
    } else if (js) {
        printf("{\"device\": \"%s\", \"heads\": %u, \"tokens\": %u, \"head_dim\": %u, \"group\": %u, \"results\": [",
               info.name, o->heads, tokens, o->head_dim, o->group);
    } else if (csv) {
        printf("device,kernel,kind,bits,bytes,time_us,gbps,ratio_vs_copy\n");
    }
    int first = 1, rc = 0;
    for (int bi = 0; bi < o->n_bits && !rc; bi++)
        for (int kind = 0; kind < 2 && !rc; kind++) {
            vkmix_kvq_shape s = { kind ? VKMIX_KV_VALUES : VKMIX_KV_KEYS, o->bits[bi], o->group, o->head_dim,
                                  o->heads, tokens };
            vkmix_kvq_bench b;
            e = vkmix_kvq_bench_run(ctx, &s, o->reps, &b);
            if (e != VKMIX_OK) {
                fprintf(stderr, "vkmix-bench: %s: %s\n", vkmix_strerror(e), vkmix_context_last_error(ctx));
                rc = 1;
                break;
            }
            double copy_gbps = b.copy_bytes / (b.copy_ms * 1e6);
            struct { const char *name; double ms, bytes; } rows[3] = {
                { "copy", b.copy_ms, b.copy_bytes },
                { "quantize", b.quant_ms, b.quant_bytes },
                { "dequantize", b.dequant_ms, b.dequant_bytes },
            };
            const char *kn = kind ? "values" : "keys";
            for (int r = 0; r < 3; r++) {
                double gbps = rows[r].bytes / (rows[r].ms * 1e6);
                char name[64];
                snprintf(name, sizeof name, "%s %s", rows[r].name, r ? kn : "");
                if (md)
                    printf("| %s | %u | %.1f | %.1f | %.1f | %.2f |\n", name, o->bits[bi], rows[r].bytes / 1048576.0,
                           rows[r].ms * 1e3, gbps, gbps / copy_gbps);
                else if (js) {
                    printf("%s{\"kernel\": \"%s\", \"kind\": \"%s\", \"bits\": %u, \"bytes\": %.0f, \"time_us\": %.3f, "
                           "\"gbps\": %.2f, \"ratio_vs_copy\": %.4f}",
                           first ? "" : ", ", rows[r].name, kn, o->bits[bi], rows[r].bytes, rows[r].ms * 1e3, gbps,
                           gbps / copy_gbps);
                    first = 0;
                } else if (csv)
                    printf("\"%s\",%s,%s,%u,%.0f,%.3f,%.2f,%.4f\n", info.name, rows[r].name, kn, o->bits[bi],
                           rows[r].bytes, rows[r].ms * 1e3, gbps, gbps / copy_gbps);
            }
        }
    if (js) printf("]}\n");
    vkmix_context_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = { .device = -1, .format = "md", .heads = 8, .tokens = 0, .head_dim = 128, .group = 32, .reps = 20,
               .bits = { 2, 3, 4, 8 }, .n_bits = 4 };
    if (argc < 2) { usage(stderr); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "--help") || !strcmp(mode, "-h")) { usage(stdout); return 0; }
    if (!strcmp(mode, "--list-devices")) return list_devices();
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { fprintf(stderr, "vkmix-bench: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "--heads")) { NEEDV(); o.heads = (uint32_t)atoi(v); }
        else if (!strcmp(a, "--tokens")) { NEEDV(); o.tokens = (uint32_t)atoi(v); }
        else if (!strcmp(a, "--head-dim")) { NEEDV(); o.head_dim = (uint32_t)atoi(v); }
        else if (!strcmp(a, "--group")) { NEEDV(); o.group = (uint32_t)atoi(v); }
        else if (!strcmp(a, "-r")) { NEEDV(); o.reps = (uint32_t)atoi(v); }
        else if (!strcmp(a, "-o")) { NEEDV(); o.format = v; }
        else if (!strcmp(a, "--device")) { NEEDV(); o.device = atoi(v); }
        else if (!strcmp(a, "--bits")) {
            NEEDV();
            o.n_bits = parse_list(v, o.bits, 8);
            if (o.n_bits <= 0) { fprintf(stderr, "vkmix-bench: bad --bits %s\n", v); return 2; }
        } else { fprintf(stderr, "vkmix-bench: unknown option %s\n", a); usage(stderr); return 2; }
    }
    if (strcmp(o.format, "md") && strcmp(o.format, "json") && strcmp(o.format, "csv")) {
        fprintf(stderr, "vkmix-bench: -o must be md, json or csv\n");
        return 2;
    }
    if (!o.heads || !o.head_dim || !o.group || !o.reps) { fprintf(stderr, "vkmix-bench: sizes must be positive\n"); return 2; }
    if (!strcmp(mode, "kernels")) return run_kernels(&o);
    fprintf(stderr, "vkmix-bench: unknown mode %s\n", mode);
    usage(stderr);
    return 2;
}
