/* DINO's loss with the prototypes sharded over real ranks (2, 3 and 4; K = 10 splits unevenly at 3 and
 * 4: 4,3,3 and 3,3,2,2) against a replicated reference with all K columns, built on every rank with
 * comm NULL. Each step draws a global batch of head outputs from the global row index (so every rank
 * count sees the same batch): student (4 views x R, K), teacher (2 views x R, K), R = W * N images,
 * view-major. In sharded mode every rank passes all R rows and its columns [off, off + k):
 *   - the loss equals the reference's, on every rank;
 *   - ds is the reference's ds columns [off, off + k);
 *   - the monitors (teacher entropy, KL to uniform, centre norm) equal the reference's on every rank;
 *   - after ssl_dino_center_update (row_comm NULL) the centre slice is the reference centre's columns,
 *     and the next step's loss uses it (the centres evolve over STEPS steps).
 * The replicated data-parallel mode (every rank all K columns, its own N images) is checked too: the
 * mean of the ranks' losses is the reference's, each rank's ds is W times its rows of the reference's,
 * and the centre after the update with row_comm = comm (sum all-reduced / (W 2N)) is the reference's. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/layers/dino_loss.h"

#include <math.h>
#include <string.h>

#define K 10
#define N 3  /* images per rank */
#define VS 4 /* 2 global + 2 local views */
#define STEPS 4
#define SEED 99

/* Head outputs of row g (of `rows`) at step t: cosines in [-1, 1] from (t, which, g) alone. */
static void draw(int t, int which, int64_t rows, float *x)
{
    for (int64_t g = 0; g < rows; g++) {
        ssl_rng r;
        ssl_rng_init(&r, ssl_rng_hash(SEED, (uint64_t)(2 * t + which)), (uint64_t)g);
        ssl_rng_fill_uniform(&r, x + g * K, K, -1.0f, 1.0f);
    }
}

/* The largest |got - want| relative to the largest |want|, reduced MAX over ranks. */
static double rel_err(ssl_comm *comm, const float *got, const float *want, size_t n)
{
    double err = 0, big = 0;
    for (size_t i = 0; i < n; i++) {
        err = fmax(err, fabs((double)got[i] - want[i]));
        big = fmax(big, fabs(want[i]));
    }
    double rel = err / fmax(big, 1e-30);
    ssl_allreduce(comm, &rel, 1, SSL_F64, SSL_MAX);
    return rel;
}

/* v identical on every rank: its max and min over ranks agree. */
static int same_everywhere(ssl_comm *comm, const double *v, int n)
{
    double hi[4], lo[4];
    memcpy(hi, v, sizeof(double) * (size_t)n);
    memcpy(lo, v, sizeof(double) * (size_t)n);
    ssl_allreduce(comm, hi, (size_t)n, SSL_F64, SSL_MAX);
    ssl_allreduce(comm, lo, (size_t)n, SSL_F64, SSL_MIN);
    return !memcmp(hi, lo, sizeof(double) * (size_t)n);
}

/* Rows of one rank's N images out of a view-major global block (views x R, K). */
static void own_rows(ssl_ctx *c, const float *all, int views, int64_t R, int rank, float *out)
{
    for (int v = 0; v < views; v++)
        c->be->copy2d(c, N, K, all + (v * R + (int64_t)rank * N) * K, K, out + (int64_t)v * N * K, K);
}

