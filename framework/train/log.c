/* ssl_train_log and ssl_train_report (see trainer.h): what users read while and after training. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ssl_train_log_step(ssl_metrics *m, int tty, const char *what, const ssl_step_record *r, int epochs,
                        int64_t steps_per_epoch, int64_t total_steps, int batch, double ips)
{
    /* steps and epochs are 1-based everywhere a user reads them: "epoch 1/10", metrics, kNN */
    const int64_t step = r->step - 1, epoch = step / steps_per_epoch, es = step % steps_per_epoch;
    double eta = (double)(total_steps - r->step) * batch / ips;
    char line[256];
    snprintf(line, sizeof line, "%sepoch %lld/%d  step %lld/%lld  loss %.4f  lr %.4g  %.1f img/s  ETA %dm%02ds", what,
             (long long)epoch + 1, epochs, (long long)es + 1, (long long)steps_per_epoch, r->loss, r->lr, ips,
             (int)(eta / 60), (int)fmod(eta, 60));
    if (tty) fprintf(stderr, "\r%-100s", line);
    else fprintf(stderr, "%s\n", line);
    ssl_metrics_begin(m);
    ssl_metrics_int(m, "step", r->step);
    ssl_metrics_int(m, "epoch", epoch + 1);
    ssl_metrics_num(m, "loss", r->loss);
    ssl_metrics_num(m, "lr", r->lr);
    ssl_metrics_num(m, "wd", r->wd);
    if (!isnan(r->grad_norm)) ssl_metrics_num(m, "grad_norm", r->grad_norm);
    ssl_metrics_num(m, "img_per_s", ips);
    ssl_metrics_num(m, "step_s", r->step_s);
    ssl_metrics_num(m, "data_s", r->data_s);
    ssl_metrics_num(m, "act_mb", r->act_mb);
    for (int i = 0; i < r->monitors.n; i++) ssl_metrics_num(m, r->monitors.name[i], r->monitors.v[i]);
    ssl_metrics_time(m, "time", ssl_wall_time());
    ssl_metrics_end(m);
}

void ssl_train_log(ssl_trainer *t, const ssl_step_record *r)
{
    const ssl_config *cfg = &t->s.cfg;
    int log_now = t->rank0 && (r->step % cfg->run.log_every == 0 || r->step == t->total_steps || t->tty);
    if (log_now)
        ssl_train_log_step(&t->metrics, t->tty, "", r, cfg->schedule.epochs, t->steps_per_epoch, t->total_steps,
                           cfg->data.batch_size, t->ips);
}

/* Rank 0 prints the per-rank step breakdown: where the time goes, and how much is communication. */
void ssl_train_report(ssl_trainer *t)
{
    ssl_comm *c = t->comm;
    if (t->tty) fputc('\n', stderr);
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
               "which 'in-step comm' also counts):\n",
               (long long)t->times.steps);
        printf("  rank     data  forward backward  method+loss  in-step comm  grad allreduce  optimizer    total  comm %%\n");
        for (int r = 0; r < c->world; r++) {
            const double *v = all + (size_t)r * K;
            printf("  %4d %8.1f %8.1f %8.1f %12.1f %13.1f %15.1f %10.1f %8.1f %6.1f\n", r, 1e3 * v[0], 1e3 * v[1],
                   1e3 * v[2], 1e3 * v[3], 1e3 * v[4], 1e3 * v[5], 1e3 * v[6], 1e3 * v[7], 100 * v[8]);
        }
        if (t->gsync.on && t->gsync.total > 0)
            printf("gradient buckets: %lld of %lld started during backward (%d per step)\n", (long long)t->gsync.early,
                   (long long)t->gsync.total, t->gsync.nb);
    }
    ssl_free(all);
}
