/* MoCo v2 (Chen, Fan, Girshick, He 2020; REFERENCE §2.1-2.3, the official moco code): queries from the
 * encoder + MLP projector on view 1, keys from its momentum copy (EMA, m 0.999) on view 2, InfoNCE
 * against the positive key and a queue of K earlier keys, temperature 0.2; the step's keys are then
 * enqueued. The queue is sharded over ranks (framework/layers/moco_queue.h): rank r holds about K/P
 * keys, scores every rank's queries against them with a distributed log-sum-exp, and memory per rank
 * falls as 1/P; the official code keeps a full replica on every GPU, which this equals.
 * Projector (moco builder with --mlp): Linear(feat, hidden) -> ReLU -> Linear(hidden, dim), with biases.
 * Keys' BatchNorm: shuffle-BN (the paper; moco_v2.shuffle_bn; framework/layers/shuffle_bn.h): each rank
 * encodes a random slice of the global batch with BN over that slice alone, so a query and its key
 * never share BN statistics. moco_v2.shuffle_bn_groups G splits the shuffled global batch into G groups
 * (G/P per rank) so the result does not depend on the rank count, and one rank is protected too: with
 * one group per rank a single rank's keys would share its queries' BN statistics, and the queue's
 * older keys would not, a shortcut the encoder learns (MoCo's single-GPU SplitBatchNorm exists for it).
 * Without it, the key encoder's BN follows model.sync_bn like the query encoder's. The momentum update
 * of step k, which the official code applies before computing step k's keys, runs after step k-1's
 * optimizer step: the same update. */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/layers/moco_queue.h"
#include "framework/layers/shuffle_bn.h"
#include "framework/tensor/teacher.h"
#include "methods/heads.h"
#include "methods/method.h"
#include "methods/monitors.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    ssl_mlp proj, tproj;
    ssl_model tenc; /* the momentum encoder's instance */
    ssl_teacher key_encoder;
    ssl_moco_queue queue;
} moco2;

static int moco2_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    if (cfg->augment.views != 2) {
        snprintf(err, errlen, "moco_v2 takes 2 views per image; augment.views is %d", cfg->augment.views);
        return -1;
    }
    const int G = cfg->moco_v2.shuffle_bn_groups;
    if (cfg->moco_v2.shuffle_bn && G > 0 && cfg->data.batch_size % G) {
        snprintf(err, errlen, "moco_v2.shuffle_bn_groups %d does not divide data.batch_size %d", G,
                 cfg->data.batch_size);
        return -1;
    }
    if (cfg->moco_v2.queue_size < cfg->data.batch_size) {
        snprintf(err, errlen, "moco_v2.queue_size %d is smaller than data.batch_size %d: a step's keys must fit",
                 cfg->moco_v2.queue_size, cfg->data.batch_size);
        return -1;
    }
    v->ngroups = 1;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    return 0;
}

static int moco2_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    const ssl_config_moco_v2 *o = &cfg->moco_v2;
    moco2 *b = ssl_calloc(1, sizeof *b);
    m->impl = b;
    ssl_mlp_spec proj = {.layers = 2, .in = m->encoder->feat_dim, .hidden = o->mlp_hidden, .out = o->dim, .bias = 1,
                         .last_bias = 1, .act = SSL_ACT_RELU};
    if (ssl_mlp_init(&b->proj, pl, "projector", &proj, err, errlen)) return -1;
    b->tproj = b->proj;
    ssl_model_instance(&b->tenc, m->encoder);
    return 0;
}

static int moco2_alloc(ssl_method *m, ssl_ctx *c, ssl_params *params, const ssl_params *buffers, char *err,
                       size_t errlen)
{
    moco2 *b = m->impl;
    const ssl_config *cfg = m->cfg;
    const int G = cfg->moco_v2.shuffle_bn_groups, P = c->comm ? c->comm->world : 1;
    if (cfg->moco_v2.shuffle_bn && G % P) {
        snprintf(err, errlen, "moco_v2.shuffle_bn_groups %d is not a multiple of the %d ranks", G, P);
        return -1;
    }
    const int micro = cfg->data.batch_size / P / cfg->optim.accum_steps;
    if (cfg->moco_v2.shuffle_bn && G && micro % (G / P)) {
        snprintf(err, errlen, "moco_v2.shuffle_bn_groups %d: a rank's micro-batch of %d images does not split into %d groups",
                 G, micro, G / P);
        return -1;
    }
    /* the key encoder mirrors everything: MoCo v2 has no predictor */
    ssl_teacher_init(&b->key_encoder, params, params->numel, buffers, buffers->numel);
    int rank = c->comm ? c->comm->rank : 0, world = c->comm ? c->comm->world : 1;
    ssl_moco_queue_init(&b->queue, c->be, cfg->moco_v2.queue_size, cfg->moco_v2.dim, rank, world,
                        ssl_rng_hash((uint64_t)cfg->run.seed, 0x6d6f636f5175ull /* "mocoQu" */));
    return 0;
}

static void moco2_state(ssl_method *m, ssl_ckpt *ck)
{
    moco2 *b = m->impl;
    ssl_ckpt_add(ck, "teacher/params", b->key_encoder.p, b->key_encoder.n);
    ssl_ckpt_add(ck, "teacher/buffers", b->key_encoder.buf, b->key_encoder.nbuf);
    const ssl_moco_queue *q = &b->queue;
    ssl_ckpt_add_sharded(ck, "queue/keys", q->keys, (size_t)(q->n * q->D), (size_t)(q->off * q->D),
                         (size_t)(q->K * q->D));
    ssl_ckpt_add_i64(ck, "queue/ptr", &b->queue.ptr, 1);
}

