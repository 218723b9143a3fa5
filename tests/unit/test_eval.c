/* kNN and linear-probe evaluation: weighted kNN agrees exactly with a naive double-precision DINO
 * knn_classifier written here, ties resolve deterministically, separable clusters score ~100% and
 * random labels ~chance for both evaluators, the probe is deterministic for a seed, and bad input
 * is reported as a message. Raw Fashion-MNIST pixels give a printed (not asserted) sanity number. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/core/ctx.h"
#include "framework/core/rng.h"
#include "framework/eval/knn.h"
#include "framework/eval/linear_probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Gaussian clusters: class centres from make_centres, samples centre + N(0, 1). Labels cycle
 * through the classes, or are uniform random (independent of the features) when random_labels. */
static void make_clusters(uint64_t seed, int64_t n, int D, int C, int random_labels,
                          const float *centres, float *x, int32_t *y)
{
    ssl_rng r;
    ssl_rng_init(&r, seed, 1);
    for (int64_t i = 0; i < n; i++) {
        int cl = (int)(i % C);
        for (int j = 0; j < D; j++) x[i * D + j] = centres[cl * D + j] + ssl_rng_normal(&r);
        y[i] = random_labels ? (int32_t)(ssl_rng_u32(&r) % (uint32_t)C) : cl;
    }
}

static float *make_centres(uint64_t seed, int D, int C, float sep)
{
    float *c = malloc((size_t)C * D * sizeof(float));
    ssl_rng r;
    ssl_rng_init(&r, seed, 0);
    ssl_rng_fill_normal(&r, c, (size_t)C * D, 0.0f, sep);
    return c;
}

/* DINO's knn_classifier in double, written independently: full sort of every similarity row. */
typedef struct { double s; int64_t i; } ref_nb;
static int ref_cmp(const void *pa, const void *pb)
{
    const ref_nb *a = pa, *b = pb;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

static void naive_knn(const float *train, const int32_t *ytr, int64_t ntr, const float *test,
                      const int32_t *yte, int64_t nte, int D, int C, const int *ks, int nks,
                      double T, int32_t *pred, double *top1, double *top5)
{
    double *trn = malloc((size_t)ntr * D * sizeof(double));
    for (int64_t i = 0; i < ntr; i++) {
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)train[i * D + j] * train[i * D + j];
        double nrm = fmax(sqrt(ss), 1e-12);
        for (int j = 0; j < D; j++) trn[i * D + j] = train[i * D + j] / nrm;
    }
    ref_nb *nb = malloc((size_t)ntr * sizeof *nb);
    double *votes = malloc((size_t)C * sizeof(double));
    int64_t ok1[8] = {0}, ok5[8] = {0};
    for (int64_t t = 0; t < nte; t++) {
        double ss = 0, v[256];
        for (int j = 0; j < D; j++) ss += (double)test[t * D + j] * test[t * D + j];
        for (int j = 0; j < D; j++) v[j] = test[t * D + j] / fmax(sqrt(ss), 1e-12);
        for (int64_t i = 0; i < ntr; i++) {
            double s = 0;
            for (int j = 0; j < D; j++) s += v[j] * trn[i * D + j];
            nb[i] = (ref_nb){s, i};
        }
        qsort(nb, (size_t)ntr, sizeof *nb, ref_cmp);
        for (int q = 0; q < nks; q++) {
            for (int cl = 0; cl < C; cl++) votes[cl] = 0;
            for (int j = 0; j < ks[q]; j++) votes[ytr[nb[j].i]] += exp(nb[j].s / T);
            /* classes by vote, descending, lower index first on equal votes */
            int order[64], used[64] = {0};
            for (int r = 0; r < C; r++) {
                int best = -1;
                for (int cl = 0; cl < C; cl++)
                    if (!used[cl] && (best < 0 || votes[cl] > votes[best])) best = cl;
                used[best] = 1;
                order[r] = best;
            }
            pred[q * nte + t] = order[0];
            int top = ks[q] < 5 ? ks[q] : 5;
            ok1[q] += order[0] == yte[t];
            for (int r = 0; r < top && r < C; r++) ok5[q] += order[r] == yte[t];
        }
    }
    for (int q = 0; q < nks; q++) {
        top1[q] = 100.0 * (double)ok1[q] / (double)nte;
        top5[q] = 100.0 * (double)ok5[q] / (double)nte;
    }
    free(votes);
    free(nb);
    free(trn);
}

