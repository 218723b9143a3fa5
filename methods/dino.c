/* DINO (Caron et al. 2021; REFERENCE §4, the official main_dino.py / vision_transformer.py):
 * self-distillation with no labels. Views: 2 global crops at model.img_size and dino.local_crops local
 * crops at dino.local_size (two view groups). The student (encoder -> head) sees every crop, the teacher
 * (an EMA of the whole student, head included) only the global ones; the loss is the cross-entropy
 * between the centred, sharpened teacher softmax and the student log-softmax over every (teacher view,
 * other student view) pair (framework/layers/dino_loss.h).
 *   head: Linear(bias) -> GELU -> Linear(bias) -> GELU -> Linear(bias) to the bottleneck (DINOHead,
 *         trunc_normal(0.02) weights, zero biases), L2-normalise, then the weight-normalised last layer
 *         with its norm fixed (framework/layers/wnorm_linear.h), frozen for dino.freeze_last_layer epochs
 *         (gradient cancelled: no update, no weight decay, no Adam moments — on_epoch flags the segment);
 *   encoder: like MultiCropWrapper, one forward per resolution (each group's BatchNorm statistics over
 *         that group), then the head once over all crops;
 *   teacher momentum 0.996 -> 1 cosine over the steps, applied after the optimizer step; centre
 *         momentum 0.9 over the batch mean of the teacher outputs, all-reduced over ranks; teacher
 *         temperature linear warm-up per epoch (np.linspace over the warm-up epochs), student 0.1.
 * The weight-decay schedule (0.04 -> 0.4) and per-tensor clipping (3.0) are the trainer's
 * (schedule.wd_end, optim.clip_mode: per_tensor); the recipes in configs/ set them.
 * dino.shard_head: the last layer, its teacher and the centre sharded over ranks (methods/dino_shard.h);
 * the bottleneck rows of all ranks meet at the sharded layer, the loss is the distributed one
 * (framework/layers/dino_loss.h). Prototypes are drawn per row in both modes (ssl_dino_prototypes_init),
 * so replicated and sharded runs on any rank count start alike. */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/layers/dino_loss.h"
#include "framework/layers/wnorm_linear.h"
#include "framework/optim/schedule.h"
#include "framework/tensor/teacher.h"
#include "io/optim_config.h"
#include "methods/dino_shard.h"
#include "methods/heads.h"
#include "methods/method.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    ssl_model *enc[2];       /* the session's encoder (global crops); an instance for the local crops */
    ssl_model enc_local, tenc;
    ssl_mlp mlp, tmlp;
    ssl_wnorm_linear last, tlast; /* replicated last layer */
    int last_seg;            /* its segment index (weight_v) */
    int sharded;             /* dino.shard_head: the last layer is sh instead */
    ssl_dino_shard_head sh;
    ssl_params *params;
    ssl_teacher teacher;
    ssl_dino_loss loss;
    int feat;                /* encoder feature dim */
    /* saved by the step for its backward */
    float *hnorm;
    ssl_tensor hn;
} dino;

/* dino.local_size, or its default: 96/224 of the global size in whole patches (ViTs need them). */
static int local_size(const ssl_config *cfg)
{
    if (cfg->dino.local_size > 0) return cfg->dino.local_size;
    const int p = cfg->model.patch_size > 0 ? cfg->model.patch_size : 1;
    const int n = (int)lround(cfg->model.img_size * 3.0 / 7.0 / p);
    return (n > 0 ? n : 1) * p;
}

static int dino_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    const ssl_config_dino *o = &cfg->dino;
    const int ls = local_size(cfg);
    if (cfg->augment.views != 2) {
        snprintf(err, errlen, "dino takes 2 global crops per image (augment.views: 2; local crops are "
                 "dino.local_crops); augment.views is %d", cfg->augment.views);
        return -1;
    }
    if (2 + o->local_crops > SSL_VIEWS_MAX) {
        snprintf(err, errlen, "dino: 2 global + %d local crops exceed %d views per image", o->local_crops,
                 SSL_VIEWS_MAX);
        return -1;
    }
    if (o->local_crops > 0 && ls > cfg->model.img_size) {
        snprintf(err, errlen, "dino.local_size (%d px) is larger than the global crops' model.img_size (%d px)",
                 ls, cfg->model.img_size);
        return -1;
    }
    if (o->shard_head && (!strcmp(cfg->optim.name, "lars") || !strcmp(cfg->optim.name, "lamb"))) {
        snprintf(err, errlen, "dino.shard_head: optim.name %s needs per-tensor norms of the sharded prototypes; "
                 "use adamw or sgd", cfg->optim.name);
        return -1;
    }
    if (o->shard_head && cfg->optim.clip_grad > 0 && strcmp(cfg->optim.clip_mode, "per_tensor")) {
        snprintf(err, errlen, "dino.shard_head clips the sharded prototypes per tensor; set optim.clip_mode: "
                 "per_tensor (DINO's clip_gradients) or optim.clip_grad: 0");
        return -1;
    }
    v->ngroups = o->local_crops > 0 ? 2 : 1;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    v->group[1] = (ssl_view_group){o->local_crops, ls};
    return 0;
}

