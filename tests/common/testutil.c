/* Test helpers (see testutil.h). */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ssl_test_failures;

int ssl_test_exit(void)
{
    if (ssl_test_failures) fprintf(stderr, "%d check(s) failed\n", ssl_test_failures);
    else printf("all checks passed\n");
    return ssl_test_failures ? 1 : 0;
}

int ssl_test_close(const char *what, const float *got, const float *want, size_t n, double atol,
                   double rtol)
{
    size_t worst = 0, nbad = 0;
    double worst_excess = -1e300;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double lim = atol + rtol * fabs((double)want[i]);
        if (!(d <= lim)) nbad++; /* NaN counts as bad */
        double ex = isnan(d) ? 1e300 : d - lim;
        if (ex > worst_excess) { worst_excess = ex; worst = i; }
    }
    if (nbad) {
        ssl_test_failures++;
        fprintf(stderr, "FAIL %s: %zu/%zu elements off; worst [%zu] got %.7g want %.7g\n", what,
                nbad, n, worst, (double)got[worst], (double)want[worst]);
        return 0;
    }
    return 1;
}

void ssl_test_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    ssl_rng r;
    ssl_rng_init(&r, seed, 12345);
    ssl_rng_fill_uniform(&r, x, n, lo, hi);
}

double ssl_test_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

int ssl_test_gradcheck(const char *what, ssl_test_loss_fn loss, void *ud, float *x, size_t n,
                       const float *grad, int max_checks, float eps, double atol, double rtol)
{
    size_t stride = n > (size_t)max_checks ? n / (size_t)max_checks : 1;
    int bad = 0;
    double worst = 0;
    size_t worst_i = 0;
    double worst_fd = 0;
    for (size_t i = (stride > 1 ? stride / 2 : 0); i < n; i += stride) {
        float keep = x[i];
        double l0 = loss(ud);
        x[i] = keep + eps;
        double lp = loss(ud);
        double hp = (double)(keep + eps) - (double)keep; /* step actually applied, after rounding */
        x[i] = keep - eps;
        double lm = loss(ud);
        double hm = (double)keep - (double)(keep - eps);
        x[i] = keep;
        double fd = (lp - lm) / (hp + hm);
        double err = fabs(fd - grad[i]);
        double lim = atol + rtol * fmax(fabs(fd), fabs(grad[i]));
        if (!(err <= lim)) {
            /* A ReLU / max-pool kink within eps on one side spoils the central difference but not
             * the one-sided difference on the other side, which the analytic value must match. */
            double fp = (lp - l0) / hp, fm = (l0 - lm) / hm;
            double ep = fabs(fp - grad[i]), em = fabs(fm - grad[i]);
            if (ep <= atol + rtol * fmax(fabs(fp), fabs(grad[i])) ||
                em <= atol + rtol * fmax(fabs(fm), fabs(grad[i])))
                err = 0;
        }
        if (!(err <= lim)) {
            double excess = isnan(err) ? 1e300 : err - lim;
            if (bad++ == 0 || excess > worst) {
                worst = excess;
                worst_i = i;
                worst_fd = fd;
            }
        }
    }
    if (bad) {
        ssl_test_failures++;
        fprintf(stderr, "FAIL gradcheck %s: %d element(s) off; e.g. [%zu] analytic %.7g fd %.7g\n",
                what, bad, worst_i, (double)grad[worst_i], worst_fd);
        return 0;
    }
    return 1;
}

struct ssl_fixture {
    int n;
    char **names;
    float **data;
    size_t *count;
};

ssl_fixture *ssl_fixture_load(const char *file)
{
    const char *dir = getenv("SSL_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/ref/fixtures", file);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "fixture %s not found (set SSL_FIXTURES)\n", path);
        return NULL;
    }
    ssl_fixture *f = calloc(1, sizeof *f);
    int cap = 0;
    for (;;) {
        uint32_t len, ndim;
        if (fread(&len, 4, 1, fp) != 1) break;
        SSL_ASSERTF(len < 4096, "fixture %s: corrupt record", path);
        char *name = calloc(len + 1, 1);
        SSL_ASSERTF(fread(name, 1, len, fp) == len, "fixture %s: truncated name", path);
        SSL_ASSERTF(fread(&ndim, 4, 1, fp) == 1 && ndim <= 8, "fixture %s: bad ndim", path);
        size_t cnt = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            int64_t s;
            SSL_ASSERTF(fread(&s, 8, 1, fp) == 1 && s >= 0, "fixture %s: bad shape", path);
            cnt *= (size_t)s;
        }
        float *d = malloc((cnt ? cnt : 1) * sizeof(float));
        SSL_ASSERTF(fread(d, sizeof(float), cnt, fp) == cnt, "fixture %s: truncated %s", path, name);
        if (f->n == cap) {
            cap = cap ? 2 * cap : 64;
            f->names = realloc(f->names, (size_t)cap * sizeof *f->names);
            f->data = realloc(f->data, (size_t)cap * sizeof *f->data);
            f->count = realloc(f->count, (size_t)cap * sizeof *f->count);
        }
        f->names[f->n] = name;
        f->data[f->n] = d;
        f->count[f->n] = cnt;
        f->n++;
    }
    fclose(fp);
    return f;
}

int ssl_fixture_has(const ssl_fixture *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return 1;
    return 0;
}

const float *ssl_fixture_get(const ssl_fixture *f, const char *name, size_t *n)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) {
            if (n) *n = f->count[i];
            return f->data[i];
        }
    SSL_ABORT("fixture has no tensor '%s'", name);
}

