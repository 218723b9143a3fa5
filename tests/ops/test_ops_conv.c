/* Convolution forward / backward-data / backward-filter of every CPU implementation (the shipped
 * dispatch, the im2col reference, oneDNN on plain and on blocked layouts) against a naive
 * double-precision direct convolution, plus dw accumulation (+=), dx assignment, finite-difference
 * gradient checks and "no allocation after the first call". */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- naive reference in double -------------------------------------------------------------- */

#define XI(s, n, c, h, w) ((((int64_t)(n) * (s)->C + (c)) * (s)->H + (h)) * (s)->W + (w))
#define WI(s, k, c, r, t) ((((int64_t)(k) * (s)->C + (c)) * (s)->R + (r)) * (s)->R + (t))
#define YI(s, n, k, p, q) ((((int64_t)(n) * (s)->K + (k)) * (s)->P + (p)) * (s)->Q + (q))

/* Runs BODY with flat indices xi, wi, yi for every (input, weight, output) triple that meets in
 * the convolution. */
#define FOR_TAPS(s, BODY)                                                                      \
    for (int n = 0; n < (s)->N; n++)                                                           \
        for (int k = 0; k < (s)->K; k++)                                                       \
            for (int p = 0; p < (s)->P; p++)                                                   \
                for (int q = 0; q < (s)->Q; q++)                                               \
                    for (int c = 0; c < (s)->C; c++)                                           \
                        for (int r = 0; r < (s)->R; r++)                                       \
                            for (int t = 0; t < (s)->R; t++) {                                 \
                                int ih = p * (s)->stride - (s)->pad + r;                       \
                                int iw = q * (s)->stride - (s)->pad + t;                       \
                                if (ih < 0 || ih >= (s)->H || iw < 0 || iw >= (s)->W) continue; \
                                int64_t xi = XI(s, n, c, ih, iw), wi = WI(s, k, c, r, t);      \
                                int64_t yi = YI(s, n, k, p, q);                                \
                                BODY;                                                          \
                            }

static size_t nx(const ssl_conv_shape *s) { return (size_t)s->N * s->C * s->H * s->W; }
static size_t nw(const ssl_conv_shape *s) { return (size_t)s->K * s->C * s->R * s->R; }
static size_t ny(const ssl_conv_shape *s) { return (size_t)s->N * s->K * s->P * s->Q; }

static void to_float(const double *d, float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
}

static void ref_fwd(const ssl_conv_shape *s, const float *x, const float *w, float *y)
{
    double *acc = calloc(ny(s), sizeof *acc);
    FOR_TAPS(s, acc[yi] += (double)x[xi] * w[wi]);
    to_float(acc, y, ny(s));
    free(acc);
}

static void ref_bwd_data(const ssl_conv_shape *s, const float *dy, const float *w, float *dx)
{
    double *acc = calloc(nx(s), sizeof *acc);
    FOR_TAPS(s, acc[xi] += (double)dy[yi] * w[wi]);
    to_float(acc, dx, nx(s));
    free(acc);
}

static void ref_bwd_filter(const ssl_conv_shape *s, const float *dy, const float *x, float *dw)
{
    double *acc = calloc(nw(s), sizeof *acc);
    FOR_TAPS(s, acc[wi] += (double)dy[yi] * x[xi]);
    to_float(acc, dw, nw(s));
    free(acc);
}

/* ---- the implementations under test --------------------------------------------------------- */

enum { IMPL_SHIPPED, IMPL_IM2COL, IMPL_DNNL_PLAIN, IMPL_DNNL_BLOCKED, IMPL_COUNT };
static const char *const impl_name[IMPL_COUNT] = {"shipped", "im2col", "dnnl_plain",
                                                  "dnnl_blocked"};

static void conv_fwd(ssl_ctx *c, int impl, const ssl_conv_shape *s, const float *x, const float *w,
                     float *y)
{
    switch (impl) {
    case IMPL_SHIPPED: c->be->conv2d_fwd(c, s, x, w, y); break;
    case IMPL_IM2COL: ssl_cpu_conv2d_fwd_im2col(c, s, x, w, y); break;
    default: ssl_cpu_conv2d_fwd_dnnl(c, s, x, w, y, impl == IMPL_DNNL_BLOCKED);
    }
}

