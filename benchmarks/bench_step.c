/* Training-step benchmark: forward + backward + optimizer of a full encoder step on random images,
 * reported as images/s, achieved GFLOP/s and the fraction of this machine's fp32 GEMM peak
 * (measured in the same run with oneDNN's sgemm, and OpenBLAS's for comparison), plus the time
 * per layer kind. The loss is sum(features * r): the encoder dominates an SSL step, and the same
 * step runs in PyTorch through benchmarks/torch_step.py for the ratio.
 *   bench_step --model resnet18 --small-stem --img 32 --batch 128 --optim lars
 *   bench_step --model vit_tiny --img 32 --patch 4 --batch 64 --optim adamw
 *   bench_step --backend cuda --model resnet50 --img 224 --batch 64   (on a GPU: SSL_CUDA_UNVERIFIED=1
 *   until the op test has passed there; time per step after a device sync; the per-layer profile
 *   from timestamps queued in the stream, read after each step)
 * With --method NAME the step is the method's whole training step instead (the trainer's, without the
 * loader): the session the trainer builds (encoder, heads, teacher, queue) from the config's defaults
 * and --set KEY=VALUE overrides, random views made once on the device in the method's view plan,
 * the method's forward, loss and backward, the optimizer and the method's after-optimizer hook
 * (EMA, enqueue). Its FLOPs are those the GEMMs and convolutions count as they run (ssl_prof).
 *   bench_step --method simclr --model resnet50 --img 224 --batch 128 --optim lars
 *   bench_step --method mae --model vit_base --img 224 --patch 16 --batch 128 --optim adamw */
#include "cpu_model.h"
#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"
#include "framework/models/model.h"
#include "framework/optim/optim.h"
#include "framework/comm/comm.h"
#include "framework/train/session.h"
#include "io/optim_config.h"

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
                    "[--saved-activations bf16|fp32] [--method simclr|mae|... [--set KEY=VALUE]...]\n");
    exit(2);
}

/* One training step of either kind, timed by time_steps. */
typedef struct {
    ssl_ctx *c;
    ssl_optim *o;
    ssl_params *p;
    const float *buffers;
    /* encoder step: random images, loss sum(features * r) */
    ssl_model *m;
    float *xd, *dyd;
    const float *r;
    int batch, in_chans, img, host;
    /* method step */
    ssl_method *method;
    ssl_views v;
    const ssl_config *cfg;
} bench_step_ctx;

static void encoder_step(bench_step_ctx *b, int64_t it)
{
    (void)it;
    ssl_ctx *c = b->c;
    ssl_weights w = {b->p->data, b->p->grad, (float *)b->buffers};
    ssl_tensor y = b->m->forward(c, b->m, &w, ssl_tensor_4d(b->xd, b->batch, b->in_chans, b->img, b->img), 1);
    const size_t ndy = (size_t)y.shape[0] * y.shape[1];
    if (b->host) memcpy(b->dyd, b->r, ndy * sizeof(float));
    else c->be->upload(b->dyd, b->r, ndy * sizeof(float));
    b->m->backward(c, b->m, &w, ssl_tensor_2d(b->dyd, y.shape[0], y.shape[1]));
    double to = ssl_prof_begin(c);
    ssl_optim_step(b->o, c, 0.01f, 1e-4f);
    ssl_prof_end(c, SSL_PROF_OPTIM, to, 0);
}

static void method_step(bench_step_ctx *b, int64_t it)
{
    ssl_ctx *c = b->c;
    ssl_weights w = {b->p->data, b->p->grad, (float *)b->buffers};
    ssl_progress pr = {.step = it, .total_steps = 1 << 20, .steps_per_epoch = 1 << 20, .accum = 1};
    ssl_scalars mon = {0};
    b->method->vt->step(b->method, c, &w, &b->v, &pr, &mon);
    double to = ssl_prof_begin(c);
    pr.lr = b->cfg->optim.lr, pr.wd = b->cfg->optim.weight_decay;
    ssl_optim_step(b->o, c, (float)pr.lr, (float)pr.wd);
    if (b->method->vt->after_optim) b->method->vt->after_optim(b->method, c, &w, &pr);
    ssl_prof_end(c, SSL_PROF_OPTIM, to, 0);
}

