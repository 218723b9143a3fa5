/* Behaviour tests of framework/optim: schedule values at known points, weight-decay exclusion and
 * frozen segments for every optimizer, LARS / LAMB trust ratios per segment, gradient clipping, and
 * gradient accumulation (two half-batches with grad_scale 0.5 equal one full batch).
 * Numerical agreement with PyTorch is tests/ref/test_ref_optim.c. */
#include <stdio.h>

#include "common/testutil.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/optim/optim.h"
#include "framework/optim/schedule.h"

#include <math.h>
#include <string.h>

static const ssl_optim_kind KINDS[] = {SSL_OPTIM_SGD, SSL_OPTIM_ADAMW, SSL_OPTIM_LARS,
                                       SSL_OPTIM_LAMB};
static const char *const KIND_NAMES[] = {"sgd", "adamw", "lars", "lamb"};
#define NKINDS 4
#define MAXN 256 /* host copies of a test's flat buffers (segments are padded to 16 floats) */

/* Schedules are double: values that are exact in the formula are checked to 1e-12. */
static void expect_near(const char *what, double got, double want)
{
    SSL_EXPECT(fabs(got - want) <= 1e-12 + 1e-12 * fabs(want), "%s: got %.15g want %.15g", what,
               got, want);
}

/* ---- helpers: a small ssl_params on the CPU backend, filled from host arrays --------------- */

typedef struct {
    const char *name;
    int64_t n;
    unsigned flags;
} seg_spec;

static void make_params(ssl_params *p, ssl_ctx *c, const seg_spec *specs, int nseg)
{
    ssl_params_init(p);
    for (int i = 0; i < nseg; i++)
        ssl_params_add(p, specs[i].name, 1, &specs[i].n, specs[i].flags, SSL_INIT_ZERO, 0.0f);
    ssl_params_alloc(p, c->be, 1);
}

/* Segment i of a device buffer laid out like p (CPU backend: device memory is host memory). */
static float *seg_of(const ssl_params *p, float *buf, int i) { return buf + p->seg[i].off; }

static void fill_seg(const ssl_params *p, float *buf, int i, uint64_t seed, float lo, float hi)
{
    ssl_test_uniform(seg_of(p, buf, i), p->seg[i].n, seed, lo, hi);
}

static double host_norm(const float *x, size_t n) { return sqrt(ssl_test_dot(x, x, n)); }

/* ---- schedules ------------------------------------------------------------------------------ */

static void test_schedules(void)
{
    ssl_sched_lr_config s = {.base = 0.4, .final_value = 0.004, .warmup_steps = 10,
                             .total_steps = 110};
    expect_near("lr at step 0 (warmup starts from 0)", ssl_sched_lr(&s, 0), 0.0);
    expect_near("lr mid-warmup", ssl_sched_lr(&s, 5), 0.2);
    expect_near("lr last warmup step", ssl_sched_lr(&s, 9), 0.36);
    expect_near("lr at end of warmup = base", ssl_sched_lr(&s, 10), 0.4);
    expect_near("lr halfway through the cosine", ssl_sched_lr(&s, 60), 0.5 * (0.4 + 0.004));
    expect_near("lr at a quarter of the cosine", ssl_sched_lr(&s, 35),
                0.004 + 0.5 * (0.4 - 0.004) * (1.0 + sqrt(0.5)));
    expect_near("lr at total = final", ssl_sched_lr(&s, 110), 0.004);
    expect_near("lr past total stays final", ssl_sched_lr(&s, 1000), 0.004);
    double prev = ssl_sched_lr(&s, 10);
    int mono = 1;
    for (int64_t k = 11; k <= 110; k++) {
        double v = ssl_sched_lr(&s, k);
        mono &= v <= prev;
        prev = v;
    }
    SSL_EXPECT(mono, "lr must not increase after warmup");
    ssl_sched_lr_config nowarm = {.base = 1.0, .final_value = 0.0, .warmup_steps = 0,
                                  .total_steps = 4};
    expect_near("no warmup: step 0 = base", ssl_sched_lr(&nowarm, 0), 1.0);
    expect_near("no warmup: halfway", ssl_sched_lr(&nowarm, 2), 0.5);

    /* DINO wd: 0.04 -> 0.4 */
    expect_near("wd start", ssl_sched_wd(0.04, 0.4, 0, 100), 0.04);
    expect_near("wd halfway", ssl_sched_wd(0.04, 0.4, 50, 100), 0.22);
    expect_near("wd end", ssl_sched_wd(0.04, 0.4, 100, 100), 0.4);
    expect_near("cosine fractional t", ssl_sched_cosine(1.0, 0.0, 0.5, 1.5), 0.75);

    /* EMA momentum: m0 -> 1 (BYOL tau, MoCo v3 m with fractional epochs) */
    expect_near("ema start", ssl_sched_ema_momentum(0.99, 0.0, 100.0), 0.99);
    expect_near("ema halfway", ssl_sched_ema_momentum(0.99, 50.0, 100.0), 0.995);
    expect_near("ema end", ssl_sched_ema_momentum(0.996, 100.0, 100.0), 1.0);
    expect_near("ema past end", ssl_sched_ema_momentum(0.996, 250.0, 100.0), 1.0);
    expect_near("ema fractional epoch", ssl_sched_ema_momentum(0.99, 2.5, 10.0),
                1.0 - 0.01 * (cos(0.25 * 3.14159265358979323846) + 1.0) / 2.0);

    /* SimCLR README: 0.3 linear equals 0.075 sqrt at B = 4096 (both 4.8). */
    expect_near("linear lr scaling", ssl_sched_lr_scale_linear(0.3, 4096), 4.8);
    expect_near("sqrt lr scaling", ssl_sched_lr_scale_sqrt(0.075, 4096), 4.8);
    expect_near("linear lr scaling at 256 is identity", ssl_sched_lr_scale_linear(1.5e-4, 256),
                1.5e-4);
}

