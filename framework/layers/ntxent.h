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

#endif
