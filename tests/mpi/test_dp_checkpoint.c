/* Collective checkpoints across real ranks (2, 3 and 4: 3 and 4 split the sharded arrays unevenly).
 * Every rank saves a replicated fp32 array (each writes a 1/W slice), a replicated int64 array,
 * and two sharded arrays: "method/queue" split ceil/floor over all ranks (np=3: 4,3,3) and
 * "method/tail" held by all ranks but the last (a rank with n = 0). Element g of a sharded array
 * holds 1000 + g (2000 + g), so every check is by global index. Then:
 *  - every rank loads them back with the writer's split, exactly;
 *  - the job re-shards: queue with the ranks' blocks in reverse order (other sizes per rank), tail
 *    read whole by rank 0 while the others read nothing;
 *  - one process reads the file with the serial driver (offset 0, n = total), exactly;
 *  - a registered global size other than the file's is SSL_CKPT_INCOMPATIBLE, naming the sizes;
 *  - a damaged chunk that only the last rank reads fails the load on every rank (DAMAGED), rather
 *    than leaving the others waiting in a collective;
 *  - saves whose ranges do not tile [0, total) (overlap, gap, ranks disagreeing on total) are
 *    refused on every rank with a message, and leave no file behind. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "io/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NREP 1001 /* not a multiple of the rank count */
#define NQ 10     /* sharded, global size */
#define NI64 5
#define NBIG (SSL_CKPT_CHUNK + 6) /* two chunks: the second lies in the last rank's range only */

/* Block b of `total` split over `parts`: the first total % parts blocks one element longer. */
static void split(size_t total, int parts, int b, size_t *off, size_t *n)
{
    size_t base = total / (size_t)parts, extra = total % (size_t)parts, ub = (size_t)b;
    *n = base + (ub < extra);
    *off = ub * base + (ub < extra ? ub : extra);
}

static const int64_t ptr_vals[NI64] = {INT64_MIN, -1, ((int64_t)1 << 62) + 1, INT64_MAX, 65535};

/* Element i of a local buffer holding [off, off + n) of an array whose element g is base + g. */
static void expect_keyed(const char *what, int r, const float *v, size_t off, size_t n, float base)
{
    for (size_t i = 0; i < n; i++)
        SSL_EXPECT(v[i] == base + (float)(off + i), "rank %d: %s element %zu (global %zu) = %g, want %g", r, what, i,
                   off + i, v[i], base + (float)(off + i));
}

/* Flip one byte of the stored chunk of dataset `name` that starts at element `at` (its checksum
 * then fails). Serial HDF5, on a closed checkpoint. */
static int flip_chunk_byte(const char *path, const char *name, hsize_t at)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, name, H5P_DEFAULT);
    hsize_t off[1] = {at}, size = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    int ok = ds >= 0 && H5Dget_chunk_info_by_coord(ds, off, &mask, &addr, &size) >= 0 && addr != HADDR_UNDEF;
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    int fd = ok ? open(path, O_RDWR) : -1;
    unsigned char b = 0;
    ok = fd >= 0 && pread(fd, &b, 1, (off_t)addr + 2) == 1;
    b ^= 0x40;
    ok = ok && pwrite(fd, &b, 1, (off_t)addr + 2) == 1;
    if (fd >= 0) close(fd);
    return ok;
}

/* A save that must be refused on every rank, with a message naming the dataset. */
static void expect_refused(ssl_comm *c, const char *dir, const char *why, float *q, size_t n, size_t off, size_t total)
{
    char err[512] = "";
    ssl_ckpt ck = {.comm = c, .step = 13, .world_size = c->world};
    ssl_ckpt_add_sharded(&ck, "method/queue", q, n, off, total);
    SSL_EXPECT(ssl_ckpt_save(&ck, dir, 0, err, sizeof err) != 0 && strstr(err, "'method/queue'"),
               "rank %d: %s: save not refused with the dataset named: '%s'", c->rank, why, err);
    if (c->rank == 0) printf("refused (%s): %s\n", why, err);
}

