/* `sslrun prep --verify`: reads shards (format in shard_writer.h) completely, so that HDF5 checks
 * the Fletcher-32 checksum of every chunk, and checks what the checksums cannot: shapes, label
 * ranges, and for JPEG shards the offsets and that every image decodes to its stored size. */
#ifndef SSL_IO_SHARD_VERIFY_H
#define SSL_IO_SHARD_VERIFY_H

#include <stdio.h>

/* path_or_glob as data.train accepts it: a directory (its *.h5), a pattern with * ? [ (names
 * ending in .tmp skipped), or one file. Prints one line per shard to out ("ok   PATH: ..." or
 * "BAD  PATH: the problem, naming the dataset") and a summary; a bad shard does not stop the
 * others. Returns the number of bad shards (0: all good), or -1 when nothing could be listed. */
int ssl_shard_verify(const char *path_or_glob, FILE *out);

#endif
