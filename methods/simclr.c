/* SimCLR (Chen et al. 2020; REFERENCE §1): encoder -> projection MLP -> L2-normalise -> NT-Xent.
 * Projector (REFERENCE §1.4): (proj_layers - 1) x [Linear(no bias) -> BN -> ReLU], then
 * Linear(no bias) -> BN without affine (the final layer has neither bias nor ReLU; we also drop
 * the BN scale, as MoCo v3's projector does, so nothing re-scales the embedding before the norm).
 * Both views go through the encoder as one batch of 2N (BN statistics over both, as the paper's
 * TF code). Names follow a torch Sequential "projector.<index>" so an exported head loads there. */
#include "framework/core/check.h"
#include "framework/layers/ntxent.h"
#include "methods/heads.h"
#include "methods/method.h"
#include "methods/monitors.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    ssl_mlp proj;
} simclr;

static int simclr_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    if (cfg->augment.views != 2) {
        snprintf(err, errlen, "simclr takes 2 views per image; augment.views is %d", cfg->augment.views);
        return -1;
    }
    v->ngroups = 1;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    return 0;
}

static int simclr_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    const ssl_config_simclr *o = &cfg->simclr;
    simclr *s = ssl_calloc(1, sizeof *s);
    m->impl = s;
    ssl_mlp_spec spec = {.layers = o->proj_layers, .in = m->encoder->feat_dim, .hidden = o->proj_hidden,
                         .out = o->proj_dim, .bn = 1, .last_bn = SSL_LAST_BN_PLAIN, .act = SSL_ACT_RELU};
    return ssl_mlp_init(&s->proj, pl, "projector", &spec, err, errlen);
}

static double simclr_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v,
                          const ssl_progress *p, ssl_scalars *out)
{
    (void)p;
    simclr *s = m->impl;
    const int N = v->n;
    SSL_ASSERTF(v->ngroups == 1 && v->group[0].shape[0] == 2 * (int64_t)N, "simclr: expected 2 x %d views", N);
    ssl_tensor h = m->encoder->forward(c, m->encoder, w, v->group[0], 1);
    h = ssl_mlp_forward(c, &s->proj, w, h, 1);
    const int64_t M = h.shape[0], D = h.shape[1];
    float *z = ssl_arena_floats(&c->act, (size_t)(M * D));
    float *znorm = ssl_arena_floats(&c->act, (size_t)M);
    c->be->l2norm_fwd(c, M, D, 1e-12f, h.data, z, znorm);
    ssl_monitor_embedding_std(c, z, M, D, out);
    float *dz = ssl_arena_floats(&c->act, (size_t)(M * D));
    /* without the gather, each rank's samples are their own batch (and P ranks train as P
     * micro-batches of one rank accumulated, given per-rank BN) */
    double loss = ssl_ntxent_global(c, m->cfg->simclr.gather_negatives ? c->comm : NULL, z, M, D,
                                    (float)m->cfg->simclr.temperature, dz);
    ssl_tensor d = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(M * D)), M, D);
    c->be->l2norm_bwd(c, M, D, z, znorm, dz, d.data);
    d = ssl_mlp_backward(c, &s->proj, w, d);
    m->encoder->backward(c, m->encoder, w, d);
    return loss;
}

static void simclr_free(ssl_method *m) { ssl_free(m->impl); }

const ssl_method_vtable ssl_method_simclr = {
    .name = "simclr",
    .summary = "SimCLR: NT-Xent over the global batch (Chen et al. 2020)",
    .configure = simclr_configure,
    .plan = simclr_plan,
    .step = simclr_step,
    .free = simclr_free,
};
