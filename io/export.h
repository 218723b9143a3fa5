/* Export of trained weights to safetensors (https://github.com/huggingface/safetensors), named by
 * torchvision state_dict keys so `model.load_state_dict(load_file(path), strict=False)` restores an
 * encoder in PyTorch; and a validating reader of such a file's header for tools and tests. */
#ifndef SSL_IO_EXPORT_H
#define SSL_IO_EXPORT_H

#include "framework/tensor/params.h"
#include "io/export_names.h"

#include <stddef.h>
#include <stdint.h>

/* Write every segment of params and then of buffers (BN running_mean / running_var; may be NULL)
 * as an F32 tensor with its shape. prefix_filter (NULL or "": all) keeps only names starting with
 * it; strip_prefix (NULL or "": none) is removed from the names that start with it, so a student
 * planned under "backbone." exports as plain torchvision keys; names SSL_NAMES_TIMM then renames ViT
 * keys to timm's (export_names.h). Layout: u64 little-endian header
 * length N, N bytes of JSON padded with spaces to a multiple of 8 (tensors in params-then-buffers
 * segment order, then "__metadata__": {"format": "pt"}), then the raw little-endian data in header
 * order. Values are read with each ssl_params' backend download (device-neutral). The file is
 * written to "<path>.tmp", flushed and renamed, so a reader never sees a partial export.
 * Returns 0, or -1 with a message in err (nothing selected, duplicate names after stripping,
 * unallocated params, I/O errors naming the file). */
int ssl_export_safetensors(const char *path, const ssl_params *params, const ssl_params *buffers,
                           const char *prefix_filter, const char *strip_prefix, ssl_export_names names,
                           char *err, size_t errlen);

typedef struct {
    char name[128];
    char dtype[8];        /* "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL" */
    int ndim;             /* 0..8 */
    int64_t shape[8];
    uint64_t begin, end;  /* data_offsets: bytes relative to the start of the data section */
} ssl_safetensors_entry;

typedef struct {
    ssl_safetensors_entry *entries; /* in header order */
    int n;
    uint64_t header_len;  /* N, the JSON length including padding */
    uint64_t data_start;  /* 8 + N: file offset of the data section */
    char format[16];      /* __metadata__["format"], "" when absent */
} ssl_safetensors_header;

/* Parse and validate a safetensors header: JSON syntax, known dtypes, byte sizes that match the
 * shapes, and data offsets that tile the data section exactly (as the reference loader checks).
 * Returns 0, or -1 with a message in err. Free with ssl_safetensors_header_free. */
int ssl_safetensors_read_header(const char *path, ssl_safetensors_header *h, char *err,
                                size_t errlen);
void ssl_safetensors_header_free(ssl_safetensors_header *h);
/* Entry index by name; -1 when absent. */
int ssl_safetensors_find(const ssl_safetensors_header *h, const char *name);

#endif
