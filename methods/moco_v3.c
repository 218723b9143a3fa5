/* MoCo v3 (Chen, Xie, He 2021; REFERENCE §2.4-2.7, the official moco-v3 code): base encoder ->
 * projector -> predictor for the queries, a momentum encoder (EMA of encoder + projector) for the keys,
 * no queue:
 *   L = 2 tau [ ctr(q1, k2) + ctr(q2, k1) ],  ctr(q, k) = CE(q K^T / tau, own index), K = all-gather(k)
 * (moco/builder.py scales its CE by 2T). Each view runs through the networks separately (BN per view,
 * synchronised over ranks with model.sync_bn as the paper's SyncBN): the pair of methods/siamese.h.
 * Heads (_build_mlp): Linear(no bias) -> BN -> ReLU per hidden layer; the projector ends in BN without
 * affine; the predictor has no last BN with a ResNet and a BN without affine with a ViT; ResNets get a
 * 2-layer projector, ViTs a 3-layer one. Momentum m(t) = 1 - (1 - m0)(cos(pi t / epochs) + 1) / 2, t the
 * fractional epoch; the official code applies it at the start of step k+1, we after the optimizer step
 * of step k with the same t, which is the same update. ViT recipes also set model.freeze_patch_embed
 * and model.sincos_pos (§2.7). */
#include "framework/core/check.h"
#include "framework/layers/infonce.h"
#include "framework/optim/schedule.h"
#include "methods/monitors.h"
#include "methods/siamese.h"

#include <stdio.h>
#include <string.h>

static int moco3_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    if (cfg->augment.views != 2) {
        snprintf(err, errlen, "moco_v3 takes 2 views per image; augment.views is %d", cfg->augment.views);
        return -1;
    }
    v->ngroups = 1;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    return 0;
}

static int moco3_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    const ssl_config_moco_v3 *o = &cfg->moco_v3;
    ssl_siamese *s = ssl_calloc(1, sizeof *s);
    m->impl = s;
    const int vit = strncmp(cfg->model.arch, "vit_", 4) == 0;
    ssl_mlp_spec proj = {.layers = vit ? 3 : 2, .in = m->encoder->feat_dim, .hidden = o->mlp_dim, .out = o->dim,
                         .bn = 1, .last_bn = SSL_LAST_BN_PLAIN, .act = SSL_ACT_RELU};
    ssl_mlp_spec pred = {.layers = 2, .in = o->dim, .hidden = o->mlp_dim, .out = o->dim, .bn = 1,
                         .last_bn = vit ? SSL_LAST_BN_PLAIN : SSL_LAST_BN_NONE, .act = SSL_ACT_RELU};
    return ssl_siamese_plan(s, m->encoder, pl, &proj, &pred, err, errlen);
}

static int moco3_alloc(ssl_method *m, ssl_ctx *c, ssl_params *params, const ssl_params *buffers, char *err,
                       size_t errlen)
{
    (void)c, (void)err, (void)errlen;
    ssl_siamese_alloc(m->impl, params, buffers);
    return 0;
}

static void moco3_state(ssl_method *m, ssl_ckpt *ck) { ssl_siamese_state(m->impl, ck); }

static void moco3_agree(ssl_method *m, ssl_ctx *c) { ssl_siamese_agree(m->impl, c); }

static void moco3_start(ssl_method *m, ssl_ctx *c, const ssl_weights *w, int resumed)
{
    ssl_siamese_start(m->impl, c, w, resumed);
}

static double moco3_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                         ssl_scalars *out)
{
    (void)p;
    ssl_siamese *s = m->impl;
    const int N = v->n;
    const float tau = (float)m->cfg->moco_v3.temperature;
    SSL_ASSERTF(v->ngroups == 1, "moco_v3: one view group");
    ssl_siamese_out o;
    ssl_siamese_forward(s, c, w, v->group[0], N, &o);
    const int64_t D = o.q[0].shape[1];
    double loss = 0, pos = 0, neg = 0;
    ssl_tensor dq[2];
    for (int i = 0; i < 2; i++) {
        float *qnorm;
        ssl_tensor qn = ssl_normalized(c, o.q[i], &qnorm), kn = ssl_normalized(c, o.t[1 - i], NULL);
        float *dqn = ssl_arena_floats(&c->act, (size_t)(N * D));
        double pc, nc;
        loss += 2.0 * tau * ssl_infonce_gathered(c, c->comm, qn.data, kn.data, N, D, tau, dqn, &pc, &nc);
        pos += pc / 2, neg += nc / 2;
        c->be->scale(c, dqn, (size_t)(N * D), 2.0f * tau);
        dq[i] = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * D)), N, D);
        c->be->l2norm_bwd(c, N, D, qn.data, qnorm, dqn, dq[i].data);
    }
    ssl_siamese_backward(s, c, w, dq);
    ssl_tensor zn = ssl_normalized(c, o.z[0], NULL);
    ssl_monitor_embedding_std(c, zn.data, N, zn.shape[1], out);
    ssl_scalars_add(out, "pos_cos", pos);
    ssl_scalars_add(out, "neg_cos", neg);
    return loss;
}

static void moco3_after_optim(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_progress *p)
{
    ssl_siamese *s = m->impl;
    double t = (double)(p->step + 1) / (double)p->steps_per_epoch; /* the next step's fractional epoch */
    double mom = ssl_sched_ema_momentum(m->cfg->moco_v3.momentum, t, (double)m->cfg->schedule.epochs);
    ssl_teacher_ema(c, &s->teacher, w, (float)mom);
}

static void moco3_free(ssl_method *m)
{
    if (!m->impl) return;
    ssl_siamese_free(m->impl);
    ssl_free(m->impl);
}

const ssl_method_vtable ssl_method_moco_v3 = {
    .name = "moco_v3",
    .summary = "MoCo v3: symmetric InfoNCE against a momentum encoder's keys from all ranks (Chen et al. 2021)",
    .configure = moco3_configure,
    .plan = moco3_plan,
    .alloc = moco3_alloc,
    .state = moco3_state,
    .start = moco3_start,
    .step = moco3_step,
    .after_optim = moco3_after_optim,
    .agree = moco3_agree,
    .free = moco3_free,
};
