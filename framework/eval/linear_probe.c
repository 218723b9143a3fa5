/* Linear probe (see linear_probe.h). Every loop over feature or weight data is a backend op:
 * mini-batches are gathered by index and standardised on the device, logits and weight gradients
 * are GEMMs, the update is the backend's SGD kernel. The host only shuffles, builds the one-hot
 * targets and takes the argmax of the downloaded test logits. */
#include "framework/eval/linear_probe.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/optim/schedule.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int probe_fail(char *err, size_t errlen, const char *fmt, ...) SSL_PRINTF(3, 4);
static int probe_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Per-feature mean and 1/std of the training split from the backend's double sums. A feature that
 * is constant on the training split (a dead ReLU unit) keeps scale 1, as sklearn's StandardScaler:
 * dividing by its ~0 std would blow up whatever it does on the test split. */
static void standardiser(ssl_ctx *c, const float *train, int64_t ntrain, int D, float *mean_d,
                         float *invstd_d)
{
    const ssl_backend *be = c->be;
    double *sum_d = be->alloc((size_t)D * sizeof(double));
    double *sumsq_d = be->alloc((size_t)D * sizeof(double));
    double *sum = ssl_malloc((size_t)D * sizeof(double));
    double *sumsq = ssl_malloc((size_t)D * sizeof(double));
    float *mean = ssl_malloc((size_t)D * sizeof(float));
    float *invstd = ssl_malloc((size_t)D * sizeof(float));
    be->bn_stats(c, ntrain, D, 1, train, sum_d, sumsq_d);
    be->download(sum, sum_d, (size_t)D * sizeof(double));
    be->download(sumsq, sumsq_d, (size_t)D * sizeof(double));
    double avg_var = 0.0;
    for (int j = 0; j < D; j++) {
        double m = sum[j] / (double)ntrain;
        double v = sumsq[j] / (double)ntrain - m * m;
        sumsq[j] = v > 0.0 ? v : 0.0; /* reused as the variance */
        mean[j] = (float)m;
        avg_var += sumsq[j] / D;
    }
    /* "constant" is relative to the features' own scale: variance below fp32 rounding of it */
    double tiny = 1e-12 * (avg_var > 0.0 ? avg_var : 1.0);
    for (int j = 0; j < D; j++)
        invstd[j] = sumsq[j] > tiny ? (float)(1.0 / sqrt(sumsq[j])) : 1.0f;
    be->upload(mean_d, mean, (size_t)D * sizeof(float));
    be->upload(invstd_d, invstd, (size_t)D * sizeof(float));
    ssl_free(invstd);
    ssl_free(mean);
    ssl_free(sumsq);
    ssl_free(sum);
    be->free(sumsq_d);
    be->free(sum_d);
}

