/* ssl_finetune_resume, _log, _save, _evaluate and _write_json (see finetune.h): the fine-tuning run
 * around its steps, in RUN_DIR/finetune/ as pretraining's in RUN_DIR/. */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/version.h"
#include "framework/train/ckpt_stage.h"
#include "framework/train/finetune.h"
#include "framework/train/views.h"
#include "io/eval_views.h"
#include "framework/train/finetune_weights.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What a fine-tuning checkpoint holds: weights, BN statistics, the optimizer's moments. */
static void ckpt_arrays(ssl_finetuner *f, ssl_ckpt *ck)
{
    ssl_ckpt_add(ck, "params", f->params.data, f->params.numel);
    ssl_ckpt_add(ck, "buffers", f->buffers.data, f->buffers.numel);
    if (f->opt.m) ssl_ckpt_add(ck, "optim/m", f->opt.m, f->params.numel);
    if (f->opt.v) ssl_ckpt_add(ck, "optim/v", f->opt.v, f->params.numel);
}

/* The newest fine-tuning checkpoint (its path in path, its writers' rank count in *world); 1 when
 * there is none. */
static int load_newest(ssl_finetuner *f, char *path, size_t pathlen, int64_t *world, char *err, size_t errlen)
{
    if (!f->cfg.checkpoint.resume) return 1;
    ssl_ckpt ck = {.comm = f->comm};
    ckpt_arrays(f, &ck);
    ssl_ckpt_staging st;
    ssl_ckpt_stage_load(&st, &f->ctx, &ck);
    int found = ssl_ckpt_resume(&ck, f->ckpt_dir, 1, path, pathlen, err, errlen);
    ssl_ckpt_stage_end(&st, found == 0);
    f->config_error = found == SSL_CKPT_INCOMPATIBLE;
    if (found != 0) return found;
    f->step = ck.step;
    *world = ck.world_size;
    ssl_optim_set_step(&f->opt, ck.step);
    return 0;
}

/* The keys that choose a fine-tuning run's labelled samples: another value is another run. */
static const char *const subset_keys[] = {"finetune.label_fraction", "run.seed", "data.train", "data.limit"};

/* A fine-tuning directory holds one run (one finetune.json): resuming it with another label subset
 * or other starting weights would report one run's numbers under the other's settings, so it is a
 * config error. The subset's keys come from the checkpoint's config, the source from source.txt
 * (every rank reads both). */
static int same_run(ssl_finetuner *f, const char *ckpt, const ssl_ft_source *src, char *err, size_t errlen)
{
    char was[1300] = "", now[1300] = "";
    ssl_config prev;
    if (ssl_ckpt_config(ckpt, &prev, err, errlen)) return -1;
    for (size_t i = 0; i < sizeof subset_keys / sizeof subset_keys[0]; i++) {
        const ssl_config_key *k = ssl_config_find(subset_keys[i]);
        ssl_config_format(&prev, k, was, sizeof was);
        ssl_config_format(&f->cfg, k, now, sizeof now);
        if (strcmp(was, now)) {
            snprintf(err, errlen, "%s holds a fine-tuning run with %s %s, not %s: give this one another finetune.name "
                     "(or remove %s to start over)", f->dir, subset_keys[i], was, now, f->dir);
            f->config_error = 1;
            return -1;
        }
    }
    /* A plain rerun continues whatever the directory holds; a source given again must be the recorded
     * one, which begins "checkpoint PATH (", "weights PATH (" or "scratch" (finetune_weights.c). A run
     * without source.txt is not checked. */
    if (src->kind == SSL_FT_FROM_RUN || !f->source_known) return 0;
    char pre[1300];
    if (src->kind == SSL_FT_SCRATCH) snprintf(pre, sizeof pre, "scratch");
    else snprintf(pre, sizeof pre, "%s %s (", src->kind == SSL_FT_FROM_WEIGHTS ? "weights" : "checkpoint", src->path);
    if (strncmp(f->source, pre, strlen(pre))) {
        snprintf(err, errlen, "%s holds a fine-tuning run started from %s; this command asks for %s: give this one "
                 "another finetune.name (or remove %s to start over)", f->dir, f->source,
                 src->kind == SSL_FT_SCRATCH ? "--scratch" : src->path, f->dir);
        f->config_error = 1;
        return -1;
    }
    return 0;
}