/* warmup + iters steps; the mean time of the timed ones, their per-layer profile in *prof */
static double time_steps(bench_step_ctx *b, void (*one)(bench_step_ctx *, int64_t), int warmup, int iters,
                         ssl_prof *prof)
{
    double total = 0;
    for (int it = 0; it < warmup + iters; it++) {
        int timed = it >= warmup;
        b->c->prof = timed ? prof : NULL; /* on a device: stream timestamps, no wait per layer */
        double t0 = ssl_now();
        ssl_ctx_step_begin(b->c);
        ssl_params_zero_grad(b->c, b->p);
        one(b, it);
        b->c->be->sync(b->c);
        double dt = ssl_now() - t0;
        ssl_prof_flush(b->c); /* after the step's time is taken */
        if (timed) total += dt;
        printf("  step %d: %.3f s%s\n", it, dt, timed ? "" : " (warm-up)");
    }
    b->c->prof = NULL;
    return total / iters;
}

static void usage_error(const char *what, const char *err)
{
    fprintf(stderr, "bench_step: %s: %s\n", what, err);
    exit(2);
}

/* A method step's config: the defaults, bench_step's own options, then the --set overrides. */
static void method_config(ssl_config *sc, const char *method, const ssl_model_config *m, const char *backend,
                          const char *optim, int bf16, int acts_fp32, const char *const *sets, int nsets)
{
    char err[512], img[16], patch[16], width[16];
    snprintf(img, sizeof img, "%d", m->img_size);
    snprintf(patch, sizeof patch, "%d", m->patch_size);
    snprintf(width, sizeof width, "%d", m->width);
    const char *kv[][2] = {{"method.name", method},
                           {"model.arch", m->arch},
                           {"model.img_size", img},
                           {"model.patch_size", patch},
                           {"model.width", m->width > 0 ? width : NULL},
                           {"model.small_stem", m->small_stem ? "true" : "false"},
                           {"model.precision", bf16 ? "bf16" : "fp32"},
                           {"model.saved_activations", acts_fp32 ? "fp32" : NULL},
                           {"device.backend", backend},
                           {"optim.name", optim},
                           {"augment.views", !strcmp(method, "mae") ? "1" : "2"}};
    ssl_config_defaults(sc);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (kv[i][1] && ssl_config_set(sc, kv[i][0], kv[i][1], err, sizeof err)) usage_error(kv[i][0], err);
    for (int i = 0; i < nsets; i++) {
        char key[128];
        const char *eq = strchr(sets[i], '=');
        if (!eq || eq == sets[i] || (size_t)(eq - sets[i]) >= sizeof key) usage_error("--set", "KEY=VALUE");
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        if (ssl_config_set(sc, key, eq + 1, err, sizeof err)) usage_error(key, err);
    }
}

