/* NT-Xent loss (see ntxent.h): two GEMMs around one fused row op.
 *   S = Q K^T / tau;  G = softmax_masked(S) - Y  (ntxent_rows, in place)
 *   dK = G^T Q / (tau nq)   (every row: the key term)
 *   dQ += G K / (tau nq)    (own rows: the query term) */
#include "framework/comm/device.h"
#include "framework/layers/ntxent.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"

double ssl_ntxent(ssl_ctx *c, const float *Z, int64_t M, int64_t d, int64_t row0, int64_t nq,
                  int64_t half, float tau, float *dZ)
{
    SSL_ASSERTF(M > 0 && nq > 0 && row0 >= 0 && row0 + nq <= M && half > 0 && M % (2 * half) == 0,
                "ntxent: bad geometry M=%lld row0=%lld nq=%lld half=%lld", (long long)M,
                (long long)row0, (long long)nq, (long long)half);
    SSL_ASSERT(tau > 0);
    double t0 = ssl_prof_begin(c);
    const float *Q = Z + row0 * d;
    float *S = ssl_arena_floats(&c->act, (size_t)(nq * M));
    c->be->gemm(c, 0, 1, (int)nq, (int)M, (int)d, 1.0f / tau, Q, (int)d, Z, (int)d, 0.0f, S, (int)M);
    double loss_sum = 0;
    c->be->ntxent_rows(c, nq, M, row0, half, S, &loss_sum);
    const float g = 1.0f / (tau * (float)nq);
    c->be->gemm(c, 1, 0, (int)M, (int)d, (int)nq, g, S, (int)M, Q, (int)d, 0.0f, dZ, (int)d);
    c->be->gemm(c, 0, 0, (int)nq, (int)d, (int)M, g, S, (int)M, Z, (int)d, 1.0f, dZ + row0 * d, (int)d);
    ssl_prof_end(c, SSL_PROF_LOSS, t0, 6.0 * nq * M * d);
    return loss_sum / (double)nq;
}

double ssl_ntxent_global(ssl_ctx *c, struct ssl_comm *comm, const float *z, int64_t m, int64_t d, float tau,
                         float *dz)
{
    SSL_ASSERTF(m % 2 == 0, "ntxent: %lld views is not two per image", (long long)m);
    if (!comm || comm->world == 1) return ssl_ntxent(c, z, m, d, 0, m, m / 2, tau, dz);
    const int64_t W = comm->world, M = W * m;
    float *Z = ssl_arena_floats(&c->act, (size_t)(M * d));
    float *dZ = ssl_arena_floats(&c->act, (size_t)(M * d));
    c->be->sync(c);
    ssl_dev_allgather(c, comm, z, Z, (size_t)(m * d), SSL_F32);
    double loss = ssl_ntxent(c, Z, M, d, comm->rank * m, m, m / 2, tau, dZ);
    c->be->sync(c);
    ssl_dev_reduce_scatter(c, comm, dZ, dz, (size_t)(m * d), SSL_F32, SSL_SUM);
    return loss;
}
