/* The dataset reader's internals, shared by dataset.c (open, raw shards) and dataset_jpeg.c (JPEG
 * shards); not for use outside io/dataset*.c. */
#ifndef SSL_IO_DATASET_INTERNAL_H
#define SSL_IO_DATASET_INTERNAL_H

#include "framework/core/check.h"
#include "io/dataset.h"

#include <hdf5.h>

typedef struct {
    char *path;
    hid_t file, images, labels; /* labels is open only during ssl_dataset_open */
    hid_t fspace;               /* file dataspace of images (or jpeg), reused for every read's selection */
    int64_t n;
    size_t chunk_bytes;         /* 0: contiguous layout */
    hid_t jpeg;                 /* JPEG shards: the encoded bytes */
    int64_t *jpeg_off;          /* JPEG shards: (n + 1) byte offsets, held in memory */
    int32_t *jpeg_hw;           /* JPEG shards: (n, 2) sizes until copied into the dataset's */
} shard;

struct ssl_dataset {
    char *spec;       /* the path or glob it was opened with, for messages */
    int nshards;
    shard *shards;
    int64_t *offsets; /* (nshards + 1): shard s holds global rows [offsets[s], offsets[s+1]) */
    int64_t total;
    int height, width, channels, num_classes, has_labels;
    int jpeg;         /* 1: JPEG shards (height = width = 0, sizes per sample) */
    size_t sample_bytes;
    int32_t *labels;  /* (total) or NULL */
    int32_t *sizes;   /* JPEG shards: (total, 2) stored (height, width) */
};

/* 1: the dataset's type equals native; 0: another (its name in tname); -1: HDF5 error. */
int ssl_ds_check_type(hid_t ds, hid_t native, char *tname, size_t len);
/* Rank and dims (up to 4) of a dataspace; -1 on error. */
int ssl_ds_get_dims(hid_t space, hsize_t *dims);
int ssl_ds_read_int_attr(hid_t file, const char *name, long long *v);
int ssl_ds_read_str_attr(hid_t file, const char *name, char *buf, size_t len);
/* Storage checks that keep a damaged file from making HDF5 over-read or over-allocate (dataset.c). */
int ssl_ds_check_storage(hid_t file, hid_t ds, const char *path, const char *name, int rank, const hsize_t *dims,
                         size_t elem, size_t row_bytes, int written, size_t *chunk_bytes, char *err, size_t errlen);
/* JPEG shard i (dataset_jpeg.c): opens `jpeg`, reads `offsets` and `sizes` (sizes into d->sizes
 * once d->offsets[i] is known, see ssl_ds_jpeg_load_sizes), sets s->n. Caller holds the HDF5 lock. */
int ssl_ds_jpeg_open(ssl_dataset *d, int i, char *err, size_t errlen);
int ssl_ds_jpeg_load_sizes(ssl_dataset *d, int i, char *err, size_t errlen);
/* Largest s with offsets[s] <= idx. */
int ssl_ds_shard_of(const ssl_dataset *d, int64_t idx);

#endif
