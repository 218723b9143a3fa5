/* Resume from the newest checkpoint that loads (see checkpoint.h: ssl_ckpt_resume). A week-long
 * job must neither die nor silently restart because its last write was damaged: a damaged newest
 * file is reported by path and reason and the previous one is tried; when one loads, the damaged
 * newer files are renamed to NAME.damaged (kept for inspection, out of the way of the next resume
 * and of pruning). When none loads, nothing is renamed and the caller stops: starting over from
 * step 0 is a decision for the user, not for the trainer. */
#include "io/checkpoint.h"

#include "framework/comm/comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A checkpoint load, agreed across ranks: the worst outcome of any rank is everyone's. */
static int load_agreed(ssl_ckpt *ck, const char *path, char *err, size_t errlen)
{
    int rc = ssl_ckpt_load(ck, path, err, errlen);
    if (!ck->comm || ck->comm->world == 1) return rc;
    int64_t worst = rc;
    ssl_allreduce(ck->comm, &worst, 1, SSL_I64, SSL_MIN);
    if (worst != 0 && rc == 0) snprintf(err, errlen, "%s: another rank could not load it", path);
    return (int)worst;
}

int ssl_ckpt_resume(ssl_ckpt *ck, const char *dir, int rename_damaged, char *path, size_t pathlen, char *err,
                    size_t errlen)
{
    const int rank = ck->comm ? ck->comm->rank : 0;
    int64_t *steps = NULL, n = 0;
    if (rank == 0) n = ssl_ckpt_list(dir, &steps);
    if (ck->comm) {
        /* one view of the directory: rank 0's */
        ssl_broadcast(ck->comm, &n, 1, SSL_I64, 0);
        if (rank) steps = malloc((size_t)(n ? n : 1) * sizeof *steps);
        if (n) ssl_broadcast(ck->comm, steps, (size_t)n, SSL_I64, 0);
    }
    int rc = 1;
    char first[1024] = "";
    for (int64_t i = n - 1; i >= 0; i--) {
        ssl_ckpt_path(path, pathlen, dir, steps[i]);
        rc = load_agreed(ck, path, err, errlen);
        if (rc == 0) {
            for (int64_t j = i + 1; j < n && rank == 0 && rename_damaged; j++) {
                char bad[1100], moved[1200];
                ssl_ckpt_path(bad, sizeof bad, dir, steps[j]);
                snprintf(moved, sizeof moved, "%s.damaged", bad);
                if (rename(bad, moved) == 0) fprintf(stderr, "sslrun: kept the damaged file as %s\n", moved);
            }
            break;
        }
        if (rc == SSL_CKPT_INCOMPATIBLE) break; /* a user error: older files would not fit either */
        if (!first[0]) snprintf(first, sizeof first, "%s", err);
        if (rank == 0)
            fprintf(stderr, "sslrun: warning: %s\nsslrun: %s\n", err,
                    i > 0 ? "falling back to the previous checkpoint" : "no older checkpoint to fall back to");
    }
    if (rc == SSL_CKPT_DAMAGED)
        snprintf(err, errlen,
                 "no usable checkpoint in %s: all %lld are damaged (newest: %s); not starting over from step 0 "
                 "(move the directory away to start a fresh run)",
                 dir, (long long)n, first);
    free(steps);
    return rc;
}
