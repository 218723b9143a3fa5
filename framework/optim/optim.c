/* SGD, AdamW, LARS and LAMB over the segment table of an ssl_params, plus gradient clipping.
 * No loop here touches parameter memory: each segment is one or a few backend ops (sgd_update,
 * adam_direction, axpby, scale, sumsq, sumsq_segments), so any backend that fills the op table runs them.
 * Per-tensor norms come back to the host as doubles (all of a step's in one batched call) and become scalar op arguments. */
#include "framework/optim/optim.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <math.h>
#include <string.h>

/* torch.nn.utils.clip_grad_norm_ and DINO's clip_gradients add this to the norm. */
#define CLIP_EPS 1e-6

ssl_optim_config ssl_optim_config_default(ssl_optim_kind kind)
{
    ssl_optim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = kind;
    cfg.grad_scale = 1.0f;
    switch (kind) {
    case SSL_OPTIM_SGD: cfg.momentum = 0.9f; break;
    case SSL_OPTIM_LARS:
        cfg.momentum = 0.9f;
        cfg.eta = 1e-3f;
        break;
    case SSL_OPTIM_ADAMW:
    case SSL_OPTIM_LAMB:
        cfg.beta1 = 0.9f;
        cfg.beta2 = 0.999f;
        cfg.eps = kind == SSL_OPTIM_ADAMW ? 1e-8f : 1e-6f;
        break;
    }
    return cfg;
}

static int uses_adam(ssl_optim_kind k) { return k == SSL_OPTIM_ADAMW || k == SSL_OPTIM_LAMB; }

static void check_config(const ssl_optim_config *cfg)
{
    SSL_ASSERTF(cfg->kind >= SSL_OPTIM_SGD && cfg->kind <= SSL_OPTIM_LAMB, "unknown optimizer %d",
                (int)cfg->kind);
    SSL_ASSERTF(cfg->grad_scale > 0.0f, "optimizer grad_scale must be > 0 (got %g)",
                (double)cfg->grad_scale);
    SSL_ASSERTF(cfg->momentum >= 0.0f && cfg->momentum < 1.0f, "momentum %g not in [0, 1)",
                (double)cfg->momentum);
    if (uses_adam(cfg->kind))
        SSL_ASSERTF(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f && cfg->beta2 >= 0.0f &&
                        cfg->beta2 < 1.0f && cfg->eps > 0.0f,
                    "Adam betas must be in [0, 1) and eps > 0");
    if (cfg->kind == SSL_OPTIM_LARS)
        SSL_ASSERTF(cfg->eta > 0.0f, "LARS eta must be > 0 (got %g)", (double)cfg->eta);
    if (cfg->nesterov)
        SSL_ASSERTF(cfg->kind == SSL_OPTIM_SGD && cfg->momentum > 0.0f,
                    "nesterov needs SGD with momentum > 0 (as torch.optim.SGD)");
}

/* A zeroed state buffer with the parameters' flat layout. */
static float *state_alloc(ssl_ctx *c, size_t numel)
{
    float *s = c->be->alloc(numel * sizeof(float));
    c->be->fill(c, s, numel, 0.0f);
    return s;
}

void ssl_optim_init(ssl_optim *o, ssl_ctx *c, ssl_params *p, const ssl_optim_config *cfg)
{
    check_config(cfg);
    SSL_ASSERTF(p->data && p->grad, "optimizer needs allocated parameters with gradients");
    SSL_ASSERTF(p->be == c->be, "parameters live on backend %s, context on %s", p->be->name,
                c->be->name);
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->p = p;
    o->be = c->be;
    size_t numel = p->numel ? p->numel : 1;
    int need_m = uses_adam(cfg->kind) || cfg->kind == SSL_OPTIM_LARS || cfg->momentum > 0.0f;
    if (need_m) o->m = state_alloc(c, numel);
    if (uses_adam(cfg->kind)) o->v = state_alloc(c, numel);
    const size_t ns = (size_t)(p->nseg ? p->nseg : 1);
    o->seg_step = ssl_calloc(ns, sizeof *o->seg_step);
    o->tab = ssl_calloc(ns, sizeof *o->tab);
    o->norm_off = ssl_calloc(2 * ns, sizeof *o->norm_off);
    o->norm_n = o->norm_off + ns;
    o->norm_w2 = ssl_calloc(2 * ns, sizeof *o->norm_w2);
    o->norm_d2 = o->norm_w2 + ns;
}

