/* The context API: versions, error strings, device listing and choice, errors. */
#include <string.h>

#include "testutil.h"
#include "vkmix_bench.h"

int main(void)
{
    CHECK(vkmix_version_number() == VKMIX_VERSION_NUMBER, "run-time version %u", vkmix_version_number());
    CHECK(!strcmp(vkmix_version_string(), VKMIX_VERSION_STRING), "version string");
    CHECK(VKMIX_ERROR_OUT_OF_DEVICE_MEMORY == 3 && VKMIX_ERROR_BAD_PROFILE == 20, "pinned error values");
    for (int e = 0; e < VKMIX_ERROR_COUNT_; e++) {
        const char *s = vkmix_strerror((vkmix_error)e);
        CHECK(s && *s && strcmp(s, "unknown error"), "strerror(%d) = %s", e, s);
    }
    CHECK(!strcmp(vkmix_strerror((vkmix_error)999), "unknown error"), "unknown code");

    uint32_t n = 0;
    char err[512] = "";
    vkmix_device_info d[8];
    CHECK(vkmix_list_devices(d, 8, &n, err, sizeof err) == VKMIX_OK, "list: %s", err);
    CHECK(n >= 1, "at least one device (lavapipe)");
    int usable = 0;
    for (uint32_t i = 0; i < n && i < 8; i++) usable += d[i].usable;
    CHECK(usable >= 1, "a usable device");

    vkmix_context_params p;
    vkmix_context_default_params(&p);
    CHECK(p.device_index == -1 && p.external == NULL, "defaults");
    p.device_index = 57;
    p.error_buf = err;
    p.error_buf_size = sizeof err;
    vkmix_context *ctx = (vkmix_context *)&p; /* must be overwritten with NULL */
    CHECK(vkmix_context_create(&p, &ctx) == VKMIX_ERROR_NO_DEVICE && ctx == NULL, "bad index refused");
    CHECK(strstr(err, "57") != NULL, "message names the index: %s", err);
    CHECK(vkmix_context_create(&p, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "NULL out refused");

    ctx = tu_context();
    REQUIRE(ctx, "context");
    vkmix_device_info info;
    CHECK(vkmix_context_device_info(ctx, &info) == VKMIX_OK && info.name[0], "device info");
    char desc[2048];
    CHECK(vkmix_context_describe(ctx, desc, sizeof desc) == VKMIX_OK && strstr(desc, "subgroup size"), "describe");
    printf("%s", desc);
    CHECK(!strcmp(vkmix_context_last_error(ctx), ""), "no error yet");
    /* a bad kv shape gives an error and a message through the context */
    vkmix_kvq_shape s = { VKMIX_KV_KEYS, 7, 32, 8, 1, 32 };
    uint16_t x[256] = { 0 };
    CHECK(vkmix_kvq_roundtrip_gpu(ctx, &s, x, NULL, NULL, NULL) == VKMIX_ERROR_INVALID_ARGUMENT, "bits 7 refused");
    CHECK(strstr(vkmix_context_last_error(ctx), "bits") != NULL, "message: %s", vkmix_context_last_error(ctx));
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    vkmix_context_free(NULL);
    return tu_finish("test_context");
}
