/* ssl_train_resume (see trainer.h). */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/version.h"
#include "framework/train/ckpt_stage.h"
#include "framework/train/trainer.h"

#include <stdio.h>
#include <string.h>

/* The newest checkpoint that loads (rank 0 lists the directory, every rank loads); 1 when there is
 * none (a fresh run). */
static int load_newest(ssl_trainer *t, char *err, size_t errlen)
{
    const ssl_config *cfg = &t->s.cfg;
    if (!cfg->checkpoint.resume) return 1;
    char path[1200];
    ssl_ckpt ck = {.comm = t->comm};
    ssl_session_ckpt_arrays(&t->s, &ck, &t->opt);
    ssl_ckpt_staging st;
    ssl_ckpt_stage_load(&st, &t->s.ctx, &ck);
    int found = ssl_ckpt_resume(&ck, t->s.ckpt_dir, 1, path, sizeof path, err, errlen);
    ssl_ckpt_stage_end(&st, found == 0);
    t->config_error = found == SSL_CKPT_INCOMPATIBLE;
    if (found != 0) return found;
    t->step = ck.step;
    if (t->s.method.vt->freezes) t->opt.step = ck.step; /* per-segment counts loaded with the arrays */
    else ssl_optim_set_step(&t->opt, ck.step);
    if (t->rank0) {
        printf("resumed from %s at step %lld\n", path, (long long)t->step);
        if (ck.world_size != t->comm->world)
            printf("note: the checkpoint was written by %lld rank(s), this job has %d: same global batch "
                   "and sample order, but reductions run in another order, so the run is no longer "
                   "bit-identical to an uninterrupted one\n",
                   (long long)ck.world_size, t->comm->world);
        fflush(stdout); /* before the progress lines on stderr, in a log holding both */
    }
    return 0;
}

static int open_metrics(ssl_trainer *t, char *err, size_t errlen)
{
    char path[1200];
    ssl_pathf(path, sizeof path, "%s/metrics.jsonl", t->s.run_dir);
    if (ssl_metrics_open(&t->metrics, path, t->step)) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    t->metrics_open = 1;
    /* a run header per invocation: what produced the records that follow */
    ssl_metrics_begin(&t->metrics);
    ssl_metrics_str(&t->metrics, "event", "start");
    ssl_metrics_time(&t->metrics, "time", ssl_wall_time());
    ssl_metrics_int(&t->metrics, "start_step", t->step);
    ssl_metrics_int(&t->metrics, "total_steps", t->total_steps);
    ssl_metrics_int(&t->metrics, "ranks", t->comm->world);
    ssl_metrics_int(&t->metrics, "global_batch", t->s.cfg.data.batch_size);
    ssl_metrics_str(&t->metrics, "method", t->s.cfg.method.name);
    ssl_metrics_str(&t->metrics, "sslrun_version", ssl_version);
    ssl_metrics_str(&t->metrics, "git_commit", ssl_git_commit);
    ssl_metrics_end(&t->metrics);
    return 0;
}

/* The loader's transform: a micro-batch's views, in a reader thread (read-only use of t but for the
 * corrupt-image counter). */
static int augment(void *ctx, const ssl_batch *b, float *out, void *scratch, char *err, size_t errlen)
{
    ssl_trainer *t = ctx;
    const int stop = !strcmp(t->s.cfg.data.on_corrupt, "stop");
    return ssl_view_pipes_batch(&t->pipes, (uint64_t)t->s.cfg.run.seed, b, t->ds, stop, t->comm->rank, &t->corrupt,
                                out, scratch, err, errlen);
}

int ssl_train_resume(ssl_trainer *t, char *err, size_t errlen)
{
    int found = load_newest(t, err, errlen);
    if (found < 0) return -1;
    /* now that this config may run here (one refused, such as another model's, leaves the run's as it was) */
    char path[1200];
    ssl_pathf(path, sizeof path, "%s/config.yaml", t->s.run_dir);
    if (t->rank0 && ssl_config_write_yaml(&t->s.cfg, path, err, errlen)) return -1;
    /* one set of weights: rank 0's (identical already when seeded or loaded alike; now guaranteed) */
    ssl_dev_broadcast(&t->s.ctx, t->comm, t->s.params.data, t->s.params.numel, SSL_F32, 0);
    ssl_dev_broadcast(&t->s.ctx, t->comm, t->s.buffers.data, t->s.buffers.numel, SSL_F32, 0);
    ssl_method *m = &t->s.method;
    ssl_weights w = {t->s.params.data, t->s.params.grad, t->s.buffers.data};
    if (m->vt->start) m->vt->start(m, &t->s.ctx, &w, found == 0);
    if (t->rank0 && open_metrics(t, err, errlen)) return -1;
    t->first_step = t->step;
    int64_t epoch = t->step / t->steps_per_epoch;
    if (m->vt->on_epoch) m->vt->on_epoch(m, &t->s.ctx, epoch);
    /* loader positions are in micro-batches; a slot ahead per reader thread (with fewer, the extra
     * threads would only wait) */
    const int workers = t->s.cfg.data.workers > 0 ? t->s.cfg.data.workers : 1;
    const ssl_loader_transform tf = {.fn = augment, .scratch_free = ssl_view_scratch_free, .ctx = t,
                                     .out_floats =
                                         ssl_view_pipes_staging_floats(&t->pipes, t->sampler.local_batch, t->s.in_chans),
                                     .scratch_bytes = ssl_view_pipes_scratch_bytes(&t->pipes),
                                     .out_alloc = t->s.ctx.be->host_alloc, .out_free = t->s.ctx.be->host_free};
    if (ssl_loader_start(&t->loader, t->ds, &t->sampler, epoch, (t->step % t->steps_per_epoch) * t->accum,
                         workers, workers > 2 ? workers : 2, &tf, err, errlen))
        return -1;
    t->loader_started = 1;
    ssl_feed_init(&t->feed, &t->s.ctx, t->sampler.local_batch);
    t->t_start = ssl_now();
    return 0;
}
