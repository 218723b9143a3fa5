/* Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c), the corpus replayer and the seed
 * generator: a per-process scratch directory for inputs that must be files, invariant checks that
 * abort (so libFuzzer records the input), and the checkpoint layout the harness registers, which
 * the seed generator must write. */
#ifndef SSL_FUZZ_COMMON_H
#define SSL_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Arrays fuzz_ckpt registers before ssl_ckpt_load; gen_seeds saves the same names and sizes so the
 * seeds load completely and the fuzzer starts from the deepest path. */
#define FZ_CKPT_PARAMS 24 /* "params" */
#define FZ_CKPT_MOM 24    /* "optim/m" */
#define FZ_CKPT_QUEUE 8   /* "queue", registered sharded (world 1: the whole array) */
#define FZ_CKPT_I64 3     /* "method/queue_ptr", int64 */

/* An invariant of the code under test failed: print what and abort, which libFuzzer reports as a
 * crash with the input saved. */
#define FZ_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz invariant violated (%s:%d): %s\n  ", __FILE__, __LINE__,     \
                    #cond);                                                                    \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

static char fz_dir[256];

static inline void fz_cleanup(void)
{
    if (!fz_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0) { /* best effort: a leftover scratch dir is harmless */
    }
}

/* Scratch directory of this process: BASE/sslfuzz-PID, BASE being $SSL_FUZZ_SCRATCH (scripts/fuzz.sh
 * points it at a directory it removes afterwards), else /dev/shm (memory-backed, so writing the
 * input each execution costs no disk I/O), $TMPDIR or /tmp. Removed at normal exit; a crash leaves
 * it (a few KiB) behind. */
static inline const char *fz_scratch(void)
{
    if (fz_dir[0]) return fz_dir;
    const char *bases[4] = {getenv("SSL_FUZZ_SCRATCH"), "/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (int i = 0; i < 4; i++) {
        if (!bases[i] || !*bases[i]) continue;
        snprintf(fz_dir, sizeof fz_dir, "%s/sslfuzz-%ld", bases[i], (long)getpid());
        if (mkdir(fz_dir, 0700) == 0 || access(fz_dir, W_OK) == 0) {
            atexit(fz_cleanup);
            return fz_dir;
        }
    }
    fprintf(stderr, "fuzz: cannot create a scratch directory\n");
    abort();
}

/* Write data to dir/name (truncating); path receives the full name. */
static inline void fz_write_file(const char *name, const uint8_t *data, size_t size, char *path,
                          size_t plen)
{
    snprintf(path, plen, "%s/%s", fz_scratch(), name);
    FILE *fp = fopen(path, "wb");
    FZ_CHECK(fp != NULL, "cannot write %s", path);
    FZ_CHECK(size == 0 || fwrite(data, 1, size, fp) == size, "short write to %s", path);
    FZ_CHECK(fclose(fp) == 0, "cannot close %s", path);
}

#ifdef H5_VERS_MAJOR /* included after hdf5.h: the HDF5 harnesses */
/* Every HDF5 object the code under test opened is closed again, on success and on error: a leaked
 * file id keeps the file open (HDF5's default "weak" close degree), costs a descriptor per failed
 * open in a long-running process, and here would make the next input, written to the same path,
 * be read through the stale open file. */
static inline void check_no_open_objects(void)
{
    ssize_t n = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    FZ_CHECK(n == 0, "%zd HDF5 objects left open (files %zd, datasets %zd, groups %zd, types %zd, "
             "attributes %zd)", n, H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_FILE),
             H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_DATASET),
             H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_GROUP),
             H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_DATATYPE),
             H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ATTR));
}
#endif

/* The libFuzzer entry points; the HDF5 harnesses need nothing at start-up but their scratch
 * directory (FZ_DEFAULT_INIT before including this header gives them that initialiser). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#ifdef FZ_DEFAULT_INIT
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_scratch();
    return 0;
}
#endif

#endif
