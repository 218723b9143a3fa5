/* Global-negative NT-Xent across real ranks (2 and 4): the gather / reduce-scatter path
 * (ssl_ntxent_global) against (a) the 1-rank loss over the gathered batch, value and gradient, and
 * (b) central finite differences of the global loss, perturbing one rank's embeddings while all
 * ranks recompute. The common bug, using only the local rows of the gathered gradient (no
 * reduce-scatter), is computed too and must fail both checks: the test can see it. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/layers/ntxent.h"

#include <math.h>
#include <string.h>

#define B 3   /* images per rank */
#define D 5
#define TAU 0.5f

static double global_loss(ssl_ctx *c, ssl_comm *comm, const float *z, float *dz)
{
    ssl_ctx_step_begin(c);
    double l = ssl_ntxent_global(c, comm, z, 2 * B, D, TAU, dz);
    ssl_allreduce(comm, &l, 1, SSL_F64, SSL_AVG);
    return l;
}

/* max |a - b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i])), m = fmax(m, fabs(b[i]));
    return d / m;
}

int main(int argc, char **argv)
{
    ssl_comm *comm = ssl_comm_mpi_world(&argc, &argv);
    const int W = comm->world, r = comm->rank, m = 2 * B, M = W * m;
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    float z[2 * B * D], dz[2 * B * D], g[2 * B * D], broken[2 * B * D];
    ssl_test_uniform(z, (size_t)m * D, 11 + (uint64_t)r, -1.0f, 1.0f);
    double L = global_loss(&c, comm, z, dz);
    for (int i = 0; i < m * D; i++) g[i] = dz[i] / W; /* the gradient average's 1/W */

    /* (a) the 1-rank loss on the gathered batch (same pairing: chunks of 2B per rank) */
    float *Z = ssl_malloc((size_t)M * D * sizeof(float)), *dZ = ssl_malloc((size_t)M * D * sizeof(float));
    ssl_allgather(comm, z, Z, (size_t)m * D, SSL_F32);
    ssl_ctx_step_begin(&c);
    double Lref = ssl_ntxent(&c, Z, M, D, 0, M, B, TAU, dZ);
    SSL_EXPECT(fabs(L - Lref) <= 1e-6 * fabs(Lref), "loss %.8f, 1-rank %.8f", L, Lref);
    double e = rel_err(g, dZ + (size_t)r * m * D, (size_t)m * D);
    SSL_EXPECT(e < 1e-5, "rank %d: gradient differs from the 1-rank gradient by %.3g", r, e);

    /* the bug: own rows of this rank's gathered gradient, never reduce-scattered */
    ssl_ctx_step_begin(&c);
    ssl_ntxent(&c, Z, M, D, (int64_t)r * m, m, B, TAU, dZ);
    for (int i = 0; i < m * D; i++) broken[i] = dZ[(size_t)r * m * D + i] / W;
    ssl_ctx_step_begin(&c);
    ssl_ntxent(&c, Z, M, D, 0, M, B, TAU, dZ);
    double eb = rel_err(broken, dZ + (size_t)r * m * D, (size_t)m * D);
    double eb_max = eb;
    ssl_allreduce(comm, &eb_max, 1, SSL_F64, SSL_MAX);
    SSL_EXPECT(eb_max > 0.05, "without the reduce-scatter the gradient is off by only %.3g: check is blind", eb_max);

    /* (b) finite differences of the global loss, every rank owning the perturbed element in turn */
    const float eps = 1e-2f;
    double worst = 0, worst_broken = 0;
    for (int owner = 0; owner < W; owner++)
        for (int k = 0; k < m * D; k += 3) {
            float keep = z[k];
            if (r == owner) z[k] = keep + eps;
            double lp = global_loss(&c, comm, z, dz);
            if (r == owner) z[k] = keep - eps;
            double lm = global_loss(&c, comm, z, dz);
            if (r == owner) {
                z[k] = keep;
                double fd = (lp - lm) / (2.0 * eps);
                double scale = fmax(fabs(fd), 1e-3);
                worst = fmax(worst, fabs(fd - g[k]) / scale);
                worst_broken = fmax(worst_broken, fabs(fd - broken[k]) / scale);
            }
        }
    ssl_allreduce(comm, &worst, 1, SSL_F64, SSL_MAX);
    ssl_allreduce(comm, &worst_broken, 1, SSL_F64, SSL_MAX);
    SSL_EXPECT(worst < 2e-2, "finite differences disagree with the gathered gradient by %.3g", worst);
    SSL_EXPECT(worst_broken > 0.1, "finite differences cannot tell the missing reduce-scatter (%.3g)", worst_broken);
    if (r == 0)
        printf("ntxent np=%d: loss %.6f (1-rank %.6f); FD error %.2g with reduce-scatter, %.2g without\n", W, L, Lref,
               worst, worst_broken);
    ssl_free(Z);
    ssl_free(dZ);
    ssl_ctx_free(&c);
    return ssl_test_mpi_exit(comm);
}
