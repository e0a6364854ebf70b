/* The thread contract of include/vkmix.h: objects derived from a context may be
 * used from their own threads at the same time.
 *
 *   - 4 threads, each with its own session on ONE model (two f16 caches, two
 *     quantized ones), prefill + greedy decode; their logits and tokens must be
 *     bit-identical to the same runs done serially before;
 *   - a 5th thread batch-decodes two sessions of the same model at the same
 *     time (vkmix_batch_decode, which used to share scratch held by the model);
 *   - 2 threads each create their own context, load the model and run a
 *     session, against the same serial reference;
 *   - every thread provokes errors of its own between steps and checks that
 *     vkmix_context_last_error names its own bad token (messages are per thread);
 *   - an "application" thread submits its own work to the context's queue all
 *     along, holding vkmix_context_lock_queue around each vkQueueSubmit (the
 *     layer's thread-safety check reports any unsynchronized use of the queue),
 *     and checks the buffer it fills each time.
 * All with the validation layer on (its thread-safety checks included): any
 * message fails the test. Threads record their failures; main() checks them. */
#include <pthread.h>
#include <string.h>

#include "core/context.h"
#include "testutil.h"

/* The application's own submissions to the queue vkmix uses, until *stop. */
typedef struct app_job {
    vkmix_context *ctx;
    int stop;
    int submits, failed;
} app_job;

static void *app_thread(void *arg)
{
    app_job *a = arg;
    vkm_device *dev = &a->ctx->dev;
    vkm_cmd c;  /* the application's pool, command buffer and fence (through the library's tables) */
    vkm_buffer b;
    memset(&b, 0, sizeof b);
    if (vkm_cmd_create(&c, dev, a->ctx, false) != VKMIX_OK || vkm_buffer_create(dev, &b, 4096, VKM_MEM_READBACK) != VKMIX_OK)
        a->failed = 1;
    while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE) && !a->failed) {
        uint32_t value = 0x1000u + (uint32_t)a->submits;
        vkm_cmd_begin(&c);
        vkm_cmd_fill(&c, &b, value);
        VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                               .dstAccessMask = VK_ACCESS_HOST_READ_BIT };
        dev->vk.vkCmdPipelineBarrier(c.cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL,
                                     0, NULL);
        dev->vk.vkEndCommandBuffer(c.cb);
        VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c.cb };
        vkmix_context_lock_queue(a->ctx);
        VkResult r = dev->vk.vkQueueSubmit(dev->queue, 1, &si, c.fence);
        vkmix_context_unlock_queue(a->ctx);
        if (r != VK_SUCCESS || dev->vk.vkWaitForFences(dev->device, 1, &c.fence, VK_TRUE, UINT64_MAX) != VK_SUCCESS) {
            a->failed = 1;
            break;
        }
        dev->vk.vkResetFences(dev->device, 1, &c.fence);
        for (int i = 0; i < 1024; i++)
            if (((const uint32_t *)b.mapped)[i] != value) a->failed = 1;
        a->submits++;
    }
    vkm_buffer_destroy(dev, &b);
    vkm_cmd_destroy(&c);
    return NULL;
}

#define N_PROMPT 56
#define N_STEPS 16  /* quantized caches pack their first group at position 64 */

typedef struct {
    const char *name;
    const char *kv;        /* NULL: f16 */
    uint32_t window;
    uint64_t seed;         /* of the prompt */
} job_cfg;

static const job_cfg k_jobs[4] = {
    { "f16 a", NULL, 0, 1 },
    { "k4v2 w32", "k4v2", 32, 2 },
    { "f16 b", NULL, 0, 3 },
    { "k2v4 w32", "k2v4", 32, 4 },
};

typedef struct {
    int tid;
    vkmix_model *model;           /* shared; NULL: the thread makes its own context and model */
    const char *model_path;
    job_cfg cfg;
    int batch;                    /* 1: two sessions decoded with vkmix_batch_decode */
    uint32_t n_vocab;
    float *logits;                /* [rows][N_STEPS + 1][n_vocab] */
    int32_t tokens[2][N_STEPS];
    int failed;
    char why[512];
    uint32_t validation;          /* messages of the thread's own context */
} job;

static void fail(job *j, const char *fmt, const char *detail)
{
    if (!j->failed) snprintf(j->why, sizeof j->why, "%s: %s", fmt, detail ? detail : "");
    j->failed = 1;
}

