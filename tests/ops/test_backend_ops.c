/* Cross-backend op test (ggml's test-backend-ops, STYLE.md §2): every op that both backends fill in
 * runs on the same random inputs (fixed seeds; shapes with odd sizes and one above 65,536 elements)
 * on backend A and backend B, and the outputs are compared by normalised squared error
 * sum (a - b)^2 / sum b^2 against a per-op bound (and each element's error against 10x the rms
 * error that bound allows); non-finite values must agree in kind (NaN, +inf, -inf) position by
 * position, and the elementwise ops also run on inputs seeded with NaN and inf.
 * Every device buffer carries a guard of sentinel floats after its end, checked after each op.
 *
 * Usage: test_backend_ops [A B] [--mutate OP]   (default A = B = cpu)
 *   cpu cpu  (label ops): runs everywhere, so the comparison machinery itself is exercised.
 *   cpu cuda (label cuda): exits 77 when the CUDA backend is not built or no device is visible.
 *   --mutate OP perturbs one element of B's output of OP by 1e-3 relative: the run must then fail
 *   (the proof that a wrong op cannot pass). SSL_CUDA_TF32=1 loosens the GEMM bound to TF32's. */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/core/ctx.h"
#ifdef SSL_HAVE_CUDA
#include "framework/backend/cuda/cuda.h"
#endif

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 16
#define SENTINEL 1234.5678f

static ssl_ctx ctx[2];
static const char *mutate;
static int ncompared, nskipped;

/* ---- the two backends ------------------------------------------------------------------------ */

static const ssl_backend *backend_named(const char *name)
{
    if (strcmp(name, "cpu") == 0) return ssl_backend_cpu();
    if (strcmp(name, "devsim") == 0) return ssl_backend_devsim();
#ifdef SSL_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) {
        if (ssl_cuda_device_count() == 0) {
            printf("SKIP: no CUDA device visible\n");
            exit(77);
        }
        /* directly, not through ssl_backend_get: the registry refuses the table to the trainer while it
         * is partial or the loop is not device-clean */
        const char *missing[64];
        int n = ssl_cuda_missing_ops(missing, 64);
        printf("cuda: %d ops not implemented yet (not compared):", n);
        for (int i = 0; i < n && i < 64; i++) printf(" %s", missing[i]);
        printf("\n");
        return ssl_backend_cuda();
    }
#endif
    printf("SKIP: backend '%s' is not built\n", name);
    exit(77);
}

/* ssl_ctx_init by hand: it looks the backend up through the registry (see backend_named). */
static void ctx_open(ssl_ctx *c, const ssl_backend *be)
{
    memset(c, 0, sizeof *c);
    c->be = be;
    c->nthreads = omp_get_max_threads();
    ssl_arena_init(&c->act, be->alloc, be->free);
    if (be->ctx_init) be->ctx_init(c);
}

/* ---- tensors living on both backends, with guards --------------------------------------------- */

typedef struct {
    size_t n, esz;   /* elements, bytes per element */
    void *d[2];      /* device buffers of n + GUARD elements */
} tens;

static tens *t_new_raw(const void *host, size_t n, size_t esz)
{
    tens *t = calloc(1, sizeof *t);
    t->n = n, t->esz = esz;
    size_t bytes = (n + GUARD) * esz;
    unsigned char *h = malloc(bytes);
    if (host) memcpy(h, host, n * esz);
    else memset(h, 0, n * esz);
    for (size_t i = 0; i < GUARD * esz / sizeof(float); i++) {
        float s = SENTINEL;
        memcpy(h + n * esz + i * sizeof(float), &s, sizeof s);
    }
    for (int s = 0; s < 2; s++) {
        t->d[s] = ctx[s].be->alloc(bytes);
        ctx[s].be->upload(t->d[s], h, bytes);
    }
    free(h);
    return t;
}

static tens *t_new(const float *host, size_t n) { return t_new_raw(host, n, sizeof(float)); }

/* Uniform random in [lo, hi) (seeded), optionally with NaN / +inf / -inf at fixed positions. */
static tens *t_rand(size_t n, uint64_t seed, float lo, float hi, int specials)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    ssl_test_uniform(h, n, seed, lo, hi);
    if (specials)
        for (size_t i = 0; i < n; i++) {
            if (i % 97 == 3) h[i] = NAN;
            else if (i % 89 == 5) h[i] = INFINITY;
            else if (i % 83 == 7) h[i] = -INFINITY;
        }
    tens *t = t_new(h, n);
    free(h);
    return t;
}

static tens *t_fill(size_t n, float v)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v;
    tens *t = t_new(h, n);
    free(h);
    return t;
}

static float *F(tens *t, int s) { return t ? (float *)t->d[s] : NULL; }
static int32_t *I(tens *t, int s) { return (int32_t *)t->d[s]; }

static void t_free(tens *t)
{
    if (!t) return;
    for (int s = 0; s < 2; s++) ctx[s].be->free(t->d[s]);
    free(t);
}

/* Downloads side s (n + GUARD floats) and checks the guard. */
static float *t_get(tens *t, int s, const char *what)
{
    ctx[s].be->sync(&ctx[s]);
    float *h = malloc((t->n + GUARD) * sizeof(float));
    ctx[s].be->download(h, t->d[s], (t->n + GUARD) * sizeof(float));
    for (size_t i = t->n; i < t->n + GUARD; i++)
        SSL_EXPECT(h[i] == SENTINEL, "%s: backend %s wrote past the end of its output (element %zu)",
                   what, ctx[s].be->name, i);
    return h;
}

/* ---- comparison ------------------------------------------------------------------------------ */

#define EXACT 0.0 /* bit for bit */

static int kind(float v) { return isnan(v) ? 1 : isinf(v) ? (v > 0 ? 2 : 3) : 0; }

/* B's value, after the test-only mutation when `op` is the mutated op. */
static void maybe_mutate(const char *op, float *b, size_t n)
{
    if (!mutate || strcmp(mutate, op) != 0 || n == 0) return;
    size_t i = n / 2;
    b[i] = b[i] != 0.0f ? b[i] * (1.0f + 1e-3f) : 1e-3f;
}

/* Compares output t of op `op` (case `what`) between the backends: non-finite kinds must agree
 * element by element, and the finite elements must have sum (a-b)^2 <= max_nmse * sum b^2 (the
 * absolute sum when b is all zero). `finite` additionally requires every element to be finite. */
static void cmp(const char *op, const char *what, tens *t, double max_nmse, int finite)
{
    float *a = t_get(t, 0, what), *b = t_get(t, 1, what);
    maybe_mutate(op, b, t->n);
    double err = 0.0, ref = 0.0, maxerr = 0.0;
    size_t bad_kind = 0, first_bad = 0, nonfinite = 0, worst = 0, bad_bits = 0, first_bits = 0;
    for (size_t i = 0; i < t->n; i++) {
        int ka = kind(a[i]), kb = kind(b[i]);
        /* EXACT: the bits (+0 and -0 alike), since the CPU backend's threads read subnormals as zero
         * (DAZ), which would hide a wrong subnormal from the arithmetic below */
        uint32_t ua, ub;
        memcpy(&ua, &a[i], 4), memcpy(&ub, &b[i], 4);
        if (max_nmse == EXACT && !ka && !kb && ua != ub && ((ua | ub) << 1) != 0 && !bad_bits++) first_bits = i;
        if (ka != kb) {
            if (!bad_kind) first_bad = i;
            bad_kind++;
            continue;
        }
        if (ka) {
            nonfinite++;
            continue;
        }
        double d = (double)a[i] - b[i];
        err += d * d;
        ref += (double)b[i] * b[i];
        if (fabs(d) > maxerr) maxerr = fabs(d), worst = i;
    }
    double nmse = ref > 0 ? err / ref : err;
    /* One wrong element hides in the nmse of a large tensor, so each element's error is also bounded,
     * relative to the tensor's rms: 10x the error that would give the whole tensor max_nmse. */
    size_t nfin = t->n - nonfinite - bad_kind;
    double rms = nfin ? sqrt(ref / (double)nfin) : 0.0, max_elem = 10.0 * sqrt(max_nmse) * rms;
    ncompared++;
    SSL_EXPECT(!bad_kind, "%s %s: %zu elements differ in NaN/inf (first [%zu]: %s %g vs %s %g)", op,
               what, bad_kind, first_bad, ctx[0].be->name, (double)a[first_bad], ctx[1].be->name,
               (double)b[first_bad]);
    SSL_EXPECT(nmse <= max_nmse, "%s %s: nmse %.3e > %.1e", op, what, nmse, max_nmse);
    SSL_EXPECT(!bad_bits, "%s %s: %zu elements differ in their bits (first [%zu]: 0x%08x vs 0x%08x)", op, what,
               bad_bits, first_bits, bad_bits ? (unsigned)*(const uint32_t *)(const void *)&a[first_bits] : 0u,
               bad_bits ? (unsigned)*(const uint32_t *)(const void *)&b[first_bits] : 0u);
    SSL_EXPECT(maxerr <= max_elem, "%s %s: [%zu] %s %.9g vs %s %.9g, error %.3e > %.3e (10 sqrt(nmse bound) rms)",
               op, what, worst, ctx[0].be->name, (double)a[worst], ctx[1].be->name, (double)b[worst],
               maxerr, max_elem);
    SSL_EXPECT(!finite || !nonfinite, "%s %s: %zu non-finite outputs where none may be", op, what,
               nonfinite);
    free(a), free(b);
}

/* Host reductions: |a - b| <= rtol * scale (scale: the sum of |terms|, so cancellation is fair).
 * Both sides add exact double terms in another order: about sqrt(n) * 1e-16 of the scale. */
static void cmp_scalar(const char *op, const char *what, double a, double b, double scale, double rtol)
{
    if (mutate && strcmp(mutate, op) == 0) b = b != 0.0 ? b * (1.0 + 1e-3) : 1e-3;
    ncompared++;
    SSL_EXPECT(fabs(a - b) <= rtol * scale || (isnan(a) && isnan(b)),
               "%s %s: %s %.17g vs %s %.17g (|terms| %.3g)", op, what, ctx[0].be->name, a,
               ctx[1].be->name, b, scale);
}

/* Both backends implement op, or the case is skipped (and counted). */
#define HAVE(op) (ctx[0].be->op && ctx[1].be->op ? 1 : (nskipped++, 0))
#define BOTH(call) for (int s = 0; s < 2; s++) { ssl_ctx *c = &ctx[s]; c->be->call; }

/* Per-op bounds on the normalised squared error. Ops exact in IEEE float (moves, single adds and
 * multiplies) must agree bit for bit; fused multiply-adds, other exp/erf implementations and other
 * summation orders are allowed a few ulps (1e-6 relative is 1e-12 nmse). */
#define ULPS 1e-12
#define LIBM 1e-10
/* Mixed-precision products: both sides round each result to bf16 after their own summation order,
 * so an element may land one bf16 step (2^-8 relative) apart. */
#define BF16_GEMM 1e-4
static double gemm_tol(void)
{
    const char *e = getenv("SSL_CUDA_TF32");
    return e && strcmp(e, "1") == 0 ? 1e-4 : 1e-10;
}

static tens *t_bf16(tens *x, tens **wide);
static const uint16_t *B16(tens *t, int s);
static void cmp_widened(const char *op, const char *what, tens *u, tens *f);

/* ---- elementwise ----------------------------------------------------------------------------- */

