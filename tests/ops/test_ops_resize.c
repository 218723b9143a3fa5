/* CPU bicubic resize of channels-last grids (ViT position embeddings at another patch grid):
 * the forward against a direct double-precision evaluation of Keys' cubic convolution (A = -0.75,
 * align_corners=False coordinates, clamped taps), written from the kernel's piecewise definition
 * rather than from the op's coefficient formulas; the backward against the same weights
 * transposed, and as the adjoint, <A x, y> == <x, A^T y>; that it accumulates; and that an equal
 * size is the identity. Up- and down-sampling, non-square grids, odd channel counts, and a size that
 * takes the OpenMP path. torch's own numbers are compared in tests/ref/test_ref_resize.c. */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/core/ctx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

static float *randv(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ssl_test_uniform(x, n, seed, lo, hi);
    return x;
}

/* Keys' kernel W(s), A = -0.75: support |s| < 2, W(0) = 1, W(+-1) = W(+-2) = 0. */
static double keys(double s)
{
    const double A = -0.75;
    s = fabs(s);
    if (s <= 1.0) return ((A + 2.0) * s - (A + 3.0)) * s * s + 1.0;
    if (s < 2.0) return ((A * s - 5.0 * A) * s + 8.0 * A) * s - 4.0 * A;
    return 0.0;
}

/* The dense (n_out, n_in) matrix of one axis: row o holds the weights of the 4 taps around the
 * source coordinate (o + 0.5) n_in / n_out - 0.5, each tap index clamped into [0, n_in). */
static double *axis_matrix(int n_in, int n_out)
{
    double *m = calloc((size_t)n_in * n_out, sizeof(double));
    for (int o = 0; o < n_out; o++) {
        double src = (o + 0.5) * n_in / n_out - 0.5, f = floor(src);
        for (int k = -1; k <= 2; k++) {
            int i = (int)f + k;
            int ic = i < 0 ? 0 : i >= n_in ? n_in - 1 : i;
            m[(size_t)o * n_in + ic] += keys(src - (f + k));
        }
    }
    return m;
}

/* y = (My (x) Mx) x per channel, in double. */
static void ref_forward(int hi, int wi, int ho, int wo, int D, const float *x, double *y)
{
    double *my = axis_matrix(hi, ho), *mx = axis_matrix(wi, wo);
    for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++)
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int iy = 0; iy < hi; iy++)
                    for (int ix = 0; ix < wi; ix++)
                        s += my[(size_t)oy * hi + iy] * mx[(size_t)ox * wi + ix] *
                             x[((size_t)iy * wi + ix) * D + d];
                y[((size_t)oy * wo + ox) * D + d] = s;
            }
    free(my), free(mx);
}

/* dx = (My (x) Mx)^T dy per channel, in double. */
static void ref_adjoint(int hi, int wi, int ho, int wo, int D, const float *dy, double *dx)
{
    double *my = axis_matrix(hi, ho), *mx = axis_matrix(wi, wo);
    memset(dx, 0, (size_t)hi * wi * D * sizeof(double));
    for (int oy = 0; oy < ho; oy++)
        for (int ox = 0; ox < wo; ox++)
            for (int iy = 0; iy < hi; iy++)
                for (int ix = 0; ix < wi; ix++) {
                    double a = my[(size_t)oy * hi + iy] * mx[(size_t)ox * wi + ix];
                    for (int d = 0; d < D; d++)
                        dx[((size_t)iy * wi + ix) * D + d] += a * dy[((size_t)oy * wo + ox) * D + d];
                }
    free(my), free(mx);
}

