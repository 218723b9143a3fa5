/* Checkpoint files: exact round trip of arrays and training position, keep-last-K rotation, a
 * leftover .tmp (crash mid-write) never chosen for resume, and clear errors for a truncated file,
 * a missing dataset, a size mismatch (different model) and unchecksummed HDF5 metadata. */
#include <stdio.h>

#include "common/testutil.h"
#include "io/checkpoint.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    SSL_EXPECT(system(cmd) == 0, "cleanup");
    return ssl_test_exit();
}
