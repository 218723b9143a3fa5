/* MAE's pixel targets and reconstruction loss (backend.h: patchify_hwc, mae_loss_rows). Row sums
 * are in double and the per-row losses are added in row order, so the loss is thread-count
 * invariant. */
#include "framework/backend/cpu/cpu.h"

#include "framework/core/check.h"

#include <math.h>

#define PAR_MIN 16384

void ssl_cpu_patchify_hwc(ssl_ctx *c, int N, int C, int H, int W, int p, const float *x, float *out)
{
    (void)c;
    const int gh = H / p, gw = W / p, F = C * p * p;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int ty = 0; ty < gh; ty++)
            for (int tx = 0; tx < gw; tx++) {
                float *o = out + ((int64_t)n * gh * gw + (int64_t)ty * gw + tx) * F;
                for (int i = 0; i < p; i++)
                    for (int j = 0; j < p; j++)
                        for (int ch = 0; ch < C; ch++)
                            *o++ = x[(((int64_t)n * C + ch) * H + (int64_t)ty * p + i) * W + (int64_t)tx * p + j];
            }
}

/* One patch: its mean squared error against the (normalised) target; the gradient of
 * g * mask * error into d when d is non-NULL. */
static double loss_row(int64_t F, float norm_eps, const float *pred, const float *t, float wgt, float *d)
{
    double mean = 0.0, inv = 1.0;
    if (norm_eps > 0.0f) {
        double s = 0.0, ss = 0.0;
        for (int64_t f = 0; f < F; f++) s += t[f];
        mean = s / (double)F;
        for (int64_t f = 0; f < F; f++) ss += (t[f] - mean) * (t[f] - mean);
        inv = 1.0 / sqrt(ss / (double)(F - 1) + norm_eps); /* unbiased, as torch .var */
    }
    double e = 0.0;
    for (int64_t f = 0; f < F; f++) {
        const double r = pred[f] - (t[f] - mean) * inv;
        e += r * r;
        if (d) d[f] = (float)(wgt * 2.0 * r / (double)F);
    }
    return e / (double)F;
}

void ssl_cpu_mae_loss_rows(ssl_ctx *c, int64_t rows, int64_t F, float norm_eps, const float *pred,
                           const float *target, const float *mask, float g, float *dpred, double *loss_sum)
{
    SSL_ASSERTF(F > 1 || norm_eps <= 0.0f, "mae loss: norm_pix needs more than one value per patch");
    double *e = ssl_ctx_workspace(c, (size_t)rows * sizeof(double));
#pragma omp parallel for schedule(static) if (rows * F >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        e[r] = mask[r] * loss_row(F, norm_eps, pred + r * F, target + r * F, g * mask[r],
                                  dpred ? dpred + r * F : NULL);
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) total += e[r];
    *loss_sum = total;
}
