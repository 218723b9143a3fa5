/* SimCLR (Chen et al. 2020; REFERENCE §1): encoder -> projection MLP -> L2-normalise -> NT-Xent.
 * Projector (REFERENCE §1.4): (proj_layers - 1) x [Linear(no bias) -> BN -> ReLU], then
 * Linear(no bias) -> BN without affine (the final layer has neither bias nor ReLU; we also drop
 * the BN scale, as MoCo v3's projector does, so nothing re-scales the embedding before the norm).
 * Names follow a torch Sequential "projector.<index>" so an exported head loads there too. */
#include "framework/core/check.h"
#include "framework/layers/batchnorm.h"
#include "framework/layers/linear.h"
#include "framework/layers/ntxent.h"
#include "methods/method.h"

#include <stdio.h>
#include <string.h>

#define MAX_PROJ 4

typedef struct {
    int nlayers;
    ssl_linear lin[MAX_PROJ];
    ssl_batchnorm bn[MAX_PROJ];
    float *z, *znorm; /* saved L2-normalised embeddings and their norms */
} simclr;

static int simclr_init(ssl_method *m, const ssl_method_config *cfg, ssl_model *enc, ssl_plan *pl,
                       char *err)
{
    if (cfg->proj_layers < 1 || cfg->proj_layers > MAX_PROJ || cfg->proj_dim < 1 ||
        cfg->proj_hidden < 1 || !(cfg->temperature > 0)) {
        snprintf(err, 256, "simclr: need 1 <= proj_layers <= %d, positive proj_dim, proj_hidden "
                           "and temperature", MAX_PROJ);
        return -1;
    }
    simclr *s = ssl_calloc(1, sizeof *s);
    m->impl = s;
    s->nlayers = cfg->proj_layers;
    int in = enc->feat_dim;
    char n[112];
    for (int i = 0; i < s->nlayers; i++) {
        int last = i == s->nlayers - 1;
        int out = last ? cfg->proj_dim : cfg->proj_hidden;
        snprintf(n, sizeof n, "projector.%d", 3 * i);
        ssl_linear_init(&s->lin[i], pl, n, in, out, 0);
        snprintf(n, sizeof n, "projector.%d", 3 * i + 1);
        ssl_batchnorm_init(&s->bn[i], pl, n, out, !last, !last);
        in = out;
    }
    return 0;
}

static double simclr_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, ssl_tensor views, int N)
{
    simclr *s = m->impl;
    SSL_ASSERTF(views.shape[0] == 2 * (int64_t)N, "simclr: expected 2 x %d views", N);
    ssl_tensor h = m->encoder->forward(c, m->encoder, w, views, 1);
    for (int i = 0; i < s->nlayers; i++) {
        h = ssl_linear_forward(c, &s->lin[i], w, h);
        h = ssl_batchnorm_forward(c, &s->bn[i], w, h, 1);
    }
    const int64_t M = h.shape[0], D = h.shape[1];
    s->z = ssl_arena_floats(&c->act, (size_t)(M * D));
    s->znorm = ssl_arena_floats(&c->act, (size_t)M);
    c->be->l2norm_fwd(c, M, D, 1e-12f, h.data, s->z, s->znorm);
    float *dz = ssl_arena_floats(&c->act, (size_t)(M * D));
    /* without the gather, each rank's samples are their own batch (and P ranks train as P
     * micro-batches of one rank accumulated, given per-rank BN) */
    double loss = ssl_ntxent_global(c, m->cfg.gather_negatives ? c->comm : NULL, s->z, M, D, m->cfg.temperature, dz);
    ssl_tensor d = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(M * D)), M, D);
    c->be->l2norm_bwd(c, M, D, s->z, s->znorm, dz, d.data);
    for (int i = s->nlayers - 1; i >= 0; i--) {
        d = ssl_batchnorm_backward(c, &s->bn[i], w, d);
        d = ssl_linear_backward(c, &s->lin[i], w, d);
    }
    m->encoder->backward(c, m->encoder, w, d);
    return loss;
}

static void simclr_free(ssl_method *m) { ssl_free(m->impl); }

const ssl_method_vtable ssl_method_simclr = {
    .name = "simclr",
    .views = 2,
    .init = simclr_init,
    .step = simclr_step,
    .free = simclr_free,
};
