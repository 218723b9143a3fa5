/* Weighted k-nearest-neighbour evaluation of frozen features, as DINO's eval_knn.py knn_classifier:
 * cosine similarity to every training feature, the k most similar vote for their class with weight
 * exp(sim / T), the class with the largest vote is the prediction. Several k share one pass. */
#ifndef SSL_EVAL_KNN_H
#define SSL_EVAL_KNN_H

#include "framework/core/ctx.h"

#include <stddef.h>
#include <stdint.h>

/* DINO's temperature for the neighbour weights. */
#define SSL_KNN_DEFAULT_T 0.07f

/* train (ntrain, D) and test (ntest, D): row-major fp32 in the device memory of c->be (host memory
 * on the CPU backend); they are not modified (normalised copies are made). Labels are host int32 in
 * [0, num_classes). ks: nks values, each in [1, ntrain]. T > 0 (SSL_KNN_DEFAULT_T).
 * top1_out[i]: top-1 accuracy in percent (DINO's unit) for k = ks[i].
 * Ties are broken deterministically: among equal similarities the lower training index is the
 * nearer neighbour; among equal votes the lower class index wins.
 * Returns 0, or -1 with a message in err (bad arguments, labels out of range, non-finite
 * features). */
int ssl_knn_eval(ssl_ctx *c, const float *train, const int32_t *train_labels, int64_t ntrain,
                 const float *test, const int32_t *test_labels, int64_t ntest, int D,
                 int num_classes, const int *ks, int nks, float T, double *top1_out, char *err,
                 size_t errlen);

/* The same, with optional extra outputs (NULL: not wanted):
 * top5_out[i]: top-5 accuracy in percent (correct when the label is among the first min(5, k)
 *              classes by vote, as DINO), NAN when num_classes < 5;
 * pred_out[i * ntest + j]: predicted class of test row j for k = ks[i]. */
int ssl_knn_eval_ex(ssl_ctx *c, const float *train, const int32_t *train_labels, int64_t ntrain,
                    const float *test, const int32_t *test_labels, int64_t ntest, int D,
                    int num_classes, const int *ks, int nks, float T, double *top1_out,
                    double *top5_out, int32_t *pred_out, char *err, size_t errlen);

#endif