int main(int argc, char **argv)
{
    ssl_comm *comm = ssl_comm_mpi_world(&argc, &argv);
    const int W = comm->world, r = comm->rank;
    const int64_t R = (int64_t)W * N;
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    int64_t off, k;
    ssl_dino_shard(K, r, W, &off, &k);
    ssl_dino_loss ref, sh, dp;
    ssl_dino_loss_init(&ref, c.be, K, 0, K, VS, 0.1f, 0.9f);
    ssl_dino_loss_init(&sh, c.be, K, off, k, VS, 0.1f, 0.9f);
    ssl_dino_loss_init(&dp, c.be, K, 0, K, VS, 0.1f, 0.9f);
    const size_t ns = (size_t)(VS * R * K), nt = (size_t)(2 * R * K);
    float *S = ssl_malloc(sizeof(float) * ns), *dsr = ssl_malloc(sizeof(float) * ns), *Ss = ssl_malloc(sizeof(float) * ns);
    float *dss = ssl_malloc(sizeof(float) * ns), *want = ssl_malloc(sizeof(float) * ns);
    float *T = ssl_malloc(sizeof(float) * nt), *Ts = ssl_malloc(sizeof(float) * nt);
    float Sd[VS * N * K], Td[2 * N * K], dsd[VS * N * K];
    for (int t = 0; t < STEPS; t++) {
        const float temp_t = t % 2 ? 0.07f : 0.04f;
        draw(t, 0, VS * R, S);
        draw(t, 1, 2 * R, T);
        ssl_ctx_step_begin(&c);
        ssl_dino_monitors mr, ms, md;
        const double Lr = ssl_dino_loss_compute(&c, NULL, &ref, S, T, R, temp_t, dsr, &mr);

        /* sharded: all rows, this rank's columns */
        c.be->copy2d(&c, VS * R, k, S + off, K, Ss, k);
        c.be->copy2d(&c, 2 * R, k, T + off, K, Ts, k);
        const double Ls = ssl_dino_loss_compute(&c, comm, &sh, Ss, Ts, R, temp_t, dss, &ms);
        c.be->copy2d(&c, VS * R, k, dsr + off, K, want, k);
        const double ds_rel = rel_err(comm, dss, want, (size_t)(VS * R * k));
        const double got[4] = {Ls, ms.teacher_entropy, ms.kl_uniform, ms.center_norm};
        const double exp_[4] = {Lr, mr.teacher_entropy, mr.kl_uniform, mr.center_norm};
        for (int i = 0; i < 4; i++)
            SSL_EXPECT(fabs(got[i] - exp_[i]) <= 1e-6 * fmax(fabs(exp_[i]), 1e-3),
                       "step %d rank %d: sharded value %d is %.9f, replicated %.9f", t, r, i, got[i], exp_[i]);
        SSL_EXPECT(same_everywhere(comm, got, 4), "step %d: sharded loss or monitors differ between ranks", t);
        SSL_EXPECT(ds_rel <= 1e-6, "step %d rank %d: sharded ds differs from the replicated columns by %.3g", t, r,
                   ds_rel);

        /* replicated data parallel: all columns, this rank's images */
        own_rows(&c, S, VS, R, r, Sd);
        own_rows(&c, T, 2, R, r, Td);
        double Ld = ssl_dino_loss_compute(&c, NULL, &dp, Sd, Td, N, temp_t, dsd, &md);
        ssl_allreduce(comm, &Ld, 1, SSL_F64, SSL_AVG);
        own_rows(&c, dsr, VS, R, r, want);
        for (int i = 0; i < VS * N * K; i++) want[i] *= (float)W;
        const double dp_rel = rel_err(comm, dsd, want, (size_t)(VS * N * K));
        SSL_EXPECT(fabs(Ld - Lr) <= 1e-6 * fabs(Lr), "step %d: data-parallel loss %.9f, replicated %.9f", t, Ld, Lr);
        SSL_EXPECT(dp_rel <= 1e-6, "step %d rank %d: data-parallel ds differs from W x the rows by %.3g", t, r, dp_rel);

        /* centres: the reference over all rows; the shard over all rows, no row communication; the
         * data-parallel one over this rank's rows, all-reduced */
        ssl_dino_center_update(&c, NULL, &ref, T, R);
        ssl_dino_center_update(&c, NULL, &sh, Ts, R);
        ssl_dino_center_update(&c, comm, &dp, Td, N);
        int64_t bad = 0;
        for (int64_t j = 0; j < k; j++) bad += sh.center[j] != ref.center[off + j];
        const double dp_c = rel_err(comm, dp.center, ref.center, K);
        SSL_EXPECT(bad == 0, "step %d rank %d: %lld centre values of [%lld, +%lld) differ from the reference", t, r,
                   (long long)bad, (long long)off, (long long)k);
        SSL_EXPECT(dp_c <= 1e-6, "step %d: data-parallel centre differs from the reference by %.3g", t, dp_c);
        ssl_allreduce(comm, &bad, 1, SSL_I64, SSL_SUM);
        if (r == 0)
            printf("dino np=%d step %d temp_t %.2f: loss %.9f sharded %.9f (%.2g) data-parallel %.9f; ds rel %.2g / "
                   "%.2g; entropy %.6f kl %.6f |c| %.6f; centre: %lld sharded values differ, data-parallel rel %.2g\n",
                   W, t, temp_t, Lr, Ls, fabs(Ls - Lr) / fabs(Lr), Ld, ds_rel, dp_rel, ms.teacher_entropy,
                   ms.kl_uniform, ms.center_norm, (long long)bad, dp_c);
    }
    float *bufs[7] = {S, dsr, Ss, dss, want, T, Ts};
    for (int i = 0; i < 7; i++) ssl_free(bufs[i]);
    ssl_dino_loss_free(&ref);
    ssl_dino_loss_free(&sh);
    ssl_dino_loss_free(&dp);
    ssl_ctx_free(&c);
    return ssl_test_mpi_exit(comm);
}
