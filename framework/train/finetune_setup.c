/* ssl_finetune_setup, ssl_finetune_layer_scales and ssl_finetune_free (see finetune.h). */
#include "framework/comm/binding.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/train/finetune.h"
#include "io/optim_config.h"
#include "io/label_subset.h"
#include "io/prep.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys fine-tuning's sampler and augmentation apart from pretraining's with the same run.seed. */
#define FINETUNE_STREAM 0x46494e4554554e45ull /* "FINETUNE" */

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* Layer id of a parameter name (see finetune.h); -1: "the top", resolved to L + 1 by the caller. */
static int layer_id(const char *name)
{
    int k;
    if (starts(name, "conv_proj.") || !strcmp(name, "class_token") || !strcmp(name, "encoder.pos_embedding"))
        return 0;
    if (sscanf(name, "encoder.layers.encoder_layer_%d.", &k) == 1) return k + 1;
    if (starts(name, "conv1.") || starts(name, "bn1.")) return 0;
    if (sscanf(name, "layer%d.", &k) == 1) return k;
    return -1;
}

void ssl_finetune_layer_scales(const ssl_params *p, double decay, float *scale)
{
    int top = 0; /* the deepest block seen: L */
    for (int i = 0; i < p->nseg; i++) {
        int id = layer_id(p->seg[i].name);
        if (id > top) top = id;
    }
    for (int i = 0; i < p->nseg; i++) {
        int id = layer_id(p->seg[i].name);
        if (id < 0) id = top + 1;
        scale[i] = (float)pow(decay, (double)(top + 1 - id));
    }
}

/* The label_fraction subset of the first data.limit samples (every rank computes it alone). */
static int choose_subset(ssl_finetuner *f, char *err, size_t errlen)
{
    const ssl_config *cfg = &f->cfg;
    const int32_t *labels = ssl_dataset_labels(f->ds);
    if (!labels) {
        snprintf(err, errlen, "%s: fine-tuning needs labels in the training shards", cfg->data.train);
        return -1;
    }
    int64_t n = ssl_dataset_size(f->ds);
    if (cfg->data.limit > 0 && cfg->data.limit < n) n = cfg->data.limit;
    f->npool = n;
    f->num_classes = ssl_dataset_num_classes(f->ds);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] + 1 > f->num_classes) f->num_classes = labels[i] + 1;
    if (f->num_classes < 2) {
        snprintf(err, errlen, "%s: %d class(es); fine-tuning needs at least 2", cfg->data.train, f->num_classes);
        return -1;
    }
    f->subset = ssl_label_subset(labels, n, f->num_classes, cfg->finetune.label_fraction, f->seed, &f->nsubset, err,
                                 errlen);
    return f->subset ? 0 : -1;
}

/* The encoder of model.* with a linear head for the dataset's classes, initialised from run.seed. */
static int build_model(ssl_finetuner *f, char *err, size_t errlen)
{
    const ssl_config *cfg = &f->cfg;
    if (!ssl_session_backend(cfg, err, errlen)) return -1;
    ssl_ctx_init(&f->ctx, cfg->device.backend);
    f->ctx.precision_bf16 = !strcmp(cfg->model.precision, "bf16");
    f->ctx.acts_fp32 = !strcmp(cfg->model.saved_activations, "fp32");
    f->ctx.comm = f->comm;
    f->ctx.bn_comm = cfg->model.sync_bn ? f->comm : NULL;
    ssl_params_init(&f->params);
    ssl_params_init(&f->buffers);
    ssl_plan pl = {&f->params, &f->buffers};
    ssl_model_config mc;
    ssl_model_config_default(&mc, cfg->model.arch);
    mc.in_chans = f->in_chans;
    mc.num_classes = f->num_classes;
    mc.small_stem = cfg->model.small_stem;
    mc.width = cfg->model.width;
    mc.img_size = cfg->model.img_size; /* the pretraining grid: positions resize per call */
    mc.patch_size = cfg->model.patch_size;
    mc.sincos_pos = cfg->model.sincos_pos;
    mc.vit_dim = cfg->model.vit_dim;
    mc.vit_depth = cfg->model.vit_depth;
    mc.vit_heads = cfg->model.vit_heads;
    char e[256];
    if (ssl_model_build(&f->model, &mc, &pl, "", e)) {
        snprintf(err, errlen, "model: %s", e);
        return -1;
    }
    /* both archs plan the head last: weight, bias */
    f->encoder_segments = f->params.nseg - 2;
    SSL_ASSERT(f->encoder_segments > 0 && (starts(f->params.seg[f->encoder_segments].name, "fc.") ||
                                           starts(f->params.seg[f->encoder_segments].name, "heads.head.")));
    ssl_params_alloc(&f->params, f->ctx.be, 1);
    ssl_params_alloc(&f->buffers, f->ctx.be, 0);
    ssl_params_init_values(&f->params, (uint64_t)cfg->run.seed);
    ssl_params_init_values(&f->buffers, (uint64_t)cfg->run.seed);
    return 0;
}

