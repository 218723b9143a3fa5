/* MAE's building blocks against PyTorch (fixture from tests/ref/make_fixtures_mae.py, written from the
 * paper and the official models_mae.py, computed in float64): the fixed sin-cos tables of encoder and
 * decoder, the masking of the stored noise (ids_restore and mask, exactly), the encoder's tokens on
 * the kept patches, the decoder's prediction, the pixel targets (MAE's patch order), the loss and
 * d(pred) with and without norm_pix, and after the backward of the norm_pix loss every parameter
 * gradient of encoder and decoder (the frozen tables' exactly zero). */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/mae_loss.h"
#include "framework/layers/mae_mask.h"
#include "framework/models/mae_decoder.h"

#include <math.h>
#include <string.h>

static ssl_ctx C;
static const float *get(const ssl_fixture *f, const char *name, size_t want)
{
    size_t n;
    const float *v = ssl_fixture_get(f, name, &n);
    SSL_ASSERTF(n == want, "fixture %s: %zu values, expected %zu", name, n, want);
    return v;
}

typedef struct {
    int N, C, img, p, L, F, keep;
    ssl_model enc;
    ssl_mae_decoder dec;
    ssl_params p_, b_;
} mae;

/* Encoder (our ViT, sin-cos positions, no head) and decoder planned into one parameter set. */
static void build(mae *m, const ssl_fixture *f)
{
    const float *s = get(f, "sizes", 10);
    m->N = (int)s[0], m->C = (int)s[1], m->img = (int)s[2], m->p = (int)s[3];
    m->L = (m->img / m->p) * (m->img / m->p), m->F = m->p * m->p * m->C;
    ssl_params_init(&m->p_);
    ssl_params_init(&m->b_);
    ssl_plan pl = {&m->p_, &m->b_};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.in_chans = m->C, cfg.img_size = m->img, cfg.patch_size = m->p, cfg.sincos_pos = 1;
    cfg.vit_dim = (int)s[4], cfg.vit_depth = (int)s[5], cfg.vit_heads = (int)s[6];
    char err[256];
    SSL_ASSERTF(ssl_model_build(&m->enc, &cfg, &pl, "", err) == 0, "%s", err);
    ssl_mae_decoder_config dc;
    ssl_mae_decoder_config_default(&dc, &m->enc);
    SSL_EXPECT(dc.dim == 512 && dc.depth == 8 && dc.heads == 16, "decoder defaults %d/%d/%d, MAE's 512/8/16",
               dc.dim, dc.depth, dc.heads);
    dc.dim = (int)s[7], dc.depth = (int)s[8], dc.heads = (int)s[9];
    SSL_ASSERTF(ssl_mae_decoder_init(&m->dec, &dc, &pl, "", err) == 0, "%s", err);
    ssl_params_alloc(&m->p_, C.be, 1);
    ssl_params_alloc(&m->b_, C.be, 0);
    ssl_params_init_values(&m->p_, 1);
}

/* Our sin-cos tables (as planned) against MAE's, then every tensor from the fixture. */
static void load_params(mae *m, const ssl_fixture *f)
{
    const char *tables[2] = {"encoder.pos_embedding", "decoder_pos_embed"};
    for (int i = 0; i < 2; i++) {
        char key[160];
        const int s = ssl_params_find(&m->p_, tables[i]);
        SSL_ASSERTF(s >= 0, "no segment %s", tables[i]);
        SSL_EXPECT(m->p_.seg[s].flags & SSL_SEG_FROZEN, "%s is not frozen", tables[i]);
        snprintf(key, sizeof key, "param/%s", tables[i]);
        ssl_test_close_rel(tables[i], m->p_.data + m->p_.seg[s].off, get(f, key, m->p_.seg[s].n), m->p_.seg[s].n, 1e-6);
    }
    SSL_ASSERTF(ssl_fixture_load_segments(f, &m->p_, "param"), "parameters missing from the fixture");
}

/* Masks from the stored noise, exactly torch's argsorts. */
static void check_mask(mae *m, const ssl_fixture *f, int32_t *ids_keep, int32_t *ids_restore, float *mask)
{
    const size_t NL = (size_t)m->N * m->L;
    m->keep = (int)ssl_mae_keep(m->L, get(f, "mask_ratio", 1)[0]);
    SSL_EXPECT(m->keep == (int)get(f, "keep", 1)[0], "keep %d, torch %g", m->keep, get(f, "keep", 1)[0]);
    ssl_mae_mask(m->N, m->L, m->keep, get(f, "noise", NL), ids_keep, ids_restore, mask);
    const float *want_r = get(f, "ids_restore", NL), *want_m = get(f, "mask", NL);
    size_t bad = 0;
    for (size_t i = 0; i < NL; i++) bad += (float)ids_restore[i] != want_r[i] || mask[i] != want_m[i];
    printf("  %-50s %zu of %zu differ\n", "ids_restore, mask", bad, NL);
    SSL_EXPECT(bad == 0, "ids_restore / mask: %zu of %zu entries differ from torch", bad, NL);
}

