/* CPU elementwise, bias and reduction ops against naive double-precision loops; ReLU, GELU and
 * bias backwards against central finite differences of loss = sum(y * r). Sizes include one above
 * the kernels' parallel threshold so both the serial and the OpenMP paths run. */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/core/ctx.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

static float *randv(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    ssl_test_uniform(x, n, seed, lo, hi);
    return x;
}

/* ---- BLAS-1 style ops: exact in float, so compared with a float-rounded double reference ---- */
static void test_basic(size_t n)
{
    char what[64];
    float *a = randv(n, 1, -2, 2), *b = randv(n, 2, -2, 2), *y = randv(n, 3, -2, 2);
    float *want = malloc(n * sizeof(float)), *y0 = malloc(n * sizeof(float));

    C.be->fill(&C, y, n, 1.5f);
    for (size_t i = 0; i < n; i++) want[i] = 1.5f;
    snprintf(what, sizeof what, "fill n=%zu", n);
    ssl_test_close(what, y, want, n, 0, 0);

    C.be->copy(&C, y, a, n);
    snprintf(what, sizeof what, "copy n=%zu", n);
    ssl_test_close(what, y, a, n, 0, 0);

    C.be->scale(&C, y, n, -0.75f);
    for (size_t i = 0; i < n; i++) want[i] = (float)(-0.75 * a[i]);
    snprintf(what, sizeof what, "scale n=%zu", n);
    ssl_test_close(what, y, want, n, 1e-7, 1e-6);

    memcpy(y0, b, n * sizeof(float));
    C.be->axpby(&C, n, 0.3f, a, -1.25f, y0);
    for (size_t i = 0; i < n; i++) want[i] = (float)(0.3 * a[i] - 1.25 * b[i]);
    snprintf(what, sizeof what, "axpby n=%zu", n);
    ssl_test_close(what, y0, want, n, 1e-6, 1e-6);

    /* b == 0 must not read y (NaN garbage stays out) */
    for (size_t i = 0; i < n; i++) y0[i] = NAN;
    C.be->axpby(&C, n, 2.0f, a, 0.0f, y0);
    for (size_t i = 0; i < n; i++) want[i] = 2.0f * a[i];
    snprintf(what, sizeof what, "axpby b=0 n=%zu", n);
    ssl_test_close(what, y0, want, n, 0, 0);

    C.be->add(&C, n, a, b, y);
    for (size_t i = 0; i < n; i++) want[i] = (float)((double)a[i] + b[i]);
    snprintf(what, sizeof what, "add n=%zu", n);
    ssl_test_close(what, y, want, n, 0, 0);

    C.be->mul(&C, n, a, b, y);
    for (size_t i = 0; i < n; i++) want[i] = (float)((double)a[i] * b[i]);
    snprintf(what, sizeof what, "mul n=%zu", n);
    ssl_test_close(what, y, want, n, 0, 0);

    free(a), free(b), free(y), free(want), free(y0);
}

/* ---- activations: forward vs reference, backward vs finite differences ---------------------- */
typedef struct {
    int gelu;
    size_t n;
    float *x, *y, *r;
} act_ud;

static double act_loss(void *p)
{
    act_ud *u = p;
    if (u->gelu) C.be->gelu_fwd(&C, u->n, u->x, u->y);
    else C.be->relu_fwd(&C, u->n, u->x, u->y);
    return ssl_test_dot(u->y, u->r, u->n);
}

