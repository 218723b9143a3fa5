/* DINO's prototype layer sharded over the ranks (dino.shard_head; a model-parallel head): rank r holds
 * prototypes [off, off + k) = ssl_dino_shard(K, r, W) of the student's V, of the teacher's V and of the
 * centre, so head memory per rank falls as 1/W (the anchors' 65,536-prototype heads run out of memory,
 * dino#269).
 *
 * These rows are the method's own parameters, not the trainer's: they never enter the gradient
 * all-reduce (each rank's gradient of its rows already is the global loss's, computed over every rank's
 * images) and the method updates them after the trainer's optimizer step with the same optimizer, lr and
 * weight decay (ssl_progress.lr/.wd). Per-tensor clipping uses the norm of the whole tensor (the sum of
 * squares all-reduced over the shards), as clip_gradients sees one tensor; optimizers that need other
 * per-tensor norms (LARS, LAMB) are refused at config time. Checkpoints hold V, its optimizer moments,
 * the teacher's V and the centre as sharded arrays, so a run resumes on any rank count.
 *
 * Rows around the layer: every rank's bottleneck rows are all-gathered into one view-major batch of all
 * W*n images (row v*W*n + r*n + j is view v of rank r's image j, the order of a single rank holding the
 * global batch), and the layer's partial input gradients are reduce-scattered back to their owners. */
#ifndef SSL_METHODS_DINO_SHARD_H
#define SSL_METHODS_DINO_SHARD_H

#include "framework/layers/wnorm_linear.h"
#include "framework/optim/optim.h"
#include "io/checkpoint.h"

struct ssl_comm;

/* Prototype rows [off, off + k) of K as drawn for a fresh run, into host memory (k, B): row i from its
 * own stream keyed by (seed, off + i), U(+-1/sqrt(B)) as nn.Linear's weight, so every rank count (and the
 * replicated head) starts from the same prototypes. */
void ssl_dino_prototypes_init(float *rows, int64_t off, int64_t k, int B, uint64_t seed);

typedef struct {
    struct ssl_comm *comm;
    int64_t K, off, k;
    int B;
    ssl_params p, nobuf;    /* one segment, "head.last_layer.weight_v" rows [off, off + k), with a gradient */
    ssl_optim opt;
    float *teacher;         /* (k, B): the teacher's rows */
    ssl_wnorm_linear lin, tlin;
    float clip;             /* per-tensor clipping bound, 0: none */
} ssl_dino_shard_head;

void ssl_dino_shard_head_init(ssl_dino_shard_head *h, ssl_ctx *c, struct ssl_comm *comm, int64_t K, int B,
                              uint64_t seed, const ssl_optim_config *oc, float clip);
void ssl_dino_shard_head_free(ssl_dino_shard_head *h);
/* dino/prototypes (+ _m, _v: the optimizer's moments; _step), teacher/prototypes, all sharded. */
void ssl_dino_shard_head_state(ssl_dino_shard_head *h, ssl_ckpt *ck);
/* A fresh run's teacher rows are the student's. */
void ssl_dino_shard_head_start(ssl_dino_shard_head *h, ssl_ctx *c, int resumed);
void ssl_dino_shard_head_freeze(ssl_dino_shard_head *h, int frozen);

/* (views*n, B) rows of this rank -> (views*W*n, B) of all ranks, view-major (see above). */
ssl_tensor ssl_dino_rows_gather(ssl_ctx *c, struct ssl_comm *comm, ssl_tensor x, int views);
/* The reverse: d(all rows) (views*W*n, B), partial on each rank -> this rank's rows summed over ranks,
 * times scale. */
ssl_tensor ssl_dino_rows_scatter(ssl_ctx *c, struct ssl_comm *comm, ssl_tensor dx, int views, float scale);

/* The rows' scores against this rank's prototypes (the student's, or the teacher's with teacher = 1). */
ssl_tensor ssl_dino_shard_head_forward(ssl_ctx *c, ssl_dino_shard_head *h, ssl_tensor x, int teacher);
/* d(scores) -> partial d(rows); dV accumulates unless frozen. */
ssl_tensor ssl_dino_shard_head_backward(ssl_ctx *c, ssl_dino_shard_head *h, ssl_tensor ds);
/* After the trainer's optimizer step: clip, update with lr / wd, zero the gradient, teacher EMA at m. */
void ssl_dino_shard_head_update(ssl_dino_shard_head *h, ssl_ctx *c, double lr, double wd, double m);

#endif