static void prompt_of(uint64_t seed, uint32_t V, int32_t *out)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (int i = 0; i < N_PROMPT; i++) out[i] = (int32_t)(tu_rng_u32(&r) % V);
}

static int32_t argmax(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

/* A failing call of this thread: its message must name this thread's token. */
static void own_error(job *j, vkmix_session *s, int step)
{
    int32_t bad = (int32_t)j->n_vocab + 1000 * (j->tid + 1) + step;
    vkmix_error e = vkmix_session_eval(s, &bad, 1, NULL, 0);
    char want[32];
    snprintf(want, sizeof want, "token %d ", bad);
    const char *msg = vkmix_context_last_error(NULL);
    if (e != VKMIX_ERROR_INVALID_ARGUMENT) fail(j, "a bad token was accepted", want);
    else if (!strstr(msg, want)) fail(j, "the error message is not this thread's", msg);
}

static void run(job *j)
{
    vkmix_context *own = NULL;
    vkmix_model *m = j->model;
    if (!m) {
        if (!(own = tu_context())) return fail(j, "context", "");
        if (vkmix_model_load(own, j->model_path, NULL, &m) != VKMIX_OK)
            return fail(j, "model", vkmix_context_last_error(own));
    }
    const uint32_t V = j->n_vocab, rows = j->batch ? 2 : 1;
    vkmix_session_params sp;
    vkmix_session_default_params(&sp);
    sp.n_ctx = 128;
    sp.kv = j->cfg.kv;
    sp.kv_window = j->cfg.window;
    vkmix_session *s[2] = { NULL, NULL };
    for (uint32_t r = 0; r < rows && !j->failed; r++)
        if (vkmix_session_create(m, &sp, &s[r]) != VKMIX_OK) fail(j, "session", vkmix_context_last_error(NULL));
    int32_t prompt[N_PROMPT];
    for (uint32_t r = 0; r < rows && !j->failed; r++) {
        prompt_of(j->cfg.seed + r * 100, V, prompt);
        if (vkmix_session_eval(s[r], prompt, N_PROMPT, j->logits + (size_t)r * (N_STEPS + 1) * V, 0) != VKMIX_OK)
            fail(j, "prefill", vkmix_context_last_error(NULL));
    }
    for (int t = 0; t < N_STEPS && !j->failed; t++) {
        int32_t tok[2];
        for (uint32_t r = 0; r < rows; r++) {
            tok[r] = argmax(j->logits + ((size_t)r * (N_STEPS + 1) + t) * V, V);
            j->tokens[r][t] = tok[r];
        }
        if (t % 4 == 0) own_error(j, s[0], t);
        if (j->batch) {
            float *out = malloc((size_t)2 * V * 4);
            if (vkmix_batch_decode(s, tok, 2, out) != VKMIX_OK) fail(j, "batch decode", vkmix_context_last_error(NULL));
            for (uint32_t r = 0; r < 2; r++)
                memcpy(j->logits + ((size_t)r * (N_STEPS + 1) + t + 1) * V, out + (size_t)r * V, (size_t)V * 4);
            free(out);
        } else if (vkmix_session_eval(s[0], tok, 1, j->logits + (size_t)(t + 1) * V, 0) != VKMIX_OK) {
            fail(j, "decode", vkmix_context_last_error(NULL));
        }
    }
    for (uint32_t r = 0; r < rows; r++) vkmix_session_free(s[r]);
    if (own) {
        vkmix_model_free(m);
        j->validation = tu_context_done(own);
    }
}

static void *thread_main(void *arg)
{
    run(arg);
    return NULL;
}

static job make_job(int tid, vkmix_model *m, const char *path, const job_cfg *cfg, int batch, uint32_t V)
{
    job j;
    memset(&j, 0, sizeof j);
    j.tid = tid;
    j.model = m;
    j.model_path = path;
    j.cfg = *cfg;
    j.batch = batch;
    j.n_vocab = V;
    j.logits = calloc((size_t)2 * (N_STEPS + 1) * V, 4);
    return j;
}

static void compare(const job *par, const job *ser, const char *what)
{
    CHECK(!par->failed, "%s (threaded): %s", what, par->why);
    CHECK(!ser->failed, "%s (serial): %s", what, ser->why);
    if (par->failed || ser->failed) return;
    uint32_t rows = par->batch ? 2 : 1;
    size_t n = (size_t)rows * (N_STEPS + 1) * par->n_vocab;
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(&par->logits[i], &ser->logits[i], 4)) first = i;
    CHECK(first == n, "%s: threaded logits differ from the serial run at element %zu (%g vs %g)", what, first,
          first < n ? par->logits[first] : 0.0, first < n ? ser->logits[first] : 0.0);
    CHECK(!memcmp(par->tokens, ser->tokens, sizeof par->tokens), "%s: greedy tokens differ", what);
    CHECK(par->validation == 0, "%s: %u validation messages in the thread's context", what, par->validation);
    printf("%-22s %u row(s), %d greedy tokens: identical to the serial run\n", what, rows, N_STEPS);
}