/* Sampler over the subset, schedule, optimizer with the layer scales. */
static int plan_training(ssl_finetuner *f, char *err, size_t errlen)
{
    const ssl_config_finetune *ft = &f->cfg.finetune;
    if (f->batch % f->comm->world) {
        snprintf(err, errlen, "finetune batch %d must divide by the %d ranks", f->batch, f->comm->world);
        f->config_error = 1;
        return -1;
    }
    if (f->cfg.data.drop_last && f->nsubset < f->batch) {
        snprintf(err, errlen, "finetune: %lld labelled samples (label_fraction %g) give no full batch of %d; lower "
                 "finetune.batch_size", (long long)f->nsubset, ft->label_fraction, f->batch);
        f->config_error = 1;
        return -1;
    }
    if (ssl_sampler_init(&f->sampler, f->nsubset, f->batch, f->comm->rank, f->comm->world, f->seed,
                         f->cfg.data.drop_last, err, errlen))
        return -1;
    f->sampler.map = f->subset;
    f->steps_per_epoch = f->sampler.steps_per_epoch;
    f->total_steps = f->steps_per_epoch * ft->epochs;
    f->lr_peak = ssl_sched_lr_scale_linear(ft->lr, f->batch);
    f->lr = (ssl_sched_lr_config){f->lr_peak, 0.0, (int64_t)(ft->warmup_epochs * (double)f->steps_per_epoch),
                                  f->total_steps};
    if (f->lr.warmup_steps >= f->total_steps) f->lr.warmup_steps = f->total_steps - 1;
    /* the reference defaults of finetune.optimizer, not pretraining's optim.*: MAE pretrains with AdamW
     * betas (0.9, 0.95) and fine-tunes with torch's (0.9, 0.999) */
    ssl_optim_config oc = ssl_optim_config_default(ssl_optim_kind_from_name(ft->optimizer));
    ssl_optim_init(&f->opt, &f->ctx, &f->params, &oc);
    const ssl_config_comm *cc = &f->cfg.comm;
    const int overlap = !strcmp(cc->overlap, "on") || (!strcmp(cc->overlap, "auto") && f->comm->dev);
    ssl_grad_sync_init(&f->gsync, overlap, &f->ctx, f->comm, &f->params, cc->bucket_mb);
    f->lr_scale = ssl_malloc((size_t)f->params.nseg * sizeof *f->lr_scale);
    ssl_finetune_layer_scales(&f->params, ft->layer_decay, f->lr_scale);
    f->opt.seg_lr_scale = f->lr_scale;
    return 0;
}

/* Random resized crop + flip at the fine-tuning size, normalised as pretraining; nothing else. */
static int augmentation(ssl_finetuner *f, char *err, size_t errlen)
{
    ssl_augment_config aug, *a = &aug;
    ssl_session_augment_config(&f->cfg, f->in_chans, a);
    a->views = 1;
    a->out_size = f->img_size;
    a->crop_scale[0] = (float)f->cfg.finetune.crop_scale.v[0];
    a->crop_scale[1] = (float)f->cfg.finetune.crop_scale.v[1];
    a->flip_p = (float)f->cfg.finetune.flip_p;
    a->jitter_p = a->grayscale_p = a->blur_p = a->solarize_p = 0.0f;
    char why[512];
    if (ssl_augment_config_check(a, f->in_chans, why, sizeof why)) {
        snprintf(err, errlen, "finetune augmentation: %s", why);
        return -1;
    }
    ssl_view_pipes_single(&f->pipes, a, f->img_size);
    if (ssl_session_augment_on_device(&f->cfg, f->ctx.be)) ssl_view_pipes_use_device(&f->pipes, f->ds, f->sampler.local_batch);
    if (!strncmp(f->cfg.model.arch, "vit", 3) && f->img_size % f->cfg.model.patch_size) {
        snprintf(err, errlen, "finetune.img_size %d is not a multiple of model.patch_size %d", f->img_size,
                 f->cfg.model.patch_size);
        return -1;
    }
    return 0;
}

