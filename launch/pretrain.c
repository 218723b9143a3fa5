/* `sslrun CONFIG.yaml [section.key=value ...]`: pretraining. Resolves and prints the config, saves
 * it in the run directory, resumes from the newest checkpoint when there is one, then runs the
 * epochs: prefetching reader -> augmentation -> method step -> schedules -> optimizer, with a live
 * progress line (plain lines when not on a terminal), metrics.jsonl, NaN/inf detection that stops
 * with the step number, checkpoints every N steps and at the end, and SIGTERM/SIGUSR1 handled at a
 * step boundary by checkpointing and exiting 0 (what Slurm/PBS preemption needs).
 *
 * Data parallel over MPI (`mpirun -np P sslrun CONFIG.yaml`): data.batch_size is the global batch,
 * each rank takes a contiguous 1/P of every step's samples; parameters start from rank 0's;
 * gradients are averaged with one all-reduce over the flat buffer; SimCLR negatives are gathered
 * and BN statistics synchronised inside the method step (ctx->comm, ctx->bn_comm). The loss and
 * the stop flag (signal, NaN) travel in one small all-reduce per step so that every rank takes the
 * same decision at the same step boundary. An error on any rank ends the whole job (MPI_Abort)
 * with "rank R: message". Only rank 0 prints progress and writes metrics. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"
#include "framework/core/version.h"
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
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

/* The job communicator for the abort hook (SSL_ASSERT failures anywhere end every rank). */
static ssl_comm *job_comm;
static void abort_job(void)
{
    if (job_comm && job_comm->world > 1) job_comm->ops->abort(job_comm, 1);
}

/* Seconds per step phase, accumulated over the run (the step breakdown printed at the end). */
typedef struct {
    double data, compute, grad_comm, optim, total;
    int64_t steps;
} phase_times;

typedef struct {
    ssl_session s;
    ssl_comm *comm;
    int rank0;
    ssl_prof prof;
    phase_times times;
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

/* "name offset count d0,d1,..\n" per tensor: with the flat arrays, enough to rebuild a state_dict
 * from the file alone (h5py + numpy). */
static char *segment_table(const ssl_params *p)
{
    size_t cap = (size_t)p->nseg * 200 + 1, len = 0;
    char *s = ssl_malloc(cap);
    s[0] = 0;
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *g = &p->seg[i];
        len += (size_t)snprintf(s + len, cap - len, "%s %zu %zu ", g->name, g->off, g->n);
        for (int d = 0; d < g->ndim; d++)
            len += (size_t)snprintf(s + len, cap - len, "%s%lld", d ? "," : "", (long long)g->shape[d]);
        len += (size_t)snprintf(s + len, cap - len, "%s\n", g->ndim ? "" : "1");
    }
    return s;
}

/* An order-dependent 64-bit fingerprint of a float array's bits (one pass, ~10 GB/s). */
static uint64_t fingerprint(const float *x, size_t n, uint64_t h)
{
    const uint32_t *u = (const uint32_t *)(const void *)x;
    for (size_t i = 0; i < n; i++) h = (h ^ u[i]) * 0x100000001b3ull + (i | 1);
    return h;
}

/* Data parallelism keeps every rank's weights bit-identical; a rank that drifted (a lost update, a
 * memory error, a non-deterministic kernel) would make the checkpoint a mixture of models, since
 * each rank writes a slice. Checked before every save: fingerprints of parameters, BN buffers and
 * optimizer state, min and max over ranks. Fault injection for tests: SSL_FAULT_DIVERGE_RANK=R
 * makes rank R change one parameter first. */
