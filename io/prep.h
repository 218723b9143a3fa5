/* Converters from the public dataset distributions to sslrun HDF5 shards (shard_writer.h):
 * Fashion-MNIST gzip idx files (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist)
 * and the CIFAR-10/100 binary batches. Inputs are checked (magic, dims, counts, label range). */
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
 * Writes out_dir/train-*.h5 and out_dir/test-*.h5 as 32x32x3 HWC. shard_size <= 0 means 10000. */
int ssl_prep_cifar(const char *src_dir, const char *out_dir, int cifar100, int shard_size,
                   char *err, size_t errlen);

#endif