void ssl_fixture_free(ssl_fixture *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->data[i]);
    }
    free(f->names);
    free(f->data);
    free(f->count);
    free(f);
}

int ssl_test_gradcheck_dir(const char *what, ssl_test_loss_fn loss, void *ud, float *x, size_t n,
                           const float *grad, uint64_t seed, float eps, double rtol)
{
    float *keep = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    ssl_test_uniform(v, n, seed, -1.0f, 1.0f);
    memcpy(keep, x, n * sizeof(float));
    double want = 0, vnorm = 0, gnorm = 0;
    for (size_t i = 0; i < n; i++) {
        want += (double)grad[i] * v[i];
        vnorm += (double)v[i] * v[i];
        gnorm += (double)grad[i] * grad[i];
    }
    /* scale of the check: |g| |v| bounds |g.v|; a wrong gradient moves g.v by a fraction of it */
    double scale = sqrt(gnorm * vnorm) + 1e-12;
    /* fp32 forward passes put a noise floor under small steps and kinks/curvature bias large
     * ones; the check passes if one of four step sizes around eps agrees. */
    static const float mult[4] = {10.0f, 3.0f, 1.0f, 0.3f};
    double fd[4];
    int ok = 0;
    for (int k = 0; k < 4 && !ok; k++) {
        float e = eps * mult[k];
        for (size_t i = 0; i < n; i++) x[i] = keep[i] + e * v[i];
        double lp = loss(ud);
        for (size_t i = 0; i < n; i++) x[i] = keep[i] - e * v[i];
        double lm = loss(ud);
        fd[k] = (lp - lm) / (2.0 * e);
        ok = fabs(fd[k] - want) <= rtol * scale;
    }
    memcpy(x, keep, n * sizeof(float));
    if (!ok) {
        ssl_test_failures++;
        fprintf(stderr, "FAIL gradcheck-dir %s: analytic g.v %.7g, finite differences %.7g %.7g %.7g "
                "%.7g (|g||v| %.4g)\n", what, want, fd[0], fd[1], fd[2], fd[3], scale);
    }
    free(keep);
    free(v);
    return ok;
}

ssl_plan ssl_test_bench_init(ssl_ctx *c, ssl_params *p, ssl_params *b)
{
    ssl_ctx_init(c, "cpu");
    ssl_params_init(p);
    ssl_params_init(b);
    return (ssl_plan){p, b};
}

void ssl_test_bench_free(ssl_ctx *c, ssl_params *p, ssl_params *b)
{
    ssl_params_free(p);
    ssl_params_free(b);
    ssl_ctx_free(c);
}

int ssl_fixture_copy_segments(const ssl_fixture *f, const char *prefix, const ssl_params *p, float *dst, int nseg)
{
    char key[160];
    int ok = 1;
    for (int i = 0; i < nseg; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, p->seg[i].name);
        if (!ssl_fixture_has(f, key)) {
            SSL_EXPECT(0, "the reference has no %s", key);
            ok = 0;
            continue;
        }
        size_t n;
        const float *v = ssl_fixture_get(f, key, &n);
        SSL_EXPECT(n == p->seg[i].n, "%s: %zu elements, the reference %zu", key, p->seg[i].n, n);
        if (n == p->seg[i].n) memcpy(dst + p->seg[i].off, v, n * sizeof(float));
        else ok = 0;
    }
    return ok;
}

int ssl_fixture_load_segments(const ssl_fixture *f, ssl_params *p, const char *kind)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/", kind);
    return ssl_fixture_copy_segments(f, prefix, p, p->data, p->nseg);
}

void ssl_fixture_compare_segments(const ssl_fixture *f, const char *prefix, const ssl_params *p, const float *got,
                                  int nseg, double rtol)
{
    for (int i = 0; i < nseg; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s%s", prefix, p->seg[i].name);
        const float *want = ssl_fixture_get(f, key, NULL);
        float mx = ssl_test_max_abs(want, p->seg[i].n);
        ssl_test_close(key, got + p->seg[i].off, want, p->seg[i].n, rtol * mx + 1e-5 * rtol / 1e-3, rtol);
    }
}

double ssl_test_worst_rel;

double ssl_test_close_rel(const char *what, const float *got, const float *want, size_t n, double rtol)
{
    double mx = 0, err = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(want[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs((double)got[i] - want[i]));
    const double rel = err / fmax(mx, 1e-30);
    printf("  %-50s max err %.3g (%.3g of max |%.4g|)\n", what, err, rel, mx);
    SSL_EXPECT(rel <= rtol, "%s: max error %.3g of the largest element, tolerance %.3g", what, rel, rtol);
    ssl_test_worst_rel = fmax(ssl_test_worst_rel, rel);
    return rel;
}

double ssl_test_close_scalar(const char *what, double got, double want, double rtol)
{
    const double rel = fabs(got - want) / fmax(fabs(want), 1e-30);
    printf("  %-50s %.9f torch %.9f (rel %.3g)\n", what, got, want, rel);
    SSL_EXPECT(rel <= rtol, "%s: %.9g, torch %.9g (rel %.3g > %.3g)", what, got, want, rel, rtol);
    ssl_test_worst_rel = fmax(ssl_test_worst_rel, rel);
    return rel;
}

float ssl_test_max_abs(const float *x, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

int ssl_test_mpi_exit(ssl_comm *comm)
{
    int64_t fails = ssl_test_failures;
    ssl_allreduce(comm, &fails, 1, SSL_I64, SSL_SUM);
    ssl_comm_free(comm);
    ssl_comm_mpi_finalize();
    return fails ? 1 : 0;
}
