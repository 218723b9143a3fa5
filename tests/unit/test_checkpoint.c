/* Checkpoint files: exact round trip of arrays and training position, keep-last-K rotation, a
 * leftover .tmp (crash mid-write) never chosen for resume, and clear errors for a truncated file,
 * a missing dataset, a size mismatch (different model) and unchecksummed HDF5 metadata. int64
 * arrays round trip exactly (values a float or double would round), are stored as H5T_STD_I64LE,
 * and a float/int64 mismatch either way is SSL_CKPT_INCOMPATIBLE. A single process's sharded array
 * must cover its whole global size to be saved. Registration errors (too many arrays, a long or
 * duplicate name, a range past the global size) stop the process naming the array. */
#include <stdio.h>

#include "common/testutil.h"
#include "io/checkpoint.h"

#include <hdf5.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Registration mistakes, each run in a child: 0 .. 4 break a rule, 5 registers the limit exactly. */
static void misuse(int which)
{
    static float f[4];
    static ssl_ckpt ck;
    char name[64];
    switch (which) {
    case 0:
        for (int i = 0; i <= SSL_CKPT_MAX_ARRAYS; i++) {
            snprintf(name, sizeof name, "a%d", i);
            ssl_ckpt_add(&ck, name, f, 4);
        }
        break;
    case 1: ssl_ckpt_add(&ck, "method/a_name_that_is_far_too_long_for_the_field_x", f, 4); break;
    case 2:
        ssl_ckpt_add(&ck, "params", f, 4);
        ssl_ckpt_add_i64(&ck, "params", NULL, 0);
        break;
    case 3: ssl_ckpt_add_sharded(&ck, "method/queue", f, 4, 7, 10); break;
    case 4: ssl_ckpt_add(&ck, "params", NULL, 4); break;
    case 5:
        for (int i = 0; i < SSL_CKPT_MAX_ARRAYS; i++) {
            snprintf(name, sizeof name, "a%d", i);
            ssl_ckpt_add(&ck, name, f, 4);
        }
        _exit(ck.narrays == SSL_CKPT_MAX_ARRAYS ? 0 : 1);
    }
    _exit(0); /* not stopped: the mistake went through (_exit: no parent atexit handlers) */
}

/* Runs misuse(which) in a child, its stderr into a file; 1 if it was stopped by SIGABRT with a
 * message containing want. */
static int stopped_with(int which, const char *want, const char *dir)
{
    char log[1100];
    snprintf(log, sizeof log, "%s/misuse.log", dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr)) _exit(3);
        misuse(which);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char text[1024] = "";
    FILE *fp = fopen(log, "r");
    size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    text[n] = '\0';
    if (fp) fclose(fp);
    int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(text, want);
    if (!ok) fprintf(stderr, "misuse %d: status %d, stderr '%s'\n", which, status, text);
    return ok;
}

static void save_step(const char *dir, int64_t step, float *a, size_t n, int keep)
{
    ssl_ckpt ck = {.step = step, .epoch = step / 10, .epoch_step = step % 10, .world_size = 1, .in_chans = 3, .seed = 42,
                   .config_yaml = "run:\n  seed: 42\n", .segments = "w 0 5\n"};
    ssl_ckpt_add(&ck, "params", a, n);
    ssl_ckpt_add(&ck, "optim/m", a, n);
    char err[512];
    SSL_EXPECT(ssl_ckpt_save(&ck, dir, keep, err, sizeof err) == 0, "save: %s", err);
}