/* The source weights of a fresh run into the model (every rank reads the file). */
static int load_source(ssl_finetuner *f, const ssl_ft_source *src, char *err, size_t errlen)
{
    char path[1200];
    const int nseg = f->encoder_segments;
    if ((src->kind == SSL_FT_FROM_WEIGHTS || src->kind == SSL_FT_FROM_CKPT) && access(src->path, R_OK) != 0) {
        snprintf(err, errlen, "%s %s: %s", src->kind == SSL_FT_FROM_CKPT ? "--from" : "--weights", src->path,
                 strerror(errno));
        f->config_error = 1; /* a usage error: every rank sees the same file system */
        return -1;
    }
    switch (src->kind) {
    case SSL_FT_SCRATCH:
        snprintf(f->source, sizeof f->source, "scratch (random init, run.seed %d)", f->cfg.run.seed);
        return 0;
    case SSL_FT_FROM_WEIGHTS:
        return ssl_finetune_from_safetensors(&f->ctx, &f->params, nseg, &f->buffers, src->path, f->source,
                                             sizeof f->source, err, errlen);
    case SSL_FT_FROM_CKPT:
        return ssl_finetune_from_checkpoint(&f->ctx, &f->params, nseg, &f->buffers, f->in_chans, src->path,
                                            f->source, sizeof f->source, err, errlen);
    case SSL_FT_FROM_RUN:
        break;
    }
    char dir[1100];
    ssl_pathf(dir, sizeof dir, "%s/checkpoints", f->run_dir);
    if (ssl_ckpt_find_latest(dir, path, sizeof path)) {
        snprintf(err, errlen, "no pretraining checkpoint in %s (pretrain first, or pass --from, --weights or "
                 "--scratch)", dir);
        return -1;
    }
    return ssl_finetune_from_checkpoint(&f->ctx, &f->params, nseg, &f->buffers, f->in_chans, path, f->source,
                                        sizeof f->source, err, errlen);
}

/* source.txt: what a resumed run started from (the run's newest pretraining checkpoint may be
 * another one by now). */
static void source_file(ssl_finetuner *f, int write)
{
    char path[1300];
    ssl_pathf(path, sizeof path, "%s/source.txt", f->dir);
    FILE *fp = fopen(path, write ? "w" : "r");
    if (!fp) {
        if (!write) snprintf(f->source, sizeof f->source, "unknown (no source.txt)");
        return;
    }
    if (write) fprintf(fp, "%s\n", f->source);
    else if (fgets(f->source, sizeof f->source, fp)) f->source[strcspn(f->source, "\n")] = 0, f->source_known = 1;
    fclose(fp);
}

static int open_metrics(ssl_finetuner *f, char *err, size_t errlen)
{
    char path[1300];
    ssl_pathf(path, sizeof path, "%s/metrics.jsonl", f->dir);
    if (ssl_metrics_open(&f->metrics, path, f->step)) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    f->metrics_open = 1;
    ssl_metrics *m = &f->metrics;
    ssl_metrics_begin(m);
    ssl_metrics_str(m, "event", "start");
    ssl_metrics_time(m, "time", ssl_wall_time());
    ssl_metrics_int(m, "start_step", f->step);
    ssl_metrics_int(m, "total_steps", f->total_steps);
    ssl_metrics_int(m, "ranks", f->comm->world);
    ssl_metrics_int(m, "global_batch", f->batch);
    ssl_metrics_str(m, "source", f->source);
    ssl_metrics_str(m, "sslrun_version", ssl_version);
    ssl_metrics_str(m, "git_commit", ssl_git_commit);
    ssl_metrics_end(m);
    return 0;
}

/* The loader's transform: the batch's training crops, in a reader thread (read-only use of f but for
 * the corrupt-image counter); a corrupt image is handled by data.on_corrupt as in pretraining. */
static int augment(void *ctx, const ssl_batch *b, float *out, void *scratch, char *err, size_t errlen)
{
    ssl_finetuner *f = ctx;
    return ssl_view_pipes_batch(&f->pipes, f->seed, b, f->ds, !strcmp(f->cfg.data.on_corrupt, "stop"), f->comm->rank,
                                &f->corrupt, out, scratch, err, errlen);
}