static void test_knn_matches_naive(ssl_ctx *c)
{
    /* 600 test rows: more than one 256-row chunk plus a remainder */
    const int64_t ntr = 400, nte = 600;
    const int D = 24, C = 7;
    float *tr = malloc((size_t)ntr * D * sizeof(float)), *te = malloc((size_t)nte * D * sizeof(float));
    int32_t *ytr = malloc((size_t)ntr * sizeof(int32_t)), *yte = malloc((size_t)nte * sizeof(int32_t));
    /* weakly clustered so accuracy is neither 0 nor 100 and votes are not all unanimous */
    float *cen = make_centres(11, D, C, 0.4f);
    make_clusters(12, ntr, D, C, 0, cen, tr, ytr);
    make_clusters(13, nte, D, C, 0, cen, te, yte);
    const int ks[3] = {1, 5, 20};
    double top1[3], top5[3], rtop1[3], rtop5[3];
    int32_t *pred = malloc(3 * (size_t)nte * sizeof(int32_t)), *rpred = malloc(3 * (size_t)nte * sizeof(int32_t));
    char err[256];
    int rc = ssl_knn_eval_ex(c, tr, ytr, ntr, te, yte, nte, D, C, ks, 3, SSL_KNN_DEFAULT_T, top1,
                             top5, pred, err, sizeof err);
    SSL_EXPECT(rc == 0, "knn: %s", err);
    naive_knn(tr, ytr, ntr, te, yte, nte, D, C, ks, 3, SSL_KNN_DEFAULT_T, rpred, rtop1, rtop5);
    for (int q = 0; q < 3; q++) {
        int64_t diff = 0;
        for (int64_t t = 0; t < nte; t++) diff += pred[q * nte + t] != rpred[q * nte + t];
        SSL_EXPECT(diff == 0, "k=%d: %lld of %lld predictions differ from the naive kNN", ks[q],
                   (long long)diff, (long long)nte);
        SSL_EXPECT(top1[q] == rtop1[q], "k=%d: top1 %.4f, naive %.4f", ks[q], top1[q], rtop1[q]);
        SSL_EXPECT(top5[q] == rtop5[q], "k=%d: top5 %.4f, naive %.4f", ks[q], top5[q], rtop5[q]);
        printf("knn vs naive: k=%-2d top1 %.2f%% (naive %.2f%%) top5 %.2f%% (naive %.2f%%)\n",
               ks[q], top1[q], rtop1[q], top5[q], rtop5[q]);
    }
    SSL_EXPECT(top1[1] > 100.0 / C + 10 && top1[1] < 99, "weak clusters should be in between: %.2f", top1[1]);
    /* top-5 >= top-1; k=1 top-5 equals top-1 (DINO: the first min(5, k) classes) */
    for (int q = 0; q < 3; q++) SSL_EXPECT(top5[q] >= top1[q], "top5 %.2f < top1 %.2f", top5[q], top1[q]);
    SSL_EXPECT(top5[0] == top1[0], "k=1: top5 %.2f != top1 %.2f", top5[0], top1[0]);

    /* k given in any order and repeated: same per-k answers as the single-k runs */
    const int ks2[4] = {20, 1, 20, 5};
    double t2[4];
    rc = ssl_knn_eval(c, tr, ytr, ntr, te, yte, nte, D, C, ks2, 4, SSL_KNN_DEFAULT_T, t2, err, sizeof err);
    SSL_EXPECT(rc == 0 && t2[0] == top1[2] && t2[1] == top1[0] && t2[2] == top1[2] && t2[3] == top1[1],
               "ks order: %.2f %.2f %.2f %.2f", t2[0], t2[1], t2[2], t2[3]);
    for (int q = 0; q < 3; q++) {
        double one;
        rc = ssl_knn_eval(c, tr, ytr, ntr, te, yte, nte, D, C, &ks[q], 1, SSL_KNN_DEFAULT_T, &one, err, sizeof err);
        SSL_EXPECT(rc == 0 && one == top1[q], "single k=%d: %.2f vs %.2f", ks[q], one, top1[q]);
    }
    free(pred);
    free(rpred);
    free(cen);
    free(tr);
    free(te);
    free(ytr);
    free(yte);
}

