/* The methods with an EMA teacher against PyTorch (fixtures from tests/ref/make_fixtures_byol.py,
 * make_fixtures_moco_v3.py and make_fixtures_moco_v2.py, written from the papers and official code): one
 * step's loss and every student gradient, the student's and the teacher's BN running statistics after
 * the step's forwards, the teacher after one SGD step and the EMA at the method's scheduled momentum,
 * and MoCo v2's queue and pointer after the enqueue. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/optim/optim.h"
#include "methods/method.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Configure the method under test from its fixture; returns the progress of the fixture's step. */
typedef ssl_progress (*setup_fn)(ssl_config *cfg, const ssl_fixture *f);

static ssl_progress setup_byol(ssl_config *cfg, const ssl_fixture *f)
{
    cfg->byol.proj_hidden = 16, cfg->byol.proj_dim = 8, cfg->byol.pred_hidden = 12;
    cfg->byol.momentum = ssl_fixture_get(f, "tau", NULL)[0];
    /* step 0: tau = tau_base */
    return (ssl_progress){.step = 0, .total_steps = 10, .steps_per_epoch = 5, .accum = 1};
}

static ssl_progress setup_moco_v2(ssl_config *cfg, const ssl_fixture *f)
{
    size_t n;
    ssl_fixture_get(f, "queue", &n);
    cfg->moco_v2.mlp_hidden = 16, cfg->moco_v2.dim = 8, cfg->moco_v2.queue_size = (int)(n / 8);
    cfg->moco_v2.temperature = ssl_fixture_get(f, "T", NULL)[0];
    cfg->moco_v2.momentum = ssl_fixture_get(f, "m", NULL)[0];
    cfg->data.batch_size = 6;
    return (ssl_progress){.step = 0, .total_steps = 10, .steps_per_epoch = 5, .accum = 1};
}

static ssl_progress setup_moco_v3(ssl_config *cfg, const ssl_fixture *f)
{
    cfg->moco_v3.mlp_dim = 16, cfg->moco_v3.dim = 8;
    cfg->moco_v3.temperature = ssl_fixture_get(f, "T", NULL)[0];
    cfg->moco_v3.momentum = ssl_fixture_get(f, "m0", NULL)[0];
    cfg->schedule.epochs = (int)ssl_fixture_get(f, "epochs", NULL)[0];
    int64_t spe = (int64_t)ssl_fixture_get(f, "steps_per_epoch", NULL)[0];
    return (ssl_progress){.step = 0, .total_steps = spe * cfg->schedule.epochs, .steps_per_epoch = spe, .accum = 1};
}

