/* bench_ckpt [--mparams N] [--dir DIR] [--reps R]: the cost of checkpoint checksums. Saves a
 * checkpoint the size of a model with N million parameters and AdamW state (params, m, v: 3N
 * floats) with Fletcher-32 on every chunk and without (contiguous datasets), then loads the
 * checksummed one (verification happens on read). Prints MB/s and the ratio; under mpirun every
 * rank writes its slice collectively, as training does. The page cache absorbs these writes, so
 * this measures the CPU cost of the checksum and chunking, not the disk. */
#include "cpu_model.h"
#include "framework/comm/comm.h"
#include "framework/core/timer.h"
#include "io/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    double mparams = 25.6; /* ResNet-50 */
    const char *dir = "/tmp";
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mparams")) mparams = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    ssl_comm *comm = ssl_comm_mpi_launched() ? ssl_comm_mpi_world(NULL, NULL) : ssl_comm_local();
    size_t n = (size_t)(mparams * 1e6);
    float *a[3];
    for (int k = 0; k < 3; k++) {
        a[k] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) a[k][i] = (float)((i * 2654435761u + (size_t)k) % 1000003) * 1e-6f;
    }
    char sub[1024], err[1024];
    int64_t id = 0;
    if (comm->rank == 0) id = (int64_t)getpid();
    ssl_broadcast(comm, &id, 1, SSL_I64, 0);
    snprintf(sub, sizeof sub, "%s/bench_ckpt.%lld", dir, (long long)id);
    if (comm->rank == 0 && mkdir(sub, 0755)) { /* the directory is per run */
        perror(sub);
        return 1;
    }
    ssl_barrier(comm);
    double mb = 3.0 * (double)n * 4 / 1e6, best[3] = {1e30, 1e30, 1e30};
    for (int r = 0; r < reps; r++)
        for (int mode = 0; mode < 2; mode++) {
            ssl_ckpt ck = {.comm = comm, .step = 1 + r * 2 + mode, .world_size = comm->world, .no_checksum = !mode};
            ssl_ckpt_add(&ck, "params", a[0], n);
            ssl_ckpt_add(&ck, "optim/m", a[1], n);
            ssl_ckpt_add(&ck, "optim/v", a[2], n);
            ssl_barrier(comm);
            double t0 = ssl_now();
            if (ssl_ckpt_save(&ck, sub, 1, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            double dt = ssl_now() - t0;
            if (dt < best[mode]) best[mode] = dt;
            if (mode == 1) {
                char path[1100];
                ssl_ckpt_path(path, sizeof path, sub, ck.step);
                ssl_barrier(comm);
                t0 = ssl_now();
                if (ssl_ckpt_load(&ck, path, err, sizeof err)) {
                    fprintf(stderr, "%s\n", err);
                    return 1;
                }
                dt = ssl_now() - t0;
                if (dt < best[2]) best[2] = dt;
            }
        }
    if (comm->rank == 0) {
        char model[256];
        bench_cpu_model(model, sizeof model);
        printf("cpu: %s; %d rank(s); checkpoint of %.1fM params + AdamW m, v = %.0f MB, best of %d\n", model,
               comm->world, mparams, mb, reps);
        printf("  save, no checksum (contiguous)   %7.3f s  %7.0f MB/s\n", best[0], mb / best[0]);
        printf("  save, Fletcher-32 per 1 MiB chunk %6.3f s  %7.0f MB/s  (%.2fx the time)\n", best[1], mb / best[1],
               best[1] / best[0]);
        printf("  load + verify                    %7.3f s  %7.0f MB/s\n", best[2], mb / best[2]);
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", sub);
        if (system(cmd)) fprintf(stderr, "could not remove %s\n", sub);
    }
    for (int k = 0; k < 3; k++) free(a[k]);
    ssl_comm_free(comm);
    ssl_comm_mpi_finalize();
    return 0;
}
