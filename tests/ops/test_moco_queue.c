/* MoCo queue, one rank (comm NULL): the loss, pos_cos / neg_cos and dq against a straightforward
 * double-precision evaluation over the full logit row [pos | K keys] / tau, dq against central finite
 * differences as well; enqueue with wraparound; init keyed by global index (the world-1 queue equals
 * the concatenated shards of world 3, split 4,3,3) and the shard geometry. The multi-rank form is
 * tests/mpi/test_dp_moco_queue.c. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/moco_queue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

static void unit_rows(float *x, int64_t rows, int64_t d)
{
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t k = 0; k < d; k++) s += (double)x[i * d + k] * x[i * d + k];
        for (int64_t k = 0; k < d; k++) x[i * d + k] = (float)(x[i * d + k] / sqrt(s));
    }
}

/* Loss, cosines and gradient of the mean cross-entropy, all in double, from the textbook formula. */
static double reference(const ssl_moco_queue *q, const float *qry, const float *pos, int64_t N, double tau,
                        double *dq, double *pos_cos, double *neg_cos)
{
    const int64_t K = q->K, D = q->D;
    double *l = malloc(sizeof(double) * (size_t)(K + 1)), total = 0, pc = 0, nc = 0;
    for (int64_t i = 0; i < N; i++) {
        const float *qi = qry + i * D;
        for (int64_t j = 0; j <= K; j++) {
            const float *kj = j == 0 ? pos + i * D : q->keys + (j - 1) * D;
            double s = 0;
            for (int64_t k = 0; k < D; k++) s += (double)qi[k] * kj[k];
            if (j == 0) pc += s;
            else nc += s;
            l[j] = s / tau;
        }
        double mx = l[0], z = 0;
        for (int64_t j = 1; j <= K; j++) mx = fmax(mx, l[j]);
        for (int64_t j = 0; j <= K; j++) z += exp(l[j] - mx);
        const double lse = mx + log(z);
        total += lse - l[0];
        for (int64_t k = 0; k < D; k++) dq[i * D + k] = 0;
        for (int64_t j = 0; j <= K; j++) {
            const float *kj = j == 0 ? pos + i * D : q->keys + (j - 1) * D;
            const double w = (exp(l[j] - lse) - (j == 0)) / (tau * (double)N);
            for (int64_t k = 0; k < D; k++) dq[i * D + k] += w * kj[k];
        }
    }
    free(l);
    *pos_cos = pc / (double)N;
    *neg_cos = nc / ((double)N * (double)K);
    return total / (double)N;
}

typedef struct {
    const ssl_moco_queue *q;
    float *qry, *pos, *dq;
    int64_t N;
    float tau;
} harness;

static double loss_fn(void *ud)
{
    harness *h = ud;
    ssl_ctx_step_begin(&C);
    return ssl_moco_queue_loss(&C, NULL, h->q, h->qry, h->pos, h->N, h->tau, h->dq, NULL, NULL);
}

/* One (N, K, D, tau) case; `align` pulls the positives toward their queries (0: independent, near 1:
 * the positive dominates the row, the trained regime where p_pos -> 1). */
