/* BYOL (Grill et al. 2020; REFERENCE §3, the official JAX code): online encoder -> projector ->
 * predictor, target encoder -> projector as an EMA of the online ones (no gradient), loss
 *   L = mean_i [ (2 - 2 cos(q1_i, z'2_i)) + (2 - 2 cos(q2_i, z'1_i)) ]
 * with q the online predictions and z' the target projections of the other view. Each view goes
 * through the networks separately (BatchNorm statistics per view, as byol_experiment.py applies
 * the network to view1 and view2 in two calls): the two-view pair of methods/siamese.h.
 * MLPs (REFERENCE §3.2): Linear(bias) -> BN -> ReLU -> Linear(no bias); BN synchronised over ranks
 * when model.sync_bn. Target momentum tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2 over the
 * K steps of training, applied after the optimizer step (§3.3). */
#include "framework/core/check.h"
#include "framework/optim/schedule.h"
#include "methods/monitors.h"
#include "methods/siamese.h"

#include <stdio.h>

static int byol_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    if (cfg->augment.views != 2) {
        snprintf(err, errlen, "byol takes 2 views per image; augment.views is %d", cfg->augment.views);
        return -1;
    }
    v->ngroups = 1;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    return 0;
}

static int byol_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    const ssl_config_byol *o = &cfg->byol;
    ssl_siamese *s = ssl_calloc(1, sizeof *s);
    m->impl = s;
    ssl_mlp_spec proj = {.layers = 2, .in = m->encoder->feat_dim, .hidden = o->proj_hidden, .out = o->proj_dim,
                         .bias = 1, .bn = 1, .act = SSL_ACT_RELU};
    ssl_mlp_spec pred = proj;
    pred.in = o->proj_dim;
    pred.hidden = o->pred_hidden;
    return ssl_siamese_plan(s, m->encoder, pl, &proj, &pred, err, errlen);
}

static int byol_alloc(ssl_method *m, ssl_ctx *c, ssl_params *params, const ssl_params *buffers, char *err,
                      size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    ssl_siamese_alloc(m->impl, params, buffers);
    return 0;
}

static void byol_state(ssl_method *m, ssl_ckpt *ck) { ssl_siamese_state(m->impl, ck); }

static void byol_agree(ssl_method *m, ssl_ctx *c) { ssl_siamese_agree(m->impl, c); }

static void byol_start(ssl_method *m, ssl_ctx *c, const ssl_weights *w, int resumed)
{
    ssl_siamese_start(m->impl, c, w, resumed);
}

/* One direction: 2 - 2 cos(q, t) averaged over the N rows; writes d(loss)/dq into dq (through the
 * L2 normalisation of q; t is a constant). Adds the N cosines to *cos_sum. */
static double regression(ssl_ctx *c, ssl_tensor q, ssl_tensor t, float *dq, double *cos_sum)
{
    const int64_t N = q.shape[0], D = q.shape[1];
    const size_t nd = (size_t)(N * D);
    float *qnorm;
    ssl_tensor qn = ssl_normalized(c, q, &qnorm), tn = ssl_normalized(c, t, NULL);
    double cs = c->be->dot(c, nd, qn.data, tn.data); /* sum of the N cosines */
    *cos_sum += cs;
    float *dqn = ssl_arena_floats(&c->act, nd);
    c->be->copy(c, dqn, tn.data, nd);
    c->be->scale(c, dqn, nd, -2.0f / (float)N);
    c->be->l2norm_bwd(c, N, D, qn.data, qnorm, dqn, dq);
    return 2.0 - 2.0 * cs / (double)N;
}

static double byol_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                        ssl_scalars *out)
{
    (void)p;
    ssl_siamese *s = m->impl;
    const int N = v->n;
    SSL_ASSERTF(v->ngroups == 1, "byol: one view group");
    ssl_siamese_out o;
    ssl_siamese_forward(s, c, w, v->group[0], N, &o);
    const int64_t D = o.q[0].shape[1];
    double loss = 0, cos_sum = 0;
    ssl_tensor dq[2];
    for (int i = 0; i < 2; i++) {
        dq[i] = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * D)), N, D);
        loss += regression(c, o.q[i], o.t[1 - i], dq[i].data, &cos_sum);
    }
    ssl_siamese_backward(s, c, w, dq);
    /* monitors: the online projections' spread (collapse -> 0) and the online-target agreement */
    ssl_tensor zn = ssl_normalized(c, o.z[0], NULL);
    ssl_monitor_embedding_std(c, zn.data, N, zn.shape[1], out);
    ssl_scalars_add(out, "online_target_cos", cos_sum / (2.0 * N));
    return loss;
}

static void byol_after_optim(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_progress *p)
{
    ssl_siamese *s = m->impl;
    double tau = ssl_sched_ema_momentum(m->cfg->byol.momentum, (double)p->step, (double)p->total_steps);
    ssl_teacher_ema(c, &s->teacher, w, (float)tau);
}

static void byol_free(ssl_method *m)
{
    if (!m->impl) return;
    ssl_siamese_free(m->impl);
    ssl_free(m->impl);
}

const ssl_method_vtable ssl_method_byol = {
    .name = "byol",
    .summary = "BYOL: online predictor regresses an EMA target's projection (Grill et al. 2020)",
    .configure = byol_configure,
    .plan = byol_plan,
    .alloc = byol_alloc,
    .state = byol_state,
    .start = byol_start,
    .step = byol_step,
    .after_optim = byol_after_optim,
    .agree = byol_agree,
    .free = byol_free,
};
