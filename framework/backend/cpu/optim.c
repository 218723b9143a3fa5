/* CPU optimizer kernels over one parameter segment: the fused SGD/momentum update (also LARS's
 * update once the trust ratio is folded into gscale) and the Adam direction shared by AdamW and
 * LAMB. The formulas are the contract in backend.h; framework/optim/optim.c composes them. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>

/* Below this many elements a parallel region costs more than it saves (biases, norm params). */
#define PAR_MIN 32768

void ssl_cpu_sgd_update(ssl_ctx *c, size_t n, float lr, float momentum, int nesterov, float wd,
                        float gscale, float *w, const float *g, float *m)
{
    (void)c;
    if (momentum == 0.0f) {
        /* Plain SGD: no buffer to read or write (m may be NULL). */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) w[i] -= lr * (gscale * (g[i] + wd * w[i]));
        return;
    }
    /* The nesterov branch is hoisted out of the loops so each one vectorises. */
    if (nesterov) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float d = gscale * (g[i] + wd * w[i]);
            float mi = momentum * m[i] + d;
            m[i] = mi;
            w[i] -= lr * (d + momentum * mi);
        }
    } else {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float d = gscale * (g[i] + wd * w[i]);
            float mi = momentum * m[i] + d;
            m[i] = mi;
            w[i] -= lr * mi;
        }
    }
}

void ssl_cpu_adam_direction(ssl_ctx *c, size_t n, float b1, float b2, float eps, float bc1,
                            float bc2, float wd, const float *w, const float *g, float *m, float *v,
                            float *u)
{
    (void)c;
    /* Written literally (three divisions) rather than with reciprocals: the loop streams seven
     * arrays and is memory-bound, so exact agreement with the documented formula costs nothing.
     * g[i] is read before u[i] is written, so u may alias g. */
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        u[i] = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * w[i];
    }
}

/* The multi-segment forms: the single-segment kernels in turn (a device gains one launch for all;
 * the CPU gains nothing from fusing memory-bound loops, and this keeps them bit for bit). */
void ssl_cpu_sgd_update_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float momentum, int nesterov, float *w,
                              const float *g, float *m)
{
    for (int i = 0; i < count; i++) {
        const ssl_opt_seg *s = &seg[i];
        ssl_cpu_sgd_update(c, s->n, s->lr, momentum, nesterov, s->wd, s->gscale, w + s->off, g + s->off,
                           m ? m + s->off : NULL);
    }
}

void ssl_cpu_adam_direction_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, float b1, float b2, float eps,
                                  const float *w, float *g, float *m, float *v)
{
    for (int i = 0; i < count; i++) {
        const ssl_opt_seg *s = &seg[i];
        if (s->gscale != 1.0f) ssl_cpu_scale(c, g + s->off, s->n, s->gscale);
        ssl_cpu_adam_direction(c, s->n, b1, b2, eps, s->bc1, s->bc2, s->wd, w + s->off, g + s->off, m + s->off,
                               v + s->off, g + s->off);
    }
}

void ssl_cpu_axpby_multi(ssl_ctx *c, int count, const ssl_opt_seg *seg, const float *x, float *y)
{
    for (int i = 0; i < count; i++) ssl_cpu_axpby(c, seg[i].n, seg[i].a, x + seg[i].off, seg[i].b, y + seg[i].off);
}