/* Local crops (the official DataAugmentationDINO): their own scale range, blur p 0.5, no solarize. */
static void dino_view_pipeline(const ssl_config *cfg, int group, int view, ssl_augment_config *a)
{
    (void)view;
    if (group != 1) return;
    a->crop_scale[0] = (float)cfg->dino.local_scale.v[0];
    a->crop_scale[1] = (float)cfg->dino.local_scale.v[1];
    a->blur_p = 0.5f;
    a->solarize_p = 0.0f;
}

static int dino_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    const ssl_config_dino *o = &cfg->dino;
    dino *d = ssl_calloc(1, sizeof *d);
    m->impl = d;
    d->feat = m->encoder->feat_dim;
    ssl_mlp_spec head = {.layers = 3, .in = d->feat, .hidden = o->hidden_dim, .out = o->bottleneck_dim, .bias = 1,
                         .last_bias = 1, .act = SSL_ACT_GELU, .trunc_std = 0.02f};
    if (ssl_mlp_init(&d->mlp, pl, "head.mlp", &head, err, errlen)) return -1;
    d->sharded = o->shard_head;
    d->last_seg = -1;
    if (!d->sharded) {
        ssl_wnorm_linear_init(&d->last, pl, "head.last_layer", o->bottleneck_dim, o->out_dim, 0, o->out_dim);
        d->last_seg = pl->params->nseg - 1;
        d->tlast = d->last;
        d->tlast.skip_dx = 1;
    }
    d->tmlp = d->mlp;
    ssl_model_instance(&d->enc_local, m->encoder);
    ssl_model_instance(&d->tenc, m->encoder);
    d->enc[0] = m->encoder;
    d->enc[1] = &d->enc_local;
    return 0;
}

static int dino_alloc(ssl_method *m, ssl_ctx *c, ssl_params *params, const ssl_params *buffers, char *err,
                      size_t errlen)
{
    (void)err, (void)errlen;
    dino *d = m->impl;
    const ssl_config_dino *o = &m->cfg->dino;
    d->params = params;
    const uint64_t seed = (uint64_t)m->cfg->run.seed;
    int64_t off = 0, k = o->out_dim;
    if (d->sharded) {
        ssl_optim_config oc = ssl_optim_config_from(m->cfg);
        ssl_dino_shard_head_init(&d->sh, c, c->comm, o->out_dim, o->bottleneck_dim, seed, &oc,
                                 (float)m->cfg->optim.clip_grad);
        off = d->sh.off, k = d->sh.k;
    } else {
        const ssl_segment *sg = &params->seg[d->last_seg];
        float *host = ssl_malloc(sg->n * sizeof(float));
        ssl_dino_prototypes_init(host, 0, o->out_dim, o->bottleneck_dim, seed);
        c->be->upload(params->data + sg->off, host, sg->n * sizeof(float));
        ssl_free(host);
    }
    ssl_teacher_init(&d->teacher, params, params->numel, buffers, buffers->numel); /* all of the student */
    ssl_dino_loss_init(&d->loss, c->be, o->out_dim, off, k, 2 + o->local_crops, (float)o->student_temp,
                       (float)o->center_momentum);
    return 0;
}

static void dino_state(ssl_method *m, ssl_ckpt *ck)
{
    dino *d = m->impl;
    ssl_ckpt_add(ck, "teacher/params", d->teacher.p, d->teacher.n);
    ssl_ckpt_add(ck, "teacher/buffers", d->teacher.buf, d->teacher.nbuf);
    if (!d->sharded) {
        ssl_ckpt_add(ck, "dino/center", d->loss.center, (size_t)d->loss.k);
        return;
    }
    ssl_ckpt_add_sharded(ck, "dino/center", d->loss.center, (size_t)d->loss.k, (size_t)d->loss.off,
                         (size_t)d->loss.K);
    ssl_dino_shard_head_state(&d->sh, ck);
}