/* Fisher-Yates keyed by (seed, epoch): the order of an epoch never depends on earlier epochs. */
static void shuffle(int32_t *perm, int64_t n, uint64_t seed, int epoch)
{
    ssl_rng r;
    ssl_rng_init(&r, ssl_rng_hash(seed, 0x70726f6265ull /* "probe" */), (uint64_t)epoch);
    for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(((uint64_t)ssl_rng_u32(&r) * (uint64_t)(i + 1)) >> 32);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int ssl_linear_probe_ex(ssl_ctx *c, const float *train, const int32_t *ytrain, int64_t ntrain,
                        const float *test, const int32_t *ytest, int64_t ntest, int D,
                        int num_classes, int epochs, float lr, int batch, float wd, uint64_t seed,
                        double *top1_out, double *train_loss_out, int verbose, char *err,
                        size_t errlen)
{
    if (!c || !c->be) return probe_fail(err, errlen, "linear probe: no context");
    if (!train || !ytrain || !test || !ytest || !top1_out)
        return probe_fail(err, errlen, "linear probe: NULL argument");
    if (ntrain < 1 || ntest < 1 || D < 1)
        return probe_fail(err, errlen,
                          "linear probe: empty problem (ntrain %lld, ntest %lld, D %d)",
                          (long long)ntrain, (long long)ntest, D);
    if (ntrain > INT32_MAX)
        return probe_fail(err, errlen, "linear probe: %lld training rows exceed int32 indices",
                          (long long)ntrain);
    if (num_classes < 2)
        return probe_fail(err, errlen, "linear probe: num_classes %d < 2", num_classes);
    if (epochs < 1) return probe_fail(err, errlen, "linear probe: epochs %d < 1", epochs);
    if (batch < 1) return probe_fail(err, errlen, "linear probe: batch %d < 1", batch);
    if (!(lr > 0.0f) || !isfinite(lr))
        return probe_fail(err, errlen, "linear probe: lr %g must be > 0", lr);
    if (!(wd >= 0.0f) || !isfinite(wd))
        return probe_fail(err, errlen, "linear probe: wd %g must be >= 0", wd);
    for (int64_t i = 0; i < ntrain; i++)
        if (ytrain[i] < 0 || ytrain[i] >= num_classes)
            return probe_fail(err, errlen, "linear probe: train label %lld is %d, outside [0, %d)",
                              (long long)i, (int)ytrain[i], num_classes);
    for (int64_t i = 0; i < ntest; i++)
        if (ytest[i] < 0 || ytest[i] >= num_classes)
            return probe_fail(err, errlen, "linear probe: test label %lld is %d, outside [0, %d)",
                              (long long)i, (int)ytest[i], num_classes);

    const ssl_backend *be = c->be;
    const int C = num_classes;
    const int B = batch < ntrain ? batch : (int)ntrain;
    const size_t CD = (size_t)C * (size_t)D, BD = (size_t)B * (size_t)D, BC = (size_t)B * (size_t)C;

    float *mean = be->alloc((size_t)D * sizeof(float));
    float *invstd = be->alloc((size_t)D * sizeof(float));
    standardiser(c, train, ntrain, D, mean, invstd);

    /* weights (C, D) and bias (C), their gradients and momentum buffers; zero start */
    float *W = be->alloc(CD * sizeof(float)), *gW = be->alloc(CD * sizeof(float));
    float *mW = be->alloc(CD * sizeof(float));
    float *bias = be->alloc((size_t)C * sizeof(float)), *gb = be->alloc((size_t)C * sizeof(float));
    float *mb = be->alloc((size_t)C * sizeof(float));
    be->fill(c, W, CD, 0.0f);
    be->fill(c, mW, CD, 0.0f);
    be->fill(c, bias, (size_t)C, 0.0f);
    be->fill(c, mb, (size_t)C, 0.0f);

    int32_t *idx = be->alloc((size_t)B * sizeof(int32_t));
    float *xraw = be->alloc(BD * sizeof(float)), *xb = be->alloc(BD * sizeof(float));
    float *logits = be->alloc(BC * sizeof(float)), *logp = be->alloc(BC * sizeof(float));
    float *dy = be->alloc(BC * sizeof(float)), *dlogits = be->alloc(BC * sizeof(float));
    int32_t *perm = ssl_malloc((size_t)ntrain * sizeof(int32_t));
    float *host_bc = ssl_malloc(BC * sizeof(float)); /* one-hot targets, then test logits */

    const int64_t steps_per_epoch = (ntrain + B - 1) / B, total = steps_per_epoch * epochs;
    int64_t step = 0;
    double epoch_loss = NAN;
    for (int e = 0; e < epochs; e++) {
        shuffle(perm, ntrain, seed, e);
        /* the loss needs a device reduction (a sync): only when someone will read it */
        int want_loss = verbose || (train_loss_out && e == epochs - 1);
        double loss_sum = 0.0;
        double lr_e = lr;
        for (int64_t s0 = 0; s0 < ntrain; s0 += B, step++) {
            int nb = (int)(ntrain - s0 < B ? ntrain - s0 : B);
            float lr_t = (float)ssl_sched_cosine(lr, 0.0, (double)step, (double)total);
            if (s0 == 0) lr_e = lr_t;
            be->upload(idx, perm + s0, (size_t)nb * sizeof(int32_t));
            be->gather_rows(c, nb, D, idx, train, xraw);
            be->bn_apply(c, nb, D, 1, xraw, mean, invstd, NULL, NULL, 0, xb);
            /* logits (nb, C) = xb (nb, D) @ W^T + bias */
            be->gemm(c, 0, 1, nb, C, D, 1.0f, xb, D, W, D, 0.0f, logits, C);
            be->bias_add(c, nb, C, 1, bias, logits);
            be->log_softmax_fwd(c, nb, C, logits, logp);
            /* d(mean cross-entropy)/d(logp) = -onehot / nb; log_softmax_bwd turns it into
             * (softmax - onehot) / nb */
            memset(host_bc, 0, (size_t)nb * (size_t)C * sizeof(float));
            for (int r = 0; r < nb; r++) host_bc[(size_t)r * C + ytrain[perm[s0 + r]]] = -1.0f / nb;
            be->upload(dy, host_bc, (size_t)nb * (size_t)C * sizeof(float));
            if (want_loss) loss_sum += be->dot(c, (size_t)nb * (size_t)C, dy, logp) * nb;
            be->log_softmax_bwd(c, nb, C, logp, dy, dlogits);
            /* gW (C, D) = dlogits^T (C, nb) @ xb (nb, D); gb = column sums of dlogits */
            be->gemm(c, 1, 0, C, D, nb, 1.0f, dlogits, C, xb, D, 0.0f, gW, D);
            be->fill(c, gb, (size_t)C, 0.0f);
            be->bias_grad(c, nb, C, 1, dlogits, gb);
            be->sgd_update(c, CD, lr_t, 0.9f, 0, wd, 1.0f, W, gW, mW);
            be->sgd_update(c, (size_t)C, lr_t, 0.9f, 0, 0.0f, 1.0f, bias, gb, mb);
        }
        if (want_loss) epoch_loss = loss_sum / (double)ntrain;
        if (verbose)
            fprintf(stderr, "linear probe: epoch %d/%d  train loss %.4f  lr %.4g\n", e + 1, epochs,
                    epoch_loss, lr_e);
    }

    int diverged = !isfinite(be->sumsq(c, CD, W)) || !isfinite(be->sumsq(c, (size_t)C, bias));
    int64_t correct = 0;
    for (int64_t r0 = 0; r0 < ntest && !diverged; r0 += B) {
        int nr = (int)(ntest - r0 < B ? ntest - r0 : B);
        be->bn_apply(c, nr, D, 1, test + r0 * D, mean, invstd, NULL, NULL, 0, xb);
        be->gemm(c, 0, 1, nr, C, D, 1.0f, xb, D, W, D, 0.0f, logits, C);
        be->bias_add(c, nr, C, 1, bias, logits);
        be->download(host_bc, logits, (size_t)nr * (size_t)C * sizeof(float));
        for (int r = 0; r < nr; r++) {
            const float *l = host_bc + (size_t)r * C;
            int best = 0; /* lowest class on ties */
            for (int k = 1; k < C; k++)
                if (l[k] > l[best]) best = k;
            correct += best == ytest[r0 + r];
        }
    }
    if (!diverged) *top1_out = 100.0 * (double)correct / (double)ntest;
    if (train_loss_out) *train_loss_out = epoch_loss;

    ssl_free(host_bc);
    ssl_free(perm);
    be->free(dlogits);
    be->free(dy);
    be->free(logp);
    be->free(logits);
    be->free(xb);
    be->free(xraw);
    be->free(idx);
    be->free(mb);
    be->free(gb);
    be->free(bias);
    be->free(mW);
    be->free(gW);
    be->free(W);
    be->free(invstd);
    be->free(mean);
    if (diverged)
        return probe_fail(err, errlen, "linear probe: weights became non-finite (lr %g too large, "
                          "or non-finite features)", lr);
    return 0;
}

int ssl_linear_probe(ssl_ctx *c, const float *train, const int32_t *ytrain, int64_t ntrain,
                     const float *test, const int32_t *ytest, int64_t ntest, int D,
                     int num_classes, int epochs, float lr, int batch, float wd, uint64_t seed,
                     double *top1_out, char *err, size_t errlen)
{
    return ssl_linear_probe_ex(c, train, ytrain, ntrain, test, ytest, ntest, D, num_classes,
                               epochs, lr, batch, wd, seed, top1_out, NULL, 0, err, errlen);
}