static void test_knn_separable_and_random(ssl_ctx *c)
{
    const int64_t ntr = 2000, nte = 1000;
    const int D = 32, C = 10;
    float *tr = malloc((size_t)ntr * D * sizeof(float)), *te = malloc((size_t)nte * D * sizeof(float));
    int32_t *ytr = malloc((size_t)ntr * sizeof(int32_t)), *yte = malloc((size_t)nte * sizeof(int32_t));
    float *cen = make_centres(21, D, C, 3.0f);
    make_clusters(22, ntr, D, C, 0, cen, tr, ytr);
    make_clusters(23, nte, D, C, 0, cen, te, yte);
    const int ks[4] = {1, 10, 20, 200};
    double top1[4], top5[4];
    char err[256];
    SSL_EXPECT(ssl_knn_eval_ex(c, tr, ytr, ntr, te, yte, nte, D, C, ks, 4, SSL_KNN_DEFAULT_T, top1,
                               top5, NULL, err, sizeof err) == 0, "%s", err);
    for (int q = 0; q < 4; q++) {
        printf("knn separable: k=%-3d top1 %.2f%% top5 %.2f%%\n", ks[q], top1[q], top5[q]);
        SSL_EXPECT(top1[q] >= 99.0, "separable clusters k=%d: top1 %.2f", ks[q], top1[q]);
        SSL_EXPECT(top5[q] == 100.0, "separable clusters k=%d: top5 %.2f", ks[q], top5[q]);
    }
    /* random labels: features carry no information about them */
    make_clusters(24, ntr, D, C, 1, cen, tr, ytr);
    make_clusters(25, nte, D, C, 1, cen, te, yte);
    SSL_EXPECT(ssl_knn_eval_ex(c, tr, ytr, ntr, te, yte, nte, D, C, ks, 4, SSL_KNN_DEFAULT_T, top1,
                               top5, NULL, err, sizeof err) == 0, "%s", err);
    for (int q = 0; q < 4; q++) {
        printf("knn random labels: k=%-3d top1 %.2f%% top5 %.2f%% (chance 10 / 50)\n", ks[q], top1[q], top5[q]);
        /* 1000 test rows: std of the accuracy ~1 point; 5 points is ~5 sigma */
        SSL_EXPECT(fabs(top1[q] - 10.0) < 5.0, "random labels k=%d: top1 %.2f", ks[q], top1[q]);
        /* k = 1 has one candidate class, so its top-5 is its top-1 (DINO's min(5, k)) */
        if (ks[q] >= 5)
            SSL_EXPECT(fabs(top5[q] - 50.0) < 8.0, "random labels k=%d: top5 %.2f", ks[q], top5[q]);
    }
    /* fewer than 5 classes: no top-5 */
    for (int64_t i = 0; i < ntr; i++) ytr[i] %= 3;
    for (int64_t i = 0; i < nte; i++) yte[i] %= 3;
    SSL_EXPECT(ssl_knn_eval_ex(c, tr, ytr, ntr, te, yte, nte, D, 3, ks, 1, SSL_KNN_DEFAULT_T, top1,
                               top5, NULL, err, sizeof err) == 0 && isnan(top5[0]),
               "3 classes: top5 should be NaN, got %.2f", top5[0]);
    free(cen);
    free(tr);
    free(te);
    free(ytr);
    free(yte);
}