/* ---- weight-decay exclusion and frozen segments --------------------------------------------- */

/* Zero gradient, so only weight decay acts. Per optimizer the first step scales a decayed weight
 * by a known factor: SGD 1 - lr*wd; AdamW 1 - lr*wd (u = 0); LAMB u = wd*w has ratio 1/wd, so
 * 1 - lr; LARS dp = wd*w has q = eta/wd, so 1 - lr*eta. NO_WD (and frozen) stay bit-identical. */
static void test_weight_decay_flags(void)
{
    const float lr = 0.1f, wd = 0.5f;
    seg_spec specs[] = {{"w", 6, 0}, {"tok", 5, SSL_SEG_NO_WD}, {"f", 4, SSL_SEG_FROZEN}};
    for (int k = 0; k < NKINDS; k++) {
        ssl_ctx c;
        ssl_ctx_init(&c, "cpu");
        ssl_params p;
        make_params(&p, &c, specs, 3);
        for (int i = 0; i < 3; i++) fill_seg(&p, p.data, i, 10 + (uint64_t)i, 0.5f, 2.0f);
        float before[MAXN];
        SSL_ASSERT(p.numel <= MAXN);
        memcpy(before, p.data, p.numel * sizeof(float));
        ssl_optim_config cfg = ssl_optim_config_default(KINDS[k]);
        ssl_optim o;
        ssl_optim_init(&o, &c, &p, &cfg);
        ssl_optim_step(&o, &c, lr, wd);
        double f = KINDS[k] == SSL_OPTIM_LAMB   ? 1.0 - lr
                   : KINDS[k] == SSL_OPTIM_LARS ? 1.0 - (double)lr * cfg.eta
                                                : 1.0 - (double)lr * wd;
        float want[6];
        for (int j = 0; j < 6; j++) want[j] = (float)(before[j] * f);
        char what[64];
        snprintf(what, sizeof what, "%s: decayed weight", KIND_NAMES[k]);
        ssl_test_close(what, seg_of(&p, p.data, 0), want, 6, 1e-7, 1e-6);
        SSL_EXPECT(memcmp(seg_of(&p, p.data, 1), before + p.seg[1].off, 5 * sizeof(float)) == 0,
                   "%s: NO_WD segment changed under weight decay", KIND_NAMES[k]);
        SSL_EXPECT(memcmp(seg_of(&p, p.data, 2), before + p.seg[2].off, 4 * sizeof(float)) == 0,
                   "%s: frozen segment changed", KIND_NAMES[k]);
        ssl_optim_free(&o);
        ssl_params_free(&p);
        ssl_ctx_free(&c);
    }
}

