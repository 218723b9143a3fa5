/* One process-wide lock around every HDF5 call made by the data pipeline (shard reader, writer).
 * Debian's parallel HDF5 1.10.8 is built without --enable-threadsafe, and the library's state (open
 * ids, caches, error stack) is process-global, so a per-dataset lock would still let two datasets,
 * or a loader thread and a checkpoint save on the main thread, race inside the library. */
#ifndef SSL_IO_H5LOCK_H
#define SSL_IO_H5LOCK_H

/* Recursive: a caller may hold it around a block (e.g. a checkpoint save while a loader prefetches)
 * that itself calls ssl_dataset_* or ssl_shard_writer_*. Pair every lock with one unlock. */
void ssl_h5_lock(void);
void ssl_h5_unlock(void);

#endif
