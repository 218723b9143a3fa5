/* Prefetching loader (see loader.h). Batch sequence number k (k-th batch after the start) always
 * goes to ring slot k % nslots, and workers claim sequence numbers in order, so which thread reads a
 * batch never changes what the caller sees. HDF5 reads are serialised inside ssl_dataset_read; the
 * transform runs outside every lock. */
#include "io/loader.h"

#include "framework/core/check.h"

#include <stdio.h>
#include <string.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_FAILED };

struct ssl_loader_slot {
    int64_t seq;          /* batch sequence number held, -1 none */
    int state;
    int64_t epoch, step;
    uint8_t *images;      /* (local_batch, H, W, C) */
    int32_t *labels;      /* (local_batch) or NULL */
    int64_t *indices;     /* (local_batch) */
    float *out;           /* (tf.out_floats) or NULL */
    uint8_t *enc;         /* JPEG shards: the batch's encoded bytes (grown as needed) */
    size_t enc_cap, *enc_off;
    int32_t *hw;
    char err[1024];
};

/* (epoch, step) of sequence number seq: steps continue across epoch boundaries. */
static void seq_position(const ssl_loader *l, int64_t seq, int64_t *epoch, int64_t *step)
{
    int64_t t = l->start_step + seq, spe = l->sampler.steps_per_epoch;
    *epoch = l->start_epoch + t / spe;
    *step = t % spe;
}

static void lock(ssl_loader *l) { SSL_ASSERT(pthread_mutex_lock(&l->mu) == 0); }
static void unlock(ssl_loader *l) { SSL_ASSERT(pthread_mutex_unlock(&l->mu) == 0); }

static void fill_batch(const ssl_loader *l, const ssl_loader_slot *slot, ssl_batch *b)
{
    *b = (ssl_batch){.images = slot->hw ? NULL : slot->images, .encoded = slot->enc, .enc_off = slot->enc_off,
                     .hw = slot->hw, .H = ssl_dataset_height(l->ds), .W = ssl_dataset_width(l->ds),
                     .C = ssl_dataset_channels(l->ds), .labels = slot->labels, .indices = slot->indices,
                     .n = l->sampler.local_batch, .epoch = slot->epoch, .step = slot->step, .out = slot->out};
}

void ssl_batch_size(const ssl_batch *b, int i, int *h, int *w)
{
    *h = b->hw ? b->hw[2 * i] : b->H;
    *w = b->hw ? b->hw[2 * i + 1] : b->W;
}

int ssl_batch_pixels(const ssl_batch *b, int i, ssl_jpeg_decoder *dec, ssl_augment_params *p, const int *out_size,
                     int np, const uint8_t **px, int *H, int *W, char *err, size_t errlen)
{
    if (!b->hw) {
        *px = b->images + (size_t)i * (size_t)b->H * (size_t)b->W * (size_t)b->C;
        *H = b->H, *W = b->W;
        return 0;
    }
    return ssl_jpeg_decode_crops(dec, b->encoded + b->enc_off[i], b->enc_off[i + 1] - b->enc_off[i], b->hw[2 * i],
                                 b->hw[2 * i + 1], b->C, p, out_size, np, px, H, W, err, errlen);
}

