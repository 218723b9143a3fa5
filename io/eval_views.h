/* Deterministic evaluation views of dataset samples (kNN / linear-probe features, fine-tuning's test
 * top-1), for raw and JPEG shards alike. */
#ifndef SSL_IO_EVAL_VIEWS_H
#define SSL_IO_EVAL_VIEWS_H

#include "io/augment.h"
#include "io/dataset.h"
#include "io/jpeg_decode.h"

/* The centre crop's share of the shorter side for JPEG shards: Resize(S / 0.875) + CenterCrop(S),
 * the ImageNet evaluation transform (256 -> 224). */
#define SSL_EVAL_CENTER_FRAC 0.875f

/* Reusable buffers; all zero is a valid empty reader. */
typedef struct {
    uint8_t *img, *enc;
    size_t img_cap, enc_cap, *off;
    int off_cap, ndec;
    ssl_jpeg_decoder *dec; /* one per OpenMP thread */
    void **ws;
} ssl_eval_reader;

/* Samples idx[0..n) into out (n, C, S, S), S = a->out_size, labels into y (NULL: not wanted). Raw
 * shards: a's transform of the whole stored image (ssl_augment_batch, seed 0, epoch 0); JPEG shards:
 * the centre crop of SSL_EVAL_CENTER_FRAC of the shorter side, decoded at the scale it allows, then
 * normalised as a says. OpenMP over samples. 0, or -1 naming the shard, dataset and row. */
int ssl_eval_read_views(ssl_eval_reader *r, ssl_dataset *ds, const ssl_augment_config *a, const int64_t *idx, int n,
                        float *out, int32_t *y, char *err, size_t errlen);
void ssl_eval_reader_free(ssl_eval_reader *r);

#endif
