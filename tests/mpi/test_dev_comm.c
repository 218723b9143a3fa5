/* The device collectives (framework/comm/device.h) on device memory of one backend against
 * hand-computed results: allreduce sum/avg/max/min in f32/f64/i64, allgather and reduce-scatter out of
 * place and in place, broadcast from the last rank, u8 payloads; once staged through host copies and
 * once through the backend's device communicator; and comm.device's choices.
 *   test_dev_comm [BACKEND]   (default devsim: its device communicator is NCCL's stand-in)
 * Under mpirun with 2 and 4 ranks (CTest, label mpi). With cuda it runs NCCL: on P ranks of P GPUs
 * through comm->dev, and at one rank by calling the NCCL communicator's ops directly (world 1 never
 * reaches them in training); it exits 77 where the backend or a GPU is missing. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/backend/backend.h"
#include "framework/comm/device.h"
#include "framework/core/check.h"

#include <math.h>
#include <string.h>

#define N 37 /* odd, so nothing lines up by accident */

static ssl_ctx ctx;
static ssl_comm *comm;
static ssl_dev_comm *direct; /* world 1 on a backend with a device communicator: its ops, called as is */

static void *dev_of(const void *host, size_t bytes)
{
    void *d = ctx.be->alloc(bytes + 64);
    ctx.be->upload(d, host, bytes);
    return d;
}

static void host_of(void *host, const void *dev, size_t bytes)
{
    ctx.be->sync(&ctx);
    ctx.be->download(host, dev, bytes);
}

static void allreduce(void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (direct) direct->allreduce(direct, &ctx, buf, n, t, op);
    else ssl_dev_allreduce(&ctx, comm, buf, n, t, op);
}
static void allgather(const void *send, void *recv, size_t n, ssl_dtype t)
{
    if (direct) direct->allgather(direct, &ctx, send, recv, n, t);
    else ssl_dev_allgather(&ctx, comm, send, recv, n, t);
}
static void reduce_scatter(const void *send, void *recv, size_t n, ssl_dtype t, ssl_redop op)
{
    if (direct) direct->reduce_scatter(direct, &ctx, send, recv, n, t, op);
    else ssl_dev_reduce_scatter(&ctx, comm, send, recv, n, t, op);
}
static void broadcast(void *buf, size_t n, ssl_dtype t, int root)
{
    if (direct) direct->broadcast(direct, &ctx, buf, n, t, root);
    else ssl_dev_broadcast(&ctx, comm, buf, n, t, root);
}

static void allreduce_start(void *buf, size_t n, ssl_dtype t, ssl_redop op)
{
    if (direct) direct->allreduce_start(direct, &ctx, buf, n, t, op);
    else ssl_dev_allreduce_start(&ctx, comm, buf, n, t, op);
}
static void wait_all(void)
{
    if (direct) direct->wait_all(direct, &ctx);
    else ssl_dev_wait_all(&ctx, comm);
}

/* The overlapped allreduce (the gradient buckets' contract): three started, a blocking one issued
 * while they are in flight, then wait_all: every result as the blocking path gives it. */
static void overlapped(int W, int r)
{
    float o1[N], o2[N], blk[N];
    double o3[N];
    for (int i = 0; i < N; i++) o1[i] = (float)((r + 1) * i), o2[i] = (float)(r - i), o3[i] = (r + 1) * 0.25 * i, blk[i] = 1;
    float *d1 = dev_of(o1, sizeof o1), *d2 = dev_of(o2, sizeof o2), *db = dev_of(blk, sizeof blk);
    double *d3 = dev_of(o3, sizeof o3);
    allreduce_start(d1, N, SSL_F32, SSL_AVG);
    allreduce_start(d2, N, SSL_F32, SSL_SUM);
    allreduce(db, N, SSL_F32, SSL_SUM);
    allreduce_start(d3, N, SSL_F64, SSL_SUM);
    wait_all();
    host_of(o1, d1, sizeof o1), host_of(o2, d2, sizeof o2), host_of(o3, d3, sizeof o3), host_of(blk, db, sizeof blk);
    const double tri = W * (W + 1) / 2.0;
    for (int i = 0; i < N; i++) {
        SSL_EXPECT(fabsf(o1[i] - (float)(tri * i / W)) <= 1e-6f * (float)(tri * i / W), "overlapped avg [%d] %g", i, o1[i]);
        SSL_EXPECT(o2[i] == (float)(W * (W - 1) / 2 - W * i), "overlapped sum [%d] %g", i, o2[i]);
        SSL_EXPECT(fabs(o3[i] - tri * 0.25 * i) < 1e-12, "overlapped f64 sum [%d] %g", i, o3[i]);
        SSL_EXPECT(blk[i] == (float)W, "blocking allreduce among overlapped ones [%d] %g", i, blk[i]);
    }
    ctx.be->free(d1), ctx.be->free(d2), ctx.be->free(d3), ctx.be->free(db);
}

