/* ssl_train_step (see trainer.h). */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* One micro-batch: the next batch from the loader, its views already augmented there, through the
 * method. Adds this rank's loss / accum to *loss and the monitors to *mon; *data_s is the time spent
 * waiting for the loader. */
static int micro_step(ssl_trainer *t, const ssl_progress *p, double *loss, ssl_scalars *mon, double *data_s,
                      double *compute_s, char *err, size_t errlen)
{
    double ta = ssl_now();
    ssl_batch b;
    ssl_views v;
    ssl_ctx *c = &t->s.ctx;
    /* one upload per micro-batch (the views, or their sources for the augment op), the next one's
     * copy overlapping this one's compute on a device backend */
    float *views;
    if (ssl_feed_next(&t->feed, &t->loader, &t->pipes, c, t->s.in_chans, &views, &b, err, errlen)) return -1;
    ssl_view_pipes_bind(&t->pipes, b.n, t->s.in_chans, views, &v);
    v.index = b.indices;
    double tb = ssl_now();
    *data_s += tb - ta;
    ssl_ctx_step_begin(c);
    ssl_weights w = {t->s.params.data, t->s.params.grad, t->s.buffers.data};
    ssl_scalars one = {0};
    ssl_method *m = &t->s.method;
    *loss += m->vt->step(m, c, &w, &v, p, &one) / (double)t->accum;
    for (int i = 0; i < one.n; i++) ssl_scalars_add(mon, one.name[i], one.v[i] / (double)t->accum);
    *compute_s += ssl_now() - tb;
    return 0;
}

int ssl_train_step(ssl_trainer *t, int signalled, ssl_step_record *r, int *nan, char *err, size_t errlen)
{
    const ssl_config *cfg = &t->s.cfg;
    ssl_comm *comm = t->comm;
    const int64_t step = t->step;
    memset(r, 0, sizeof *r);
    *nan = 0;
    double t0 = ssl_now(), local_loss = 0, td = 0, tc = 0;
    ssl_progress p = {.step = step, .total_steps = t->total_steps, .steps_per_epoch = t->steps_per_epoch,
                      .epoch = (double)step / (double)t->steps_per_epoch, .accum = (int)t->accum};
    ssl_params_zero_grad(&t->s.ctx, &t->s.params);
    for (int64_t a = 0; a < t->accum; a++) {
        p.micro = (int)a;
        if (a == t->accum - 1) ssl_grad_sync_begin(&t->gsync); /* buckets may start during its backward */
        if (micro_step(t, &p, &local_loss, &r->monitors, &td, &tc, err, errlen)) return -1;
    }
    double tg = ssl_now();
    ssl_grad_sync_finish(&t->gsync); /* the rest of the gradient all-reduce, and the wait */
    /* one small all-reduce: the global loss, the monitors, and whether any rank was signalled, so
     * that all ranks stop at the same boundary (monitors are named identically on every rank: the
     * same method ran the same code) */
    double agree[2 + SSL_SCALARS_MAX];
    int nm = r->monitors.n;
    agree[0] = local_loss;
    agree[1] = signalled ? 1.0 : 0.0;
    for (int i = 0; i < nm; i++) agree[2 + i] = r->monitors.v[i];
    ssl_allreduce(comm, agree, (size_t)(2 + nm), SSL_F64, SSL_SUM);
    r->loss = agree[0] / comm->world;
    for (int i = 0; i < nm; i++) r->monitors.v[i] = agree[2 + i] / comm->world;
    int budget = cfg->run.max_steps > 0 && step + 1 - t->first_step >= cfg->run.max_steps;
    r->stop = agree[1] > 0 ? 1 : budget ? -1 : 0;
    r->step = step + 1;
    double to = ssl_now();
    if (!isfinite(r->loss)) {
        snprintf(err, errlen, "step %lld: loss is %g; stopping (lower optim.lr, check the data, or resume from the "
                 "last checkpoint)", (long long)step + 1, r->loss);
        *nan = 1;
        return -1;
    }
    const float gscale = 1.0f / (float)t->accum;
    int log_now = t->rank0 && ((step + 1) % cfg->run.log_every == 0 || step + 1 == t->total_steps || t->tty);
    r->grad_norm = NAN; /* before clipping (gradients are identical on every rank) */
    if (cfg->optim.clip_grad > 0 && !strcmp(cfg->optim.clip_mode, "per_tensor"))
        r->grad_norm = ssl_optim_clip_per_tensor(&t->s.ctx, &t->s.params, (float)cfg->optim.clip_grad, gscale);
    else if (cfg->optim.clip_grad > 0)
        r->grad_norm = ssl_optim_clip_global_norm(&t->s.ctx, &t->s.params, (float)cfg->optim.clip_grad, gscale);
    else if (log_now)
        r->grad_norm = ssl_optim_grad_norm(&t->s.ctx, &t->s.params, gscale);
    r->lr = ssl_sched_lr(&t->lr, step);
    const double wd0 = (float)cfg->optim.weight_decay; /* the value the optimizer sees, logged as such */
    r->wd = cfg->schedule.wd_end >= 0 ? ssl_sched_wd(wd0, cfg->schedule.wd_end, step, t->total_steps) : wd0;
    ssl_optim_step(&t->opt, &t->s.ctx, (float)r->lr, (float)r->wd);
    ssl_method *m = &t->s.method;
    if (m->vt->after_optim) {
        ssl_weights w = {t->s.params.data, t->s.params.grad, t->s.buffers.data};
        p.lr = r->lr, p.wd = r->wd;
        m->vt->after_optim(m, &t->s.ctx, &w, &p);
    }
    t->step = step + 1;
    ssl_prof_flush(&t->s.ctx); /* a device's layer timings, read once per step */
    double t1 = ssl_now();
    r->step_s = t1 - t0;
    r->data_s = td;
    r->act_mb = (double)t->s.ctx.act.peak / 1e6;
    t->times.data += td;
    t->times.compute += tc;
    t->times.grad_comm += to - tg;
    t->times.optim += t1 - to;
    t->times.total += r->step_s;
    t->times.steps++;
    double rate = cfg->data.batch_size / r->step_s;
    /* EMA seeded by the second step: the first one creates primitives and sizes the arena, several
     * times slower, and an EMA seeded by it read low for dozens of steps */
    t->ips = step <= t->first_step + 1 ? rate : 0.9 * t->ips + 0.1 * rate;
    return 0;
}
