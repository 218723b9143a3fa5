/* ssl_train_save and ssl_train_epoch_end (see trainer.h): checkpoints and the kNN monitor, the two
 * moments every rank must hold one and the same model. */
#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/train/ckpt_stage.h"
#include "framework/train/features.h"
#include "framework/train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* "name offset count d0,d1,..\n" per tensor: with the flat arrays, enough to rebuild a state_dict
 * from the file alone (h5py + numpy). Public for the fine-tuning trainer's checkpoints. */
char *ssl_train_segment_table(const ssl_params *p)
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
 * each rank writes a slice. Checked before every save: fingerprints of every replicated array the
 * checkpoint holds (parameters, BN buffers, optimizer state, a teacher), min and max over ranks.
 * Fault injection for tests: SSL_FAULT_DIVERGE_RANK=R makes rank R change one parameter first. */
static int replicas_agree(ssl_trainer *t, const ssl_ckpt *ck, char *err, size_t errlen)
{
    if (t->comm->world == 1) return 0;
    const char *f = getenv("SSL_FAULT_DIVERGE_RANK");
    if (f && *f && atoi(f) == t->comm->rank) ((float *)ck->arrays[0].data)[0] += 1e-3f; /* "params" (host copy) */
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < ck->narrays; i++) {
        const ssl_ckpt_array *a = &ck->arrays[i];
        if (!a->sharded) h = fingerprint((const float *)a->data, a->n * (a->dtype == SSL_CKPT_I64 ? 2 : 1), h);
    }
    int64_t v[2] = {(int64_t)(h >> 1), -(int64_t)(h >> 1)}; /* max and -min in one all-reduce */
    ssl_allreduce(t->comm, v, 2, SSL_I64, SSL_MAX);
    if (v[0] == -v[1]) return 0;
    snprintf(err, errlen, "step %lld: the ranks hold different weights (replicas diverged); not writing a "
             "checkpoint of mixed models. Resume from the last checkpoint; if this repeats, suspect a node",
             (long long)t->step);
    return -1;
}

/* Per-rank BN (model.sync_bn false) leaves each rank its own running statistics. Before a
 * checkpoint or an evaluation every rank takes their mean (as timm's distribute_bn), so both see
 * one model rather than a slice of each rank's; the method does the same for its own state. */
static void agree_bn_buffers(ssl_trainer *t)
{
    if (!t->s.cfg.model.sync_bn && t->comm->world > 1)
        ssl_dev_allreduce(&t->s.ctx, t->comm, t->s.buffers.data, t->s.buffers.numel, SSL_F32, SSL_AVG);
    ssl_method *m = &t->s.method;
    if (m->vt->agree && t->comm->world > 1) m->vt->agree(m, &t->s.ctx);
}

int ssl_train_save_due(const ssl_trainer *t, const ssl_step_record *r)
{
    int every = t->s.cfg.checkpoint.every_steps;
    return (every > 0 && r->step % every == 0) || r->stop || r->step == t->total_steps;
}

int ssl_train_save(ssl_trainer *t, char *err, size_t errlen)
{
    agree_bn_buffers(t);
    const ssl_config *cfg = &t->s.cfg;
    ssl_ckpt ck = {.comm = t->comm, .step = t->step, .epoch = t->step / t->steps_per_epoch,
                   .epoch_step = t->step % t->steps_per_epoch, .world_size = t->comm->world,
                   .in_chans = t->s.in_chans, .seed = (uint64_t)cfg->run.seed};
    ssl_session_ckpt_arrays(&t->s, &ck, &t->opt);
    ssl_ckpt_staging st;
    ssl_ckpt_stage_save(&st, &t->s.ctx, &ck); /* host copies on a device backend: fingerprints, then the file */
    if (replicas_agree(t, &ck, err, errlen)) {
        ssl_ckpt_stage_end(&st, 0);
        return -1;
    }
    char *yaml = ssl_config_to_yaml(cfg);
    char *segs = ssl_train_segment_table(&t->s.params), *bsegs = ssl_train_segment_table(&t->s.buffers);
    ck.config_yaml = yaml;
    ck.segments = segs;
    ck.buffer_segments = bsegs;
    int rc = ssl_ckpt_save(&ck, t->s.ckpt_dir, cfg->checkpoint.keep, err, errlen);
    ssl_ckpt_stage_end(&st, 0);
    free(yaml);
    ssl_free(segs);
    ssl_free(bsegs);
    return rc;
}

/* kNN top-1 on frozen features, so users see representation quality rise during training. All
 * ranks extract their share and vote for their share of the test set (ssl_extract_features_all),
 * so the monitor scales with ranks and no rank idles in a collective while another computes. */
static int knn_monitor(ssl_trainer *t, int64_t epoch, char *err, size_t errlen)
{
    ssl_features tr = {0}, te = {0};
    double top1[8] = {0};
    double t0 = ssl_now();
    t->s.ctx.prof = NULL; /* not part of the step breakdown */
    agree_bn_buffers(t);
    const ssl_config *cfg = &t->s.cfg;
    int rc = ssl_extract_features_all(&t->s, t->comm, cfg->data.train, cfg->eval.train_limit, 0, &tr, err, errlen);
    if (!rc) rc = ssl_extract_features_all(&t->s, t->comm, cfg->data.test, 0, 0, &te, err, errlen);
    double t1 = ssl_now();
    if (!rc) rc = ssl_eval_knn_all(&t->s, t->comm, &tr, &te, top1, err, errlen);
    if (!rc && t->rank0) {
        fprintf(stderr, "%sepoch %lld: kNN top-1 (k=%d) %.2f%% (%.1f s on %d rank(s): features %.1f s, kNN %.1f s)\n",
                t->tty ? "\n" : "", (long long)epoch, cfg->eval.knn_k.v[0], top1[0], ssl_now() - t0, t->comm->world,
                t1 - t0, ssl_now() - t1);
        ssl_metrics_begin(&t->metrics);
        ssl_metrics_int(&t->metrics, "step", t->step);
        ssl_metrics_int(&t->metrics, "epoch", epoch);
        ssl_metrics_num(&t->metrics, "knn_top1", top1[0]);
        ssl_metrics_int(&t->metrics, "knn_k", cfg->eval.knn_k.v[0]);
        ssl_metrics_num(&t->metrics, "knn_s", ssl_now() - t0);
        ssl_metrics_end(&t->metrics);
    }
    ssl_features_free(&tr);
    ssl_features_free(&te);
    t->s.ctx.prof = &t->prof;
    return rc;
}

int ssl_train_epoch_end(ssl_trainer *t, char *err, size_t errlen)
{
    if (t->step % t->steps_per_epoch != 0) return 0;
    const int64_t epoch = t->step / t->steps_per_epoch; /* epochs done, 1-based for users */
    const ssl_config *cfg = &t->s.cfg;
    int every = cfg->eval.knn_every_epochs;
    if (every > 0 && epoch % every == 0 && cfg->data.test[0] && knn_monitor(t, epoch, err, errlen)) return -1;
    ssl_method *m = &t->s.method;
    if (t->step < t->total_steps && m->vt->on_epoch) m->vt->on_epoch(m, &t->s.ctx, epoch);
    return 0;
}
