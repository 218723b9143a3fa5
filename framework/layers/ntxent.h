/* NT-Xent (SimCLR, REFERENCE §1.1) on L2-normalised embeddings, fused forward + backward.
 * Scaling convention: the paper's L = (1/M) sum_i l_i over the M = 2N views. The official TF code
 * returns 2L (REFERENCE §1.2), so its gradients, and its effective learning rate, are twice ours.
 * Distributed form (REFERENCE §1.9): a rank owns queries Z[row0 : row0+nq] of the all-gathered
 * Z (M, d) and computes L_r = (1/nq) sum_{its rows} l_i; the returned dZ (M, d) holds the gradient
 * of L_r for ALL rows (key terms) plus its own rows (query terms). Reduce-scatter(SUM) of dZ then
 * the usual 1/W gradient average give exactly the single-rank gradient. With one rank, row0 = 0,
 * nq = M. No rank materialises more than its (nq, M) logit block. */
#ifndef SSL_LAYERS_NTXENT_H
#define SSL_LAYERS_NTXENT_H

#include "framework/backend/backend.h"

/* Z (M, d) unit rows, keys in chunks of 2*half (one rank's [view 1 | view 2]). dZ (M, d) assigned.
 * Returns L_r. Scratch (nq*M floats) comes from the activation arena. */
double ssl_ntxent(ssl_ctx *c, const float *Z, int64_t M, int64_t d, int64_t row0, int64_t nq,
                  int64_t half, float tau, float *dZ);

struct ssl_comm;

/* This rank's m = 2B views z (m, d), view-major [view 1 | view 2], against the keys of all ranks:
 * all-gather Z, ssl_ntxent on this rank's rows, reduce-scatter(SUM) of dZ back to the owners.
 * dz (m, d) receives d(sum_r L_r)/dz, which the gradient average's 1/W turns into the gradient of
 * the global loss. Returns L_r. comm NULL or world 1: the single-rank loss, no copies. */
double ssl_ntxent_global(ssl_ctx *c, struct ssl_comm *comm, const float *z, int64_t m, int64_t d, float tau,
                         float *dz);

#endif