/* Shuffle-BN (or per-rank BN) gives each rank's key encoder its own BN statistics: one model before a
 * save or an evaluation. */
static void moco2_agree(ssl_method *m, ssl_ctx *c)
{
    moco2 *b = m->impl;
    if ((m->cfg->moco_v2.shuffle_bn || !c->bn_comm) && c->comm && c->comm->world > 1)
        ssl_dev_allreduce(c, c->comm, b->key_encoder.buf, b->key_encoder.nbuf, SSL_F32, SSL_AVG);
}

static void moco2_start(ssl_method *m, ssl_ctx *c, const ssl_weights *w, int resumed)
{
    moco2 *b = m->impl;
    if (!resumed) ssl_teacher_copy(c, &b->key_encoder, w); /* a resumed run loaded it, and the queue */
}

/* The key encoder on a batch (BN over that batch, or over c->bn_comm's ranks). */
static ssl_tensor key_encoder(ssl_ctx *c, ssl_tensor x, void *ud)
{
    moco2 *b = ud;
    ssl_weights tw = ssl_teacher_weights(&b->key_encoder);
    return ssl_mlp_forward(c, &b->tproj, &tw, b->tenc.forward(c, &b->tenc, &tw, x, 1), 1);
}

/* Keys (N, D), normalised, of this rank's images x (N, C, H, W), with shuffle-BN across ranks when
 * asked (see the header). */
static ssl_tensor keys_of(ssl_method *m, ssl_ctx *c, ssl_tensor x, const ssl_progress *p)
{
    moco2 *b = m->impl;
    ssl_tensor k;
    if (m->cfg->moco_v2.shuffle_bn) {
        struct ssl_comm *bn = c->bn_comm;
        c->bn_comm = NULL; /* BN over the shuffled slice alone: that is the point */
        uint64_t key = ssl_rng_hash(ssl_rng_hash((uint64_t)m->cfg->run.seed, 0x73687566ull /* "shuf" */),
                                    (uint64_t)(p->step * p->accum + p->micro));
        const int G = m->cfg->moco_v2.shuffle_bn_groups, P = c->comm ? c->comm->world : 1;
        k = ssl_shuffled_forward(c, c->comm, x, key, G ? G / P : 1, key_encoder, b);
        c->bn_comm = bn;
    } else {
        k = key_encoder(c, x, b);
    }
    return ssl_normalized(c, k, NULL);
}

static double moco2_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                         ssl_scalars *out)
{
    moco2 *b = m->impl;
    const int N = v->n;
    const int64_t D = m->cfg->moco_v2.dim;
    SSL_ASSERTF(v->ngroups == 1 && v->group[0].shape[0] == 2 * (int64_t)N, "moco_v2: expected 2 x %d views", N);
    ssl_tensor x[2] = {v->group[0], v->group[0]};
    x[0].shape[0] = x[1].shape[0] = N;
    x[1].data += ssl_tensor_numel(v->group[0]) / 2;
    ssl_tensor z = ssl_mlp_forward(c, &b->proj, w, m->encoder->forward(c, m->encoder, w, x[0], 1), 1);
    float *qnorm;
    ssl_tensor qn = ssl_normalized(c, z, &qnorm);
    ssl_tensor kn = keys_of(m, c, x[1], p);
    float *dqn = ssl_arena_floats(&c->act, (size_t)(N * D));
    double pos, neg;
    double loss = ssl_moco_queue_loss(c, c->comm, &b->queue, qn.data, kn.data, N, (float)m->cfg->moco_v2.temperature,
                                      dqn, &pos, &neg);
    /* the logits used the queue before this step's keys, as the official code */
    ssl_moco_queue_enqueue(c, c->comm, &b->queue, kn.data, N);
    ssl_tensor d = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(N * D)), N, D);
    c->be->l2norm_bwd(c, N, D, qn.data, qnorm, dqn, d.data);
    d = ssl_mlp_backward(c, &b->proj, w, d);
    m->encoder->backward(c, m->encoder, w, d);
    ssl_monitor_embedding_std(c, qn.data, N, D, out);
    ssl_scalars_add(out, "pos_cos", pos);
    ssl_scalars_add(out, "neg_cos", neg);
    return loss;
}

static void moco2_after_optim(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_progress *p)
{
    (void)p;
    moco2 *b = m->impl;
    ssl_teacher_ema(c, &b->key_encoder, w, (float)m->cfg->moco_v2.momentum);
}

static void moco2_free(ssl_method *m)
{
    moco2 *b = m->impl;
    if (!b) return;
    ssl_teacher_free(&b->key_encoder);
    ssl_moco_queue_free(&b->queue);
    if (b->tenc.impl) ssl_model_free(&b->tenc);
    ssl_free(b);
}

const ssl_method_vtable ssl_method_moco_v2 = {
    .name = "moco_v2",
    .summary = "MoCo v2: InfoNCE against a momentum encoder's key and a queue sharded over ranks (Chen et al. 2020)",
    .configure = moco2_configure,
    .plan = moco2_plan,
    .alloc = moco2_alloc,
    .state = moco2_state,
    .start = moco2_start,
    .step = moco2_step,
    .after_optim = moco2_after_optim,
    .agree = moco2_agree,
    .free = moco2_free,
};
