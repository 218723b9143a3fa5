/* Batch normalisation over dim 1 of (N, C, ...) for BatchNorm1d/2d, train and eval modes, affine or
 * not, with an optional fused ReLU (y = relu(bn(x)) in place, as every ResNet conv-bn-relu).
 * Statistics are sums (bn_stats -> bn_finalize), so synchronised BN (ctx->bn_comm set) all-reduces
 * (sum, sum of squares, count) between the two ops, and (sum dy, sum dy*xhat) in backward: every
 * rank then normalises with the global batch's statistics and gets the exact gradient of the
 * global loss (REFERENCE §10.2a). Affine-parameter grads stay local; the gradient all-reduce sums
 * them like any other parameter. */
#ifndef SSL_LAYERS_BATCHNORM_H
#define SSL_LAYERS_BATCHNORM_H

#include "framework/layers/layer.h"

typedef struct {
    int C, affine, relu;
    float eps, momentum;
    size_t gamma, beta;             /* params (affine) */
    size_t rmean, rvar;             /* buffers */
    /* saved by forward */
    int train;
    struct ssl_comm *comm;          /* the bn_comm forward synchronised over (backward uses it too) */
    ssl_tensor x, y;
    int64_t N, S;
    double count;
    float *mean, *invstd;           /* (C) */
    double *stats;                  /* (2C+1) device scratch: sums, then the count */
} ssl_batchnorm;

/* torch defaults: eps 1e-5, momentum 0.1; gamma 1, beta 0 (both excluded from wd/adaptation). */
void ssl_batchnorm_init(ssl_batchnorm *l, ssl_plan *pl, const char *name, int C, int affine, int relu);
ssl_tensor ssl_batchnorm_forward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor x,
                                 int train);
/* dy may be overwritten (the fused ReLU's gradient is applied in place). */
ssl_tensor ssl_batchnorm_backward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor dy);

#endif
