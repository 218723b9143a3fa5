/* Frozen-feature extraction and kNN shared by `sslrun eval` and the trainer's kNN monitor (see
 * features.h). */
#include "framework/train/features.h"

#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/eval/knn.h"
#include "io/dataset.h"
#include "io/eval_views.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether any rank of `pace` (NULL: this process alone) reports a failure. */
static int any_failed(ssl_comm *pace, int failed)
{
    if (!pace || pace->world == 1) return failed;
    double v = failed;
    ssl_allreduce(pace, &v, 1, SSL_F64, SSL_MAX);
    return v > 0;
}

/* Features of part `part` of `parts` contiguous slices of the first `limit` samples (0: all) into
 * f. With `pace`, the ranks of that communicator (part = rank) extract in lockstep, one batch per
 * round with a tiny all-reduce after it: no rank runs ahead into a collective and waits there for
 * the whole of another's slice, however loaded the nodes are, and a failure anywhere stops all. */
static int extract_range(ssl_session *s, ssl_comm *pace, const char *path, int64_t limit, int raw_pixels, int part,
                         int parts, ssl_features *f, int64_t *total, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    ssl_dataset *ds = ssl_dataset_open(path, err, errlen);
    int rc = -1;
    if (!ds || !ssl_dataset_has_labels(ds)) {
        if (ds) snprintf(err, errlen, "%s: evaluation needs labels", path);
        any_failed(pace, 1);
        goto out;
    }
    if (any_failed(pace, 0)) {
        snprintf(err, errlen, "%s: another rank could not open it", path);
        goto out;
    }
    const int C = ssl_dataset_channels(ds);
    int64_t n = ssl_dataset_size(ds);
    if (limit > 0 && limit < n) n = limit;
    *total = n;
    const int64_t lo = n * part / parts;
    n = n * (part + 1) / parts - lo;
    ssl_augment_config a;
    ssl_session_eval_transform(&s->cfg, C, &a);
    const int S = a.out_size, B = 256;
    f->n = n;
    f->dim = raw_pixels ? C * S * S : s->encoder.feat_dim;
    f->num_classes = ssl_dataset_num_classes(ds);
    f->x = ssl_malloc((size_t)n * f->dim * sizeof(float));
    f->y = ssl_malloc((size_t)n * sizeof(int32_t));
    ssl_eval_reader rd = {0};
    float *views = ssl_malloc((size_t)B * C * S * S * sizeof(float));
    float *dviews = NULL; /* device copy of a batch (ssl_ctx_upload_input) */
    int64_t idx[256];
    /* every rank runs the rounds of the largest slice, idle once its own is done */
    const int64_t largest = (*total + parts - 1) / parts, rounds = pace ? (largest + B - 1) / B : (n + B - 1) / B;
    for (int64_t r = 0; r < rounds; r++) {
        const int64_t i0 = r * B;
        int nb = (int)(n - i0 < B ? n - i0 : B), bad = 0;
        if (nb > 0) {
            for (int i = 0; i < nb; i++) idx[i] = lo + i0 + i;
            bad = ssl_eval_read_views(&rd, ds, &a, idx, nb, views, f->y + i0, err, errlen) != 0;
        }
        if (nb > 0 && !bad) {
            if (raw_pixels) {
                memcpy(f->x + i0 * f->dim, views, (size_t)nb * f->dim * sizeof(float));
            } else {
                ssl_ctx_step_begin(&s->ctx);
                ssl_weights w = {s->params.data, NULL, s->buffers.data};
                const size_t img = (size_t)C * S * S;
                float *in = ssl_ctx_upload_input(&s->ctx, &dviews, (size_t)B * img, views, (size_t)nb * img);
                ssl_tensor y = s->encoder.forward(&s->ctx, &s->encoder, &w, ssl_tensor_4d(in, nb, C, S, S), 0);
                s->ctx.be->download(f->x + i0 * f->dim, y.data, (size_t)nb * f->dim * sizeof(float));
            }
        }
        if (any_failed(pace, bad)) {
            if (!bad) snprintf(err, errlen, "%s: another rank failed to read its samples", path);
            goto out_free;
        }
    }
    for (int64_t i = 0; i < n; i++)
        if (f->y[i] + 1 > f->num_classes) f->num_classes = f->y[i] + 1;
    rc = 0;
out_free:
    ssl_eval_reader_free(&rd);
    ssl_free(views);
    if (dviews) s->ctx.be->free(dviews);
out:
    if (ds) ssl_dataset_close(ds);
    if (rc) ssl_features_free(f);
    return rc;
}

int ssl_extract_features(ssl_session *s, const char *path, int64_t limit, int raw_pixels,
                         ssl_features *f, char *err, size_t errlen)
{
    int64_t total;
    return extract_range(s, NULL, path, limit, raw_pixels, 0, 1, f, &total, err, errlen);
}