static void check_loss(int64_t N, int64_t K, int64_t D, float tau, float align, uint64_t seed)
{
    ssl_moco_queue q;
    ssl_moco_queue_init(&q, C.be, K, D, 0, 1, seed);
    float *qry = malloc(sizeof(float) * (size_t)(N * D)), *pos = malloc(sizeof(float) * (size_t)(N * D));
    float *dq = malloc(sizeof(float) * (size_t)(N * D)), *want = malloc(sizeof(float) * (size_t)(N * D));
    double *dref = malloc(sizeof(double) * (size_t)(N * D));
    ssl_test_uniform(qry, (size_t)(N * D), seed + 1, -1, 1);
    ssl_test_uniform(pos, (size_t)(N * D), seed + 2, -1, 1);
    unit_rows(qry, N, D);
    for (int64_t i = 0; i < N * D; i++) pos[i] = align * qry[i] + (1 - align) * pos[i];
    unit_rows(pos, N, D);

    ssl_ctx_step_begin(&C);
    double pc, nc, pcr, ncr;
    double L = ssl_moco_queue_loss(&C, NULL, &q, qry, pos, N, tau, dq, &pc, &nc);
    double Lr = reference(&q, qry, pos, N, tau, dref, &pcr, &ncr);
    double gmax = 0, gerr = 0;
    for (int64_t i = 0; i < N * D; i++) {
        want[i] = (float)dref[i];
        gmax = fmax(gmax, fabs(dref[i]));
        gerr = fmax(gerr, fabs(dq[i] - dref[i]));
    }
    printf("N %lld K %lld D %lld tau %.2f align %.2f: loss %.8f ref %.8f (rel %.2g); dq err %.2g of max %.3g; "
           "pos_cos %.6f (%.2g) neg_cos %.6f (%.2g)\n",
           (long long)N, (long long)K, (long long)D, tau, align, L, Lr, fabs(L - Lr) / fabs(Lr), gerr, gmax, pc,
           fabs(pc - pcr), nc, fabs(nc - ncr));
    SSL_EXPECT(fabs(L - Lr) <= 1e-5 * fabs(Lr), "loss %.9g, reference %.9g", L, Lr);
    SSL_EXPECT(gerr <= 1e-5 * gmax, "dq off the double reference by %.3g (max %.3g)", gerr, gmax);
    SSL_EXPECT(fabs(pc - pcr) <= 1e-6 && fabs(nc - ncr) <= 1e-6, "cosines %.9g %.9g, reference %.9g %.9g", pc, nc,
               pcr, ncr);

    /* finite differences of the returned loss in the queries (the loss is smooth in unnormalised q too) */
    harness h = {&q, qry, pos, want, N, tau}; /* `want` is the perturbed runs' scratch now */
    char what[64];
    snprintf(what, sizeof what, "moco queue dq (N %lld K %lld tau %.2f)", (long long)N, (long long)K, tau);
    ssl_test_gradcheck(what, loss_fn, &h, qry, (size_t)(N * D), dq, 64, 3e-3f, 1e-3 * gmax, 1e-2);
    double fd_err = 0; /* the same central differences over every element, for the log */
    for (int64_t i = 0; i < N * D; i++) {
        const float keep = qry[i];
        qry[i] = keep + 3e-3f;
        const double lp = loss_fn(&h);
        qry[i] = keep - 3e-3f;
        const double lm = loss_fn(&h);
        qry[i] = keep;
        fd_err = fmax(fd_err, fabs((lp - lm) / ((double)(keep + 3e-3f) - (double)(keep - 3e-3f)) - dq[i]));
    }
    printf("  finite differences: max |fd - dq| %.2g of max |dq| %.3g\n", fd_err, gmax);

    free(qry);
    free(pos);
    free(dq);
    free(want);
    free(dref);
    ssl_moco_queue_free(&q);
}

static void check_enqueue(void)
{
    const int64_t K = 10, D = 3, N = 5;
    ssl_moco_queue q;
    ssl_moco_queue_init(&q, C.be, K, D, 0, 1, 7);
    float before[10 * 3], keys[5 * 3];
    memcpy(before, q.keys, sizeof before);
    for (int64_t i = 0; i < N * D; i++) keys[i] = 100.0f + (float)i;
    q.ptr = 7; /* positions 7, 8, 9, then 0, 1 */
    ssl_ctx_step_begin(&C);
    ssl_moco_queue_enqueue(&C, NULL, &q, keys, N);
    SSL_EXPECT(q.ptr == 2, "ptr %lld after wrapping, want 2", (long long)q.ptr);
    const int64_t row_at[10] = {3, 4, -1, -1, -1, -1, -1, 0, 1, 2}; /* key row written at each position */
    int bad = 0;
    for (int64_t p = 0; p < K; p++)
        for (int64_t k = 0; k < D; k++) {
            float want = row_at[p] < 0 ? before[p * D + k] : keys[row_at[p] * D + k];
            bad += q.keys[p * D + k] != want;
        }
    SSL_EXPECT(bad == 0, "enqueue with wraparound: %d values misplaced", bad);
    /* a batch that fills the queue exactly, from 0: every position, ptr back to 0 */
    float full[10 * 3];
    for (int64_t i = 0; i < K * D; i++) full[i] = -(float)i;
    q.ptr = 0;
    ssl_moco_queue_enqueue(&C, NULL, &q, full, K);
    SSL_EXPECT(q.ptr == 0 && memcmp(q.keys, full, sizeof full) == 0, "enqueue of K keys at 0: ptr %lld",
               (long long)q.ptr);
    ssl_moco_queue_free(&q);
    printf("enqueue: wraparound at ptr 7 of 10 with 5 keys, %d misplaced\n", bad);
}

