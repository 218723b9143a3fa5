/* Frozen-feature extraction and evaluation shared by `sslrun eval` and the kNN monitor that
 * pretraining runs every eval.knn_every_epochs. */
#ifndef SSL_LAUNCH_EVALUATE_H
#define SSL_LAUNCH_EVALUATE_H

#include "launch/session.h"

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
/* kNN top-1 for every k of eval.knn_k into top1. */
int ssl_eval_knn(ssl_session *s, const ssl_features *tr, const ssl_features *te, double *top1,
                 char *err, size_t errlen);

#endif
