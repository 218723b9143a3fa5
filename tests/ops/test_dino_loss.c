/* DINO loss, one rank (comm NULL): the loss, d(student logits), the monitors and the centre update
 * against a double-precision evaluation of the textbook formula (every pair (iq, v != iq) scored on
 * its own, as the official loop), d(student logits) against central finite differences, and the
 * split softmax ops (row_max / row_sumexp / softmax_apply) over columns cut into uneven shards and
 * combined on the host against softmax_fwd / log_softmax_fwd of the whole rows. The multi-rank form is
 * tests/mpi/test_dp_dino_loss.c. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/dino_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ssl_ctx C;

typedef struct {
    double loss, entropy, kl;
} reference_out;

/* softmax (or log-softmax) of scale * (x - centre) in double. */
static void softmax_d(const float *x, const float *centre, int64_t K, double scale, int logp, double *out)
{
    double mx = -INFINITY, z = 0;
    for (int64_t j = 0; j < K; j++) mx = fmax(mx, scale * (x[j] - (centre ? centre[j] : 0.0)));
    for (int64_t j = 0; j < K; j++) z += exp(scale * (x[j] - (centre ? centre[j] : 0.0)) - mx);
    for (int64_t j = 0; j < K; j++) {
        const double l = scale * (x[j] - (centre ? centre[j] : 0.0)) - mx - log(z);
        out[j] = logp ? l : exp(l);
    }
}

/* The official loss pair by pair; ds = d(loss)/ds. */
static reference_out reference(const float *s, const float *t, const float *centre, int64_t n, int vs, int64_t K,
                               double temp_s, double temp_t, double *ds)
{
    double *p = malloc(sizeof(double) * (size_t)K), *ls = malloc(sizeof(double) * (size_t)K);
    double *pbar = calloc((size_t)K, sizeof(double));
    reference_out r = {0, 0, 0};
    const int terms = 2 * (vs - 1);
    memset(ds, 0, sizeof(double) * (size_t)(vs * n * K));
    for (int iq = 0; iq < 2; iq++)
        for (int64_t i = 0; i < n; i++) {
            softmax_d(t + (iq * n + i) * K, centre, K, 1 / temp_t, 0, p);
            for (int64_t j = 0; j < K; j++) {
                r.entropy -= p[j] > 0 ? p[j] * log(p[j]) / (2.0 * n) : 0;
                pbar[j] += p[j] / (2.0 * n);
            }
            for (int v = 0; v < vs; v++) {
                if (v == iq) continue;
                softmax_d(s + (v * n + i) * K, NULL, K, 1 / temp_s, 1, ls);
                for (int64_t j = 0; j < K; j++) {
                    r.loss -= p[j] * ls[j] / (double)(n * terms);
                    /* d(-sum p log softmax(z))/dz = softmax(z) - p, z = s / temp_s */
                    ds[(v * n + i) * K + j] += (exp(ls[j]) - p[j]) / (temp_s * (double)(n * terms));
                }
            }
        }
    for (int64_t j = 0; j < K; j++) r.kl += pbar[j] > 0 ? pbar[j] * log(pbar[j] * (double)K) : 0;
    free(p);
    free(ls);
    free(pbar);
    return r;
}

typedef struct {
    ssl_dino_loss *L;
    float *s, *t;
    int64_t n;
    float temp_t;
} harness;

static double loss_fn(void *ud)
{
    harness *h = ud;
    ssl_ctx_step_begin(&C);
    return ssl_dino_loss_compute(&C, NULL, h->L, h->s, h->t, h->n, h->temp_t, NULL, NULL);
}