static void check_init(void)
{
    const int64_t K = 10, D = 6;
    ssl_moco_queue whole, shard[3];
    ssl_moco_queue_init(&whole, C.be, K, D, 0, 1, 42);
    const int64_t want_off[3] = {0, 4, 7}, want_n[3] = {4, 3, 3};
    for (int r = 0; r < 3; r++) {
        ssl_moco_queue_init(&shard[r], C.be, K, D, r, 3, 42);
        SSL_EXPECT(shard[r].off == want_off[r] && shard[r].n == want_n[r] && shard[r].ptr == 0,
                   "rank %d of 3: shard [%lld, +%lld), want [%lld, +%lld)", r, (long long)shard[r].off,
                   (long long)shard[r].n, (long long)want_off[r], (long long)want_n[r]);
        SSL_EXPECT(memcmp(shard[r].keys, whole.keys + shard[r].off * D, sizeof(float) * (size_t)(shard[r].n * D)) == 0,
                   "rank %d of 3 holds other keys than global [%lld, +%lld)", r, (long long)shard[r].off,
                   (long long)shard[r].n);
    }
    double worst = 0;
    for (int64_t j = 0; j < K; j++) {
        const float *kj = whole.keys + j * D;
        worst = fmax(worst, fabs(sqrt(ssl_test_dot(kj, kj, (size_t)D)) - 1));
    }
    SSL_EXPECT(worst < 1e-6, "queue keys not unit: |norm - 1| up to %.3g", worst);
    ssl_moco_queue other;
    ssl_moco_queue_init(&other, C.be, K, D, 0, 1, 43);
    SSL_EXPECT(memcmp(other.keys, whole.keys, sizeof(float) * (size_t)(K * D)) != 0,
               "seeds 42 and 43 draw the same queue");
    SSL_EXPECT(memcmp(whole.keys, whole.keys + D, sizeof(float) * (size_t)D) != 0, "keys 0 and 1 are equal");
    ssl_moco_queue_free(&other);
    for (int r = 0; r < 3; r++) ssl_moco_queue_free(&shard[r]);
    ssl_moco_queue_free(&whole);
    /* K = 37 over 4 ranks: 10, 9, 9, 9 */
    int64_t off, n, next = 0;
    for (int r = 0; r < 4; r++) {
        ssl_moco_queue_shard(37, r, 4, &off, &n);
        SSL_EXPECT(off == next && n == (r == 0 ? 10 : 9), "K 37 rank %d of 4: [%lld, +%lld)", r, (long long)off,
                   (long long)n);
        next = off + n;
    }
    printf("init: world 1 and the 3 shards of world 3 agree; key norms within %.2g of 1\n", worst);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    check_loss(4, 37, 8, 0.2f, 0.0f, 1);
    check_loss(3, 10, 5, 0.07f, 0.5f, 2);
    check_loss(8, 64, 16, 0.5f, 0.0f, 3);
    check_loss(6, 100, 32, 0.07f, 0.9f, 4); /* positive dominant: p_pos near 1 */
    check_loss(2, 1, 3, 0.2f, 0.0f, 5);     /* a queue of one key */
    check_enqueue();
    check_init();
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