int main(void)
{
    char *path = tu_source_path("assets/stories260K-f16.gguf");
    REQUIRE(path, "assets/stories260K-f16.gguf not found (VKMIX_SOURCE_DIR)");
    vkmix_context *ctx = tu_context();
    REQUIRE(ctx, "no Vulkan context");
    vkmix_model *m = NULL;
    REQUIRE(vkmix_model_load(ctx, path, NULL, &m) == VKMIX_OK, "model: %s", vkmix_context_last_error(ctx));
    vkmix_model_info info;
    vkmix_model_get_info(m, &info);
    const uint32_t V = info.n_vocab;

    /* jobs: 4 sessions on one model, one batch of two sessions, two contexts */
    enum { N_JOBS = 7 };
    job ser[N_JOBS], par[N_JOBS];
    const char *names[N_JOBS];
    for (int k = 0; k < N_JOBS; k++) {
        const job_cfg *cfg = k < 4 ? &k_jobs[k] : k == 4 ? &k_jobs[1] : &k_jobs[k - 5];
        int batch = k == 4;
        vkmix_model *shared = k < 5 ? m : NULL;
        ser[k] = make_job(k, shared, path, cfg, batch, V);
        par[k] = make_job(k, shared, path, cfg, batch, V);
        names[k] = k < 4 ? cfg->name : k == 4 ? "batch of 2 (k4v2)" : k == 5 ? "own context, f16" : "own context, k4v2";
    }
    for (int k = 0; k < N_JOBS; k++) run(&ser[k]);

    pthread_t th[N_JOBS], app_th;
    app_job app = { ctx, 0, 0, 0 };
    REQUIRE(pthread_create(&app_th, NULL, app_thread, &app) == 0, "pthread_create");
    for (int k = 0; k < N_JOBS; k++)
        REQUIRE(pthread_create(&th[k], NULL, thread_main, &par[k]) == 0, "pthread_create");
    for (int k = 0; k < N_JOBS; k++) pthread_join(th[k], NULL);
    __atomic_store_n(&app.stop, 1, __ATOMIC_RELEASE);
    pthread_join(app_th, NULL);
    CHECK(!app.failed && app.submits > 0, "the application's own submissions to the shared queue: %d, %s", app.submits,
          app.failed ? "FAILED" : "all filled their buffer");
    printf("application thread: %d submissions of its own to the shared queue, under vkmix_context_lock_queue\n",
           app.submits);

    for (int k = 0; k < N_JOBS; k++) compare(&par[k], &ser[k], names[k]);
    /* a second context on the same device computes the very same thing */
    CHECK(!memcmp(ser[5].logits, ser[0].logits, (size_t)(N_STEPS + 1) * V * 4), "own context f16 == shared f16");
    CHECK(!memcmp(ser[6].logits, ser[1].logits, (size_t)(N_STEPS + 1) * V * 4), "own context k4v2 == shared k4v2");
    /* and a quantized cache is not the f16 one (the runs are not all alike) */
    job q = make_job(9, m, path, &k_jobs[1], 0, V);
    q.cfg.kv = NULL;
    run(&q);
    CHECK(!q.failed && memcmp(q.logits, ser[1].logits, (size_t)(N_STEPS + 1) * V * 4) != 0,
          "k4v2 logits differ from f16 logits of the same prompt");
    free(q.logits);
    for (int k = 0; k < N_JOBS; k++) {
        free(ser[k].logits);
        free(par[k].logits);
    }
    vkmix_model_free(m);
    CHECK(tu_context_done(ctx) == 0, "validation messages");
    free(path);
    return tu_finish("test_threads");
}