/* Exact ties (duplicate training features): lower training index is nearer; equal votes go to
 * the lower class. Values are chosen so every similarity is computed exactly in fp32. */
static void test_knn_ties(ssl_ctx *c)
{
    const int D = 4;
    const float tr[5 * 4] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0};
    const int32_t ytr[5] = {2, 1, 0, 1, 3};
    const float te[2 * 4] = {2, 0, 0, 0, 1, 1, 0, 0};
    const int32_t yte[2] = {1, 0};
    const int ks[5] = {1, 2, 3, 4, 5};
    double top1[5];
    int32_t pred[5 * 2];
    char err[256];
    for (int rep = 0; rep < 3; rep++) {
        SSL_EXPECT(ssl_knn_eval_ex(c, tr, ytr, 5, te, yte, 2, D, 4, ks, 5, SSL_KNN_DEFAULT_T, top1,
                                   NULL, pred, err, sizeof err) == 0, "%s", err);
        /* test 0 = e1: neighbours r0 (2), r1 (1) at sim 1, then r2, r3, r4 at 0 */
        const int32_t want0[5] = {2, 1, 1, 1, 1};
        /* test 1 = e1+e2: r0..r3 tie at 1/sqrt(2), order r0 (2), r1 (1), r2 (0), r3 (1) */
        const int32_t want1[5] = {2, 1, 0, 1, 1};
        for (int q = 0; q < 5; q++) {
            SSL_EXPECT(pred[q * 2 + 0] == want0[q], "ties, test 0, k=%d: pred %d want %d", ks[q],
                       pred[q * 2 + 0], want0[q]);
            SSL_EXPECT(pred[q * 2 + 1] == want1[q], "ties, test 1, k=%d: pred %d want %d", ks[q],
                       pred[q * 2 + 1], want1[q]);
        }
    }
}

static void test_knn_errors(ssl_ctx *c)
{
    float tr[4 * 2] = {1, 0, 0, 1, 1, 1, -1, 0}, te[2] = {1, 0};
    int32_t ytr[4] = {0, 1, 1, 0}, yte[1] = {0};
    double top1[1];
    char err[256];
    int k = 5;
    SSL_EXPECT(ssl_knn_eval(c, tr, ytr, 4, te, yte, 1, 2, 2, &k, 1, 0.07f, top1, err, sizeof err) != 0 &&
               strstr(err, "k = 5"), "k > ntrain: %s", err);
    k = 2;
    ytr[2] = 7;
    SSL_EXPECT(ssl_knn_eval(c, tr, ytr, 4, te, yte, 1, 2, 2, &k, 1, 0.07f, top1, err, sizeof err) != 0 &&
               strstr(err, "train label 2"), "label range: %s", err);
    ytr[2] = 1;
    SSL_EXPECT(ssl_knn_eval(c, tr, ytr, 4, te, yte, 1, 2, 2, &k, 1, 0.0f, top1, err, sizeof err) != 0 &&
               strstr(err, "temperature"), "T = 0: %s", err);
    tr[3] = NAN;
    SSL_EXPECT(ssl_knn_eval(c, tr, ytr, 4, te, yte, 1, 2, 2, &k, 1, 0.07f, top1, err, sizeof err) != 0 &&
               strstr(err, "non-finite"), "NaN features: %s", err);
}

