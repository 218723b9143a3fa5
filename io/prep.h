/* Converters from the public dataset distributions to sslrun HDF5 shards (shard_writer.h):
 * Fashion-MNIST gzip idx files (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist),
 * the CIFAR-10/100 binary batches and ImageFolder-style trees of PNG/JPEG files.
 * Inputs are checked (magic, dims, counts, label range). */
#ifndef SSL_IO_PREP_H
#define SSL_IO_PREP_H

#include <stddef.h>

/* One idx pair (images magic 0x00000803: u8 (N, rows, cols); labels magic 0x00000801: u8 (N)),
 * gzip-compressed or raw, into out_dir/<prefix>-NNNNN.h5 as (N, rows, cols, 1) with labels in
 * [0, num_classes). out_dir is created if missing. Progress goes to stderr. 0, or -1 with a message
 * naming the input file. */
int ssl_prep_idx(const char *images_path, const char *labels_path, const char *out_dir,
                 const char *prefix, int num_classes, int shard_size, char *err, size_t errlen);

/* src_dir/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (or without .gz) into
 * out_dir/train-*.h5 (60000 in the real data) and out_dir/test-*.h5 (10000): 28x28x1, 10 classes.
 * shard_size <= 0 means 10000. */
int ssl_prep_fashion_mnist(const char *src_dir, const char *out_dir, int shard_size, char *err,
                           size_t errlen);

/* CIFAR-10: src_dir/data_batch_{1..5}.bin and test_batch.bin (records: 1 label byte + 3072 bytes
 * CHW); CIFAR-100 (cifar100 != 0): train.bin and test.bin (coarse byte, fine byte, 3072 bytes; the
 * fine label is used). src_dir may also be the parent of cifar-10-batches-bin / cifar-100-binary.
 * Or the Python release (data_batch_{1..5}, test_batch; train, test: pickles, io/pickle_cifar.h) in
 * src_dir or its cifar-10-batches-py / cifar-100-python; the binary release wins when both are there.
 * Writes out_dir/train-*.h5 and out_dir/test-*.h5 as 32x32x3 HWC. shard_size <= 0 means 10000. */
int ssl_prep_cifar(const char *src_dir, const char *out_dir, int cifar100, int shard_size,
                   char *err, size_t errlen);

/* Shard encodings of `prep images`. */
typedef enum {
    SSL_PREP_RAW = 0, /* uint8 HWC pixels, every image the same size (shard_writer.h, version 2) */
    SSL_PREP_JPEG     /* JPEG files, each image its own size (shard_writer.h, version 3) */
} ssl_prep_format;

struct ssl_comm;

typedef struct {
    const char *prefix; /* shards are out_dir/<prefix>-NNNNN.h5; NULL or "": "train" */
    int size;           /* S > 0: shorter side to S (raw: then the centre S x S); 0: keep the size */
    int shard_size;     /* samples per shard; <= 0 means 10000 */
    ssl_prep_format format;
    int quality;        /* JPEG: quality of re-encoded images, 1..100; 0 means 90 */
    /* Flat folder (ImageNet's validation layout): src_dir/<image>, labelled by the file `labels`
     * (LOC_val_solution.csv or "name class" lines) as indexes into `classes` (a train prep's
     * classes.txt; NULL: out_dir/classes.txt). NULL labels: a class tree. */
    const char *labels, *classes;
    int force;             /* ignore an earlier prep's manifest and shards: start over */
    struct ssl_comm *comm; /* the ranks that share the work (every rank calls); NULL: this process */
    int quiet;             /* no progress lines (the summary still goes to stderr) */
} ssl_prep_images_opts;

/* Parallel and resumable: every rank writes the shards k with k % P == rank (shard k = samples
 * [k * shard_size, (k + 1) * shard_size) of the sorted list), so the shards do not depend on P.
 * Rank 0 lists the source and broadcasts the list, writes out_dir/<prefix>.manifest first (options,
 * file count, a hash of the list, shard count) and classes.txt last. A rerun with the same source
 * and options keeps every shard that opens as complete and rewrites the rest; with other options or
 * another file list it is refused (opts->force starts over). All ranks return the same result and
 * message; a failed prep that completed no shard leaves nothing behind.
 * An ImageFolder tree (src_dir/<class>/<file>; class index = position of the folder name in byte
 * order, as torchvision's sorted() of UTF-8 names) into out_dir/<prefix>-NNNNN.h5 with labels, and
 * out_dir/classes.txt (one class name per line, in index order). opts NULL: the defaults (raw, keep
 * the size). Samples are class by class, files in name order: the sampler's global permutation
 * shuffles them, so contiguous classes do no harm.
 * Files are PNG (gray, gray+alpha, RGB, RGBA, palette; 1-16 bit) or JPEG (gray, RGB, CMYK),
 * recognised by their first bytes, not their names, and become RGB: gray is replicated, alpha is
 * dropped (not composited), 16-bit samples are rounded to 8 bits, no gamma or ICC conversion and
 * no EXIF rotation (as PIL's convert("RGB") in torchvision's loader). Names starting with '.' are
 * ignored; other files are skipped and counted; folders inside class folders are not searched.
 * Resizing (size S > 0): the shorter side goes to S (the longer to floor(long * S / short), as
 * torchvision's Resize(S)). Shrinking averages the covered source area (PIL's BOX filter:
 * antialiased), enlarging is bilinear with half-pixel centres (PIL's and OpenCV's bilinear).
 * Raw format: uint8 HWC RGB. With S > 0 the centre S x S is cut out of the resized image (offset
 * floor((long' - S) / 2)); an image already S x S is copied exactly. With S = 0 every image keeps
 * its size, which must be the size of the first one.
 * JPEG format: every image keeps its own (resized) size, no crop. A JPEG file whose shorter side
 * is already S (or S = 0) and that is YCbCr or grayscale and decodes without any warning is stored
 * byte for byte; anything else (PNG, CMYK or RGB JPEG, resized) is encoded from its RGB pixels
 * with TurboJPEG, 4:2:0, at opts->quality.
 * Everything is listed and the class folders checked before anything is written; a folder without
 * images, an unreadable or corrupt file (including a truncated JPEG) or a size mismatch stops the
 * prep with a message naming it. An existing classes.txt that lists other classes is an error
 * too: shards of another prefix there would carry other labels.
 * Progress goes to stderr from rank 0 every 2 s (one live line on a terminal), then a summary. */
int ssl_prep_images(const char *src_dir, const char *out_dir, const ssl_prep_images_opts *opts,
                    char *err, size_t errlen);

/* mkdir -p dir; 0, or -1 with a message naming the directory that could not be created. */
int ssl_make_dirs(const char *dir, char *err, size_t errlen);

#endif