/* Nonzero gradients on every segment, several steps: the frozen segment's values, gradient and
 * optimizer state all stay exactly as they were, while its neighbours move. */
static void test_frozen(void)
{
    seg_spec specs[] = {{"a", 7, 0}, {"f", 5, SSL_SEG_FROZEN}, {"b", 3, SSL_SEG_NO_WD}};
    for (int k = 0; k < NKINDS; k++) {
        ssl_ctx c;
        ssl_ctx_init(&c, "cpu");
        ssl_params p;
        make_params(&p, &c, specs, 3);
        for (int i = 0; i < 3; i++) fill_seg(&p, p.data, i, 20 + (uint64_t)i, -1.0f, 1.0f);
        float w0[5], a0[7], g0[5];
        memcpy(w0, seg_of(&p, p.data, 1), sizeof w0);
        memcpy(a0, seg_of(&p, p.data, 0), sizeof a0);
        ssl_optim_config cfg = ssl_optim_config_default(KINDS[k]);
        ssl_optim o;
        ssl_optim_init(&o, &c, &p, &cfg);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < 3; i++)
                fill_seg(&p, p.grad, i, 30 + (uint64_t)(step * 3 + i), -1.0f, 1.0f);
            memcpy(g0, seg_of(&p, p.grad, 1), sizeof g0);
            ssl_optim_step(&o, &c, 0.1f, 0.1f);
            SSL_EXPECT(memcmp(seg_of(&p, p.grad, 1), g0, sizeof g0) == 0,
                       "%s: frozen gradient touched", KIND_NAMES[k]);
        }
        SSL_EXPECT(memcmp(seg_of(&p, p.data, 1), w0, sizeof w0) == 0, "%s: frozen values changed",
                   KIND_NAMES[k]);
        SSL_EXPECT(memcmp(seg_of(&p, p.data, 0), a0, sizeof a0) != 0,
                   "%s: trainable segment did not move", KIND_NAMES[k]);
        for (int j = 0; j < 5; j++) {
            SSL_EXPECT(o.m[p.seg[1].off + (size_t)j] == 0.0f, "%s: frozen m", KIND_NAMES[k]);
            if (o.v)
                SSL_EXPECT(o.v[p.seg[1].off + (size_t)j] == 0.0f, "%s: frozen v", KIND_NAMES[k]);
        }
        ssl_optim_free(&o);
        ssl_params_free(&p);
        ssl_ctx_free(&c);
    }
}

/* ---- LARS / LAMB trust ratios --------------------------------------------------------------- */

/* Four segments with different norms, one LARS step without decay (the first step's momentum
 * buffer is q*g, so w1 = w0 - lr*q*g): each segment's q must be eta*||w||/||g|| of that segment
 * alone; NO_ADAPT gets q = 1 and a zero weight falls back to q = 1. */
static void test_lars_trust_ratio(void)
{
    seg_spec specs[] = {{"a", 8, 0}, {"b", 5, 0}, {"bias", 3, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT},
                        {"z", 4, 0}};
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p;
    make_params(&p, &c, specs, 4);
    fill_seg(&p, p.data, 0, 40, 0.5f, 1.5f);   /* ||w|| ~ 3 */
    fill_seg(&p, p.data, 1, 41, 10.0f, 20.0f); /* ||w|| ~ 34 */
    fill_seg(&p, p.data, 2, 42, -1.0f, 1.0f);  /* bias; "z" stays zero */
    fill_seg(&p, p.grad, 0, 43, -4.0f, 4.0f);
    fill_seg(&p, p.grad, 1, 44, -0.1f, 0.1f);
    fill_seg(&p, p.grad, 2, 45, -1.0f, 1.0f);
    fill_seg(&p, p.grad, 3, 46, -1.0f, 1.0f);
    float w0[MAXN], g0[MAXN];
    SSL_ASSERT(p.numel <= MAXN);
    memcpy(w0, p.data, p.numel * sizeof(float));
    memcpy(g0, p.grad, p.numel * sizeof(float));
    ssl_optim_config cfg = ssl_optim_config_default(SSL_OPTIM_LARS);
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &cfg);
    const float lr = 0.5f;
    ssl_optim_step(&o, &c, lr, 0.0f);
    double q[4];
    for (int i = 0; i < 4; i++) {
        const ssl_segment *s = &p.seg[i];
        double wn = host_norm(w0 + s->off, s->n), gn = host_norm(g0 + s->off, s->n);
        q[i] = (s->flags & SSL_SEG_NO_ADAPT) || wn == 0.0 ? 1.0 : cfg.eta * wn / gn;
        float want[8];
        for (size_t j = 0; j < s->n; j++)
            want[j] = (float)(w0[s->off + j] - lr * q[i] * g0[s->off + j]);
        char what[160];
        snprintf(what, sizeof what, "lars segment %s (q = %.3g)", s->name, q[i]);
        ssl_test_close(what, seg_of(&p, p.data, i), want, s->n, 1e-7, 1e-6);
    }
    SSL_EXPECT(fabs(q[0] / q[1] - 1.0) > 0.5, "test setup: ratios should differ per segment");
    ssl_optim_free(&o);
    ssl_params_free(&p);
    ssl_ctx_free(&c);
}

