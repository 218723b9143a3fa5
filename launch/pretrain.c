/* `sslrun CONFIG.yaml [section.key=value ...]`: pretraining. Resolves and prints the config, saves
 * it in the run directory, resumes from the newest checkpoint when there is one, then runs the
 * epochs: prefetching reader -> augmentation -> method step -> schedules -> optimizer, with a live
 * progress line (plain lines when not on a terminal), metrics.jsonl, NaN/inf detection that stops
 * with the step number, checkpoints every N steps and at the end, and SIGTERM/SIGUSR1 handled at a
 * step boundary by checkpointing and exiting 0 (what Slurm/PBS preemption needs). */
#include "framework/core/check.h"
#include "framework/core/timer.h"
#include "framework/optim/schedule.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/loader.h"
#include "io/metrics.h"
#include "io/prep.h"
#include "launch/cli.h"
#include "launch/evaluate.h"
#include "launch/session.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

typedef struct {
    ssl_session s;
    ssl_optim opt;
    ssl_dataset *ds;
    ssl_sampler sampler;
    ssl_loader loader;
    ssl_metrics metrics;
    int64_t steps_per_epoch, total_steps, accum;
    double lr_peak;
    ssl_sched_lr_config lr;
} trainer;

/* Flat arrays a checkpoint holds; the same registration serves save and load. */
static void ckpt_arrays(trainer *t, ssl_ckpt *ck)
{
    ssl_ckpt_add(ck, "params", t->s.params.data, t->s.params.numel);
    ssl_ckpt_add(ck, "buffers", t->s.buffers.data, t->s.buffers.numel);
    if (t->opt.m) ssl_ckpt_add(ck, "optim/m", t->opt.m, t->s.params.numel);
    if (t->opt.v) ssl_ckpt_add(ck, "optim/v", t->opt.v, t->s.params.numel);
}

static char *segment_table(const ssl_params *p)
{
    size_t cap = (size_t)p->nseg * 160 + 1, len = 0;
    char *s = ssl_malloc(cap);
    s[0] = 0;
    for (int i = 0; i < p->nseg; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s %zu %zu\n", p->seg[i].name, p->seg[i].off, p->seg[i].n);
    return s;
}

static int save(trainer *t, int64_t step, int64_t epoch, int64_t epoch_step, char *err, size_t errlen)
{
    ssl_ckpt ck = {.step = step, .epoch = epoch, .epoch_step = epoch_step, .world_size = 1, .in_chans = t->s.in_chans,
                   .seed = (uint64_t)t->s.cfg.run.seed};
    char *yaml = ssl_config_to_yaml(&t->s.cfg);
    char *segs = segment_table(&t->s.params);
    ck.config_yaml = yaml;
    ck.segments = segs;
    ckpt_arrays(t, &ck);
    int rc = ssl_ckpt_save(&ck, t->s.ckpt_dir, t->s.cfg.checkpoint.keep, err, errlen);
    free(yaml);
    ssl_free(segs);
    return rc;
}

static void progress(trainer *t, int tty, int64_t step, int64_t epoch, double loss, double lr,
                     double ips, double eta)
{
    int64_t es = step % t->steps_per_epoch;
    char line[256];
    snprintf(line, sizeof line, "epoch %lld/%d  step %lld/%lld  loss %.4f  lr %.4g  %.1f img/s  ETA %dm%02ds",
             (long long)epoch + 1, t->s.cfg.schedule.epochs, (long long)es + 1, (long long)t->steps_per_epoch,
             loss, lr, ips, (int)(eta / 60), (int)fmod(eta, 60));
    if (tty) fprintf(stderr, "\r%-100s", line);
    else fprintf(stderr, "%s\n", line);
}

/* kNN top-1 on frozen features, so users see representation quality rise during training. */
static int knn_monitor(trainer *t, int64_t step, int64_t epoch, char *err, size_t errlen)
{
    ssl_features tr = {0}, te = {0};
    double top1[8] = {0};
    double t0 = ssl_now();
    int rc = ssl_extract_features(&t->s, t->s.cfg.data.train, t->s.cfg.data.limit, 0, &tr, err, errlen);
    if (!rc) rc = ssl_extract_features(&t->s, t->s.cfg.data.test, 0, 0, &te, err, errlen);
    if (!rc) rc = ssl_eval_knn(&t->s, &tr, &te, top1, err, errlen);
    if (!rc) {
        fprintf(stderr, "%sepoch %lld: kNN top-1 (k=%d) %.2f%% (%.1f s)\n", isatty(2) ? "\n" : "",
                (long long)epoch, t->s.cfg.eval.knn_k.v[0], top1[0], ssl_now() - t0);
        ssl_metrics_begin(&t->metrics);
        ssl_metrics_int(&t->metrics, "step", step);
        ssl_metrics_int(&t->metrics, "epoch", epoch);
        ssl_metrics_num(&t->metrics, "knn_top1", top1[0]);
        ssl_metrics_int(&t->metrics, "knn_k", t->s.cfg.eval.knn_k.v[0]);
        ssl_metrics_end(&t->metrics);
    }
    ssl_features_free(&tr);
    ssl_features_free(&te);
    return rc;
}

static int setup(trainer *t, const ssl_config *cfg, char *err, size_t errlen)
{
    t->ds = ssl_dataset_open(cfg->data.train, err, errlen);
    if (!t->ds) return -1;
    if (ssl_session_init(&t->s, cfg, ssl_dataset_channels(t->ds), err, errlen)) return -1;
    t->accum = cfg->optim.accum_steps;
    if (cfg->data.batch_size % t->accum) {
        snprintf(err, errlen, "data.batch_size %d must divide by optim.accum_steps %lld",
                 cfg->data.batch_size, (long long)t->accum);
        return -1;
    }
    int64_t n = ssl_dataset_size(t->ds);
    if (cfg->data.limit > 0 && cfg->data.limit < n) n = cfg->data.limit;
    int micro = cfg->data.batch_size / (int)t->accum;
    if (ssl_sampler_init(&t->sampler, n, micro, 0, 1, (uint64_t)cfg->run.seed, cfg->data.drop_last, err, errlen))
        return -1;
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
    static const struct { const char *name; ssl_optim_kind kind; } kinds[] = {
        {"sgd", SSL_OPTIM_SGD}, {"adamw", SSL_OPTIM_ADAMW}, {"lars", SSL_OPTIM_LARS}, {"lamb", SSL_OPTIM_LAMB}};
    ssl_optim_kind kind = SSL_OPTIM_SGD;
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(cfg->optim.name, kinds[i].name)) kind = kinds[i].kind;
    ssl_optim_config oc = ssl_optim_config_default(kind);
    oc.momentum = (float)cfg->optim.momentum;
    oc.nesterov = cfg->optim.nesterov;
    oc.beta1 = (float)cfg->optim.beta1;
    oc.beta2 = (float)cfg->optim.beta2;
    oc.eps = (float)cfg->optim.eps;
    oc.eta = (float)cfg->optim.eta;
    oc.grad_scale = 1.0f / (float)t->accum;
    ssl_optim_init(&t->opt, &t->s.ctx, &t->s.params, &oc);
    return 0;
}