static void run(const char *method, const char *fixture, setup_fn setup, int proj_tensors, int proj_buffers)
{
    ssl_fixture *f = ssl_fixture_load(fixture);
    if (!f) {
        ssl_test_failures++;
        return;
    }
    ssl_ctx c;
    ssl_params p, b;
    ssl_plan pl = ssl_test_bench_init(&c, &p, &b);
    ssl_model_config mc;
    ssl_model_config_default(&mc, "resnet18");
    mc.width = 4, mc.in_chans = 1, mc.small_stem = 1, mc.img_size = 12;
    ssl_model enc;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&enc, &mc, &pl, "", err) == 0, "%s", err);
    const int enc_seg = p.nseg, enc_bseg = b.nseg;
    static ssl_config cfg; /* outlives the method */
    ssl_config_defaults(&cfg);
    snprintf(cfg.method.name, sizeof cfg.method.name, "%s", method);
    cfg.model.img_size = 12;
    ssl_progress pr = setup(&cfg, f);
    ssl_method m;
    SSL_ASSERTF(ssl_method_init(&m, &cfg, &enc, &pl, err, sizeof err) == 0, "%s", err);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    SSL_ASSERT(m.vt->alloc(&m, &c, &p, &b, err, sizeof err) == 0);
    ssl_fixture_copy_segments(f, "param/", &p, p.data, p.nseg);
    ssl_fixture_copy_segments(f, "buffer/", &b, b.data, b.nseg);
    ssl_weights w = {p.data, p.grad, b.data};
    m.vt->start(&m, &c, &w, 0);
    /* a queue (MoCo v2) starts from the fixture's contents and pointer */
    ssl_ckpt st = {0};
    m.vt->state(&m, &st);
    for (int i = 0; i < st.narrays; i++) {
        size_t n;
        if (!strcmp(st.arrays[i].name, "queue/keys")) {
            const float *qv = ssl_fixture_get(f, "queue", &n);
            SSL_ASSERT(n == st.arrays[i].n);
            memcpy(st.arrays[i].data, qv, n * sizeof(float));
        } else if (!strcmp(st.arrays[i].name, "queue/ptr")) {
            *(int64_t *)st.arrays[i].data = (int64_t)ssl_fixture_get(f, "ptr", NULL)[0];
        }
    }

    size_t nx;
    const float *x = ssl_fixture_get(f, "x", &nx);
    float *views = malloc(nx * sizeof(float));
    memcpy(views, x, nx * sizeof(float));
    ssl_views v = {.n = 6, .ngroups = 1, .group = {ssl_tensor_4d(views, 12, 1, 12, 12)}};
    ssl_scalars mon = {0};
    ssl_ctx_step_begin(&c);
    double loss = m.vt->step(&m, &c, &w, &v, &pr, &mon);
    double want = ssl_fixture_get(f, "loss", NULL)[0];
    SSL_EXPECT(fabs(loss - want) <= 1e-5 * fabs(want), "%s: loss %.7f, PyTorch %.7f", method, loss, want);
    ssl_fixture_compare_segments(f, "grad/", &p, p.grad, p.nseg, 1e-3);
    ssl_fixture_compare_segments(f, "buffer_after/", &b, b.data, b.nseg, 1e-4);
    /* the target: encoder + projector, whose BN statistics its own two forwards moved */
    ssl_ckpt ck = {0};
    m.vt->state(&m, &ck);
    SSL_ASSERT(ck.narrays >= 2 && !strcmp(ck.arrays[0].name, "teacher/params"));
    for (int i = 2; i < ck.narrays; i++) {
        if (!strcmp(ck.arrays[i].name, "queue/keys")) {
            const float *want_q = ssl_fixture_get(f, "queue_after", NULL);
            ssl_test_close("queue after the enqueue", ck.arrays[i].data, want_q, ck.arrays[i].n, 1e-6, 1e-5);
        } else if (!strcmp(ck.arrays[i].name, "queue/ptr")) {
            int64_t ptr = *(const int64_t *)ck.arrays[i].data;
            SSL_EXPECT(ptr == (int64_t)ssl_fixture_get(f, "ptr_after", NULL)[0], "queue pointer %lld", (long long)ptr);
        }
    }
    const float *tp = ck.arrays[0].data, *tb = ck.arrays[1].data;
    int tseg = 0, tbseg = 0;
    while (tseg < p.nseg && p.seg[tseg].off < ck.arrays[0].n) tseg++;
    while (tbseg < b.nseg && b.seg[tbseg].off < ck.arrays[1].n) tbseg++;
    SSL_EXPECT(tseg == enc_seg + proj_tensors && tbseg == enc_bseg + proj_buffers,
               "%s: target covers %d/%d tensors, %d/%d buffers", method, tseg, enc_seg + proj_tensors, tbseg,
               enc_bseg + proj_buffers);
    ssl_fixture_compare_segments(f, "target_buffer_after/", &b, tb, tbseg, 1e-4);

    /* one plain SGD step, then the EMA */
    ssl_optim_config oc = ssl_optim_config_default(SSL_OPTIM_SGD);
    oc.momentum = 0;
    ssl_optim opt;
    ssl_optim_init(&opt, &c, &p, &oc);
    ssl_optim_step(&opt, &c, ssl_fixture_get(f, "lr", NULL)[0], 0.0f);
    m.vt->after_optim(&m, &c, &w, &pr);
    ssl_fixture_compare_segments(f, "target_after/", &p, tp, tseg, 1e-5);
    printf("%s step: loss %.6f (PyTorch %.6f), %d gradients, %d teacher tensors compared; monitors", method, loss,
           want, p.nseg, tseg);
    for (int i = 0; i < mon.n; i++) printf(" %s %.4f", mon.name[i], mon.v[i]);
    printf("\n");
    if (!strcmp(method, "byol"))
        SSL_EXPECT(mon.n == 2 && mon.v[1] > -1 && mon.v[1] < 1 && fabs((2 - 2 * mon.v[1]) * 2 - loss) < 1e-5,
                   "online_target_cos is 1 - loss / 4");
    else
        SSL_EXPECT(mon.n == 3 && !strcmp(mon.name[1], "pos_cos") && mon.v[1] > mon.v[2], "moco monitors");
    ssl_optim_free(&opt);
    free(views);
    ssl_method_free(&m);
    ssl_model_free(&enc);
    ssl_test_bench_free(&c, &p, &b);
    ssl_fixture_free(f);
}

int main(void)
{
    /* the teacher covers the encoder and the projector: its tensors and BN buffers */
    run("byol", "byol_step.bin", setup_byol, 5, 2);
    run("moco_v3", "moco_v3_step.bin", setup_moco_v3, 4, 4);
    run("moco_v2", "moco_v2_step.bin", setup_moco_v2, 4, 0); /* no predictor: the teacher is everything */
    return ssl_test_exit();
}
