/* Read-only view of a sharded HDF5 image dataset (format in shard_writer.h): a directory of *.h5
 * shards, a glob, or one file, in name order. Every shard is validated at open; afterwards any
 * global sample index can be read. Shard files stay open; labels are held in memory. */
#ifndef SSL_IO_DATASET_H
#define SSL_IO_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct ssl_dataset ssl_dataset;

/* path_or_glob: a directory (all its *.h5 files), a pattern with * ? [ (e.g. data/train-*.h5), or
 * one file; names ending in .tmp (unfinished shards) are skipped. Checks each shard: readable HDF5,
 * `images` uint8 rank 4 matching the height/width/channels attributes and the first shard, optional
 * `labels` int32 of the same length with values in [0, num_classes), the same num_classes and
 * presence of labels in every shard. `format` and `version` are checked when present and
 * num_classes may be absent (0), so shards written by other tools (h5py) open too.
 * Returns NULL with a message naming the file and dataset on any failure. */
ssl_dataset *ssl_dataset_open(const char *path_or_glob, char *err, size_t errlen);

/* Closes every shard and frees d. Returns -1 if HDF5 reported a failed close (nothing is lost: the
 * files were read-only). d may be NULL. */
int ssl_dataset_close(ssl_dataset *d);

int64_t ssl_dataset_size(const ssl_dataset *d);   /* total samples over all shards */
int ssl_dataset_height(const ssl_dataset *d);     /* 0 for JPEG shards: each image has its own */
int ssl_dataset_width(const ssl_dataset *d);
int ssl_dataset_channels(const ssl_dataset *d);
int ssl_dataset_num_classes(const ssl_dataset *d); /* 0 when the shards do not say */
int ssl_dataset_has_labels(const ssl_dataset *d);
/* Every sample's label (ssl_dataset_size entries, held in memory), or NULL without labels. */
const int32_t *ssl_dataset_labels(const ssl_dataset *d);
int ssl_dataset_num_shards(const ssl_dataset *d);
const char *ssl_dataset_shard_path(const ssl_dataset *d, int shard);

/* Reads samples at the given global indices (any order, repeats allowed) into
 * out_images (n, H, W, C) uint8 and, when non-NULL, out_labels (n) int32 (-1 where the dataset has
 * no labels). Runs of consecutive indices within one shard are one hyperslab read.
 * Thread-safe: HDF5 work is serialised by the process HDF5 lock (io/h5lock.h).
 * Returns 0, or -1 with a message naming the shard and dataset (outputs then undefined). */
int ssl_dataset_read(ssl_dataset *d, const int64_t *indices, int n, uint8_t *out_images,
                     int32_t *out_labels, char *err, size_t errlen);

/* JPEG shards (format in shard_writer.h): images keep their own sizes and are decoded by the reader
 * of a batch (io/jpeg_decode.h). */
int ssl_dataset_is_jpeg(const ssl_dataset *d);
/* (ssl_dataset_size, 2): each sample's stored (height, width), held in memory; NULL for raw shards. */
const int32_t *ssl_dataset_sizes(const ssl_dataset *d);

/* The encoded bytes of samples at the given global indices, back to back into *buf (grown with
 * ssl_malloc as needed; *cap its size), sample i at (*buf)[off[i]] .. (*buf)[off[i + 1]] (off: n + 1
 * entries), labels as ssl_dataset_read. Runs of consecutive indices within one shard are one read.
 * Thread-safe as ssl_dataset_read. 0, or -1 with a message naming the shard and dataset. */
int ssl_dataset_read_encoded(ssl_dataset *d, const int64_t *indices, int n, uint8_t **buf, size_t *cap,
                             size_t *off, int32_t *out_labels, char *err, size_t errlen);

/* Which shard file holds global sample idx, and its row there (for messages). */
const char *ssl_dataset_locate(const ssl_dataset *d, int64_t idx, int64_t *row);

#endif