static void test_elementwise(size_t n, int specials)
{
    char w[64];
    snprintf(w, sizeof w, "n=%zu%s", n, specials ? " nan/inf" : "");
    const uint64_t sd = n * 31 + (uint64_t)specials;
    tens *x = t_rand(n, sd + 1, -4, 4, specials), *y = t_rand(n, sd + 2, -4, 4, specials);
    tens *o;
    if (!specials && HAVE(fill)) {
        o = t_fill(n, 0);
        BOTH(fill(c, F(o, s), n, -2.5f));
        cmp("fill", w, o, EXACT, 1);
        t_free(o);
    }
    if (HAVE(copy)) {
        o = t_fill(n, 0);
        BOTH(copy(c, F(o, s), F(x, s), n));
        cmp("copy", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(scale)) {
        o = t_rand(n, sd + 3, -4, 4, specials);
        BOTH(scale(c, F(o, s), n, -0.37f));
        cmp("scale", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(axpby)) {
        o = t_rand(n, sd + 3, -4, 4, specials);
        BOTH(axpby(c, n, 0.3f, F(x, s), -1.25f, F(o, s)));
        cmp("axpby", w, o, ULPS, 0);
        t_free(o);
        /* b == 0 must not read y: NaN there is overwritten on both sides */
        o = t_fill(n, NAN);
        BOTH(axpby(c, n, 2.0f, F(x, s), 0.0f, F(o, s)));
        cmp("axpby", specials ? "b=0 y=NaN, nan/inf x" : "b=0 y=NaN", o, EXACT, !specials);
        t_free(o);
    }
    if (HAVE(add)) {
        o = t_fill(n, 0);
        BOTH(add(c, n, F(x, s), F(y, s), F(o, s)));
        cmp("add", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(mul)) {
        o = t_fill(n, 0);
        BOTH(mul(c, n, F(x, s), F(y, s), F(o, s)));
        cmp("mul", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(relu_fwd)) {
        o = t_fill(n, 0);
        BOTH(relu_fwd(c, n, F(x, s), F(o, s)));
        cmp("relu_fwd", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(relu_bwd)) {
        o = t_rand(n, sd + 4, -1, 1, 0); /* in place: dx aliases dy */
        BOTH(relu_bwd(c, n, F(x, s), F(o, s), F(o, s)));
        cmp("relu_bwd", w, o, EXACT, 0);
        t_free(o);
    }
    if (HAVE(relu_bwd_bf16)) { /* y a ReLU output: every third element 0 or -0 */
        float *hy = malloc((n ? n : 1) * sizeof(float));
        ssl_test_uniform(hy, n, sd + 5, -4, 4);
        for (size_t i = 0; i < n; i += 3) hy[i] = i % 2 ? -0.0f : 0.0f;
        tens *yr = t_new(hy, n);
        free(hy);
        tens *yw, *yh = t_bf16(yr, &yw), *of = t_rand(n, sd + 4, -1, 1, 0);
        t_free(yr);
        o = t_rand(n, sd + 4, -1, 1, 0);
        BOTH(relu_bwd_bf16(c, n, B16(yh, s), F(o, s), F(o, s)));
        BOTH(relu_bwd(c, n, F(yw, s), F(of, s), F(of, s)));
        cmp_widened("relu_bwd_bf16", w, o, of);
        cmp("relu_bwd_bf16", w, o, EXACT, 0);
        t_free(o), t_free(of), t_free(yh), t_free(yw);
    }
    if (HAVE(gelu_fwd)) {
        o = t_fill(n, 0);
        BOTH(gelu_fwd(c, n, F(x, s), F(o, s)));
        cmp("gelu_fwd", w, o, LIBM, 0);
        t_free(o);
    }
    if (HAVE(gelu_bwd)) {
        o = t_fill(n, 0);
        BOTH(gelu_bwd(c, n, F(x, s), F(y, s), F(o, s)));
        cmp("gelu_bwd", w, o, LIBM, 0);
        t_free(o);
    }
    if (HAVE(sgd_update)) {
        for (int mode = 0; mode < 3; mode++) { /* plain (m NULL), momentum, nesterov */
            char w2[80];
            snprintf(w2, sizeof w2, "%s %s", w, mode == 0 ? "plain" : mode == 1 ? "momentum" : "nesterov");
            tens *wt = t_rand(n, sd + 5, -1, 1, 0), *m = mode ? t_rand(n, sd + 6, -1, 1, 0) : NULL;
            BOTH(sgd_update(c, n, 0.1f, mode ? 0.9f : 0.0f, mode == 2, 1e-4f, 0.5f, F(wt, s), F(x, s), F(m, s)));
            cmp("sgd_update", w2, wt, ULPS, 0);
            if (m) cmp("sgd_update", w2, m, ULPS, 0);
            t_free(wt), t_free(m);
        }
    }
    if (HAVE(adam_direction)) {
        tens *wt = t_rand(n, sd + 5, -1, 1, 0), *m = t_rand(n, sd + 6, -1, 1, 0);
        tens *v = t_rand(n, sd + 7, 0, 1, 0), *g = t_rand(n, sd + 8, -1, 1, specials);
        BOTH(adam_direction(c, n, 0.9f, 0.999f, 1e-8f, 0.1f, 0.01f, 0.05f, F(wt, s), F(g, s), F(m, s),
                            F(v, s), F(g, s))); /* u aliases g */
        cmp("adam_direction", w, g, LIBM, 0);
        cmp("adam_direction", w, m, ULPS, 0);
        cmp("adam_direction", w, v, ULPS, 0);
        t_free(wt), t_free(m), t_free(v), t_free(g);
    }
    t_free(x), t_free(y);
}

/* ---- bias over (outer, C, inner) ------------------------------------------------------------- */

static void test_bias(int64_t outer, int64_t C, int64_t inner)
{
    char w[80];
    snprintf(w, sizeof w, "(%lld,%lld,%lld)", (long long)outer, (long long)C, (long long)inner);
    size_t n = (size_t)(outer * C * inner);
    tens *y = t_rand(n, 41 + n, -2, 2, 0), *b = t_rand((size_t)C, 42, -1, 1, 0);
    if (HAVE(bias_add)) {
        BOTH(bias_add(c, outer, C, inner, F(b, s), F(y, s)));
        cmp("bias_add", w, y, EXACT, 1);
    }
    if (HAVE(bias_grad)) {
        BOTH(bias_grad(c, outer, C, inner, F(y, s), F(b, s))); /* accumulates into b */
        cmp("bias_grad", w, b, ULPS, 1);
    }
    t_free(y), t_free(b);
}

/* ---- row ops --------------------------------------------------------------------------------- */

static void test_rows(int64_t rows, int64_t D)
{
    char w[80];
    snprintf(w, sizeof w, "(%lld,%lld)", (long long)rows, (long long)D);
    size_t n = (size_t)(rows * D), r = (size_t)rows, d = (size_t)D;
    uint64_t sd = 1000 + n;
    tens *x = t_rand(n, sd + 1, -3, 3, 0), *dy = t_rand(n, sd + 2, -1, 1, 0);
    if (HAVE(layernorm_fwd)) {
        tens *g = t_rand(d, sd + 3, 0.5f, 1.5f, 0), *b = t_rand(d, sd + 4, -0.5f, 0.5f, 0);
        for (int aff = 0; aff < 2; aff++) {
            char w2[96];
            snprintf(w2, sizeof w2, "%s %s", w, aff ? "affine" : "plain");
            tens *y = t_fill(n, 0), *mu = t_fill(r, 0), *rs = t_fill(r, 0);
            BOTH(layernorm_fwd(c, rows, D, 1e-5f, F(x, s), aff ? F(g, s) : NULL, aff ? F(b, s) : NULL,
                               F(y, s), F(mu, s), F(rs, s)));
            cmp("layernorm_fwd", w2, y, LIBM, 1);
            cmp("layernorm_fwd", w2, mu, ULPS, 1);
            cmp("layernorm_fwd", w2, rs, ULPS, 1);
            if (HAVE(layernorm_bwd)) {
                /* the same saved statistics on both sides: A's */
                float *hm = t_get(mu, 0, w2), *hr = t_get(rs, 0, w2);
                tens *m0 = t_new(hm, r), *r0 = t_new(hr, r);
                tens *dx = t_rand(n, sd + 5, -1, 1, 0);
                tens *dg = t_rand(d, sd + 6, -1, 1, 0), *db = t_rand(d, sd + 7, -1, 1, 0);
                tens *dyc = t_new_raw(NULL, n, sizeof(float));
                BOTH(copy(c, F(dyc, s), F(dy, s), n));
                /* affine: dx aliases dy and the parameter grads accumulate; plain: no gamma, no grads */
                BOTH(layernorm_bwd(c, rows, D, F(dyc, s), F(x, s), aff ? F(g, s) : NULL, F(m0, s),
                                   F(r0, s), aff ? F(dyc, s) : F(dx, s), aff ? F(dg, s) : NULL,
                                   aff ? F(db, s) : NULL));
                cmp("layernorm_bwd", w2, aff ? dyc : dx, LIBM, 1);
                if (aff) {
                    cmp("layernorm_bwd", w2, dg, LIBM, 1);
                    cmp("layernorm_bwd", w2, db, ULPS, 1);
                }
                free(hm), free(hr);
                t_free(m0), t_free(r0), t_free(dx), t_free(dg), t_free(db), t_free(dyc);
            }
            t_free(y), t_free(mu), t_free(rs);
        }
        t_free(g), t_free(b);
    }
    if (HAVE(softmax_fwd)) {
        tens *y = t_rand(n, sd + 1, -3, 3, 0); /* in place: y starts as a copy of x */
        BOTH(softmax_fwd(c, rows, D, 0.7f, F(y, s), F(y, s)));
        cmp("softmax_fwd", w, y, LIBM, 1);
        t_free(y);
    }
    if (HAVE(softmax_bwd)) {
        tens *y = t_rand(n, sd + 8, 0, 1, 0), *dx = t_rand(n, sd + 2, -1, 1, 0);
        BOTH(softmax_bwd(c, rows, D, 0.7f, F(y, s), F(dx, s), F(dx, s))); /* dx aliases dy */
        cmp("softmax_bwd", w, dx, LIBM, 1);
        t_free(y), t_free(dx);
    }
    if (HAVE(log_softmax_fwd)) {
        tens *y = t_fill(n, 0);
        BOTH(log_softmax_fwd(c, rows, D, F(x, s), F(y, s)));
        cmp("log_softmax_fwd", w, y, LIBM, 1);
        t_free(y);
    }
    if (HAVE(log_softmax_bwd)) {
        tens *y = t_rand(n, sd + 9, -6, 0, 0), *dx = t_fill(n, 0);
        BOTH(log_softmax_bwd(c, rows, D, F(y, s), F(dy, s), F(dx, s)));
        cmp("log_softmax_bwd", w, dx, LIBM, 1);
        t_free(y), t_free(dx);
    }
    if (HAVE(l2norm_fwd)) {
        /* row 0 all zero: the eps clamp */
        float *h = t_get(x, 0, w);
        for (size_t j = 0; j < d; j++) h[j] = 0.0f;
        tens *xz = t_new(h, n), *y = t_fill(n, 0), *nr = t_fill(r, 0);
        BOTH(l2norm_fwd(c, rows, D, 1e-12f, F(xz, s), F(y, s), F(nr, s)));
        cmp("l2norm_fwd", w, y, LIBM, 1);
        cmp("l2norm_fwd", w, nr, ULPS, 1);
        free(h);
        t_free(xz), t_free(y), t_free(nr);
    }
    if (HAVE(l2norm_bwd)) {
        tens *y = t_rand(n, sd + 10, -1, 1, 0), *nr = t_rand(r, sd + 11, 0.5f, 2, 0), *dx = t_fill(n, 0);
        BOTH(l2norm_bwd(c, rows, D, F(y, s), F(nr, s), F(dy, s), F(dx, s)));
        cmp("l2norm_bwd", w, dx, LIBM, 1);
        t_free(y), t_free(nr), t_free(dx);
    }
    t_free(x), t_free(dy);
}

/* ---- GEMM ------------------------------------------------------------------------------------ */

static void test_gemm(int M, int N, int K, int batch)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            char w[96];
            snprintf(w, sizeof w, "M=%d N=%d K=%d ta=%d tb=%d batch=%d", M, N, K, ta, tb, batch);
            /* padded leading dimensions: a backend that ignores them fails */
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 1;
            int64_t sa = (int64_t)(ta ? K : M) * lda, sb = (int64_t)(tb ? N : K) * ldb, sc = (int64_t)M * ldc;
            uint64_t sd = (uint64_t)(M * 7 + N * 13 + K * 17 + ta * 2 + tb);
            tens *A = t_rand((size_t)(sa * batch), sd + 1, -1, 1, 0);
            tens *B = t_rand((size_t)(sb * batch), sd + 2, -1, 1, 0);
            tens *Cm = t_rand((size_t)(sc * batch), sd + 3, -1, 1, 0);
            if (batch == 1 && HAVE(gemm)) {
                BOTH(gemm(c, ta, tb, M, N, K, 0.75f, F(A, s), lda, F(B, s), ldb, 0.5f, F(Cm, s), ldc));
                cmp("gemm", w, Cm, gemm_tol(), 1);
            } else if (batch > 1 && HAVE(gemm_batched)) {
                BOTH(gemm_batched(c, ta, tb, M, N, K, 0.75f, F(A, s), lda, sa, F(B, s), ldb, sb, -1.0f,
                                  F(Cm, s), ldc, sc, batch));
                cmp("gemm_batched", w, Cm, gemm_tol(), 1);
            }
            t_free(A), t_free(B), t_free(Cm);
        }
}

/* Attention's layout: per image `outer` rows of width 3 D (q | k | v), a head a column block of dh;
 * S = Q K^T and O = P V for every (image, head) through gemm_batched2, against the other backend. */
static void test_gemm_batched2(int Bn, int T, int H, int dh)
{
    char w[96];
    snprintf(w, sizeof w, "B=%d T=%d H=%d dh=%d", Bn, T, H, dh);
    const int D = H * dh;
    tens *qkv = t_rand((size_t)Bn * T * 3 * D, 7100 + (uint64_t)(Bn * T * D), -1, 1, 0);
    tens *S = t_rand((size_t)Bn * H * T * T, 7101, -1, 1, 0), *O = t_rand((size_t)Bn * T * D, 7102, -1, 1, 0);
    if (HAVE(gemm_batched2)) {
        const int64_t sq[2] = {(int64_t)T * 3 * D, dh}, ss[2] = {(int64_t)H * T * T, (int64_t)T * T}, so[2] = {(int64_t)T * D, dh};
        BOTH(gemm_batched2(c, 0, 1, T, T, dh, 0.5f, F(qkv, s), 3 * D, sq, F(qkv, s) + D, 3 * D, sq, 0.0f, F(S, s), T,
                           ss, Bn, H));
        cmp("gemm_batched2", w, S, gemm_tol(), 1);
        BOTH(gemm_batched2(c, 0, 0, T, dh, T, 1.0f, F(S, s), T, ss, F(qkv, s) + 2 * D, 3 * D, sq, -0.5f, F(O, s), D,
                           so, Bn, H));
        cmp("gemm_batched2", w, O, gemm_tol(), 1);
        BOTH(gemm_batched2(c, 1, 0, T, dh, T, 1.0f, F(S, s), T, ss, F(O, s), D, so, 0.0f, F(qkv, s) + 2 * D, 3 * D,
                           sq, Bn, H));
        cmp("gemm_batched2", w, qkv, gemm_tol(), 1);
    }
    if (HAVE(gemm_batched2_bf16)) {
        /* the backward's products with q/k/v a saved bf16 view (both operands bf16 for Q K^T), against
         * the fp32 op on the widened qkv in the same bf16 region; and the dense single product of a
         * linear layer's dW += dY^T X with X bf16 (a device may read it in place) */
        const int64_t sq[2] = {(int64_t)T * 3 * D, dh}, ss[2] = {(int64_t)H * T * T, (int64_t)T * T},
                      so[2] = {(int64_t)T * D, dh}, z[2] = {0, 0};
        const int rows = Bn * T;
        tens *qw, *qh = t_bf16(qkv, &qw), *dO = t_rand((size_t)rows * D, 7103, -1, 1, 0);
        struct { int ta, tb, M, N, K, ah, bh; size_t boff; } cs[] = {
            {0, 1, T, T, dh, 1, 1, (size_t)D}, {0, 1, T, T, dh, 0, 1, (size_t)2 * D}, /* Q K^T; dO V^T */
            {0, 0, T, dh, T, 0, 1, (size_t)D}, {1, 0, T, dh, T, 0, 1, 0},             /* dS K; dS^T Q */
        };
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 1;
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s case %zu", w, i);
            const int skinny = cs[i].N == dh; /* an (image, head) block of O's layout, else of S's */
            const size_t nout = skinny ? (size_t)rows * D : (size_t)Bn * H * T * T;
            tens *u = t_rand(nout, 7104, -1, 1, 0), *f = t_rand(nout, 7104, -1, 1, 0);
            /* A: dO (T x dh blocks, layout so) for the N == T case, S (T x T) otherwise */
            tens *A = skinny ? S : dO;
            const int lda = skinny ? T : D;
            const int64_t *sa = skinny ? ss : so, *sc = skinny ? so : ss;
            const int ldc = skinny ? D : T;
            if (cs[i].ah) { /* both from qkv: A is q */
                BOTH(gemm_batched2_bf16(c, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, 0.5f, B16(qh, s), 1, 3 * D,
                                        sq, B16(qh, s) + cs[i].boff, 1, 3 * D, sq, 0.0f, F(u, s), ldc, sc, Bn, H));
                BOTH(gemm_batched2(c, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, 0.5f, F(qw, s), 3 * D, sq,
                                   F(qw, s) + cs[i].boff, 3 * D, sq, 0.0f, F(f, s), ldc, sc, Bn, H));
            } else {
                BOTH(gemm_batched2_bf16(c, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, 0.5f, F(A, s), 0, lda, sa,
                                        B16(qh, s) + cs[i].boff, 1, 3 * D, sq, -0.5f, F(u, s), ldc, sc, Bn, H));
                BOTH(gemm_batched2(c, cs[i].ta, cs[i].tb, cs[i].M, cs[i].N, cs[i].K, 0.5f, F(A, s), lda, sa,
                                   F(qw, s) + cs[i].boff, 3 * D, sq, -0.5f, F(f, s), ldc, sc, Bn, H));
            }
            cmp_widened("gemm_batched2_bf16", w2, u, f);
            cmp("gemm_batched2_bf16", w2, u, BF16_GEMM, 1);
            t_free(u), t_free(f);
        }
        /* dW (D x 3D) += dO^T (rows x D)^T X (rows x 3D, dense bf16) */
        tens *u = t_rand((size_t)D * 3 * D, 7105, -1, 1, 0), *f = t_rand((size_t)D * 3 * D, 7105, -1, 1, 0);
        BOTH(gemm_batched2_bf16(c, 1, 0, D, 3 * D, rows, 1.0f, F(dO, s), 0, D, z, B16(qh, s), 1, 3 * D, z, 1.0f,
                                F(u, s), 3 * D, z, 1, 1));
        BOTH(gemm(c, 1, 0, D, 3 * D, rows, 1.0f, F(dO, s), D, F(qw, s), 3 * D, 1.0f, F(f, s), 3 * D));
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 0;
        cmp_widened("gemm_batched2_bf16", w, u, f);
        cmp("gemm_batched2_bf16", w, u, BF16_GEMM, 1);
        t_free(u), t_free(f), t_free(qh), t_free(qw), t_free(dO);
    }
    t_free(qkv), t_free(S), t_free(O);
}

/* ---- token / row movement and patches -------------------------------------------------------- */

static void test_tokens(int64_t rows, int64_t cols)
{
    char w[80];
    int64_t ldd = cols + 2;
    uint64_t sd = 5000 + (uint64_t)(rows * cols);
    tens *src = t_rand((size_t)(rows * (cols + 5)), sd + 1, -1, 1, 0);
    /* the source's rows strided, then one row repeated (lds 0: a ViT's class token, MAE's mask token) */
    for (int bcast = 0; bcast < 2; bcast++) {
        const int64_t lds = bcast ? 0 : cols + 5;
        snprintf(w, sizeof w, "(%lld,%lld) lds %lld", (long long)rows, (long long)cols, (long long)lds);
        if (HAVE(copy2d)) {
            tens *dst = t_rand((size_t)(rows * ldd), sd + 2, -1, 1, 0); /* the gaps must survive */
            BOTH(copy2d(c, rows, cols, F(src, s), lds, F(dst, s), ldd));
            cmp("copy2d", w, dst, EXACT, 1);
            t_free(dst);
        }
        if (HAVE(add2d)) {
            tens *dst = t_rand((size_t)(rows * ldd), sd + 2, -1, 1, 0);
            BOTH(add2d(c, rows, cols, F(src, s), lds, F(dst, s), ldd));
            cmp("add2d", w, dst, EXACT, 1);
            t_free(dst);
        }
    }
    snprintf(w, sizeof w, "(%lld,%lld)", (long long)rows, (long long)cols);
    /* a permutation subset of distinct rows: (i * 7 + 3) mod rows for i < n, with rows odd */
    int64_t total = rows | 1, nsel = total / 2 + 1;
    int32_t *idx = malloc((size_t)nsel * sizeof(int32_t));
    for (int64_t i = 0; i < nsel; i++) idx[i] = (int32_t)((i * 7 + 3) % total);
    if (total % 7 == 0)
        for (int64_t i = 0; i < nsel; i++) idx[i] = (int32_t)(total - 1 - i);
    tens *ix = t_new_raw(idx, (size_t)nsel, sizeof(int32_t));
    tens *full = t_rand((size_t)(total * cols), sd + 3, -1, 1, 0);
    if (HAVE(gather_rows)) {
        tens *dst = t_fill((size_t)(nsel * cols), 0);
        BOTH(gather_rows(c, nsel, cols, I(ix, s), F(full, s), F(dst, s)));
        cmp("gather_rows", w, dst, EXACT, 1);
        t_free(dst);
    }
    if (HAVE(scatter_add_rows)) {
        tens *part = t_rand((size_t)(nsel * cols), sd + 4, -1, 1, 0);
        BOTH(scatter_add_rows(c, nsel, cols, I(ix, s), F(part, s), F(full, s)));
        cmp("scatter_add_rows", w, full, EXACT, 1);
        t_free(part);
    }
    free(idx);
    t_free(ix), t_free(full), t_free(src);
}

static void test_patch(int N, int C, int H, int W, int p)
{
    char w[80];
    snprintf(w, sizeof w, "N=%d C=%d H=%d W=%d p=%d", N, C, H, W, p);
    size_t nx = (size_t)N * C * H * W, np = (size_t)N * (H / p) * (W / p) * C * p * p;
    tens *x = t_rand(nx, 7000 + nx, -1, 1, 0), *pt = t_rand(np, 7001 + np, -1, 1, 0);
    if (HAVE(patchify)) {
        tens *o = t_fill(np, 0);
        BOTH(patchify(c, N, C, H, W, p, F(x, s), F(o, s)));
        cmp("patchify", w, o, EXACT, 1);
        t_free(o);
    }
    if (HAVE(patchify_hwc)) {
        tens *o = t_fill(np, 0);
        BOTH(patchify_hwc(c, N, C, H, W, p, F(x, s), F(o, s)));
        cmp("patchify_hwc", w, o, EXACT, 1);
        t_free(o);
    }
    if (HAVE(unpatchify)) {
        tens *o = t_rand(nx, 7002, -1, 1, 0); /* pixels outside whole patches stay as they were */
        BOTH(unpatchify(c, N, C, H, W, p, F(pt, s), F(o, s)));
        cmp("unpatchify", w, o, EXACT, 1);
        t_free(o);
    }
    t_free(x), t_free(pt);
}

/* ---- exact int32 and double outputs ------------------------------------------------------------ */

/* Downloads side s of an int32 / double tensor, checking its guard (written as float sentinels). */
static void *t_get_raw(tens *t, int s, const char *what)
{
    ctx[s].be->sync(&ctx[s]);
    size_t bytes = (t->n + GUARD) * t->esz;
    unsigned char *h = malloc(bytes);
    ctx[s].be->download(h, t->d[s], bytes);
    for (size_t i = 0; i < GUARD * t->esz / sizeof(float); i++) {
        float v;
        memcpy(&v, h + t->n * t->esz + i * sizeof(float), sizeof v);
        SSL_EXPECT(v == SENTINEL, "%s: backend %s wrote past the end of its output", what, ctx[s].be->name);
    }
    return h;
}

/* Argmax indices must agree exactly (the mutation moves one by one element). */
static void cmp_i32(const char *op, const char *what, tens *t)
{
    int32_t *a = t_get_raw(t, 0, what), *b = t_get_raw(t, 1, what);
    if (mutate && strcmp(mutate, op) == 0 && t->n) b[t->n / 2] += 1;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->n; i++)
        if (a[i] != b[i] && !bad++) first = i;
    ncompared++;
    SSL_EXPECT(!bad, "%s %s: %zu indices differ (first [%zu]: %d vs %d)", op, what, bad, first,
               bad ? a[first] : 0, bad ? b[first] : 0);
    free(a), free(b);
}

/* bf16 casts: the 16-bit patterns of fp32 -> bf16 must agree exactly (NaN too: both give 0x7FC0), and
 * the round trip back to fp32 is compared as any exact op. Inputs span every exponent, with ties,
 * subnormals, values that round to inf, and NaN / inf when `specials`. */
static void test_cast(size_t n, int specials)
{
    if (!HAVE(cast_f32_bf16) || !HAVE(cast_bf16_f32)) return;
    char w[64];
    snprintf(w, sizeof w, "n=%zu%s", n, specials ? " nan/inf" : "");
    float *h = malloc((n ? n : 1) * sizeof(float));
    ssl_test_uniform(h, n, 77 + n, 1.0f, 2.0f);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &h[i], sizeof u);
        if (i % 5 == 1) u = (u & ~0xFFFFu) | 0x8000u; /* a tie */
        const int e = (int)(i * 7919 % 256);           /* any exponent, 0 (subnormal) and 255 (inf / NaN) too */
        if (e < 255 || specials) u = (u & 0x807FFFFFu) | (uint32_t)e << 23;
        if (i & 2) u |= 0x80000000u;
        memcpy(&h[i], &u, sizeof u);
    }
    tens *x = t_new(h, n), *b = t_new_raw(NULL, n, sizeof(uint16_t)), *o = t_fill(n, 0);
    free(h);
    BOTH(cast_f32_bf16(c, (uint16_t *)b->d[s], F(x, s), n));
    BOTH(cast_bf16_f32(c, F(o, s), (const uint16_t *)b->d[s], n));
    uint16_t *ba = t_get_raw(b, 0, w), *bb = t_get_raw(b, 1, w);
    if (mutate && strcmp(mutate, "cast_f32_bf16") == 0 && n) bb[n / 2] ^= 1;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (ba[i] != bb[i] && !bad++) first = i;
    ncompared++;
    SSL_EXPECT(!bad, "cast_f32_bf16 %s: %zu patterns differ (first [%zu]: %s 0x%04x vs %s 0x%04x)", w, bad, first,
               ctx[0].be->name, ba[first], ctx[1].be->name, bb[first]);
    free(ba), free(bb);
    cmp("cast_bf16_f32", w, o, EXACT, 0);
    t_free(x), t_free(b), t_free(o);
}

