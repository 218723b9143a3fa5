/* Collective checkpoints across real ranks (2 and 4): every rank saves a replicated array (each
 * writes a 1/W slice) and a sharded one (each writes its block); every rank loads them back exactly;
 * a single process then reads the same file with the serial driver and sees the replicated array
 * whole and the sharded blocks concatenated in rank order (re-sharding to another rank count). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "io/checkpoint.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NREP 1001 /* not a multiple of the rank count */
#define NSH 7

int main(int argc, char **argv)
{
    ssl_comm *c = ssl_comm_mpi_world(&argc, &argv);
    const int W = c->world, r = c->rank;
    char dir[64] = "/tmp/sslrun-dpckpt-XXXXXX", err[512];
    if (r == 0) SSL_ASSERT(mkdtemp(dir));
    ssl_broadcast(c, dir, sizeof dir, SSL_U8, 0);
    float rep[NREP], sh[NSH];
    for (int i = 0; i < NREP; i++) rep[i] = 0.5f * (float)i - 3.0f;
    for (int i = 0; i < NSH; i++) sh[i] = (float)(100 * r + i);
    ssl_ckpt ck = {.comm = c, .step = 12, .epoch = 1, .epoch_step = 2, .world_size = W, .in_chans = 1, .seed = 9,
                   .config_yaml = "run: {seed: 9}\n"};
    ssl_ckpt_add(&ck, "params", rep, NREP);
    ssl_ckpt_add_sharded(&ck, "method/queue", sh, NSH);
    SSL_EXPECT(ssl_ckpt_save(&ck, dir, 2, err, sizeof err) == 0, "save: %s", err);

    char path[256];
    SSL_ASSERT(r != 0 || ssl_ckpt_find_latest(dir, path, sizeof path) == 0);
    ssl_broadcast(c, path, sizeof path, SSL_U8, 0);
    float rep2[NREP] = {0}, sh2[NSH] = {0};
    ssl_ckpt ld = {.comm = c};
    ssl_ckpt_add(&ld, "params", rep2, NREP);
    ssl_ckpt_add_sharded(&ld, "method/queue", sh2, NSH);
    SSL_EXPECT(ssl_ckpt_load(&ld, path, err, sizeof err) == 0, "load: %s", err);
    SSL_EXPECT(ld.step == 12 && ld.epoch_step == 2 && ld.world_size == W, "position %lld/%lld/%lld", (long long)ld.step,
               (long long)ld.epoch_step, (long long)ld.world_size);
    SSL_EXPECT(memcmp(rep, rep2, sizeof rep) == 0, "rank %d: replicated array differs after load", r);
    SSL_EXPECT(memcmp(sh, sh2, sizeof sh) == 0, "rank %d: its shard differs after load", r);

    ssl_barrier(c);
    if (r == 0) {
        float all[NSH * 4], rep3[NREP];
        ssl_ckpt one = {0};
        ssl_ckpt_add(&one, "params", rep3, NREP);
        ssl_ckpt_add_sharded(&one, "method/queue", all, (size_t)NSH * W);
        SSL_EXPECT(ssl_ckpt_load(&one, path, err, sizeof err) == 0, "serial load: %s", err);
        SSL_EXPECT(memcmp(rep, rep3, sizeof rep) == 0, "serial read of the replicated array differs");
        for (int s = 0; s < W; s++)
            for (int i = 0; i < NSH; i++)
                SSL_EXPECT(all[s * NSH + i] == (float)(100 * s + i), "shard %d element %d: %g", s, i, all[s * NSH + i]);
        /* a wrongly sized request names the dataset and the sizes */
        ssl_ckpt bad = {0};
        float tiny[3];
        ssl_ckpt_add_sharded(&bad, "method/queue", tiny, 3);
        SSL_EXPECT(ssl_ckpt_load(&bad, path, err, sizeof err) != 0 && strstr(err, "'method/queue'"), "size check: %s",
                   err);
        char cmd[320];
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