void ssl_optim_set_step(ssl_optim *o, int64_t step)
{
    o->step = step;
    for (int i = 0; i < o->p->nseg; i++) o->seg_step[i] = step;
}

void ssl_optim_free(ssl_optim *o)
{
    if (o->be) {
        if (o->m) o->be->free(o->m);
        if (o->v) o->be->free(o->v);
    }
    ssl_free(o->seg_step);
    ssl_free(o->tab);
    ssl_free(o->norm_off);
    ssl_free(o->norm_w2);
    memset(o, 0, sizeof *o);
}

/* Weight decay for one segment: excluded segments (biases, norm params, tokens) get none. */
static float seg_wd(const ssl_segment *s, float wd)
{
    return (s->flags & SSL_SEG_NO_WD) ? 0.0f : wd;
}

/* coef * ||a|| / ||b|| from squared norms, or 1 when either norm is 0 (LARS, LAMB). */
static float trust_ratio(double coef, double a2, double b2)
{
    if (!(a2 > 0.0) || !(b2 > 0.0)) return 1.0f;
    return (float)(coef * sqrt(a2) / sqrt(b2));
}

static ssl_opt_seg seg_of(const ssl_segment *s) { return (ssl_opt_seg){.off = s->off, .n = s->n}; }

static float seg_lr(const ssl_optim *o, int i, float lr) { return o->seg_lr_scale ? lr * o->seg_lr_scale[i] : lr; }

/* Adam's bias corrections for a segment's t = done + 1, in double: 1 - b2^t in float loses ~4
 * digits to cancellation for small t. */
static void bias_corrections(const ssl_optim_config *k, int64_t done, ssl_opt_seg *e)
{
    const double t = (double)(done + 1);
    e->bc1 = (float)(1.0 - pow((double)k->beta1, t));
    e->bc2 = (float)(1.0 - pow((double)k->beta2, t));
}

/* SGD: one fused op. sgd_update scales (g + wd*w) by gscale as a whole, so the decay is divided by
 * grad_scale first: gs * (g + (wd/gs) w) = gs*g + wd*w, decay independent of accumulation.
 * AdamW as torch.optim.AdamW: the direction u over the gradient (gs * g read, no decay in it), then
 * w *= 1 - lr*wd and w -= lr*u in one axpby. */
static void step_plain(ssl_optim *o, ssl_ctx *c, float lr, float wd)
{
    const ssl_optim_config *k = &o->cfg;
    const ssl_params *p = o->p;
    int n = 0;
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        if (s->flags & SSL_SEG_FROZEN) continue;
        ssl_opt_seg e = seg_of(s);
        const float swd = seg_wd(s, wd), slr = seg_lr(o, i, lr);
        if (k->kind == SSL_OPTIM_SGD) {
            e.lr = slr, e.wd = swd / k->grad_scale, e.gscale = k->grad_scale;
        } else {
            e.wd = 0.0f, e.gscale = k->grad_scale;
            bias_corrections(k, o->seg_step[i], &e);
            e.a = -slr, e.b = 1.0f - slr * swd;
        }
        o->tab[n++] = e;
        o->seg_step[i]++;
    }
    if (k->kind == SSL_OPTIM_SGD) {
        c->be->sgd_update_multi(c, n, o->tab, k->momentum, k->nesterov, p->data, p->grad, o->m);
        return;
    }
    c->be->adam_direction_multi(c, n, o->tab, k->beta1, k->beta2, k->eps, p->data, p->grad, o->m, o->v);
    c->be->axpby_multi(c, n, o->tab, p->grad, p->data);
}

