/* The gradient all-reduce in buckets started while backward still runs (comm.overlap).
 * Buckets are runs of whole parameter segments taken from the last segment backwards (the order in
 * which backward finishes them), about comm.bucket_mb each. In the last micro-step of a step the
 * models report each block's segments as its backward finishes (ssl_ctx_grads_done), and a bucket
 * starts its all-reduce (ssl_dev_allreduce_start: NCCL's own stream on a GPU) once every segment in it
 * has been reported as often as in the invocation's first step, which ran without early starts and
 * counted (every rank checks that all counted alike). Segments no model reports (heads, stems, frozen
 * ones) hold their bucket until the end, where the rest start in bucket order and all are waited for.
 * A segment reported again after its bucket started means backward changed shape between steps: the
 * run stops naming it rather than average a partial gradient. The result equals one all-reduce after
 * backward (the same averaged sums, element by element). */
#ifndef SSL_TRAIN_GRAD_SYNC_H
#define SSL_TRAIN_GRAD_SYNC_H

#include "framework/core/ctx.h"
#include "framework/tensor/params.h"

#include <stdint.h>

struct ssl_comm;

typedef struct {
    size_t off, n;  /* floats of the gradient buffer */
    int seg0, seg1; /* its segments [seg0, seg1) */
    int started;
} ssl_grad_bucket;

typedef struct {
    int on;                  /* overlap: buckets; off: one all-reduce after backward */
    ssl_ctx *ctx;
    struct ssl_comm *comm;
    const ssl_params *params;
    ssl_grad_bucket *b;
    int nb;
    int *bucket_of;          /* per segment */
    int *want, *got;         /* per segment: reports expected in the last micro-step / seen in this one */
    int learned;             /* want[] counted (after the invocation's first step) */
    int64_t early, total;    /* buckets started during backward / in all (the run's report) */
} ssl_grad_sync;

/* Plan the buckets for p's gradients; on = 0 makes finish a single all-reduce. */
void ssl_grad_sync_init(ssl_grad_sync *g, int on, ssl_ctx *c, struct ssl_comm *comm, const ssl_params *p,
                        double bucket_mb);
/* Before the step's last micro-step: listen to the models' reports. */
void ssl_grad_sync_begin(ssl_grad_sync *g);
/* After it: stop listening, start what is left, wait for all: params->grad is averaged over ranks. */
void ssl_grad_sync_finish(ssl_grad_sync *g);
void ssl_grad_sync_free(ssl_grad_sync *g);

#endif