/* LAMB, first step, no decay: u = g/(|g| + eps) elementwise (bias-corrected moments of one
 * gradient), so w1 = w0 - lr * (||w0|| / ||u||) * u per segment, and u unscaled for NO_ADAPT. */
static void test_lamb_trust_ratio(void)
{
    seg_spec specs[] = {{"a", 9, 0}, {"b", 4, 0}, {"ln", 6, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT}};
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p;
    make_params(&p, &c, specs, 3);
    for (int i = 0; i < 3; i++) {
        fill_seg(&p, p.data, i, 50 + (uint64_t)i, 1.0f, 2.0f + 10.0f * (float)i);
        fill_seg(&p, p.grad, i, 60 + (uint64_t)i, -1.0f, 1.0f);
    }
    float w0[MAXN], g0[MAXN];
    SSL_ASSERT(p.numel <= MAXN);
    memcpy(w0, p.data, p.numel * sizeof(float));
    memcpy(g0, p.grad, p.numel * sizeof(float));
    ssl_optim_config cfg = ssl_optim_config_default(SSL_OPTIM_LAMB);
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &cfg);
    const float lr = 0.01f;
    ssl_optim_step(&o, &c, lr, 0.0f);
    for (int i = 0; i < 3; i++) {
        const ssl_segment *s = &p.seg[i];
        double u[16], un2 = 0.0;
        for (size_t j = 0; j < s->n; j++) {
            double g = g0[s->off + j];
            u[j] = g / (fabs(g) + cfg.eps);
            un2 += u[j] * u[j];
        }
        double r = (s->flags & SSL_SEG_NO_ADAPT) ? 1.0 : host_norm(w0 + s->off, s->n) / sqrt(un2);
        float want[16];
        for (size_t j = 0; j < s->n; j++) want[j] = (float)(w0[s->off + j] - lr * r * u[j]);
        char what[160];
        snprintf(what, sizeof what, "lamb segment %s (ratio %.3g)", s->name, r);
        ssl_test_close(what, seg_of(&p, p.data, i), want, s->n, 1e-6, 1e-6);
    }
    ssl_optim_free(&o);
    ssl_params_free(&p);
    ssl_ctx_free(&c);
}

/* ---- clipping ------------------------------------------------------------------------------- */

static double grad_norm(const ssl_params *p, int skip_frozen)
{
    double s = 0.0;
    for (int i = 0; i < p->nseg; i++) {
        if (skip_frozen && (p->seg[i].flags & SSL_SEG_FROZEN)) continue;
        const float *g = p->grad + p->seg[i].off;
        s += ssl_test_dot(g, g, p->seg[i].n);
    }
    return sqrt(s);
}