int ssl_batch_read(ssl_dataset *d, const int64_t *indices, int n, int64_t epoch, ssl_batch_buf *buf, ssl_batch *b,
                   char *err, size_t errlen)
{
    memset(buf, 0, sizeof *buf);
    const int jpeg = ssl_dataset_is_jpeg(d);
    const size_t img = (size_t)ssl_dataset_height(d) * ssl_dataset_width(d) * ssl_dataset_channels(d);
    buf->indices = ssl_malloc((size_t)n * sizeof *buf->indices);
    memcpy(buf->indices, indices, (size_t)n * sizeof *indices);
    buf->labels = ssl_malloc((size_t)n * sizeof *buf->labels);
    int rc;
    if (jpeg) {
        buf->enc_off = ssl_malloc(((size_t)n + 1) * sizeof *buf->enc_off);
        buf->hw = ssl_malloc((size_t)n * 2 * sizeof *buf->hw);
        rc = ssl_dataset_read_encoded(d, indices, n, &buf->enc, &buf->enc_cap, buf->enc_off, buf->labels, err, errlen);
        for (int i = 0; rc == 0 && i < n; i++)
            buf->hw[2 * i] = ssl_dataset_sizes(d)[2 * indices[i]],
            buf->hw[2 * i + 1] = ssl_dataset_sizes(d)[2 * indices[i] + 1];
    } else {
        buf->images = ssl_malloc((size_t)n * img);
        rc = ssl_dataset_read(d, indices, n, buf->images, buf->labels, err, errlen);
    }
    *b = (ssl_batch){.images = buf->images, .encoded = buf->enc, .enc_off = buf->enc_off, .hw = buf->hw,
                     .H = ssl_dataset_height(d), .W = ssl_dataset_width(d), .C = ssl_dataset_channels(d),
                     .labels = buf->labels, .indices = buf->indices, .n = n, .epoch = epoch};
    return rc;
}

void ssl_batch_buf_free(ssl_batch_buf *buf)
{
    ssl_free(buf->images);
    ssl_free(buf->enc);
    ssl_free(buf->enc_off);
    ssl_free(buf->hw);
    ssl_free(buf->labels);
    ssl_free(buf->indices);
    memset(buf, 0, sizeof *buf);
}

typedef struct {
    ssl_loader *l;
    int id;
} worker_arg;

static void *worker(void *arg)
{
    ssl_loader *l = ((worker_arg *)arg)->l;
    void *scratch = l->scratch[((worker_arg *)arg)->id];
    ssl_free(arg);
    lock(l);
    for (;;) {
        /* A slot is reusable once the caller moved past the batch it held (nslots = depth + 1). */
        while (!l->stop && !l->failed && l->next_claim >= l->released + l->nslots)
            SSL_ASSERT(pthread_cond_wait(&l->cv_free, &l->mu) == 0);
        if (l->stop || l->failed) break;
        int64_t seq = l->next_claim++;
        ssl_loader_slot *slot = &l->slots[seq % l->nslots];
        slot->seq = seq;
        slot->state = SLOT_FILLING;
        seq_position(l, seq, &slot->epoch, &slot->step);
        /* under the lock: the sampler caches the epoch's permutation */
        int rc = ssl_sampler_batch(&l->sampler, slot->epoch, slot->step, slot->indices);
        unlock(l);
        const int n = l->sampler.local_batch;
        if (rc != 0)
            snprintf(slot->err, sizeof slot->err, "sampler has no such batch");
        else if (slot->hw) {
            rc = ssl_dataset_read_encoded(l->ds, slot->indices, n, &slot->enc, &slot->enc_cap, slot->enc_off,
                                          slot->labels, slot->err, sizeof slot->err);
            const int32_t *hw = ssl_dataset_sizes(l->ds);
            for (int i = 0; rc == 0 && i < n; i++)
                slot->hw[2 * i] = hw[2 * slot->indices[i]], slot->hw[2 * i + 1] = hw[2 * slot->indices[i] + 1];
        } else
            rc = ssl_dataset_read(l->ds, slot->indices, n, slot->images, slot->labels, slot->err, sizeof slot->err);
        if (rc == 0 && l->tf.fn) {
            ssl_batch b;
            fill_batch(l, slot, &b);
            b.out = NULL;
            rc = l->tf.fn(l->tf.ctx, &b, slot->out, scratch, slot->err, sizeof slot->err);
        }
        lock(l);
        slot->state = rc == 0 ? SLOT_READY : SLOT_FAILED;
        if (rc != 0) {
            l->failed = 1; /* no new claims; batches before this one are still delivered */
            SSL_ASSERT(pthread_cond_broadcast(&l->cv_free) == 0);
        }
        SSL_ASSERT(pthread_cond_broadcast(&l->cv_ready) == 0);
    }
    unlock(l);
    return NULL;
}

