/* Weighted kNN evaluation (DINO's knn_classifier). Similarities come from the backend GEMM over
 * chunks of test rows sized so the (rows, ntrain) block stays bounded; top-k selection and voting
 * run on the host, one row per OpenMP thread, so results do not depend on the thread count. */
#include "framework/eval/knn.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound on the similarity block in floats (256 MiB): DINO's 100 fixed chunks would hold
 * ntest/100 x ntrain floats, which grows without bound with the dataset. */
#define KNN_BLOCK_FLOATS ((size_t)64 << 20)
#define KNN_MAX_ROWS 256

typedef struct {
    float s;   /* cosine similarity */
    int64_t i; /* training row */
} knn_nb;

static int knn_fail(char *err, size_t errlen, const char *fmt, ...) SSL_PRINTF(3, 4);
static int knn_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The nearer of two neighbours: higher similarity, then lower training index, so equal
 * similarities (duplicate images) resolve the same way on every run and thread count. */
static inline int nb_better(knn_nb a, knn_nb b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

static int nb_cmp(const void *pa, const void *pb)
{
    knn_nb a = *(const knn_nb *)pa, b = *(const knn_nb *)pb;
    return nb_better(a, b) ? -1 : nb_better(b, a) ? 1 : 0;
}

/* Heap with the worst kept neighbour at the root, so a candidate needs one comparison to be
 * rejected: O(ntrain log k) per row instead of a full sort. */
static void heap_sift_down(knn_nb *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && nb_better(h[w], h[l])) w = l;
        if (r < n && nb_better(h[w], h[r])) w = r;
        if (w == i) return;
        knn_nb t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_sift_up(knn_nb *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!nb_better(h[p], h[i])) return;
        knn_nb t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* The k nearest neighbours of one similarity row, nearest first. Returns 0, or -1 on a NaN
 * similarity (non-finite features), which would otherwise silently poison the ranking. */
static int topk_row(const float *sim, int64_t ntrain, int k, knn_nb *h)
{
    int n = 0;
    for (int64_t j = 0; j < ntrain; j++) {
        float s = sim[j];
        if (isnan(s)) return -1;
        if (n < k) {
            h[n] = (knn_nb){s, j};
            heap_sift_up(h, n++);
        } else if (s > h[0].s) {
            /* an equal similarity never replaces: its index is higher than every kept one */
            h[0] = (knn_nb){s, j};
            heap_sift_down(h, n, 0);
        }
    }
    qsort(h, (size_t)n, sizeof *h, nb_cmp);
    return 0;
}

/* Votes of the nearest neighbours, prefix by prefix; for every requested k records the predicted
 * class and the rank of the true class (classes ordered by vote, lower index first on ties). */
static void vote_row(const knn_nb *nb, int kmax, const int32_t *train_labels, int num_classes,
                     double invT, int32_t y, const int *ks, int nks, double *votes, int *rank_out,
                     int32_t *pred_out)
{
    memset(votes, 0, (size_t)num_classes * sizeof *votes);
    for (int j = 0; j < kmax; j++) {
        votes[train_labels[nb[j].i]] += exp((double)nb[j].s * invT);
        for (int q = 0; q < nks; q++) {
            if (ks[q] != j + 1) continue;
            double vy = votes[y];
            int rank = 0, best = 0;
            for (int cl = 0; cl < num_classes; cl++) {
                if (votes[cl] > vy || (votes[cl] == vy && cl < y)) rank++;
                if (votes[cl] > votes[best]) best = cl;
            }
            rank_out[q] = rank;
            pred_out[q] = best;
        }
    }
}

static int check_labels(const int32_t *lab, int64_t n, int num_classes, const char *what,
                        char *err, size_t errlen)
{
    for (int64_t i = 0; i < n; i++)
        if (lab[i] < 0 || lab[i] >= num_classes)
            return knn_fail(err, errlen, "knn: %s label %lld is %d, outside [0, %d)", what,
                            (long long)i, (int)lab[i], num_classes);
    return 0;
}

int ssl_knn_eval_ex(ssl_ctx *c, const float *train, const int32_t *train_labels, int64_t ntrain,
                    const float *test, const int32_t *test_labels, int64_t ntest, int D,
                    int num_classes, const int *ks, int nks, float T, double *top1_out,
                    double *top5_out, int32_t *pred_out, char *err, size_t errlen)
{
    if (!c || !c->be) return knn_fail(err, errlen, "knn: no context");
    if (ntrain < 1 || ntest < 1 || D < 1)
        return knn_fail(err, errlen, "knn: empty problem (ntrain %lld, ntest %lld, D %d)",
                        (long long)ntrain, (long long)ntest, D);
    if (ntrain > INT_MAX)
        return knn_fail(err, errlen, "knn: %lld training rows exceed the GEMM's int range",
                        (long long)ntrain);
    if (!train || !test || !train_labels || !test_labels || !ks || !top1_out)
        return knn_fail(err, errlen, "knn: NULL argument");
    if (num_classes < 1) return knn_fail(err, errlen, "knn: num_classes %d", num_classes);
    if (nks < 1) return knn_fail(err, errlen, "knn: no k requested");
    if (!(T > 0.0f) || !isfinite(T))
        return knn_fail(err, errlen, "knn: temperature %g must be > 0", T);
    int kmax = 0;
    for (int q = 0; q < nks; q++) {
        if (ks[q] < 1 || ks[q] > ntrain)
            return knn_fail(err, errlen, "knn: k = %d outside [1, ntrain = %lld]", ks[q],
                            (long long)ntrain);
        if (ks[q] > kmax) kmax = ks[q];
    }
    if (check_labels(train_labels, ntrain, num_classes, "train", err, errlen) ||
        check_labels(test_labels, ntest, num_classes, "test", err, errlen))
        return -1;

    const ssl_backend *be = c->be;
    const float eps = 1e-12f; /* torch.nn.functional.normalize's default */
    int64_t rows = (int64_t)(KNN_BLOCK_FLOATS / (size_t)ntrain);
    if (rows > KNN_MAX_ROWS) rows = KNN_MAX_ROWS;
    if (rows < 1) rows = 1;
    if (rows > ntest) rows = ntest;

    /* Device buffers: normalised train copy, one normalised test chunk, the similarity block. */
    float *trn = be->alloc((size_t)ntrain * (size_t)D * sizeof(float));
    float *trn_norm = be->alloc((size_t)ntrain * sizeof(float));
    float *tst = be->alloc((size_t)rows * (size_t)D * sizeof(float));
    float *tst_norm = be->alloc((size_t)rows * sizeof(float));
    float *sim = be->alloc((size_t)rows * (size_t)ntrain * sizeof(float));
    be->l2norm_fwd(c, ntrain, D, eps, train, trn, trn_norm);

    /* Host: the downloaded block and per-thread top-k / vote scratch. */
    float *sim_h = ssl_malloc((size_t)rows * (size_t)ntrain * sizeof(float));
    int nth = omp_get_max_threads();
    knn_nb *heaps = ssl_malloc((size_t)nth * (size_t)kmax * sizeof *heaps);
    double *votes = ssl_malloc((size_t)nth * (size_t)num_classes * sizeof *votes);
    int *rank = ssl_malloc((size_t)rows * (size_t)nks * sizeof *rank);
    int32_t *pred = ssl_malloc((size_t)rows * (size_t)nks * sizeof *pred);
    int64_t *correct1 = ssl_calloc((size_t)nks, sizeof *correct1);
    int64_t *correct5 = ssl_calloc((size_t)nks, sizeof *correct5);
    const double invT = 1.0 / (double)T;
    int bad = 0;

    for (int64_t r0 = 0; r0 < ntest && !bad; r0 += rows) {
        int64_t nr = ntest - r0 < rows ? ntest - r0 : rows;
        be->l2norm_fwd(c, nr, D, eps, test + r0 * D, tst, tst_norm);
        /* sim (nr, ntrain) = tst (nr, D) @ trn^T */
        be->gemm(c, 0, 1, (int)nr, (int)ntrain, D, 1.0f, tst, D, trn, D, 0.0f, sim, (int)ntrain);
        be->download(sim_h, sim, (size_t)nr * (size_t)ntrain * sizeof(float));
#pragma omp parallel for schedule(dynamic, 4) reduction(| : bad)
        for (int64_t r = 0; r < nr; r++) {
            int t = omp_get_thread_num();
            knn_nb *h = heaps + (size_t)t * (size_t)kmax;
            if (topk_row(sim_h + (size_t)r * (size_t)ntrain, ntrain, kmax, h) != 0) {
                bad |= 1;
                continue;
            }
            vote_row(h, kmax, train_labels, num_classes, invT, test_labels[r0 + r], ks, nks,
                     votes + (size_t)t * (size_t)num_classes, rank + r * nks, pred + r * nks);
        }
        if (bad) break;
        for (int64_t r = 0; r < nr; r++)
            for (int q = 0; q < nks; q++) {
                int rk = rank[r * nks + q];
                int top = ks[q] < 5 ? ks[q] : 5;
                correct1[q] += rk == 0;
                correct5[q] += rk < top;
                if (pred_out) pred_out[(int64_t)q * ntest + r0 + r] = pred[r * nks + q];
            }
    }

    if (!bad)
        for (int q = 0; q < nks; q++) {
            top1_out[q] = 100.0 * (double)correct1[q] / (double)ntest;
            if (top5_out)
                top5_out[q] = num_classes >= 5 ? 100.0 * (double)correct5[q] / (double)ntest : NAN;
        }

    ssl_free(correct5);
    ssl_free(correct1);
    ssl_free(pred);
    ssl_free(rank);
    ssl_free(votes);
    ssl_free(heaps);
    ssl_free(sim_h);
    be->free(sim);
    be->free(tst_norm);
    be->free(tst);
    be->free(trn_norm);
    be->free(trn);
    if (bad)
        return knn_fail(err, errlen, "knn: non-finite similarity (NaN or Inf in the features)");
    return 0;
}

int ssl_knn_eval(ssl_ctx *c, const float *train, const int32_t *train_labels, int64_t ntrain,
                 const float *test, const int32_t *test_labels, int64_t ntest, int D,
                 int num_classes, const int *ks, int nks, float T, double *top1_out, char *err,
                 size_t errlen)
{
    return ssl_knn_eval_ex(c, train, train_labels, ntrain, test, test_labels, ntest, D,
                           num_classes, ks, nks, T, top1_out, NULL, NULL, err, errlen);
}