static void dino_start(ssl_method *m, ssl_ctx *c, const ssl_weights *w, int resumed)
{
    dino *d = m->impl;
    if (!resumed) ssl_teacher_copy(c, &d->teacher, w);
    if (d->sharded) ssl_dino_shard_head_start(&d->sh, c, resumed);
}

/* Teacher temperature of an epoch: np.linspace(warmup, final, E)[epoch] for epoch < E, then final. */
static double teacher_temp(const ssl_config_dino *o, int64_t epoch)
{
    const int E = o->warmup_teacher_temp_epochs;
    if (epoch >= E) return o->teacher_temp;
    if (E == 1) return o->warmup_teacher_temp;
    return o->warmup_teacher_temp + (o->teacher_temp - o->warmup_teacher_temp) * (double)epoch / (double)(E - 1);
}

/* Rows (N, F) of a then b, contiguous, for one pass of the head over every crop. */
static ssl_tensor concat_rows(ssl_ctx *c, ssl_tensor a, const ssl_tensor *b)
{
    const int64_t F = a.shape[1], ra = a.shape[0], rb = b ? b->shape[0] : 0;
    if (!b) return a;
    ssl_tensor y = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)((ra + rb) * F)), ra + rb, F);
    c->be->copy(c, y.data, a.data, (size_t)(ra * F));
    c->be->copy(c, y.data + ra * F, b->data, (size_t)(rb * F));
    return y;
}

/* Head trunk -> L2: the bottleneck rows (norms into *norm when not NULL). */
static ssl_tensor trunk_forward(ssl_ctx *c, ssl_mlp *mlp, const ssl_weights *w, ssl_tensor f, float **norm)
{
    return ssl_normalized(c, ssl_mlp_forward(c, mlp, w, f, 1), norm);
}

/* Bottleneck rows (views * n of this rank) -> scores against the prototypes: replicated, this rank's
 * rows against all K; sharded, every rank's rows against this rank's k (*R becomes W * n). */
static ssl_tensor last_forward(ssl_ctx *c, dino *d, const ssl_weights *w, ssl_tensor hn, int views, int teacher,
                               int64_t *R)
{
    if (!d->sharded) return ssl_wnorm_linear_forward(c, teacher ? &d->tlast : &d->last, w, hn);
    *R *= c->comm->world;
    return ssl_dino_shard_head_forward(c, &d->sh, ssl_dino_rows_gather(c, c->comm, hn, views), teacher);
}

static double dino_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                        ssl_scalars *out)
{
    dino *d = m->impl;
    const ssl_config_dino *o = &m->cfg->dino;
    const int N = v->n, local = o->local_crops > 0;
    SSL_ASSERTF(v->ngroups == 1 + local, "dino: %d view groups, expected %d", v->ngroups, 1 + local);
    /* student: one encoder pass per resolution, the head once over all crops */
    ssl_tensor fg = d->enc[0]->forward(c, d->enc[0], w, v->group[0], 1), fl = {0};
    if (local) fl = d->enc[1]->forward(c, d->enc[1], w, v->group[1], 1);
    ssl_tensor f = concat_rows(c, fg, local ? &fl : NULL);
    const int vs = 2 + o->local_crops;
    d->hn = trunk_forward(c, &d->mlp, w, f, &d->hnorm);
    int64_t R = N, Rt = N;
    ssl_tensor s = last_forward(c, d, w, d->hn, vs, 0, &R);
    /* teacher: global crops only, no gradient */
    ssl_weights tw = ssl_teacher_weights(&d->teacher);
    ssl_tensor thn = trunk_forward(c, &d->tmlp, &tw, d->tenc.forward(c, &d->tenc, &tw, v->group[0], 1), NULL);
    ssl_tensor t = last_forward(c, d, &tw, thn, 2, 1, &Rt);
    const int64_t rows = s.shape[0], K = s.shape[1];
    float *ds = ssl_arena_floats(&c->act, (size_t)(rows * K));
    ssl_dino_monitors mon;
    const double temp_t = teacher_temp(o, (int64_t)floor(p->epoch));
    double loss = ssl_dino_loss_compute(c, d->sharded ? c->comm : NULL, &d->loss, s.data, t.data, R, (float)temp_t,
                                        ds, &mon);
    ssl_dino_center_accumulate(c, &d->loss, t.data, R);
    /* backward: last layer (sharded: partial sums to the rows' owners, x W for the trainer's average)
     * -> L2 -> trunk -> each resolution's encoder pass */
    ssl_tensor dhn;
    if (d->sharded)
        dhn = ssl_dino_rows_scatter(c, c->comm, ssl_dino_shard_head_backward(c, &d->sh, ssl_tensor_2d(ds, rows, K)), vs,
                                    (float)c->comm->world);
    else {
        dhn = ssl_wnorm_linear_backward(c, &d->last, w, ssl_tensor_2d(ds, rows, K));
        /* the largest segment and the first done: its all-reduce may start under the rest of backward */
        ssl_ctx_grads_done(c, w->g, d->last_seg, d->last_seg + 1);
    }
    const int64_t B = d->hn.shape[1], nr = d->hn.shape[0];
    ssl_tensor dh = ssl_tensor_2d(ssl_arena_floats(&c->act, (size_t)(nr * B)), nr, B);
    c->be->l2norm_bwd(c, nr, B, d->hn.data, d->hnorm, dhn.data, dh.data);
    ssl_tensor df = ssl_mlp_backward(c, &d->mlp, w, dh);
    const int64_t F = d->feat, rg = fg.shape[0];
    if (local) d->enc[1]->backward(c, d->enc[1], w, ssl_tensor_2d(df.data + rg * F, nr - rg, F));
    d->enc[0]->backward(c, d->enc[0], w, ssl_tensor_2d(df.data, rg, F));
    ssl_scalars_add(out, "teacher_entropy", mon.teacher_entropy);
    ssl_scalars_add(out, "kl_uniform", mon.kl_uniform);
    ssl_scalars_add(out, "center_norm", mon.center_norm);
    ssl_scalars_add(out, "teacher_temp", temp_t);
    return loss;
}