static void test_probe(ssl_ctx *c)
{
    const int64_t ntr = 2000, nte = 1000;
    const int D = 32, C = 10;
    float *tr = malloc((size_t)ntr * D * sizeof(float)), *te = malloc((size_t)nte * D * sizeof(float));
    int32_t *ytr = malloc((size_t)ntr * sizeof(int32_t)), *yte = malloc((size_t)nte * sizeof(int32_t));
    float *cen = make_centres(31, D, C, 3.0f);
    make_clusters(32, ntr, D, C, 0, cen, tr, ytr);
    make_clusters(33, nte, D, C, 0, cen, te, yte);
    /* an offset and scale far from 0/1 per feature: standardisation must undo it */
    for (int64_t i = 0; i < ntr * D; i++) tr[i] = 40.0f + 0.01f * tr[i] * (float)(1 + i % D);
    for (int64_t i = 0; i < nte * D; i++) te[i] = 40.0f + 0.01f * te[i] * (float)(1 + i % D);
    double top1, top1b, loss, lossb;
    char err[256];
    SSL_EXPECT(ssl_linear_probe_ex(c, tr, ytr, ntr, te, yte, nte, D, C, 10, 0.1f, 64, 1e-4f, 7,
                                   &top1, &loss, 1, err, sizeof err) == 0, "%s", err);
    printf("linear probe separable: top1 %.2f%%, last-epoch train loss %.4f\n", top1, loss);
    SSL_EXPECT(top1 >= 99.0, "separable: top1 %.2f", top1);
    SSL_EXPECT(loss < 0.1, "separable: train loss %.4f", loss);
    /* determinism for a seed, and the seed matters (shuffle order) */
    SSL_EXPECT(ssl_linear_probe_ex(c, tr, ytr, ntr, te, yte, nte, D, C, 10, 0.1f, 64, 1e-4f, 7,
                                   &top1b, &lossb, 0, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(top1b == top1 && lossb == loss, "same seed: %.17g/%.17g vs %.17g/%.17g", top1, loss,
               top1b, lossb);
    SSL_EXPECT(ssl_linear_probe_ex(c, tr, ytr, ntr, te, yte, nte, D, C, 10, 0.1f, 64, 1e-4f, 8,
                                   &top1b, &lossb, 0, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(lossb != loss, "another seed should change the loss trajectory (%.17g)", loss);
    /* the short API gives the same accuracy */
    SSL_EXPECT(ssl_linear_probe(c, tr, ytr, ntr, te, yte, nte, D, C, 10, 0.1f, 64, 1e-4f, 7, &top1b,
                                err, sizeof err) == 0 && top1b == top1, "short API: %.2f", top1b);
    /* a batch larger than the split: one full-batch step per epoch */
    SSL_EXPECT(ssl_linear_probe(c, tr, ytr, ntr, te, yte, nte, D, C, 30, 1.0f, 100000, 0.0f, 7, &top1b,
                                err, sizeof err) == 0 && top1b >= 95.0, "full batch: %.2f (%s)", top1b, err);

    /* random labels: chance on the test split */
    make_clusters(34, ntr, D, C, 1, cen, tr, ytr);
    make_clusters(35, nte, D, C, 1, cen, te, yte);
    SSL_EXPECT(ssl_linear_probe_ex(c, tr, ytr, ntr, te, yte, nte, D, C, 10, 0.1f, 64, 1e-4f, 7,
                                   &top1, &loss, 0, err, sizeof err) == 0, "%s", err);
    printf("linear probe random labels: top1 %.2f%% (chance 10), train loss %.4f (log 10 = %.4f)\n",
           top1, loss, log(10.0));
    SSL_EXPECT(fabs(top1 - 10.0) < 5.0, "random labels: top1 %.2f", top1);
    SSL_EXPECT(loss > 2.0, "random labels: train loss %.4f should stay near log 10", loss);

    /* errors come back as messages */
    ytr[5] = -1;
    SSL_EXPECT(ssl_linear_probe(c, tr, ytr, ntr, te, yte, nte, D, C, 1, 0.1f, 64, 0, 7, &top1, err,
                                sizeof err) != 0 && strstr(err, "train label 5"), "label: %s", err);
    ytr[5] = 0;
    SSL_EXPECT(ssl_linear_probe(c, tr, ytr, ntr, te, yte, nte, D, C, 0, 0.1f, 64, 0, 7, &top1, err,
                                sizeof err) != 0 && strstr(err, "epochs"), "epochs: %s", err);
    tr[17] = INFINITY;
    SSL_EXPECT(ssl_linear_probe(c, tr, ytr, ntr, te, yte, nte, D, C, 1, 0.1f, 64, 0, 7, &top1, err,
                                sizeof err) != 0 && strstr(err, "non-finite"), "inf feature: %s", err);
    free(cen);
    free(tr);
    free(te);
    free(ytr);
    free(yte);
}

/* idx-ubyte.gz reader for the Debian dataset-fashion-mnist package; 0 when absent. */
static int read_idx(const char *path, int64_t maxn, int64_t *n_out, int *dim_out, float **x,
                    int32_t **y)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return 0;
    unsigned char h[16];
    int ok = gzread(f, h, 8) == 8;
    int magic = ok ? h[2] << 8 | h[3] : 0;
    int64_t n = ok ? (int64_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7] : 0;
    if (n > maxn) n = maxn;
    int dim = 1;
    if (ok && magic == 0x0803) {
        ok = gzread(f, h + 8, 8) == 8;
        dim = (h[8] << 24 | h[9] << 16 | h[10] << 8 | h[11]) * (h[12] << 24 | h[13] << 16 | h[14] << 8 | h[15]);
    }
    /* bound the header's sizes: a corrupt file must not ask for an absurd allocation */
    if (n < 0 || dim < 1 || dim > 4096) ok = 0;
    if (!ok) {
        gzclose(f);
        return 0;
    }
    unsigned char *buf = malloc((size_t)n * (size_t)dim);
    ok = ok && gzread(f, buf, (unsigned)(n * dim)) == (int)(n * dim);
    gzclose(f);
    if (ok && magic == 0x0803) {
        *x = malloc((size_t)(n * dim) * sizeof(float));
        for (int64_t i = 0; i < n * dim; i++) (*x)[i] = buf[i] / 255.0f;
        *dim_out = dim;
    } else if (ok) {
        *y = malloc((size_t)n * sizeof(int32_t));
        for (int64_t i = 0; i < n; i++) (*y)[i] = buf[i];
    }
    free(buf);
    *n_out = n;
    return ok;
}

static void fashion_mnist_sanity(ssl_ctx *c)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char p[4][256];
    const char *names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    float *xtr = NULL, *xte = NULL;
    int32_t *ytr = NULL, *yte = NULL;
    int64_t ntr = 0, nte = 0, n2;
    int D = 0, D2;
    /* a subset keeps it well under a second */
    if (!read_idx(p[0], 10000, &ntr, &D, &xtr, NULL) || !read_idx(p[1], 10000, &n2, &D2, NULL, &ytr) ||
        !read_idx(p[2], 2000, &nte, &D, &xte, NULL) || !read_idx(p[3], 2000, &n2, &D2, NULL, &yte)) {
        printf("fashion-mnist not found under %s: real-data sanity skipped\n", dir);
    } else {
        const int ks[2] = {10, 20};
        double top1[2], probe;
        char err[256];
        if (ssl_knn_eval(c, xtr, ytr, ntr, xte, yte, nte, D, 10, ks, 2, SSL_KNN_DEFAULT_T, top1, err,
                         sizeof err) == 0)
            printf("fashion-mnist raw pixels (10k train / 2k test): knn k=10 %.2f%%, k=20 %.2f%%\n",
                   top1[0], top1[1]);
        else
            SSL_EXPECT(0, "fashion-mnist knn: %s", err);
        if (ssl_linear_probe(c, xtr, ytr, ntr, xte, yte, nte, D, 10, 10, 0.05f, 256, 1e-4f, 1, &probe,
                             err, sizeof err) == 0)
            printf("fashion-mnist raw pixels: linear probe (10 epochs) %.2f%%\n", probe);
        else
            SSL_EXPECT(0, "fashion-mnist probe: %s", err);
    }
    free(xtr);
    free(xte);
    free(ytr);
    free(yte);
}

int main(void)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    test_knn_matches_naive(&c);
    test_knn_separable_and_random(&c);
    test_knn_ties(&c);
    test_knn_errors(&c);
    test_probe(&c);
    fashion_mnist_sanity(&c);
    ssl_ctx_free(&c);
    return ssl_test_exit();
}
