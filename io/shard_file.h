/* Shard file mechanics shared by the raw (shard_writer.c) and JPEG (jpeg_shard_writer.c) writers,
 * internal to io/: the numbered names <dir>/<prefix>-%05d.h5, each written as NAME.tmp and renamed
 * only when complete, and the removal of stale higher-numbered shards. The writers own what is in a
 * file (attributes, datasets); HDF5 calls here run under the caller's process HDF5 lock. */
#ifndef SSL_IO_SHARD_FILE_H
#define SSL_IO_SHARD_FILE_H

#include <hdf5.h>
#include <stddef.h>

#define SSL_SHARD_PATH_LEN 4096
#define SSL_SHARD_PREFIX_LEN 256
#define SSL_SHARD_MAX 100000 /* %05d keeps name order equal to shard order only below this */

typedef struct {
    char dir[SSL_SHARD_PATH_LEN], prefix[SSL_SHARD_PREFIX_LEN];
    int shard;   /* number of the shard being written, or of the next one */
    hid_t file;  /* the open NAME.tmp, H5I_INVALID_HID when none */
    char tmp_path[SSL_SHARD_PATH_LEN], final_path[SSL_SHARD_PATH_LEN];
} ssl_shard_file;

/* 0 when every shard name of dir/prefix fits the buffers above, else -1 with "DIR/PREFIX: path too
 * long" (writers check this in open, before anything is allocated). */
int ssl_shard_file_check_name(const char *dir, const char *prefix, char *err, size_t errlen);

/* Starts at shard 0 with no file open; dir and prefix passed ssl_shard_file_check_name. */
void ssl_shard_file_init(ssl_shard_file *f, const char *dir, const char *prefix);

/* Creates f->tmp_path for shard f->shard in the HDF5 1.10 format, empty: the caller writes its
 * attributes (ssl_shard_attr_*) and datasets. 0, or -1 with a message. */
int ssl_shard_file_create(ssl_shard_file *f, char *err, size_t errlen);

/* Scalar file attributes; 0 or -1 (the caller names the file in its message). */
int ssl_shard_attr_int(hid_t file, const char *name, int v);
int ssl_shard_attr_str(hid_t file, const char *name, const char *text);

/* Closes the file, fsyncs it and renames NAME.tmp to NAME; the shard number then moves on. The
 * caller closes its datasets first (HDF5 keeps the file open while they are) and passes closed_ok 0
 * if one of those closes failed, which fails the commit. 0, or -1 with a message. */
int ssl_shard_file_commit(ssl_shard_file *f, int closed_ok, char *err, size_t errlen);

/* Closes and deletes the shard in progress, if any; completed shards stay. */
void ssl_shard_file_discard(ssl_shard_file *f);

/* Deletes <dir>/<prefix>-NNNNN.h5 from shard `from` (the writer's current one) up to the first missing. */
void ssl_shard_remove_stale(const char *dir, const char *prefix, int from);
void ssl_shard_file_remove_stale(const ssl_shard_file *f);

/* start_shard of both writers: shard becomes current unless the writer failed, a shard is in
 * progress (an open file or, with pending, buffered samples) or shard is out of range. 0, or -1
 * with a message. */
int ssl_shard_file_start(ssl_shard_file *f, int shard, int failed, int pending, char *err,
                         size_t errlen);

#endif
