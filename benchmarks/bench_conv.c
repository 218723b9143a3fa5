/* Convolution benchmark: ms and GFLOP/s of forward, backward-data and backward-filter for the
 * im2col + GEMM reference, oneDNN on plain NCHW/OIHW and oneDNN in its blocked layout (with the
 * reorders), per representative layer shape, plus the shipped dispatch, and the totals of two steps
 * (ResNet-18 on CIFAR, the quickstart's) per implementation and for the best of the three per layer.
 * Usage: bench_conv [-r reps] [-f name-substring] [-n]. Medians of reps samples after a warm-up;
 * the machine is shared, so each sample first waits (up to 20 s; -n: not) until no other process
 * is runnable, and the implementations are interleaved sample by sample. */
#include "cpu_model.h"
#include "framework/backend/backend.h"
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"

#include <dirent.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int N, C, H, K, R, stride, pad;
    /* times the shape occurs in each step of step_name (0: not in it) */
    int count[2];
} bench_shape;

static const char *const step_name[2] = {
    "ResNet-18 small-stem step, CIFAR 32 px, batch 128",
    "the quickstart's step, widths 16-128, 28 px, batch 2 x 128"};

static const bench_shape shapes[] = {
    /* ResNet-18/50 with the small-image stem, CIFAR 32x32, batch 128 */
    {"r18 stem 3->64 32x32", 128, 3, 32, 64, 3, 1, 1, {1, 0}},
    {"r18 l1 64->64 32x32", 128, 64, 32, 64, 3, 1, 1, {4, 0}},
    {"r18 l2 64->128 s2", 128, 64, 32, 128, 3, 2, 1, {1, 0}},
    {"r18 l2 sc 1x1 s2", 128, 64, 32, 128, 1, 2, 0, {1, 0}},
    {"r18 l2 128->128 16x16", 128, 128, 16, 128, 3, 1, 1, {3, 0}},
    {"r18 l3 128->256 s2", 128, 128, 16, 256, 3, 2, 1, {1, 0}},
    {"r18 l3 sc 1x1 s2", 128, 128, 16, 256, 1, 2, 0, {1, 0}},
    {"r18 l3 256->256 8x8", 128, 256, 8, 256, 3, 1, 1, {3, 0}},
    {"r18 l4 256->512 s2", 128, 256, 8, 512, 3, 2, 1, {1, 0}},
    {"r18 l4 sc 1x1 s2", 128, 256, 8, 512, 1, 2, 0, {1, 0}},
    {"r18 l4 512->512 4x4", 128, 512, 4, 512, 3, 1, 1, {3, 0}},
    {"r50 1x1 64->256 32x32", 128, 64, 32, 256, 1, 1, 0, {0, 0}},
    {"r50 1x1 256->64 32x32", 128, 256, 32, 64, 1, 1, 0, {0, 0}},
    {"r50 1x1 2048->512 4x4", 128, 2048, 4, 512, 1, 1, 0, {0, 0}},
    /* ImageNet stem and ViT patch embeddings */
    {"imagenet stem 7x7 s2 224", 32, 3, 224, 64, 7, 2, 3, {0, 0}},
    {"vit patch16 3->768 224", 32, 3, 224, 768, 16, 16, 0, {0, 0}},
    {"vit patch4 3->192 32x32", 128, 3, 32, 192, 4, 4, 0, {0, 0}},
    /* the quickstart's step (configs/fmnist_simclr.yaml): both views as one batch of 256 */
    {"qs stem 3->16 28x28", 256, 3, 28, 16, 3, 1, 1, {0, 1}},
    {"qs l1 16->16 28x28", 256, 16, 28, 16, 3, 1, 1, {0, 4}},
    {"qs l2 16->32 s2", 256, 16, 28, 32, 3, 2, 1, {0, 1}},
    {"qs l2 sc 1x1 s2", 256, 16, 28, 32, 1, 2, 0, {0, 1}},
    {"qs l2 32->32 14x14", 256, 32, 14, 32, 3, 1, 1, {0, 3}},
    {"qs l3 32->64 s2", 256, 32, 14, 64, 3, 2, 1, {0, 1}},
    {"qs l3 sc 1x1 s2", 256, 32, 14, 64, 1, 2, 0, {0, 1}},
    {"qs l3 64->64 7x7", 256, 64, 7, 64, 3, 1, 1, {0, 3}},
    {"qs l4 64->128 s2", 256, 64, 7, 128, 3, 2, 1, {0, 1}},
    {"qs l4 sc 1x1 s2", 256, 64, 7, 128, 1, 2, 0, {0, 1}},
    {"qs l4 128->128 4x4", 256, 128, 4, 128, 3, 1, 1, {0, 3}},
};

