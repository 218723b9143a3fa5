/* `sslrun finetune CONFIG.yaml [k=v ...] [--from CKPT.h5 | --weights FILE.safetensors | --scratch]`:
 * the pretrain -> fine-tune protocol. The encoder of the run's newest pretraining checkpoint (or of
 * --from, or --weights, or a random one with --scratch: the supervised baseline on the same labels)
 * gets a linear head and is trained end to end on data.train's labels (the finetune section), then
 * classified data.test. Runs, stops and resumes as pretraining does (mpirun, SIGTERM / SIGUSR1 -> checkpoint
 * and exit 3, run.max_steps -> checkpoint and exit 0; rerun to continue on any rank count), in RUN_DIR/finetune/. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/finetune.h"
#include "launch/cli.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char usage_line[] =
    "usage: sslrun finetune CONFIG.yaml [section.key=value ...] [--from CKPT.h5 | --weights FILE.safetensors | "
    "--scratch]\n";

/* The steps, checkpoints and evaluation of one invocation; 0, 1 when stopped by a signal (checkpoint
 * written), or -1 with err (*nan: a global NaN). */
static int run(ssl_finetuner *f, const ssl_ft_source *src, int *nan, char *err, size_t errlen)
{
    if (ssl_finetune_resume(f, src, err, errlen)) return -1;
    while (f->step < f->total_steps) {
        ssl_step_record r;
        if (ssl_finetune_step(f, ssl_cli_stop_requested(), &r, nan, err, errlen)) return -1;
        ssl_finetune_log(f, &r);
        if (ssl_finetune_save_due(f, &r) && ssl_finetune_save(f, err, errlen)) return -1;
        if (r.stop && f->step < f->total_steps) {
            if (f->rank0)
                fprintf(stderr, r.stop > 0 ? "%ssslrun: signal received: checkpoint written at step %lld; exiting to be resumed\n"
                                           : "%ssslrun: run.max_steps reached: checkpoint written at step %lld\n",
                        f->tty ? "\n" : "", (long long)f->step);
            return r.stop > 0;
        }
    }
    double seconds = ssl_now() - f->t_start, top1 = 0;
    int64_t ntest = 0;
    if (ssl_finetune_evaluate(f, &top1, &ntest, err, errlen)) return -1;
    if (f->rank0) {
        printf("%sfinetune done: %lld steps in %.1f s; top-1 on %lld test images: %.2f%%\n", f->tty ? "\n" : "",
               (long long)(f->step - f->first_step), seconds, (long long)ntest, top1);
        if (ssl_finetune_write_json(f, top1, ntest, seconds, err, errlen)) return -1;
    }
    return 0;
}

int ssl_cmd_finetune(int argc, char **argv)
{
    ssl_ft_source src = {SSL_FT_FROM_RUN, NULL};
    const char *from = ssl_cli_take_value(&argc, argv, "--from");
    const char *weights = ssl_cli_take_value(&argc, argv, "--weights");
    int scratch = ssl_cli_take_flag(&argc, argv, "--scratch");
    if (argc < 1 || !!from + !!weights + scratch > 1) {
        fprintf(stderr, "%s%s", usage_line, argc < 1 ? "" : "(--from, --weights and --scratch exclude each other)\n");
        return 2;
    }
    if (from) src = (ssl_ft_source){SSL_FT_FROM_CKPT, from};
    if (weights) src = (ssl_ft_source){SSL_FT_FROM_WEIGHTS, weights};
    if (scratch) src.kind = SSL_FT_SCRATCH;
    ssl_cli_catch_stop_signals(); /* first: every thread MPI and the rest start inherits the block */
    ssl_comm *comm = ssl_cli_job_begin();
    const char *prefix = ssl_cli_job_prefix();
    const int rank0 = comm->rank == 0;
    char err[2048];
    ssl_config cfg;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        if (rank0) fprintf(stderr, "sslrun: %s\n", err);
        ssl_cli_job_end(comm);
        return 2;
    }
    omp_set_num_threads(ssl_cli_rank_threads(&cfg, comm));
    ssl_comm_watchdog_start(comm, cfg.comm.timeout_s);
    ssl_finetuner *f = ssl_calloc(1, sizeof *f);
    int nan = 0, rc = SSL_EXIT_DONE, ran = -1;
    if (ssl_finetune_setup(f, &cfg, comm, err, sizeof err) || (ran = run(f, &src, &nan, err, sizeof err)) < 0) {
        rc = SSL_EXIT_FAILURE;
        if (nan) {
            if (rank0) fprintf(stderr, "%ssslrun: %s\n", f->tty ? "\n" : "", err);
        } else if (f->config_error) { /* every rank read the same config and files: all stop here alike */
            rc = SSL_EXIT_USAGE;
            if (rank0) fprintf(stderr, "sslrun: %s\n", err);
        } else {
            fprintf(stderr, "%ssslrun: %s%s\n", rank0 && isatty(2) ? "\n" : "", prefix, err);
            if (comm->world > 1) comm->ops->abort(comm, 1);
        }
    }
    if (ran > 0) rc = SSL_EXIT_PREEMPTED;
    ssl_finetune_free(f);
    ssl_free(f);
    ssl_cli_job_end(comm);
    return rc;
}
