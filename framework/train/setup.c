/* ssl_train_setup and ssl_train_free (see trainer.h). */
#include "framework/comm/binding.h"
#include "framework/comm/comm.h"
#include "framework/comm/device.h"
#include "framework/core/check.h"
#include "framework/train/trainer.h"
#include "io/optim_config.h"
#include "io/prep.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Batch geometry, sampler and schedules. */
static int plan_steps(ssl_trainer *t, const ssl_config *cfg, char *err, size_t errlen)
{
    t->accum = cfg->optim.accum_steps;
    if (cfg->data.batch_size % t->accum) {
        snprintf(err, errlen, "data.batch_size %d must divide by optim.accum_steps %lld", cfg->data.batch_size,
                 (long long)t->accum);
        return -1;
    }
    int64_t n = ssl_dataset_size(t->ds);
    if (cfg->data.limit > 0 && cfg->data.limit < n) n = cfg->data.limit;
    int micro = cfg->data.batch_size / (int)t->accum;
    if (micro % t->comm->world) {
        snprintf(err, errlen, "data.batch_size %d (micro-batch %d) must divide by the %d ranks", cfg->data.batch_size,
                 micro, t->comm->world);
        return -1;
    }
    if (ssl_sampler_init(&t->sampler, n, micro, t->comm->rank, t->comm->world, (uint64_t)cfg->run.seed,
                         cfg->data.drop_last, err, errlen))
        return -1;
    if (!strcmp(cfg->data.sampling, "local")) ssl_sampler_set_local(&t->sampler);
    t->steps_per_epoch = t->sampler.steps_per_epoch / t->accum;
    if (t->steps_per_epoch < 1) {
        snprintf(err, errlen, "data: %lld samples give no full batch of %d", (long long)n, cfg->data.batch_size);
        return -1;
    }
    t->total_steps = t->steps_per_epoch * cfg->schedule.epochs;
    double base = cfg->optim.lr;
    if (!strcmp(cfg->optim.lr_scaling, "linear")) base = ssl_sched_lr_scale_linear(base, cfg->data.batch_size);
    else if (!strcmp(cfg->optim.lr_scaling, "sqrt")) base = ssl_sched_lr_scale_sqrt(base, cfg->data.batch_size);
    t->lr_peak = base;
    t->lr = (ssl_sched_lr_config){base, cfg->schedule.final_lr,
                                  (int64_t)(cfg->schedule.warmup_epochs * t->steps_per_epoch), t->total_steps};
    if (t->lr.warmup_steps >= t->total_steps) t->lr.warmup_steps = t->total_steps - 1;
    return 0;
}

static void print_plan(const ssl_trainer *t, const ssl_config *cfg, const ssl_binding *bind)
{
    const ssl_comm *comm = t->comm;
    ssl_config_print(cfg, stdout);
    printf("data: %lld samples %dx%dx%d from %d shard(s); %lld steps/epoch x %d epochs; global batch %d "
           "(%d ranks x %d per rank, x %lld accumulation); peak lr %.4g (%s scaling of the global "
           "batch); %zu parameters\n",
           (long long)t->sampler.n_samples, ssl_dataset_height(t->ds), ssl_dataset_width(t->ds),
           ssl_dataset_channels(t->ds), ssl_dataset_num_shards(t->ds), (long long)t->steps_per_epoch,
           cfg->schedule.epochs, cfg->data.batch_size, comm->world, t->sampler.local_batch, (long long)t->accum,
           t->lr_peak, cfg->optim.lr_scaling, t->s.params.count);
    if (t->sampler.local)
        printf("data.sampling local: each rank reads its own 1/%d of the samples (rank 0: [0, %lld))\n", comm->world,
               (long long)(t->sampler.n_samples / comm->world));
    printf("method: %s\n", t->s.method.vt->summary);
    printf("ranks: %d on %d node(s), up to %d per node; %d CPU threads per rank; %s BatchNorm; comm %s; device "
           "collectives %s; precision %s\n",
           comm->world, comm->nodes, comm->local_world, omp_get_max_threads(),
           cfg->model.sync_bn && comm->world > 1 ? "synchronised" : "per-rank", comm->ops->name,
           ssl_dev_comm_name(comm, t->s.ctx.be), ssl_precision_describe(&t->s.ctx));
    if (t->pipes.device)
        printf("augmentation: on the device (the readers stage source pixels and parameters, up to %.1f MB a "
               "micro-batch; the backend's augment op makes the views)\n",
               (double)ssl_view_pipes_staging_floats(&t->pipes, t->sampler.local_batch, t->s.in_chans) * 4 / 1e6);
    else
        printf("augmentation: in the reader threads\n");
    if (t->gsync.on)
        printf("gradient all-reduce: %d buckets of up to %g MB, each started as soon as backward has finished it\n",
               t->gsync.nb, cfg->comm.bucket_mb);
    else if (comm->world > 1)
        printf("gradient all-reduce: one, after backward%s\n",
               strcmp(cfg->comm.overlap, "off") ? " (comm.overlap auto: on with a device communicator)" : "");
    char line[768];
    ssl_binding_describe(bind, comm->rank, line, sizeof line);
    printf("%s\n", line);
    fflush(stdout);
}

