/* Sharded MoCo queue (see moco_queue.h). The loss, for the B = W*N gathered queries Q against this
 * rank's shard K_s (n keys), is Megatron's vocab-parallel cross-entropy (REFERENCE §2.8) with the
 * positive as one extra logit held by the row's owner:
 *   S = Q K_s^T / tau                               (gemm, B x n)
 *   a_i = logsumexp_j S_ij                           (log_softmax pass: the shard's partial LSE)
 *   m_i = max(a_i over shards, pos_i on the owner)   (all-reduce MAX)
 *   z_i = sum over shards exp(a_i - m_i) + exp(pos_i - m_i) on the owner   (all-reduce SUM, double)
 *   LSE_i = m_i + log z_i;  l_i = LSE_i - pos_i
 *   dQ = [softmax_j(S) * exp(a_i - LSE_i)] K_s / (N tau)   (softmax pass + gemm; row i's global
 *        probabilities are the shard's local softmax rescaled by the shard's share of the row's mass)
 *   owner rows += (p_pos - 1) pos_i / (N tau);  reduce-scatter(SUM) dQ -> dq.
 * Shifting by the max of the shards' partial LSEs rather than of the raw logits is the same
 * log-sum-exp: every shard exponentiates relative to its own row max inside the op, and each
 * exp(a_i - m_i) <= 1 with one of them 1, so neither overflows nor loses the dominant term.
 *
 * The device work is ops over all rows at once: the logits' GEMMs and row passes, the positives as one
 * batched GEMM of N 1 x D x 1 products, the row rescaling and the positives' axpy as one axpby_rows
 * each. The host holds B doubles around the two all-reduces (the max / exp-sum / LSE combination)
 * and meets the device three times a step: the logits' sum (the negatives' cosine monitor), one
 * download of two logit columns and the positives, one upload of the per-row factors. */
#include "framework/comm/device.h"
#include "framework/layers/moco_queue.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <math.h>

void ssl_moco_queue_shard(int64_t K, int rank, int world, int64_t *off, int64_t *n)
{
    SSL_ASSERT(world > 0 && rank >= 0 && rank < world && K >= 0);
    const int64_t base = K / world, extra = K % world;
    *n = base + (rank < extra);
    *off = rank * base + (rank < extra ? rank : extra);
}

/* The loss's per-row statistics live on the host (they meet MPI and exp/log there): a few doubles
 * and floats per gathered row, downloaded from two logit columns, so a device backend's queue is
 * touched by ops only. */
struct ssl_moco_host {
    double *d;
    float *f;
    size_t nd, nf;
};

static void host_reserve(const ssl_moco_queue *q, size_t nd, size_t nf)
{
    struct ssl_moco_host *h = q->host;
    if (nd > h->nd) {
        ssl_free(h->d);
        h->d = ssl_malloc(nd * sizeof(double));
        h->nd = nd;
    }
    if (nf > h->nf) {
        ssl_free(h->f);
        h->f = ssl_malloc(nf * sizeof(float));
        h->nf = nf;
    }
}

void ssl_moco_queue_init(ssl_moco_queue *q, const struct ssl_backend *be, int64_t K, int64_t D, int rank, int world,
                         uint64_t seed)
{
    SSL_ASSERTF(K >= world && D > 0, "moco queue: %lld keys of dim %lld over %d ranks (every rank needs a key)",
                (long long)K, (long long)D, world);
    q->K = K;
    q->D = D;
    q->ptr = 0;
    q->be = be;
    q->host = ssl_calloc(1, sizeof *q->host);
    ssl_moco_queue_shard(K, rank, world, &q->off, &q->n);
    /* drawn on the host one key at a time from stream j: the same key j whichever rank holds it */
    float *host = ssl_malloc((size_t)(q->n * D) * sizeof(float));
    const uint64_t key = ssl_rng_hash(seed, 0x7175657565ull /* "queue" */);
    for (int64_t i = 0; i < q->n; i++) {
        float *row = host + i * D;
        ssl_rng r;
        ssl_rng_init(&r, key, (uint64_t)(q->off + i));
        ssl_rng_fill_normal(&r, row, (size_t)D, 0.0f, 1.0f);
        double ss = 0;
        for (int64_t k = 0; k < D; k++) ss += (double)row[k] * row[k];
        const double inv = 1.0 / fmax(sqrt(ss), 1e-12);
        for (int64_t k = 0; k < D; k++) row[k] = (float)(row[k] * inv);
    }
    q->keys = be->alloc((size_t)(q->n * D) * sizeof(float));
    be->upload(q->keys, host, (size_t)(q->n * D) * sizeof(float));
    ssl_free(host);
}

