/* ssl_ctx lifetime, workspace and profiling. */
#include "framework/core/ctx.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

const char *const ssl_prof_names[SSL_PROF_COUNT] = {
    "conv fwd", "conv bwd", "bn fwd", "bn bwd", "act fwd", "act bwd", "pool fwd", "pool bwd",
    "linear fwd", "linear bwd", "layernorm fwd", "layernorm bwd", "attention fwd",
    "attention bwd", "tokens fwd", "tokens bwd", "store", "loss", "optimizer", "other",
};

void ssl_ctx_init(ssl_ctx *c, const char *backend)
{
    memset(c, 0, sizeof *c);
    c->be = ssl_backend_get(backend);
    SSL_ASSERTF(c->be, "backend '%s' is not available here (not built into this sslrun, or no device)",
                backend);
    c->nthreads = omp_get_max_threads();
    ssl_arena_init(&c->act, c->be->alloc, c->be->free);
    if (c->be->ctx_init) c->be->ctx_init(c);
}

const char *ssl_precision_describe(const ssl_ctx *c)
{
    if (!c->precision_bf16) return "fp32";
    if (c->be->host_memory)
        return c->acts_fp32 ? "bf16 (GEMM / convolution inputs and results rounded to bfloat16, emulated with fp32 "
                              "kernels on this backend: GPU ranks' numbers, not their speed; saved activations fp32)"
                            : "bf16 (GEMM / convolution inputs and results rounded to bfloat16, emulated with fp32 "
                              "kernels on this backend: GPU ranks' numbers, not their speed; saved activations bf16)";
    return c->acts_fp32 ? "bf16 (GEMM / convolution in bfloat16, fp32 accumulation; saved activations fp32)"
                        : "bf16 (GEMM / convolution in bfloat16, fp32 accumulation; saved activations bf16)";
}

void ssl_ctx_free(ssl_ctx *c)
{
    if (c->be->ctx_free) c->be->ctx_free(c);
    ssl_arena_free(&c->act);
    if (c->ws) c->be->free(c->ws);
    memset(c, 0, sizeof *c);
}

void *ssl_ctx_workspace(ssl_ctx *c, size_t bytes)
{
    if (bytes > c->ws_bytes) {
        if (c->ws) c->be->free(c->ws);
        c->ws = c->be->alloc(bytes);
        c->ws_bytes = bytes;
    }
    return c->ws;
}

/* One device buffer of cap floats per call site, made on first use; the copy as `staged` says. */
static float *upload(ssl_ctx *c, float **dev, size_t cap, float *host, size_t n, int staged)
{
    if (c->be->host_memory) return host;
    SSL_ASSERTF(n <= cap, "upload of %zu floats into a buffer of %zu", n, cap);
    if (!*dev) *dev = c->be->alloc(cap * sizeof(float));
    if (staged) c->be->upload_async(c, *dev, host, n * sizeof(float));
    else c->be->upload(*dev, host, n * sizeof(float));
    return *dev;
}

float *ssl_ctx_upload_input(ssl_ctx *c, float **dev, size_t cap, float *host, size_t n)
{
    return upload(c, dev, cap, host, n, 0);
}

float *ssl_ctx_upload_staged(ssl_ctx *c, float **dev, size_t cap, float *host, size_t n)
{
    return upload(c, dev, cap, host, n, 1);
}

void ssl_ctx_step_begin(ssl_ctx *c) { ssl_arena_reset(&c->act); }

static int device_timing(const ssl_ctx *c) { return c->be->timing_mark != NULL; }

double ssl_prof_begin(ssl_ctx *c)
{
    if (!c->prof) return 0.0;
    if (device_timing(c)) return (double)c->be->timing_mark(c);
    c->be->sync(c);
    return ssl_now();
}

void ssl_prof_end(ssl_ctx *c, ssl_prof_bucket b, double t0, double flops)
{
    if (!c->prof) return;
    ssl_prof *p = c->prof;
    p->flops[b] += flops;
    if (device_timing(c)) {
        if (!p->pending) p->pending = ssl_malloc(SSL_PROF_PENDING * sizeof *p->pending);
        /* beyond SSL_PROF_PENDING regions in a step the rest go uncounted (no layer stack is that deep) */
        if (p->npending < SSL_PROF_PENDING)
            p->pending[p->npending++] = (ssl_prof_region){(int)b, (int)t0, c->be->timing_mark(c)};
        return;
    }
    c->be->sync(c);
    p->seconds[b] += ssl_now() - t0;
}

void ssl_prof_flush(ssl_ctx *c)
{
    ssl_prof *p = c->prof;
    if (!p || !device_timing(c)) return;
    for (int i = 0; i < p->npending; i++) {
        const ssl_prof_region *r = &p->pending[i];
        p->seconds[r->bucket] += c->be->timing_seconds(c, r->a, r->b);
    }
    p->npending = 0;
    c->be->timing_reset(c);
}

void ssl_prof_free(ssl_prof *p)
{
    ssl_free(p->pending);
    p->pending = NULL;
    p->npending = 0;
}

/* The arena's move of kept bytes: into a block of their own (the sizing cycle), or down to a mark,
 * which may overlap them: then in chunks no longer than the distance moved, each clear of the bytes
 * it overwrites (in order, as the stream runs them), or through the workspace when that would take
 * many. It never moves bytes up into themselves. */
static void be_copy(void *user, void *dst, const void *src, size_t bytes)
{
    ssl_ctx *c = user;
    char *d = dst;
    const char *s = src;
    const uintptr_t di = (uintptr_t)dst, si = (uintptr_t)src;
    const size_t gap = si > di ? (size_t)(si - di) : SIZE_MAX, n = bytes / sizeof(float);
    if (gap >= bytes) {
        c->be->copy(c, dst, src, n);
    } else if (bytes / gap > 16) {
        float *w = ssl_ctx_workspace(c, bytes);
        c->be->copy(c, w, src, n);
        c->be->copy(c, dst, w, n);
    } else {
        for (size_t o = 0; o < bytes; o += gap)
            c->be->copy(c, (float *)(d + o), (const float *)(s + o), ((bytes - o < gap) ? bytes - o : gap) / sizeof(float));
    }
}

float *ssl_ctx_release_keep(ssl_ctx *c, size_t mark, float *keep, size_t n)
{
    return ssl_arena_release_keep(&c->act, mark, keep, n * sizeof(float), be_copy, c);
}