/* Every trainable segment's gradient against torch's; the frozen tables' stay zero. */
static void check_grads(const mae *m, const ssl_fixture *f)
{
    for (int i = 0; i < m->p_.nseg; i++) {
        const ssl_segment *s = &m->p_.seg[i];
        const float *g = m->p_.grad + s->off;
        char key[160], what[160];
        if (s->flags & SSL_SEG_FROZEN) {
            size_t nz = 0;
            for (size_t j = 0; j < s->n; j++) nz += g[j] != 0.0f;
            SSL_EXPECT(nz == 0, "%s: frozen, but %zu non-zero gradients", s->name, nz);
            continue;
        }
        snprintf(key, sizeof key, "grad/%s", s->name);
        snprintf(what, sizeof what, "d %s", s->name);
        ssl_test_close_rel(what, g, get(f, key, s->n), s->n, 1e-4);
    }
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("mae_step.bin");
    if (!f) return 1;
    ssl_ctx_init(&C, "cpu");
    mae m;
    build(&m, f);
    printf("mae vs torch: %d images %dx%dx%d, patch %d, L %d\n", m.N, m.C, m.img, m.img, m.p, m.L);
    load_params(&m, f);
    int32_t *ids_keep = ssl_malloc(sizeof(int32_t) * (size_t)(m.N * m.L));
    int32_t *ids_restore = ssl_malloc(sizeof(int32_t) * (size_t)(m.N * m.L));
    float *mask = ssl_malloc(sizeof(float) * (size_t)(m.N * m.L));
    check_mask(&m, f, ids_keep, ids_restore, mask);

    ssl_ctx_step_begin(&C);
    ssl_weights w = {m.p_.data, m.p_.grad, m.b_.data};
    const size_t npred = (size_t)m.N * m.L * m.F;
    ssl_tensor imgs = ssl_tensor_4d((float *)get(f, "imgs", (size_t)m.N * m.C * m.img * m.img), m.N, m.C, m.img, m.img);
    ssl_tensor lat = ssl_vit_forward_tokens(&C, &m.enc, &w, imgs, ids_keep, m.keep, 1);
    SSL_ASSERT(lat.ndim == 3 && lat.shape[0] == m.N && lat.shape[1] == 1 + m.keep);
    ssl_test_close_rel("encoder tokens (N, 1 + keep, D)", lat.data, get(f, "latent", ssl_tensor_numel(lat)), ssl_tensor_numel(lat),
              1e-5);
    ssl_tensor pred = ssl_mae_decoder_forward(&C, &m.dec, &w, lat, ids_restore);
    SSL_ASSERT(ssl_tensor_numel(pred) == npred);
    ssl_test_close_rel("decoder pred (N, L, p*p*C)", pred.data, get(f, "pred", npred), npred, 1e-5);
    ssl_test_close_rel("patchify (MAE's order)", ssl_mae_patchify(&C, imgs, m.p).data, get(f, "target", npred), npred, 0);

    float *dpred = ssl_arena_floats(&C.act, npred);
    const char *tags[2] = {"raw", "norm"};
    for (int norm_pix = 0; norm_pix < 2; norm_pix++) { /* norm last: its dpred drives the backward */
        char key[64];
        const double loss = ssl_mae_loss(&C, imgs, m.p, pred, mask, norm_pix, dpred);
        snprintf(key, sizeof key, "%s/loss", tags[norm_pix]);
        ssl_test_close_scalar(key, loss, get(f, key, 1)[0], 2e-6);
        snprintf(key, sizeof key, "%s/dpred", tags[norm_pix]);
        ssl_test_close_rel(key, dpred, get(f, key, npred), npred, 1e-5);
    }
    ssl_params_zero_grad(&C, &m.p_);
    ssl_tensor dlat = ssl_mae_decoder_backward(&C, &m.dec, &w, ssl_tensor_3d(dpred, m.N, m.L, m.F));
    SSL_ASSERT(dlat.ndim == 3 && dlat.shape[1] == 1 + m.keep);
    ssl_vit_backward_tokens(&C, &m.enc, &w, dlat);
    check_grads(&m, f);
    printf("largest relative error: %.3g\n", ssl_test_worst_rel);

    ssl_free(ids_keep), ssl_free(ids_restore), ssl_free(mask);
    ssl_mae_decoder_free(&m.dec);
    ssl_model_free(&m.enc);
    ssl_params_free(&m.p_);
    ssl_params_free(&m.b_);
    ssl_ctx_free(&C);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