int ssl_finetune_resume(ssl_finetuner *f, const ssl_ft_source *src, char *err, size_t errlen)
{
    char path[1400];
    int64_t world = 0;
    int found = load_newest(f, path, sizeof path, &world, err, errlen);
    if (found < 0) return -1;
    if (found == 0) {
        source_file(f, 0);
        if (same_run(f, path, src, err, errlen)) return -1;
        if (f->rank0) {
            printf("resumed from %s at step %lld\n", path, (long long)f->step);
            if (world != f->comm->world)
                printf("note: the checkpoint was written by %lld rank(s), this job has %d: same global batch and "
                       "sample order, reductions in another order\n", (long long)world, f->comm->world);
            fflush(stdout); /* before the progress lines on stderr, in a log holding both */
        }
    } else {
        /* every rank reads the same file and should fail alike; agreed anyway, so none is left behind
         * in the broadcast below */
        double bad = load_source(f, src, err, errlen) ? 1.0 : 0.0, any = bad;
        ssl_allreduce(f->comm, &any, 1, SSL_F64, SSL_MAX);
        if (any > 0) {
            if (!bad) snprintf(err, errlen, "another rank could not load the starting weights");
            return -1;
        }
        if (f->rank0) {
            source_file(f, 1);
            printf("starting from %s\n", f->source);
        }
    }
    ssl_dev_broadcast(&f->ctx, f->comm, f->params.data, f->params.numel, SSL_F32, 0);
    ssl_dev_broadcast(&f->ctx, f->comm, f->buffers.data, f->buffers.numel, SSL_F32, 0);
    /* now that this config may run here (a refused one leaves the directory's as it was) */
    char cpath[1300];
    ssl_pathf(cpath, sizeof cpath, "%s/config.yaml", f->dir);
    if (f->rank0 && ssl_config_write_yaml(&f->cfg, cpath, err, errlen)) return -1;
    if (f->rank0 && open_metrics(f, err, errlen)) return -1;
    f->first_step = f->step;
    if (f->step < f->total_steps) {
        const ssl_loader_transform tf = {.fn = augment, .scratch_free = ssl_view_scratch_free, .ctx = f,
                                         .out_floats =
                                             ssl_view_pipes_staging_floats(&f->pipes, f->sampler.local_batch, f->in_chans),
                                         .scratch_bytes = ssl_view_pipes_scratch_bytes(&f->pipes),
                                         .out_alloc = f->ctx.be->host_alloc, .out_free = f->ctx.be->host_free};
        if (ssl_loader_start(&f->loader, f->ds, &f->sampler, f->step / f->steps_per_epoch,
                             f->step % f->steps_per_epoch, f->cfg.data.workers > 0 ? f->cfg.data.workers : 1,
                             f->cfg.data.workers > 2 ? f->cfg.data.workers : 2, &tf,
                             err, errlen))
            return -1;
        f->loader_started = 1;
        ssl_feed_init(&f->feed, &f->ctx, f->sampler.local_batch);
    }
    f->t_start = ssl_now();
    return 0;
}

void ssl_finetune_log(ssl_finetuner *f, const ssl_step_record *r)
{
    const ssl_config *cfg = &f->cfg;
    int log_now = f->rank0 && (r->step % cfg->run.log_every == 0 || r->step == f->total_steps || f->tty);
    if (log_now)
        ssl_train_log_step(&f->metrics, f->tty, "finetune ", r, cfg->finetune.epochs, f->steps_per_epoch,
                           f->total_steps, f->batch, f->ips);
}

int ssl_finetune_save_due(const ssl_finetuner *f, const ssl_step_record *r)
{
    int every = f->cfg.checkpoint.every_steps;
    return (every > 0 && r->step % every == 0) || r->stop || r->step == f->total_steps;
}

/* Per-rank BN statistics (model.sync_bn false) averaged, so a checkpoint or an evaluation sees one
 * model (as the pretraining trainer does). */
static void agree_bn_buffers(ssl_finetuner *f)
{
    if (!f->cfg.model.sync_bn && f->comm->world > 1)
        ssl_dev_allreduce(&f->ctx, f->comm, f->buffers.data, f->buffers.numel, SSL_F32, SSL_AVG);
}

int ssl_finetune_save(ssl_finetuner *f, char *err, size_t errlen)
{
    agree_bn_buffers(f);
    ssl_ckpt ck = {.comm = f->comm, .step = f->step, .epoch = f->step / f->steps_per_epoch,
                   .epoch_step = f->step % f->steps_per_epoch, .world_size = f->comm->world,
                   .in_chans = f->in_chans, .seed = (uint64_t)f->cfg.run.seed};
    ckpt_arrays(f, &ck);
    char *yaml = ssl_config_to_yaml(&f->cfg);
    char *segs = ssl_train_segment_table(&f->params), *bsegs = ssl_train_segment_table(&f->buffers);
    ck.config_yaml = yaml;
    ck.segments = segs;
    ck.buffer_segments = bsegs;
    ssl_ckpt_staging st;
    ssl_ckpt_stage_save(&st, &f->ctx, &ck);
    int rc = ssl_ckpt_save(&ck, f->ckpt_dir, f->cfg.checkpoint.keep, err, errlen);
    ssl_ckpt_stage_end(&st, 0);
    free(yaml);
    ssl_free(segs);
    ssl_free(bsegs);
    return rc;
}

