/* Pieces of `prep images` shared by its files: listing (prep_images.c), labels files
 * (prep_labels.c), the manifest (prep_manifest.c) and the parallel driver (prep_parallel.c). */
#ifndef SSL_IO_PREP_INTERNAL_H
#define SSL_IO_PREP_INTERNAL_H

#include "io/prep.h"

#include <stddef.h>
#include <stdint.h>

#define SSL_PREP_PATH_LEN 4096

/* The images of a prep in sample order: rel[i] is the path under the source folder ("class/file"
 * for a class tree, "file" for a flat folder), label[i] an index into classes. */
typedef struct {
    size_t n, cap;
    char **rel;
    int32_t *label;
    size_t nclasses;
    char **classes;
    int64_t skipped; /* files that are neither PNG nor JPEG */
    int64_t nested;  /* folders inside class folders (not searched) */
    char first_skipped[SSL_PREP_PATH_LEN];
} ssl_prep_list;

/* src/<class>/<file>: classes in byte order, files in name order, each file's first bytes checked.
 * out_dir (may not exist yet) must not be a class folder of src. 0, or -1 with a message. */
int ssl_prep_list_tree(const char *src, const char *out_dir, ssl_prep_list *l, char *err, size_t errlen);
/* src/<file> (a flat folder, ImageNet's validation layout): files in name order, labels -1 and no
 * classes (prep_labels.c adds both). */
int ssl_prep_list_flat(const char *src, ssl_prep_list *l, char *err, size_t errlen);
void ssl_prep_list_push(ssl_prep_list *l, const char *rel, int32_t label);
void ssl_prep_list_free(ssl_prep_list *l);

/* classes_path: one class name per line (a train prep's classes.txt) into l->classes; then every
 * image gets the class labels_path gives its name (LOC_val_solution.csv, or "name class" lines with
 * the name with or without its extension). An image without a label, or a class not in
 * classes_path, is an error naming it. */
int ssl_prep_apply_labels(ssl_prep_list *l, const char *labels_path, const char *classes_path, char *err,
                          size_t errlen);

/* FNV-1a 64 of the list (names, labels and classes): what the manifest records. */
uint64_t ssl_prep_list_hash(const ssl_prep_list *l);

enum { SSL_PREP_KIND_OTHER, SSL_PREP_KIND_PNG, SSL_PREP_KIND_JPEG };
/* PNG or JPEG by the first bytes (not the name), OTHER, or -1 with a message naming the file. */
int ssl_prep_image_kind(const char *path, char *err, size_t errlen);

/* Decodes one image (path under nothing: a full path) for its size; 0, or -1 naming the file. */
int ssl_prep_probe_size(const char *path, int *height, int *width, char *err, size_t errlen);

/* Writes shards one at a time (a rank's share of a prep): decoder, encoder and writer state reused
 * from shard to shard. */
typedef struct {
    const char *src_dir, *out_dir, *prefix;
    ssl_prep_format format;
    int size, quality, shard_size, num_classes;
    int height, width;   /* raw: every sample's size (size, or the first image's) */
    const char *first;   /* raw with size 0: the image that fixed the size (named on a mismatch) */
} ssl_prep_job_spec;

typedef struct ssl_prep_job ssl_prep_job;

ssl_prep_job *ssl_prep_job_open(const ssl_prep_job_spec *spec, char *err, size_t errlen);
/* Images [begin, end) of l as shard number k, completed (renamed) before it returns. tick(ctx) is
 * called after every image (progress). 0, or -1 with a message naming the file. */
int ssl_prep_job_shard(ssl_prep_job *j, int k, const ssl_prep_list *l, size_t begin, size_t end,
                       void (*tick)(void *), void *ctx, char *err, size_t errlen);
/* JPEG: images stored as they are, encoded, and their bytes, so far. */
void ssl_prep_job_stats(const ssl_prep_job *j, int64_t *verbatim, int64_t *encoded, int64_t *bytes);
void ssl_prep_job_close(ssl_prep_job *j); /* discards a shard in progress (its .tmp) */

/* classes.txt: the text of l's classes; an existing file must list the same (shards of another
 * prefix next to it were labelled by it); writing goes through NAME.tmp. */
char *ssl_prep_classes_text(const ssl_prep_list *l, size_t *len);
int ssl_prep_check_classes_file(const char *path, const char *want, size_t len, char *err, size_t errlen);
int ssl_prep_write_text_file(const char *path, const char *text, size_t len, char *err, size_t errlen);

/* ---- resume (prep_manifest.c) ---- */

typedef struct {
    char format[8]; /* "raw" or "jpeg" */
    int size, quality, shard_size;
    int64_t files, shards;
    uint64_t hash;
} ssl_prep_manifest;

/* path absent, or force: writes want (NAME.tmp, renamed), *resume = 0. path equal to want: *resume
 * = 1 (completed shards may be kept). Otherwise -1, naming what differs and suggesting a new --out
 * or --force. */
int ssl_prep_manifest_begin(const char *path, const ssl_prep_manifest *want, int force, int *resume,
                            char *err, size_t errlen);
/* A quick check of a shard from an earlier run: it opens, carries the format attributes of its
 * encoding and num_classes, and holds exactly n samples. Reads no image data. 1 when usable. */
int ssl_prep_shard_usable(const char *path, int jpeg, int num_classes, int64_t n);

#endif