static void test_clip_global(void)
{
    seg_spec specs[] = {{"a", 100, 0}, {"b", 37, SSL_SEG_NO_WD}, {"f", 20, SSL_SEG_FROZEN}};
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    for (int with_frozen = 0; with_frozen < 2; with_frozen++) {
        ssl_params p;
        make_params(&p, &c, specs, with_frozen ? 3 : 2);
        for (int i = 0; i < p.nseg; i++) fill_seg(&p, p.grad, i, 70 + (uint64_t)i, -1.0f, 1.0f);
        double n0 = grad_norm(&p, 1);
        float frozen0[20];
        if (with_frozen) memcpy(frozen0, seg_of(&p, p.grad, 2), sizeof frozen0);

        /* Above the threshold: the pre-clip norm is returned and the result has norm max_norm. */
        double ret = ssl_optim_clip_global_norm(&c, &p, 1.0f, 1.0f);
        SSL_EXPECT(fabs(ret - n0) <= 1e-6 * n0, "global clip returned %g, norm was %g", ret, n0);
        double n1 = grad_norm(&p, 1);
        SSL_EXPECT(fabs(n1 - 1.0) <= 1e-5, "global clip: norm after %g, want 1", n1);
        if (with_frozen)
            SSL_EXPECT(memcmp(frozen0, seg_of(&p, p.grad, 2), sizeof frozen0) == 0,
                       "global clip touched a frozen gradient");

        /* Below the threshold: nothing changes, bit for bit. */
        float keep[MAXN];
        SSL_ASSERT(p.numel <= MAXN);
        memcpy(keep, p.grad, p.numel * sizeof(float));
        ret = ssl_optim_clip_global_norm(&c, &p, 2.0f, 1.0f);
        SSL_EXPECT(memcmp(keep, p.grad, p.numel * sizeof(float)) == 0 && fabs(ret - n1) < 1e-6,
                   "global clip below the threshold changed the gradient");

        /* With accumulation (grad_scale 1/4) the norm is that of the scaled gradient. */
        ret = ssl_optim_clip_global_norm(&c, &p, 0.5f, 0.25f);
        SSL_EXPECT(fabs(ret - 0.25 * n1) <= 1e-6, "scaled global clip returned %g, want %g", ret,
                   0.25 * n1);
        SSL_EXPECT(memcmp(keep, p.grad, p.numel * sizeof(float)) == 0,
                   "scaled gradient norm 0.25 is below 0.5: nothing to clip");
        ret = ssl_optim_clip_global_norm(&c, &p, 0.125f, 0.25f);
        SSL_EXPECT(fabs(0.25 * grad_norm(&p, 1) - 0.125) <= 1e-5,
                   "scaled global clip: scaled norm after %g, want 0.125", 0.25 * grad_norm(&p, 1));
        ssl_params_free(&p);
    }
    ssl_ctx_free(&c);
}

static void test_clip_per_tensor(void)
{
    /* "a" is large, "b" is small, "f" is frozen and large. */
    seg_spec specs[] = {{"a", 50, 0}, {"b", 10, 0}, {"f", 30, SSL_SEG_FROZEN}};
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p;
    make_params(&p, &c, specs, 3);
    fill_seg(&p, p.grad, 0, 80, -2.0f, 2.0f);
    fill_seg(&p, p.grad, 1, 81, -0.1f, 0.1f);
    fill_seg(&p, p.grad, 2, 82, -2.0f, 2.0f);
    double na = host_norm(seg_of(&p, p.grad, 0), 50), nb = host_norm(seg_of(&p, p.grad, 1), 10);
    float b0[10], f0[30];
    memcpy(b0, seg_of(&p, p.grad, 1), sizeof b0);
    memcpy(f0, seg_of(&p, p.grad, 2), sizeof f0);
    const float max_norm = 1.0f;
    SSL_EXPECT(na > max_norm && nb < max_norm, "test setup: norms %g %g", na, nb);
    double ret = ssl_optim_clip_per_tensor(&c, &p, max_norm, 1.0f);
    double want = sqrt(na * na + nb * nb);
    SSL_EXPECT(fabs(ret - want) <= 1e-6 * want, "per-tensor clip returned %g, want %g", ret, want);
    double na1 = host_norm(seg_of(&p, p.grad, 0), 50);
    SSL_EXPECT(fabs(na1 - max_norm) <= 1e-5, "large tensor clipped to %g, want %g", na1,
               (double)max_norm);
    SSL_EXPECT(memcmp(b0, seg_of(&p, p.grad, 1), sizeof b0) == 0, "small tensor was clipped");
    SSL_EXPECT(memcmp(f0, seg_of(&p, p.grad, 2), sizeof f0) == 0, "frozen tensor was clipped");
    ssl_params_free(&p);
    ssl_ctx_free(&c);
}

/* ---- gradient accumulation ------------------------------------------------------------------ */