/* LARS as MoCo v3's moco/optimizer.py (also DINO's utils.LARS and BYOL's optax chain).
 * Adapted segments: the gradient buffer becomes dp = gs*g + wd*w, then the trust ratio q is folded
 * into sgd_update's gscale (d = q*dp), whose momentum form is PyTorch's (lr outside the buffer).
 * We chose this variant over SimCLR's (lr inside the buffer) and solo-learn's (denominator
 * ||g|| + wd||w|| + eps) because MoCo v3, DINO and BYOL agree on it; see REFERENCE §1.10-1.12. */
/* LAMB (TF-Addons, REFERENCE §6.1): the Adam direction u (with wd), trust ratio ||w|| / ||u||.
 * Both in three stages over all segments, each one fused op: every direction first (LARS: dp over
 * the gradient; LAMB: u over the gradient), then the norms of all adapted segments' weights and
 * directions in one batched call per buffer (two device synchronisations per step instead of two
 * per tensor), then the updates. Segments are independent, so this is the per-segment order's
 * result bit for bit. */
static void step_trust(ssl_optim *o, ssl_ctx *c, float lr, float wd)
{
    const ssl_backend *be = c->be;
    const ssl_optim_config *k = &o->cfg;
    const ssl_params *p = o->p;
    const int lars = k->kind == SSL_OPTIM_LARS, nseg = p->nseg;
    size_t *off = o->norm_off, *n = o->norm_n;
    double *w2 = o->norm_w2, *d2 = o->norm_d2;
    int na = 0, nt = 0;
    for (int i = 0; i < nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        if (s->flags & SSL_SEG_FROZEN) continue;
        const int adapt = !(s->flags & SSL_SEG_NO_ADAPT);
        const float swd = seg_wd(s, wd);
        ssl_opt_seg e = seg_of(s);
        if (!lars) {
            e.wd = swd, e.gscale = k->grad_scale;
            bias_corrections(k, o->seg_step[i], &e);
            o->tab[nt++] = e;
        } else if (adapt && (swd != 0.0f || k->grad_scale != 1.0f)) {
            e.a = swd, e.b = k->grad_scale;
            o->tab[nt++] = e;
        }
        if (adapt) off[na] = s->off, n[na] = s->n, na++;
    }
    if (lars) be->axpby_multi(c, nt, o->tab, p->data, p->grad);
    else be->adam_direction_multi(c, nt, o->tab, k->beta1, k->beta2, k->eps, p->data, p->grad, o->m, o->v);
    if (na) {
        be->sumsq_segments(c, na, p->data, off, n, w2);
        be->sumsq_segments(c, na, p->grad, off, n, d2);
    }
    nt = 0;
    for (int i = 0, a = 0; i < nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        if (s->flags & SSL_SEG_FROZEN) continue;
        const int adapt = !(s->flags & SSL_SEG_NO_ADAPT);
        const float slr = seg_lr(o, i, lr);
        ssl_opt_seg e = seg_of(s);
        if (lars) {
            /* biases and norm params: neither decay nor scaling, m = mu*m + gs*g */
            e.lr = slr, e.wd = 0.0f, e.gscale = adapt ? trust_ratio(k->eta, w2[a], d2[a]) : k->grad_scale;
        } else {
            e.a = -slr * (adapt ? trust_ratio(1.0, w2[a], d2[a]) : 1.0f), e.b = 1.0f;
        }
        o->tab[nt++] = e;
        a += adapt;
        o->seg_step[i]++;
    }
    if (lars) be->sgd_update_multi(c, nt, o->tab, k->momentum, 0, p->data, p->grad, o->m);
    else be->axpby_multi(c, nt, o->tab, p->grad, p->data);
}

void ssl_optim_step(ssl_optim *o, ssl_ctx *c, float lr, float wd)
{
    SSL_ASSERTF(o->p && c->be == o->be, "optimizer used with another backend than its state");
    double t0 = ssl_prof_begin(c);
    if (o->cfg.kind == SSL_OPTIM_LARS || o->cfg.kind == SSL_OPTIM_LAMB) step_trust(o, c, lr, wd);
    else step_plain(o, c, lr, wd);
    o->step++;
    ssl_prof_end(c, SSL_PROF_OPTIM, t0, 0.0);
}

