/* Frozen-feature extraction and evaluation shared by `sslrun eval` and the kNN monitor that
 * pretraining runs every eval.knn_every_epochs. */
#ifndef SSL_TRAIN_FEATURES_H
#define SSL_TRAIN_FEATURES_H

#include "framework/train/session.h"

typedef struct {
    float *x;       /* (n, dim) host features */
    int32_t *y;     /* (n) labels */
    int64_t n;
    int dim, num_classes;
} ssl_features;

/* Encoder features (or normalised pixels) of the first `limit` samples (0: all) of a dataset. */
int ssl_extract_features(ssl_session *s, const char *path, int64_t limit, int raw_pixels,
                         ssl_features *f, char *err, size_t errlen);
void ssl_features_free(ssl_features *f);

/* The kNN monitor and `sslrun eval` of a multi-rank job: every rank extracts its contiguous 1/P of the samples and
 * the slices are all-gathered, so every rank holds all features (no rank computes alone while the
 * others wait in a collective under the watchdog). Collective over comm. */
struct ssl_comm;
int ssl_extract_features_all(ssl_session *s, struct ssl_comm *comm, const char *path, int64_t limit,
                             int raw_pixels, ssl_features *f, char *err, size_t errlen);
/* kNN top-1 for every eval.knn_k: each rank votes for its 1/P of the test rows against the whole
 * bank; correct counts are summed over ranks. Collective over comm. */
/* The features' rows in c's memory (kNN and the linear probe take device rows): f->x itself on a
 * host-memory backend, else an uploaded copy returned in *own as well (free it with c->be->free). */
const float *ssl_features_device(ssl_ctx *c, const ssl_features *f, float **own);
int ssl_eval_knn_all(ssl_session *s, struct ssl_comm *comm, const ssl_features *tr, const ssl_features *te,
                     double *top1, char *err, size_t errlen);
/* kNN top-1 for every k of eval.knn_k into top1. */
int ssl_eval_knn(ssl_session *s, const ssl_features *tr, const ssl_features *te, double *top1,
                 char *err, size_t errlen);

#endif
