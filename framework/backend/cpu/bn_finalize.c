/* BatchNorm statistics finalisation: sums (local or all-reduced across ranks) -> mean, invstd,
 * running stats. Kept apart from norm.c because sync-BN puts a collective between the two. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>

void ssl_cpu_bn_finalize(ssl_ctx *c, int64_t C, int train, const double *sum, const double *sumsq,
                         double count, float eps, float momentum, float *running_mean,
                         float *running_var, float *mean, float *invstd)
{
    (void)c;
    for (int64_t k = 0; k < C; k++) {
        if (!train) {
            mean[k] = running_mean[k];
            invstd[k] = (float)(1.0 / sqrt((double)running_var[k] + eps));
            continue;
        }
        double m = sum[k] / count;
        /* E[x^2] - m^2 in double: inputs are fp32, so cancellation leaves ample precision. */
        double var = sumsq[k] / count - m * m;
        if (var < 0) var = 0;
        mean[k] = (float)m;
        invstd[k] = (float)(1.0 / sqrt(var + eps));
        if (running_mean) {
            double unbiased = count > 1 ? var * count / (count - 1) : var;
            running_mean[k] = (float)((1.0 - momentum) * running_mean[k] + momentum * m);
            running_var[k] = (float)((1.0 - momentum) * running_var[k] + momentum * unbiased);
        }
    }
}

void ssl_cpu_bn_param_grads(ssl_ctx *c, int64_t C, const double *sum_dy, const double *sum_dy_xhat,
                            float *dgamma, float *dbeta)
{
    (void)c;
    for (int64_t k = 0; k < C; k++) {
        dgamma[k] += (float)sum_dy_xhat[k];
        dbeta[k] += (float)sum_dy[k];
    }
}