/* Double outputs (row sums): |a - b| <= rtol |b| element by element, NaN/inf in the same places. */
static void cmp_f64(const char *op, const char *what, tens *t, double rtol)
{
    double *a = t_get_raw(t, 0, what), *b = t_get_raw(t, 1, what);
    if (mutate && strcmp(mutate, op) == 0 && t->n) b[t->n / 2] = b[t->n / 2] != 0.0 ? b[t->n / 2] * (1.0 + 1e-3) : 1e-3;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < t->n; i++) {
        int ok = isfinite(a[i]) ? fabs(a[i] - b[i]) <= rtol * fabs(b[i]) : (isnan(a[i]) ? isnan(b[i]) : a[i] == b[i]);
        if (!ok && !bad++) first = i;
    }
    ncompared++;
    SSL_EXPECT(!bad, "%s %s: %zu elements differ (first [%zu]: %.17g vs %.17g)", op, what, bad, first,
               bad ? a[first] : 0.0, bad ? b[first] : 0.0);
    free(a), free(b);
}

/* ---- the _bf16 ops: a saved operand as bf16 bits ------------------------------------------------- */

/* x's bf16 bits (h) and those bits widened back to fp32 (*wide), on both backends. */
static tens *t_bf16(tens *x, tens **wide)
{
    tens *h = t_new_raw(NULL, x->n, sizeof(uint16_t));
    *wide = t_fill(x->n, 0);
    BOTH(cast_f32_bf16(c, (uint16_t *)h->d[s], F(x, s), x->n));
    BOTH(cast_bf16_f32(c, F(*wide, s), (const uint16_t *)h->d[s], x->n));
    return h;
}
static const uint16_t *B16(tens *t, int s) { return (const uint16_t *)t->d[s]; }