static void free_parts(ssl_loader *l)
{
    if (l->slots)
        for (int i = 0; i < l->nslots; i++) {
            ssl_free(l->slots[i].images);
            ssl_free(l->slots[i].labels);
            ssl_free(l->slots[i].indices);
            if (l->tf.out_free) l->tf.out_free(l->slots[i].out);
            else ssl_free(l->slots[i].out);
            ssl_free(l->slots[i].enc);
            ssl_free(l->slots[i].enc_off);
            ssl_free(l->slots[i].hw);
        }
    if (l->scratch)
        for (int i = 0; i < l->nthreads; i++) {
            if (l->scratch[i] && l->tf.scratch_free) l->tf.scratch_free(l->scratch[i]);
            ssl_free(l->scratch[i]);
        }
    ssl_free(l->scratch);
    l->scratch = NULL;
    ssl_free(l->slots);
    ssl_free(l->threads);
    ssl_free(l->error);
    ssl_sampler_free(&l->sampler);
    l->slots = NULL;
    l->threads = NULL;
    l->error = NULL;
}

int ssl_loader_start(ssl_loader *l, ssl_dataset *d, const ssl_sampler *s, int64_t epoch,
                     int64_t start_step, int nthreads, int depth, const ssl_loader_transform *tf,
                     char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    const char *why = NULL;
    if (nthreads < 1 || depth < 1) why = "threads and depth must be >= 1";
    else if (!s->perm) why = "sampler is not initialised";
    else if (s->n_samples > ssl_dataset_size(d)) why = "sampler covers more samples than the dataset";
    else if (epoch < 0 || start_step < 0 || start_step >= s->steps_per_epoch)
        why = "start position outside the epoch";
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "loader: %s (threads %d, depth %d, epoch %lld, step %lld)", why,
                     nthreads, depth, (long long)epoch, (long long)start_step);
        return -1;
    }
    if (ssl_sampler_init(&l->sampler, s->n_samples, s->global_batch, s->rank, s->world, s->seed,
                         s->drop_last, err, errlen) != 0)
        return -1;
    l->sampler.shuffle = s->shuffle;
    if (s->local) ssl_sampler_set_local(&l->sampler);
    l->sampler.map = s->map;
    l->ds = d;
    l->start_epoch = epoch;
    l->start_step = start_step;
    l->nthreads = nthreads;
    l->nslots = depth + 1; /* depth ahead of the one batch the caller holds */
    size_t img_bytes = (size_t)s->local_batch * (size_t)ssl_dataset_height(d) *
                       (size_t)ssl_dataset_width(d) * (size_t)ssl_dataset_channels(d);
    if (tf) l->tf = *tf; /* before the slots: free_parts frees their outputs with tf's out_free */
    l->slots = ssl_calloc((size_t)l->nslots, sizeof *l->slots);
    for (int i = 0; i < l->nslots; i++) {
        ssl_loader_slot *sl = &l->slots[i];
        sl->seq = -1;
        sl->state = SLOT_FREE;
        sl->images = img_bytes ? ssl_malloc(img_bytes) : NULL;
        sl->labels = ssl_dataset_has_labels(d)
                         ? ssl_malloc((size_t)s->local_batch * sizeof *sl->labels) : NULL;
        sl->indices = ssl_malloc((size_t)s->local_batch * sizeof *sl->indices);
        sl->out = tf && tf->fn ? (tf->out_alloc ? tf->out_alloc(tf->out_floats * sizeof(float))
                                                : ssl_malloc(tf->out_floats * sizeof(float)))
                               : NULL;
        if (ssl_dataset_is_jpeg(d)) {
            sl->enc_off = ssl_malloc(((size_t)s->local_batch + 1) * sizeof *sl->enc_off);
            sl->hw = ssl_malloc((size_t)s->local_batch * 2 * sizeof *sl->hw);
        }
    }
    l->threads = ssl_calloc((size_t)nthreads, sizeof *l->threads);
    l->scratch = ssl_calloc((size_t)nthreads, sizeof *l->scratch);
    for (int t = 0; t < nthreads; t++)
        l->scratch[t] = l->tf.fn && l->tf.scratch_bytes ? ssl_calloc(1, l->tf.scratch_bytes) : NULL;
    if (pthread_mutex_init(&l->mu, NULL) != 0 || pthread_cond_init(&l->cv_free, NULL) != 0 ||
        pthread_cond_init(&l->cv_ready, NULL) != 0)
        SSL_ABORT("loader: cannot initialise pthread mutex/condition variables");
    for (int t = 0; t < nthreads; t++) {
        worker_arg *wa = ssl_malloc(sizeof *wa);
        *wa = (worker_arg){l, t};
        if (pthread_create(&l->threads[t], NULL, worker, wa) != 0) {
            ssl_free(wa);
            lock(l);
            l->stop = 1;
            SSL_ASSERT(pthread_cond_broadcast(&l->cv_free) == 0);
            unlock(l);
            for (int j = 0; j < t; j++) SSL_ASSERT(pthread_join(l->threads[j], NULL) == 0);
            pthread_cond_destroy(&l->cv_ready);
            pthread_cond_destroy(&l->cv_free);
            pthread_mutex_destroy(&l->mu);
            free_parts(l);
            if (err && errlen) snprintf(err, errlen, "loader: cannot start reader thread %d", t);
            return -1;
        }
    }
    l->running = 1;
    return 0;
}