int ssl_cmd_pretrain(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: sslrun CONFIG.yaml [section.key=value ...]\n");
        return 2;
    }
    char err[2048];
    ssl_config cfg;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "sslrun: %s\n", err);
        return 2;
    }
    trainer t;
    memset(&t, 0, sizeof t);
    int rc = 1;
    if (setup(&t, &cfg, err, sizeof err)) goto out;
    if (ssl_make_dirs(t.s.ckpt_dir, err, sizeof err)) goto out;
    char path[1200];
    ssl_pathf(path, sizeof path, "%s/config.yaml", t.s.run_dir);
    if (ssl_config_write_yaml(&cfg, path, err, sizeof err)) goto out;
    ssl_config_print(&cfg, stdout);
    printf("data: %lld samples %dx%dx%d from %d shard(s); %lld steps/epoch x %d epochs; batch %d "
           "(micro-batch %d x %lld); peak lr %.4g (%s scaling); %zu parameters\n",
           (long long)t.sampler.n_samples, ssl_dataset_height(t.ds), ssl_dataset_width(t.ds),
           ssl_dataset_channels(t.ds), ssl_dataset_num_shards(t.ds), (long long)t.steps_per_epoch,
           cfg.schedule.epochs, cfg.data.batch_size, cfg.data.batch_size / (int)t.accum,
           (long long)t.accum, t.lr_peak, cfg.optim.lr_scaling, t.s.params.count);

    int64_t step = 0;
    if (cfg.checkpoint.resume && ssl_ckpt_find_latest(t.s.ckpt_dir, path, sizeof path) == 0) {
        ssl_ckpt ck = {0};
        ckpt_arrays(&t, &ck);
        if (ssl_ckpt_load(&ck, path, err, sizeof err)) goto out;
        step = ck.step;
        t.opt.step = ck.step;
        printf("resumed from %s at step %lld\n", path, (long long)step);
    }
    ssl_pathf(path, sizeof path, "%s/metrics.jsonl", t.s.run_dir);
    if (ssl_metrics_open(&t.metrics, path)) {
        snprintf(err, sizeof err, "cannot open %s", path);
        goto out;
    }
    /* loader positions are in micro-batches */
    int64_t epoch = step / t.steps_per_epoch;
    if (ssl_loader_start(&t.loader, t.ds, &t.sampler, epoch, (step % t.steps_per_epoch) * t.accum,
                         cfg.data.workers, 2, err, sizeof err))
        goto out;
    ssl_augment_config aug;
    ssl_session_augment_config(&cfg, t.s.in_chans, &aug);
    if (ssl_augment_config_check(&aug, t.s.in_chans, err, sizeof err)) goto out;
    const int micro = t.sampler.local_batch, S = cfg.model.img_size, C = t.s.in_chans;
    float *views = ssl_malloc((size_t)aug.views * micro * C * S * S * sizeof(float));
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
    int tty = isatty(2);
    double t_start = ssl_now(), ips = 0;
    int64_t first = step;
    const float wd0 = (float)cfg.optim.weight_decay;
    for (; step < t.total_steps; step++) {
        double t0 = ssl_now(), loss = 0;
        ssl_params_zero_grad(&t.s.ctx, &t.s.params);
        for (int64_t a = 0; a < t.accum; a++) {
            ssl_batch b;
            if (ssl_loader_next(&t.loader, &b, err, sizeof err)) goto out_free;
            ssl_augment_batch(&aug, (uint64_t)cfg.run.seed, b.epoch, b.images, b.n, ssl_dataset_height(t.ds),
                              ssl_dataset_width(t.ds), C, b.indices, views);
            ssl_ctx_step_begin(&t.s.ctx);
            ssl_weights w = {t.s.params.data, t.s.params.grad, t.s.buffers.data};
            loss += t.s.method.vt->step(&t.s.method, &t.s.ctx, &w,
                                        ssl_tensor_4d(views, (int64_t)aug.views * b.n, C, S, S), b.n) / t.accum;
        }
        if (!isfinite(loss)) {
            snprintf(err, sizeof err, "step %lld: loss is %g; stopping (lower optim.lr, check the data, or "
                     "resume from the last checkpoint)", (long long)step + 1, loss);
            goto out_free;
        }
        if (cfg.optim.clip_grad > 0)
            ssl_optim_clip_global_norm(&t.s.ctx, &t.s.params, (float)cfg.optim.clip_grad, 1.0f / (float)t.accum);
        double lr = ssl_sched_lr(&t.lr, step);
        double wd = cfg.schedule.wd_end >= 0 ? ssl_sched_wd(wd0, cfg.schedule.wd_end, step, t.total_steps) : wd0;
        ssl_optim_step(&t.opt, &t.s.ctx, (float)lr, (float)wd);
        double dt = ssl_now() - t0;
        double rate = cfg.data.batch_size / dt;
        ips = step == first ? rate : 0.9 * ips + 0.1 * rate; /* EMA, seeded by the first step */
        epoch = (step + 1) / t.steps_per_epoch;
        double eta = (double)(t.total_steps - step - 1) * cfg.data.batch_size / ips;
        if ((step + 1) % cfg.run.log_every == 0 || step + 1 == t.total_steps || tty) {
            progress(&t, tty, step, step / t.steps_per_epoch, loss, lr, ips, eta);
            ssl_metrics_begin(&t.metrics);
            ssl_metrics_int(&t.metrics, "step", step + 1);
            ssl_metrics_int(&t.metrics, "epoch", step / t.steps_per_epoch);
            ssl_metrics_num(&t.metrics, "loss", loss);
            ssl_metrics_num(&t.metrics, "lr", lr);
            ssl_metrics_num(&t.metrics, "img_per_s", ips);
            ssl_metrics_end(&t.metrics);
        }
        int due = cfg.checkpoint.every_steps > 0 && (step + 1) % cfg.checkpoint.every_steps == 0;
        int every = cfg.eval.knn_every_epochs;
        if (every > 0 && (step + 1) % t.steps_per_epoch == 0 && epoch % every == 0 && cfg.data.test[0] &&
            knn_monitor(&t, step + 1, epoch, err, sizeof err))
            goto out_free;
        int budget = cfg.run.max_steps > 0 && step + 1 - first >= cfg.run.max_steps;
        if (budget && !stop_signal) stop_signal = -1;
        if (due || stop_signal || step + 1 == t.total_steps) {
            if (save(&t, step + 1, epoch, (step + 1) % t.steps_per_epoch, err, sizeof err))
                goto out_free;
        }
        if (stop_signal && step + 1 < t.total_steps) {
            if (stop_signal > 0)
                fprintf(stderr, "%ssslrun: signal %d: checkpoint written at step %lld; exiting to be resumed\n",
                        tty ? "\n" : "", (int)stop_signal, (long long)step + 1);
            else
                fprintf(stderr, "%ssslrun: run.max_steps reached: checkpoint written at step %lld\n",
                        tty ? "\n" : "", (long long)step + 1);
            rc = 0;
            goto out_free;
        }
    }
    if (tty) fputc('\n', stderr);
    printf("done: %lld steps in %.1f s, run directory %s\n", (long long)(t.total_steps - first),
           ssl_now() - t_start, t.s.run_dir);
    rc = 0;
out_free:
    ssl_free(views);
out:
    if (rc) fprintf(stderr, "%ssslrun: %s\n", isatty(2) ? "\n" : "", err);
    ssl_loader_stop(&t.loader);
    ssl_metrics_close(&t.metrics);
    ssl_optim_free(&t.opt);
    ssl_sampler_free(&t.sampler);
    if (t.s.params.data) ssl_session_free(&t.s);
    if (t.ds) ssl_dataset_close(t.ds);
    return rc;
}
