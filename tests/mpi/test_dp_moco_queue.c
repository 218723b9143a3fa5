/* Sharded MoCo queue across real ranks (2, 3 and 4; K = 37 splits unevenly at every count) against a
 * single-rank reference queue with the full K, built on every rank with comm NULL from the same seed.
 * Each step draws a global batch of queries / positives from the global row index (so every rank count
 * sees the same batch), each rank takes its N rows, and:
 *   - the global loss, mean over ranks of L_r, equals the reference's loss over the whole batch;
 *   - each rank's dq equals W times the reference's dq rows of that rank: the reference's rows carry
 *     1/(W N) of the global mean, a rank's 1/N of its own mean (the ssl_ntxent_global convention);
 *   - pos_cos / neg_cos equal the reference's, and are identical on every rank;
 *   - after every rank enqueues its N positives as keys, each shard equals the reference queue's rows
 *     [off, off + n) after it enqueued the whole batch, ptr agrees, and the reference holds batch row g
 *     at (ptr + g) % K (so a placement bug shared by both queues is seen too).
 * Three steps of W*N = 14, 21 or 28 keys wrap around the queue at every rank count, so the later
 * losses score keys that the sharded enqueue wrote. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/layers/moco_queue.h"

#include <math.h>
#include <string.h>

#define K 37
#define D 8
#define N 7 /* rows per rank */
#define TAU 0.2f
#define STEPS 3
#define SEED 1234

/* Row g of step t: a unit query and a unit positive near it (cosine ~0.7), from g alone. */
static void draw_row(int t, int64_t g, float *q, float *p)
{
    ssl_rng r;
    ssl_rng_init(&r, ssl_rng_hash(SEED, (uint64_t)t), (uint64_t)g);
    float noise[D];
    ssl_rng_fill_normal(&r, q, D, 0.0f, 1.0f);
    ssl_rng_fill_normal(&r, noise, D, 0.0f, 1.0f);
    double sq = 0, sp = 0;
    for (int k = 0; k < D; k++) sq += (double)q[k] * q[k];
    for (int k = 0; k < D; k++) q[k] = (float)(q[k] / sqrt(sq));
    for (int k = 0; k < D; k++) p[k] = q[k] + 0.3f * noise[k], sp += (double)p[k] * p[k];
    for (int k = 0; k < D; k++) p[k] = (float)(p[k] / sqrt(sp));
}