#define ACC_IN 3
#define ACC_OUT 2
#define ACC_BATCH 8

/* Least squares y ~ W x + b: adds the gradient of mean over rows [r0, r1) of 0.5 ||W x + b - y||^2
 * (a micro-batch mean, as every loss is) into the gradient buffer, as backward ops do (+=). */
static void lsq_backward(const ssl_params *p, const float *x, const float *y, int r0, int r1)
{
    const float *W = p->data + p->seg[0].off, *b = p->data + p->seg[1].off;
    float *dW = p->grad + p->seg[0].off, *db = p->grad + p->seg[1].off;
    double gW[ACC_OUT * ACC_IN] = {0}, gb[ACC_OUT] = {0};
    for (int r = r0; r < r1; r++)
        for (int o = 0; o < ACC_OUT; o++) {
            double res = b[o] - y[r * ACC_OUT + o];
            for (int i = 0; i < ACC_IN; i++) res += (double)W[o * ACC_IN + i] * x[r * ACC_IN + i];
            gb[o] += res;
            for (int i = 0; i < ACC_IN; i++) gW[o * ACC_IN + i] += res * x[r * ACC_IN + i];
        }
    for (int j = 0; j < ACC_OUT * ACC_IN; j++) dW[j] += (float)(gW[j] / (r1 - r0));
    for (int o = 0; o < ACC_OUT; o++) db[o] += (float)(gb[o] / (r1 - r0));
}

/* Four steps on one full batch of 8 versus two accumulated half-batches of 4 with grad_scale 0.5:
 * the trajectories agree to float rounding (the two only differ in summation order). The training
 * loop pattern is exercised as documented: zero the gradient, accumulate, step. */
static void test_accumulation(void)
{
    seg_spec specs[] = {{"W", ACC_OUT * ACC_IN, 0},
                        {"b", ACC_OUT, SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT}};
    float x[ACC_BATCH * ACC_IN], y[ACC_BATCH * ACC_OUT];
    ssl_test_uniform(x, ACC_BATCH * ACC_IN, 90, -1.0f, 1.0f);
    ssl_test_uniform(y, ACC_BATCH * ACC_OUT, 91, -1.0f, 1.0f);
    for (int k = 0; k < NKINDS; k++) {
        ssl_ctx c;
        ssl_ctx_init(&c, "cpu");
        ssl_params full, acc;
        make_params(&full, &c, specs, 2);
        make_params(&acc, &c, specs, 2);
        for (int i = 0; i < 2; i++) {
            fill_seg(&full, full.data, i, 92 + (uint64_t)i, -1.0f, 1.0f);
            fill_seg(&acc, acc.data, i, 92 + (uint64_t)i, -1.0f, 1.0f);
        }
        ssl_optim_config cfg = ssl_optim_config_default(KINDS[k]);
        ssl_optim of, oa;
        ssl_optim_init(&of, &c, &full, &cfg);
        cfg.grad_scale = 0.5f;
        ssl_optim_init(&oa, &c, &acc, &cfg);
        for (int step = 0; step < 4; step++) {
            ssl_params_zero_grad(&c, &full);
            lsq_backward(&full, x, y, 0, ACC_BATCH);
            ssl_optim_step(&of, &c, 0.05f, 0.01f);
            ssl_params_zero_grad(&c, &acc);
            lsq_backward(&acc, x, y, 0, ACC_BATCH / 2);
            lsq_backward(&acc, x, y, ACC_BATCH / 2, ACC_BATCH);
            ssl_optim_step(&oa, &c, 0.05f, 0.01f);
        }
        char what[64];
        snprintf(what, sizeof what, "%s: accumulated vs full batch", KIND_NAMES[k]);
        ssl_test_close(what, acc.data, full.data, full.numel, 1e-6, 1e-5);
        ssl_optim_free(&of);
        ssl_optim_free(&oa);
        ssl_params_free(&full);
        ssl_params_free(&acc);
        ssl_ctx_free(&c);
    }
}

/* ---- the CPU kernels on the OpenMP path ---------------------------------------------------- */

/* sgd_update and adam_direction on a tensor large enough to split across threads, against the
 * formulas of backend.h written out serially here (same float operations, so equal to rounding). */
