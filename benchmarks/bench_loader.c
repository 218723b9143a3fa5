/* Data-path benchmark: the real ssl_loader over JPEG shards with the trainer's own per-sample
 * transform for SimCLR (ssl_view_pipes_sample: both views' crops drawn at the stored size, one decode
 * at the DCT scale they allow, augmentation into (2, B, 3, S, S) floats), batches taken on the main
 * thread as fast as they come. benchmarks/torch_loader.py is PyTorch's DataLoader on the same JPEGs;
 * benchmarks/bench_loader.sh runs both. --device-aug also times the readers' share under
 * augment.on device (decode, parameters, the source pixels and jobs staged; the views are then the
 * GPU's work): what a GPU rank asks of its CPU cores. --backend NAME (with --device-aug) then uploads
 * each staged batch and times the backend's augment op making its views (cuda: the GPU's side).
 *   bench_loader --data 'DIR/train-*.h5' [--workers "1 2 4"] [--batch 64] [--img 224] [--batches 30]
 *                [--warmup 3] [--depth D] [--seed 0] [--raw-data 'RAW/train-*.h5'] [--device-aug]
 *                [--backend cpu|cuda|devsim] */
#include "cpu_model.h"
#include "framework/backend/backend.h"
#include "framework/core/timer.h"
#include "framework/train/views.h"
#include "io/dataset.h"
#include "io/loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ssl_view_pipes vp;
    uint64_t seed;
    const ssl_dataset *ds;
    int64_t corrupt;
    ssl_ctx *dev; /* --backend: the augment op's context */
    float *stage, *views;
    double op_s;  /* seconds in the op, synchronised */
} bench_ctx;

static int transform(void *ctx, const ssl_batch *b, float *out, void *scratch, char *err, size_t errlen)
{
    bench_ctx *c = ctx; /* the trainer's transform body: a corrupt image stops the benchmark */
    return ssl_view_pipes_batch(&c->vp, c->seed, b, c->ds, 1, 0, &c->corrupt, out, scratch, err, errlen);
}

typedef struct {
    int batch, batches, warmup, depth, device_aug;
    uint64_t seed;
    const char *backend;
} bench_opts;

/* images/s over o->batches batches after o->warmup, or -1 with a message. */
static double run(ssl_dataset *ds, bench_ctx *c, const bench_opts *o, int workers, int depth, double *upload_kb,
                  char *err, size_t errlen)
{
    const int C = ssl_dataset_channels(ds);
    ssl_sampler s;
    if (ssl_sampler_init(&s, ssl_dataset_size(ds), o->batch, 0, 1, o->seed, 1, err, errlen)) return -1;
    const ssl_loader_transform tf = {.fn = transform, .scratch_free = ssl_view_scratch_free, .ctx = c,
                                     .out_floats = ssl_view_pipes_staging_floats(&c->vp, o->batch, C),
                                     .scratch_bytes = ssl_view_pipes_scratch_bytes(&c->vp),
                                     .out_alloc = c->dev ? c->dev->be->host_alloc : NULL,
                                     .out_free = c->dev ? c->dev->be->host_free : NULL};
    ssl_loader l;
    int rc = ssl_loader_start(&l, ds, &s, 0, 0, workers, depth, &tf, err, errlen);
    ssl_sampler_free(&s);
    if (rc) return -1;
    double t0 = 0, sink = 0, upload = 0;
    ssl_batch b;
    for (int k = 0; k < o->warmup + o->batches && rc == 0; k++) {
        if (k == o->warmup) t0 = ssl_now();
        rc = ssl_loader_next(&l, &b, err, errlen);
        if (rc == 0) /* read the batch, as a step would: a view's float, or a staged byte */
            sink += c->vp.device ? ((const unsigned char *)b.out)[(size_t)k * 7919 % (tf.out_floats * sizeof(float))]
                                 : b.out[(size_t)k * 7919 % tf.out_floats];
        if (rc == 0 && k >= o->warmup) upload += (double)ssl_view_pipes_upload_bytes(&c->vp, &b, C);
        if (rc == 0 && c->dev && c->vp.device) {
            ssl_ctx *d = c->dev;
            float *staged = ssl_ctx_upload_staged(d, &c->stage, tf.out_floats, b.out,
                                                  (ssl_view_pipes_upload_bytes(&c->vp, &b, C) + 3) / sizeof(float));
            d->be->sync(d);
            const double t = ssl_now();
            ssl_view_pipes_make(&c->vp, d, staged, b.n, C, &c->views);
            d->be->sync(d);
            if (k >= o->warmup) c->op_s += ssl_now() - t;
        }
    }
    const double dt = ssl_now() - t0;
    ssl_loader_stop(&l);
    if (rc) return -1;
    if (sink != sink) fprintf(stderr, "bench_loader: NaN in the views\n");
    *upload_kb = upload / 1024.0 / ((double)o->batches * o->batch);
    return (double)o->batches * o->batch / dt;
}

static void describe(const char *path, ssl_dataset *ds)
{
    const int64_t n = ssl_dataset_size(ds);
    double h = ssl_dataset_height(ds), w = ssl_dataset_width(ds);
    if (ssl_dataset_is_jpeg(ds)) {
        const int32_t *hw = ssl_dataset_sizes(ds);
        h = w = 0;
        for (int64_t i = 0; i < n; i++) h += hw[2 * i], w += hw[2 * i + 1];
        h /= (double)n, w /= (double)n;
    }
    printf("%s data: %s: %lld images in %d shard(s), mean size %.0f x %.0f, %d channels\n",
           ssl_dataset_is_jpeg(ds) ? "jpeg" : "raw", path, (long long)n, ssl_dataset_num_shards(ds), h, w,
           ssl_dataset_channels(ds));
}