enum { A_IM2COL, A_PLAIN, A_BLOCKED, A_SHIPPED, A_COUNT };
static const char *const algo_name[A_COUNT] = {"im2col", "dnnl plain", "dnnl blocked", "shipped"};
static const char *const dir_name[3] = {"fwd", "bwd_data", "bwd_filter"};

typedef struct {
    ssl_ctx *c;
    const ssl_conv_shape *s;
    float *x, *w, *y, *dx, *dw;
} bufs;

static void run(const bufs *b, int algo, int dir)
{
    ssl_ctx *c = b->c;
    const ssl_conv_shape *s = b->s;
    int blk = algo == A_BLOCKED;
    if (dir == 0) {
        if (algo == A_IM2COL) ssl_cpu_conv2d_fwd_im2col(c, s, b->x, b->w, b->y);
        else if (algo == A_SHIPPED) c->be->conv2d_fwd(c, s, b->x, b->w, b->y);
        else ssl_cpu_conv2d_fwd_dnnl(c, s, b->x, b->w, b->y, blk);
    } else if (dir == 1) {
        if (algo == A_IM2COL) ssl_cpu_conv2d_bwd_data_im2col(c, s, b->y, b->w, b->dx);
        else if (algo == A_SHIPPED) c->be->conv2d_bwd_data(c, s, b->y, b->w, b->dx);
        else ssl_cpu_conv2d_bwd_data_dnnl(c, s, b->y, b->w, b->dx, blk);
    } else {
        if (algo == A_IM2COL) ssl_cpu_conv2d_bwd_filter_im2col(c, s, b->y, b->x, b->dw);
        else if (algo == A_SHIPPED) c->be->conv2d_bwd_filter(c, s, b->y, b->x, b->dw);
        else ssl_cpu_conv2d_bwd_filter_dnnl(c, s, b->y, b->x, b->dw, blk);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* 1 when a process other than this one is running or runnable (state R in /proc/PID/stat). */
static int others_running(void)
{
    DIR *d = opendir("/proc");
    if (!d) return 0;
    int busy = 0, self = (int)getpid();
    struct dirent *de;
    while (!busy && (de = readdir(d))) {
        int pid = atoi(de->d_name);
        if (pid <= 0 || pid == self) continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *rp = strrchr(buf, ')'); /* the command name may contain spaces */
        if (rp && rp[1] == ' ' && rp[2] == 'R') busy = 1;
    }
    closedir(d);
    return busy;
}

static int quiet_gate = 1;

/* Wait until nobody else has run for 3 consecutive 20 ms polls (at most 20 s). */
static void wait_quiet(void)
{
    if (!quiet_gate) return;
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int polls = 0, calm = 0; calm < 3 && polls < 1000; polls++) {
        calm = others_running() ? 0 : calm + 1;
        if (calm < 3) nanosleep(&ts, NULL);
    }
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Median seconds per call per algorithm of `reps` samples each, interleaved so that interference
 * hits all alike, after one untimed warm-up each (which creates the cached primitives). A sample
 * is one untimed call (waking the OpenMP threads the quiet wait let sleep) and then enough
 * back-to-back calls to fill ~50 ms, as in a training step where convolutions follow each other. */
static void time_medians(const bufs *b, int dir, int reps, double *med)
{
    double t[A_COUNT][64];
    int inner[A_COUNT];
    for (int a = 0; a < A_COUNT; a++) {
        double t0 = ssl_now();
        run(b, a, dir);
        run(b, a, dir);
        double once = 0.5 * (ssl_now() - t0);
        inner[a] = once >= 0.05 ? 1 : once < 1e-3 ? 50 : (int)(0.05 / once);
    }
    for (int i = 0; i < reps; i++)
        for (int a = 0; a < A_COUNT; a++) {
            wait_quiet();
            run(b, a, dir);
            double t0 = ssl_now();
            for (int j = 0; j < inner[a]; j++) run(b, a, dir);
            t[a][i] = (ssl_now() - t0) / inner[a];
        }
    for (int a = 0; a < A_COUNT; a++) med[a] = median(t[a], reps);
}

static float *filled(size_t n, unsigned seed)
{
    float *p = ssl_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) * (2.0f / 16777216.0f) - 1.0f;
    }
    return p;
}