int ssl_finetune_evaluate(ssl_finetuner *f, double *top1, int64_t *ntest, char *err, size_t errlen)
{
    agree_bn_buffers(f);
    double bad = 0, cnt[2] = {0, 0};
    ssl_dataset *ds = ssl_dataset_open(f->cfg.data.test, err, errlen);
    if (!ds || !ssl_dataset_has_labels(ds) || ssl_dataset_channels(ds) != f->in_chans) {
        if (ds) snprintf(err, errlen, "%s: needs labels and %d-channel images", f->cfg.data.test, f->in_chans);
        bad = 1;
    }
    ssl_augment_config a;
    ssl_session_eval_transform(&f->cfg, f->in_chans, &a);
    a.out_size = f->img_size;
    /* this rank's contiguous slice of the test set, in batches; no collective inside (eval-mode BN) */
    const int64_t n = bad ? 0 : ssl_dataset_size(ds), lo = n * f->comm->rank / f->comm->world,
                  hi = n * (f->comm->rank + 1) / f->comm->world;
    const int B = 256, C = f->in_chans, S = f->img_size, K = f->num_classes;
    ssl_eval_reader rd = {0};
    float *x = ssl_malloc((size_t)B * C * S * S * sizeof(float)), *lg = ssl_malloc((size_t)B * K * sizeof(float));
    float *dx = NULL; /* device copy of a batch (ssl_ctx_upload_input) */
    int32_t *y = ssl_malloc((size_t)B * sizeof(int32_t));
    int64_t idx[256];
    ssl_weights w = {f->params.data, NULL, f->buffers.data};
    for (int64_t i0 = lo; i0 < hi && !bad; i0 += B) {
        const int nb = (int)(hi - i0 < B ? hi - i0 : B);
        for (int i = 0; i < nb; i++) idx[i] = i0 + i;
        if (ssl_eval_read_views(&rd, ds, &a, idx, nb, x, y, err, errlen)) {
            bad = 1;
            break;
        }
        ssl_ctx_step_begin(&f->ctx);
        float *in = ssl_ctx_upload_input(&f->ctx, &dx, (size_t)B * C * S * S, x, (size_t)nb * C * S * S);
        ssl_tensor out = f->model.forward(&f->ctx, &f->model, &w, ssl_tensor_4d(in, nb, C, S, S), 0);
        f->ctx.be->download(lg, out.data, (size_t)nb * K * sizeof(float));
        for (int i = 0; i < nb; i++) {
            int best = 0; /* lowest class on ties */
            for (int k = 1; k < K; k++)
                if (lg[(size_t)i * K + k] > lg[(size_t)i * K + best]) best = k;
            cnt[0] += best == y[i];
        }
    }
    ssl_eval_reader_free(&rd);
    ssl_free(x);
    if (dx) f->ctx.be->free(dx);
    ssl_free(lg);
    ssl_free(y);
    if (ds) ssl_dataset_close(ds);
    cnt[1] = bad;
    ssl_allreduce(f->comm, cnt, 2, SSL_F64, SSL_SUM);
    if (cnt[1] > 0) {
        if (!bad) snprintf(err, errlen, "%s: evaluation failed on another rank", f->cfg.data.test);
        return -1;
    }
    *ntest = n;
    *top1 = n ? 100.0 * cnt[0] / (double)n : 0.0;
    if (f->rank0 && f->metrics_open) {
        ssl_metrics_begin(&f->metrics);
        ssl_metrics_str(&f->metrics, "event", "eval");
        ssl_metrics_int(&f->metrics, "at_step", f->step);
        ssl_metrics_num(&f->metrics, "top1", *top1);
        ssl_metrics_end(&f->metrics);
    }
    return 0;
}

int ssl_finetune_write_json(const ssl_finetuner *f, double top1, int64_t ntest, double seconds, char *err,
                            size_t errlen)
{
    char path[1300];
    ssl_pathf(path, sizeof path, "%s/finetune.json", f->dir);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    const ssl_config_finetune *ft = &f->cfg.finetune;
    const int64_t steps = f->step - f->first_step;
    fprintf(fp, "{\"top1\": %.4f, \"test_samples\": %lld, \"label_fraction\": %g, \"train_samples\": %lld, "
                "\"num_classes\": %d, \"epochs\": %d, \"steps\": %lld, \"global_batch\": %d, \"ranks\": %d, "
                "\"images_per_s\": %.2f, \"seconds\": %.2f, \"arch\": \"%s\", \"img_size\": %d, \"lr_peak\": %g, "
                "\"layer_decay\": %g, \"label_smoothing\": %g, \"weight_decay\": %g, \"optimizer\": \"%s\", "
                "\"source\": ",
            top1, (long long)ntest, ft->label_fraction, (long long)f->nsubset, f->num_classes, ft->epochs,
            (long long)f->step, f->batch, f->comm->world, seconds > 0 ? (double)steps * f->batch / seconds : 0.0,
            seconds, f->cfg.model.arch, f->img_size, f->lr_peak, ft->layer_decay, ft->label_smoothing,
            ft->weight_decay, ft->optimizer);
    ssl_json_put_str(fp, f->source); /* a path is the only free text */
    fprintf(fp, "}\n");
    if (fclose(fp)) {
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}