/* On each backend, the _bf16 op's output u (esz-byte elements) is the fp32 op's output f on the widened
 * operand, bit for bit: the op reads the bits as the fp32 op reads their widening. */
static void cmp_widened(const char *op, const char *what, tens *u, tens *f)
{
    for (int s = 0; s < 2; s++) {
        unsigned char *a = t_get_raw(u, s, what), *b = t_get_raw(f, s, what);
        if (s == 1 && mutate && strcmp(mutate, op) == 0 && u->n) a[u->n / 2 * u->esz + u->esz - 2] ^= 0x10;
        ncompared++;
        SSL_EXPECT(memcmp(a, b, u->n * u->esz) == 0, "%s %s on %s: not the fp32 op's result on the widened operand",
                   op, what, ctx[s].be->name);
        free(a), free(b);
    }
}

/* ---- pooling --------------------------------------------------------------------------------- */

static void test_maxpool(int N, int C, int H, int W, int k, int stride, int pad, int specials)
{
    char w[96];
    snprintf(w, sizeof w, "N=%d C=%d H=%d W=%d k=%d s=%d p=%d%s", N, C, H, W, k, stride, pad,
             specials ? " ties nan/inf" : "");
    const int P = (H + 2 * pad - k) / stride + 1, Q = (W + 2 * pad - k) / stride + 1;
    const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * P * Q;
    float *hx = malloc(nx * sizeof(float));
    ssl_test_uniform(hx, nx, 11000 + nx, -2, 2);
    if (specials) /* ties (first maximum wins) and NaN / inf (NaN wins) */
        for (size_t i = 0; i < nx; i++) {
            hx[i] = roundf(hx[i]);
            if (i % 37 == 3) hx[i] = NAN;
            else if (i % 41 == 5) hx[i] = INFINITY;
            else if (i % 43 == 7) hx[i] = -INFINITY;
        }
    tens *x = t_new(hx, nx), *y = t_rand(ny, 1, -9, 9, 0), *ix = t_new_raw(NULL, ny, sizeof(int32_t));
    if (HAVE(maxpool_fwd)) {
        BOTH(maxpool_fwd(c, N, C, H, W, k, stride, pad, P, Q, F(x, s), F(y, s), I(ix, s)));
        cmp("maxpool_fwd", w, y, EXACT, 0);
        cmp_i32("maxpool_fwd", w, ix);
    }
    if (HAVE(maxpool_bwd)) {
        /* A's argmax on both sides; an overlapping window (k > stride) shares argmaxes */
        int32_t *hi = t_get_raw(ix, 0, w);
        if (!ctx[0].be->maxpool_fwd) /* no forward: a valid argmax by hand, each window's last */
            for (size_t i = 0; i < ny; i++) {
                const int p = (int)(i / (size_t)Q % (size_t)P), q = (int)(i % (size_t)Q);
                const int h = p * stride - pad + k - 1, ww = q * stride - pad + k - 1;
                hi[i] = (int32_t)((h < H ? h : H - 1) * W + (ww < W ? ww : W - 1));
            }
        tens *i0 = t_new_raw(hi, ny, sizeof(int32_t));
        tens *dy = t_rand(ny, 11001 + ny, -1, 1, 0), *dx = t_rand(nx, 11002, -5, 5, 0); /* assigned */
        BOTH(maxpool_bwd(c, N, C, H, W, k, stride, pad, P, Q, F(dy, s), I(i0, s), F(dx, s)));
        cmp("maxpool_bwd", w, dx, EXACT, 1);
        free(hi);
        t_free(i0), t_free(dy), t_free(dx);
    }
    free(hx);
    t_free(x), t_free(y), t_free(ix);
}

static void test_avgpool(int64_t NC, int64_t S)
{
    char w[64];
    snprintf(w, sizeof w, "NC=%lld S=%lld", (long long)NC, (long long)S);
    const size_t n = (size_t)(NC * S);
    tens *x = t_rand(n, 12000 + n, -2, 3, 0);
    if (HAVE(avgpool_fwd)) {
        tens *y = t_rand((size_t)NC, 3, -9, 9, 0);
        BOTH(avgpool_fwd(c, NC, S, F(x, s), F(y, s)));
        cmp("avgpool_fwd", w, y, ULPS, 1);
        t_free(y);
    }
    if (HAVE(avgpool_bwd)) {
        tens *dy = t_rand((size_t)NC, 12001 + n, -1, 1, 0), *dx = t_rand(n, 4, -9, 9, 0);
        BOTH(avgpool_bwd(c, NC, S, F(dy, s), F(dx, s)));
        cmp("avgpool_bwd", w, dx, EXACT, 1);
        t_free(dy), t_free(dx);
    }
    t_free(x);
}

/* ---- augmentation ---------------------------------------------------------------------------- */

static uint32_t lcg(uint32_t *st) { return *st = *st * 1664525u + 1013904223u; }
static float lcg_unit(uint32_t *st) { return (float)(lcg(st) >> 8) / 16777216.0f; }
static int lcg_int(uint32_t *st, int lo, int hi) { return lo + (int)(lcg(st) % (uint32_t)(hi - lo + 1)); }

/* njobs views of C-channel images of random sizes at S px, every transform drawn at random. Solarize
 * is a step at 128/255, so its jobs take the crop as it is (S x S, no resampling) and no jitter or blur:
 * both backends then see exact k/255 values at the threshold. */
static void test_augment(int C, int S, int njobs, uint32_t seed)
{
    if (!HAVE(augment)) return;
    char w[80];
    snprintf(w, sizeof w, "C=%d S=%d jobs=%d", C, S, njobs);
    ssl_aug_job *jobs = calloc((size_t)njobs, sizeof *jobs);
    size_t src_bytes = 0;
    uint32_t st = seed;
    for (int j = 0; j < njobs; j++) {
        ssl_aug_job *a = &jobs[j];
        const int sol = j % 5 == 4;
        a->H = lcg_int(&st, sol ? S : 1, S + 20), a->W = lcg_int(&st, sol ? S : 1, S + 30), a->C = C, a->S = S;
        a->crop_h = sol ? S : lcg_int(&st, 1, a->H), a->crop_w = sol ? S : lcg_int(&st, 1, a->W);
        a->crop_y = lcg_int(&st, 0, a->H - a->crop_h), a->crop_x = lcg_int(&st, 0, a->W - a->crop_w);
        a->flip = (int)(lcg(&st) & 1);
        a->jitter = !sol && lcg_int(&st, 0, 2) > 0;
        for (int k = 0; k < 4; k++) a->order[k] = k;
        for (int k = 3; k > 0; k--) { /* a random order */
            const int r = lcg_int(&st, 0, k), t = a->order[k];
            a->order[k] = a->order[r], a->order[r] = t;
        }
        a->brightness = 0.6f + 0.8f * lcg_unit(&st), a->contrast = 0.6f + 0.8f * lcg_unit(&st);
        a->saturation = 0.6f + 0.8f * lcg_unit(&st), a->hue = 0.2f * lcg_unit(&st) - 0.1f;
        a->grayscale = !sol && lcg_int(&st, 0, 3) == 0;
        a->blur = !sol && (lcg(&st) & 1), a->sigma = 0.1f + 1.9f * lcg_unit(&st);
        a->solarize = sol;
        for (int c = 0; c < 3; c++) a->mean[c] = 0.3f + 0.2f * lcg_unit(&st), a->std[c] = 0.2f + 0.2f * lcg_unit(&st);
        a->src = (int64_t)src_bytes, a->dst = (int64_t)j * C * S * S;
        src_bytes += (size_t)a->H * a->W * C;
    }
    uint8_t *px = malloc(src_bytes);
    for (size_t i = 0; i < src_bytes; i++) px[i] = (uint8_t)(lcg(&st) >> 24);
    tens *src = t_new_raw(px, src_bytes, 1), *job = t_new_raw(jobs, (size_t)njobs, sizeof *jobs);
    tens *out = t_fill((size_t)njobs * C * S * S, -7.0f);
    BOTH(augment(c, njobs, S, (const uint8_t *)src->d[s], (const ssl_aug_job *)job->d[s], F(out, s)));
    cmp("augment", w, out, LIBM, 1);
    t_free(src), t_free(job), t_free(out);
    free(px), free(jobs);
}

