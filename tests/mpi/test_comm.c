/* The MPI communicator against hand-computed results (run with 2 and 4 ranks): allreduce sum, avg,
 * max, min in f32/f64/i64, allgather and reduce-scatter both out of place and in place (NCCL's
 * in-place rules), broadcast from a non-zero root, statistics counting, and the rank layout. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"

#include <math.h>
#include <string.h>

#define N 37 /* odd, so nothing lines up by accident */

int main(int argc, char **argv)
{
    ssl_comm *c = ssl_comm_mpi_world(&argc, &argv);
    const int W = c->world, r = c->rank;
    SSL_EXPECT(W > 1 && r >= 0 && r < W, "rank %d of %d", r, W);
    SSL_EXPECT(c->local_world >= 1 && c->local_rank < c->local_world && c->nodes >= 1, "layout %d/%d on %d nodes",
               c->local_rank, c->local_world, c->nodes);

    float f[N];
    double d[N];
    int64_t q[N];
    for (int i = 0; i < N; i++) f[i] = (float)(r + 1) * (float)i, d[i] = (r + 1) * 0.5 * i, q[i] = r * 100 + i;
    ssl_allreduce(c, f, N, SSL_F32, SSL_SUM);
    ssl_allreduce(c, d, N, SSL_F64, SSL_AVG);
    ssl_allreduce(c, q, N, SSL_I64, SSL_MAX);
    double tri = W * (W + 1) / 2.0;
    for (int i = 0; i < N; i++) {
        SSL_EXPECT(f[i] == (float)(tri * i), "allreduce sum [%d] %g", i, f[i]);
        SSL_EXPECT(fabs(d[i] - tri / W * 0.5 * i) < 1e-12, "allreduce avg [%d] %g", i, d[i]);
        SSL_EXPECT(q[i] == (W - 1) * 100 + i, "allreduce max [%d] %lld", i, (long long)q[i]);
    }
    int64_t mn = 5 - r;
    ssl_allreduce(c, &mn, 1, SSL_I64, SSL_MIN);
    SSL_EXPECT(mn == 5 - (W - 1), "allreduce min %lld", (long long)mn);

    /* allgather: out of place, then in place (send = recv + rank * n) */
    float mine[N], all[N * 4], inplace[N * 4];
    for (int i = 0; i < N; i++) mine[i] = (float)(r * 1000 + i);
    ssl_allgather(c, mine, all, N, SSL_F32);
    memset(inplace, 0, sizeof inplace);
    memcpy(inplace + r * N, mine, sizeof mine);
    ssl_allgather(c, inplace + r * N, inplace, N, SSL_F32);
    for (int s = 0; s < W; s++)
        for (int i = 0; i < N; i++) {
            SSL_EXPECT(all[s * N + i] == (float)(s * 1000 + i), "allgather [%d][%d]", s, i);
            SSL_EXPECT(inplace[s * N + i] == (float)(s * 1000 + i), "allgather in place [%d][%d]", s, i);
        }

    /* reduce-scatter: block b of the sum lands on rank b; out of place and in place */
    float send[N * 4], recv[N];
    for (int b = 0; b < W; b++)
        for (int i = 0; i < N; i++) send[b * N + i] = (float)((r + 1) * (b * N + i));
    ssl_reduce_scatter(c, send, recv, N, SSL_F32, SSL_SUM);
    for (int i = 0; i < N; i++) SSL_EXPECT(recv[i] == (float)(tri * (r * N + i)), "reduce_scatter [%d] %g", i, recv[i]);
    ssl_reduce_scatter(c, send, send + r * N, N, SSL_F32, SSL_AVG);
    for (int i = 0; i < N; i++)
        SSL_EXPECT(fabsf(send[r * N + i] - (float)(tri / W * (r * N + i))) < 1e-3f, "reduce_scatter in place avg [%d]", i);

    /* broadcast from the last rank */
    double b[3] = {r, r, r};
    ssl_broadcast(c, b, 3, SSL_F64, W - 1);
    SSL_EXPECT(b[0] == W - 1 && b[2] == W - 1, "broadcast got %g", b[0]);
    ssl_barrier(c);
    SSL_EXPECT(c->stats.calls[SSL_COLL_ALLREDUCE] == 4 && c->stats.calls[SSL_COLL_ALLGATHER] == 2 &&
                   c->stats.calls[SSL_COLL_REDUCE_SCATTER] == 2 && c->stats.calls[SSL_COLL_BROADCAST] == 1,
               "stats count %lld allreduce calls", (long long)c->stats.calls[SSL_COLL_ALLREDUCE]);

    int64_t fails = ssl_test_failures;
    ssl_allreduce(c, &fails, 1, SSL_I64, SSL_SUM);
    if (r == 0) printf("comm: %d ranks, %s: %lld failures\n", W, c->ops->name, (long long)fails);
    ssl_comm_free(c);
    ssl_comm_mpi_finalize();
    return fails ? 1 : 0;
}
