/* Checkpoints: one HDF5 file per save holding named flat arrays, fp32 (parameters, BN buffers,
 * optimizer moments, the EMA teacher, a MoCo queue) or int64 (integer method state such as a queue
 * pointer), the training position (step, epoch, step within the epoch: enough to resume mid-epoch
 * exactly, since augmentation randomness is keyed by (seed, epoch, sample, view)), the resolved
 * config text and a segment table for inspection.
 * Written to NAME.tmp, flushed, closed, fsync'ed and renamed: a crash leaves the previous
 * checkpoint intact. Files are ckpt-<step>.h5 in one directory; the newest complete one resumes.
 *
 * Multi-rank (ck->comm an MPI communicator): every rank opens the file with the MPI-IO driver and
 * collective metadata (REFERENCE §8); each flat array is written collectively, rank r writing the
 * r-th contiguous 1/W of it, so bandwidth scales with ranks. Rank 0 renames after close + barrier
 * and prunes old files. Replicated arrays are held whole by every rank (data parallelism keeps them
 * identical) and read whole on load; sharded arrays (ssl_ckpt_add_sharded) are one global dataset
 * whose ranges each rank writes and reads itself. Either way the writer's world size does not
 * matter to the reader. */
#ifndef SSL_IO_CHECKPOINT_H
#define SSL_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

/* 2: chunked datasets with Fletcher-32 checksums, 1.10 file format (checksummed metadata and chunk index),
 * segment tables with shapes for params and buffers, producer version attributes. Only 2 loads:
 * format 1's unchecksummed metadata is what a damaged file can crash HDF5 with. */
#define SSL_CKPT_VERSION 2
#define SSL_CKPT_MAX_ARRAYS 32
/* elements per chunk (1 MiB of fp32, 2 MiB of int64): one checksum per chunk */
#define SSL_CKPT_CHUNK ((size_t)1 << 18)

/* ssl_ckpt_load failures: the file cannot be trusted (resume falls back to an older one), or it is
 * sound but does not fit this model / config / sslrun (a user error: no fallback). */
#define SSL_CKPT_DAMAGED (-1)
#define SSL_CKPT_INCOMPATIBLE (-2)

/* Element type of an array: in memory float / int64_t, in the file H5T_IEEE_F32LE / H5T_STD_I64LE.
 * Loading checks the stored type: a float dataset where int64 is registered (or the reverse) is
 * SSL_CKPT_INCOMPATIBLE, never a silent conversion (an int64 queue pointer does not survive one). */
typedef enum { SSL_CKPT_F32, SSL_CKPT_I64 } ssl_ckpt_dtype;

typedef struct {
    char name[48];        /* dataset name, e.g. "params", "optim/m" */
    ssl_ckpt_dtype dtype;
    void *data;           /* host memory (float or int64_t): written from on save, read into on load */
    size_t n;             /* elements in data */
    int sharded;          /* 0: replicated (every rank holds all n); 1: this rank holds elements
                             [offset, offset + n) of a global array of `total` (e.g. a MoCo queue) */
    size_t offset, total; /* replicated: 0 and n */
} ssl_ckpt_array;

struct ssl_comm;

typedef struct {
    struct ssl_comm *comm;  /* ranks that save/load together (collective); NULL: this process alone */
    int64_t step;           /* optimizer steps completed */
    int64_t epoch;          /* epoch of the next batch */
    int64_t epoch_step;     /* step within that epoch of the next batch */
    int64_t world_size;     /* ranks that wrote it (informational: resume may use another) */
    int64_t in_chans;       /* image channels the model was built for (export rebuilds it) */
    uint64_t seed;
    const char *config_yaml; /* save: resolved config text (may be NULL) */
    const char *segments;        /* save: parameter table, "name offset count d0,d1,..\n" (may be NULL) */
    const char *buffer_segments; /* save: the same for the buffers array (may be NULL) */
    int no_checksum;         /* save: contiguous datasets without Fletcher-32 (bench_ckpt's baseline) */
    int narrays;
    ssl_ckpt_array arrays[SSL_CKPT_MAX_ARRAYS];
} ssl_ckpt;