int main(int argc, char **argv)
{
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "resnet18");
    int batch = 128, iters = 5, warmup = 2, bf16 = 0, acts_fp32 = 0;
    const char *optim = "sgd", *backend = "cpu", *method = NULL;
    const char *sets[64];
    int nsets = 0;
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
        else if (!strcmp(a, "--method")) method = strcmp(v, "none") ? v : NULL, i++;
        else if (!strcmp(a, "--set") && nsets < 64) sets[nsets++] = v, i++;
        else if (!strcmp(a, "--precision") && v && (!strcmp(v, "fp32") || !strcmp(v, "bf16"))) bf16 = !strcmp(v, "bf16"), i++;
        else if (!strcmp(a, "--saved-activations") && v && (!strcmp(v, "fp32") || !strcmp(v, "bf16")))
            acts_fp32 = !strcmp(v, "fp32"), i++;
        else usage();
    }
    if (iters < 1 || batch < 1) usage();
    if (nsets && !method) usage_error("--set", "only with --method (the encoder step reads no config)");
    ssl_optim_kind kind = !strcmp(optim, "lars")    ? SSL_OPTIM_LARS
                          : !strcmp(optim, "adamw") ? SSL_OPTIM_ADAMW
                          : !strcmp(optim, "lamb")  ? SSL_OPTIM_LAMB
                                                    : SSL_OPTIM_SGD;
    if (!ssl_backend_get(backend)) {
        fprintf(stderr, "bench_step: backend %s is not available here\n", backend);
        return 2;
    }
    const int host = !strcmp(backend, "cpu");
    char err[512];
    bench_step_ctx b = {.batch = batch, .host = host};

    /* encoder step: a context, the encoder and an optimizer of its own */
    ssl_ctx c;
    ssl_params p, bufs;
    ssl_model m;
    ssl_optim o;
    float *x = NULL, *r = NULL;
    /* method step: the trainer's session */
    static ssl_config sc; /* outlives the session's method */
    static ssl_session ss;
    ssl_comm *local = NULL;
    float *views[SSL_VIEW_GROUPS_MAX] = {0};
    int64_t *index = NULL;
    double step_gflop = 0; /* encoder step: analytic (3x the forward); method step: counted */
    if (!method) {
        ssl_ctx_init(&c, backend);
        c.precision_bf16 = bf16; /* model.precision */
        c.acts_fp32 = acts_fp32; /* model.saved_activations */
        ssl_params_init(&p);
        ssl_params_init(&bufs);
        ssl_plan pl = {&p, &bufs};
        if (ssl_model_build(&m, &cfg, &pl, "", err)) usage_error("model", err);
        ssl_params_alloc(&p, c.be, 1);
        ssl_params_alloc(&bufs, c.be, 0);
        ssl_params_init_values(&p, 1);
        ssl_params_init_values(&bufs, 1);
        ssl_optim_config oc = ssl_optim_config_default(kind);
        ssl_optim_init(&o, &c, &p, &oc);
        size_t nx = (size_t)batch * cfg.in_chans * cfg.img_size * cfg.img_size, ndy = (size_t)batch * m.out_dim;
        x = ssl_malloc(nx * sizeof(float)), r = ssl_malloc(ndy * sizeof(float));
        for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        for (size_t i = 0; i < ndy; i++) r[i] = (float)((i * 40503u) % 1000) / 1e5f;
        /* device backends: the images and the output gradient live on the device (uploaded once / per step) */
        b.xd = x, b.dyd = ssl_malloc(ndy * sizeof(float));
        if (!host) {
            ssl_free(b.dyd);
            b.xd = c.be->alloc(nx * sizeof(float)), b.dyd = c.be->alloc(ndy * sizeof(float));
            c.be->upload(b.xd, x, nx * sizeof(float));
        }
        b.c = &c, b.o = &o, b.p = &p, b.buffers = bufs.data, b.m = &m, b.r = r;
        b.in_chans = cfg.in_chans, b.img = cfg.img_size;
        step_gflop = 3.0 * m.flops_per_image * batch / 1e9;
    } else {
        method_config(&sc, method, &cfg, backend, optim, bf16, acts_fp32, sets, nsets);
        if (ssl_config_validate(&sc, err, sizeof err)) usage_error("config", err);
        if (strcmp(sc.device.backend, backend) || strcmp(sc.method.name, method))
            usage_error("--set", "device.backend and method.name come from --backend and --method");
        local = ssl_comm_local();
        if (ssl_session_init(&ss, &sc, 3, local, err, sizeof err)) usage_error("session", err);
        ssl_optim_config oc = ssl_optim_config_from(&sc);
        ssl_optim_init(&o, &ss.ctx, &ss.params, &oc);
        ssl_method *mt = &ss.method;
        ssl_weights w = {ss.params.data, ss.params.grad, ss.buffers.data};
        if (mt->vt->start) mt->vt->start(mt, &ss.ctx, &w, 0);
        if (mt->vt->on_epoch) mt->vt->on_epoch(mt, &ss.ctx, 0);
        /* the views: each group (count * batch, 3, size, size), view-major, random in [-1, 1) */
        b.v.n = batch;
        b.v.ngroups = mt->views.ngroups;
        index = ssl_malloc((size_t)batch * sizeof *index);
        for (int i = 0; i < batch; i++) index[i] = i;
        b.v.index = index;
        for (int g = 0; g < mt->views.ngroups; g++) {
            const int n = mt->views.group[g].count * batch, sz = mt->views.group[g].size;
            const size_t nv = (size_t)n * 3 * sz * sz;
            float *h = ssl_malloc(nv * sizeof(float));
            for (size_t i = 0; i < nv; i++) h[i] = (float)(((i + (size_t)g) * 2654435761u) % 1000) / 500.0f - 1.0f;
            views[g] = h;
            if (!host) {
                views[g] = ss.ctx.be->alloc(nv * sizeof(float));
                ss.ctx.be->upload(views[g], h, nv * sizeof(float));
                ssl_free(h);
            }
            b.v.group[g] = ssl_tensor_4d(views[g], n, 3, sz, sz);
        }
        b.c = &ss.ctx, b.o = &o, b.p = &ss.params, b.buffers = ss.buffers.data, b.method = mt, b.cfg = &sc;
        cfg = ss.encoder.cfg;
    }
    ssl_ctx *cx = b.c;
    ssl_model *enc = method ? &ss.encoder : &m;
    const ssl_params *params = b.p;

    double peak = host ? gemm_peak(0) : 0.0;
    printf("sslrun bench_step: %s%s%s img %d%s batch %d, optim %s, %d threads\n", method ? method : "", method ? " " : "",
           cfg.arch, cfg.img_size, cfg.small_stem ? " small-stem" : "", batch, optim, omp_get_max_threads());
    if (!strncmp(cfg.arch, "vit", 3)) printf("  patch size %d\n", cfg.patch_size);
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    printf("  cpu %s\n", cpu);
    printf("  precision %s\n", ssl_precision_describe(cx));
    if (method)
        printf("  parameters %zu (encoder forward %.3f GFLOP/image); %s\n", params->count, enc->flops_per_image / 1e9,
               ss.method.vt->summary);
    else
        printf("  parameters %zu, forward %.3f GFLOP/image, step %.4f GFLOP\n", params->count,
               enc->flops_per_image / 1e9, step_gflop);
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
    double step = time_steps(&b, method ? method_step : encoder_step, warmup, iters, &prof);
    if (method) {
        double f = 0;
        for (int k = 0; k < SSL_PROF_COUNT; k++) f += prof.flops[k];
        step_gflop = f / iters / 1e9;
        printf("  counted %.4f GFLOP per step (GEMM and convolution FLOPs of forward and backward, counted by the ops)\n",
               step_gflop);
    }
    double gflops = step_gflop / step;
    if (host)
        printf("RESULT images/s %.1f  step %.3f s  achieved %.1f GFLOP/s  = %.0f%% of sgemm peak\n", batch / step, step,
               gflops, 100.0 * gflops / peak);
    else
        printf("RESULT images/s %.1f  step %.3f s  achieved %.1f GFLOP/s\n", batch / step, step, gflops);
    const double pg = 2.0 * params->numel * sizeof(float) / 1e6,
                 os = ((o.m ? 1 : 0) + (o.v ? 1 : 0)) * (double)params->numel * sizeof(float) / 1e6;
    printf("  activation arena peak %.1f MB (workspace %.1f MB, parameters + gradients %.1f MB, optimizer state %.1f MB)\n",
           cx->act.peak / 1e6, cx->ws_bytes / 1e6, pg, os);
    printf("  memory held %.1f MB (arena, workspace, parameters, gradients, optimizer state)\n",
           (cx->act.peak + cx->ws_bytes) / 1e6 + pg + os);
    printf("  time per layer kind (mean per step):\n");
    double accounted = 0;
    for (int k = 0; k < SSL_PROF_COUNT; k++) {
        if (prof.seconds[k] <= 0) continue;
        double t = prof.seconds[k] / iters;
        accounted += t;
        printf("    %-15s %8.1f ms  %5.1f%%", ssl_prof_names[k], 1e3 * t, 100 * t / step);
        if (prof.flops[k] > 0) printf("  %7.1f GFLOP/s", prof.flops[k] / prof.seconds[k] / 1e9);
        printf("\n");
    }
    printf("    %-15s %8.1f ms\n", "unaccounted", 1e3 * (step - accounted));
    ssl_optim_free(&o);
    ssl_prof_free(&prof);
    if (!method) {
        if (!host) c.be->free(b.xd), c.be->free(b.dyd);
        else ssl_free(b.dyd);
        ssl_free(x);
        ssl_free(r);
        ssl_model_free(&m);
        ssl_params_free(&p);
        ssl_params_free(&bufs);
        ssl_ctx_free(&c);
    } else {
        for (int g = 0; g < b.v.ngroups; g++) {
            if (host) ssl_free(views[g]);
            else ss.ctx.be->free(views[g]);
        }
        ssl_free(index);
        ssl_session_free(&ss);
        ssl_comm_free(local);
    }
    return 0;
}