static void conv_bwd_data(ssl_ctx *c, int impl, const ssl_conv_shape *s, const float *dy,
                          const float *w, float *dx)
{
    switch (impl) {
    case IMPL_SHIPPED: c->be->conv2d_bwd_data(c, s, dy, w, dx); break;
    case IMPL_IM2COL: ssl_cpu_conv2d_bwd_data_im2col(c, s, dy, w, dx); break;
    default: ssl_cpu_conv2d_bwd_data_dnnl(c, s, dy, w, dx, impl == IMPL_DNNL_BLOCKED);
    }
}

static void conv_bwd_filter(ssl_ctx *c, int impl, const ssl_conv_shape *s, const float *dy,
                            const float *x, float *dw)
{
    switch (impl) {
    case IMPL_SHIPPED: c->be->conv2d_bwd_filter(c, s, dy, x, dw); break;
    case IMPL_IM2COL: ssl_cpu_conv2d_bwd_filter_im2col(c, s, dy, x, dw); break;
    default: ssl_cpu_conv2d_bwd_filter_dnnl(c, s, dy, x, dw, impl == IMPL_DNNL_BLOCKED);
    }
}

/* ---- checks ---------------------------------------------------------------------------------- */

typedef struct {
    int N, C, H, W, K, R, stride, pad;
} shape_spec;

static const shape_spec shapes[] = {
    {2, 3, 8, 8, 4, 3, 1, 1},     /* 3x3 same, RGB input */
    {1, 1, 5, 5, 1, 3, 1, 1},     /* C = K = 1, N = 1 */
    {3, 2, 7, 7, 3, 3, 2, 1},     /* odd size, stride 2 */
    {2, 3, 8, 8, 5, 3, 2, 1},     /* stride 2 that leaves the last padded row unused */
    {1, 2, 6, 5, 3, 3, 1, 0},     /* no padding, H != W */
    {2, 3, 3, 3, 2, 3, 1, 0},     /* output 1x1 */
    {2, 3, 15, 15, 4, 7, 2, 3},   /* ImageNet stem: 7x7 stride 2 pad 3 */
    {2, 4, 8, 8, 6, 1, 2, 0},     /* 1x1 stride-2 shortcut */
    {3, 5, 6, 6, 4, 1, 1, 0},     /* 1x1 stride 1 (pointwise) */
    {2, 3, 8, 8, 6, 4, 4, 0},     /* ViT patch embedding, k = s = 4 */
    {1, 3, 10, 10, 4, 4, 4, 0},   /* patch embedding that drops a border */
    {2, 16, 6, 6, 16, 3, 1, 1},   /* channels a multiple of the SIMD block: oneDNN's JIT kernels */
    {2, 8, 9, 9, 24, 3, 2, 1},    /* same, stride 2, odd size */
    {2, 13, 5, 5, 11, 3, 1, 1},   /* channels not a multiple of the block */
    {3, 2, 32, 32, 3, 3, 1, 1},   /* im2col batches two images, then a remainder of one */
    {3, 4, 32, 32, 5, 1, 1, 0},   /* the same through the pointwise shortcut */
    {3, 3, 32, 32, 2, 3, 2, 1},   /* stride 2, several images per im2col chunk */
    /* the dispatch rule's other branches (shipped): a narrow strided layer to 4x4, direct kernels */
    {2, 32, 7, 7, 64, 3, 2, 1},
    {2, 256, 8, 8, 8, 3, 2, 1},   /* wide input, 4x4 output: im2col's backward filter */
    {2, 256, 4, 4, 16, 1, 1, 0},  /* 1x1 on a small plane of a wide input: direct kernels */
};

