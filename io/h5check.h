/* Integrity checks sslrun makes on an HDF5 file before HDF5 decodes it (checkpoints and shards).
 * HDF5 1.10 decodes unchecksummed metadata (superblock v0/v1 object headers, v1 B-tree chunk
 * indexes) without bounds checks, so a damaged one crashes the library (found by fuzzing); the
 * formats sslrun writes checksum all of it, and these checks refuse the others up front. */
#ifndef SSL_IO_H5CHECK_H
#define SSL_IO_H5CHECK_H

#include <hdf5.h>
#include <stddef.h>

/* 0 if `path` starts with the HDF5 signature and a superblock of version >= 2 (checksummed
 * superblock and object headers); else -1 with the reason in why (whylen bytes). */
int ssl_h5_superblock_ok(const char *path, char *why, size_t whylen);

/* 0 if dataset `ds` is not chunked, or its chunk index carries checksums (fixed array, extensible
 * array, v2 B-tree, single chunk: the 1.10 format); -1 with the reason for a v1 B-tree index. */
int ssl_h5_chunk_index_ok(hid_t ds, char *why, size_t whylen);

/* The innermost message on HDF5's error stack ("data error detected by Fletcher32 checksum",
 * "truncated file: eof = ...", ...): why the last call failed, in HDF5's words; buf of len bytes. */
const char *ssl_h5_reason(char *buf, size_t len);

#endif