void ssl_moco_queue_free(ssl_moco_queue *q)
{
    if (q->host) {
        ssl_free(q->host->d);
        ssl_free(q->host->f);
        ssl_free(q->host);
        q->host = NULL;
    }
    if (q->keys) q->be->free(q->keys);
    q->keys = NULL;
    q->n = 0;
}

/* The queue's shard must be the one this comm's rank holds, or the collectives would pair rows wrongly. */
static void check_geometry(const ssl_moco_queue *q, int rank, int world)
{
    int64_t off, n;
    ssl_moco_queue_shard(q->K, rank, world, &off, &n);
    SSL_ASSERTF(q->off == off && q->n == n,
                "moco queue: shard [%lld, +%lld) is not rank %d of %d's [%lld, +%lld)", (long long)q->off,
                (long long)q->n, rank, world, (long long)off, (long long)n);
}

double ssl_moco_queue_loss(ssl_ctx *c, ssl_comm *comm, const ssl_moco_queue *q, const float *qry, const float *pos,
                           int64_t N, float tau, float *dq, double *pos_cos, double *neg_cos)
{
    const int W = comm ? comm->world : 1, rank = comm ? comm->rank : 0;
    const int dist = W > 1;
    const int64_t D = q->D, n = q->n, B = W * N, own = rank * N; /* own: first gathered row of this rank */
    SSL_ASSERT(N > 0 && tau > 0);
    check_geometry(q, rank, W);
    double t0 = ssl_prof_begin(c);

    const float *Q = qry;
    float *dQ = dq;
    if (dist) {
        float *all = ssl_arena_floats(&c->act, (size_t)(B * D));
        c->be->sync(c);
        ssl_dev_allgather(c, comm, qry, all, (size_t)(N * D), SSL_F32);
        Q = all;
        dQ = ssl_arena_floats(&c->act, (size_t)(B * D));
    }
    float *S = ssl_arena_floats(&c->act, (size_t)(B * n)), *Y = ssl_arena_floats(&c->act, (size_t)(B * n));
    /* rows: m (max), then z (exp sums) with the two cosine sums appended, so one SUM carries all */
    host_reserve(q, (size_t)(3 * B + 2 + N), (size_t)(3 * B + 2 * N));
    double *m = q->host->d, *z = m + B, *a = z + B + 2, *lpos = a + B;
    /* device: S_i0, Y_i0 and the positives' logits, downloaded together; then the row factors */
    float *col = ssl_arena_floats(&c->act, (size_t)(2 * B + N)), *hcol = q->host->f;
    float *fac = ssl_arena_floats(&c->act, (size_t)(B + N)), *hfac = hcol + 2 * B + N;

    c->be->gemm(c, 0, 1, (int)B, (int)n, (int)D, 1.0f / tau, Q, (int)D, q->keys, (int)D, 0.0f, S, (int)n);
    const double neg_sum = tau * c->be->sum(c, (size_t)(B * n), S);
    c->be->log_softmax_fwd(c, B, n, S, Y);
    /* the shard's partial LSE from any column: S_ij - Y_ij, exact up to fp32 rounding of one logit */
    c->be->copy2d(c, B, 1, S, n, col, 1);
    c->be->copy2d(c, B, 1, Y, n, col + B, 1);
    /* the positives q_i . k+_i / tau, scored by each row's owner alone: N products of 1 x D by D x 1 */
    c->be->gemm_batched(c, 0, 1, 1, 1, (int)D, 1.0f / tau, qry, (int)D, D, pos, (int)D, D, 0.0f, col + 2 * B, 1, 1,
                        (int)N);
    c->be->download(hcol, col, (size_t)(2 * B + N) * sizeof(float));
    for (int64_t i = 0; i < B; i++) m[i] = a[i] = (double)hcol[i] - (double)hcol[B + i];
    double pos_sum = 0;
    for (int64_t i = 0; i < N; i++) {
        lpos[i] = hcol[2 * B + i];
        pos_sum += lpos[i] * tau;
        m[own + i] = fmax(m[own + i], lpos[i]);
    }
    if (dist) ssl_allreduce(comm, m, (size_t)B, SSL_F64, SSL_MAX);
    for (int64_t i = 0; i < B; i++) z[i] = exp(a[i] - m[i]);
    for (int64_t i = 0; i < N; i++) z[own + i] += exp(lpos[i] - m[own + i]);
    z[B] = pos_sum;
    z[B + 1] = neg_sum;
    if (dist) ssl_allreduce(comm, z, (size_t)(B + 2), SSL_F64, SSL_SUM);
    if (pos_cos) *pos_cos = z[B] / (double)B;
    if (neg_cos) *neg_cos = z[B + 1] / ((double)B * (double)q->K);

    /* m becomes LSE_i; the loss is the owner's rows' */
    for (int64_t i = 0; i < B; i++) m[i] += log(z[i]);
    double loss = 0;
    for (int64_t i = 0; i < N; i++) loss += m[own + i] - lpos[i];

    /* gradient: local softmax, gemm, then each row rescaled to its global probability mass */
    const float g = 1.0f / ((float)N * tau);
    c->be->softmax_fwd(c, B, n, 1.0f, S, S);
    c->be->gemm(c, 0, 0, (int)B, (int)D, (int)n, g, S, (int)n, q->keys, (int)D, 0.0f, dQ, (int)D);
    for (int64_t i = 0; i < B; i++) hfac[i] = (float)exp(a[i] - m[i]);
    for (int64_t i = 0; i < N; i++) /* p_pos - 1 = expm1(pos - LSE): no cancellation when p_pos -> 1 */
        hfac[B + i] = (float)expm1(lpos[i] - m[own + i]) * g;
    c->be->upload(fac, hfac, (size_t)(B + N) * sizeof(float));
    c->be->axpby_rows(c, B, D, fac, dQ, 0.0f, dQ);
    c->be->axpby_rows(c, N, D, fac + B, pos, 1.0f, dQ + own * D);
    if (dist) {
        c->be->sync(c);
        ssl_dev_reduce_scatter(c, comm, dQ, dq, (size_t)(N * D), SSL_F32, SSL_SUM);
    }
    ssl_prof_end(c, SSL_PROF_LOSS, t0, 4.0 * (double)B * (double)n * (double)D);
    return loss / (double)N;
}

