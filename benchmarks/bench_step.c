/* Training-step benchmark: forward + backward + optimizer of a full encoder step on random images,
 * reported as images/s, achieved GFLOP/s and the fraction of this machine's fp32 GEMM peak
 * (measured in the same run with oneDNN's sgemm, and OpenBLAS's for comparison), plus the time
 * per layer kind. The loss is sum(features * r): the encoder dominates an SSL step, and the same
 * step runs in PyTorch through benchmarks/torch_step.py for the ratio.
 *   bench_step --model resnet18 --small-stem --img 32 --batch 128 --optim lars
 *   bench_step --model vit_tiny --img 32 --patch 4 --batch 64 --optim adamw
 *   bench_step --backend cuda --model resnet50 --img 224 --batch 64   (on a GPU: SSL_CUDA_UNVERIFIED=1
 *   until the op test has passed there; time per step after a device sync; the per-layer profile
 *   from timestamps queued in the stream, read after each step) */
#include "cpu_model.h"
#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"
#include "framework/models/model.h"
#include "framework/optim/optim.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SSL_BENCH_OPENBLAS
#include <cblas.h>
char *openblas_get_corename(void);
#endif

static double gemm_peak(int use_openblas)
{
    const int n = 2048;
    float *a = ssl_malloc((size_t)n * n * 4), *b = ssl_malloc((size_t)n * n * 4),
          *c = ssl_malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = b[i] = (float)(i % 7) * 0.1f;
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        double t = ssl_now();
        if (use_openblas) {
#ifdef SSL_BENCH_OPENBLAS
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
#endif
        } else {
            dnnl_sgemm('N', 'N', n, n, n, 1, a, n, b, n, 0, c, n);
        }
        double g = 2.0 * n * n * n / (ssl_now() - t) / 1e9;
        if (g > best && rep > 0) best = g;
    }
    ssl_free(a);
    ssl_free(b);
    ssl_free(c);
    return best;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_step [--model resnet18|resnet50|vit_tiny|...] [--small-stem] "
                    "[--width W] [--img S] [--patch P] [--batch N] [--iters K] "
                    "[--optim sgd|lars|adamw|lamb] [--backend cpu|cuda|devsim] [--precision fp32|bf16] "
                    "[--saved-activations bf16|fp32]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet18");
    int batch = 128, iters = 5, warmup = 2, bf16 = 0, acts_fp32 = 0;
    const char *optim = "sgd", *backend = "cpu";
    cfg.img_size = 32;
    cfg.patch_size = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--small-stem")) cfg.small_stem = 1;
        else if (!v) usage();
        else if (!strcmp(a, "--model")) snprintf(cfg.arch, sizeof cfg.arch, "%s", v), i++;
        else if (!strcmp(a, "--width")) cfg.width = atoi(v), i++;
        else if (!strcmp(a, "--img")) cfg.img_size = atoi(v), i++;
        else if (!strcmp(a, "--patch")) cfg.patch_size = atoi(v), i++;
        else if (!strcmp(a, "--batch")) batch = atoi(v), i++;
        else if (!strcmp(a, "--iters")) iters = atoi(v), i++;
        else if (!strcmp(a, "--optim")) optim = v, i++;
        else if (!strcmp(a, "--backend")) backend = v, i++;
        else if (!strcmp(a, "--precision") && v && (!strcmp(v, "fp32") || !strcmp(v, "bf16"))) bf16 = !strcmp(v, "bf16"), i++;
        else if (!strcmp(a, "--saved-activations") && v && (!strcmp(v, "fp32") || !strcmp(v, "bf16")))
            acts_fp32 = !strcmp(v, "fp32"), i++;
        else usage();
    }
    ssl_optim_kind kind = !strcmp(optim, "lars")    ? SSL_OPTIM_LARS
                          : !strcmp(optim, "adamw") ? SSL_OPTIM_ADAMW
                          : !strcmp(optim, "lamb")  ? SSL_OPTIM_LAMB
                                                    : SSL_OPTIM_SGD;
    if (!ssl_backend_get(backend)) {
        fprintf(stderr, "bench_step: backend %s is not available here\n", backend);
        return 2;
    }
    const int host = !strcmp(backend, "cpu");
    ssl_ctx c;
    ssl_ctx_init(&c, backend);
    c.precision_bf16 = bf16; /* model.precision */
    c.acts_fp32 = acts_fp32; /* model.saved_activations */
    ssl_params p, bufs;
    ssl_params_init(&p);
    ssl_params_init(&bufs);
    ssl_plan pl = {&p, &bufs};
    ssl_model m;
    char err[256];
    if (ssl_model_build(&m, &cfg, &pl, "", err)) {
        fprintf(stderr, "bench_step: %s\n", err);
        return 2;
    }
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&bufs, c.be, 0);
    ssl_params_init_values(&p, 1);
    ssl_params_init_values(&bufs, 1);
    ssl_optim_config oc = ssl_optim_config_default(kind);
    ssl_optim o;
    ssl_optim_init(&o, &c, &p, &oc);

    size_t nx = (size_t)batch * cfg.in_chans * cfg.img_size * cfg.img_size;
    float *x = ssl_malloc(nx * sizeof(float)), *r = ssl_malloc((size_t)batch * m.out_dim * sizeof(float));
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (size_t i = 0; i < (size_t)batch * m.out_dim; i++) r[i] = (float)((i * 40503u) % 1000) / 1e5f;
    float *dy = ssl_malloc((size_t)batch * m.out_dim * sizeof(float));
    /* device backends: the images and the output gradient live on the device (uploaded once / per step) */
    const size_t ndy = (size_t)batch * m.out_dim;
    float *xd = x, *dyd = dy;
    if (!host) {
        xd = c.be->alloc(nx * sizeof(float)), dyd = c.be->alloc(ndy * sizeof(float));
        c.be->upload(xd, x, nx * sizeof(float));
    }

    double peak = host ? gemm_peak(0) : 0.0;
    printf("sslrun bench_step: %s%s img %d%s batch %d, optim %s, %d threads\n", cfg.arch,
           cfg.small_stem ? " small-stem" : "", cfg.img_size,
           strncmp(cfg.arch, "vit", 3) ? "" : " patch", batch, optim, omp_get_max_threads());
    if (!strncmp(cfg.arch, "vit", 3)) printf("  patch size %d\n", cfg.patch_size);
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("  cpu %s\n", cpu);
    printf("  precision %s\n", ssl_precision_describe(&c));
    printf("  parameters %zu, forward %.3f GFLOP/image, step %.2f GFLOP\n", p.count,
           m.flops_per_image / 1e9, 3.0 * m.flops_per_image * batch / 1e9);
    if (host) {
        printf("  fp32 GEMM peak (2048^3): oneDNN sgemm %.1f GFLOP/s", peak);
#ifdef SSL_BENCH_OPENBLAS
        printf(", OpenBLAS (%s kernels) %.1f GFLOP/s", openblas_get_corename(), gemm_peak(1));
#endif
        printf("\n");
    } else {
        printf("  backend %s\n", backend);
    }

    ssl_prof prof;
    memset(&prof, 0, sizeof prof);
    double total = 0;
    for (int it = 0; it < warmup + iters; it++) {
        int timed = it >= warmup;
        c.prof = timed ? &prof : NULL; /* on a device: stream timestamps, no wait per layer */
        double t0 = ssl_now();
        ssl_ctx_step_begin(&c);
        ssl_params_zero_grad(&c, &p);
        ssl_weights w = {p.data, p.grad, bufs.data};
        ssl_tensor y = m.forward(&c, &m, &w, ssl_tensor_4d(xd, batch, cfg.in_chans, cfg.img_size, cfg.img_size), 1);
        if (host) memcpy(dy, r, ndy * sizeof(float));
        else c.be->upload(dyd, r, ndy * sizeof(float));
        m.backward(&c, &m, &w, ssl_tensor_2d(dyd, y.shape[0], y.shape[1]));
        double to = ssl_prof_begin(&c);
        ssl_optim_step(&o, &c, 0.01f, 1e-4f);
        ssl_prof_end(&c, SSL_PROF_OPTIM, to, 0);
        c.be->sync(&c);
        double dt = ssl_now() - t0;
        ssl_prof_flush(&c); /* after the step's time is taken */
        if (timed) total += dt;
        printf("  step %d: %.3f s%s\n", it, dt, timed ? "" : " (warm-up)");
    }
    double step = total / iters;
    double gflops = 3.0 * m.flops_per_image * batch / step / 1e9;
    if (host)
        printf("RESULT images/s %.1f  step %.3f s  achieved %.1f GFLOP/s  = %.0f%% of sgemm peak\n", batch / step, step,
               gflops, 100.0 * gflops / peak);
    else
        printf("RESULT images/s %.1f  step %.3f s  achieved %.1f GFLOP/s\n", batch / step, step, gflops);
    const double pg = 2.0 * p.numel * sizeof(float) / 1e6,
                 os = ((o.m ? 1 : 0) + (o.v ? 1 : 0)) * (double)p.numel * sizeof(float) / 1e6;
    printf("  activation arena peak %.1f MB (workspace %.1f MB, parameters + gradients %.1f MB, optimizer state %.1f MB)\n",
           c.act.peak / 1e6, c.ws_bytes / 1e6, pg, os);
    printf("  memory held %.1f MB (arena, workspace, parameters, gradients, optimizer state)\n",
           (c.act.peak + c.ws_bytes) / 1e6 + pg + os);
    printf("  time per layer kind (mean per step):\n");
    double accounted = 0;
    for (int b = 0; b < SSL_PROF_COUNT; b++) {
        if (prof.seconds[b] <= 0) continue;
        double s = prof.seconds[b] / iters;
        accounted += s;
        printf("    %-15s %8.1f ms  %5.1f%%", ssl_prof_names[b], 1e3 * s, 100 * s / step);
        if (prof.flops[b] > 0) printf("  %7.1f GFLOP/s", prof.flops[b] / prof.seconds[b] / 1e9);
        printf("\n");
    }
    printf("    %-15s %8.1f ms\n", "unaccounted", 1e3 * (step - accounted));
    if (!host) c.be->free(xd), c.be->free(dyd);
    ssl_free(x);
    ssl_free(r);
    ssl_free(dy);
    ssl_optim_free(&o);
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&bufs);
    ssl_ctx_free(&c);
    ssl_prof_free(&prof);
    return 0;
}