int main(void)
{
    char dir[] = "/tmp/ssl_ckpt_XXXXXX";
    SSL_EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    float a[5] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f}, b[5];
    char path[1024], err[512];
    SSL_EXPECT(ssl_ckpt_find_latest(dir, path, sizeof path) == 1, "empty dir has no checkpoint");
    for (int64_t s = 10; s <= 40; s += 10) {
        a[3] = (float)s;
        save_step(dir, s, a, 5, 3);
    }
    /* a crash mid-write leaves a .tmp with a higher step: ignored */
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s/ckpt-%010d.h5.tmp", dir, 50);
    FILE *fp = fopen(tmp, "w");
    fputs("partial", fp);
    fclose(fp);
    SSL_EXPECT(ssl_ckpt_find_latest(dir, path, sizeof path) == 0 && strstr(path, "ckpt-0000000040.h5"),
               "latest should be step 40, got %s", path);
    char old[1024];
    snprintf(old, sizeof old, "%s/ckpt-%010d.h5", dir, 10);
    SSL_EXPECT(access(old, F_OK) != 0, "keep=3 should have removed step 10");
    snprintf(old, sizeof old, "%s/ckpt-%010d.h5", dir, 20);
    SSL_EXPECT(access(old, F_OK) == 0, "keep=3 should keep step 20");

    ssl_ckpt ck = {0};
    float m[5];
    ssl_ckpt_add(&ck, "params", b, 5);
    ssl_ckpt_add(&ck, "optim/m", m, 5);
    SSL_EXPECT(ssl_ckpt_load(&ck, path, err, sizeof err) == 0, "load: %s", err);
    SSL_EXPECT(ck.step == 40 && ck.epoch == 4 && ck.epoch_step == 0 && ck.seed == 42 && ck.world_size == 1,
               "position step %lld epoch %lld", (long long)ck.step, (long long)ck.epoch);
    SSL_EXPECT(ck.in_chans == 3, "in_chans %lld", (long long)ck.in_chans);
    char *yaml = NULL;
    SSL_EXPECT(ssl_ckpt_read_config(path, &yaml, err, sizeof err) == 0 && yaml && !strcmp(yaml, "run:\n  seed: 42\n"),
               "config text round trip: %s", yaml ? yaml : err);
    free(yaml);
    SSL_EXPECT(memcmp(a, b, sizeof a) == 0 && memcmp(a, m, sizeof a) == 0, "arrays round trip bit-exactly");

    /* size mismatch names the dataset */
    ssl_ckpt bad = {0};
    float big[6];
    ssl_ckpt_add(&bad, "params", big, 6);
    SSL_EXPECT(ssl_ckpt_load(&bad, path, err, sizeof err) != 0 && strstr(err, "'params'") && strstr(err, "6"),
               "size mismatch message: %s", err);
    ssl_ckpt miss = {0};
    ssl_ckpt_add(&miss, "teacher", big, 5);
    SSL_EXPECT(ssl_ckpt_load(&miss, path, err, sizeof err) != 0 && strstr(err, "missing dataset 'teacher'"),
               "missing dataset message: %s", err);
    /* truncated copy */
    char trunc[1100], cmd[2400];
    snprintf(trunc, sizeof trunc, "%s/broken.h5", dir);
    snprintf(cmd, sizeof cmd, "head -c 600 '%s' > '%s'", path, trunc);
    SSL_EXPECT(system(cmd) == 0, "truncate copy");
    SSL_EXPECT(ssl_ckpt_load(&ck, trunc, err, sizeof err) != 0 && strstr(err, "broken.h5"),
               "truncated file message: %s", err);
    /* an HDF5 file with unchecksummed metadata (superblock v0, HDF5's default) is refused before
     * HDF5 decodes it: the damaged-file class, so resume falls back past it */
    char v0[1100];
    snprintf(v0, sizeof v0, "%s/v0.h5", dir);
    hid_t f0 = H5Fcreate(v0, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    SSL_EXPECT(f0 >= 0 && H5Fclose(f0) >= 0, "create a v0 file");
    ssl_ckpt ck0 = {0};
    ssl_ckpt_add(&ck0, "params", b, 5);
    SSL_EXPECT(ssl_ckpt_load(&ck0, v0, err, sizeof err) == SSL_CKPT_DAMAGED && strstr(err, "superblock version 0"),
               "v0 file: %s", err);

    /* int64: exact (2^62 + 1 and INT64_MAX are not floats or doubles), stored as 64-bit integers */
    int64_t iv[4] = {INT64_MIN, -1, ((int64_t)1 << 62) + 1, INT64_MAX}, iv2[4] = {0};
    float fv[3] = {0.5f, 1.5f, 2.5f};
    ssl_ckpt ci = {.step = 60, .world_size = 1};
    ssl_ckpt_add(&ci, "params", fv, 3);
    ssl_ckpt_add_i64(&ci, "method/queue_ptr", iv, 4);
    SSL_EXPECT(ssl_ckpt_save(&ci, dir, 0, err, sizeof err) == 0, "int64 save: %s", err);
    ssl_ckpt_path(path, sizeof path, dir, 60);
    ssl_ckpt li = {0};
    float fv2[3];
    ssl_ckpt_add(&li, "params", fv2, 3);
    ssl_ckpt_add_i64(&li, "method/queue_ptr", iv2, 4);
    SSL_EXPECT(ssl_ckpt_load(&li, path, err, sizeof err) == 0, "int64 load: %s", err);
    SSL_EXPECT(memcmp(iv, iv2, sizeof iv) == 0 && memcmp(fv, fv2, sizeof fv) == 0, "int64 round trip: %lld %lld",
               (long long)iv2[2], (long long)iv2[3]);
    hid_t fi = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t di = fi < 0 ? -1 : H5Dopen2(fi, "method/queue_ptr", H5P_DEFAULT);
    hid_t ti = di < 0 ? -1 : H5Dget_type(di), pi = di < 0 ? -1 : H5Dget_create_plist(di);
    SSL_EXPECT(ti >= 0 && H5Tequal(ti, H5T_STD_I64LE) > 0, "int64 dataset is not stored as H5T_STD_I64LE");
    SSL_EXPECT(pi >= 0 && H5Pget_layout(pi) == H5D_CHUNKED && H5Pget_nfilters(pi) == 1,
               "int64 dataset not chunked + checksummed");
    if (pi >= 0) H5Pclose(pi);
    if (ti >= 0) H5Tclose(ti);
    if (di >= 0) H5Dclose(di);
    if (fi >= 0) H5Fclose(fi);
    /* float registered where int64 is stored, and the reverse: incompatible, naming the dataset */
    ssl_ckpt m1 = {0};
    float fq[4];
    ssl_ckpt_add(&m1, "method/queue_ptr", fq, 4);
    int rc = ssl_ckpt_load(&m1, path, err, sizeof err);
    SSL_EXPECT(rc == SSL_CKPT_INCOMPATIBLE && strstr(err, path) && strstr(err, "'method/queue_ptr'") &&
                   strstr(err, "64-bit signed integers"),
               "float over int64: rc %d, %s", rc, err);
    ssl_ckpt m2 = {0};
    int64_t ip[3];
    ssl_ckpt_add_i64(&m2, "params", ip, 3);
    rc = ssl_ckpt_load(&m2, path, err, sizeof err);
    SSL_EXPECT(rc == SSL_CKPT_INCOMPATIBLE && strstr(err, path) && strstr(err, "'params'") &&
                   strstr(err, "32-bit floats"),
               "int64 over float: rc %d, %s", rc, err);

    /* one process's sharded array must be the whole of it; the file's global size must match */
    float sq[6] = {1, 2, 3, 4, 5, 6}, sq2[6] = {0};
    ssl_ckpt cs = {.step = 70, .world_size = 1};
    ssl_ckpt_add_sharded(&cs, "method/queue", sq, 4, 0, 6);
    SSL_EXPECT(ssl_ckpt_save(&cs, dir, 0, err, sizeof err) != 0 && strstr(err, "'method/queue'") &&
                   strstr(err, "no rank holds [4, 6)"),
               "partial shard saved: %s", err);
    ssl_ckpt_path(path, sizeof path, dir, 70);
    SSL_EXPECT(access(path, F_OK) != 0, "refused save left %s", path);
    ssl_ckpt cs2 = {.step = 70, .world_size = 1};
    ssl_ckpt_add_sharded(&cs2, "method/queue", sq, 6, 0, 6);
    SSL_EXPECT(ssl_ckpt_save(&cs2, dir, 0, err, sizeof err) == 0, "sharded save: %s", err);
    ssl_ckpt ls = {0};
    ssl_ckpt_add_sharded(&ls, "method/queue", sq2 + 2, 3, 2, 6); /* a middle part of it */
    SSL_EXPECT(ssl_ckpt_load(&ls, path, err, sizeof err) == 0 && sq2[2] == 3 && sq2[4] == 5 && sq2[5] == 0 &&
                   sq2[1] == 0, "sharded part [2, 5): %s", err);
    ssl_ckpt ls2 = {0};
    ssl_ckpt_add_sharded(&ls2, "method/queue", sq2, 5, 0, 5);
    rc = ssl_ckpt_load(&ls2, path, err, sizeof err);
    SSL_EXPECT(rc == SSL_CKPT_INCOMPATIBLE && strstr(err, "'method/queue' has 6 values") && strstr(err, "has 5"),
               "sharded global size: rc %d, %s", rc, err);

    SSL_EXPECT(stopped_with(0, "'a32'", dir), "a 33rd array must stop the process naming it");
    SSL_EXPECT(stopped_with(1, "'method/a_name_that_is_far_too_long_for_the_field_x'", dir), "a long name must stop");
    SSL_EXPECT(stopped_with(2, "'params' registered twice", dir), "a duplicate name must stop");
    SSL_EXPECT(stopped_with(3, "'method/queue'", dir), "offset + n > total must stop");
    SSL_EXPECT(stopped_with(4, "'params'", dir), "data NULL with n > 0 must stop");
    pid_t pid = fork();
    if (pid == 0) misuse(5);
    int status = -1;
    waitpid(pid, &status, 0);
    SSL_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%d arrays must register", SSL_CKPT_MAX_ARRAYS);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    SSL_EXPECT(system(cmd) == 0, "cleanup");
    return ssl_test_exit();
}
