/* model.precision bf16 against PyTorch (fixture from make_fixtures_mixed.py): GEMMs (every transpose
 * pair, padded leading dimensions, alpha, beta) and convolutions (forward, backward data, backward
 * filter accumulating into a gradient) with c->bf16 set give torch's result: inputs rounded to
 * bfloat16, fp32 accumulation, the result rounded to bfloat16. The reference sums in float64, so a
 * result whose fp32 sum lies within accumulation error of a rounding boundary may round to the
 * neighbour: at most 1% of the elements, and those one bf16 ulp away. Unrounded inputs leave half of
 * the results off by one ulp and a fifth by more, and an unrounded output is no bf16 value, so either
 * fails. Runs on cpu and
 * devsim, and on cuda where a GPU is present (its bf16 tensor-core path against torch). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/backend/backend.h"
#include "framework/core/ctx.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#ifdef SSL_HAVE_CUDA
#include "framework/backend/cuda/cuda.h"
#endif

static const ssl_fixture *fx;

typedef struct {
    size_t n, exact, near, bad, unrounded;
} tally;

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* one element: equal bits, one bf16 ulp of the reference, or wrong; `rounded`: must be a bf16 value */
static void check(tally *t, float got, float want, int rounded, float tol)
{
    t->n++;
    if (rounded && (bits_of(got) & 0xFFFFu)) t->unrounded++;
    if (bits_of(got) == bits_of(want)) {
        t->exact++;
        return;
    }
    int e;
    frexpf(want, &e);
    const float ulp = ldexpf(1.0f, e - 8); /* bf16 keeps 8 significant bits: [2^(e-1), 2^e) in steps of 2^(e-8) */
    if (fabsf(got - want) <= ulp * 1.0001f + tol) t->near++;
    else t->bad++;
}

static void report(const char *be, const char *what, const tally *t)
{
    SSL_EXPECT(t->bad == 0 && t->unrounded == 0 && t->near * 100 <= t->n,
               "%s %s: %zu of %zu exact, %zu one ulp away, %zu wrong, %zu not bf16 values", be, what, t->exact, t->n,
               t->near, t->bad, t->unrounded);
}

static float *up(ssl_ctx *c, const float *h, size_t n)
{
    float *d = c->be->alloc(n * sizeof(float));
    c->be->upload(d, h, n * sizeof(float));
    return d;
}

static float *down(ssl_ctx *c, const float *d, size_t n)
{
    float *h = malloc(n * sizeof(float));
    c->be->sync(c);
    c->be->download(h, d, n * sizeof(float));
    return h;
}

static void gemms(ssl_ctx *c, const char *be)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            char p[32], k[48];
            snprintf(p, sizeof p, "gemm%d%d_", ta, tb);
            size_t na, nb, nc;
#define G(name, cnt) (snprintf(k, sizeof k, "%s%s", p, name), ssl_fixture_get(fx, k, cnt))
            const float *a = G("a", &na), *b = G("b", &nb), *c0 = G("c0", &nc), *want = G("out", NULL),
                        *dm = G("dims", NULL);
#undef G
            const int M = (int)dm[0], N = (int)dm[1], K = (int)dm[2], lda = (int)dm[3], ldb = (int)dm[4],
                      ldc = (int)dm[5];
            const float alpha = dm[6], beta = dm[7];
            float *da = up(c, a, na), *db = up(c, b, nb), *dc = up(c, c0, nc);
            ssl_ctx_autocast(c, 1);
            c->be->gemm(c, ta, tb, M, N, K, alpha, da, lda, db, ldb, beta, dc, ldc);
            ssl_ctx_autocast(c, 0);
            float *got = down(c, dc, nc);
            tally t = {0};
            for (int i = 0; i < M; i++)
                for (int j = 0; j < ldc; j++) {
                    const size_t o = (size_t)i * ldc + j;
                    if (j >= N) SSL_EXPECT(bits_of(got[o]) == bits_of(c0[o]), "%s %s: padding [%d,%d] written", be, p, i, j);
                    else check(&t, got[o], want[o], beta == 0.0f, beta == 0.0f ? 0.0f : 1e-6f * fabsf(want[o]));
                }
            report(be, p, &t);
            c->be->free(da), c->be->free(db), c->be->free(dc), free(got);
        }
}

