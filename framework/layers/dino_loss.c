/* DINO loss (see dino_loss.h). The cross-entropy's target for student view v is the sum of the other
 * teacher views, so one pass over the student rows scores all n_terms pairs; its gradient needs only
 * the student's global softmax, exp(LS), so no column communication follows the normalisers. Per
 * step the sharded mode all-reduces 2 x (2R + vs*R) row statistics and 4 doubles. */
#include "framework/comm/device.h"
#include "framework/layers/dino_loss.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"

#include <math.h>

void ssl_dino_shard(int64_t K, int rank, int world, int64_t *off, int64_t *k)
{
    SSL_ASSERT(world > 0 && rank >= 0 && rank < world && K >= 0);
    const int64_t base = K / world, extra = K % world;
    *k = base + (rank < extra);
    *off = rank * base + (rank < extra ? rank : extra);
}

void ssl_dino_loss_init(ssl_dino_loss *L, const struct ssl_backend *be, int64_t K, int64_t off,
                        int64_t k, int vs, float temp_s, float momentum)
{
    SSL_ASSERTF(k > 0 && off >= 0 && off + k <= K, "dino loss: columns [%lld, +%lld) of %lld",
                (long long)off, (long long)k, (long long)K);
    SSL_ASSERTF(vs >= SSL_DINO_TEACHER_VIEWS, "dino loss: %d student views, need the 2 global ones", vs);
    SSL_ASSERT(temp_s > 0 && momentum >= 0 && momentum <= 1);
    *L = (ssl_dino_loss){.K = K, .off = off, .k = k, .vs = vs, .temp_s = temp_s, .momentum = momentum, .be = be};
    L->center = be->alloc((size_t)k * sizeof(float));
    L->tsum = be->alloc((size_t)k * sizeof(float));
    float *zero = ssl_malloc((size_t)k * sizeof(float));
    for (int64_t j = 0; j < k; j++) zero[j] = 0.0f;
    be->upload(L->center, zero, (size_t)k * sizeof(float));
    be->upload(L->tsum, zero, (size_t)k * sizeof(float));
    ssl_free(zero);
}

void ssl_dino_loss_free(ssl_dino_loss *L)
{
    if (L->center) L->be->free(L->center);
    if (L->tsum) L->be->free(L->tsum);
    L->center = L->tsum = NULL;
}

/* The columns must be the ones this comm's rank holds, or the row statistics would pair wrongly. */
static void check_shard(const ssl_dino_loss *L, int rank, int world)
{
    int64_t off, k;
    ssl_dino_shard(L->K, rank, world, &off, &k);
    SSL_ASSERTF(L->off == off && L->k == k, "dino loss: columns [%lld, +%lld) are not rank %d of %d's [%lld, +%lld)",
                (long long)L->off, (long long)L->k, rank, world, (long long)off, (long long)k);
}

/* Softmax of z = scale (x - centre) over the row's columns on every shard of comm (NULL: this rank's
 * columns are the whole row): the distributed log-sum-exp. logp / p: outputs, either may be NULL. */
static void softmax_rows(ssl_ctx *c, ssl_comm *comm, int64_t rows, int64_t k, float scale, const float *x,
                         const float *centre, float *logp, float *p)
{
    float *mx = ssl_arena_floats(&c->act, (size_t)rows);
    double *se = ssl_arena_alloc(&c->act, (size_t)rows * sizeof(double));
    c->be->row_max(c, rows, k, scale, x, centre, mx);
    if (comm) {
        c->be->sync(c);
        ssl_dev_allreduce(c, comm, mx, (size_t)rows, SSL_F32, SSL_MAX);
    }
    c->be->row_sumexp(c, rows, k, scale, x, centre, mx, se);
    if (comm) {
        c->be->sync(c);
        ssl_dev_allreduce(c, comm, se, (size_t)rows, SSL_F64, SSL_SUM);
    }
    c->be->softmax_apply(c, rows, k, scale, x, centre, mx, se, logp, p);
}

/* This shard's partial monitor sums: sum p log p over the teacher rows, sum pbar log pbar over the
 * columns, ||centre||^2. */
