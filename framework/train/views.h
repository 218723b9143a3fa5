/* A method's view plan made concrete for one dataset: one augmentation pipeline per view (all groups
 * in order) and the staging layout of a micro-batch's views, used by the trainer and by
 * `sslrun augment-preview`. */
#ifndef SSL_TRAIN_VIEWS_H
#define SSL_TRAIN_VIEWS_H

#include "io/loader.h"
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

/* A reader thread's scratch for ssl_view_pipes_sample: a JPEG decoder, then the largest view's
 * augmentation workspace. ssl_view_pipes_scratch_bytes of zeroed memory; release with
 * ssl_view_scratch_free (the decoder's buffers) before freeing it. */
size_t ssl_view_pipes_scratch_bytes(const ssl_view_pipes *vp);
void ssl_view_scratch_free(void *scratch);

/* Every view of sample src of batch b, written where ssl_view_pipes_run puts sample dst (out is the
 * whole batch's staging; dst != src only to stand in for an undecodable image). Crops are drawn for
 * the sample's stored size; a JPEG is decoded at the coarsest scale they allow. Single-threaded;
 * for raw images equal to ssl_view_pipes_run byte for byte. 0, or -1 with the decoder's reason. */
int ssl_view_pipes_sample(const ssl_view_pipes *vp, uint64_t seed, const ssl_batch *b, int src, int dst, float *out,
                          void *scratch, char *err, size_t errlen);

/* The group tensors of a staged batch of n (v->index is left to the caller). */
void ssl_view_pipes_bind(const ssl_view_pipes *vp, int n, int C, float *out, ssl_views *v);

#endif