int main(int argc, char **argv)
{
    int reps = 5;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "-n") == 0) quiet_gate = 0;
        else {
            fprintf(stderr, "usage: %s [-r reps] [-f name-substring] [-n]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 64) reps = 64;

    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("bench_conv: %s, %d thread(s), oneDNN ISA %s, median of %d\n", cpu,
           omp_get_max_threads(), ((ssl_cpu_state *)c.be_state)->avx512 ? "AVX-512" : "below AVX-512",
           reps);
    printf("%-26s %-10s %7s | %16s | %16s | %16s | %16s\n", "shape", "dir", "GFLOP",
           algo_name[0], algo_name[1], algo_name[2], algo_name[3]);
    printf("%-26s %-10s %7s | %16s | %16s | %16s | %16s\n", "", "", "", "ms  GFLOP/s",
           "ms  GFLOP/s", "ms  GFLOP/s", "ms  GFLOP/s");

    /* step seconds per step of step_name, algorithm (the last: the best of the three per layer)
     * and direction */
    double total[2][A_COUNT + 1][3] = {{{0}}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const bench_shape *p = &shapes[i];
        if (filter && !strstr(p->name, filter)) continue;
        ssl_conv_shape s = ssl_conv_shape_make(p->N, p->C, p->H, p->H, p->K, p->R, p->stride,
                                               p->pad);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * s.C * s.R * s.R;
        size_t ny = (size_t)s.N * s.K * s.P * s.Q;
        bufs b = {&c, &s, filled(nx, 1), filled(nw, 2), filled(ny, 3), filled(nx, 4),
                  filled(nw, 5)};
        double gflop = 2.0 * s.N * s.K * s.C * s.R * s.R * s.P * s.Q * 1e-9;
        for (int dir = 0; dir < 3; dir++) {
            double med[A_COUNT];
            time_medians(&b, dir, reps, med);
            printf("%-26s %-10s %7.2f", dir == 0 ? p->name : "", dir_name[dir], gflop);
            /* a stem's dx (the image's gradient) is never computed in training */
            const int counted = !(p->C == 3 && dir == 1);
            double best = med[0];
            for (int a = 0; a < A_COUNT; a++) {
                double t = med[a];
                if (a < A_SHIPPED && t < best) best = t;
                for (int k = 0; k < 2; k++) total[k][a][dir] += counted * p->count[k] * t;
                printf(" | %8.2f %7.1f", t * 1e3, gflop / t);
            }
            for (int k = 0; k < 2; k++) total[k][A_COUNT][dir] += counted * p->count[k] * best;
            printf("\n");
            fflush(stdout);
        }
        for (int dir = 0; dir < 3; dir++)
            printf("%-26s   %-10s plain: %s | blocked: %s\n", "", dir_name[dir],
                   ssl_cpu_conv_dnnl_impl(&c, &s, dir, 0), ssl_cpu_conv_dnnl_impl(&c, &s, dir, 1));
        ssl_free(b.x);
        ssl_free(b.w);
        ssl_free(b.y);
        ssl_free(b.dx);
        ssl_free(b.dw);
    }
    for (int k = 0; k < 2 && !filter; k++) {
        printf("\n%s, all convolutions (ms):\n", step_name[k]);
        printf("%-18s %10s %10s %10s %10s\n", "", "fwd", "bwd_data", "bwd_filter", "total");
        for (int a = 0; a <= A_COUNT; a++) {
            const double *t = total[k][a];
            printf("%-18s %10.1f %10.1f %10.1f %10.1f\n",
                   a < A_COUNT ? algo_name[a] : "best per layer", t[0] * 1e3, t[1] * 1e3,
                   t[2] * 1e3, (t[0] + t[1] + t[2]) * 1e3);
        }
    }
    ssl_ctx_free(&c);
    return 0;
}