/* ---- bicubic resize -------------------------------------------------------------------------- */

static void test_resize(int hi, int wi, int ho, int wo, int64_t D)
{
    char w[80];
    snprintf(w, sizeof w, "%dx%d -> %dx%d D=%lld", hi, wi, ho, wo, (long long)D);
    const size_t nin = (size_t)hi * wi * D, nout = (size_t)ho * wo * D;
    if (HAVE(resize_bicubic_fwd)) {
        tens *x = t_rand(nin, 13000 + nin, -1, 1, 0), *y = t_rand(nout, 5, -9, 9, 0);
        BOTH(resize_bicubic_fwd(c, hi, wi, ho, wo, D, F(x, s), F(y, s)));
        cmp("resize_bicubic_fwd", w, y, ULPS, 1);
        t_free(x), t_free(y);
    }
    if (HAVE(resize_bicubic_bwd)) {
        tens *dy = t_rand(nout, 13001 + nout, -1, 1, 0), *dx = t_rand(nin, 13002 + nin, -1, 1, 0);
        BOTH(resize_bicubic_bwd(c, hi, wi, ho, wo, D, F(dy, s), F(dx, s))); /* accumulates */
        cmp("resize_bicubic_bwd", w, dx, ULPS, 1);
        t_free(dy), t_free(dx);
    }
}

/* ---- sharded softmax -------------------------------------------------------------------------- */

static void test_sharded(int64_t rows, int64_t D, int centred)
{
    char w[80];
    snprintf(w, sizeof w, "(%lld,%lld)%s", (long long)rows, (long long)D, centred ? " centred" : "");
    const size_t n = (size_t)(rows * D), r = (size_t)rows;
    tens *x = t_rand(n, 14000 + n, -3, 3, 0), *ce = centred ? t_rand((size_t)D, 14001, -1, 1, 0) : NULL;
    const float scale = 1.0f / 0.07f;
    tens *mx = t_fill(r, 0), *se = t_new_raw(NULL, r, sizeof(double));
    if (HAVE(row_max)) {
        BOTH(row_max(c, rows, D, scale, F(x, s), F(ce, s), F(mx, s)));
        cmp("row_max", w, mx, EXACT, 1);
    }
    /* A's statistics on both sides from here on, so each op is compared alone */
    float *hm = t_get(mx, 0, w);
    if (!ctx[0].be->row_max)
        for (size_t i = 0; i < r; i++) hm[i] = 3.0f * scale;
    tens *m0 = t_new(hm, r);
    if (HAVE(row_sumexp)) {
        BOTH(row_sumexp(c, rows, D, scale, F(x, s), F(ce, s), F(m0, s), (double *)se->d[s]));
        cmp_f64("row_sumexp", w, se, 1e-5); /* float exp terms (another exp: a few ulps), LIBM-like */
    }
    double *hs = t_get_raw(se, 0, w);
    if (!ctx[0].be->row_sumexp)
        for (size_t i = 0; i < r; i++) hs[i] = (double)D;
    tens *s0 = t_new_raw(hs, r, sizeof(double));
    if (HAVE(softmax_apply)) {
        for (int outs = 1; outs < 4; outs++) { /* logp only, p only, both */
            char w2[96];
            snprintf(w2, sizeof w2, "%s out=%s", w, outs == 1 ? "logp" : outs == 2 ? "p" : "both");
            tens *lp = t_rand(n, 6, -9, 9, 0), *p = t_rand(n, 7, -9, 9, 0);
            BOTH(softmax_apply(c, rows, D, scale, F(x, s), F(ce, s), F(m0, s), (const double *)s0->d[s],
                               outs & 1 ? F(lp, s) : NULL, outs & 2 ? F(p, s) : NULL));
            cmp("softmax_apply", w2, lp, LIBM, 1); /* untouched when NULL: still equal */
            cmp("softmax_apply", w2, p, LIBM, 1);
            t_free(lp), t_free(p);
        }
    }
    free(hm), free(hs);
    t_free(x), t_free(ce), t_free(mx), t_free(se), t_free(m0), t_free(s0);
}

/* ---- fused losses ---------------------------------------------------------------------------- */

static void test_ntxent(int64_t nq, int64_t half, int64_t chunks, int64_t row0)
{
    char w[80];
    const int64_t M = 2 * half * chunks;
    snprintf(w, sizeof w, "nq=%lld M=%lld half=%lld row0=%lld", (long long)nq, (long long)M,
             (long long)half, (long long)row0);
    if (!HAVE(ntxent_rows)) return;
    const size_t n = (size_t)(nq * M);
    tens *S = t_rand(n, 15000 + n, -10, 10, 0); /* logits / temperature 0.1 */
    double l[2];
    for (int s = 0; s < 2; s++) ctx[s].be->ntxent_rows(&ctx[s], nq, M, row0, half, F(S, s), &l[s]);
    cmp("ntxent_rows", w, S, LIBM, 1);
    /* the loss sums log(sum of float exps): another exp implementation moves it by a few float ulps */
    cmp_scalar("ntxent_rows", w, l[0], l[1], fabs(l[0]), 1e-6);
    t_free(S);
}

static void test_dino(int64_t R, int64_t D, int vt, int vs)
{
    char w[80];
    snprintf(w, sizeof w, "R=%lld D=%lld vt=%d vs=%d", (long long)R, (long long)D, vt, vs);
    if (!HAVE(dino_xent_rows)) return;
    const size_t np = (size_t)(vt * R * D), nl = (size_t)(vs * R * D);
    tens *P = t_rand(np, 16000 + np, 0, 1, 0);
    for (int mode = 0; mode < 3; mode++) { /* dS separate, dS NULL, dS aliasing LS */
        char w2[96];
        snprintf(w2, sizeof w2, "%s dS=%s", w, mode == 0 ? "own" : mode == 1 ? "NULL" : "LS");
        tens *LS = t_rand(nl, 16001 + nl, -8, 0, 0), *dS = t_rand(nl, 8, -9, 9, 0);
        double ce[2];
        for (int s = 0; s < 2; s++)
            ctx[s].be->dino_xent_rows(&ctx[s], R, D, vt, vs, F(P, s), F(LS, s), 0.37f,
                                      mode == 0 ? F(dS, s) : mode == 1 ? NULL : F(LS, s), &ce[s]);
        cmp("dino_xent_rows", w2, mode == 2 ? LS : dS, LIBM, 1);
        cmp_scalar("dino_xent_rows", w2, ce[0], ce[1], fabs(ce[0]), 1e-11);
        t_free(LS), t_free(dS);
    }
    t_free(P);
}

static void test_mae(int64_t rows, int64_t Fd, float norm_eps)
{
    char w[80];
    snprintf(w, sizeof w, "rows=%lld F=%lld eps=%g", (long long)rows, (long long)Fd, (double)norm_eps);
    if (!HAVE(mae_loss_rows)) return;
    const size_t n = (size_t)(rows * Fd);
    float *hm = malloc((size_t)rows * sizeof(float));
    for (int64_t r = 0; r < rows; r++) hm[r] = (r * 5 + 1) % 4 == 0 ? 0.0f : 1.0f; /* some unmasked */
    tens *pr = t_rand(n, 17000 + n, -1, 1, 0), *tg = t_rand(n, 17001 + n, 0, 1, 0);
    tens *mk = t_new(hm, (size_t)rows);
    for (int with_d = 0; with_d < 2; with_d++) {
        char w2[96];
        snprintf(w2, sizeof w2, "%s%s", w, with_d ? " dpred" : "");
        tens *d = t_rand(n, 9, -9, 9, 0);
        double l[2];
        for (int s = 0; s < 2; s++)
            ctx[s].be->mae_loss_rows(&ctx[s], rows, Fd, norm_eps, F(pr, s), F(tg, s), F(mk, s), 0.25f,
                                     with_d ? F(d, s) : NULL, &l[s]);
        cmp("mae_loss_rows", w2, d, ULPS, 1);
        cmp_scalar("mae_loss_rows", w2, l[0], l[1], fabs(l[0]), 1e-11);
        t_free(d);
    }
    free(hm);
    t_free(pr), t_free(tg), t_free(mk);
}

/* ---- convolution ---------------------------------------------------------------------------- */

/* oneDNN / im2col against cuDNN: other summation orders of C*R*R-term dot products, so the GEMM bound
 * (and TF32's under SSL_CUDA_TF32=1). dw accumulates onto random values, dx is assigned over them. */
static void test_conv(int N, int C, int H, int W, int K, int R, int stride, int pad)
{
    char w[96];
    snprintf(w, sizeof w, "N=%d C=%d H=%d W=%d K=%d R=%d s=%d p=%d", N, C, H, W, K, R, stride, pad);
    const ssl_conv_shape sh = ssl_conv_shape_make(N, C, H, W, K, R, stride, pad);
    const size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)N * K * sh.P * sh.Q;
    tens *x = t_rand(nx, 15000 + nx, -1, 1, 0), *wt = t_rand(nw, 15001 + nw, -0.5f, 0.5f, 0);
    tens *dy = t_rand(ny, 15002 + ny, -1, 1, 0);
    if (HAVE(conv2d_fwd)) {
        tens *y = t_rand(ny, 15003, -9, 9, 0);
        BOTH(conv2d_fwd(c, &sh, F(x, s), F(wt, s), F(y, s)));
        cmp("conv2d_fwd", w, y, gemm_tol(), 1);
        t_free(y);
    }
    if (HAVE(conv2d_bwd_data)) {
        tens *dx = t_rand(nx, 15004, -9, 9, 0);
        BOTH(conv2d_bwd_data(c, &sh, F(dy, s), F(wt, s), F(dx, s)));
        cmp("conv2d_bwd_data", w, dx, gemm_tol(), 1);
        t_free(dx);
    }
    if (HAVE(conv2d_bwd_filter)) {
        tens *dw = t_rand(nw, 15005, -1, 1, 0);
        BOTH(conv2d_bwd_filter(c, &sh, F(dy, s), F(x, s), F(dw, s)));
        cmp("conv2d_bwd_filter", w, dw, gemm_tol(), 1);
        t_free(dw);
    }
    if (HAVE(conv2d_fwd_bf16)) { /* mixed precision: y's bits, widened, are the fp32 op's rounded y */
        tens *yh = t_new_raw(NULL, ny, sizeof(uint16_t)), *yw = t_fill(ny, 0), *yf = t_rand(ny, 15003, -9, 9, 0);
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 1;
        BOTH(conv2d_fwd_bf16(c, &sh, F(x, s), F(wt, s), (uint16_t *)yh->d[s]));
        BOTH(conv2d_fwd(c, &sh, F(x, s), F(wt, s), F(yf, s)));
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 0;
        BOTH(cast_bf16_f32(c, F(yw, s), B16(yh, s), ny));
        cmp_widened("conv2d_fwd_bf16", w, yw, yf);
        cmp("conv2d_fwd_bf16", w, yw, BF16_GEMM, 1);
        t_free(yh), t_free(yw), t_free(yf);
    }
    if (HAVE(conv2d_bwd_filter_bf16)) { /* a mixed-precision op: both sides in a bf16 region */
        tens *xw, *xh = t_bf16(x, &xw), *dw = t_rand(nw, 15005, -1, 1, 0), *dwf = t_rand(nw, 15005, -1, 1, 0);
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 1;
        BOTH(conv2d_bwd_filter_bf16(c, &sh, F(dy, s), B16(xh, s), F(dw, s)));
        BOTH(conv2d_bwd_filter(c, &sh, F(dy, s), F(xw, s), F(dwf, s)));
        for (int s = 0; s < 2; s++) ctx[s].bf16 = 0;
        cmp_widened("conv2d_bwd_filter_bf16", w, dw, dwf);
        cmp("conv2d_bwd_filter_bf16", w, dw, BF16_GEMM, 1);
        t_free(xh), t_free(xw), t_free(dw), t_free(dwf);
    }
    t_free(x), t_free(wt), t_free(dy);
}

