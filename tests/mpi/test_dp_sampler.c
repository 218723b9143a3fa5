/* The sampler across real ranks (2 and 4): gathered over ranks, an epoch covers every index
 * exactly once (drop_last, n a multiple of the batch); two epochs differ; and each step's global
 * batch, concatenated in rank order, equals what one rank draws with the same seed. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "io/sampler.h"

#include <string.h>

#define NS 96
#define GBATCH 16

int main(int argc, char **argv)
{
    ssl_comm *c = ssl_comm_mpi_world(&argc, &argv);
    char err[256];
    ssl_sampler s, one;
    SSL_ASSERTF(ssl_sampler_init(&s, NS, GBATCH, c->rank, c->world, 5, 1, err, sizeof err) == 0, "%s", err);
    SSL_ASSERTF(ssl_sampler_init(&one, NS, GBATCH, 0, 1, 5, 1, err, sizeof err) == 0, "%s", err);
    int64_t mine[GBATCH], all[GBATCH], ref[GBATCH], first[NS];
    for (int64_t e = 0; e < 2; e++) {
        int count[NS] = {0};
        for (int64_t st = 0; st < s.steps_per_epoch; st++) {
            SSL_ASSERT(ssl_sampler_batch(&s, e, st, mine) == 0);
            ssl_allgather(c, mine, all, (size_t)s.local_batch, SSL_I64);
            SSL_ASSERT(ssl_sampler_batch(&one, e, st, ref) == 0);
            SSL_EXPECT(memcmp(all, ref, sizeof ref) == 0, "epoch %lld step %lld: %d-rank batch differs from 1-rank",
                       (long long)e, (long long)st, c->world);
            for (int i = 0; i < GBATCH; i++) count[all[i]]++;
            if (e == 0) memcpy(first + st * GBATCH, all, sizeof all);
            else if (st == 0) SSL_EXPECT(memcmp(first, all, sizeof all) != 0, "epochs 0 and 1 start alike");
        }
        for (int i = 0; i < NS; i++) SSL_EXPECT(count[i] == 1, "epoch %lld: index %d drawn %d times", (long long)e, i, count[i]);
    }
    ssl_sampler_free(&s);
    ssl_sampler_free(&one);
    return ssl_test_mpi_exit(c);
}