static void convs(ssl_ctx *c, const char *be)
{
    for (int i = 0; i < 2; i++) {
        char p[32], k[48];
        snprintf(p, sizeof p, "conv%d_", i);
        size_t nx, nw, ny, n;
#define G(name, cnt) (snprintf(k, sizeof k, "%s%s", p, name), ssl_fixture_get(fx, k, cnt))
        const float *x = G("x", &nx), *w = G("w", &nw), *dy = G("dy", &ny), *dw0 = G("dw0", NULL), *wy = G("y", &n),
                    *wdx = G("dx", NULL), *wdw = G("dw", NULL), *dm = G("dims", NULL);
#undef G
        SSL_EXPECT(n == ny, "%s: y and dy sizes", p);
        const ssl_conv_shape s = ssl_conv_shape_make((int)dm[0], (int)dm[1], (int)dm[2], (int)dm[3], (int)dm[4],
                                                     (int)dm[5], (int)dm[6], (int)dm[7]);
        float *dx_ = up(c, x, nx), *dw_ = up(c, w, nw), *ddy = up(c, dy, ny), *dy_out = c->be->alloc(ny * sizeof(float)),
              *ddx = c->be->alloc(nx * sizeof(float)), *ddw = up(c, dw0, nw);
        ssl_ctx_autocast(c, 1);
        c->be->conv2d_fwd(c, &s, dx_, dw_, dy_out);
        c->be->conv2d_bwd_data(c, &s, ddy, dw_, ddx);
        c->be->conv2d_bwd_filter(c, &s, ddy, dx_, ddw);
        ssl_ctx_autocast(c, 0);
        float *gy = down(c, dy_out, ny), *gdx = down(c, ddx, nx), *gdw = down(c, ddw, nw);
        tally ty = {0}, tdx = {0}, tdw = {0};
        for (size_t j = 0; j < ny; j++) check(&ty, gy[j], wy[j], 1, 0);
        for (size_t j = 0; j < nx; j++) check(&tdx, gdx[j], wdx[j], 1, 0);
        /* dw0 + a bf16 value: within one ulp of that value plus fp32 rounding of the sum */
        for (size_t j = 0; j < nw; j++) check(&tdw, gdw[j], wdw[j], 0, 1e-6f * fabsf(wdw[j]));
        char what[64];
        snprintf(what, sizeof what, "%sforward", p);
        report(be, what, &ty);
        snprintf(what, sizeof what, "%sbackward data", p);
        report(be, what, &tdx);
        snprintf(what, sizeof what, "%sbackward filter", p);
        report(be, what, &tdw);
        c->be->free(dx_), c->be->free(dw_), c->be->free(ddy), c->be->free(dy_out), c->be->free(ddx), c->be->free(ddw);
        free(gy), free(gdx), free(gdw);
    }
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("mixed.bin");
    if (!f) return 1;
    fx = f;
    const char *backends[] = {"cpu", "devsim", "cuda"};
    for (int b = 0; b < 3; b++) {
        const ssl_backend *be = b == 0 ? ssl_backend_cpu() : b == 1 ? ssl_backend_devsim() : NULL;
#ifdef SSL_HAVE_CUDA
        if (b == 2 && ssl_cuda_device_count() > 0) be = ssl_backend_cuda();
#endif
        if (!be) {
            printf("%s: no GPU here\n", backends[b]);
            continue;
        }
        ssl_ctx c;
        memset(&c, 0, sizeof c); /* ssl_ctx_init by hand: the registry keeps cuda from trainers until verified */
        c.be = be;
        c.nthreads = omp_get_max_threads();
        ssl_arena_init(&c.act, be->alloc, be->free);
        if (be->ctx_init) be->ctx_init(&c);
        c.precision_bf16 = 1;
        gemms(&c, backends[b]);
        convs(&c, backends[b]);
        ssl_ctx_free(&c);
        printf("%s: bf16 GEMMs and convolutions as torch's rule\n", backends[b]);
    }
    ssl_fixture_free(f);
    return ssl_test_exit();
}
