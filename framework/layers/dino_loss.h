/* DINO's loss (REFERENCE §4.2-4.3; the official DINOLoss), in fp32 with double row sums, optionally
 * with the K prototypes SHARDED over the ranks of a communicator.
 *
 * Inputs are head outputs, row-major and view-major (row v*R + i is view v of image i, the order of
 * the official torch.cat / chunk): student s (vs*R, k) for vs = 2 global + L local views, teacher t
 * (2*R, k) for the 2 global views, where k is the number of prototype columns this rank holds.
 *   teacher P = softmax((t - centre) / temp_t) (no gradient); student LS = log_softmax(s / temp_s);
 *   loss = (1 / n_terms) sum over pairs (iq teacher view, v student view, v != iq) of
 *          mean over the R images of -sum_k P[iq] LS[v],   n_terms = 2 (vs - 1).
 *
 * Two modes, chosen by the `comm` passed to ssl_dino_loss_compute:
 *   replicated (comm NULL or world 1): this rank holds all K columns (off = 0, k = K) and its own
 *     R = n images; the loss is this rank's mean, as the official code's (data parallel: the trainer
 *     averages the loss and the gradients over ranks).
 *   sharded (comm of world W > 1): rank r holds columns [off, off + k) = ssl_dino_shard(K, r, W) of
 *     every head output and of the centre, and EVERY RANK PASSES THE SAME ROWS: all ranks' images,
 *     R = W*n (the caller all-gathers the backbone features before the head, as a model-parallel
 *     head needs, and arranges them view-major). Each rank computes its column slice of the rows; the
 *     softmax normalisers are a distributed log-sum-exp (row max all-reduced MAX, then the row sums
 *     of exp all-reduced SUM) and the cross-entropy and monitor sums are all-reduced SUM, so every
 *     rank returns the same loss, which equals the replicated loss over the same R rows, and ds is
 *     its column slice of the replicated ds (tests/mpi/test_dp_dino_loss.c).
 *     Gradient scale: ds is d(loss)/ds for the loss over all W*n images, the mean of the ranks' own
 *     losses. A caller that sends the gathered features' gradients back to their owners (reduce-
 *     scatter SUM over the head's partial sums) and then lets the trainer AVERAGE gradients over
 *     ranks must scale by W (ssl_moco_queue_loss's convention).
 *
 * Monitors (mon, may be NULL): teacher_entropy = mean over the 2R teacher rows of -sum_k p log p;
 * kl_uniform = KL(mean teacher distribution || uniform) = sum_k pbar_k log(K pbar_k), pbar the mean
 * of the 2R rows (0 when the teacher spreads its mass evenly over the batch, log K when the batch
 * collapses onto one prototype; high entropy with low KL is DINO's other collapse, to uniform);
 * center_norm = ||centre|| of the centre the loss used. Sharded: over all K, identical on every rank;
 * replicated with data parallelism: this rank's rows (the trainer averages monitors over ranks).
 * Scratch comes from the activation arena (c->act). */
#ifndef SSL_LAYERS_DINO_LOSS_H
#define SSL_LAYERS_DINO_LOSS_H

#include "framework/backend/backend.h"

#include <stdint.h>

struct ssl_comm;

#define SSL_DINO_TEACHER_VIEWS 2

typedef struct {
    int64_t K;      /* prototypes (the head's out_dim) */
    int64_t off, k; /* this rank's columns [off, off + k); replicated: 0, K */
    int vs;         /* student views: 2 global + local */
    float temp_s;   /* student temperature (0.1) */
    float momentum; /* centre momentum (0.9) */
    float *center;  /* (k) on the context's backend, zeros at init (the official buffer) */
    float *tsum;    /* (k) column sums of teacher rows since the last centre update */
    int64_t trows;  /* rows summed into tsum */
    const struct ssl_backend *be;
} ssl_dino_loss;

typedef struct {
    double teacher_entropy, kl_uniform, center_norm;
} ssl_dino_monitors;

/* Rank `rank` of `world`'s columns of K: k = K/world + (rank < K%world), contiguous in rank order
 * (the split of ssl_moco_queue_shard). */
void ssl_dino_shard(int64_t K, int rank, int world, int64_t *off, int64_t *k);

/* Allocate the centre slice [off, off + k) of K, zeroed. vs >= 2 student views. */
void ssl_dino_loss_init(ssl_dino_loss *L, const struct ssl_backend *be, int64_t K, int64_t off,
                        int64_t k, int vs, float temp_s, float momentum);
void ssl_dino_loss_free(ssl_dino_loss *L);

/* The loss over R images per view (see above); ds (vs*R, k) receives d(loss)/ds (assigned; NULL:
 * loss only). comm: the group the prototypes are sharded over (NULL or world 1: replicated; otherwise
 * L's columns must be this rank's ssl_dino_shard). temp_t: the scheduled teacher temperature. */
double ssl_dino_loss_compute(ssl_ctx *c, struct ssl_comm *comm, const ssl_dino_loss *L, const float *s,
                             const float *t, int64_t R, float temp_t, float *ds, ssl_dino_monitors *mon);

/* update_center, after the optimizer step: centre = m centre + (1 - m) * (column sums of the teacher's
 * raw outputs t (2R, k), all-reduced SUM over row_comm) / (W * 2R), W = row_comm's world.
 * row_comm: the ranks holding DIFFERENT rows (data parallel, replicated mode). Sharded mode passes
 * NULL: every rank already holds all rows, and its centre slice is not another rank's. */
void ssl_dino_center_update(ssl_ctx *c, struct ssl_comm *row_comm, ssl_dino_loss *L,
                            const float *t, int64_t R);
/* The same update in two halves, for a step of several micro-batches (the centre must not move
 * between them): accumulate each micro-batch's teacher rows, apply once after the optimizer step
 * with the mean over all of them. */
void ssl_dino_center_accumulate(ssl_ctx *c, ssl_dino_loss *L, const float *t, int64_t R);
void ssl_dino_center_apply(ssl_ctx *c, struct ssl_comm *row_comm, ssl_dino_loss *L);

#endif