/* ---- batch norm over (N, C, S) ----------------------------------------------------------------- */

/* Each op alone on the same inputs (later ops take A's statistics, as test_sharded). The sums use
 * positive terms (x > 0, dy > 0, mean < min x) so the per-channel relative bound is fair: both sides
 * add the same double terms in another order. The elementwise ops are the CPU's float expressions. */
static void test_bn(int64_t N, int64_t C, int64_t S)
{
    char w[96];
    snprintf(w, sizeof w, "N=%lld C=%lld S=%lld", (long long)N, (long long)C, (long long)S);
    const size_t n = (size_t)(N * C * S), nc = (size_t)C;
    tens *x = t_rand(n, 16000 + n, 0.5f, 2.0f, 0), *dy = t_rand(n, 16001 + n, 0.1f, 1.0f, 0);
    tens *mean = t_rand(nc, 16002, -1.0f, -0.5f, 0), *invstd = t_rand(nc, 16003, 0.5f, 3.0f, 0);
    tens *gamma = t_rand(nc, 16004, -2, 2, 0), *beta = t_rand(nc, 16005, -1, 1, 0);
    tens *sa = t_new_raw(NULL, nc, sizeof(double)), *sb = t_new_raw(NULL, nc, sizeof(double));
    if (HAVE(bn_stats)) {
        BOTH(bn_stats(c, N, C, S, F(x, s), (double *)sa->d[s], (double *)sb->d[s]));
        cmp_f64("bn_stats", w, sa, 1e-12);
        cmp_f64("bn_stats", w, sb, 1e-12);
    }
    if (HAVE(bn_bwd_stats)) {
        BOTH(bn_bwd_stats(c, N, C, S, F(dy, s), F(x, s), F(mean, s), F(invstd, s), (double *)sa->d[s],
                          (double *)sb->d[s]));
        cmp_f64("bn_bwd_stats", w, sa, 1e-12);
        cmp_f64("bn_bwd_stats", w, sb, 1e-12);
    }
    tens *xw, *xh = t_bf16(x, &xw); /* x as a saved bf16 activation, and widened */
    if (HAVE(bn_stats_bf16)) {
        tens *fa = t_new_raw(NULL, nc, sizeof(double)), *fb = t_new_raw(NULL, nc, sizeof(double));
        BOTH(bn_stats_bf16(c, N, C, S, B16(xh, s), (double *)sa->d[s], (double *)sb->d[s]));
        BOTH(bn_stats(c, N, C, S, F(xw, s), (double *)fa->d[s], (double *)fb->d[s]));
        cmp_widened("bn_stats_bf16", w, sa, fa);
        cmp_widened("bn_stats_bf16", w, sb, fb);
        cmp_f64("bn_stats_bf16", w, sa, 1e-12);
        cmp_f64("bn_stats_bf16", w, sb, 1e-12);
        t_free(fa), t_free(fb);
    }
    for (int relu = 0; relu < 2; relu++) {
        if (!HAVE(bn_apply_bf16)) break;
        char w2[128];
        snprintf(w2, sizeof w2, "%s affine%s", w, relu ? " relu" : "");
        tens *y = t_rand(n, 16006, -9, 9, 0), *yf = t_rand(n, 16006, -9, 9, 0);
        BOTH(bn_apply_bf16(c, N, C, S, B16(xh, s), F(mean, s), F(invstd, s), F(gamma, s), F(beta, s), relu, F(y, s)));
        BOTH(bn_apply(c, N, C, S, F(xw, s), F(mean, s), F(invstd, s), F(gamma, s), F(beta, s), relu, F(yf, s)));
        cmp_widened("bn_apply_bf16", w2, y, yf);
        cmp("bn_apply_bf16", w2, y, ULPS, 1);
        t_free(y), t_free(yf);
    }
    if (HAVE(bn_bwd_stats_bf16)) {
        tens *fa = t_new_raw(NULL, nc, sizeof(double)), *fb = t_new_raw(NULL, nc, sizeof(double));
        BOTH(bn_bwd_stats_bf16(c, N, C, S, F(dy, s), B16(xh, s), F(mean, s), F(invstd, s), (double *)sa->d[s],
                               (double *)sb->d[s]));
        BOTH(bn_bwd_stats(c, N, C, S, F(dy, s), F(xw, s), F(mean, s), F(invstd, s), (double *)fa->d[s],
                          (double *)fb->d[s]));
        cmp_widened("bn_bwd_stats_bf16", w, sa, fa);
        cmp_widened("bn_bwd_stats_bf16", w, sb, fb);
        cmp_f64("bn_bwd_stats_bf16", w, sa, 1e-12);
        cmp_f64("bn_bwd_stats_bf16", w, sb, 1e-12);
        t_free(fa), t_free(fb);
    }
    for (int affine = 0; affine < 2; affine++)
        for (int relu = 0; relu < 2; relu++) {
            if (!HAVE(bn_apply)) break;
            char w2[128];
            snprintf(w2, sizeof w2, "%s%s%s", w, affine ? " affine" : "", relu ? " relu" : "");
            tens *y = t_rand(n, 16006, -9, 9, 0);
            BOTH(bn_apply(c, N, C, S, F(x, s), F(mean, s), F(invstd, s), affine ? F(gamma, s) : NULL,
                          affine ? F(beta, s) : NULL, relu, F(y, s)));
            cmp("bn_apply", w2, y, ULPS, 1);
            t_free(y);
        }
    /* sums from the host, signed (as a real backward), identical on both sides */
    double *hs = malloc(2 * nc * sizeof(double));
    for (size_t k = 0; k < 2 * nc; k++) hs[k] = (double)((k * 7919) % 1000) / 37.0 - 13.0;
    tens *s_dy = t_new_raw(hs, nc, sizeof(double)), *s_dyx = t_new_raw(hs + nc, nc, sizeof(double));
    if (HAVE(bn_bwd_data))
        for (int affine = 0; affine < 2; affine++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s%s in place", w, affine ? " affine" : "");
            tens *d = t_rand(n, 16001 + n, 0.1f, 1.0f, 0); /* dy, overwritten by dx (dx aliases dy) */
            BOTH(bn_bwd_data(c, N, C, S, F(d, s), F(x, s), F(mean, s), F(invstd, s),
                             affine ? F(gamma, s) : NULL, (const double *)s_dy->d[s],
                             (const double *)s_dyx->d[s], (double)(N * S) * 2.0, F(d, s)));
            cmp("bn_bwd_data", w2, d, ULPS, 1);
            t_free(d);
        }
    if (HAVE(bn_bwd_data_bf16))
        for (int affine = 0; affine < 2; affine++) {
            char w2[128];
            snprintf(w2, sizeof w2, "%s%s in place", w, affine ? " affine" : "");
            tens *d = t_rand(n, 16001 + n, 0.1f, 1.0f, 0), *df = t_rand(n, 16001 + n, 0.1f, 1.0f, 0);
            BOTH(bn_bwd_data_bf16(c, N, C, S, F(d, s), B16(xh, s), F(mean, s), F(invstd, s),
                                  affine ? F(gamma, s) : NULL, (const double *)s_dy->d[s],
                                  (const double *)s_dyx->d[s], (double)(N * S) * 2.0, F(d, s)));
            BOTH(bn_bwd_data(c, N, C, S, F(df, s), F(xw, s), F(mean, s), F(invstd, s),
                             affine ? F(gamma, s) : NULL, (const double *)s_dy->d[s],
                             (const double *)s_dyx->d[s], (double)(N * S) * 2.0, F(df, s)));
            cmp_widened("bn_bwd_data_bf16", w2, d, df);
            cmp("bn_bwd_data_bf16", w2, d, ULPS, 1);
            t_free(d), t_free(df);
        }
    t_free(xh), t_free(xw);
    if (HAVE(bn_param_grads)) {
        tens *dg = t_rand(nc, 16007, -1, 1, 0), *db = t_rand(nc, 16008, -1, 1, 0);
        BOTH(bn_param_grads(c, C, (const double *)s_dy->d[s], (const double *)s_dyx->d[s], F(dg, s), F(db, s)));
        cmp("bn_param_grads", w, dg, EXACT, 1);
        cmp("bn_param_grads", w, db, EXACT, 1);
        t_free(dg), t_free(db);
    }
    if (HAVE(bn_finalize)) {
        /* sums of `count` samples with mean in [-3, 3] and variance in [0.01, 4] (one channel 0) */
        const double count = (double)(N * S) + 1.0;
        for (size_t k = 0; k < nc; k++) {
            double m = (double)((k * 131) % 600) / 100.0 - 3.0, v = k == 1 ? 0.0 : 0.01 + (double)(k % 17) / 4.25;
            hs[k] = m * count, hs[nc + k] = (v + m * m) * count;
        }
        tens *sum = t_new_raw(hs, nc, sizeof(double)), *sumsq = t_new_raw(hs + nc, nc, sizeof(double));
        for (int mode = 0; mode < 3; mode++) { /* train + running stats, train alone, eval */
            char w2[128];
            snprintf(w2, sizeof w2, "%s %s", w, mode == 0 ? "train running" : mode == 1 ? "train" : "eval");
            tens *rm = t_rand(nc, 16009, -1, 1, 0), *rv = t_rand(nc, 16010, 0.1f, 2, 0);
            tens *mo = t_rand(nc, 16011, -9, 9, 0), *io = t_rand(nc, 16012, -9, 9, 0);
            BOTH(bn_finalize(c, C, mode != 2, (const double *)sum->d[s], (const double *)sumsq->d[s], count,
                             1e-5f, 0.1f, mode == 1 ? NULL : F(rm, s), mode == 1 ? NULL : F(rv, s),
                             F(mo, s), F(io, s)));
            cmp("bn_finalize", w2, mo, EXACT, 1);
            cmp("bn_finalize", w2, io, EXACT, 1);
            cmp("bn_finalize", w2, rm, EXACT, 1);
            cmp("bn_finalize", w2, rv, EXACT, 1);
            t_free(rm), t_free(rv), t_free(mo), t_free(io);
        }
        t_free(sum), t_free(sumsq);
    }
    free(hs);
    t_free(x), t_free(dy), t_free(mean), t_free(invstd), t_free(gamma), t_free(beta);
    t_free(sa), t_free(sb), t_free(s_dy), t_free(s_dyx);
}

/* ---- reductions ------------------------------------------------------------------------------ */