/* One line per worker count for the shards at path. 0, or -1 with a message. */
static int bench_data(const char *path, const int *wl, int nw, int img, const bench_opts *o, char *err, size_t errlen)
{
    ssl_dataset *ds = ssl_dataset_open(path, err, errlen);
    if (!ds) return -1;
    const int C = ssl_dataset_channels(ds);
    /* SimCLR's ImageNet pipeline, as the trainer builds it: one group of 2 views, view ids 0 and 1 */
    ssl_ctx actx;
    bench_ctx c = {.seed = o->seed, .ds = ds};
    if (o->backend && !ssl_backend_get(o->backend)) {
        snprintf(err, errlen, "backend %s is not available here", o->backend);
        ssl_dataset_close(ds);
        return -1;
    }
    if (o->backend) ssl_ctx_init(&actx, o->backend);
    c.vp.plan.ngroups = 1;
    c.vp.plan.group[0] = (ssl_view_group){2, img};
    c.vp.nviews = 2;
    int rc = 0;
    for (int v = 0; v < 2 && rc == 0; v++) {
        ssl_augment_config_default(&c.vp.pipe[v], C, img);
        c.vp.pipe[v].views = 1;
        rc = ssl_augment_config_check(&c.vp.pipe[v], C, err, errlen);
    }
    if (rc == 0 && ssl_dataset_size(ds) < o->batch) {
        snprintf(err, errlen, "%s: %lld images, fewer than one batch of %d", path, (long long)ssl_dataset_size(ds),
                 o->batch);
        rc = -1;
    }
    if (rc == 0) describe(path, ds);
    for (int dev = 0; dev <= o->device_aug && rc == 0; dev++) {
        if (dev) ssl_view_pipes_use_device(&c.vp, ds, o->batch);
        for (int k = 0; k < nw && rc == 0; k++) {
            /* PyTorch's DataLoader keeps prefetch_factor (2) x num_workers batches in flight */
            const int depth = o->depth ? o->depth : 2 * wl[k];
            double kb = 0;
            c.dev = dev && o->backend ? &actx : NULL; /* the op only on staged batches */
            c.op_s = 0;
            const double r = run(ds, &c, o, wl[k], depth, &kb, err, errlen);
            if (r < 0) rc = -1;
            else
                printf("%s%s workers %d depth %d: %.1f img/s, %.1f img/s per worker, %.0f KB per image to upload\n",
                       ssl_dataset_is_jpeg(ds) ? "jpeg" : "raw", dev ? " staged for device augmentation" : "", wl[k],
                       depth, r, r / wl[k], kb);
            if (r >= 0 && c.dev)
                printf("  augment op on %s: %.1f img/s (%d views of each, after the upload)\n", o->backend,
                       (double)o->batches * o->batch / c.op_s, c.vp.nviews);
            fflush(stdout);
        }
    }
    if (o->backend) {
        if (c.stage) actx.be->free(c.stage);
        if (c.views) actx.be->free(c.views);
        ssl_ctx_free(&actx);
    }
    ssl_dataset_close(ds);
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_loader --data 'DIR/train-*.h5' [--workers \"1 2 4\"] [--batch 64] [--img 224] "
                    "[--batches 30] [--warmup 3] [--depth D (default 2 x workers)] [--seed S] "
                    "[--raw-data 'RAW/train-*.h5'] [--device-aug] [--backend cpu|cuda|devsim]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *raw = NULL, *workers = "1 2 4";
    bench_opts o = {.batch = 64, .batches = 30, .warmup = 3, .depth = 0, .seed = 0};
    int img = 224;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device-aug")) {
            o.device_aug = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--raw-data")) raw = v;
        else if (!strcmp(a, "--workers")) workers = v;
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--img")) img = atoi(v);
        else if (!strcmp(a, "--batches")) o.batches = atoi(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--depth")) o.depth = atoi(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--backend")) o.backend = v;
        else usage();
    }
    int wlist[16], nw = 0;
    const char *p = workers;
    for (char *end; nw < 16; p = end) {
        long w = strtol(p, &end, 10);
        if (end == p) break;
        if (w < 1 || w > 256) usage();
        wlist[nw++] = (int)w;
    }
    p += strspn(p, " \t");
    if (*p || !data || !nw || o.batch < 1 || img < 8 || o.batches < 1 || o.warmup < 0 || o.depth < 0) usage();

    char err[2048], cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("CPU: %s, %ld cores\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
    printf("batch %d, 2 views of %d x %d (SimCLR ImageNet augmentation), %d batches timed after %d warm-up\n",
           o.batch, img, img, o.batches, o.warmup);
    int rc = bench_data(data, wlist, nw, img, &o, err, sizeof err);
    /* raw: the same path without decoding, one line at the largest worker count */
    if (rc == 0 && raw) rc = bench_data(raw, &wlist[nw - 1], 1, img, &o, err, sizeof err);
    if (rc) fprintf(stderr, "bench_loader: %s\n", err);
    return rc ? 1 : 0;
}
