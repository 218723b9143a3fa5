/* ssl_finetune_loss and ssl_finetune_step (see finetune.h): one supervised step, data parallel. */
#include "framework/comm/device.h"
#include "framework/backend/backend.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/finetune.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

double ssl_finetune_loss(ssl_ctx *c, ssl_tensor logits, const int32_t *labels, float smoothing, float *dlogits)
{
    SSL_ASSERT(logits.ndim == 2);
    const int64_t n = logits.shape[0], K = logits.shape[1];
    const size_t nk = (size_t)(n * K);
    float *logp = ssl_arena_floats(&c->act, nk), *dy = ssl_arena_floats(&c->act, nk);
    c->be->log_softmax_fwd(c, n, K, logits.data, logp);
    /* d(loss)/d(logp) = -q / n with q the smoothed target; log_softmax_bwd turns it into
     * (softmax - q) / n, and the loss is sum(dy * logp) */
    float *q = ssl_malloc(nk * sizeof(float));
    const float off = smoothing / (float)K, on = 1.0f - smoothing + off;
    for (int64_t r = 0; r < n; r++) {
        SSL_ASSERTF(labels[r] >= 0 && labels[r] < K, "finetune: label %d outside [0, %lld)", labels[r], (long long)K);
        for (int64_t k = 0; k < K; k++) q[r * K + k] = -(k == labels[r] ? on : off) / (float)n;
    }
    c->be->upload(dy, q, nk * sizeof(float));
    ssl_free(q);
    double loss = c->be->dot(c, nk, dy, logp);
    c->be->log_softmax_bwd(c, n, K, logp, dy, dlogits);
    return loss;
}

int ssl_finetune_step(ssl_finetuner *f, int signalled, ssl_step_record *r, int *nan, char *err, size_t errlen)
{
    const ssl_config *cfg = &f->cfg;
    const int64_t step = f->step;
    memset(r, 0, sizeof *r);
    *nan = 0;
    double t0 = ssl_now();
    ssl_params_zero_grad(&f->ctx, &f->params);
    ssl_batch b;
    float *in;
    if (ssl_feed_next(&f->feed, &f->loader, &f->pipes, &f->ctx, f->in_chans, &in, &b, err, errlen)) return -1;
    const int C = f->in_chans, S = f->img_size;
    memcpy(f->labels, b.labels, (size_t)b.n * sizeof(int32_t));
    double tb = ssl_now();
    ssl_ctx_step_begin(&f->ctx);
    ssl_weights w = {f->params.data, f->params.grad, f->buffers.data};
    ssl_grad_sync_begin(&f->gsync); /* buckets may start during backward */
    ssl_tensor logits = f->model.forward(&f->ctx, &f->model, &w, ssl_tensor_4d(in, b.n, C, S, S), 1);
    ssl_tensor dl = ssl_tensor_2d(ssl_arena_floats(&f->ctx.act, (size_t)ssl_tensor_numel(logits)), logits.shape[0],
                                  logits.shape[1]);
    double local = ssl_finetune_loss(&f->ctx, logits, f->labels, (float)cfg->finetune.label_smoothing, dl.data);
    f->model.backward(&f->ctx, &f->model, &w, dl);
    /* each rank's loss is the mean over its slice: averaging gives the global batch's gradient */
    ssl_grad_sync_finish(&f->gsync);
    double agree[2] = {local, signalled ? 1.0 : 0.0};
    ssl_allreduce(f->comm, agree, 2, SSL_F64, SSL_SUM);
    r->loss = agree[0] / f->comm->world;
    int budget = cfg->run.max_steps > 0 && step + 1 - f->first_step >= cfg->run.max_steps;
    r->stop = agree[1] > 0 ? 1 : budget ? -1 : 0;
    r->step = step + 1;
    if (!isfinite(r->loss)) {
        snprintf(err, errlen, "finetune step %lld: loss is %g; stopping (lower finetune.lr)", (long long)step + 1,
                 r->loss);
        *nan = 1;
        return -1;
    }
    r->grad_norm = NAN;
    r->lr = ssl_sched_lr(&f->lr, step);
    r->wd = cfg->finetune.weight_decay;
    ssl_optim_step(&f->opt, &f->ctx, (float)r->lr, (float)r->wd);
    f->step = step + 1;
    r->step_s = ssl_now() - t0;
    r->data_s = tb - t0;
    r->act_mb = (double)f->ctx.act.peak / 1e6;
    double rate = f->batch / r->step_s;
    f->ips = step <= f->first_step + 1 ? rate : 0.9 * f->ips + 0.1 * rate; /* as the trainer's */
    return 0;
}