static void test_reduce(size_t n)
{
    char w[64];
    snprintf(w, sizeof w, "n=%zu", n);
    float *hx = malloc((n + 1) * sizeof(float)), *hy = malloc((n + 1) * sizeof(float));
    ssl_test_uniform(hx, n, 9000 + n, -0.3f, 1.0f);
    ssl_test_uniform(hy, n, 9001 + n, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i += 11) hx[i] = 0.0f; /* 0 log 0 */
    tens *x = t_new(hx, n), *y = t_new(hy, n);
    double ssq = 0, sdot = 0, sabs = 0, sxl = 0;
    for (size_t i = 0; i < n; i++) {
        double v = hx[i], u = 0.5 * v;
        ssq += v * v, sdot += fabs(v * hy[i]), sabs += fabs(v);
        if (u > 0) sxl += fabs(u * log(u));
    }
    double r[2];
    if (HAVE(sumsq)) {
        for (int s = 0; s < 2; s++) r[s] = ctx[s].be->sumsq(&ctx[s], n, F(x, s));
        cmp_scalar("sumsq", w, r[0], r[1], ssq, 1e-11);
    }
    if (HAVE(dot)) {
        for (int s = 0; s < 2; s++) r[s] = ctx[s].be->dot(&ctx[s], n, F(x, s), F(y, s));
        cmp_scalar("dot", w, r[0], r[1], sdot, 1e-11);
    }
    if (HAVE(sum)) {
        for (int s = 0; s < 2; s++) r[s] = ctx[s].be->sum(&ctx[s], n, F(x, s));
        cmp_scalar("sum", w, r[0], r[1], sabs, 1e-11);
    }
    if (HAVE(xlogx_sum)) {
        /* log in double on both sides, but libm against CUDA's: a few ulps per term */
        for (int s = 0; s < 2; s++) r[s] = ctx[s].be->xlogx_sum(&ctx[s], n, 0.5f, F(x, s));
        cmp_scalar("xlogx_sum", w, r[0], r[1], sxl, 1e-11);
    }
    free(hx), free(hy);
    t_free(x), t_free(y);
}

/* Per-segment norms in one call: ranges around the device chunk size (65,536), an empty one, and
 * gaps of large values between them that a range overrun would pick up. Each entry against the other
 * backend, and on backend A each entry exactly what A's sumsq gives for that range. */
static void test_sumsq_segments(void)
{
    static const size_t sizes[] = {1, 7, 0, 65535, 65536, 65537, 200003, 16, 1000, 131072};
    enum { NSEG = sizeof sizes / sizeof sizes[0], GAP = 37 };
    size_t off[NSEG], total = GAP;
    for (int i = 0; i < NSEG; i++) off[i] = total, total += sizes[i] + GAP;
    float *h = malloc(total * sizeof(float));
    for (size_t i = 0; i < total; i++) h[i] = 1e3f;
    for (int i = 0; i < NSEG; i++) ssl_test_uniform(h + off[i], sizes[i], 9100 + (uint64_t)i, -1.0f, 1.0f);
    tens *x = t_new(h, total);
    double r[2][NSEG];
    if (HAVE(sumsq_segments)) {
        for (int s = 0; s < 2; s++) ctx[s].be->sumsq_segments(&ctx[s], NSEG, F(x, s), off, sizes, r[s]);
        for (int i = 0; i < NSEG; i++) {
            char w[64];
            snprintf(w, sizeof w, "segment %d (n=%zu at %zu)", i, sizes[i], off[i]);
            double ssq = 0;
            for (size_t j = 0; j < sizes[i]; j++) ssq += (double)h[off[i] + j] * h[off[i] + j];
            cmp_scalar("sumsq_segments", w, r[0][i], r[1][i], ssq, 1e-11);
            if (!strcmp(ctx[0].be->name, "cpu")) {
                double one = ctx[0].be->sumsq(&ctx[0], sizes[i], F(x, 0) + off[i]);
                ncompared++;
                SSL_EXPECT(one == r[0][i], "sumsq_segments %s: cpu %.17g, its sumsq of the range %.17g", w, r[0][i], one);
            }
        }
    }
    free(h);
    t_free(x);
}

/* The fused optimizer ops over 300 segments (more than a device launch takes at once): empty ones,
 * ones longer than a device chunk (4,096) and ragged ones, gaps between them that must stay
 * untouched, per-segment scalars all different. Against the other backend, and on the CPU each one
 * equal to the single-segment op on its range. */
static void test_optim_multi(void)
{
    enum { NSEG = 300, GAP = 3 };
    ssl_opt_seg seg[NSEG];
    size_t total = GAP;
    for (int i = 0; i < NSEG; i++) {
        const size_t n = i % 7 == 0 ? 0 : i % 11 == 0 ? 9000 + (size_t)i : (size_t)(i * 37) % 500 + 1;
        seg[i] = (ssl_opt_seg){.off = total, .n = n, .lr = 0.01f + 1e-4f * (float)i, .wd = 1e-4f * (float)(i % 5),
                               .gscale = i % 3 ? 1.0f : 0.5f, .bc1 = 0.1f + 1e-3f * (float)i,
                               .bc2 = 0.001f + 1e-4f * (float)i, .a = 0.3f - 1e-3f * (float)i,
                               .b = i % 4 ? 1.0f - 1e-3f * (float)i : 0.0f};
        total += n + GAP;
    }
    for (int mode = 0; mode < 3; mode++) { /* sgd: plain, momentum, nesterov */
        if (!HAVE(sgd_update_multi)) break;
        char w[64];
        snprintf(w, sizeof w, "%d segments, %s", NSEG, mode == 0 ? "plain" : mode == 1 ? "momentum" : "nesterov");
        tens *wt = t_rand(total, 9300, -1, 1, 0), *g = t_rand(total, 9301, -1, 1, 0);
        tens *m = mode ? t_rand(total, 9302, -1, 1, 0) : NULL;
        BOTH(sgd_update_multi(c, NSEG, seg, mode ? 0.9f : 0.0f, mode == 2, F(wt, s), F(g, s), F(m, s)));
        cmp("sgd_update_multi", w, wt, ULPS, 1);
        if (m) cmp("sgd_update_multi", w, m, ULPS, 1);
        t_free(wt), t_free(g), t_free(m);
    }
    if (HAVE(adam_direction_multi)) {
        tens *wt = t_rand(total, 9310, -1, 1, 0), *g = t_rand(total, 9311, -1, 1, 0);
        tens *m = t_rand(total, 9312, -1, 1, 0), *v = t_rand(total, 9313, 0, 1, 0);
        BOTH(adam_direction_multi(c, NSEG, seg, 0.9f, 0.999f, 1e-8f, F(wt, s), F(g, s), F(m, s), F(v, s)));
        cmp("adam_direction_multi", "u", g, LIBM, 1);
        cmp("adam_direction_multi", "m", m, ULPS, 1);
        cmp("adam_direction_multi", "v", v, ULPS, 1);
        t_free(wt), t_free(g), t_free(m), t_free(v);
    }
    if (HAVE(axpby_multi)) {
        tens *x = t_rand(total, 9320, -1, 1, 0), *y = t_rand(total, 9321, -1, 1, 0);
        BOTH(axpby_multi(c, NSEG, seg, F(x, s), F(y, s)));
        cmp("axpby_multi", "y", y, ULPS, 1);
        t_free(x), t_free(y);
    }
    /* on the CPU, each segment is the single op on its range, bit for bit (gaps untouched) */
    if (!strcmp(ctx[0].be->name, "cpu")) {
        float *a = malloc(total * sizeof(float)), *b = malloc(total * sizeof(float)), *g = malloc(total * sizeof(float));
        float *ma = malloc(total * sizeof(float)), *mb = malloc(total * sizeof(float));
        ssl_test_uniform(a, total, 9330, -1, 1);
        ssl_test_uniform(g, total, 9331, -1, 1);
        ssl_test_uniform(ma, total, 9332, -1, 1);
        memcpy(b, a, total * sizeof(float)), memcpy(mb, ma, total * sizeof(float));
        ssl_ctx *c = &ctx[0];
        c->be->sgd_update_multi(c, NSEG, seg, 0.9f, 0, a, g, ma);
        for (int i = 0; i < NSEG; i++)
            c->be->sgd_update(c, seg[i].n, seg[i].lr, 0.9f, 0, seg[i].wd, seg[i].gscale, b + seg[i].off, g + seg[i].off,
                              mb + seg[i].off);
        ncompared++;
        SSL_EXPECT(!memcmp(a, b, total * sizeof(float)) && !memcmp(ma, mb, total * sizeof(float)),
                   "sgd_update_multi: cpu differs from sgd_update per segment");
        free(a), free(b), free(g), free(ma), free(mb);
    }
}

/* axpby_rows: per-row scalars from device memory; b = 0 over a NaN y (not read), b = 1 and -0.5,
 * in place (x = y); on the CPU each row equals axpby of that row, bit for bit. */
static void test_axpby_rows(int64_t rows, int64_t D)
{
    if (!HAVE(axpby_rows)) return;
    const size_t n = (size_t)(rows * D);
    const uint64_t sd = 5100 + n;
    tens *a = t_rand((size_t)rows, sd, -2, 2, 0), *x = t_rand(n, sd + 1, -3, 3, 0);
    const float bs[] = {0.0f, 1.0f, -0.5f};
    for (int k = 0; k < 3; k++)
        for (int inplace = 0; inplace < 2; inplace++) {
            char w[96];
            snprintf(w, sizeof w, "(%lld,%lld) b=%g%s", (long long)rows, (long long)D, (double)bs[k],
                     inplace ? " in place" : bs[k] == 0.0f ? " y=NaN" : "");
            tens *y = inplace ? t_rand(n, sd + 1, -3, 3, 0) : bs[k] == 0.0f ? t_fill(n, NAN) : t_rand(n, sd + 2, -3, 3, 0);
            tens *ref = t_new_raw(NULL, n, sizeof(float));
            BOTH(copy(c, F(ref, s), F(y, s), n));
            BOTH(axpby_rows(c, rows, D, F(a, s), inplace ? F(y, s) : F(x, s), bs[k], F(y, s)));
            cmp("axpby_rows", w, y, ULPS, 1);
            /* backend A: each row as axpby would make it */
            float *ha = t_get(a, 0, w), *got = t_get(y, 0, w);
            ssl_ctx *c0 = &ctx[0];
            for (int64_t r = 0; r < rows; r++)
                c0->be->axpby(c0, (size_t)D, ha[r], inplace ? F(ref, 0) + r * D : F(x, 0) + r * D, bs[k],
                              F(ref, 0) + r * D);
            float *want = t_get(ref, 0, w);
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
            ncompared++;
            SSL_EXPECT(!bad, "axpby_rows %s: %zu elements differ from %s's axpby row by row", w, bad, c0->be->name);
            free(ha), free(got), free(want);
            t_free(y), t_free(ref);
        }
    t_free(a), t_free(x);
}

/* ---- non-finite inputs ----------------------------------------------------------------------- */

/* A NaN in stays a NaN out where the math reads it, and nowhere else: the trainer stops on a NaN
 * loss and logs a NaN gradient norm only because the reductions, the row ops and the GEMMs carry
 * it (a max or sum that skips NaN would train on). Each case on both backends (kinds element by
 * element), and on backend A against the rule itself. A GEMM with beta 0 never reads C (BLAS). */
static void expect_kind(const char *op, const char *what, int is_nan, double v)
{
    ncompared++;
    SSL_EXPECT(is_nan ? isnan(v) : isfinite(v), "%s %s: %s gives %g where %s", op, what, ctx[0].be->name, v,
               is_nan ? "a NaN input must give NaN" : "no NaN is read");
}