/* The kNN monitor's data, checked now rather than at the end of the first epoch it runs in: data.test
 * opens, both sets have labels, and the channels agree. */
static int knn_monitor_data(const ssl_config *cfg, const ssl_dataset *train, char *err, size_t errlen)
{
    if (cfg->eval.knn_every_epochs <= 0 || !cfg->data.test[0]) return 0;
    if (!ssl_dataset_has_labels(train)) {
        snprintf(err, errlen, "eval.knn_every_epochs: %s has no labels for the kNN monitor", cfg->data.train);
        return -1;
    }
    char why[1024];
    ssl_dataset *ds = ssl_dataset_open(cfg->data.test, why, sizeof why);
    if (!ds) {
        snprintf(err, errlen, "data.test (the kNN monitor's, eval.knn_every_epochs): %s", why);
        return -1;
    }
    int bad = !ssl_dataset_has_labels(ds) || ssl_dataset_channels(ds) != ssl_dataset_channels(train);
    if (bad)
        snprintf(err, errlen, "data.test (the kNN monitor's, eval.knn_every_epochs) %s: needs labels and %d-channel "
                 "images as data.train", cfg->data.test, ssl_dataset_channels(train));
    ssl_dataset_close(ds);
    return bad ? -1 : 0;
}

int ssl_train_setup(ssl_trainer *t, const ssl_config *cfg, ssl_comm *comm, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->comm = comm;
    t->rank0 = comm->rank == 0;
    t->tty = t->rank0 && isatty(2);
    if (!cfg->data.train[0]) {
        snprintf(err, errlen, "data.train is empty: give the training shards (a glob such as data/train-*.h5)");
        t->config_error = 1;
        return -1;
    }
    ssl_binding bind; /* before anything touches a device: it picks this rank's */
    if (ssl_session_bind(cfg, comm, &bind, err, errlen)) return -1;
    t->ds = ssl_dataset_open(cfg->data.train, err, errlen);
    if (!t->ds) return -1;
    if (knn_monitor_data(cfg, t->ds, err, errlen)) return -1;
    if (ssl_session_init(&t->s, cfg, ssl_dataset_channels(t->ds), comm, err, errlen)) return -1;
    t->s.ctx.bn_comm = cfg->model.sync_bn ? comm : NULL;
    t->s.ctx.prof = &t->prof;
    if (plan_steps(t, cfg, err, errlen)) return -1;
    ssl_optim_config oc = ssl_optim_config_from(cfg);
    oc.grad_scale = 1.0f / (float)t->accum;
    ssl_optim_init(&t->opt, &t->s.ctx, &t->s.params, &oc);
    const int overlap = !strcmp(cfg->comm.overlap, "on") || (!strcmp(cfg->comm.overlap, "auto") && comm->dev);
    ssl_grad_sync_init(&t->gsync, overlap, &t->s.ctx, comm, &t->s.params, cfg->comm.bucket_mb);

    if (ssl_view_pipes_init(&t->pipes, t->s.method.vt, &t->s.method.views, cfg, t->s.in_chans, err, errlen)) return -1;
    if (ssl_session_augment_on_device(cfg, t->s.ctx.be)) ssl_view_pipes_use_device(&t->pipes, t->ds, t->sampler.local_batch);
    for (int g = 0; g < t->pipes.plan.ngroups; g++) /* ViTs resize their positions to any patch grid */
        if (!strncmp(cfg->model.arch, "vit", 3) && t->pipes.plan.group[g].size % cfg->model.patch_size) {
            snprintf(err, errlen, "%s: view group %d is %d px, not a multiple of model.patch_size %d", cfg->method.name,
                     g, t->pipes.plan.group[g].size, cfg->model.patch_size);
            return -1;
        }

    if (t->rank0 && ssl_make_dirs(t->s.ckpt_dir, err, errlen)) return -1;
    if (t->rank0) print_plan(t, cfg, &bind); /* config.yaml: once the resume accepts this config */
    ssl_barrier(comm); /* the run directory exists before anyone looks into it */
    if (!t->rank0) ssl_binding_report(&bind, comm->rank); /* after rank 0's plan, most likely */
    return 0;
}

void ssl_train_free(ssl_trainer *t)
{
    if (t->s.params.data) ssl_feed_free(&t->feed, &t->s.ctx); /* its copy in flight reads a loader slot */
    if (t->loader_started) ssl_loader_stop(&t->loader);
    if (t->metrics_open) ssl_metrics_close(&t->metrics);
    ssl_optim_free(&t->opt);
    ssl_grad_sync_free(&t->gsync);
    ssl_prof_free(&t->prof);
    ssl_sampler_free(&t->sampler);
    if (t->s.params.data) ssl_session_free(&t->s);
    if (t->ds) ssl_dataset_close(t->ds);
    memset(t, 0, sizeof *t);
}
