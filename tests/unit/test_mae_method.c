/* MAE the method (methods/mae.c) wires its tested building blocks (test_ref_mae: masking, the ViT
 * over kept tokens, the decoder, the loss, each against PyTorch) as models_mae.py does:
 *   - plan: the decoder right after the encoder, under models_mae.py's names;
 *   - step: the loss and every gradient equal the blocks composed by hand (noise of sample i from
 *     stream index[i] of ssl_mae_step_key(seed, step); mask; encoder on the kept patches; decoder;
 *     norm-pix loss on the removed patches; decoder then encoder backward), bit for bit; the
 *     monitors equal their definitions;
 *   - data parallel in one process: the batch split in two "ranks" (same global indices) gives
 *     losses and gradients whose mean is the whole batch's; another step draws other masks;
 *   - views: one group of one view; the pipeline is crop + flip only;
 *   - configure refuses a ResNet, 2 views, a bad decoder geometry and a ratio that keeps nothing. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/mae_loss.h"
#include "framework/layers/mae_mask.h"
#include "framework/models/mae_decoder.h"
#include "framework/train/views.h"
#include "methods/mae.h"

#include <math.h>
#include <string.h>

enum { N = 6, IMG = 16, P = 4, L = 16, F = P * P };
static const int64_t index_of[N] = {7, 3, 42, 1000, 5, 9}; /* global dataset indices, not 0..N-1 */

static void tiny_config(ssl_config *cfg)
{
    ssl_config_defaults(cfg);
    snprintf(cfg->method.name, sizeof cfg->method.name, "mae");
    snprintf(cfg->model.arch, sizeof cfg->model.arch, "vit_tiny");
    cfg->model.img_size = IMG, cfg->model.patch_size = P, cfg->model.sincos_pos = 1;
    cfg->model.vit_dim = 16, cfg->model.vit_depth = 2, cfg->model.vit_heads = 2;
    cfg->augment.views = 1;
    cfg->mae.decoder_dim = 16, cfg->mae.decoder_depth = 1, cfg->mae.decoder_heads = 2;
    cfg->run.seed = 5;
}