static void test_nonfinite(void)
{
    enum { R = 5, D = 37, BAD = 2 }; /* row BAD holds one NaN; the others are finite */
    const size_t n = (size_t)R * D;
    float *h = malloc(n * sizeof(float));
    ssl_test_uniform(h, n, 7700, -2.0f, 2.0f);
    h[BAD * D + 11] = NAN;
    tens *x = t_new(h, n);
    double r[2];
    /* reductions over everything: NaN; over the rows before BAD: finite */
    const struct {
        const char *op;
        size_t len;
    } red[] = {{"sum", n}, {"sum", BAD * D}, {"sumsq", n}, {"sumsq", BAD * D}, {"dot", n}, {"dot", BAD * D}};
    for (size_t k = 0; k < sizeof red / sizeof red[0]; k++) {
        const char *op = red[k].op;
        char w[64];
        snprintf(w, sizeof w, "n=%zu%s", red[k].len, red[k].len == n ? " with a NaN" : " finite");
        if (!strcmp(op, "sum") ? !HAVE(sum) : !strcmp(op, "sumsq") ? !HAVE(sumsq) : !HAVE(dot)) continue;
        for (int s = 0; s < 2; s++) {
            ssl_ctx *c = &ctx[s];
            r[s] = !strcmp(op, "sum")     ? c->be->sum(c, red[k].len, F(x, s))
                   : !strcmp(op, "sumsq") ? c->be->sumsq(c, red[k].len, F(x, s))
                                          : c->be->dot(c, red[k].len, F(x, s), F(x, s));
        }
        expect_kind(op, w, red[k].len == n, r[0]);
        cmp_scalar(op, w, r[0], r[1], fabs(r[0]) + 1.0, 1e-11);
    }
    if (HAVE(sumsq_segments)) {
        size_t off[R], len[R];
        double seg[2][R];
        for (int i = 0; i < R; i++) off[i] = (size_t)i * D, len[i] = D;
        for (int s = 0; s < 2; s++) ctx[s].be->sumsq_segments(&ctx[s], R, F(x, s), off, len, seg[s]);
        for (int i = 0; i < R; i++) {
            char w[64];
            snprintf(w, sizeof w, "segment %d%s", i, i == BAD ? " with a NaN" : "");
            expect_kind("sumsq_segments", w, i == BAD, seg[0][i]);
            cmp_scalar("sumsq_segments", w, seg[0][i], seg[1][i], fabs(seg[0][i]) + 1.0, 1e-11);
        }
    }
    /* row ops: the NaN row all NaN, the others finite */
    tens *y = t_fill(n, 0), *mu = t_fill(R, 0), *rs = t_fill(R, 0);
    for (int op = 0; op < 3; op++) {
        const char *name = op == 0 ? "softmax_fwd" : op == 1 ? "log_softmax_fwd" : "layernorm_fwd";
        if (op == 0 ? !HAVE(softmax_fwd) : op == 1 ? !HAVE(log_softmax_fwd) : !HAVE(layernorm_fwd)) continue;
        if (op == 0) {
            BOTH(softmax_fwd(c, R, D, 0.7f, F(x, s), F(y, s)));
        } else if (op == 1) {
            BOTH(log_softmax_fwd(c, R, D, F(x, s), F(y, s)));
        } else {
            BOTH(layernorm_fwd(c, R, D, 1e-5f, F(x, s), NULL, NULL, F(y, s), F(mu, s), F(rs, s)));
        }
        cmp(name, "a NaN in row 2", y, LIBM, 0);
        float *a = t_get(y, 0, name);
        for (int i = 0; i < R; i++)
            for (int j = 0; j < D; j += D - 1) expect_kind(name, i == BAD ? "the NaN row" : "a finite row", i == BAD, a[i * D + j]);
        free(a);
    }
    /* GEMM: C = A B with A = x (R x D), B (D x 3): C's row BAD NaN, the rest finite, although C
     * started as NaN (beta 0) */
    if (HAVE(gemm)) {
        tens *B = t_rand((size_t)D * 3, 7701, -1, 1, 0), *C = t_fill((size_t)R * 3, NAN);
        BOTH(gemm(c, 0, 0, R, 3, D, 1.0f, F(x, s), D, F(B, s), 3, 0.0f, F(C, s), 3));
        cmp("gemm", "a NaN in A's row 2, beta 0 over a NaN C", C, gemm_tol(), 0);
        float *a = t_get(C, 0, "gemm");
        for (int i = 0; i < R; i++) expect_kind("gemm", i == BAD ? "C's row 2" : "C's finite rows", i == BAD, a[i * 3]);
        free(a);
        t_free(B), t_free(C);
    }
    /* BatchNorm statistics: x as (N=1, C=R, S=D), channel BAD's sums NaN */
    if (HAVE(bn_stats)) {
        tens *sa = t_new_raw(NULL, R, sizeof(double)), *sb = t_new_raw(NULL, R, sizeof(double));
        BOTH(bn_stats(c, 1, R, D, F(x, s), (double *)sa->d[s], (double *)sb->d[s]));
        cmp_f64("bn_stats", "a NaN in channel 2", sa, 1e-12);
        cmp_f64("bn_stats", "a NaN in channel 2", sb, 1e-12);
        double *a = t_get_raw(sa, 0, "bn_stats");
        for (int i = 0; i < R; i++) expect_kind("bn_stats", i == BAD ? "channel 2" : "a finite channel", i == BAD, a[i]);
        free(a);
        t_free(sa), t_free(sb);
    }
    free(h);
    t_free(x), t_free(y), t_free(mu), t_free(rs);
}

/* The op cases in groups, each runnable alone (--group): on a device never tried before, a group
 * whose op stops the process (a launch error aborts) then hides none of the others
 * (benchmarks/gpu_check.sh runs them one process each). */
static void g_elementwise(void)
{
    static const size_t sizes[] = {1, 7, 1000, 70001};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        test_elementwise(sizes[k], 0);
        test_elementwise(sizes[k], 1);
        test_cast(sizes[k], 0);
        test_cast(sizes[k], 1);
        test_reduce(sizes[k]);
    }
    test_reduce(1000003); /* more blocks than a device reduction's fixed grid */
    test_nonfinite();
    test_axpby_rows(1, 1), test_axpby_rows(7, 13), test_axpby_rows(300, 257), test_axpby_rows(3, 40001);
}
static void g_optim(void) { test_sumsq_segments(), test_optim_multi(); }
static void g_rows(void)
{
    test_bias(4, 3, 1), test_bias(2, 5, 7), test_bias(300, 257, 1), test_bias(3, 17, 1500);
    test_rows(1, 1), test_rows(3, 7), test_rows(17, 129), test_rows(5, 1000), test_rows(300, 257);
    test_rows(2, 40001);
}
static void g_gemm(void)
{
    test_gemm(1, 1, 1, 1), test_gemm(7, 5, 3, 1), test_gemm(64, 33, 129, 1), test_gemm(300, 257, 65, 1);
    test_gemm(7, 5, 3, 3), test_gemm(33, 17, 65, 4);
    test_gemm_batched2(1, 1, 1, 1), test_gemm_batched2(3, 5, 2, 4), test_gemm_batched2(4, 17, 3, 64);
}
static void g_tokens(void)
{
    test_tokens(1, 1), test_tokens(9, 13), test_tokens(301, 257), test_tokens(40, 1);
    test_patch(2, 3, 8, 8, 4), test_patch(1, 1, 5, 7, 2), test_patch(4, 3, 96, 96, 16);
}
static void g_pool(void)
{
    test_maxpool(2, 3, 7, 9, 3, 2, 1, 0), test_maxpool(1, 2, 8, 8, 2, 2, 0, 1);
    test_maxpool(2, 5, 13, 11, 3, 2, 1, 1), test_maxpool(4, 64, 33, 31, 3, 2, 1, 0);
    test_maxpool(1, 1, 1, 1, 1, 1, 0, 0), test_maxpool(3, 2, 6, 5, 3, 1, 1, 1);
    test_avgpool(1, 1), test_avgpool(6, 49), test_avgpool(7, 1001), test_avgpool(300, 257);
}
static void g_conv(void)
{
    test_conv(2, 3, 9, 7, 5, 3, 1, 1), test_conv(1, 1, 5, 5, 1, 1, 1, 0), test_conv(4, 16, 15, 15, 32, 3, 2, 1);
    test_conv(2, 8, 14, 14, 16, 1, 2, 0), test_conv(2, 3, 32, 32, 16, 7, 2, 3), test_conv(3, 64, 7, 7, 64, 3, 1, 1);
}
static void g_bn(void) { test_bn(300, 257, 1), test_bn(5, 3, 7), test_bn(4, 64, 1023), test_bn(2, 3, 40001), test_bn(1, 1, 1); }
static void g_resize(void)
{
    test_resize(7, 7, 11, 13, 3), test_resize(14, 14, 5, 9, 17), test_resize(4, 4, 4, 4, 5);
    test_resize(1, 3, 2, 5, 1), test_resize(14, 14, 16, 16, 129), test_resize(16, 16, 14, 14, 385);
}
static void g_augment(void)
{
    test_augment(1, 8, 7, 1), test_augment(3, 24, 20, 2), test_augment(3, 40, 33, 3), test_augment(1, 64, 10, 4);
    test_augment(3, 224, 6, 5);
}
static void g_losses(void)
{
    for (int cen = 0; cen < 2; cen++)
        test_sharded(1, 1, cen), test_sharded(3, 7, cen), test_sharded(17, 1001, cen), test_sharded(2, 40001, cen);
    test_ntxent(2, 1, 1, 0), test_ntxent(6, 3, 1, 0), test_ntxent(10, 5, 2, 10), test_ntxent(64, 64, 2, 128);
    test_ntxent(3, 515, 1, 514);
    test_dino(3, 7, 2, 4), test_dino(5, 1001, 2, 6), test_dino(2, 65, 1, 3), test_dino(4, 300, 3, 3);
    test_mae(7, 3, 0.0f), test_mae(7, 3, 1e-6f), test_mae(5, 1, 0.0f), test_mae(50, 768, 1e-6f);
    test_mae(3, 1001, 0.0f);
}

static const struct {
    const char *name;
    void (*run)(void);
} groups[] = {{"elementwise", g_elementwise}, {"optim", g_optim}, {"rows", g_rows},     {"gemm", g_gemm},
              {"tokens", g_tokens},           {"pool", g_pool},   {"conv", g_conv},     {"bn", g_bn},
              {"resize", g_resize},           {"augment", g_augment}, {"losses", g_losses}};
#define NGROUPS ((int)(sizeof groups / sizeof groups[0]))

int main(int argc, char **argv)
{
    const char *names[2] = {"cpu", "cpu"}, *only = NULL;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mutate") == 0 && i + 1 < argc) mutate = argv[++i];
        else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--list") == 0) {
            for (int g = 0; g < NGROUPS; g++) printf("%s\n", groups[g].name);
            return 0;
        } else if (pos < 2) names[pos++] = argv[i];
        else {
            fprintf(stderr, "usage: %s [A B] [--mutate OP] [--group NAME | --list]\n", argv[0]);
            return 2;
        }
    }
    int known = !only;
    for (int g = 0; g < NGROUPS && !known; g++) known = !strcmp(groups[g].name, only);
    if (!known) {
        fprintf(stderr, "%s: no group '%s' (--list names them)\n", argv[0], only);
        return 2;
    }
#ifdef SSL_HAVE_CUDA
    /* No device needed: the registry (and so the trainer's device.backend) refuses a partial table. */
    {
        int missing = ssl_cuda_missing_ops(NULL, 0);
        SSL_EXPECT(missing == 0 || ssl_backend_get("cuda") == NULL,
                   "registry hands out the cuda backend with %d ops missing", missing);
    }
#endif
    const ssl_backend *be[2] = {backend_named(names[0]), backend_named(names[1])};
    for (int s = 0; s < 2; s++) ctx_open(&ctx[s], be[s]);
    printf("backend ops: %s vs %s%s%s\n", names[0], names[1], mutate ? ", mutating " : "",
           mutate ? mutate : "");

    for (int g = 0; g < NGROUPS; g++)
        if (!only || !strcmp(only, groups[g].name)) {
            printf("group %s\n", groups[g].name);
            fflush(stdout); /* a group that stops the process is the last one named */
            groups[g].run();
        }
    printf("%d comparisons, %d op cases skipped (op missing on one side)\n", ncompared, nskipped);
    SSL_EXPECT(ncompared > 0, "nothing was compared");
    for (int s = 0; s < 2; s++) ssl_ctx_free(&ctx[s]);
    return ssl_test_exit();
}