int main(int argc, char **argv)
{
    ssl_comm *comm = ssl_comm_mpi_world(&argc, &argv);
    const int W = comm->world, r = comm->rank;
    const int64_t B = (int64_t)W * N;
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_moco_queue qs, qr;
    ssl_moco_queue_init(&qs, c.be, K, D, r, W, SEED);
    ssl_moco_queue_init(&qr, c.be, K, D, 0, 1, SEED);
    float *Qg = ssl_malloc(sizeof(float) * (size_t)(B * D)), *Pg = ssl_malloc(sizeof(float) * (size_t)(B * D));
    float *dQr = ssl_malloc(sizeof(float) * (size_t)(B * D)), dq[N * D];
    int wrapped = 0;
    for (int t = 0; t < STEPS; t++) {
        for (int64_t g = 0; g < B; g++) draw_row(t, g, Qg + g * D, Pg + g * D);
        const float *qry = Qg + (int64_t)r * N * D, *pos = Pg + (int64_t)r * N * D;

        ssl_ctx_step_begin(&c);
        double pc, nc, pcr, ncr;
        double L = ssl_moco_queue_loss(&c, comm, &qs, qry, pos, N, TAU, dq, &pc, &nc);
        ssl_allreduce(comm, &L, 1, SSL_F64, SSL_AVG);
        ssl_ctx_step_begin(&c);
        double Lr = ssl_moco_queue_loss(&c, NULL, &qr, Qg, Pg, B, TAU, dQr, &pcr, &ncr);

        /* dq = W * reference rows (see the header); the error relative to the largest such element */
        double err = 0, big = 0;
        for (int i = 0; i < N * D; i++) {
            const double want = (double)W * dQr[(int64_t)r * N * D + i];
            err = fmax(err, fabs(dq[i] - want));
            big = fmax(big, fabs(want));
        }
        double rel = err / big, rel_max = rel;
        ssl_allreduce(comm, &rel_max, 1, SSL_F64, SSL_MAX);
        /* cosines identical on every rank: max and min over ranks agree */
        double cos_hi[2] = {pc, nc}, cos_lo[2] = {pc, nc};
        ssl_allreduce(comm, cos_hi, 2, SSL_F64, SSL_MAX);
        ssl_allreduce(comm, cos_lo, 2, SSL_F64, SSL_MIN);

        SSL_EXPECT(fabs(L - Lr) <= 1e-6 * fabs(Lr), "step %d: global loss %.9f, reference %.9f", t, L, Lr);
        SSL_EXPECT(rel <= 1e-5, "step %d rank %d: dq differs from %d x the reference rows by %.3g of the max", t, r,
                   W, rel);
        SSL_EXPECT(fabs(pc - pcr) <= 1e-6 && fabs(nc - ncr) <= 1e-6, "step %d: cosines %.9f %.9f, reference %.9f %.9f",
                   t, pc, nc, pcr, ncr);
        SSL_EXPECT(cos_hi[0] == cos_lo[0] && cos_hi[1] == cos_lo[1], "step %d: cosines differ between ranks", t);

        /* enqueue: the step's positives are its keys */
        const int64_t ptr0 = qs.ptr;
        wrapped |= ptr0 + B > K;
        ssl_ctx_step_begin(&c);
        ssl_moco_queue_enqueue(&c, comm, &qs, pos, N);
        ssl_moco_queue_enqueue(&c, NULL, &qr, Pg, B);
        int64_t bad = 0, placed = 0; /* placed: the reference itself against the definition, row g at (ptr + g) % K */
        for (int64_t g = 0; g < B; g++)
            placed += memcmp(qr.keys + (ptr0 + g) % K * D, Pg + g * D, sizeof(float) * D) != 0;
        SSL_EXPECT(placed == 0, "step %d: the reference queue holds %lld of the batch's keys elsewhere than ptr + g",
                   t, (long long)placed);
        for (int64_t i = 0; i < qs.n * D; i++) bad += qs.keys[i] != qr.keys[qs.off * D + i];
        SSL_EXPECT(bad == 0, "step %d rank %d: %lld values of shard [%lld, +%lld) differ from the reference queue",
                   t, r, (long long)bad, (long long)qs.off, (long long)qs.n);
        SSL_EXPECT(qs.ptr == qr.ptr && qs.ptr == (ptr0 + B) % K, "step %d: ptr %lld, reference %lld", t,
                   (long long)qs.ptr, (long long)qr.ptr);
        ssl_allreduce(comm, &bad, 1, SSL_I64, SSL_SUM);
        if (r == 0)
            printf("moco queue np=%d step %d: loss %.9f ref %.9f (rel %.2g); dq vs %d x ref: max rel %.2g; "
                   "pos_cos %.7f (%.2g) neg_cos %.7f (%.2g); enqueue at %lld%s: %lld values differ, ptr %lld\n",
                   W, t, L, Lr, fabs(L - Lr) / fabs(Lr), W, rel_max, pc, fabs(pc - pcr), nc, fabs(nc - ncr),
                   (long long)ptr0, ptr0 + B > K ? " (wraps)" : "", (long long)bad, (long long)qs.ptr);
    }
    SSL_EXPECT(wrapped, "no step wrapped around the queue (K %d, %lld keys a step)", K, (long long)B);
    ssl_free(Qg);
    ssl_free(Pg);
    ssl_free(dQr);
    ssl_moco_queue_free(&qs);
    ssl_moco_queue_free(&qr);
    ssl_ctx_free(&c);
    return ssl_test_mpi_exit(comm);
}