int ssl_loader_next(ssl_loader *l, ssl_batch *batch, char *err, size_t errlen)
{
    if (!l->running) {
        if (err && errlen) snprintf(err, errlen, "loader: not running");
        return -1;
    }
    lock(l);
    if (l->holding) {
        l->released = l->next_take;
        l->holding = 0;
        SSL_ASSERT(pthread_cond_broadcast(&l->cv_free) == 0);
    }
    if (!l->error) {
        ssl_loader_slot *slot = &l->slots[l->next_take % l->nslots];
        /* Claims are in order, so every sequence before a failed one is claimed and completes:
         * this wait always ends. */
        while (!(slot->seq == l->next_take &&
                 (slot->state == SLOT_READY || slot->state == SLOT_FAILED)))
            SSL_ASSERT(pthread_cond_wait(&l->cv_ready, &l->mu) == 0);
        if (slot->state == SLOT_FAILED) {
            size_t len = strlen(slot->err) + 96;
            l->error = ssl_malloc(len);
            snprintf(l->error, len, "loader: epoch %lld step %lld: %s", (long long)slot->epoch,
                     (long long)slot->step, slot->err);
        } else {
            fill_batch(l, slot, batch);
            l->next_take++;
            l->holding = 1;
        }
    }
    int rc = 0;
    if (l->error) {
        if (err && errlen) snprintf(err, errlen, "%s", l->error);
        rc = -1;
    }
    unlock(l);
    return rc;
}

void ssl_loader_stop(ssl_loader *l)
{
    if (!l->running) return;
    lock(l);
    l->stop = 1;
    SSL_ASSERT(pthread_cond_broadcast(&l->cv_free) == 0);
    unlock(l);
    for (int t = 0; t < l->nthreads; t++) SSL_ASSERT(pthread_join(l->threads[t], NULL) == 0);
    SSL_ASSERT(pthread_cond_destroy(&l->cv_ready) == 0);
    SSL_ASSERT(pthread_cond_destroy(&l->cv_free) == 0);
    SSL_ASSERT(pthread_mutex_destroy(&l->mu) == 0);
    free_parts(l);
    l->running = 0;
}
