/* A method's view plan made concrete for one dataset: one augmentation pipeline per view (all groups
 * in order) and the staging layout of a micro-batch's views, used by the trainer and by
 * `sslrun augment-preview`. */
#ifndef SSL_TRAIN_VIEWS_H
#define SSL_TRAIN_VIEWS_H

#include "methods/method.h"

typedef struct {
    ssl_view_plan plan;
    int nviews; /* all groups together */
    ssl_augment_config pipe[SSL_VIEWS_MAX];
} ssl_view_pipes;

/* The pipelines of a method's views (vt, plan: ssl_method_configure's) for C-channel images: the augment section at each group's size, edited
 * by the method's view_pipeline hook, each checked. 0, or -1 with the group and view in err. */
int ssl_view_pipes_init(ssl_view_pipes *vp, const ssl_method_vtable *vt, const ssl_view_plan *plan,
                        const ssl_config *cfg, int C, char *err, size_t errlen);

/* Floats to stage the views of n C-channel images. */
size_t ssl_view_pipes_floats(const ssl_view_pipes *vp, int n, int C);

/* Augment n images (H, W, C) into out (ssl_view_pipes_floats of them): group after group, each
 * (count * n, C, size, size) view-major; view id k (over all groups) is keyed by (seed, epoch,
 * sample, k). Fills v with the group tensors and v->index = sample_index. */
void ssl_view_pipes_run(const ssl_view_pipes *vp, uint64_t seed, int64_t epoch, const uint8_t *images, int n, int H,
                        int W, int C, const int64_t *sample_index, float *out, ssl_views *v);

/* Scratch bytes ssl_view_pipes_sample needs (the largest view's augmentation workspace). */
size_t ssl_view_pipes_scratch_bytes(const ssl_view_pipes *vp);

/* Every view of sample i of an n-sample batch: image (H, W, C), written into out at the places
 * ssl_view_pipes_run gives that sample (out is the whole batch's staging). Single-threaded; equals
 * ssl_view_pipes_run byte for byte. */
void ssl_view_pipes_sample(const ssl_view_pipes *vp, uint64_t seed, int64_t epoch, const uint8_t *image, int H, int W,
                           int C, int64_t sample_index, int i, int n, float *out, void *scratch);

/* The group tensors of a staged batch of n (v->index is left to the caller). */
void ssl_view_pipes_bind(const ssl_view_pipes *vp, int n, int C, float *out, ssl_views *v);

#endif
