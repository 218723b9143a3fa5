/* CPU token movement: strided copy2d / add2d and gather_rows / scatter_add_rows against naive
 * loops (including that padding columns and untouched rows stay intact and that the adds
 * accumulate), and each pair as forward and backward of one another against finite differences. */
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

/* The losses are linear in the input: fd equals the gradient up to rounding (~1e-6 here), so a
 * tight tolerance still passes robustly, and a row or column off by one fails by O(1). */
#define FD_EPS 1e-2f
#define FD_ATOL 1e-4
#define FD_RTOL 1e-3

/* ---- copy2d / add2d ------------------------------------------------------------------------ */
typedef struct {
    int64_t rows, cols, lds, ldd;
    float *src, *dst, *r;
} c2_ud;

static double c2_loss(void *p)
{
    c2_ud *u = p;
    C.be->copy2d(&C, u->rows, u->cols, u->src, u->lds, u->dst, u->ldd);
    return ssl_test_dot(u->dst, u->r, (size_t)(u->rows * u->ldd));
}

static void test_copy2d(int64_t rows, int64_t cols, int64_t lds, int64_t ldd)
{
    char what[128], tag[80];
    snprintf(tag, sizeof tag, "(rows=%lld cols=%lld lds=%lld ldd=%lld)", (long long)rows,
             (long long)cols, (long long)lds, (long long)ldd);
    size_t ns = (size_t)(rows * lds), nd = (size_t)(rows * ldd);
    /* r is zero on dst's padding columns, which copy2d never writes */
    c2_ud u = {rows, cols, lds, ldd, randv(ns, 500, -1, 1), randv(nd, 501, -1, 1),
               randv(nd, 502, -1, 1)};
    float *d0 = malloc(nd * sizeof(float)), *want = malloc(nd * sizeof(float));
    memcpy(d0, u.dst, nd * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = cols; j < ldd; j++) u.r[r * ldd + j] = 0;

    /* copy: dst columns [0, cols) replaced, padding kept */
    c2_loss(&u);
    memcpy(want, d0, nd * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++) want[r * ldd + j] = u.src[r * lds + j];
    snprintf(what, sizeof what, "copy2d %s", tag);
    ssl_test_close(what, u.dst, want, nd, 0, 0);

    /* add: dst columns [0, cols) += src, padding kept */
    memcpy(u.dst, d0, nd * sizeof(float));
    C.be->add2d(&C, rows, cols, u.src, lds, u.dst, ldd);
    memcpy(want, d0, nd * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
            want[r * ldd + j] = (float)((double)d0[r * ldd + j] + u.src[r * lds + j]);
    snprintf(what, sizeof what, "add2d %s", tag);
    ssl_test_close(what, u.dst, want, nd, 0, 0);

    /* add2d is copy2d's backward: d(src) = add2d(dy -> zeros with src's stride) */
    float *g = calloc(ns, sizeof(float));
    C.be->add2d(&C, rows, cols, u.r, ldd, g, lds);
    snprintf(what, sizeof what, "copy2d/add2d bwd %s", tag);
    ssl_test_gradcheck(what, c2_loss, &u, u.src, ns, g, 300, FD_EPS, FD_ATOL, FD_RTOL);
    free(u.src), free(u.dst), free(u.r), free(d0), free(want), free(g);
}

/* ---- gather_rows / scatter_add_rows -------------------------------------------------------- */
typedef struct {
    int64_t n, M, cols;
    int32_t *idx;
    float *src, *dst, *r;
} g_ud;

static double g_loss(void *p)
{
    g_ud *u = p;
    C.be->gather_rows(&C, u->n, u->cols, u->idx, u->src, u->dst);
    return ssl_test_dot(u->dst, u->r, (size_t)(u->n * u->cols));
}

static void test_gather(int64_t n, int64_t M, int64_t cols)
{
    char what[128], tag[64];
    snprintf(tag, sizeof tag, "(n=%lld of M=%lld, cols=%lld)", (long long)n, (long long)M,
             (long long)cols);
    size_t nsrc = (size_t)(M * cols), ng = (size_t)(n * cols);
    g_ud u = {n, M, cols, malloc((size_t)M * sizeof(int32_t)), randv(nsrc, 510, -1, 1),
              malloc(ng * sizeof(float)), randv(ng, 511, -1, 1)};
    /* the first n entries of a random permutation of [0, M): distinct, as MAE's kept tokens */
    float *key = randv((size_t)M, 512, 0, 1);
    for (int64_t i = 0; i < M; i++) u.idx[i] = (int32_t)i;
    for (int64_t i = M - 1; i > 0; i--) {
        int64_t j = (int64_t)(key[i] * (float)(i + 1));
        if (j > i) j = i;
        int32_t t = u.idx[i];
        u.idx[i] = u.idx[j], u.idx[j] = t;
    }

    g_loss(&u);
    float *want = malloc((nsrc > ng ? nsrc : ng) * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        memcpy(want + i * cols, u.src + (int64_t)u.idx[i] * cols, (size_t)cols * sizeof(float));
    snprintf(what, sizeof what, "gather_rows %s", tag);
    ssl_test_close(what, u.dst, want, ng, 0, 0);

    /* scatter_add accumulates into the chosen rows and leaves the others alone */
    float *acc = randv(nsrc, 513, -1, 1);
    memcpy(want, acc, nsrc * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j++) {
            size_t k = (size_t)((int64_t)u.idx[i] * cols + j);
            want[k] = (float)((double)want[k] + u.r[i * cols + j]);
        }
    C.be->scatter_add_rows(&C, n, cols, u.idx, u.r, acc);
    snprintf(what, sizeof what, "scatter_add_rows %s", tag);
    ssl_test_close(what, acc, want, nsrc, 0, 0);

    /* scatter_add is gather's backward */
    float *g = calloc(nsrc, sizeof(float));
    C.be->scatter_add_rows(&C, n, cols, u.idx, u.r, g);
    snprintf(what, sizeof what, "gather/scatter_add bwd %s", tag);
    ssl_test_gradcheck(what, g_loss, &u, u.src, nsrc, g, 300, FD_EPS, FD_ATOL, FD_RTOL);
    free(u.idx), free(u.src), free(u.dst), free(u.r), free(key), free(want), free(acc), free(g);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    test_copy2d(5, 7, 7, 7);       /* contiguous */
    test_copy2d(4, 3, 10, 6);      /* slice out of a wider source into a padded destination */
    test_copy2d(1, 1, 1, 3);
    test_copy2d(300, 200, 260, 210); /* parallel */
    test_gather(5, 9, 6);
    test_gather(1, 1, 3);
    test_gather(49, 196, 768);     /* MAE: 25% of 196 patches kept, ViT-B width; parallel */
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