static void test_act(int gelu, size_t n)
{
    char what[64];
    act_ud u = {gelu, n, randv(n, 10, -4, 4), malloc(n * sizeof(float)), randv(n, 11, -1, 1)};
    /* keep ReLU inputs away from the kink so the finite difference never straddles it */
    if (!gelu)
        for (size_t i = 0; i < n; i++) u.x[i] += u.x[i] >= 0 ? 0.05f : -0.05f;
    float *want = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));

    act_loss(&u);
    for (size_t i = 0; i < n; i++) {
        double v = u.x[i];
        want[i] = (float)(gelu ? 0.5 * v * (1.0 + erf(v / sqrt(2.0))) : (v > 0 ? v : 0));
    }
    snprintf(what, sizeof what, "%s fwd n=%zu", gelu ? "gelu" : "relu", n);
    ssl_test_close(what, u.y, want, n, 1e-6, 1e-5);

    if (gelu) C.be->gelu_bwd(&C, n, u.x, u.r, dx);
    else C.be->relu_bwd(&C, n, u.y, u.r, dx);
    snprintf(what, sizeof what, "%s bwd n=%zu", gelu ? "gelu" : "relu", n);
    ssl_test_gradcheck(what, act_loss, &u, u.x, n, dx, 200, 1e-2f, 1e-3, 1e-2);

    /* gelu' against the closed form in double; relu in place (dx aliases dy) */
    if (gelu) {
        for (size_t i = 0; i < n; i++) {
            double v = u.x[i];
            double pdf = exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
            want[i] = (float)(u.r[i] * (0.5 * (1.0 + erf(v / sqrt(2.0))) + v * pdf));
        }
        snprintf(what, sizeof what, "gelu bwd closed form n=%zu", n);
        ssl_test_close(what, dx, want, n, 1e-6, 1e-5);
    } else {
        float *g = malloc(n * sizeof(float));
        memcpy(g, u.r, n * sizeof(float));
        C.be->relu_bwd(&C, n, u.y, g, g);
        snprintf(what, sizeof what, "relu bwd in place n=%zu", n);
        ssl_test_close(what, g, dx, n, 0, 0);
        free(g);
    }
    free(u.x), free(u.y), free(u.r), free(want), free(dx);
}

/* GELU over a dense grid including the tails, where 0.5 * x * (1 + erf) would lose all relative
 * accuracy in float, plus special values (PyTorch gives NaN for gelu(-inf) as well). */
static void test_gelu_range(void)
{
    size_t n = 240001;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    float *one = malloc(n * sizeof(float)), *d = malloc(n * sizeof(float));
    float *wy = malloc(n * sizeof(float)), *wd = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(-12.0 + 24.0 * (double)i / (double)(n - 1));
        one[i] = 1.0f;
        double v = x[i], cdf = 0.5 * erfc(-v / sqrt(2.0));
        wy[i] = (float)(v * cdf);
        wd[i] = (float)(cdf + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846));
    }
    C.be->gelu_fwd(&C, n, x, y);
    C.be->gelu_bwd(&C, n, x, one, d);
    ssl_test_close("gelu fwd [-12, 12] relative", y, wy, n, 1e-37, 1e-5);
    ssl_test_close("gelu bwd [-12, 12]", d, wd, n, 1e-6, 1e-5);
    float sx[4] = {NAN, INFINITY, -INFINITY, -30.0f}, sy[4];
    C.be->gelu_fwd(&C, 4, sx, sy);
    SSL_EXPECT(isnan(sy[0]) && sy[1] == INFINITY && isnan(sy[2]) && fabsf(sy[3]) < 1e-37f,
               "gelu(nan, inf, -inf, -30) = %g %g %g %g", sy[0], sy[1], sy[2], sy[3]);
    free(x), free(y), free(one), free(d), free(wy), free(wd);
}

/* ---- bias over (outer, C, inner) ------------------------------------------------------------ */
typedef struct {
    int64_t outer, ch, inner;
    float *x, *b, *y, *r;
} bias_ud;

static double bias_loss(void *p)
{
    bias_ud *u = p;
    size_t n = (size_t)(u->outer * u->ch * u->inner);
    memcpy(u->y, u->x, n * sizeof(float));
    C.be->bias_add(&C, u->outer, u->ch, u->inner, u->b, u->y);
    return ssl_test_dot(u->y, u->r, n);
}

