/* InfoNCE of queries against keys gathered from every rank, without gradient through the keys (MoCo v3,
 * REFERENCE §2.4): this rank's q (n, d) and k (n, d), unit rows; K = all-gather(k) over comm (W n, d);
 * logits = q K^T / tau; row i's positive is K[rank n + i]. The returned loss is the mean over this rank's
 * n rows of the cross-entropy; its gradient goes to dq (n, d), assigned. Since the keys carry none, each
 * rank's dq is complete and the trainer's gradient average gives the global loss's gradient.
 * pos_cos / neg_cos (may be NULL) receive the mean cosine of positive and of negative pairs (monitors:
 * collapse drives both to 1). comm NULL or world 1: K = k. Scratch comes from the activation arena. */
#ifndef SSL_LAYERS_INFONCE_H
#define SSL_LAYERS_INFONCE_H

#include "framework/backend/backend.h"

struct ssl_comm;

double ssl_infonce_gathered(ssl_ctx *c, struct ssl_comm *comm, const float *q, const float *k, int64_t n, int64_t d,
                            float tau, float *dq, double *pos_cos, double *neg_cos);

#endif
