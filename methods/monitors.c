/* Collapse monitors (see monitors.h). Computed on the host from a copy: M x D is a few hundred KB,
 * far below a step's cost, and it keeps device code out of a diagnostic. */
#include "methods/monitors.h"

#include "framework/core/check.h"

#include <math.h>

void ssl_monitor_embedding_std(ssl_ctx *c, const float *z, int64_t M, int64_t D, ssl_scalars *out)
{
    if (M < 2) return;
    float *h = ssl_malloc((size_t)(M * D) * sizeof *h);
    c->be->download(h, z, (size_t)(M * D) * sizeof *h);
    double total = 0;
    for (int64_t d = 0; d < D; d++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < M; i++) {
            double v = h[i * D + d];
            s += v;
            ss += v * v;
        }
        double mean = s / (double)M, var = (ss - s * mean) / (double)(M - 1);
        total += sqrt(var > 0 ? var : 0);
    }
    ssl_free(h);
    ssl_scalars_add(out, "emb_std", total / (double)D);
}
