/* A method's view plan made concrete for one dataset: one augmentation pipeline per view (all groups
 * in order) and the staging layout of a micro-batch's views, used by the trainer and by
 * `sslrun augment-preview`. */
#ifndef SSL_TRAIN_VIEWS_H
#define SSL_TRAIN_VIEWS_H

#include "framework/core/ctx.h"
#include "io/loader.h"
#include "methods/method.h"

typedef struct {
    ssl_view_plan plan;
    int nviews; /* all groups together */
    ssl_augment_config pipe[SSL_VIEWS_MAX];
    /* augment.on device: the reader threads draw each view's parameters and stage the source pixels
     * and one job per view (backend/augment.h); the step uploads them and the backend's augment op
     * makes the views. 0: the reader threads make the views themselves. */
    int device;
    size_t stage_cap;  /* device: bytes of source pixels a micro-batch can need (its n largest images) */
} ssl_view_pipes;

/* The pipelines of a method's views (vt, plan: ssl_method_configure's) for C-channel images: the augment section at each group's size, edited
 * by the method's view_pipeline hook, each checked. 0, or -1 with the group and view in err. */
int ssl_view_pipes_init(ssl_view_pipes *vp, const ssl_method_vtable *vt, const ssl_view_plan *plan,
                        const ssl_config *cfg, int C, char *err, size_t errlen);

/* Floats to stage the views of n C-channel images. */
size_t ssl_view_pipes_floats(const ssl_view_pipes *vp, int n, int C);

/* Augment on the device from now on, for micro-batches of n images of dataset ds: the staging holds
 * the n largest stored images' pixels (a decoded image is at most its stored size), so no batch
 * overflows it. */
void ssl_view_pipes_use_device(ssl_view_pipes *vp, const ssl_dataset *ds, int n);

/* What the loader stages per micro-batch of n, in floats: the views, or (device) a header, the jobs
 * and the source pixels. */
size_t ssl_view_pipes_staging_floats(const ssl_view_pipes *vp, int n, int C);

/* Bytes of staging b->out that the step uploads for staged batch b. */
size_t ssl_view_pipes_upload_bytes(const ssl_view_pipes *vp, const ssl_batch *b, int C);

/* The views of a micro-batch of n from its staging already on c's backend (staged): the staging
 * itself, or (device) the augment op's output in *views (made on first use). */
float *ssl_view_pipes_make(const ssl_view_pipes *vp, ssl_ctx *c, float *staged, int n, int C, float **views);

/* One pipeline a at size px: fine-tuning's single view (view id 0, as a one-view method's first). */
void ssl_view_pipes_single(ssl_view_pipes *vp, const ssl_augment_config *a, int size);

/* A reader thread's scratch for ssl_view_pipes_sample: a JPEG decoder, then the largest view's
 * augmentation workspace. ssl_view_pipes_scratch_bytes of zeroed memory; release with
 * ssl_view_scratch_free (the decoder's buffers) before freeing it. */
size_t ssl_view_pipes_scratch_bytes(const ssl_view_pipes *vp);
void ssl_view_scratch_free(void *scratch);

/* Every view of sample src of batch b, written where sample dst's views go in the batch's staging
 * (group after group, each (count * n, C, size, size) view-major; view id k over all groups is keyed
 * by (seed, epoch, sample, k)); dst != src only to stand in for an undecodable image). Crops are drawn for
 * the sample's stored size; a JPEG is decoded at the coarsest scale they allow. Single-threaded;
 * for raw images equal to ssl_augment_view of the whole batch byte for byte. Device: the source and
 * the jobs staged instead (ssl_view_pipes_batch starts the staging). 0, or -1 with the decoder's
 * reason. */
int ssl_view_pipes_sample(const ssl_view_pipes *vp, uint64_t seed, const ssl_batch *b, int src, int dst, float *out,
                          void *scratch, char *err, size_t errlen);

/* The loader's transform body, for pretraining and fine-tuning alike (a reader thread): every sample
 * of b into out. An image that does not decode is named by its shard and row in ds; with stop set that
 * is the error, otherwise a warning on stderr (rank, and *corrupt, the run's count, added atomically)
 * and the next decodable image of the batch stands in. 0, or -1 with err. */
int ssl_view_pipes_batch(const ssl_view_pipes *vp, uint64_t seed, const ssl_batch *b, const ssl_dataset *ds, int stop,
                         int rank, int64_t *corrupt, float *out, void *scratch, char *err, size_t errlen);

/* The group tensors of a staged batch of n (v->index is left to the caller). */
void ssl_view_pipes_bind(const ssl_view_pipes *vp, int n, int C, float *out, ssl_views *v);

#endif
