/* ssl_ctx: everything an op or layer needs, passed explicitly (no hidden globals): the backend and
 * its private state, the activation arena, a reusable workspace, and optional profiling.
 * Rank and world size live in the communicator, never in globals. */
#ifndef SSL_CORE_CTX_H
#define SSL_CORE_CTX_H

#include "framework/core/arena.h"

#include <stddef.h>

struct ssl_backend;
struct ssl_comm;

/* Time buckets for the per-layer breakdown printed by benchmarks. */
typedef enum {
    SSL_PROF_CONV_FWD, SSL_PROF_CONV_BWD, SSL_PROF_BN_FWD, SSL_PROF_BN_BWD,
    SSL_PROF_ACT_FWD, SSL_PROF_ACT_BWD, SSL_PROF_POOL_FWD, SSL_PROF_POOL_BWD,
    SSL_PROF_LINEAR_FWD, SSL_PROF_LINEAR_BWD, SSL_PROF_LN_FWD, SSL_PROF_LN_BWD,
    SSL_PROF_ATTN_FWD, SSL_PROF_ATTN_BWD, SSL_PROF_TOKENS_FWD, SSL_PROF_TOKENS_BWD,
    SSL_PROF_STORE, /* saved activations packed (core/stash.h) */
    SSL_PROF_LOSS, SSL_PROF_OPTIM, SSL_PROF_OTHER,
    SSL_PROF_COUNT
} ssl_prof_bucket;

extern const char *const ssl_prof_names[SSL_PROF_COUNT];

/* A device backend's profile regions waiting for their timestamps (ssl_prof_flush). */
#define SSL_PROF_PENDING 4096
typedef struct {
    int bucket, a, b;
} ssl_prof_region;

typedef struct {
    double seconds[SSL_PROF_COUNT];
    double flops[SSL_PROF_COUNT];
    ssl_prof_region *pending; /* device timing: regions not yet read (SSL_PROF_PENDING, lazily) */
    int npending;
} ssl_prof;

typedef struct ssl_ctx {
    const struct ssl_backend *be;
    void *be_state;     /* backend-private: handles, streams, primitive caches */
    int nthreads;       /* CPU threads (OMP_NUM_THREADS) */
    ssl_arena act;      /* activations: reset by the training loop at every step */
    void *ws;           /* scratch workspace (im2col, reductions); grows, never shrinks */
    size_t ws_bytes;
    ssl_prof *prof;     /* NULL: no timing */
    /* Data parallelism: ranks of this replica group (NULL: one rank). Ops that see the global batch
     * (NT-Xent negatives) use `comm`; BatchNorm in training mode synchronises its statistics over
     * `bn_comm` (NULL: per-rank statistics). */
    struct ssl_comm *comm;
    struct ssl_comm *bn_comm;
    /* Mixed precision (model.precision bf16): while `bf16` is set, GEMM and convolution ops round
     * their inputs and results to bfloat16 (backend.h). Only the layers whose products torch.autocast
     * runs in bf16 turn it on, around their own ops (ssl_ctx_autocast); losses, norms, evaluation
     * and the optimizer stay fp32. */
    int precision_bf16;
    int bf16;
    /* Under bf16 precision, models keep what their backward reads in bfloat16 (core/stash.h) unless
     * this is set: tests and benchmarks compare the two storages. */
    int acts_fp32;
    /* Gradient readiness (the trainer's overlapped all-reduce, framework/train/grad_sync.h): models
     * report through ssl_ctx_grads_done; NULL when nobody listens. */
    void (*grads_done)(void *u, const float *g, int seg0, int seg1);
    void *grads_done_u;
} ssl_ctx;

/* A model's backward has finished its call's gradients of parameter segments [seg0, seg1) in the
 * gradient buffer g (w->g; NULL, a teacher's forward-only weights, reports nothing). */
static inline void ssl_ctx_grads_done(ssl_ctx *c, const float *g, int seg0, int seg1)
{
    if (c->grads_done && g) c->grads_done(c->grads_done_u, g, seg0, seg1);
}

/* The run's precision for plan lines: "fp32", or bf16 and how the backend runs it. */
const char *ssl_precision_describe(const ssl_ctx *c);

/* Enter (on = 1) or leave (0) a layer's bf16 region: a no-op in fp32 runs. */
static inline void ssl_ctx_autocast(ssl_ctx *c, int on) { c->bf16 = on && c->precision_bf16; }

/* Create a context on the named backend ("cpu"; "cuda" when built). */
void ssl_ctx_init(ssl_ctx *c, const char *backend);
void ssl_ctx_free(ssl_ctx *c);
/* Workspace of at least `bytes`; contents undefined; valid until the next call. */
void *ssl_ctx_workspace(ssl_ctx *c, size_t bytes);
/* Host floats where c's ops can read them: `host` itself on a host-memory backend (CPU); otherwise
 * uploaded into *dev, which is allocated on first use with room for `cap` floats (n <= cap) and kept
 * for the next call (the caller frees it with c->be->free). One upload per batch, no allocation after
 * the first. */
float *ssl_ctx_upload_input(ssl_ctx *c, float **dev, size_t cap, float *host, size_t n);
/* The same for a batch staged in the backend's page-locked memory (host_alloc: the loader's slots),
 * queued in c's stream (upload_async) instead of waited for. */
float *ssl_ctx_upload_staged(ssl_ctx *c, float **dev, size_t cap, float *host, size_t n);
/* ssl_arena_release_keep on the activations with the backend's copy: everything allocated since
 * `mark` is dead but the n floats at keep, which move to the mark; returns their new address. */
float *ssl_ctx_release_keep(ssl_ctx *c, size_t mark, float *keep, size_t n);
/* Start a step: forget all activations (no allocation after the first step). */
void ssl_ctx_step_begin(ssl_ctx *c);

/* Profiling helpers: begin returns a timestamp (0 when disabled). On a host-memory backend they read
 * the wall clock; on a device backend with timing marks they queue timestamps in the stream and never
 * wait (the regions are read by ssl_prof_flush, once per step), so profiling stays on the hot path
 * without serialising it. */
double ssl_prof_begin(ssl_ctx *c);
void ssl_prof_end(ssl_ctx *c, ssl_prof_bucket b, double t0, double flops);
/* Add the pending device regions' times to c->prof (waits for the last one); a no-op elsewhere. */
void ssl_prof_flush(ssl_ctx *c);
/* Free what profiling allocated in p. */
void ssl_prof_free(ssl_prof *p);

#endif
