/* MAE (He et al. 2022; REFERENCE §5, the official models_mae.py): masked autoencoders. Each image
 * loses mae.mask_ratio of its patches at random; the ViT encoder sees only the rest (with their
 * positions and the CLS token), the decoder (planned after the encoder in the same flat buffer,
 * under models_mae.py's names decoder_embed, mask_token, decoder_pos_embed, decoder_blocks.<i>,
 * decoder_norm, decoder_pred) fills the removed positions with the mask token and predicts every
 * patch's pixels; the loss is the mean squared error over the removed patches only, against each
 * patch's own normalised pixels when mae.norm_pix_loss (framework/layers/mae_loss.h).
 *   views: one group of ONE view at model.img_size; augment.views must be 1 (an error otherwise,
 *          as BYOL and DINO refuse a count they do not take), so no recipe silently pays for views
 *          nobody reads;
 *   augmentation: RandomResizedCrop (augment.crop_scale; the recipes set MAE's [0.2, 1]) and the
 *          horizontal flip only: the view_pipeline hook turns colour jitter, grayscale, blur and
 *          solarize off. Our crop resamples bilinearly (io/augment.h has no bicubic), MAE's bicubically;
 *   masks: noise keyed by (run.seed, optimizer step, global dataset index of the sample) — the
 *          trainer hands each image's index in ssl_views.index — so np=1/2/4 and any micro-batching
 *          draw the same masks for the same samples;
 *   data parallel: a rank's loss is the mean over the removed patches of ITS samples (the official
 *          per-GPU forward_loss); every sample removes the same number of patches, so the mean of
 *          the ranks' losses and the trainer's gradient average are exactly the global batch's;
 *   state: none beyond the parameters (no teacher, queue or centre).
 * The encoder is the session's ViT as configured: the MAE recipes set model.sincos_pos (MAE's fixed
 * 2-D sin-cos positions); its init is our ViT's (torchvision's), not models_mae.py's xavier. */
#include "methods/mae.h"

#include "framework/core/check.h"
#include "framework/core/rng.h"
#include "framework/layers/mae_loss.h"
#include "framework/layers/mae_mask.h"
#include "framework/models/mae_decoder.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    ssl_mae_decoder dec;
    int p;                      /* patch size */
    int64_t L, keep;            /* patches per image, visible ones */
    int cap;                    /* images the host buffers below hold */
    float *noise, *mask, *shown; /* (cap, L): noise, 1 = removed, 1 = kept (the visible-loss monitor) */
    int32_t *ids_keep, *ids_restore;
} mae;

uint64_t ssl_mae_step_key(uint64_t seed, int64_t step)
{
    return ssl_rng_hash(ssl_rng_hash(seed, 0x6d6165u /* "mae" */), (uint64_t)step);
}

static int64_t patches_of(const ssl_config *cfg)
{
    const int64_t g = cfg->model.img_size / cfg->model.patch_size;
    return g * g;
}

static int mae_configure(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    const ssl_config_mae *o = &cfg->mae;
    if (strncmp(cfg->model.arch, "vit_", 4) != 0) {
        snprintf(err, errlen, "mae needs a ViT encoder (model.arch: vit_tiny, vit_small or vit_base); model.arch is %s",
                 cfg->model.arch);
        return -1;
    }
    if (cfg->augment.views != 1) {
        snprintf(err, errlen, "mae takes 1 view per image (augment.views: 1); augment.views is %d", cfg->augment.views);
        return -1;
    }
    if (o->decoder_dim % o->decoder_heads || o->decoder_dim % 4) {
        snprintf(err, errlen, "mae.decoder_dim %d must be a multiple of mae.decoder_heads %d and of 4 (sin-cos positions)",
                 o->decoder_dim, o->decoder_heads);
        return -1;
    }
    const int64_t L = patches_of(cfg), keep = ssl_mae_keep(L, o->mask_ratio);
    if (keep < 1 || keep >= L) {
        snprintf(err, errlen, "mae.mask_ratio %g keeps %lld of the %lld patches; at least one must be kept and one "
                 "removed", o->mask_ratio, (long long)keep, (long long)L);
        return -1;
    }
    v->ngroups = 1;
    v->group[0] = (ssl_view_group){1, cfg->model.img_size};
    return 0;
}

/* MAE's augmentation: the random resized crop and the flip of the augment section, nothing else. */
static void mae_view_pipeline(const ssl_config *cfg, int group, int view, ssl_augment_config *a)
{
    (void)cfg, (void)group, (void)view;
    a->jitter_p = a->grayscale_p = a->blur_p = a->solarize_p = 0.0f;
}

