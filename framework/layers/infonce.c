/* InfoNCE against gathered keys (see infonce.h). */
#include "framework/comm/device.h"
#include "framework/layers/infonce.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"

double ssl_infonce_gathered(ssl_ctx *c, ssl_comm *comm, const float *q, const float *k, int64_t n, int64_t d,
                            float tau, float *dq, double *pos_cos, double *neg_cos)
{
    const int W = comm ? comm->world : 1, rank = comm ? comm->rank : 0;
    const int64_t m = W * n; /* keys */
    const float *K = k;
    if (W > 1) {
        float *all = ssl_arena_floats(&c->act, (size_t)(m * d));
        ssl_dev_allgather(c, comm, k, all, (size_t)(n * d), SSL_F32);
        K = all;
    }
    float *S = ssl_arena_floats(&c->act, (size_t)(n * m)), *Y = ssl_arena_floats(&c->act, (size_t)(n * m));
    float *diag = ssl_arena_floats(&c->act, (size_t)n);
    /* The positives sit on the diagonal of this rank's key block: element (i, rank*n + i), stride m + 1,
     * read and written through copy2d / add2d with that leading dimension (no host access). */
    float *Sd = S + rank * n, *Yd = Y + rank * n;
    c->be->gemm(c, 0, 1, (int)n, (int)m, (int)d, 1.0f, q, (int)d, K, (int)d, 0.0f, S, (int)m);
    const double total = c->be->sum(c, (size_t)(n * m), S);
    c->be->copy2d(c, n, 1, Sd, m + 1, diag, 1);
    const double pos = c->be->sum(c, (size_t)n, diag);
    if (pos_cos) *pos_cos = pos / (double)n;
    if (neg_cos) *neg_cos = m > 1 ? (total - pos) / (double)(n * (m - 1)) : 0.0;
    /* loss from log-softmax (exact for tiny probabilities), gradient from softmax: (P - onehot) / (n tau) */
    c->be->scale(c, S, (size_t)(n * m), 1.0f / tau);
    c->be->log_softmax_fwd(c, n, m, S, Y);
    c->be->copy2d(c, n, 1, Yd, m + 1, diag, 1);
    const double loss = -c->be->sum(c, (size_t)n, diag);
    c->be->softmax_fwd(c, n, m, 1.0f, S, Y);
    c->be->fill(c, diag, (size_t)n, -1.0f);
    c->be->add2d(c, n, 1, diag, 1, Yd, m + 1);
    c->be->gemm(c, 0, 0, (int)n, (int)d, (int)m, 1.0f / ((float)n * tau), Y, (int)m, K, (int)d, 0.0f, dq, (int)d);
    return loss / (double)n;
}
