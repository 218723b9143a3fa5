/* Collapse monitors the methods report into metrics.jsonl (see method.h ssl_scalars). */
#ifndef SSL_METHODS_MONITORS_H
#define SSL_METHODS_MONITORS_H

#include "methods/method.h"

/* "emb_std": the per-dimension standard deviation of L2-normalised embeddings z (M, D), averaged over
 * dimensions (lightly's std_of_l2_normalized). About 1/sqrt(D) for embeddings spread over the sphere,
 * 0 when every sample maps to one point (complete collapse). */
void ssl_monitor_embedding_std(ssl_ctx *c, const float *z, int64_t M, int64_t D, ssl_scalars *out);

#endif