/* Registering arrays. Every rank registers the same names in the same order (save and load are
 * collective, array by array). Breaking a rule below is a programming error, not a file problem:
 * the process stops with SSL_ASSERTF naming the array (never a silently dropped array, which would
 * resume a run with that state missing): more than SSL_CKPT_MAX_ARRAYS arrays, a name that is
 * empty or longer than 47 characters, a name registered twice, data NULL with n > 0, or (sharded)
 * offset + n > total. */

/* A replicated fp32 array: every rank holds all n elements. */
void ssl_ckpt_add(ssl_ckpt *ck, const char *name, float *data, size_t n);
/* A replicated int64 array (integer method state, e.g. a queue pointer): exact, no float round trip. */
void ssl_ckpt_add_i64(ssl_ckpt *ck, const char *name, int64_t *data, size_t n);
/* One rank's part of a global fp32 array of `total` elements: elements [offset, offset + n), stored
 * at that place in one dataset of `total`. On save the ranks' ranges must tile [0, total) exactly
 * (disjoint, no gaps, the same total everywhere; a rank may hold n = 0): checked collectively, the
 * save fails with a message otherwise. On load each rank reads its own [offset, offset + n), so a
 * job with another rank count re-shards (65536 keys over 3 ranks: 21846, 21845, 21845); the
 * dataset must hold exactly `total` elements (SSL_CKPT_INCOMPATIBLE otherwise). */
void ssl_ckpt_add_sharded(ssl_ckpt *ck, const char *name, float *data, size_t n, size_t offset, size_t total);

/* Save to dir/ckpt-<step>.h5 atomically, then delete all but the newest `keep` (keep <= 0: all) and
 * any .tmp left by an interrupted save. Collective over ck->comm.
 * Fault injection for tests: SSL_FAULT_CKPT_KILL_RANK=R makes rank R SIGKILL itself after writing
 * its share of the arrays, before the file is closed (a node dying mid-write). */
int ssl_ckpt_save(const ssl_ckpt *ck, const char *dir, int keep, char *err, size_t errlen);

/* Steps of the complete checkpoints in dir, ascending (malloc'd into *steps); returns the count. */
int ssl_ckpt_list(const char *dir, int64_t **steps);
/* dir/ckpt-<step>.h5 */
void ssl_ckpt_path(char *out, size_t len, const char *dir, int64_t step);

/* Newest complete checkpoint in dir: writes its path into out (size outlen); 0 found, 1 none. */
int ssl_ckpt_find_latest(const char *dir, char *out, size_t outlen);

/* Load a checkpoint: fills the position fields and every array registered in ck (by name; sizes and
 * element types must match). Collective over ck->comm. Returns 0, or SSL_CKPT_DAMAGED /
 * SSL_CKPT_INCOMPATIBLE with a message naming the file, the dataset and the reason (HDF5's innermost
 * error, e.g. a checksum). A failure only some ranks see (a damaged chunk in their shard ranges,
 * their own registration) fails the load on all of them with the same code and the lowest failing
 * rank's message, "rank R: ..." on the others. */
int ssl_ckpt_load(ssl_ckpt *ck, const char *path, char *err, size_t errlen);

/* Resume: load the newest checkpoint in dir that loads (collective; rank 0 lists the directory).
 * A damaged newer file (cannot be opened, truncated, fails a checksum, lacks a dataset) is reported
 * on stderr by path and reason and the previous one is tried; once one loads, the damaged newer
 * files are renamed to NAME.damaged when rename_damaged (training; evaluation only reads). Returns 0 (path of the loaded file in path), 1 (no checkpoint
 * at all: a fresh run), SSL_CKPT_DAMAGED (checkpoints exist but none loads: err says so; the caller
 * must stop, never restart from step 0) or SSL_CKPT_INCOMPATIBLE (another model or config). */
int ssl_ckpt_resume(ssl_ckpt *ck, const char *dir, int rename_damaged, char *path, size_t pathlen, char *err,
                    size_t errlen);

/* The resolved config text stored in a checkpoint (malloc'd into *yaml). 0, or -1 with a message. */
int ssl_ckpt_read_config(const char *path, char **yaml, char *err, size_t errlen);

/* That config parsed onto the defaults (what the checkpoint's run ran with). 0, or -1 with a message. */
struct ssl_config;
int ssl_ckpt_config(const char *path, struct ssl_config *c, char *err, size_t errlen);

#endif
