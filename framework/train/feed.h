/* Micro-batches from the loader to the device: the views (or, with augment.on device, their staged
 * sources and jobs) uploaded once each, and on a device backend one batch ahead, so the copy of the
 * next micro-batch runs on the copy stream while this one computes (two device buffers in turn). */
#ifndef SSL_TRAIN_FEED_H
#define SSL_TRAIN_FEED_H

#include "framework/core/ctx.h"
#include "framework/train/views.h"

typedef struct {
    int ahead;           /* device backend with upload_ahead: one batch in flight */
    float *buf[2];       /* device staging: a micro-batch each, used in turn */
    float *views;        /* augment.on device: the op's output */
    int cur;             /* buf[cur] holds the batch the next call returns */
    int have;            /* a batch is in flight in buf[cur] */
    ssl_batch meta[2];   /* their batches' geometry, indices and labels, copied out of the loader */
    int64_t *indices[2];
    int32_t *labels[2];
    size_t bytes[2];     /* staging bytes uploaded */
    char *deferred;      /* the loader's error while reading ahead, for the call that needs the batch */
} ssl_feed;

/* For micro-batches of n on c's backend. */
void ssl_feed_init(ssl_feed *f, const ssl_ctx *c, int n);

/* The next micro-batch: *views its views on c's device (as ssl_view_pipes_bind lays them out) and *b
 * its batch (indices, labels, n, epoch; image pointers unset), valid until the next call. 0, or -1
 * with the loader's error. */
int ssl_feed_next(ssl_feed *f, ssl_loader *l, const ssl_view_pipes *vp, ssl_ctx *c, int C, float **views,
                  ssl_batch *b, char *err, size_t errlen);

void ssl_feed_free(ssl_feed *f, ssl_ctx *c);

#endif