/* Head outputs as DINO's: cosines in [-1, 1]; `spread` scales them (1: a trained head's range). */
static void check_case(int64_t n, int vs, int64_t K, float temp_t, float spread, uint64_t seed)
{
    const float temp_s = 0.1f, m = 0.9f;
    const size_t ns = (size_t)(vs * n * K), nt = (size_t)(2 * n * K);
    float *s = malloc(sizeof(float) * ns), *t = malloc(sizeof(float) * nt), *ds = malloc(sizeof(float) * ns);
    float *centre = malloc(sizeof(float) * (size_t)K), *dsf = malloc(sizeof(float) * ns);
    double *dsr = malloc(sizeof(double) * ns);
    ssl_test_uniform(s, ns, seed, -spread, spread);
    ssl_test_uniform(t, nt, seed + 1, -spread, spread);
    ssl_test_uniform(centre, (size_t)K, seed + 2, -0.3f * spread, 0.3f * spread);
    ssl_dino_loss L;
    ssl_dino_loss_init(&L, C.be, K, 0, K, vs, temp_s, m);
    memcpy(L.center, centre, sizeof(float) * (size_t)K);

    ssl_ctx_step_begin(&C);
    ssl_dino_monitors mon;
    const double loss = ssl_dino_loss_compute(&C, NULL, &L, s, t, n, temp_t, ds, &mon);
    const reference_out r = reference(s, t, centre, n, vs, K, temp_s, temp_t, dsr);
    for (size_t i = 0; i < ns; i++) dsf[i] = (float)dsr[i];
    char what[96];
    snprintf(what, sizeof what, "n %lld vs %d K %lld temp_t %.2f", (long long)n, vs, (long long)K, temp_t);
    double mx = 0;
    for (size_t i = 0; i < ns; i++) mx = fmax(mx, fabs(dsr[i]));
    /* each element is g (w softmax - target) with g = 1 / (temp_s n terms): fp32 rounding of the two
     * terms, which cancel for a near-uniform teacher, bounds the error as much as the result does */
    const double g = 1.0 / (temp_s * (double)n * 2.0 * (vs - 1));
    char ds_what[112];
    snprintf(ds_what, sizeof ds_what, "%s: ds", what);
    ssl_test_close(ds_what, ds, dsf, ns, fmax(2e-6 * mx, 2e-7 * g), 0);
    SSL_EXPECT(fabs(loss - r.loss) <= 2e-6 * fabs(r.loss), "%s: loss %.9f, reference %.9f", what, loss, r.loss);
    SSL_EXPECT(fabs(mon.teacher_entropy - r.entropy) <= 1e-5 * fmax(r.entropy, 1e-3),
               "%s: entropy %.9f, reference %.9f", what, mon.teacher_entropy, r.entropy);
    SSL_EXPECT(fabs(mon.kl_uniform - r.kl) <= 1e-5 * fmax(r.kl, 1e-2), "%s: kl %.9f, reference %.9f", what,
               mon.kl_uniform, r.kl);
    double cn = 0;
    for (int64_t j = 0; j < K; j++) cn += (double)centre[j] * centre[j];
    SSL_EXPECT(fabs(mon.center_norm - sqrt(cn)) <= 1e-6 * sqrt(cn), "%s: centre norm %.9f, want %.9f", what,
               mon.center_norm, sqrt(cn));

    /* finite differences on a few elements of every view, and along a random direction */
    harness h = {&L, s, t, n, temp_t};
    snprintf(what, sizeof what, "n %lld vs %d K %lld temp_t %.2f: fd", (long long)n, vs, (long long)K, temp_t);
    ssl_test_gradcheck(what, loss_fn, &h, s, ns, ds, 48, 1e-3f, 2e-4, 2e-2);
    ssl_test_gradcheck_dir(what, loss_fn, &h, s, ns, ds, seed + 3, 1e-3f, 1e-2);

    /* centre: m c + (1 - m) * mean over the 2n teacher rows */
    ssl_ctx_step_begin(&C);
    ssl_dino_center_update(&C, NULL, &L, t, n);
    for (int64_t j = 0; j < K; j++) {
        double col = 0;
        for (int64_t i = 0; i < 2 * n; i++) col += t[i * K + j];
        centre[j] = (float)(m * centre[j] + (1 - m) * col / (2.0 * n));
    }
    snprintf(what, sizeof what, "n %lld vs %d K %lld: centre", (long long)n, vs, (long long)K);
    ssl_test_close(what, L.center, centre, (size_t)K, 1e-7, 1e-6);
    printf("n %lld vs %d K %lld temp_t %.2f: loss %.6f entropy %.4f kl %.4f\n", (long long)n, vs, (long long)K,
           temp_t, loss, mon.teacher_entropy, mon.kl_uniform);
    ssl_dino_loss_free(&L);
    free(s), free(t), free(ds), free(centre), free(dsf), free(dsr);
}

