/* Shuffle-BN's data movement across real ranks (2, 3, 4): ssl_shuffled_forward with a batch function that
 * records, per row, a function of the row's pixels and the rank that computed it. Every rank must get
 * back the value of ITS OWN sample i in row i (the un-shuffle inverts the shuffle, and all ranks drew the
 * same permutation), some samples must have been computed by another rank (it shuffles), which ones must
 * change with the key, and the batch function must see a batch of N rows whose BN-like statistic (its
 * mean) differs from the own batch's (so BN over it is not BN over the own samples). With G groups per
 * rank the function is called G times on N/G rows each, and rank r's call k sees exactly the samples
 * that one process with W x G groups sees in its call r G + k (so results do not depend on the rank
 * count), in the same order. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/layers/shuffle_bn.h"

#include <math.h>
#include <string.h>

#define N 6
#define P 10 /* pixels per sample */

#define CALLS 16

typedef struct {
    int rank;
    double batch_mean; /* mean of the first pixel over the batch the function saw */
    int calls;
    int64_t rows[CALLS];
    float ids[CALLS][4 * N]; /* the first pixel (a sample's global index) of each row, per call */
} probe;

static ssl_tensor record(ssl_ctx *c, ssl_tensor x, void *ud)
{
    probe *pr = ud;
    const int64_t n = x.shape[0];
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(n * 2)), n, 2);
    pr->batch_mean = 0;
    SSL_ASSERTF(pr->calls < CALLS && n <= 4 * N, "probe: too many calls or rows");
    pr->rows[pr->calls] = n;
    for (int64_t i = 0; i < n; i++) pr->ids[pr->calls][i] = x.data[i * P];
    pr->calls++;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < P; k++) s += (k + 1) * x.data[i * P + k];
        y.data[2 * i] = (float)s;
        y.data[2 * i + 1] = (float)pr->rank;
        pr->batch_mean += x.data[i * P] / (double)n;
    }
    return y;
}

int main(int argc, char **argv)
{
    ssl_comm *comm = ssl_comm_mpi_world(&argc, &argv);
    const int W = comm->world, r = comm->rank;
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    /* sample (q, i) of rank q: first pixel = its global index, so batches differ in mean */
    float *xg = ssl_malloc((size_t)W * N * P * sizeof *xg), *x = xg + (size_t)r * N * P;
    for (int q = 0; q < W; q++)
        for (int i = 0; i < N; i++)
            for (int k = 0; k < P; k++)
                xg[(q * N + i) * P + k] = k ? (float)((q * 31 + i * 7 + k) % 13) : (float)(q * N + i);
    double own_mean = 0;
    for (int i = 0; i < N; i++) own_mean += x[i * P] / N;
    int moved[2] = {0, 0};
    float by[2][N]; /* which rank computed each own row, per key */
    for (int t = 0; t < 2; t++) {
        probe pr = {.rank = r};
        ssl_ctx_step_begin(&c);
        ssl_tensor y = ssl_shuffled_forward(&c, comm, ssl_tensor_4d(x, N, 1, 1, P), 1234 + (uint64_t)t, 1, record, &pr);
        int wrong = 0;
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int k = 0; k < P; k++) s += (k + 1) * x[i * P + k];
            wrong += y.data[2 * i] != (float)s;
            moved[t] += y.data[2 * i + 1] != (float)r;
            by[t][i] = y.data[2 * i + 1];
        }
        SSL_EXPECT(wrong == 0, "rank %d, key %d: %d rows are not this rank's own samples", r, t, wrong);
        int64_t any[2] = {moved[t], fabs(pr.batch_mean - own_mean) > 1e-9};
        ssl_allreduce(comm, any, 2, SSL_I64, SSL_SUM);
        SSL_EXPECT(any[0] > 0, "key %d: no sample was computed by another rank", t);
        SSL_EXPECT(any[1] > 0, "key %d: every rank saw its own batch", t);
    }
    /* another key, another permutation: some row was computed by another rank */
    int64_t differ = memcmp(by[0], by[1], sizeof by[0]) != 0;
    ssl_allreduce(comm, &differ, 1, SSL_I64, SSL_SUM);
    SSL_EXPECT(differ > 0, "two keys placed every row on the same ranks");
    /* groups: rank r's calls are calls r G.. of one process holding the whole global batch */
    for (int G = 2; G <= 3; G++) {
        probe pr = {.rank = r}, one = {.rank = r};
        ssl_ctx_step_begin(&c);
        ssl_tensor y = ssl_shuffled_forward(&c, comm, ssl_tensor_4d(x, N, 1, 1, P), 99, G, record, &pr);
        int wrong = 0;
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int k = 0; k < P; k++) s += (k + 1) * x[i * P + k];
            wrong += y.data[2 * i] != (float)s;
        }
        SSL_EXPECT(wrong == 0, "rank %d, %d groups: %d rows are not this rank's own samples", r, G, wrong);
        ssl_shuffled_forward(&c, NULL, ssl_tensor_4d(xg, (int64_t)W * N, 1, 1, P), 99, W * G, record, &one);
        SSL_EXPECT(pr.calls == G && one.calls == W * G, "%d groups: %d calls here, %d in one process", G, pr.calls,
                   one.calls);
        for (int k = 0; k < G && k < pr.calls; k++)
            SSL_EXPECT(pr.rows[k] == N / G && one.rows[r * G + k] == N / G &&
                           !memcmp(pr.ids[k], one.ids[r * G + k], (size_t)(N / G) * sizeof(float)),
                       "rank %d, %d groups: call %d saw other samples than one process's call %d", r, G, k, r * G + k);
    }
    ssl_free(xg);
    if (r == 0) printf("shuffle-BN np=%d: own samples returned on every rank; rank 0 had %d and %d rows computed elsewhere\n", W,
                       moved[0], moved[1]);
    ssl_ctx_free(&c);
    return ssl_test_mpi_exit(comm);
}
