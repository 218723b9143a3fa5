/* A strict reader of CIFAR's Python release (cifar-10-batches-py/data_batch_N, test_batch;
 * cifar-100-python/train, test): protocol-2 pickles of a dict with byte-string keys whose `data` is
 * a numpy uint8 array (N, 3072) (numpy.core.multiarray._reconstruct + BUILD with the raw bytes) and
 * whose labels are a list of ints. Reads what Python 2's cPickle wrote (byte strings as
 * SHORT_BINSTRING/BINSTRING) and what Python 3's pickle writes at protocol 2 (bytes as
 * _codecs.encode(text, 'latin1')). Anything else (another opcode, global, dtype or shape) is refused
 * with a message naming the file, the opcode and its offset; every length is bounds-checked. */
#ifndef SSL_IO_PICKLE_CIFAR_H
#define SSL_IO_PICKLE_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#define SSL_CIFAR_IMAGE_BYTES 3072 /* 3 x 32 x 32, planes R, G, B, each row-major */

typedef struct {
    int64_t n;       /* images */
    uint8_t *data;   /* (n, 3072) CHW, ssl_malloc'ed */
    int32_t *labels; /* (n) in [0, num_classes), ssl_malloc'ed */
} ssl_cifar_batch;

/* buf (len bytes) parsed as one batch; name names it in messages; labels_key is "labels" (CIFAR-10)
 * or "fine_labels" (CIFAR-100). 0, or -1 with a message (out is then empty). */
int ssl_pickle_cifar_parse(const uint8_t *buf, size_t len, const char *name, const char *labels_key,
                           int num_classes, ssl_cifar_batch *out, char *err, size_t errlen);

/* The file at path, read whole, then parsed as above. */
int ssl_pickle_cifar_read(const char *path, const char *labels_key, int num_classes, ssl_cifar_batch *out,
                          char *err, size_t errlen);

void ssl_cifar_batch_free(ssl_cifar_batch *b);

#endif