int ssl_extract_features_all(ssl_session *s, ssl_comm *comm, const char *path, int64_t limit, int raw_pixels,
                             ssl_features *f, char *err, size_t errlen)
{
    const int W = comm->world;
    ssl_features part = {0};
    int64_t total = 0;
    /* failures are agreed inside (every rank returns the same), so nobody is left in a gather */
    if (extract_range(s, comm, path, limit, raw_pixels, comm->rank, W, &part, &total, err, errlen)) return -1;
    double st[1] = {part.num_classes};
    ssl_allreduce(comm, st, 1, SSL_F64, SSL_MAX);
    if (W == 1) {
        *f = part;
        return 0;
    }
    /* equal-sized blocks for the all-gather: every slice padded to the largest, then compacted */
    const int64_t maxn = (total + W - 1) / W, D = part.dim;
    float *xs = ssl_calloc((size_t)(maxn * D), sizeof(float)), *xa = ssl_malloc((size_t)(maxn * D * W) * sizeof(float));
    int32_t *ys = ssl_calloc((size_t)maxn, sizeof(int32_t)), *ya = ssl_malloc((size_t)(maxn * W) * sizeof(int32_t));
    memcpy(xs, part.x, (size_t)(part.n * D) * sizeof(float));
    memcpy(ys, part.y, (size_t)part.n * sizeof(int32_t));
    ssl_allgather(comm, xs, xa, (size_t)(maxn * D), SSL_F32);
    ssl_allgather(comm, ys, ya, (size_t)maxn * sizeof(int32_t), SSL_U8);
    f->n = total;
    f->dim = part.dim;
    f->num_classes = (int)st[0];
    f->x = ssl_malloc((size_t)(total * D) * sizeof(float));
    f->y = ssl_malloc((size_t)total * sizeof(int32_t));
    for (int r = 0; r < W; r++) {
        int64_t lo = total * r / W, n = total * (r + 1) / W - lo;
        memcpy(f->x + lo * D, xa + (size_t)(r * maxn * D), (size_t)(n * D) * sizeof(float));
        memcpy(f->y + lo, ya + (size_t)(r * maxn), (size_t)n * sizeof(int32_t));
    }
    ssl_free(xs);
    ssl_free(xa);
    ssl_free(ys);
    ssl_free(ya);
    ssl_features_free(&part);
    return 0;
}

const float *ssl_features_device(ssl_ctx *c, const ssl_features *f, float **own)
{
    *own = NULL;
    if (c->be->host_memory) return f->x;
    const size_t bytes = (size_t)(f->n * f->dim) * sizeof(float);
    *own = c->be->alloc(bytes);
    c->be->upload(*own, f->x, bytes);
    return *own;
}

int ssl_eval_knn_all(ssl_session *s, ssl_comm *comm, const ssl_features *tr, const ssl_features *te,
                     double *top1, char *err, size_t errlen)
{
    const ssl_config *c = &s->cfg;
    const int nk = c->eval.knn_k.n, W = comm->world;
    const int64_t lo = te->n * comm->rank / W, n = te->n * (comm->rank + 1) / W - lo;
    /* each rank votes for its slice of the test set against the whole bank, in chunks with a tiny
     * all-reduce after each (the ranks stay in step, as in extraction); correct counts are summed.
     * The bank's normalisation is redone per chunk: ntrain*D against the chunk's GEMM of
     * CH*ntrain*D, under 0.5% */
    enum { CH = 512 };
    const int64_t rounds = ((te->n + W - 1) / W + CH - 1) / CH;
    int32_t *pred = ssl_malloc((size_t)(nk * CH) * sizeof(int32_t));
    float *own_tr, *own_te;
    const float *xtr = ssl_features_device(&s->ctx, tr, &own_tr), *xte = ssl_features_device(&s->ctx, te, &own_te);
    double cnt[8] = {0}, dummy[8];
    int rc = 0;
    for (int64_t r = 0; r < rounds; r++) {
        const int64_t i0 = r * CH, m = n - i0 < CH ? n - i0 : CH;
        int bad = 0;
        if (m > 0) {
            bad = ssl_knn_eval_ex(&s->ctx, xtr, tr->y, tr->n, xte + (lo + i0) * te->dim, te->y + lo + i0, m,
                                  tr->dim, tr->num_classes, c->eval.knn_k.v, nk, (float)c->eval.knn_temperature,
                                  dummy, NULL, pred, err, errlen) != 0;
            for (int q = 0; q < nk && !bad; q++)
                for (int64_t i = 0; i < m; i++) cnt[q] += pred[q * m + i] == te->y[lo + i0 + i];
        }
        if (any_failed(comm, bad)) {
            if (!bad) snprintf(err, errlen, "kNN failed on another rank");
            rc = -1;
            break;
        }
    }
    ssl_free(pred);
    if (own_tr) s->ctx.be->free(own_tr);
    if (own_te) s->ctx.be->free(own_te);
    if (rc) return -1;
    ssl_allreduce(comm, cnt, 8, SSL_F64, SSL_SUM);
    for (int q = 0; q < nk; q++) top1[q] = 100.0 * cnt[q] / (double)te->n;
    return 0;
}

void ssl_features_free(ssl_features *f)
{
    ssl_free(f->x);
    ssl_free(f->y);
    memset(f, 0, sizeof *f);
}

int ssl_eval_knn(ssl_session *s, const ssl_features *tr, const ssl_features *te, double *top1,
                 char *err, size_t errlen)
{
    const ssl_config *c = &s->cfg;
    float *own_tr, *own_te;
    const float *xtr = ssl_features_device(&s->ctx, tr, &own_tr), *xte = ssl_features_device(&s->ctx, te, &own_te);
    int rc = ssl_knn_eval(&s->ctx, xtr, tr->y, tr->n, xte, te->y, te->n, tr->dim, tr->num_classes,
                          c->eval.knn_k.v, c->eval.knn_k.n, (float)c->eval.knn_temperature, top1, err, errlen);
    if (own_tr) s->ctx.be->free(own_tr);
    if (own_te) s->ctx.be->free(own_te);
    return rc;
}

