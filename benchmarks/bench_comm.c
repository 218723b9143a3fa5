/* Collective micro-benchmark through the sslrun communicator (what training calls), like
 * nccl-tests: for message sizes from 8 B to --max bytes, the time of allreduce (sum, in place),
 * allgather and reduce-scatter, with algorithm bandwidth (bytes / time) and bus bandwidth
 * (allreduce x 2(P-1)/P, the others x (P-1)/P: what each link carries, comparable across P).
 *   mpirun -np 4 build/benchmarks/bench_comm [--max BYTES] [--iters N]
 * Sizes are per-rank buffer bytes (allgather: the send block; reduce-scatter: the full input). */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void call(ssl_comm *c, int op, float *a, float *b, size_t n)
{
    if (op == 0) ssl_allreduce(c, a, n, SSL_F32, SSL_SUM);
    else if (op == 1) ssl_allgather(c, a, b, n, SSL_F32);
    else ssl_reduce_scatter(c, a, b, n / (size_t)c->world, SSL_F32, SSL_SUM);
}

int main(int argc, char **argv)
{
    ssl_comm *c = ssl_comm_mpi_world(&argc, &argv);
    size_t max = 64u << 20;
    int iters = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max")) max = (size_t)atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    }
    const size_t W = (size_t)c->world;
    float *a = ssl_calloc(max / 4 * W + W, sizeof(float)), *b = ssl_calloc(max / 4 * W + W, sizeof(float));
    if (c->rank == 0) {
        printf("collectives over %d ranks (%s, %d node(s)), %d iterations per size; time in us, bandwidth in GB/s\n",
               c->world, c->ops->name, c->nodes, iters);
        printf("%12s | %10s %8s %8s | %10s %8s %8s | %10s %8s %8s\n", "bytes", "allreduce", "algbw", "busbw",
               "allgather", "algbw", "busbw", "red_scat", "algbw", "busbw");
    }
    for (size_t bytes = 8; bytes <= max; bytes *= 4) {
        size_t n = bytes / 4;
        if (n < W) n = W;
        n -= n % W;
        double us[3];
        for (int op = 0; op < 3; op++) {
            call(c, op, a, b, n); /* warm-up: connections, buffers */
            ssl_barrier(c);
            double t0 = ssl_now();
            for (int it = 0; it < iters; it++) call(c, op, a, b, n);
            double dt = (ssl_now() - t0) / iters;
            ssl_allreduce(c, &dt, 1, SSL_F64, SSL_MAX); /* the slowest rank is the collective's time */
            us[op] = dt * 1e6;
        }
        if (c->rank == 0) {
            double B = (double)n * 4, f = (double)(W - 1) / (double)W;
            printf("%12.0f | %10.1f %8.3f %8.3f | %10.1f %8.3f %8.3f | %10.1f %8.3f %8.3f\n", B, us[0], B / us[0] * 1e-3,
                   B / us[0] * 1e-3 * 2 * f, us[1], B * W / us[1] * 1e-3, B * W / us[1] * 1e-3 * f, us[2],
                   B / us[2] * 1e-3, B / us[2] * 1e-3 * f);
        }
    }
    ssl_free(a);
    ssl_free(b);
    ssl_comm_free(c);
    ssl_comm_mpi_finalize();
    return 0;
}