static float *to_float(const double *x, size_t n)
{
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static void test_resize(int hi, int wi, int ho, int wo, int D)
{
    char what[128], tag[64];
    snprintf(tag, sizeof tag, "%dx%d -> %dx%d, D=%d", hi, wi, ho, wo, D);
    const size_t ni = (size_t)hi * wi * D, no = (size_t)ho * wo * D;
    float *x = randv(ni, 700 + (uint64_t)ni, -1, 1), *g = randv(no, 701 + (uint64_t)no, -1, 1);
    float *y = malloc(no * sizeof(float)), *dx = calloc(ni, sizeof(float));
    double *yd = malloc(no * sizeof(double)), *dxd = malloc(ni * sizeof(double));

    /* Forward against the double evaluation: the op rounds its weights to float and sums 16 float
     * products, whose absolute sum is <= 1.6 with |x| <= 1, so 2e-6 is ~16 ulps of the result;
     * a wrong A (-0.5) moves outputs by ~1e-2, a half-pixel shift or a tap off by one by O(0.1). */
    C.be->resize_bicubic_fwd(&C, hi, wi, ho, wo, D, x, y);
    ref_forward(hi, wi, ho, wo, D, x, yd);
    float *want = to_float(yd, no);
    snprintf(what, sizeof what, "resize_bicubic_fwd %s", tag);
    ssl_test_close(what, y, want, no, 2e-6, 0);

    /* Backward from zero: the transposed weights, border taps summed */
    C.be->resize_bicubic_bwd(&C, hi, wi, ho, wo, D, g, dx);
    ref_adjoint(hi, wi, ho, wo, D, g, dxd);
    float *want_dx = to_float(dxd, ni);
    snprintf(what, sizeof what, "resize_bicubic_bwd %s", tag);
    ssl_test_close(what, dx, want_dx, ni, 2e-6 * (1.0 + (double)ho * wo / ((double)hi * wi)), 0);

    /* Adjoint identity <A x, g> == <x, A^T g>, relative to |A x| |g| */
    double lhs = ssl_test_dot(y, g, no), rhs = ssl_test_dot(x, dx, ni);
    double scale = sqrt(ssl_test_dot(y, y, no) * ssl_test_dot(g, g, no));
    SSL_EXPECT(fabs(lhs - rhs) <= 1e-6 * scale, "resize_bicubic adjoint %s: <Ax,g> %.9g <x,A^T g> %.9g",
               tag, lhs, rhs);

    /* It accumulates: z + A^T g */
    float *acc = randv(ni, 702, -1, 1), *want_acc = malloc(ni * sizeof(float));
    for (size_t i = 0; i < ni; i++) want_acc[i] = (float)((double)acc[i] + dxd[i]);
    C.be->resize_bicubic_bwd(&C, hi, wi, ho, wo, D, g, acc);
    snprintf(what, sizeof what, "resize_bicubic_bwd accumulates %s", tag);
    ssl_test_close(what, acc, want_acc, ni, 4e-6 * (1.0 + (double)ho * wo / ((double)hi * wi)), 0);

    free(x), free(g), free(y), free(dx), free(yd), free(dxd), free(want), free(want_dx);
    free(acc), free(want_acc);
}

/* The same grid size is the identity (both weight sets are exactly 0, 1, 0, 0). */
static void test_identity(int h, int w, int D)
{
    const size_t n = (size_t)h * w * D;
    float *x = randv(n, 710, -1, 1), *y = malloc(n * sizeof(float)), *dx = calloc(n, sizeof(float));
    C.be->resize_bicubic_fwd(&C, h, w, h, w, D, x, y);
    ssl_test_close("resize_bicubic_fwd identity", y, x, n, 0, 0);
    C.be->resize_bicubic_bwd(&C, h, w, h, w, D, x, dx);
    ssl_test_close("resize_bicubic_bwd identity", dx, x, n, 0, 0);
    free(x), free(y), free(dx);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    test_resize(4, 4, 7, 7, 3);     /* upsampling */
    test_resize(7, 7, 4, 4, 3);     /* downsampling */
    test_resize(7, 7, 3, 5, 5);     /* non-square output */
    test_resize(3, 5, 8, 6, 2);     /* non-square input, up in both axes */
    test_resize(5, 3, 2, 9, 4);     /* down in one axis, up in the other */
    test_resize(1, 1, 3, 2, 3);     /* a single position: every tap clamps to it */
    test_resize(2, 2, 1, 1, 3);
    test_resize(14, 14, 6, 6, 16);  /* DINO: 224 px grid -> 96 px local crops at patch 16 */
    test_resize(6, 6, 20, 20, 96);  /* parallel path (20*20*96 >= its threshold) */
    test_identity(5, 7, 6);
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