static void dino_after_optim(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_progress *p)
{
    dino *d = m->impl;
    /* sharded: every rank saw all rows, and its centre entries are its own */
    ssl_dino_center_apply(c, d->sharded ? NULL : c->comm, &d->loss);
    double mom = ssl_sched_ema_momentum(m->cfg->dino.momentum, (double)p->step, (double)p->total_steps);
    ssl_teacher_ema(c, &d->teacher, w, (float)mom);
    if (d->sharded) ssl_dino_shard_head_update(&d->sh, c, p->lr, p->wd, mom);
}

/* cancel_gradients_last_layer: the prototypes stay as drawn for the first epochs. */
static void dino_on_epoch(ssl_method *m, ssl_ctx *c, int64_t epoch)
{
    (void)c;
    dino *d = m->impl;
    const int frozen = epoch < m->cfg->dino.freeze_last_layer;
    if (d->sharded) {
        ssl_dino_shard_head_freeze(&d->sh, frozen);
        return;
    }
    d->last.freeze = frozen;
    unsigned *flags = &d->params->seg[d->last_seg].flags;
    *flags = frozen ? *flags | SSL_SEG_FROZEN : *flags & ~(unsigned)SSL_SEG_FROZEN;
}

/* The teacher's BatchNorm statistics ran over per-rank batches unless synchronised. */
static void dino_agree(ssl_method *m, ssl_ctx *c)
{
    dino *d = m->impl;
    if (!c->bn_comm && c->comm && c->comm->world > 1 && d->teacher.nbuf)
        ssl_dev_allreduce(c, c->comm, d->teacher.buf, d->teacher.nbuf, SSL_F32, SSL_AVG);
}

static void dino_free(ssl_method *m)
{
    dino *d = m->impl;
    if (!d) return;
    ssl_teacher_free(&d->teacher);
    ssl_dino_loss_free(&d->loss);
    if (d->sharded) ssl_dino_shard_head_free(&d->sh);
    if (d->enc_local.impl) ssl_model_free(&d->enc_local);
    if (d->tenc.impl) ssl_model_free(&d->tenc);
    ssl_free(d);
}

const ssl_method_vtable ssl_method_dino = {
    .name = "dino",
    .summary = "DINO: a student matches an EMA teacher's centred, sharpened prototypes over multi-crop views "
               "(Caron et al. 2021)",
    .freezes = 1,
    .configure = dino_configure,
    .plan = dino_plan,
    .view_pipeline = dino_view_pipeline,
    .alloc = dino_alloc,
    .state = dino_state,
    .start = dino_start,
    .step = dino_step,
    .after_optim = dino_after_optim,
    .on_epoch = dino_on_epoch,
    .agree = dino_agree,
    .free = dino_free,
};
