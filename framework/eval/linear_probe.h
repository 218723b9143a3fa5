/* Linear probe on cached frozen features: multinomial logistic regression trained with mini-batch
 * SGD (momentum 0.9, cosine learning rate, weight decay on the weights) on features standardised
 * with the training split's mean and std, then top-1 accuracy on the test split. */
#ifndef SSL_EVAL_LINEAR_PROBE_H
#define SSL_EVAL_LINEAR_PROBE_H

#include "framework/core/ctx.h"

#include <stddef.h>
#include <stdint.h>

/* train (ntrain, D), test (ntest, D): row-major fp32 in the device memory of c->be (host memory on
 * the CPU backend), not modified. Labels: host int32 in [0, num_classes), num_classes >= 2.
 * epochs >= 1 passes over a shuffled training split (the order depends only on seed and epoch);
 * batch: rows per SGD step (the last step of an epoch takes the remainder); lr: peak learning rate,
 * annealed per step by a half cosine to 0; wd: L2 weight decay on the weights (not the bias).
 * Weights start at zero, so the result depends only on the data, hyper-parameters and seed.
 * *top1_out: test top-1 accuracy in percent. Returns 0, or -1 with a message in err. */
int ssl_linear_probe(ssl_ctx *c, const float *train, const int32_t *ytrain, int64_t ntrain,
                     const float *test, const int32_t *ytest, int64_t ntest, int D,
                     int num_classes, int epochs, float lr, int batch, float wd, uint64_t seed,
                     double *top1_out, char *err, size_t errlen);

/* The same, plus: *train_loss_out (NULL: not wanted) receives the mean cross-entropy of the last
 * epoch's mini-batches; verbose != 0 prints each epoch's mean train loss and lr to stderr. */
int ssl_linear_probe_ex(ssl_ctx *c, const float *train, const int32_t *ytrain, int64_t ntrain,
                        const float *test, const int32_t *ytest, int64_t ntest, int D,
                        int num_classes, int epochs, float lr, int batch, float wd, uint64_t seed,
                        double *top1_out, double *train_loss_out, int verbose, char *err,
                        size_t errlen);

#endif
