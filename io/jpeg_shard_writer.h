/* Writer for version-3 JPEG shards (format in shard_writer.h): encoded files back to back in `jpeg`,
 * with `offsets`, `sizes` and optional `labels`. Same contract as ssl_shard_writer: shards are
 * out_dir/<prefix>-%05d.h5, written as NAME.tmp and renamed only when complete, rolled over every
 * shard_size samples; stale higher-numbered shards of the prefix go at close. */
#ifndef SSL_IO_JPEG_SHARD_WRITER_H
#define SSL_IO_JPEG_SHARD_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *out_dir;  /* existing directory */
    const char *prefix;   /* shards are out_dir/<prefix>-%05d.h5 */
    int num_classes;      /* 0 when unknown */
    int with_labels;      /* 1: every sample carries an int32 label in [0, num_classes) */
    int shard_size;       /* samples per shard (> 0); the last shard may be shorter */
    int chunk_bytes;      /* bytes per chunk of `jpeg`; 0: SSL_JPEG_SHARD_CHUNK */
} ssl_jpeg_shard_spec;

/* Default chunk of the `jpeg` byte dataset: HDF5 reads and checksums whole chunks, so a random image
 * costs its chunks. 2,000 JPEGs of 5-30 KB in one shard (AMD EPYC VM, warm page cache, no chunk
 * cache): 64 KiB 46 B/image overhead (mostly the padded last chunk), 327 MB/s random single-image
 * reads; 256 KiB 138 B, 107 MB/s; 1 MiB 138 B, 34 MB/s; 4 MiB 663 B, 7 MB/s. */
#define SSL_JPEG_SHARD_CHUNK (64 << 10)

typedef struct ssl_jpeg_shard_writer ssl_jpeg_shard_writer;

/* Validates the spec; no file is created before the first sample. NULL with a message on error. */
ssl_jpeg_shard_writer *ssl_jpeg_shard_writer_open(const ssl_jpeg_shard_spec *spec, char *err,
                                                  size_t errlen);

/* Appends one encoded image of len > 0 bytes whose decoded size is height x width; label is ignored
 * without labels. Returns 0, or -1 with a message naming the file and dataset (the writer is then
 * failed: close or abort it, which discards the partial shard). */
int ssl_jpeg_shard_writer_add(ssl_jpeg_shard_writer *w, const uint8_t *bytes, size_t len, int height,
                              int width, int32_t label, char *err, size_t errlen);

/* Completes the last shard, deletes stale higher-numbered <prefix>-NNNNN.h5 left by an earlier prep
 * of the same prefix, and frees the writer (also on error, after discarding the partial .tmp). */
int ssl_jpeg_shard_writer_close(ssl_jpeg_shard_writer *w, char *err, size_t errlen);

/* Discards the shard in progress (its .tmp) and frees the writer; completed shards stay. */
void ssl_jpeg_shard_writer_abort(ssl_jpeg_shard_writer *w);

/* Parallel prep: the next samples go to shard number `shard`; end_shard completes a shorter one;
 * free with abort (see ssl_shard_writer_start_shard). 0, or -1 with a message. */
int ssl_jpeg_shard_writer_start_shard(ssl_jpeg_shard_writer *w, int shard, char *err, size_t errlen);
int ssl_jpeg_shard_writer_end_shard(ssl_jpeg_shard_writer *w, char *err, size_t errlen);

int64_t ssl_jpeg_shard_writer_count(const ssl_jpeg_shard_writer *w); /* samples accepted so far */
int64_t ssl_jpeg_shard_writer_bytes(const ssl_jpeg_shard_writer *w); /* their encoded bytes */
int ssl_jpeg_shard_writer_nshards(const ssl_jpeg_shard_writer *w);   /* shards completed so far */

#endif
