/* The trainer: every method's training loop, as small functions the CLI calls in order
 * (launch/pretrain.c only parses, handles signals and calls them):
 *
 *   ssl_train_setup    dataset, session (encoder + method heads + method state), sampler, schedules,
 *                      optimizer, run directory with the resolved config
 *   ssl_train_resume   the newest checkpoint that loads (params, buffers, optimizer, method state),
 *                      one set of weights on every rank, the method's start hook, metrics header,
 *                      the loader at the resumed position
 *   ssl_train_step     one optimizer step: micro-batches through the method, gradient all-reduce,
 *                      the loss / monitors / stop flag agreed over ranks, clipping, schedules,
 *                      optimizer, the method's after-optimizer hook
 *   ssl_train_log      progress line and metrics.jsonl record (rank 0)
 *   ssl_train_epoch_end the kNN monitor when due, the method's epoch hook
 *   ssl_train_save     a checkpoint (replicas checked first)
 *   ssl_train_report / ssl_train_free
 *
 * Data parallel over MPI: data.batch_size is the global batch, each rank takes a contiguous 1/P of
 * every step's samples; parameters start from rank 0's; gradients are averaged with one all-reduce
 * over the flat buffer; collectives inside the method (global negatives, synchronised BN, sharded
 * queues) go through ctx->comm and ctx->bn_comm. The loss, the monitors and the stop flag travel in
 * one small all-reduce per step, so every rank takes the same decision at the same boundary. */
#ifndef SSL_TRAIN_TRAINER_H
#define SSL_TRAIN_TRAINER_H

#include "framework/core/timer.h"
#include "framework/optim/schedule.h"
#include "framework/train/feed.h"
#include "framework/train/grad_sync.h"
#include "framework/train/session.h"
#include "framework/train/views.h"
#include "io/dataset.h"
#include "io/loader.h"
#include "io/metrics.h"
#include "io/sampler.h"

struct ssl_comm;

/* Seconds per step phase, accumulated over the run (the breakdown printed at the end). */
typedef struct {
    double data, compute, grad_comm, optim, total;
    int64_t steps;
} ssl_phase_times;

typedef struct {
    ssl_session s;
    struct ssl_comm *comm;
    int rank0, tty;
    ssl_prof prof;
    ssl_phase_times times;
    ssl_optim opt;
    ssl_grad_sync gsync;       /* the gradient all-reduce, overlapped with backward or after it */
    ssl_dataset *ds;
    ssl_sampler sampler;
    ssl_loader loader;
    int loader_started;
    ssl_metrics metrics;
    int metrics_open;
    ssl_view_pipes pipes;      /* the method's views: one pipeline each */
    ssl_feed feed;             /* micro-batches from the loader to the device */
    int64_t steps_per_epoch, total_steps, accum;
    int64_t step;              /* optimizer steps done: the next step's 0-based index */
    int64_t first_step;        /* step this invocation started at */
    int64_t corrupt;           /* images that did not decode (reader threads add atomically) */
    double lr_peak, ips, t_start;
    ssl_sched_lr_config lr;
    int config_error;          /* the error is the config's (a checkpoint of another model): exit 2 */
} ssl_trainer;

/* What one step did (identical on every rank but for the timings). */
typedef struct {
    int64_t step;     /* 1-based: steps done after it */
    double loss, lr, wd, grad_norm; /* grad_norm: NaN when neither clipping nor logging needed it */
    double step_s, data_s;
    double act_mb;    /* the activation arena's high-water mark so far, MB (this rank's) */
    ssl_scalars monitors; /* averaged over ranks and micro-batches */
    int stop;         /* > 0: a rank was signalled; < 0: run.max_steps reached; 0: neither */
} ssl_step_record;

int ssl_train_setup(ssl_trainer *t, const ssl_config *cfg, struct ssl_comm *comm, char *err, size_t errlen);
int ssl_train_resume(ssl_trainer *t, char *err, size_t errlen);
/* 0, or -1 with err: a data error on this rank, or a non-finite global loss (then every rank fails
 * at the same step, and *nan is set so the caller need not end the job from this rank alone). */
int ssl_train_step(ssl_trainer *t, int signalled, ssl_step_record *r, int *nan, char *err, size_t errlen);
void ssl_train_log(ssl_trainer *t, const ssl_step_record *r);
/* The progress line ("<what>epoch e/E  step ...", live on a terminal) and the step's metrics.jsonl record
 * (grad_norm only when measured): what every trainer logs. */
void ssl_train_log_step(ssl_metrics *m, int tty, const char *what, const ssl_step_record *r, int epochs,
                        int64_t steps_per_epoch, int64_t total_steps, int batch, double ips);
/* After a step that ended an epoch: kNN monitor when due, then the method's epoch hook. */
int ssl_train_epoch_end(ssl_trainer *t, char *err, size_t errlen);
int ssl_train_save(ssl_trainer *t, char *err, size_t errlen);
/* Whether a checkpoint is due after the step just taken (every_steps, stop, end of training). */
int ssl_train_save_due(const ssl_trainer *t, const ssl_step_record *r);
void ssl_train_report(ssl_trainer *t);
/* A checkpoint's segment table ("name offset count d0,d1,..\n" per tensor), malloc'd (ssl_free);
 * shared with the fine-tuning trainer (finetune.h). */
char *ssl_train_segment_table(const ssl_params *p);
void ssl_train_free(ssl_trainer *t);

#endif