static void test_kernels_large(void)
{
    const size_t n = 100003; /* above the kernels' parallel threshold, not a multiple of 16 */
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    float *w = ssl_malloc(n * sizeof(float)), *g = ssl_malloc(n * sizeof(float));
    float *m = ssl_malloc(n * sizeof(float)), *v = ssl_malloc(n * sizeof(float));
    float *rw = ssl_malloc(n * sizeof(float)), *rm = ssl_malloc(n * sizeof(float));
    float *rv = ssl_malloc(n * sizeof(float)), *ru = ssl_malloc(n * sizeof(float));
    const float lr = 0.05f, mu = 0.9f, wd = 0.01f, gs = 0.5f;
    for (int nesterov = 0; nesterov < 2; nesterov++) {
        ssl_test_uniform(w, n, 100, -1.0f, 1.0f);
        ssl_test_uniform(g, n, 101, -1.0f, 1.0f);
        ssl_test_uniform(m, n, 102, -1.0f, 1.0f);
        memcpy(rw, w, n * sizeof(float));
        memcpy(rm, m, n * sizeof(float));
        c.be->sgd_update(&c, n, lr, mu, nesterov, wd, gs, w, g, m);
        for (size_t i = 0; i < n; i++) {
            float d = gs * (g[i] + wd * rw[i]);
            rm[i] = mu * rm[i] + d;
            rw[i] -= lr * (nesterov ? d + mu * rm[i] : rm[i]);
        }
        ssl_test_close(nesterov ? "sgd_update nesterov w" : "sgd_update w", w, rw, n, 0.0, 1e-7);
        ssl_test_close("sgd_update m", m, rm, n, 0.0, 1e-7);
    }
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-6f, bc1 = 0.19f, bc2 = 0.001999f;
    ssl_test_uniform(m, n, 103, -0.1f, 0.1f);
    ssl_test_uniform(v, n, 104, 0.0f, 0.01f);
    memcpy(rm, m, n * sizeof(float));
    memcpy(rv, v, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        rm[i] = b1 * rm[i] + (1.0f - b1) * g[i];
        rv[i] = b2 * rv[i] + (1.0f - b2) * g[i] * g[i];
        ru[i] = (rm[i] / bc1) / (sqrtf(rv[i] / bc2) + eps) + wd * w[i];
    }
    /* u aliases g, as the optimizers use it. */
    c.be->adam_direction(&c, n, b1, b2, eps, bc1, bc2, wd, w, g, m, v, g);
    ssl_test_close("adam_direction u", g, ru, n, 0.0, 1e-6);
    ssl_test_close("adam_direction m", m, rm, n, 0.0, 1e-7);
    ssl_test_close("adam_direction v", v, rv, n, 0.0, 1e-7);
    float *bufs[] = {w, g, m, v, rw, rm, rv, ru};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ssl_free(bufs[i]);
    ssl_ctx_free(&c);
}

/* State buffers exist only where the algorithm needs them, with the parameters' layout. */
static void test_state_layout(void)
{
    seg_spec specs[] = {{"a", 5, 0}};
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    ssl_params p;
    make_params(&p, &c, specs, 1);
    ssl_optim_config cfg = ssl_optim_config_default(SSL_OPTIM_SGD);
    cfg.momentum = 0.0f;
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &cfg);
    SSL_EXPECT(!o.m && !o.v, "plain SGD needs no state");
    ssl_optim_free(&o);
    for (int k = 0; k < NKINDS; k++) {
        cfg = ssl_optim_config_default(KINDS[k]);
        ssl_optim_init(&o, &c, &p, &cfg);
        int adam = KINDS[k] == SSL_OPTIM_ADAMW || KINDS[k] == SSL_OPTIM_LAMB;
        SSL_EXPECT(o.m && (o.v != NULL) == adam, "%s: state buffers", KIND_NAMES[k]);
        SSL_EXPECT(o.step == 0, "%s: fresh step counter", KIND_NAMES[k]);
        ssl_optim_free(&o);
    }
    ssl_params_free(&p);
    ssl_ctx_free(&c);
}

int main(void)
{
    test_schedules();
    test_weight_decay_flags();
    test_frozen();
    test_lars_trust_ratio();
    test_lamb_trust_ratio();
    test_clip_global();
    test_clip_per_tensor();
    test_accumulation();
    test_state_layout();
    test_kernels_large();
    return ssl_test_exit();
}