static void print_plan(const ssl_finetuner *f, const ssl_binding *bind)
{
    const ssl_config_finetune *ft = &f->cfg.finetune;
    printf("finetune: %s + linear head (%d classes) on %lld of %lld labelled samples (label_fraction %g), %dx%d "
           "input; %lld steps/epoch x %d epochs; global batch %d (%d ranks x %d); %s peak lr %.4g (lr x batch / "
           "256), layer_decay %g, label_smoothing %g, weight_decay %g; %zu parameters; %d threads per rank; %s "
           "BatchNorm; precision %s\n",
           f->cfg.model.arch, f->num_classes, (long long)f->nsubset, (long long)f->npool,
           ft->label_fraction, f->img_size, f->img_size, (long long)f->steps_per_epoch, ft->epochs, f->batch,
           f->comm->world, f->sampler.local_batch, ft->optimizer, f->lr_peak, ft->layer_decay, ft->label_smoothing,
           ft->weight_decay, f->params.count, omp_get_max_threads(),
           f->cfg.model.sync_bn && f->comm->world > 1 ? "synchronised" : "per-rank", ssl_precision_describe(&f->ctx));
    char line[768];
    ssl_binding_describe(bind, f->comm->rank, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
}

int ssl_finetune_setup(ssl_finetuner *f, const ssl_config *cfg, ssl_comm *comm, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    ssl_config_finetune *ft = &f->cfg.finetune;
    f->batch = ft->batch_size > 0 ? ft->batch_size : cfg->data.batch_size;
    f->img_size = ft->img_size > 0 ? ft->img_size : cfg->model.img_size;
    ft->batch_size = f->batch, ft->img_size = f->img_size; /* the resolved config says what ran */
    f->comm = comm;
    f->rank0 = comm->rank == 0;
    f->tty = f->rank0 && isatty(2);
    f->seed = ssl_rng_hash((uint64_t)cfg->run.seed, FINETUNE_STREAM);
    ssl_binding bind; /* before anything touches a device: it picks this rank's */
    if (ssl_session_bind(cfg, comm, &bind, err, errlen)) return -1;
    ssl_pathf(f->run_dir, sizeof f->run_dir, "%s/%s", cfg->run.out_dir, cfg->run.name);
    ssl_pathf(f->dir, sizeof f->dir, "%s/%s", f->run_dir, cfg->finetune.name);
    ssl_pathf(f->ckpt_dir, sizeof f->ckpt_dir, "%s/checkpoints", f->dir);
    if (!cfg->data.test[0]) {
        snprintf(err, errlen, "finetune needs data.test for its top-1");
        f->config_error = 1;
        return -1;
    }
    f->ds = ssl_dataset_open(cfg->data.train, err, errlen);
    if (!f->ds) return -1;
    f->in_chans = ssl_dataset_channels(f->ds);
    if (choose_subset(f, err, errlen) || build_model(f, err, errlen) || plan_training(f, err, errlen) ||
        augmentation(f, err, errlen))
        return -1;
    const size_t nb = (size_t)f->sampler.local_batch;
    f->labels = ssl_malloc(nb * sizeof(int32_t));
    if (f->rank0 && ssl_make_dirs(f->ckpt_dir, err, errlen)) return -1;
    if (f->rank0) print_plan(f, &bind); /* config.yaml: once the resume accepts this config */
    ssl_barrier(comm);
    if (!f->rank0) ssl_binding_report(&bind, comm->rank);
    return 0;
}

void ssl_finetune_free(ssl_finetuner *f)
{
    if (f->ctx.be) ssl_feed_free(&f->feed, &f->ctx); /* its copy in flight reads a loader slot */
    if (f->loader_started) ssl_loader_stop(&f->loader);
    if (f->metrics_open) ssl_metrics_close(&f->metrics);
    ssl_free(f->labels);
    ssl_optim_free(&f->opt);
    ssl_grad_sync_free(&f->gsync);
    ssl_free(f->lr_scale);
    ssl_sampler_free(&f->sampler);
    if (f->model.impl) ssl_model_free(&f->model);
    if (f->ctx.be) {
        ssl_params_free(&f->params);
        ssl_params_free(&f->buffers);
        ssl_ctx_free(&f->ctx);
    }
    ssl_free(f->subset);
    if (f->ds) ssl_dataset_close(f->ds);
    memset(f, 0, sizeof *f);
}