static void monitor_sums(ssl_ctx *c, const ssl_dino_loss *L, const float *P, const float *LT, int64_t rows,
                         double *out)
{
    float *col = ssl_arena_floats(&c->act, (size_t)L->k);
    c->be->fill(c, col, (size_t)L->k, 0.0f);
    c->be->bias_grad(c, rows, L->k, 1, P, col); /* column sums, accumulated in double */
    out[0] = c->be->dot(c, (size_t)(rows * L->k), P, LT);
    out[1] = c->be->xlogx_sum(c, (size_t)L->k, 1.0f / (float)rows, col);
    out[2] = c->be->sumsq(c, (size_t)L->k, L->center);
}

double ssl_dino_loss_compute(ssl_ctx *c, ssl_comm *comm, const ssl_dino_loss *L, const float *s, const float *t,
                             int64_t R, float temp_t, float *ds, ssl_dino_monitors *mon)
{
    const int dist = comm && comm->world > 1;
    ssl_comm *pc = dist ? comm : NULL;
    if (dist) check_shard(L, comm->rank, comm->world);
    else SSL_ASSERTF(L->k == L->K, "dino loss: %lld of %lld columns but no communicator to shard over",
                     (long long)L->k, (long long)L->K);
    SSL_ASSERT(R > 0 && temp_t > 0);
    double t0 = ssl_prof_begin(c);
    const int vt = SSL_DINO_TEACHER_VIEWS, vs = L->vs;
    const int64_t k = L->k, trows = vt * R, srows = vs * R;
    float *P = ssl_arena_floats(&c->act, (size_t)(trows * k)), *LT = ssl_arena_floats(&c->act, (size_t)(trows * k));
    float *LS = ssl_arena_floats(&c->act, (size_t)(srows * k));
    softmax_rows(c, pc, trows, k, 1.0f / temp_t, t, L->center, LT, P);
    softmax_rows(c, pc, srows, k, 1.0f / L->temp_s, s, NULL, LS, NULL);

    /* every student view pairs with every teacher view but its own crop: 2 (vs - 1) terms */
    const double n_terms = (double)vt * (vs - 1);
    const float g = (float)(1.0 / ((double)L->temp_s * (double)R * n_terms));
    double sums[4] = {0};
    c->be->dino_xent_rows(c, R, k, vt, vs, P, LS, g, ds, &sums[0]);
    if (mon) monitor_sums(c, L, P, LT, trows, sums + 1);
    if (pc) ssl_allreduce(pc, sums, mon ? 4 : 1, SSL_F64, SSL_SUM);
    if (mon) {
        mon->teacher_entropy = -sums[1] / (double)trows;
        mon->kl_uniform = sums[2] + log((double)L->K);
        mon->center_norm = sqrt(sums[3]);
    }
    ssl_prof_end(c, SSL_PROF_LOSS, t0, 0.0); /* memory-bound row passes: no flop count */
    return sums[0] / ((double)R * n_terms);
}

void ssl_dino_center_accumulate(ssl_ctx *c, ssl_dino_loss *L, const float *t, int64_t R)
{
    SSL_ASSERT(R > 0);
    const int64_t rows = SSL_DINO_TEACHER_VIEWS * R;
    c->be->bias_grad(c, rows, L->k, 1, t, L->tsum); /* column sums, accumulated */
    L->trows += rows;
}

void ssl_dino_center_apply(ssl_ctx *c, ssl_comm *row_comm, ssl_dino_loss *L)
{
    const int W = row_comm ? row_comm->world : 1;
    SSL_ASSERTF(W == 1 || L->k == L->K,
                "dino centre: a sharded centre takes row_comm NULL (every rank holds all rows)");
    SSL_ASSERTF(L->trows > 0, "dino centre: no teacher rows accumulated since the last update");
    if (W > 1) {
        c->be->sync(c);
        ssl_dev_allreduce(c, row_comm, L->tsum, (size_t)L->k, SSL_F32, SSL_SUM); /* fp32, as dist.all_reduce */
    }
    /* every rank accumulated the same number of rows (equal micro-batches) */
    const double m = L->momentum;
    c->be->axpby(c, (size_t)L->k, (float)((1.0 - m) / ((double)W * (double)L->trows)), L->tsum, (float)m, L->center);
    c->be->fill(c, L->tsum, (size_t)L->k, 0.0f);
    L->trows = 0;
}

void ssl_dino_center_update(ssl_ctx *c, ssl_comm *row_comm, ssl_dino_loss *L, const float *t, int64_t R)
{
    ssl_dino_center_accumulate(c, L, t, R);
    ssl_dino_center_apply(c, row_comm, L);
}