/* The split ops over uneven column shards, statistics combined on the host as the all-reduces would,
 * against the whole-row softmax and log-softmax ops. */
static void check_split_ops(int64_t rows, int64_t K, int shards, float scale)
{
    const size_t n = (size_t)(rows * K);
    float *x = malloc(sizeof(float) * n), *centre = malloc(sizeof(float) * (size_t)K);
    float *z = malloc(sizeof(float) * n), *want_p = malloc(sizeof(float) * n), *want_l = malloc(sizeof(float) * n);
    float *got_p = malloc(sizeof(float) * n), *got_l = malloc(sizeof(float) * n);
    float *mx = malloc(sizeof(float) * (size_t)rows), *part = malloc(sizeof(float) * (size_t)rows);
    double *se = calloc((size_t)rows, sizeof(double)), *sp = malloc(sizeof(double) * (size_t)rows);
    ssl_test_uniform(x, n, 5, -1, 1);
    ssl_test_uniform(centre, (size_t)K, 6, -0.5f, 0.5f);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < K; j++) z[r * K + j] = scale * (x[r * K + j] - centre[j]);
    C.be->softmax_fwd(&C, rows, K, 1.0f, z, want_p);
    C.be->log_softmax_fwd(&C, rows, K, z, want_l);
    for (int64_t r = 0; r < rows; r++) mx[r] = -INFINITY;
    /* each shard: its columns as a (rows, k) block, as a rank holds them */
    for (int pass = 0; pass < 3; pass++)
        for (int sh = 0; sh < shards; sh++) {
            int64_t off, k;
            ssl_dino_shard(K, sh, shards, &off, &k);
            float *xs = malloc(sizeof(float) * (size_t)(rows * k)), *ps = malloc(sizeof(float) * (size_t)(rows * k));
            float *ls = malloc(sizeof(float) * (size_t)(rows * k));
            C.be->copy2d(&C, rows, k, x + off, K, xs, k);
            if (pass == 0) {
                C.be->row_max(&C, rows, k, scale, xs, centre + off, part);
                for (int64_t r = 0; r < rows; r++) mx[r] = fmaxf(mx[r], part[r]);
            } else if (pass == 1) {
                C.be->row_sumexp(&C, rows, k, scale, xs, centre + off, mx, sp);
                for (int64_t r = 0; r < rows; r++) se[r] += sp[r];
            } else {
                C.be->softmax_apply(&C, rows, k, scale, xs, centre + off, mx, se, ls, ps);
                C.be->copy2d(&C, rows, k, ps, k, got_p + off, K);
                C.be->copy2d(&C, rows, k, ls, k, got_l + off, K);
            }
            free(xs), free(ps), free(ls);
        }
    char what[64];
    snprintf(what, sizeof what, "split softmax %d shards of %lld: p", shards, (long long)K);
    ssl_test_close(what, got_p, want_p, n, 1e-7, 1e-5);
    snprintf(what, sizeof what, "split softmax %d shards of %lld: logp", shards, (long long)K);
    ssl_test_close(what, got_l, want_l, n, 2e-6, 1e-6);
    free(x), free(centre), free(z), free(want_p), free(want_l), free(got_p), free(got_l), free(mx), free(part);
    free(se), free(sp);
}

int main(void)
{
    ssl_ctx_init(&C, "cpu");
    check_split_ops(7, 10, 3, 25.0f);
    check_split_ops(33, 1000, 4, 10.0f);
    check_case(4, 4, 64, 0.04f, 1.0f, 11);
    check_case(4, 4, 64, 0.07f, 1.0f, 21);
    check_case(3, 2, 10, 0.04f, 1.0f, 31);    /* no local crops: 2 terms */
    check_case(5, 6, 700, 0.04f, 1.0f, 41);   /* 4 local crops; rows * K above the kernels' OpenMP threshold */
    check_case(2, 3, 33, 0.07f, 0.005f, 51);  /* near-uniform teacher: entropy near log K, KL near 0 */
    ssl_ctx_free(&C);
    return ssl_test_exit();
}