static int replicas_agree(trainer *t, int64_t step, char *err, size_t errlen)
{
    if (t->comm->world == 1) return 0;
    const char *f = getenv("SSL_FAULT_DIVERGE_RANK");
    if (f && *f && atoi(f) == t->comm->rank) t->s.params.data[0] += 1e-3f;
    uint64_t h = fingerprint(t->s.params.data, t->s.params.numel, 0xcbf29ce484222325ull);
    h = fingerprint(t->s.buffers.data, t->s.buffers.numel, h);
    if (t->opt.m) h = fingerprint(t->opt.m, t->s.params.numel, h);
    if (t->opt.v) h = fingerprint(t->opt.v, t->s.params.numel, h);
    int64_t v[2] = {(int64_t)(h >> 1), -(int64_t)(h >> 1)}; /* max and -min in one all-reduce */
    ssl_allreduce(t->comm, v, 2, SSL_I64, SSL_MAX);
    if (v[0] == -v[1]) return 0;
    snprintf(err, errlen, "step %lld: the ranks hold different weights (replicas diverged); not writing a "
             "checkpoint of mixed models. Resume from the last checkpoint; if this repeats, suspect a node",
             (long long)step);
    return -1;
}

/* Per-rank BN (model.sync_bn false) leaves each rank its own running statistics. Before a
 * checkpoint or an evaluation every rank takes their mean (as timm's distribute_bn), so both see
 * one model rather than a slice of each rank's. */
static void agree_bn_buffers(trainer *t)
{
    if (!t->s.cfg.model.sync_bn && t->comm->world > 1)
        ssl_allreduce(t->comm, t->s.buffers.data, t->s.buffers.numel, SSL_F32, SSL_AVG);
}