static void model_config(const ssl_config *cfg, ssl_model_config *mc)
{
    ssl_model_config_default(mc, cfg->model.arch);
    mc->in_chans = 1, mc->img_size = cfg->model.img_size, mc->patch_size = cfg->model.patch_size;
    mc->sincos_pos = cfg->model.sincos_pos;
    mc->vit_dim = cfg->model.vit_dim, mc->vit_depth = cfg->model.vit_depth, mc->vit_heads = cfg->model.vit_heads;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The method's step on images x[i0, i0 + n) of step `step`: loss, gradients into g (zeroed first). */
static double method_step(ssl_method *m, ssl_ctx *c, ssl_params *p, const float *x, int i0, int n, int64_t step,
                          ssl_scalars *mon)
{
    ssl_params_zero_grad(c, p);
    ssl_ctx_step_begin(c);
    ssl_weights w = {p->data, p->grad, NULL};
    ssl_views v = {.n = n, .ngroups = 1, .group = {ssl_tensor_4d((float *)x + (size_t)i0 * IMG * IMG, n, 1, IMG, IMG)},
                   .index = index_of + i0};
    ssl_progress pr = {.step = step, .total_steps = 10, .steps_per_epoch = 10, .accum = 1};
    memset(mon, 0, sizeof *mon);
    return m->vt->step(m, c, &w, &v, &pr, mon);
}

static double monitor(const ssl_scalars *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return s->v[i];
    SSL_EXPECT(0, "no monitor '%s'", name);
    return NAN;
}

static void check_configure_errors(void)
{
    static const struct {
        const char *what, *want;
    } cases[] = {{"resnet", "mae needs a ViT encoder"}, {"views", "mae takes 1 view per image"},
                 {"decoder", "mae.decoder_dim 18 must be a multiple"}, {"ratio", "keeps 0 of the 16 patches"}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        ssl_config *cfg = ssl_calloc(1, sizeof *cfg);
        tiny_config(cfg);
        if (k == 0) snprintf(cfg->model.arch, sizeof cfg->model.arch, "resnet18");
        if (k == 1) cfg->augment.views = 2;
        if (k == 2) cfg->mae.decoder_dim = 18;
        if (k == 3) cfg->mae.mask_ratio = 0.97;
        ssl_view_plan v;
        char err[512] = "";
        SSL_EXPECT(ssl_method_configure(cfg, &v, err, sizeof err) == -1 && strstr(err, cases[k].want),
                   "configure (%s): expected '%s', got '%s'", cases[k].what, cases[k].want, err);
        ssl_free(cfg);
    }
}

int main(void)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    static ssl_config cfg; /* outlives the method */
    tiny_config(&cfg);
    check_configure_errors();

    /* the session's plan: encoder, then the method's decoder */
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model_config mc;
    model_config(&cfg, &mc);
    ssl_model enc;
    char err[512];
    SSL_ASSERTF(ssl_model_build(&enc, &mc, &pl, "", err) == 0, "%s", err);
    const int enc_segs = p.nseg;
    ssl_method m;
    SSL_ASSERTF(ssl_method_init(&m, &cfg, &enc, &pl, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(m.views.ngroups == 1 && m.views.group[0].count == 1 && m.views.group[0].size == IMG,
               "mae declares one group of one view at model.img_size");
    SSL_EXPECT(!strcmp(p.seg[enc_segs].name, "decoder_embed.weight") && ssl_params_find(&p, "mask_token") >= 0 &&
                   ssl_params_find(&p, "decoder_pos_embed") >= 0 &&
                   ssl_params_find(&p, "decoder_blocks.0.ln_1.weight") >= 0 &&
                   ssl_params_find(&p, "decoder_norm.weight") >= 0 && !strcmp(p.seg[p.nseg - 1].name, "decoder_pred.bias"),
               "decoder after the encoder under models_mae.py's names (first %s, last %s)", p.seg[enc_segs].name,
               p.seg[p.nseg - 1].name);
    ssl_params_alloc(&p, c.be, 1);
    ssl_params_alloc(&b, c.be, 0);
    ssl_params_init_values(&p, 11);

    /* the same layout planned by hand from the blocks */
    ssl_params hp, hb;
    ssl_params_init(&hp);
    ssl_params_init(&hb);
    ssl_plan hpl = {&hp, &hb};
    ssl_model henc;
    SSL_ASSERTF(ssl_model_build(&henc, &mc, &hpl, "", err) == 0, "%s", err);
    ssl_mae_decoder dec;
    ssl_mae_decoder_config dc;
    ssl_mae_decoder_config_default(&dc, &henc);
    dc.dim = 16, dc.depth = 1, dc.heads = 2;
    SSL_ASSERTF(ssl_mae_decoder_init(&dec, &dc, &hpl, "", err) == 0, "%s", err);
    SSL_ASSERT(hp.nseg == p.nseg && hp.numel == p.numel);
    for (int i = 0; i < p.nseg; i++)
        SSL_EXPECT(!strcmp(hp.seg[i].name, p.seg[i].name) && hp.seg[i].off == p.seg[i].off, "segment %d: %s", i,
                   p.seg[i].name);

    float x[N * IMG * IMG];
    ssl_test_uniform(x, sizeof x / sizeof *x, 3, -1.5f, 1.5f);
    ssl_scalars mon;
    const double loss = method_step(&m, &c, &p, x, 0, N, 3, &mon);
    float *g = ssl_malloc(p.numel * sizeof(float));
    memcpy(g, p.grad, p.numel * sizeof(float));

    /* by hand */
    const int64_t keep = ssl_mae_keep(L, cfg.mae.mask_ratio);
    SSL_EXPECT(keep == 4, "keep %lld of 16 at 0.75", (long long)keep);
    float noise[N * L], mask[N * L], shown[N * L];
    int32_t ids_keep[N * L], ids_restore[N * L];
    const uint64_t key = ssl_mae_step_key((uint64_t)cfg.run.seed, 3);
    for (int i = 0; i < N; i++) ssl_mae_noise(key, index_of[i], 1, L, noise + i * L);
    ssl_mae_mask(N, L, keep, noise, ids_keep, ids_restore, mask);
    ssl_params_zero_grad(&c, &p);
    ssl_ctx_step_begin(&c);
    ssl_weights w = {p.data, p.grad, NULL};
    ssl_tensor imgs = ssl_tensor_4d(x, N, 1, IMG, IMG);
    ssl_tensor lat = ssl_vit_forward_tokens(&c, &henc, &w, imgs, ids_keep, (int)keep, 1);
    ssl_tensor pred = ssl_mae_decoder_forward(&c, &dec, &w, lat, ids_restore);
    float *dpred = ssl_arena_floats(&c.act, (size_t)N * L * F);
    const double hloss = ssl_mae_loss(&c, imgs, P, pred, mask, 1, dpred);
    for (int i = 0; i < N * L; i++) shown[i] = 1.0f - mask[i];
    const double hvis = ssl_mae_loss(&c, imgs, P, pred, shown, 1, NULL);
    const size_t np = (size_t)N * L * F;
    double s = 0, ss = 0;
    for (size_t i = 0; i < np; i++) s += pred.data[i], ss += (double)pred.data[i] * pred.data[i];
    const double hstd = sqrt(ss / np - (s / np) * (s / np));
    ssl_tensor dlat = ssl_mae_decoder_backward(&c, &dec, &w, ssl_tensor_3d(dpred, N, L, F));
    ssl_vit_backward_tokens(&c, &henc, &w, dlat);
    const double gd = max_diff(g, p.grad, p.numel), gmax = ssl_test_max_abs(p.grad, p.numel);
    printf("step: loss %.9f, by hand %.9f; gradients max diff %.3g (max |g| %.3g)\n", loss, hloss, gd, gmax);
    SSL_EXPECT(loss == hloss, "loss %.9g, the blocks composed by hand %.9g", loss, hloss);
    SSL_EXPECT(gd == 0.0 && gmax > 0, "gradients differ from the hand composition by %.3g", gd);
    for (int i = 0; i < p.nseg; i++) { /* every trainable tensor learns, decoder and encoder alike */
        if (p.seg[i].flags & SSL_SEG_FROZEN) continue;
        SSL_EXPECT(ssl_test_max_abs(g + p.seg[i].off, p.seg[i].n) > 0, "no gradient for %s", p.seg[i].name);
    }
    const double vis = monitor(&mon, "visible_loss"), pstd = monitor(&mon, "pred_std");
    printf("monitors: visible_loss %.6f (by hand %.6f), pred_std %.6f (by hand %.6f)\n", vis, hvis, pstd, hstd);
    SSL_EXPECT(fabs(vis - hvis) <= 1e-12 * fabs(hvis), "visible_loss %.9g, by hand %.9g", vis, hvis);
    SSL_EXPECT(fabs(pstd - hstd) <= 1e-6 * hstd, "pred_std %.9g, by hand %.9g", pstd, hstd);

    /* two "ranks" of 3: the mean of their losses and gradients is the whole batch's */
    float *g2 = ssl_calloc(p.numel, sizeof(float));
    double halves = 0;
    for (int r = 0; r < 2; r++) {
        halves += method_step(&m, &c, &p, x, 3 * r, 3, 3, &mon) / 2;
        for (size_t i = 0; i < p.numel; i++) g2[i] += p.grad[i] / 2;
    }
    const double sd = max_diff(g2, g, p.numel);
    printf("split over 2 ranks: loss %.9f (whole batch %.9f), gradients max diff %.3g\n", halves, loss, sd);
    SSL_EXPECT(fabs(halves - loss) <= 1e-6 * loss, "per-rank losses average to %.9g, the batch's is %.9g", halves,
               loss);
    SSL_EXPECT(sd <= 1e-5 * gmax, "per-rank gradients average to the batch's within %.3g (max |g| %.3g)", sd, gmax);
    const double other = method_step(&m, &c, &p, x, 0, N, 4, &mon);
    SSL_EXPECT(fabs(other - loss) > 1e-6 * loss, "step 4 drew the masks of step 3 (loss %.9g both)", loss);

    /* the views' pipeline: RandomResizedCrop + flip, everything else off */
    cfg.augment.jitter_p = 0.8, cfg.augment.grayscale_p = 0.2, cfg.augment.blur_p = 0.5, cfg.augment.solarize_p = 0.2;
    cfg.augment.crop_scale.v[0] = 0.2, cfg.augment.flip_p = 0.5;
    ssl_view_pipes vp;
    SSL_ASSERTF(ssl_view_pipes_init(&vp, m.vt, &m.views, &cfg, 1, err, sizeof err) == 0, "%s", err);
    const ssl_augment_config *a = &vp.pipe[0];
    SSL_EXPECT(vp.nviews == 1 && a->jitter_p == 0 && a->grayscale_p == 0 && a->blur_p == 0 && a->solarize_p == 0 &&
                   a->crop_scale[0] == 0.2f && a->flip_p == 0.5f && a->out_size == IMG,
               "mae's pipeline: crop and flip only (jitter %g gray %g blur %g solarize %g crop %g flip %g)",
               a->jitter_p, a->grayscale_p, a->blur_p, a->solarize_p, a->crop_scale[0], a->flip_p);

    ssl_free(g), ssl_free(g2);
    ssl_mae_decoder_free(&dec);
    ssl_model_free(&henc);
    ssl_params_free(&hp), ssl_params_free(&hb);
    ssl_method_free(&m);
    ssl_model_free(&enc);
    ssl_params_free(&p), ssl_params_free(&b);
    ssl_ctx_free(&c);
    return ssl_test_exit();
}
