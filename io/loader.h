/* Prefetching batch loader: background threads read the next batches (indices from the sampler)
 * into a small ring of preallocated buffers, and run the caller's transform on them (the trainer's
 * augmentation), while the training step runs. Batches come out in (epoch, step) order whatever the
 * thread count, and a reader error reaches the caller as a message. */
#ifndef SSL_IO_LOADER_H
#define SSL_IO_LOADER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"
#include "io/jpeg_decode.h"
#include "io/sampler.h"

typedef struct {
    const uint8_t *images;  /* raw shards: (n, H, W, C) uint8; NULL for JPEG shards */
    const uint8_t *encoded; /* JPEG shards: sample i is encoded[enc_off[i]] .. encoded[enc_off[i + 1]] */
    const size_t *enc_off;  /* (n + 1) */
    const int32_t *hw;      /* JPEG shards: (n, 2) stored (height, width) */
    int H, W, C;            /* raw: every image's size; JPEG: H = W = 0 */
    const int32_t *labels;  /* (n), or NULL when the dataset has no labels */
    const int64_t *indices; /* (n) global sample indices (key the augmentation RNG with these) */
    int n;                  /* the sampler's local batch */
    int64_t epoch, step;
    float *out;             /* the transform's output (NULL without one); the caller may write it */
} ssl_batch;

/* Sample i's stored size (what crops are drawn for). */
void ssl_batch_size(const ssl_batch *b, int i, int *h, int *w);

/* Sample i's pixels (HWC, b->C channels) for crops p[0..np) drawn at ssl_batch_size with outputs
 * out_size[k]: raw images as stored; JPEG ones decoded by dec at the coarsest scale the crops allow,
 * p mapped onto the decoded image (io/jpeg_decode.h). 0, or -1 with the reason. */
int ssl_batch_pixels(const ssl_batch *b, int i, ssl_jpeg_decoder *dec, ssl_augment_params *p, const int *out_size,
                     int np, const uint8_t **px, int *H, int *W, char *err, size_t errlen);

/* A batch read on the calling thread, for tools that want a few samples rather than a loader
 * (sslrun augment-preview): buffers owned by buf, released with ssl_batch_buf_free. */
typedef struct {
    uint8_t *images, *enc;
    size_t enc_cap, *enc_off;
    int32_t *hw, *labels;
    int64_t *indices;
} ssl_batch_buf;
int ssl_batch_read(ssl_dataset *d, const int64_t *indices, int n, int64_t epoch, ssl_batch_buf *buf, ssl_batch *b,
                   char *err, size_t errlen);
void ssl_batch_buf_free(ssl_batch_buf *buf);

/* Work done on every batch in the loader's threads once it is read, so that the training thread
 * only waits when the loader is truly behind. fn fills out (out_floats floats) from b (b->out is
 * NULL during the call); scratch is scratch_bytes owned by the calling thread, zeroed at start and
 * handed to scratch_free (if set) at stop. fn must not depend on which thread runs it (key
 * randomness by sample index and epoch, as the augmentation does). 0, or -1 with a message: the
 * batch then fails as a read error does. */
typedef struct {
    int (*fn)(void *ctx, const ssl_batch *b, float *out, void *scratch, char *err, size_t errlen);
    void (*scratch_free)(void *scratch);
    void *ctx;
    size_t out_floats, scratch_bytes;
    /* the slots' output memory (NULL: ssl_malloc / ssl_free): the trainers pass their backend's
     * page-locked host memory, which the step uploads from */
    void *(*out_alloc)(size_t bytes);
    void (*out_free)(void *p);
} ssl_loader_transform;

typedef struct ssl_loader_slot ssl_loader_slot;

/* Fields are private; the struct is public only so that callers can own it. */
typedef struct {
    ssl_dataset *ds;
    ssl_sampler sampler;      /* own copy: the workers cache permutations in it */
    int64_t start_epoch, start_step;
    pthread_mutex_t mu;
    pthread_cond_t cv_free;   /* a slot was released, or stop/failure */
    pthread_cond_t cv_ready;  /* a slot was filled (or failed) */
    pthread_t *threads;
    void **scratch;           /* (nthreads) transform scratch, one per thread */
    ssl_loader_transform tf;
    int nthreads, nslots;
    ssl_loader_slot *slots;
    int64_t next_claim;       /* next batch sequence number a worker will read */
    int64_t next_take;        /* next sequence number ssl_loader_next returns */
    int64_t released;         /* sequences below this are consumed and their slots reusable */
    int holding;              /* the caller holds sequence next_take - 1 */
    int stop, failed;
    char *error;              /* sticky error message once a batch failed */
    int running;
} ssl_loader;

/* Starts nthreads (>= 1) readers that prefetch up to depth (>= 1) batches ahead, beginning at
 * (epoch, start_step) and continuing into later epochs until stopped, each batch passed through tf
 * (NULL: none; copied). The sampler's settings are copied; d must stay open until ssl_loader_stop.
 * Returns 0, or -1 with a message. */
int ssl_loader_start(ssl_loader *l, ssl_dataset *d, const ssl_sampler *s, int64_t epoch,
                     int64_t start_step, int nthreads, int depth, const ssl_loader_transform *tf,
                     char *err, size_t errlen);

/* Blocks until the next batch in order is ready. Its buffers stay valid until the next call or
 * ssl_loader_stop. Returns 0, or -1 with a message (naming epoch, step, shard and dataset) once a
 * read failed; every later call fails the same way. */
int ssl_loader_next(ssl_loader *l, ssl_batch *batch, char *err, size_t errlen);

/* Stops and joins the readers (a read in flight finishes first) and frees everything. Safe on a
 * loader whose start failed, and idempotent. */
void ssl_loader_stop(ssl_loader *l);

#endif
