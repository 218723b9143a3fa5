/* MoCo's key queue (REFERENCE §2.2), sharded over ranks (§2.8): rank r of W holds the contiguous
 * global keys [off, off + n), so queue memory per rank falls as K/W, where the official code keeps a
 * full replica on every GPU. The loss scores every rank's queries against every shard with a
 * distributed log-sum-exp; the result equals the replicated queue's (tests/mpi/test_dp_moco_queue.c). */
#ifndef SSL_LAYERS_MOCO_QUEUE_H
#define SSL_LAYERS_MOCO_QUEUE_H

#include "framework/backend/backend.h"

#include <stdint.h>

struct ssl_comm;

typedef struct {
    int64_t K, D;   /* keys in the whole queue; key dimension */
    int64_t off, n; /* this rank's shard: global keys [off, off + n); n = K/W + (rank < K%W) (ceil/floor, in rank order) */
    float *keys;    /* (n, D) on the context's backend (be->alloc), unit rows */
    int64_t ptr;    /* global index of the next enqueue, the same on every rank */
    const struct ssl_backend *be;
    struct ssl_moco_host *host; /* host scratch of the loss's per-row statistics (grows once) */
} ssl_moco_queue;

/* The shard of rank `rank` of `world` in a queue of K keys: *off, *n as in ssl_moco_queue. */
void ssl_moco_queue_shard(int64_t K, int rank, int world, int64_t *off, int64_t *n);

/* Allocate this rank's shard and draw it: key j (global index) = normalize(N(0,1)^D) from a Philox stream keyed by
 * (seed, j), so the queue's contents do not depend on the rank count (MoCo's randn + normalize init). ptr = 0.
 * K >= world (every rank holds at least one key). */
void ssl_moco_queue_init(ssl_moco_queue *q, const struct ssl_backend *be, int64_t K, int64_t D, int rank, int world,
                         uint64_t seed);
void ssl_moco_queue_free(ssl_moco_queue *q);

/* MoCo's InfoNCE (REFERENCE §2.2) for this rank's N queries qry (N, D, unit rows) with positives pos (N, D, unit rows,
 * no gradient) against the whole queue as negatives (no gradient): row i's logits are [qry_i . pos_i, qry_i . key_j for all K keys] / tau,
 * target 0. Computed with the queue sharded: queries are all-gathered over comm (W*N rows, rank order), every rank
 * scores all rows against its own shard, the row max and the sum of exponentials are all-reduced (MAX, then SUM: a distributed
 * log-sum-exp), each row's positive logit is counted once (by the row's owner), and the query gradient computed against each shard
 * is reduce-scattered (SUM) back to the rows' owners. Returns L_r, the mean cross-entropy over this rank's N rows; dq (N, D) receives
 * d(sum_r L_r)/d(qry) for this rank's rows (assigned). (So summed over ranks, gradients backpropagated from dq are W times the
 * gradient of the global mean loss: the trainer's all-reduce(AVG) then gives exactly that gradient - the same convention as
 * ssl_ntxent_global.) pos_cos / neg_cos (may be NULL): mean cosine of the positive pairs / of the query-queue pairs over ALL rows
 * of the global batch (identical on every rank). comm NULL or world 1: no communication. Scratch from c->act (arena).
 * Memory per rank: O(W*N*D + W*N*n) - the logits block against the shard, never the whole queue.
 * Positives never leave their owner: only the owner scores them, so they need no all-gather. */
double ssl_moco_queue_loss(ssl_ctx *c, struct ssl_comm *comm, const ssl_moco_queue *q, const float *qry, const float *pos,
                           int64_t N, float tau, float *dq, double *pos_cos, double *neg_cos);

/* Enqueue every rank's N keys (unit rows; all-gathered in rank order, W*N rows) at global positions ptr, ptr+1, ... (mod K):
 * each rank writes the rows that land in its shard; then ptr = (ptr + W*N) % K on every rank. W*N <= K required (assert). */
void ssl_moco_queue_enqueue(ssl_ctx *c, struct ssl_comm *comm, ssl_moco_queue *q, const float *keys, int64_t N);

#endif