/* Every collective once, on fresh device buffers, against hand-computed results. */
static void checks(const char *backend, int W, int r)
{
    if (r == 0)
        printf("%s, %d rank(s): %s\n", backend, W, direct ? "the device communicator's ops, called directly" :
                                                   comm->dev ? comm->dev->name : "staged (or in place)");
    overlapped(W, r);
    /* allreduce: sum f32, avg f64, max i64, min i64 */
    float f[N];
    double d[N];
    int64_t q[N], mn = 5 - r;
    for (int i = 0; i < N; i++) f[i] = (float)(r + 1) * (float)i, d[i] = (r + 1) * 0.5 * i, q[i] = r * 100 + i;
    float *df = dev_of(f, sizeof f);
    double *dd = dev_of(d, sizeof d);
    int64_t *dq = dev_of(q, sizeof q), *dmn = dev_of(&mn, sizeof mn);
    allreduce(df, N, SSL_F32, SSL_SUM);
    allreduce(dd, N, SSL_F64, SSL_AVG);
    allreduce(dq, N, SSL_I64, SSL_MAX);
    allreduce(dmn, 1, SSL_I64, SSL_MIN);
    host_of(f, df, sizeof f), host_of(d, dd, sizeof d), host_of(q, dq, sizeof q), host_of(&mn, dmn, sizeof mn);
    const double tri = W * (W + 1) / 2.0;
    for (int i = 0; i < N; i++) {
        SSL_EXPECT(f[i] == (float)(tri * i), "allreduce sum [%d] %g", i, f[i]);
        SSL_EXPECT(fabs(d[i] - tri / W * 0.5 * i) < 1e-12, "allreduce avg [%d] %g", i, d[i]);
        SSL_EXPECT(q[i] == (W - 1) * 100 + i, "allreduce max [%d] %lld", i, (long long)q[i]);
    }
    SSL_EXPECT(mn == 5 - (W - 1), "allreduce min %lld", (long long)mn);

    /* allgather f32: out of place, then in place (send = recv + rank * n); u8 out of place */
    float mine[N], all[N * 4], inplace[N * 4];
    uint8_t b8[N], all8[N * 4];
    for (int i = 0; i < N; i++) mine[i] = (float)(r * 1000 + i), b8[i] = (uint8_t)(r * 50 + i);
    memset(inplace, 0, sizeof inplace), memset(all, 0, sizeof all), memset(all8, 0, sizeof all8);
    memcpy(inplace + r * N, mine, sizeof mine);
    float *dmine = dev_of(mine, sizeof mine), *dall = dev_of(all, sizeof all), *dinp = dev_of(inplace, sizeof inplace);
    uint8_t *db8 = dev_of(b8, sizeof b8), *dall8 = dev_of(all8, sizeof all8);
    allgather(dmine, dall, N, SSL_F32);
    allgather(dinp + r * N, dinp, N, SSL_F32);
    allgather(db8, dall8, N, SSL_U8);
    host_of(all, dall, W * sizeof mine), host_of(inplace, dinp, W * sizeof mine), host_of(all8, dall8, W * sizeof b8);
    for (int s = 0; s < W; s++)
        for (int i = 0; i < N; i++) {
            SSL_EXPECT(all[s * N + i] == (float)(s * 1000 + i), "allgather [%d][%d]", s, i);
            SSL_EXPECT(inplace[s * N + i] == (float)(s * 1000 + i), "allgather in place [%d][%d]", s, i);
            SSL_EXPECT(all8[s * N + i] == (uint8_t)(s * 50 + i), "allgather u8 [%d][%d]", s, i);
        }

    /* reduce-scatter: block b of the sum lands on rank b; out of place (sum), in place (avg) */
    float send[N * 4], recv[N] = {0};
    for (int b = 0; b < W; b++)
        for (int i = 0; i < N; i++) send[b * N + i] = (float)((r + 1) * (b * N + i));
    float *dsend = dev_of(send, W * N * sizeof *send), *drecv = dev_of(recv, sizeof recv);
    reduce_scatter(dsend, drecv, N, SSL_F32, SSL_SUM);
    host_of(recv, drecv, sizeof recv);
    for (int i = 0; i < N; i++) SSL_EXPECT(recv[i] == (float)(tri * (r * N + i)), "reduce_scatter [%d] %g", i, recv[i]);
    reduce_scatter(dsend, dsend + r * N, N, SSL_F32, SSL_AVG);
    host_of(send, dsend, W * N * sizeof *send);
    for (int i = 0; i < N; i++)
        SSL_EXPECT(fabsf(send[r * N + i] - (float)(tri / W * (r * N + i))) < 1e-3f, "reduce_scatter in place avg [%d]",
                   i);

    /* broadcast from the last rank: f32 and i64 */
    for (int i = 0; i < N; i++) f[i] = (float)(r * 7 + i), q[i] = r * 1000000007LL + i;
    ctx.be->upload(df, f, sizeof f), ctx.be->upload(dq, q, sizeof q);
    broadcast(df, N, SSL_F32, W - 1);
    broadcast(dq, N, SSL_I64, W - 1);
    host_of(f, df, sizeof f), host_of(q, dq, sizeof q);
    for (int i = 0; i < N; i++) {
        SSL_EXPECT(f[i] == (float)((W - 1) * 7 + i), "broadcast f32 [%d] %g", i, f[i]);
        SSL_EXPECT(q[i] == (W - 1) * 1000000007LL + i, "broadcast i64 [%d]", i);
    }

    void *bufs[] = {df, dd, dq, dmn, dmine, dall, dinp, db8, dall8, dsend, drecv};
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++) ctx.be->free(bufs[k]);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "devsim";
    comm = ssl_comm_mpi_launched() ? ssl_comm_mpi_world(&argc, &argv) : ssl_comm_local();
    const ssl_backend *be = ssl_backend_get(backend);
    if (!be) { /* cuda: not built, no GPU, or not taken (SSL_CUDA_UNVERIFIED=1 takes it) */
        if (comm->rank == 0) printf("SKIP: backend %s is not available here\n", backend);
        ssl_comm_free(comm);
        ssl_comm_mpi_finalize();
        return 77;
    }
    const int W = comm->world, r = comm->rank;
    const int ndev = be->device_count ? be->device_count() : 0;
    if (be->select_device && ndev > 0) be->select_device(comm->local_rank % ndev);
    char err[512] = "";
    /* a backend without a device communicator (the CPU's): auto and staged stage, nccl is refused by name */
    const ssl_backend *cpu = ssl_backend_get("cpu");
    SSL_EXPECT(ssl_dev_comm_attach(comm, cpu, "auto", err, sizeof err) == 0 && !comm->dev, "cpu auto: %s", err);
    SSL_EXPECT(ssl_dev_comm_attach(comm, cpu, "staged", err, sizeof err) == 0 && !comm->dev, "cpu staged: %s", err);
    const int rc = ssl_dev_comm_attach(comm, cpu, "nccl", err, sizeof err);
    SSL_EXPECT(W == 1 ? rc == 0 : rc == -1 && strstr(err, "comm.device: nccl") && strstr(err, "'cpu'"),
               "nccl on the cpu backend at %d ranks: rc %d, '%s'", W, rc, err);
    ssl_ctx_init(&ctx, backend);
    checks(backend, W, r); /* staged (or in place on host memory) */
    if (be->dev_comm_create) {
        /* the device communicator: through comm->dev at P ranks, its ops themselves at one */
        if (W > 1) {
            SSL_EXPECT(ssl_dev_comm_attach(comm, be, "staged", err, sizeof err) == 0 && !comm->dev, "staged: %s", err);
            SSL_ASSERTF(ssl_dev_comm_attach(comm, be, "nccl", err, sizeof err) == 0 && comm->dev, "%s", err);
        } else {
            SSL_ASSERTF((direct = be->dev_comm_create(comm, err, sizeof err)) != NULL, "%s", err);
        }
        checks(backend, W, r);
    }
    ssl_ctx_free(&ctx);
    if (direct) direct->free(direct);
    int64_t fails = ssl_test_failures;
    ssl_allreduce(comm, &fails, 1, SSL_I64, SSL_SUM);
    if (r == 0) printf("device collectives (%s, %d ranks): %lld failures\n", backend, W, (long long)fails);
    ssl_comm_free(comm);
    ssl_comm_mpi_finalize();
    return fails ? 1 : 0;
}