void ssl_moco_queue_enqueue(ssl_ctx *c, ssl_comm *comm, ssl_moco_queue *q, const float *keys, int64_t N)
{
    const int W = comm ? comm->world : 1, rank = comm ? comm->rank : 0;
    const int64_t D = q->D, B = W * N;
    SSL_ASSERTF(N > 0 && B <= q->K, "moco queue: %lld keys per step do not fit a queue of %lld", (long long)B,
                (long long)q->K);
    check_geometry(q, rank, W);
    const float *all = keys;
    if (W > 1) {
        float *buf = ssl_arena_floats(&c->act, (size_t)(B * D));
        c->be->sync(c);
        ssl_dev_allgather(c, comm, keys, buf, (size_t)(N * D), SSL_F32);
        all = buf;
    }
    /* global positions [ptr, ptr + B) mod K: at most two runs, [ptr, end) and, on wraparound, [0, rest);
     * B <= K keeps them disjoint. Each run's overlap with the shard is one contiguous copy. */
    const int64_t end = q->ptr + B < q->K ? q->ptr + B : q->K;
    const int64_t run[2][3] = {{q->ptr, end, 0}, {0, q->ptr + B - end, end - q->ptr}}; /* [lo, hi), first row */
    for (int k = 0; k < 2; k++) {
        const int64_t lo = run[k][0] > q->off ? run[k][0] : q->off;
        const int64_t hi = run[k][1] < q->off + q->n ? run[k][1] : q->off + q->n;
        if (lo < hi)
            c->be->copy(c, q->keys + (lo - q->off) * D, all + (run[k][2] + lo - run[k][0]) * D,
                        (size_t)((hi - lo) * D));
    }
    q->ptr = (q->ptr + B) % q->K;
}
