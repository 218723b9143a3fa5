/* Batch normalisation over dim 1 of (N, C, ...) for BatchNorm1d/2d, train and eval modes, affine or
 * not, with an optional fused ReLU (y = relu(bn(x)) in place, as every ResNet conv-bn-relu).
 * Statistics are sums (bn_stats -> bn_finalize) so a synchronised mode can all-reduce them across
 * ranks between the two ops; the hook is `sync` (filled by the comm layer). */
#ifndef SSL_LAYERS_BATCHNORM_H
#define SSL_LAYERS_BATCHNORM_H

#include "framework/layers/layer.h"

/* All-reduce (sum) of n doubles across ranks, plus the global sample count; NULL: local stats. */
typedef struct ssl_bn_sync {
    void (*allreduce_sum)(struct ssl_bn_sync *s, ssl_ctx *c, double *x, int n);
    void *ud;
} ssl_bn_sync;

typedef struct {
    int C, affine, relu;
    float eps, momentum;
    size_t gamma, beta;             /* params (affine) */
    size_t rmean, rvar;             /* buffers */
    ssl_bn_sync *sync;
    /* saved by forward */
    int train;
    ssl_tensor x, y;
    int64_t N, S;
    double count;
    float *mean, *invstd;           /* (C) */
    double *stats;                  /* (2C) device scratch: sums */
} ssl_batchnorm;

/* torch defaults: eps 1e-5, momentum 0.1; gamma 1, beta 0 (both excluded from wd/adaptation). */
void ssl_batchnorm_init(ssl_batchnorm *l, ssl_plan *pl, const char *name, int C, int affine, int relu);
ssl_tensor ssl_batchnorm_forward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor x,
                                 int train);
/* dy may be overwritten (the fused ReLU's gradient is applied in place). */
ssl_tensor ssl_batchnorm_backward(ssl_ctx *c, ssl_batchnorm *l, const ssl_weights *w, ssl_tensor dy);

#endif