static int mae_plan(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    mae *a = ssl_calloc(1, sizeof *a);
    m->impl = a;
    ssl_mae_decoder_config dc;
    ssl_mae_decoder_config_default(&dc, m->encoder);
    dc.dim = cfg->mae.decoder_dim, dc.depth = cfg->mae.decoder_depth, dc.heads = cfg->mae.decoder_heads;
    char e[256];
    if (ssl_mae_decoder_init(&a->dec, &dc, pl, "", e)) {
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    a->p = m->encoder->cfg.patch_size;
    a->L = a->dec.L; /* the encoder's planned grid */
    a->keep = ssl_mae_keep(a->L, cfg->mae.mask_ratio);
    return 0;
}

int ssl_mae_patch_size(const ssl_method *m) { return ((const mae *)m->impl)->p; }
int64_t ssl_mae_patches(const ssl_method *m) { return ((const mae *)m->impl)->L; }

/* Host bookkeeping for n images, grown on demand (the batch is fixed, so once per run). */
static void reserve(mae *a, int n)
{
    if (n <= a->cap) return;
    ssl_free(a->noise), ssl_free(a->mask), ssl_free(a->shown), ssl_free(a->ids_keep), ssl_free(a->ids_restore);
    const size_t nl = (size_t)n * (size_t)a->L;
    a->noise = ssl_malloc(nl * sizeof(float));
    a->mask = ssl_malloc(nl * sizeof(float));
    a->shown = ssl_malloc(nl * sizeof(float));
    a->ids_keep = ssl_malloc(nl * sizeof(int32_t));
    a->ids_restore = ssl_malloc(nl * sizeof(int32_t));
    a->cap = n;
}

ssl_tensor ssl_mae_forward(ssl_method *m, ssl_ctx *c, const ssl_weights *w, ssl_tensor x, const int64_t *index,
                           uint64_t key, const float **mask)
{
    SSL_ASSERTF(m->vt == &ssl_method_mae, "ssl_mae_forward: method %s is not mae", m->vt->name);
    mae *a = m->impl;
    SSL_ASSERTF(index, "mae: no sample indices (ssl_views.index) to key the masks by");
    SSL_ASSERTF(x.ndim == 4 && x.shape[2] == x.shape[3] && x.shape[2] * x.shape[3] == a->L * a->p * a->p,
                "mae: images must be the planned %lld patches of %d px", (long long)a->L, a->p);
    const int N = (int)x.shape[0];
    reserve(a, N);
    /* one Philox stream per sample, named by its global index: ranks and batch splits agree */
    for (int i = 0; i < N; i++) ssl_mae_noise(key, index[i], 1, a->L, a->noise + (size_t)i * a->L);
    ssl_mae_mask(N, a->L, a->keep, a->noise, a->ids_keep, a->ids_restore, a->mask);
    ssl_tensor lat = ssl_vit_forward_tokens(c, m->encoder, w, x, a->ids_keep, (int)a->keep, 1);
    *mask = a->mask;
    return ssl_mae_decoder_forward(c, &a->dec, w, lat, a->ids_restore);
}

static double mae_step(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                       ssl_scalars *out)
{
    mae *a = m->impl;
    const ssl_config_mae *o = &m->cfg->mae;
    SSL_ASSERTF(v->ngroups == 1 && v->group[0].shape[0] == v->n, "mae: expected one view of %d images", v->n);
    const ssl_tensor x = v->group[0];
    const float *mask;
    ssl_tensor pred = ssl_mae_forward(m, c, w, x, v->index, ssl_mae_step_key((uint64_t)m->cfg->run.seed, p->step),
                                      &mask);
    const size_t np = (size_t)ssl_tensor_numel(pred);
    float *dpred = ssl_arena_floats(&c->act, np);
    /* this rank's mean over its removed patches: the official per-GPU loss (see the header) */
    const double loss = ssl_mae_loss(c, x, a->p, pred, mask, o->norm_pix_loss, dpred);
    ssl_tensor dlat = ssl_mae_decoder_backward(c, &a->dec, w, ssl_tensor_3d(dpred, pred.shape[0], pred.shape[1],
                                                                             pred.shape[2]));
    ssl_vit_backward_tokens(c, m->encoder, w, dlat);
    /* monitors: the same error on the kept patches (not trained: how well the decoder copies what
     * the encoder saw), and the spread of the predicted values (with norm_pix the targets have unit
     * variance per patch; a decoder that predicts flat patches drives it to 0) */
    const size_t nl = (size_t)v->n * (size_t)a->L;
    for (size_t i = 0; i < nl; i++) a->shown[i] = 1.0f - mask[i];
    ssl_scalars_add(out, "visible_loss", ssl_mae_loss(c, x, a->p, pred, a->shown, o->norm_pix_loss, NULL));
    const double mean = c->be->sum(c, np, pred.data) / (double)np;
    const double var = c->be->sumsq(c, np, pred.data) / (double)np - mean * mean;
    ssl_scalars_add(out, "pred_std", sqrt(var > 0 ? var : 0));
    return loss;
}

static void mae_free(ssl_method *m)
{
    mae *a = m->impl;
    if (!a) return;
    ssl_mae_decoder_free(&a->dec);
    ssl_free(a->noise), ssl_free(a->mask), ssl_free(a->shown), ssl_free(a->ids_keep), ssl_free(a->ids_restore);
    ssl_free(a);
}

const ssl_method_vtable ssl_method_mae = {
    .name = "mae",
    .summary = "MAE: a ViT encodes a random subset of the patches (25% at mask_ratio 0.75), a light decoder "
               "reconstructs the removed pixels (He et al. 2022)",
    .configure = mae_configure,
    .plan = mae_plan,
    .view_pipeline = mae_view_pipeline,
    .step = mae_step,
    .free = mae_free,
};