static int save(trainer *t, int64_t step, int64_t epoch, int64_t epoch_step, char *err, size_t errlen)
{
    agree_bn_buffers(t);
    if (replicas_agree(t, step, err, errlen)) return -1;
    ssl_ckpt ck = {.comm = t->comm, .step = step, .epoch = epoch, .epoch_step = epoch_step,
                   .world_size = t->comm->world, .in_chans = t->s.in_chans, .seed = (uint64_t)t->s.cfg.run.seed};
    char *yaml = ssl_config_to_yaml(&t->s.cfg);
    char *segs = segment_table(&t->s.params), *bsegs = segment_table(&t->s.buffers);
    ck.config_yaml = yaml;
    ck.segments = segs;
    ck.buffer_segments = bsegs;
    ckpt_arrays(t, &ck);
    int rc = ssl_ckpt_save(&ck, t->s.ckpt_dir, t->s.cfg.checkpoint.keep, err, errlen);
    free(yaml);
    ssl_free(segs);
    ssl_free(bsegs);
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

/* kNN top-1 on frozen features, so users see representation quality rise during training. All
 * ranks extract their share and vote for their share of the test set (ssl_extract_features_all),
 * so the monitor scales with ranks and no rank idles in a collective while another computes. */
static int knn_monitor(trainer *t, int64_t step, int64_t epoch, char *err, size_t errlen)
{
    ssl_features tr = {0}, te = {0};
    double top1[8] = {0};
    double t0 = ssl_now();
    t->s.ctx.prof = NULL; /* not part of the step breakdown */
    agree_bn_buffers(t);
    int rc = ssl_extract_features_all(&t->s, t->comm, t->s.cfg.data.train, t->s.cfg.eval.train_limit, &tr, err, errlen);
    if (!rc) rc = ssl_extract_features_all(&t->s, t->comm, t->s.cfg.data.test, 0, &te, err, errlen);
    double t1 = ssl_now();
    if (!rc) rc = ssl_eval_knn_all(&t->s, t->comm, &tr, &te, top1, err, errlen);
    if (!rc && t->rank0) {
        fprintf(stderr, "%sepoch %lld: kNN top-1 (k=%d) %.2f%% (%.1f s on %d rank(s): features %.1f s, kNN %.1f s)\n",
                isatty(2) ? "\n" : "", (long long)epoch, t->s.cfg.eval.knn_k.v[0], top1[0], ssl_now() - t0,
                t->comm->world, t1 - t0, ssl_now() - t1);
        ssl_metrics_begin(&t->metrics);
        ssl_metrics_int(&t->metrics, "step", step);
        ssl_metrics_int(&t->metrics, "epoch", epoch);
        ssl_metrics_num(&t->metrics, "knn_top1", top1[0]);
        ssl_metrics_int(&t->metrics, "knn_k", t->s.cfg.eval.knn_k.v[0]);
        ssl_metrics_num(&t->metrics, "knn_s", ssl_now() - t0);
        ssl_metrics_end(&t->metrics);
    }
    ssl_features_free(&tr);
    ssl_features_free(&te);
    t->s.ctx.prof = &t->prof;
    return rc;
}

static int setup(trainer *t, const ssl_config *cfg, char *err, size_t errlen)
{
    t->ds = ssl_dataset_open(cfg->data.train, err, errlen);
    if (!t->ds) return -1;
    if (ssl_session_init(&t->s, cfg, ssl_dataset_channels(t->ds), err, errlen)) return -1;
    t->s.ctx.comm = t->comm;
    t->s.ctx.bn_comm = cfg->model.sync_bn ? t->comm : NULL;
    t->s.ctx.prof = &t->prof;
    t->accum = cfg->optim.accum_steps;
    if (cfg->data.batch_size % t->accum) {
        snprintf(err, errlen, "data.batch_size %d must divide by optim.accum_steps %lld",
                 cfg->data.batch_size, (long long)t->accum);
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

/* CPU ranks share the node's cores: unless the user chose (device.threads, OMP_NUM_THREADS), a rank
 * bound by the launcher uses the cores it was given, an unbound one its share of the node. */
static int rank_threads(const ssl_config *cfg, const ssl_comm *comm)
{
    if (cfg->device.threads > 0) return cfg->device.threads;
    if (getenv("OMP_NUM_THREADS")) return omp_get_max_threads();
    int avail = omp_get_num_procs(), online = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int n = avail < online ? avail : online / comm->local_world;
    return n < 1 ? 1 : n;
}

/* Rank 0 prints the per-rank step breakdown: where the time goes, and how much is communication. */
static void print_breakdown(trainer *t)
{
    ssl_comm *c = t->comm;
    const int K = 9;
    double mine[9] = {0}, *all = ssl_malloc((size_t)K * (size_t)c->world * sizeof(double));
    double n = t->times.steps > 0 ? (double)t->times.steps : 1.0;
    double fwd = 0, bwd = 0;
    for (int b = 0; b < SSL_PROF_COUNT; b++) {
        const char *nm = ssl_prof_names[b];
        size_t l = strlen(nm);
        if (l > 4 && !strcmp(nm + l - 4, " fwd")) fwd += t->prof.seconds[b];
        if (l > 4 && !strcmp(nm + l - 4, " bwd")) bwd += t->prof.seconds[b];
    }
    double instep = fmax(0.0, c->stats.seconds[SSL_COLL_ALLGATHER] + c->stats.seconds[SSL_COLL_REDUCE_SCATTER] +
                                  c->stats.seconds[SSL_COLL_ALLREDUCE] - t->times.grad_comm);
    mine[0] = t->times.data / n;
    mine[1] = fwd / n;
    mine[2] = bwd / n;
    mine[3] = t->times.compute / n;
    mine[4] = instep / n;
    mine[5] = t->times.grad_comm / n;
    mine[6] = t->times.optim / n;
    mine[7] = t->times.total / n;
    mine[8] = (instep + t->times.grad_comm) / (t->times.total > 0 ? t->times.total : 1);
    ssl_allgather(c, mine, all, (size_t)K, SSL_F64);
    if (t->rank0) {
        printf("step breakdown, ms per step (%lld steps; forward/backward include the BN all-reduces, "
               "which 'in-step comm' also counts):\n", (long long)t->times.steps);
        printf("  rank     data  forward backward  method+loss  in-step comm  grad allreduce  optimizer    total  comm %%\n");
        for (int r = 0; r < c->world; r++) {
            const double *v = all + (size_t)r * K;
            printf("  %4d %8.1f %8.1f %8.1f %12.1f %13.1f %15.1f %10.1f %8.1f %6.1f\n", r, 1e3 * v[0], 1e3 * v[1],
                   1e3 * v[2], 1e3 * v[3], 1e3 * v[4], 1e3 * v[5], 1e3 * v[6], 1e3 * v[7], 100 * v[8]);
        }
    }
    ssl_free(all);
}

int ssl_cmd_pretrain(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: sslrun CONFIG.yaml [section.key=value ...]\n");
        return 2;
    }
    /* one process started by hand needs no MPI (and pays no MPI_Init) */
    ssl_comm *comm = ssl_comm_mpi_launched() ? ssl_comm_mpi_world(NULL, NULL) : ssl_comm_local();
    job_comm = comm;
    char prefix[32] = "";
    if (comm->world > 1) {
        snprintf(prefix, sizeof prefix, "rank %d: ", comm->rank);
        ssl_set_message_prefix(prefix);
        ssl_set_abort_hook(abort_job);
    }
    const int rank0 = comm->rank == 0;
    char err[2048];
    ssl_config cfg;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        /* every rank reads the same file and fails the same way: one message, a clean exit */
        if (rank0) fprintf(stderr, "sslrun: %s\n", err);
        ssl_comm_free(comm);
        ssl_comm_mpi_finalize();
        return 2;
    }
    omp_set_num_threads(rank_threads(&cfg, comm));
    ssl_comm_watchdog_start(comm, cfg.comm.timeout_s);
    trainer t;
    memset(&t, 0, sizeof t);
    t.comm = comm;
    t.rank0 = rank0;
    int rc = 1;
    float *views = NULL;
    if (setup(&t, &cfg, err, sizeof err)) goto out;
    if (rank0 && ssl_make_dirs(t.s.ckpt_dir, err, sizeof err)) goto out;
    char path[1200];
    ssl_pathf(path, sizeof path, "%s/config.yaml", t.s.run_dir);
    if (rank0 && ssl_config_write_yaml(&cfg, path, err, sizeof err)) goto out;
    if (rank0) {
        ssl_config_print(&cfg, stdout);
        printf("data: %lld samples %dx%dx%d from %d shard(s); %lld steps/epoch x %d epochs; global batch %d "
               "(%d ranks x %d per rank, x %lld accumulation); peak lr %.4g (%s scaling of the global "
               "batch); %zu parameters\n",
               (long long)t.sampler.n_samples, ssl_dataset_height(t.ds), ssl_dataset_width(t.ds),
               ssl_dataset_channels(t.ds), ssl_dataset_num_shards(t.ds), (long long)t.steps_per_epoch,
               cfg.schedule.epochs, cfg.data.batch_size, comm->world, t.sampler.local_batch, (long long)t.accum,
               t.lr_peak, cfg.optim.lr_scaling, t.s.params.count);
        printf("ranks: %d on %d node(s), up to %d per node; %d CPU threads per rank; %s BatchNorm; comm %s\n",
               comm->world, comm->nodes, comm->local_world, omp_get_max_threads(),
               cfg.model.sync_bn && comm->world > 1 ? "synchronised" : "per-rank", comm->ops->name);
        fflush(stdout);
    }
    ssl_barrier(comm); /* the run directory exists before anyone looks into it */

    /* the newest checkpoint that loads (rank 0 lists the directory, every rank loads) */
    int64_t step = 0;
    if (cfg.checkpoint.resume) {
        ssl_ckpt ck = {.comm = comm};
        ckpt_arrays(&t, &ck);
        int found = ssl_ckpt_resume(&ck, t.s.ckpt_dir, 1, path, sizeof path, err, sizeof err);
        if (found < 0) goto out;
        if (found == 0) {
            step = ck.step;
            t.opt.step = ck.step;
            if (rank0) {
                printf("resumed from %s at step %lld\n", path, (long long)step);
                if (ck.world_size != comm->world)
                    printf("note: the checkpoint was written by %lld rank(s), this job has %d: same global batch "
                           "and sample order, but reductions run in another order, so the run is no longer "
                           "bit-identical to an uninterrupted one\n", (long long)ck.world_size, comm->world);
            }
        }
    }
    /* one set of weights: rank 0's (identical already when seeded or loaded alike; now guaranteed) */
    ssl_broadcast(comm, t.s.params.data, t.s.params.numel, SSL_F32, 0);
    ssl_broadcast(comm, t.s.buffers.data, t.s.buffers.numel, SSL_F32, 0);
    ssl_pathf(path, sizeof path, "%s/metrics.jsonl", t.s.run_dir);
    if (rank0 && ssl_metrics_open(&t.metrics, path, step)) {
        snprintf(err, sizeof err, "cannot open %s", path);
        goto out;
    }
    if (rank0) {
        /* a run header per invocation: what produced the records that follow */
        ssl_metrics_begin(&t.metrics);
        ssl_metrics_str(&t.metrics, "event", "start");
        ssl_metrics_time(&t.metrics, "time", ssl_wall_time());
        ssl_metrics_int(&t.metrics, "start_step", step);
        ssl_metrics_int(&t.metrics, "total_steps", t.total_steps);
        ssl_metrics_int(&t.metrics, "ranks", comm->world);
        ssl_metrics_int(&t.metrics, "global_batch", cfg.data.batch_size);
        ssl_metrics_str(&t.metrics, "sslrun_version", ssl_version);
        ssl_metrics_str(&t.metrics, "git_commit", ssl_git_commit);
        ssl_metrics_end(&t.metrics);
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
    views = ssl_malloc((size_t)aug.views * micro * C * S * S * sizeof(float));
    signal(SIGTERM, on_signal);
    signal(SIGUSR1, on_signal);
    int tty = rank0 && isatty(2);
    double t_start = ssl_now(), ips = 0;
    int64_t first = step;
    const float wd0 = (float)cfg.optim.weight_decay;
    for (; step < t.total_steps; step++) {
        double t0 = ssl_now(), local_loss = 0, td = 0, tc = 0;
        ssl_params_zero_grad(&t.s.ctx, &t.s.params);
        for (int64_t a = 0; a < t.accum; a++) {
            double ta = ssl_now();
            ssl_batch b;
            if (ssl_loader_next(&t.loader, &b, err, sizeof err)) goto out;
            ssl_augment_batch(&aug, (uint64_t)cfg.run.seed, b.epoch, b.images, b.n, ssl_dataset_height(t.ds),
                              ssl_dataset_width(t.ds), C, b.indices, views);
            double tb = ssl_now();
            td += tb - ta;
            ssl_ctx_step_begin(&t.s.ctx);
            ssl_weights w = {t.s.params.data, t.s.params.grad, t.s.buffers.data};
            local_loss += t.s.method.vt->step(&t.s.method, &t.s.ctx, &w,
                                              ssl_tensor_4d(views, (int64_t)aug.views * b.n, C, S, S), b.n) /
                          t.accum;
            tc += ssl_now() - tb;
        }
        double tg = ssl_now();
        ssl_allreduce(comm, t.s.params.grad, t.s.params.numel, SSL_F32, SSL_AVG);
        /* one small all-reduce: the global loss, and whether any rank was signalled or hit its
         * step budget, so that all ranks stop at the same boundary */
        int budget = cfg.run.max_steps > 0 && step + 1 - first >= cfg.run.max_steps;
        double agree[2] = {local_loss, stop_signal > 0 ? 1.0 : 0.0};
        ssl_allreduce(comm, agree, 2, SSL_F64, SSL_SUM);
        double loss = agree[0] / comm->world;
        int stop = agree[1] > 0 ? 1 : budget ? -1 : 0;
        double to = ssl_now();
        if (!isfinite(loss)) {
            snprintf(err, sizeof err, "step %lld: loss is %g; stopping (lower optim.lr, check the data, or "
                     "resume from the last checkpoint)", (long long)step + 1, loss);
            goto out_nan;
        }
        int log_now = rank0 && ((step + 1) % cfg.run.log_every == 0 || step + 1 == t.total_steps || tty);
        double gnorm = NAN; /* global gradient norm before clipping (grads are identical on every rank) */
        if (cfg.optim.clip_grad > 0)
            gnorm = ssl_optim_clip_global_norm(&t.s.ctx, &t.s.params, (float)cfg.optim.clip_grad, 1.0f / (float)t.accum);
        else if (log_now)
            gnorm = ssl_optim_grad_norm(&t.s.ctx, &t.s.params, 1.0f / (float)t.accum);
        double lr = ssl_sched_lr(&t.lr, step);
        double wd = cfg.schedule.wd_end >= 0 ? ssl_sched_wd(wd0, cfg.schedule.wd_end, step, t.total_steps) : wd0;
        ssl_optim_step(&t.opt, &t.s.ctx, (float)lr, (float)wd);
        double t1 = ssl_now(), dt = t1 - t0;
        t.times.data += td;
        t.times.compute += tc;
        t.times.grad_comm += to - tg;
        t.times.optim += t1 - to;
        t.times.total += dt;
        t.times.steps++;
        double rate = cfg.data.batch_size / dt;
        ips = step == first ? rate : 0.9 * ips + 0.1 * rate; /* EMA, seeded by the first step */
        epoch = (step + 1) / t.steps_per_epoch;
        double eta = (double)(t.total_steps - step - 1) * cfg.data.batch_size / ips;
        if (log_now) {
            /* steps and epochs are 1-based everywhere a user reads them: "epoch 1/10", metrics, kNN */
            progress(&t, tty, step, step / t.steps_per_epoch, loss, lr, ips, eta);
            ssl_metrics_begin(&t.metrics);
            ssl_metrics_int(&t.metrics, "step", step + 1);
            ssl_metrics_int(&t.metrics, "epoch", step / t.steps_per_epoch + 1);
            ssl_metrics_num(&t.metrics, "loss", loss);
            ssl_metrics_num(&t.metrics, "lr", lr);
            ssl_metrics_num(&t.metrics, "wd", wd);
            ssl_metrics_num(&t.metrics, "grad_norm", gnorm);
            ssl_metrics_num(&t.metrics, "img_per_s", ips);
            ssl_metrics_num(&t.metrics, "step_s", dt);
            ssl_metrics_num(&t.metrics, "data_s", td);
            ssl_metrics_time(&t.metrics, "time", ssl_wall_time());
            ssl_metrics_end(&t.metrics);
        }
        int due = cfg.checkpoint.every_steps > 0 && (step + 1) % cfg.checkpoint.every_steps == 0;
        int every = cfg.eval.knn_every_epochs;
        if (every > 0 && (step + 1) % t.steps_per_epoch == 0 && epoch % every == 0 && cfg.data.test[0]) {
            if (knn_monitor(&t, step + 1, epoch, err, sizeof err)) goto out;
        }
        if (due || stop || step + 1 == t.total_steps) {
            if (save(&t, step + 1, epoch, (step + 1) % t.steps_per_epoch, err, sizeof err)) goto out;
        }
        if (stop && step + 1 < t.total_steps) {
            if (rank0 && stop > 0)
                fprintf(stderr, "%ssslrun: signal received: checkpoint written at step %lld; exiting to be resumed\n",
                        tty ? "\n" : "", (long long)step + 1);
            else if (rank0)
                fprintf(stderr, "%ssslrun: run.max_steps reached: checkpoint written at step %lld\n",
                        tty ? "\n" : "", (long long)step + 1);
            rc = 0;
            goto done;
        }
    }
    if (tty) fputc('\n', stderr);
    if (rank0)
        printf("done: %lld steps in %.1f s, run directory %s\n", (long long)(t.total_steps - first),
               ssl_now() - t_start, t.s.run_dir);
    rc = 0;
done:
    print_breakdown(&t);
    goto out;
out_nan:
    /* every rank saw the same global loss: stop together, rank 0 reports */
    rc = 1;
    if (rank0) fprintf(stderr, "%ssslrun: %s\n", tty ? "\n" : "", err);
    goto cleanup;
out:
    if (rc) {
        fprintf(stderr, "%ssslrun: %s%s\n", rank0 && isatty(2) ? "\n" : "", prefix, err);
        /* this rank failed alone: the others may be inside a collective, so end them all */
        if (comm->world > 1) comm->ops->abort(comm, 1);
    }
cleanup:
    ssl_free(views);
    ssl_loader_stop(&t.loader);
    if (rank0) ssl_metrics_close(&t.metrics);
    ssl_optim_free(&t.opt);
    ssl_sampler_free(&t.sampler);
    if (t.s.params.data) ssl_session_free(&t.s);
    if (t.ds) ssl_dataset_close(t.ds);
    job_comm = NULL;
    ssl_comm_free(comm);
    ssl_comm_mpi_finalize();
    return rc;
}
