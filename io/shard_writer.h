/* Writer for sslrun HDF5 shards: buffers samples and rolls over to <prefix>-00000.h5, -00001.h5, ...
 * every shard_size samples. Each shard is written as NAME.tmp and renamed only when complete, so an
 * interrupted prep never leaves a valid-looking partial shard under a final name. */
#ifndef SSL_IO_SHARD_WRITER_H
#define SSL_IO_SHARD_WRITER_H

#include <stddef.h>
#include <stdint.h>

/* Shard file format (DESIGN §4), version 2:
 *   file             HDF5 1.10 format (superblock >= 2; checksummed object headers and chunk index)
 *   dataset  images  uint8 (N, H, W, C), chunked (chunk, H, W, C) along N, optionally deflated,
 *                    Fletcher-32 on every chunk
 *   dataset  labels  int32 (N)           optional, chunked, Fletcher-32
 *   file attributes  height, width, channels, num_classes (int32 scalars),
 *                    format = "sslrun-shard" (fixed-length string), version = 2 (int32)
 * Version 1 (HDF5 1.8 format, unchecksummed chunk index and data) is refused: re-run `sslrun prep`.
 * Shards from other tools need the attributes height/width/channels and superblock >= 2
 * (h5py: File(path, "w", libver=("v110", "latest"))); Fletcher-32 is recommended, not required. */
#define SSL_SHARD_FORMAT "sslrun-shard"
#define SSL_SHARD_VERSION 2

/* JPEG shards, version 3 (attribute encoding = "jpeg"; raw shards stay version 2, so an older
 * sslrun refuses these by version instead of misreading them). Each image keeps its own size:
 *   dataset  jpeg     uint8 (B), the encoded files back to back, chunked, Fletcher-32, no deflate
 *                     (JPEG does not compress further)
 *   dataset  offsets  int64 (N + 1), offsets[0] = 0, offsets[N] = B: sample i is
 *                     jpeg[offsets[i]:offsets[i + 1]], chunked, Fletcher-32
 *   dataset  sizes    int32 (N, 2), each stored image's (height, width), chunked, Fletcher-32
 *   dataset  labels   int32 (N), optional, as above
 *   file attributes   format, version = 3, encoding = "jpeg" (fixed-length strings), channels
 *                     (3: decoded as RGB), num_classes, height = width = 0 (sizes vary)
 * A JPEG source that needs no resizing is stored byte for byte; anything else is decoded, its
 * shorter side resized (prep --size), and encoded at prep --quality. h5py reads a sample as
 * f["jpeg"][f["offsets"][i]:f["offsets"][i + 1]].tobytes(). */
#define SSL_SHARD_VERSION_JPEG 3
#define SSL_SHARD_ENCODING_JPEG "jpeg"

typedef struct {
    const char *out_dir;  /* existing directory */
    const char *prefix;   /* shards are out_dir/<prefix>-%05d.h5 */
    int height, width, channels;
    int num_classes;      /* 0 when unknown */
    int with_labels;      /* 1: every sample carries an int32 label in [0, num_classes) */
    int shard_size;       /* samples per shard (> 0); the last shard may be shorter */
    int chunk;            /* samples per HDF5 chunk; 0 picks about 256 KiB worth, 1..64 samples */
    int deflate;          /* 0: uncompressed; 1..9: zlib level */
} ssl_shard_spec;

typedef struct ssl_shard_writer ssl_shard_writer;

/* Validates the spec; no file is created before the first sample. NULL with a message on error. */
ssl_shard_writer *ssl_shard_writer_open(const ssl_shard_spec *spec, char *err, size_t errlen);

/* Appends n samples: images (n, H, W, C) uint8 HWC; labels (n) int32, NULL iff !with_labels.
 * Returns 0, or -1 with a message naming the file and dataset (the writer is then failed: close
 * it, which discards the partial shard). */
int ssl_shard_writer_add(ssl_shard_writer *w, const uint8_t *images, const int32_t *labels, int n,
                         char *err, size_t errlen);

/* Completes the last shard, deletes stale higher-numbered <prefix>-NNNNN.h5 left by an earlier prep
 * of the same prefix, and frees the writer (also on error, after discarding the partial .tmp). */
int ssl_shard_writer_close(ssl_shard_writer *w, char *err, size_t errlen);

/* Discards the shard in progress (its .tmp) and frees the writer; completed shards stay. */
void ssl_shard_writer_abort(ssl_shard_writer *w);

/* Parallel prep (one writer per rank, each writing every P-th shard): the next samples go to shard
 * number `shard` (<prefix>-<shard>.h5); nothing may be in progress. Adding shard_size samples
 * completes it as usual; ssl_shard_writer_end_shard completes a shorter one. Neither deletes other
 * shards, so free such a writer with ssl_shard_writer_abort (close would delete the other ranks'
 * higher-numbered shards as stale). 0, or -1 with a message. */
int ssl_shard_writer_start_shard(ssl_shard_writer *w, int shard, char *err, size_t errlen);
int ssl_shard_writer_end_shard(ssl_shard_writer *w, char *err, size_t errlen);

int64_t ssl_shard_writer_count(const ssl_shard_writer *w);   /* samples accepted so far */
int ssl_shard_writer_nshards(const ssl_shard_writer *w);     /* shards completed (renamed) so far */

#endif