/* ---- clipping ------------------------------------------------------------------------------ */

static int has_frozen(const ssl_params *p)
{
    for (int i = 0; i < p->nseg; i++)
        if (p->seg[i].flags & SSL_SEG_FROZEN) return 1;
    return 0;
}

/* The non-frozen segments' ranges and their gradients' sums of squares, from one batched call (one
 * device synchronisation; each entry equals sumsq of its range). One block: free(off). */
typedef struct {
    int count;
    size_t *off, *n;
    double *g2;
} active_norms;

static active_norms active_sumsq(ssl_ctx *c, const ssl_params *p)
{
    const size_t cap = (size_t)p->nseg + 1;
    active_norms a = {.off = ssl_malloc(cap * (2 * sizeof(size_t) + sizeof(double)))};
    a.n = a.off + cap, a.g2 = (double *)(void *)(a.n + cap);
    for (int i = 0; i < p->nseg; i++)
        if (!(p->seg[i].flags & SSL_SEG_FROZEN)) a.off[a.count] = p->seg[i].off, a.n[a.count] = p->seg[i].n, a.count++;
    if (a.count) c->be->sumsq_segments(c, a.count, p->grad, a.off, a.n, a.g2);
    return a;
}

/* Sum of squares of the non-frozen gradients: without frozen segments one reduction over the flat
 * buffer (alignment padding is kept zero), with them the segments' sums in order. */
static double grad_sumsq(ssl_ctx *c, const ssl_params *p)
{
    if (!has_frozen(p)) return c->be->sumsq(c, p->numel, p->grad);
    active_norms a = active_sumsq(c, p);
    double s = 0.0;
    for (int i = 0; i < a.count; i++) s += a.g2[i];
    ssl_free(a.off);
    return s;
}

/* Multiply the non-frozen gradients by a (frozen ones stay untouched). */
static void grad_scale_by(ssl_ctx *c, ssl_params *p, float a)
{
    if (!has_frozen(p)) {
        c->be->scale(c, p->grad, p->numel, a);
        return;
    }
    for (int i = 0; i < p->nseg; i++)
        if (!(p->seg[i].flags & SSL_SEG_FROZEN))
            c->be->scale(c, p->grad + p->seg[i].off, p->seg[i].n, a);
}

double ssl_optim_clip_global_norm(ssl_ctx *c, ssl_params *p, float max_norm, float gscale)
{
    SSL_ASSERT(p->grad && max_norm > 0.0f && gscale > 0.0f);
    double t0 = ssl_prof_begin(c);
    double norm = gscale * sqrt(grad_sumsq(c, p));
    double coef = max_norm / (norm + CLIP_EPS);
    if (coef < 1.0) grad_scale_by(c, p, (float)coef);
    ssl_prof_end(c, SSL_PROF_OPTIM, t0, 0.0);
    return norm;
}

double ssl_optim_grad_norm(ssl_ctx *c, ssl_params *p, float gscale)
{
    SSL_ASSERT(p->grad && gscale > 0.0f);
    return gscale * sqrt(grad_sumsq(c, p));
}

double ssl_optim_clip_per_tensor(ssl_ctx *c, ssl_params *p, float max_norm, float gscale)
{
    SSL_ASSERT(p->grad && max_norm > 0.0f && gscale > 0.0f);
    double t0 = ssl_prof_begin(c);
    /* every tensor's norm from one batched call, then the scalings */
    active_norms a = active_sumsq(c, p);
    double total2 = 0.0;
    for (int i = 0; i < a.count; i++) {
        double norm = gscale * sqrt(a.g2[i]);
        total2 += norm * norm;
        double coef = max_norm / (norm + CLIP_EPS);
        if (coef < 1.0) c->be->scale(c, p->grad + a.off[i], a.n[i], (float)coef);
    }
    ssl_free(a.off);
    ssl_prof_end(c, SSL_PROF_OPTIM, t0, 0.0);
    return sqrt(total2);
}