static float *fbuf(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

static void check_shape_impl(ssl_ctx *c, const ssl_conv_shape *s, int impl, const float *x,
                             const float *w, const float *dy, const float *y_ref,
                             const float *dx_ref, const float *dw_ref)
{
    char what[160];
    const double crr = (double)s->C * s->R * s->R;
    const double atol = 1e-5 * (1.0 + crr), rtol = 1e-4; /* error grows with the terms summed */
    float *y = fbuf(ny(s)), *dx = fbuf(nx(s)), *dw = fbuf(nw(s)), *want = fbuf(nw(s));
#define NAME(dir)                                                                               \
    snprintf(what, sizeof what, "%s %s N=%d C=%d H=%d W=%d K=%d R=%d s=%d p=%d", impl_name[impl], \
             dir, s->N, s->C, s->H, s->W, s->K, s->R, s->stride, s->pad)

    /* Outputs that assign start from garbage, so a missing write or a stray += shows. */
    for (size_t i = 0; i < ny(s); i++) y[i] = 1e30f;
    conv_fwd(c, impl, s, x, w, y);
    NAME("fwd");
    ssl_test_close(what, y, y_ref, ny(s), atol, rtol);

    for (size_t i = 0; i < nx(s); i++) dx[i] = -1e30f;
    conv_bwd_data(c, impl, s, dy, w, dx);
    NAME("bwd_data");
    ssl_test_close(what, dx, dx_ref, nx(s), 1e-5 * (1.0 + (double)s->K * s->R * s->R), rtol);

    /* dw += twice onto a non-zero start. */
    ssl_test_uniform(dw, nw(s), 99, -1.0f, 1.0f);
    for (size_t i = 0; i < nw(s); i++) want[i] = dw[i] + 2.0f * dw_ref[i];
    conv_bwd_filter(c, impl, s, dy, x, dw);
    conv_bwd_filter(c, impl, s, dy, x, dw);
    NAME("bwd_filter (dw += twice)");
    double fatol = 2e-5 * (1.0 + (double)s->N * s->P * s->Q);
    ssl_test_close(what, dw, want, nw(s), fatol, rtol);
#undef NAME
    free(y);
    free(dx);
    free(dw);
    free(want);
}

/* ---- finite differences of loss = sum(conv(x, w) * r) ---------------------------------------- */

typedef struct {
    ssl_ctx *c;
    const ssl_conv_shape *s;
    float *x, *w, *y;
    const float *r;
} fd_ctx;

static double fd_loss(void *ud)
{
    fd_ctx *f = ud;
    f->c->be->conv2d_fwd(f->c, f->s, f->x, f->w, f->y);
    return ssl_test_dot(f->y, f->r, ny(f->s));
}

static void gradcheck(ssl_ctx *c, const ssl_conv_shape *s)
{
    float *x = fbuf(nx(s)), *w = fbuf(nw(s)), *y = fbuf(ny(s)), *r = fbuf(ny(s));
    float *gx = fbuf(nx(s)), *gw = fbuf(nw(s));
    ssl_test_uniform(x, nx(s), 11, -1.0f, 1.0f);
    ssl_test_uniform(w, nw(s), 12, -1.0f, 1.0f);
    ssl_test_uniform(r, ny(s), 13, -1.0f, 1.0f);
    c->be->conv2d_bwd_data(c, s, r, w, gx);
    memset(gw, 0, nw(s) * sizeof *gw);
    c->be->conv2d_bwd_filter(c, s, r, x, gw);
    fd_ctx f = {c, s, x, w, y, r};
    char what[96];
    snprintf(what, sizeof what, "dx C=%d H=%d K=%d R=%d s=%d p=%d", s->C, s->H, s->K, s->R,
             s->stride, s->pad);
    /* The loss is linear in x and in w, so a large step has no truncation error. 48 elements per
     * tensor, spread evenly, keep the test quick even on an oversubscribed machine. */
    ssl_test_gradcheck(what, fd_loss, &f, x, nx(s), gx, 48, 0.05f, 2e-3, 2e-3);
    snprintf(what, sizeof what, "dw C=%d H=%d K=%d R=%d s=%d p=%d", s->C, s->H, s->K, s->R,
             s->stride, s->pad);
    ssl_test_gradcheck(what, fd_loss, &f, w, nw(s), gw, 48, 0.05f, 2e-3, 2e-3);
    free(x);
    free(w);
    free(y);
    free(r);
    free(gx);
    free(gw);
}

/* After the first call of each direction, the shipped path allocates nothing more. */
static void check_no_alloc(ssl_ctx *c, const ssl_conv_shape *s)
{
    float *x = fbuf(nx(s)), *w = fbuf(nw(s)), *y = fbuf(ny(s)), *dx = fbuf(nx(s)),
          *dw = fbuf(nw(s));
    ssl_test_uniform(x, nx(s), 1, -1.0f, 1.0f);
    ssl_test_uniform(w, nw(s), 2, -1.0f, 1.0f);
    memset(dw, 0, nw(s) * sizeof *dw);
    for (int step = 0; step < 3; step++) {
        size_t before = ssl_alloc_count();
        c->be->conv2d_fwd(c, s, x, w, y);
        c->be->conv2d_bwd_data(c, s, y, w, dx);
        c->be->conv2d_bwd_filter(c, s, y, x, dw);
        if (step > 0)
            SSL_EXPECT(ssl_alloc_count() == before, "step %d allocated %zu time(s)", step,
                       ssl_alloc_count() - before);
    }
    free(x);
    free(w);
    free(y);
    free(dx);
    free(dw);
}

int main(void)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    /* Under ONEDNN_MAX_CPU_ISA=AVX2 (test_ops_conv_avx2) the cap must take, or that run would test
     * nothing the native one does not. */
    ssl_conv_shape blk = ssl_conv_shape_make(2, 16, 6, 6, 16, 3, 1, 1);
    const char *kernel = ssl_cpu_conv_dnnl_impl(&c, &blk, 0, 1), *cap = getenv("ONEDNN_MAX_CPU_ISA");
    printf("oneDNN's direct convolution kernel here: %s\n", kernel);
    if (cap && strcmp(cap, "AVX2") == 0)
        SSL_EXPECT(!((ssl_cpu_state *)c.be_state)->avx512 && !strstr(kernel, "avx512"),
                   "ONEDNN_MAX_CPU_ISA=AVX2 not honoured: %s", kernel);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_spec *p = &shapes[i];
        ssl_conv_shape s =
            ssl_conv_shape_make(p->N, p->C, p->H, p->W, p->K, p->R, p->stride, p->pad);
        float *x = fbuf(nx(&s)), *w = fbuf(nw(&s)), *dy = fbuf(ny(&s));
        float *y_ref = fbuf(ny(&s)), *dx_ref = fbuf(nx(&s)), *dw_ref = fbuf(nw(&s));
        ssl_test_uniform(x, nx(&s), 100 + i, -1.0f, 1.0f);
        ssl_test_uniform(w, nw(&s), 200 + i, -1.0f, 1.0f);
        ssl_test_uniform(dy, ny(&s), 300 + i, -1.0f, 1.0f);
        ref_fwd(&s, x, w, y_ref);
        ref_bwd_data(&s, dy, w, dx_ref);
        ref_bwd_filter(&s, dy, x, dw_ref);
        for (int impl = 0; impl < IMPL_COUNT; impl++)
            check_shape_impl(&c, &s, impl, x, w, dy, y_ref, dx_ref, dw_ref);
        free(x);
        free(w);
        free(dy);
        free(y_ref);
        free(dx_ref);
        free(dw_ref);
    }

    const shape_spec gc[] = {{2, 3, 7, 7, 4, 3, 2, 1}, {1, 2, 8, 8, 3, 4, 4, 0},
                             {2, 8, 6, 6, 8, 3, 1, 1}};
    for (size_t i = 0; i < sizeof gc / sizeof gc[0]; i++) {
        ssl_conv_shape s = ssl_conv_shape_make(gc[i].N, gc[i].C, gc[i].H, gc[i].W, gc[i].K,
                                               gc[i].R, gc[i].stride, gc[i].pad);
        gradcheck(&c, &s);
    }

    ssl_conv_shape big = ssl_conv_shape_make(4, 16, 16, 16, 32, 3, 1, 1);
    check_no_alloc(&c, &big);
    ssl_ctx_free(&c);

    /* SSL_CONV selects the implementation per context: the im2col reference through the table. */
    setenv("SSL_CONV", "im2col", 1);
    ssl_ctx_init(&c, "cpu");
    SSL_EXPECT(((ssl_cpu_state *)c.be_state)->conv_algo == SSL_CPU_CONV_IM2COL,
               "SSL_CONV=im2col not honoured");
    ssl_conv_shape s = ssl_conv_shape_make(2, 3, 7, 7, 4, 3, 2, 1);
    gradcheck(&c, &s);
    check_no_alloc(&c, &big);
    ssl_ctx_free(&c);
    unsetenv("SSL_CONV");
    return ssl_test_exit();
}