static void test_bias(int64_t outer, int64_t ch, int64_t inner)
{
    char what[96];
    size_t n = (size_t)(outer * ch * inner);
    bias_ud u = {outer, ch, inner, randv(n, 20, -1, 1), randv((size_t)ch, 21, -1, 1),
                 malloc(n * sizeof(float)), randv(n, 22, -1, 1)};
    float *want = malloc(n * sizeof(float));
    bias_loss(&u);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < ch; c++)
            for (int64_t i = 0; i < inner; i++) {
                size_t k = (size_t)((o * ch + c) * inner + i);
                want[k] = (float)((double)u.x[k] + u.b[c]);
            }
    snprintf(what, sizeof what, "bias_add (%lld,%lld,%lld)", (long long)outer, (long long)ch,
             (long long)inner);
    ssl_test_close(what, u.y, want, n, 0, 0);

    /* db += ...: start from a known value, compare the increment to finite differences */
    float *db = malloc((size_t)ch * sizeof(float)), *inc = malloc((size_t)ch * sizeof(float));
    float *dref = malloc((size_t)ch * sizeof(float));
    for (int64_t c = 0; c < ch; c++) db[c] = 3.0f;
    C.be->bias_grad(&C, outer, ch, inner, u.r, db);
    for (int64_t c = 0; c < ch; c++) {
        inc[c] = db[c] - 3.0f;
        double s = 3.0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) s += u.r[(o * ch + c) * inner + i];
        dref[c] = (float)s;
    }
    snprintf(what, sizeof what, "bias_grad accumulate (%lld,%lld,%lld)", (long long)outer,
             (long long)ch, (long long)inner);
    ssl_test_close(what, db, dref, (size_t)ch, 1e-5, 1e-6);
    snprintf(what, sizeof what, "bias_grad (%lld,%lld,%lld)", (long long)outer, (long long)ch,
             (long long)inner);
    /* the loss is linear in b: only rounding separates fd from the gradient */
    ssl_test_gradcheck(what, bias_loss, &u, u.b, (size_t)ch, inc, 100, 1e-2f, 2e-3, 1e-3);
    free(u.x), free(u.b), free(u.y), free(u.r), free(want), free(db), free(inc), free(dref);
}

/* ---- reductions: double accuracy and the same bits for any thread count --------------------- */
static void test_reduce(size_t n)
{
    float *x = randv(n, 30, -1, 1), *y = randv(n, 31, -1, 1);
    double s = 0, ss = 0, d = 0;
    for (size_t i = 0; i < n; i++) s += x[i], ss += (double)x[i] * x[i], d += (double)x[i] * y[i];
    double got_s = C.be->sum(&C, n, x), got_ss = C.be->sumsq(&C, n, x);
    double got_d = C.be->dot(&C, n, x, y);
    SSL_EXPECT(fabs(got_s - s) <= 1e-9 * (1 + fabs(s)), "sum n=%zu: %.17g vs %.17g", n, got_s, s);
    SSL_EXPECT(fabs(got_ss - ss) <= 1e-9 * (1 + ss), "sumsq n=%zu: %.17g vs %.17g", n, got_ss, ss);
    SSL_EXPECT(fabs(got_d - d) <= 1e-9 * (1 + fabs(d)), "dot n=%zu: %.17g vs %.17g", n, got_d, d);
    int keep = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        double a = C.be->sum(&C, n, x), b = C.be->sumsq(&C, n, x), e = C.be->dot(&C, n, x, y);
        SSL_EXPECT(a == got_s && b == got_ss && e == got_d,
                   "reductions n=%zu differ with %d thread(s)", n, t);
    }
    omp_set_num_threads(keep);
    free(x), free(y);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    test_basic(1000);
    test_basic(100003);
    test_act(0, 1000);
    test_act(0, 70001);
    test_act(1, 1000);
    test_act(1, 70001);
    test_gelu_range();
    test_bias(7, 5, 1);
    test_bias(3, 4, 9);
    test_bias(600, 130, 1);   /* column-block path, several blocks, parallel */
    test_bias(4, 70, 150);
    test_reduce(0);
    test_reduce(1);
    test_reduce(1000);
    test_reduce(3000017);
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