int main(int argc, char **argv)
{
    ssl_comm *c = ssl_comm_mpi_world(&argc, &argv);
    const int W = c->world, r = c->rank;
    char dir[64] = "/tmp/sslrun-dpckpt-XXXXXX", err[512];
    if (r == 0) SSL_ASSERT(mkdtemp(dir));
    ssl_broadcast(c, dir, sizeof dir, SSL_U8, 0);
    float rep[NREP], q[NQ], tail[NQ];
    int64_t ptr[NI64];
    size_t qoff, qn, toff = 0, tn = 0;
    split(NQ, W, r, &qoff, &qn);
    if (r < W - 1) split(NQ, W - 1, r, &toff, &tn); /* the last rank holds nothing */
    for (int i = 0; i < NREP; i++) rep[i] = 0.5f * (float)i - 3.0f;
    for (size_t i = 0; i < qn; i++) q[i] = 1000.0f + (float)(qoff + i);
    for (size_t i = 0; i < tn; i++) tail[i] = 2000.0f + (float)(toff + i);
    memcpy(ptr, ptr_vals, sizeof ptr);
    ssl_ckpt ck = {.comm = c, .step = 12, .epoch = 1, .epoch_step = 2, .world_size = W, .in_chans = 1, .seed = 9,
                   .config_yaml = "run: {seed: 9}\n"};
    ssl_ckpt_add(&ck, "params", rep, NREP);
    ssl_ckpt_add_sharded(&ck, "method/queue", q, qn, qoff, NQ);
    ssl_ckpt_add_sharded(&ck, "method/tail", tail, tn, toff, NQ);
    ssl_ckpt_add_i64(&ck, "method/queue_ptr", ptr, NI64);
    SSL_EXPECT(ssl_ckpt_save(&ck, dir, 0, err, sizeof err) == 0, "save: %s", err);

    char path[256];
    SSL_ASSERT(r != 0 || ssl_ckpt_find_latest(dir, path, sizeof path) == 0);
    ssl_broadcast(c, path, sizeof path, SSL_U8, 0);

    /* the writer's split */
    float rep2[NREP] = {0}, q2[NQ] = {0}, tail2[NQ] = {0};
    int64_t ptr2[NI64] = {0};
    ssl_ckpt ld = {.comm = c};
    ssl_ckpt_add(&ld, "params", rep2, NREP);
    ssl_ckpt_add_sharded(&ld, "method/queue", q2, qn, qoff, NQ);
    ssl_ckpt_add_sharded(&ld, "method/tail", tail2, tn, toff, NQ);
    ssl_ckpt_add_i64(&ld, "method/queue_ptr", ptr2, NI64);
    SSL_EXPECT(ssl_ckpt_load(&ld, path, err, sizeof err) == 0, "load: %s", err);
    SSL_EXPECT(ld.step == 12 && ld.epoch_step == 2 && ld.world_size == W, "position %lld/%lld/%lld", (long long)ld.step,
               (long long)ld.epoch_step, (long long)ld.world_size);
    SSL_EXPECT(memcmp(rep, rep2, sizeof rep) == 0, "rank %d: replicated array differs after load", r);
    SSL_EXPECT(memcmp(ptr_vals, ptr2, sizeof ptr2) == 0, "rank %d: int64 array differs after load", r);
    expect_keyed("queue (same split)", r, q2, qoff, qn, 1000.0f);
    expect_keyed("tail (same split)", r, tail2, toff, tn, 2000.0f);

    /* re-sharded within the job: rank r takes block W-1-r of queue; tail whole on rank 0 */
    size_t roff, rn;
    split(NQ, W, W - 1 - r, &roff, &rn);
    float q3[NQ] = {0}, tail3[NQ] = {0};
    ssl_ckpt rs = {.comm = c};
    ssl_ckpt_add_sharded(&rs, "method/queue", q3, rn, roff, NQ);
    ssl_ckpt_add_sharded(&rs, "method/tail", tail3, r == 0 ? NQ : 0, 0, NQ);
    SSL_EXPECT(ssl_ckpt_load(&rs, path, err, sizeof err) == 0, "re-sharded load: %s", err);
    expect_keyed("queue (reversed split)", r, q3, roff, rn, 1000.0f);
    expect_keyed("tail (all on rank 0)", r, tail3, 0, r == 0 ? NQ : 0, 2000.0f);

    /* a job configured for another global size: refused as incompatible on every rank */
    size_t boff, bn;
    split(NQ + 1, W, r, &boff, &bn);
    float big[NQ + 1];
    ssl_ckpt bad = {.comm = c};
    ssl_ckpt_add_sharded(&bad, "method/queue", big, bn, boff, NQ + 1);
    int rc = ssl_ckpt_load(&bad, path, err, sizeof err);
    SSL_EXPECT(rc == SSL_CKPT_INCOMPATIBLE && strstr(err, path) && strstr(err, "'method/queue'") &&
                   strstr(err, "has 10 values") && strstr(err, "11"),
               "rank %d: global size 11 vs the file's 10: rc %d, '%s'", r, rc, err);

    ssl_barrier(c);
    if (r == 0) {
        float all[NQ], tall[NQ], rep3[NREP];
        int64_t ptr3[NI64];
        ssl_ckpt one = {0};
        ssl_ckpt_add(&one, "params", rep3, NREP);
        ssl_ckpt_add_sharded(&one, "method/queue", all, NQ, 0, NQ);
        ssl_ckpt_add_sharded(&one, "method/tail", tall, NQ, 0, NQ);
        ssl_ckpt_add_i64(&one, "method/queue_ptr", ptr3, NI64);
        SSL_EXPECT(ssl_ckpt_load(&one, path, err, sizeof err) == 0, "serial load: %s", err);
        SSL_EXPECT(memcmp(rep, rep3, sizeof rep) == 0, "serial read of the replicated array differs");
        SSL_EXPECT(memcmp(ptr_vals, ptr3, sizeof ptr3) == 0, "serial read of the int64 array differs");
        expect_keyed("queue (serial, whole)", r, all, 0, NQ, 1000.0f);
        expect_keyed("tail (serial, whole)", r, tall, 0, NQ, 2000.0f);
        ssl_ckpt one_bad = {0};
        ssl_ckpt_add_sharded(&one_bad, "method/queue", big, NQ + 1, 0, NQ + 1);
        rc = ssl_ckpt_load(&one_bad, path, err, sizeof err);
        SSL_EXPECT(rc == SSL_CKPT_INCOMPATIBLE && strstr(err, "'method/queue'") && strstr(err, "11"),
                   "serial global size 11: rc %d, '%s'", rc, err);
    }
    ssl_barrier(c);

    /* a damaged chunk that only the last rank's range reaches: every rank fails (none is left
     * waiting in the collective read), DAMAGED, naming the file and dataset */
    size_t goff, gn;
    split(NBIG, W, r, &goff, &gn);
    float *big2 = calloc(NBIG, sizeof *big2);
    for (size_t i = 0; i < gn; i++) big2[i] = (float)(goff + i);
    ssl_ckpt cb = {.comm = c, .step = 14, .world_size = W};
    ssl_ckpt_add_sharded(&cb, "method/big", big2, gn, goff, NBIG);
    ssl_ckpt_add_i64(&cb, "method/queue_ptr", ptr, NI64); /* read after the failure: must not be reached */
    SSL_EXPECT(ssl_ckpt_save(&cb, dir, 0, err, sizeof err) == 0, "save big: %s", err);
    char bpath[300];
    ssl_ckpt_path(bpath, sizeof bpath, dir, 14);
    if (r == 0)
        SSL_EXPECT(flip_chunk_byte(bpath, "method/big", SSL_CKPT_CHUNK), "damage the second chunk of %s", bpath);
    ssl_barrier(c);
    ssl_ckpt lb = {.comm = c};
    ssl_ckpt_add_sharded(&lb, "method/big", big2, gn, goff, NBIG);
    ssl_ckpt_add_i64(&lb, "method/queue_ptr", ptr2, NI64);
    rc = ssl_ckpt_load(&lb, bpath, err, sizeof err);
    SSL_EXPECT(rc == SSL_CKPT_DAMAGED && strstr(err, bpath) && strstr(err, "'method/big'"),
               "rank %d: damaged chunk of another rank's range: rc %d, '%s'", r, rc, err);
    if (r == 0) printf("damaged chunk: %s\n", err);
    free(big2);
    ssl_barrier(c);
    if (r == 0) unlink(bpath); /* the listing below expects step 12 only */

    /* ranges that do not tile [0, NQ); the first with the right sum of sizes */
    expect_refused(c, dir, "overlap: rank 1 starts at 0", q, qn, r == 1 ? 0 : qoff, NQ);
    expect_refused(c, dir, "gap: the last rank holds nothing", q, r < W - 1 ? qn : 0, qoff, NQ);
    expect_refused(c, dir, "rank 0 gives another total", q, qn, qoff, r == 0 ? NQ + 5 : NQ);
    ssl_barrier(c);
    if (r == 0) {
        int64_t *steps;
        int ns = ssl_ckpt_list(dir, &steps);
        SSL_EXPECT(ns == 1 && steps[0] == 12, "refused saves left files: %d checkpoints", ns);
        free(steps);
        char cmd[320];
        snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep tmp)\"", dir);
        SSL_EXPECT(system(cmd) == 0, "a refused save left a .tmp in %s", dir);
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        SSL_EXPECT(system(cmd) == 0, "cleanup");
    }
    int64_t fails = ssl_test_failures;
    ssl_allreduce(c, &fails, 1, SSL_I64, SSL_SUM);
    if (r == 0) printf("parallel checkpoint np=%d: %lld failures\n", W, (long long)fails);
    ssl_comm_free(c);
    ssl_comm_mpi_finalize();
    return fails ? 1 : 0;
}
