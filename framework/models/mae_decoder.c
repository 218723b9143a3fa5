/* MAE's decoder (see mae_decoder.h). The tokens are laid out per image in shuffle order first
 * ([CLS, kept..., mask tokens...], as the official torch.cat) and then unshuffled by one row
 * selection with ids_restore; being a permutation, its adjoint hands each token's gradient back to
 * the slot it came from, and the mask token's gradient is the sum over the masked slots. */
#include "framework/models/mae_decoder.h"

#include "framework/core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ssl_mae_decoder_config_default(ssl_mae_decoder_config *cfg, const ssl_model *encoder)
{
    const ssl_model_config *e = &encoder->cfg;
    *cfg = (ssl_mae_decoder_config){.enc_dim = encoder->feat_dim, .grid = e->img_size / e->patch_size,
                                    .patch = e->patch_size, .in_chans = e->in_chans,
                                    .dim = 512, .depth = 8, .heads = 16};
}

/* MAE's _init_weights for a Linear: xavier-uniform weight, zero bias. */
static void linear_xavier(ssl_linear *l, ssl_plan *pl, const char *name, int in, int out)
{
    ssl_linear_init_ex(l, pl, name, in, out, 1, SSL_INIT_UNIFORM, sqrtf(6.0f / (float)(in + out)));
    pl->params->seg[pl->params->nseg - 1].init = SSL_INIT_ZERO; /* the bias, planned last */
}

int ssl_mae_decoder_init(ssl_mae_decoder *d, const ssl_mae_decoder_config *cfg, ssl_plan *pl,
                         const char *prefix, char *err)
{
    const int D = cfg->dim;
    if (cfg->enc_dim < 1 || cfg->grid < 1 || cfg->patch < 1 || cfg->in_chans < 1 || cfg->depth < 0 ||
        cfg->heads < 1 || D < 4 || D % cfg->heads || D % 4) {
        snprintf(err, 256, "mae decoder: dim %d must divide by heads %d and by 4 (sin-cos), with a "
                           "positive encoder geometry", D, cfg->heads);
        return -1;
    }
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->L = (int64_t)cfg->grid * cfg->grid;
    d->F = (int64_t)cfg->patch * cfg->patch * cfg->in_chans;
    char n[112], sub[112];
    ssl_layer_name(n, prefix, "decoder_embed");
    linear_xavier(&d->embed, pl, n, cfg->enc_dim, D);
    /* a 3-D tensor: MAE's add_weight_decay decays it (only 1-D tensors and biases are exempt) */
    int64_t ts[3] = {1, 1, D}, ps[3] = {1, d->L + 1, D};
    ssl_layer_name(n, prefix, "mask_token");
    d->mask_token = ssl_params_add(pl->params, n, 3, ts, 0, SSL_INIT_NORMAL, 0.02f);
    ssl_layer_name(n, prefix, "decoder_pos_embed");
    d->pos_data = ssl_vit_sincos_table(cfg->grid, cfg->grid, D);
    d->pos = ssl_params_add(pl->params, n, 3, ps, SSL_SEG_FROZEN | SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT,
                            SSL_INIT_CONST_DATA, 0);
    pl->params->seg[pl->params->nseg - 1].init_data = d->pos_data;
    d->blocks = ssl_calloc((size_t)(cfg->depth ? cfg->depth : 1), sizeof *d->blocks);
    for (int i = 0; i < cfg->depth; i++) {
        snprintf(sub, sizeof sub, "decoder_blocks.%d", i);
        ssl_layer_name(n, prefix, sub);
        ssl_vit_block_init(&d->blocks[i], pl, n, D, cfg->heads);
    }
    ssl_layer_name(n, prefix, "decoder_norm");
    ssl_layernorm_init(&d->norm, pl, n, D, 1e-6f);
    ssl_layer_name(n, prefix, "decoder_pred");
    linear_xavier(&d->pred, pl, n, D, (int)d->F);
    return 0;
}

void ssl_mae_decoder_free(ssl_mae_decoder *d)
{
    ssl_stash_free(&d->stash);
    ssl_free(d->blocks);
    ssl_free(d->pos_data);
    memset(d, 0, sizeof *d);
}

ssl_tensor ssl_mae_decoder_forward(ssl_ctx *c, ssl_mae_decoder *d, const ssl_weights *w, ssl_tensor x,
                                   const int32_t *ids_restore)
{
    const int64_t L = d->L, D = d->cfg.dim;
    SSL_ASSERTF(x.ndim == 3 && x.shape[1] >= 1 && x.shape[1] - 1 <= L && x.shape[2] == d->cfg.enc_dim,
                "mae decoder: expected (N, 1 + keep <= %lld, %d) tokens", (long long)(1 + L), d->cfg.enc_dim);
    const int64_t B = x.shape[0], k = x.shape[1] - 1;
    d->B = B, d->keep = k;
    ssl_tensor e = ssl_linear_forward(c, &d->embed, w, x);
    double t0 = ssl_prof_begin(c);
    ssl_tensor s = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (L + 1) * D)), B, L + 1, D);
    c->be->copy2d(c, B, (k + 1) * D, e.data, (k + 1) * D, s.data, (L + 1) * D);
    if (k < L) { /* the mask token, L - k times, then that block into every image */
        float *m = ssl_arena_floats(&c->act, (size_t)((L - k) * D));
        c->be->copy2d(c, L - k, D, w->p + d->mask_token, 0, m, D);
        c->be->copy2d(c, B, (L - k) * D, m, 0, s.data + (k + 1) * D, (L + 1) * D);
    }
    ssl_tensor h = ssl_vit_select_tokens(c, s, L, ids_restore, &d->rows);
    c->be->bias_add(c, B, (L + 1) * D, 1, w->p + d->pos, h.data);
    ssl_prof_end(c, SSL_PROF_TOKENS_FWD, t0, 0);
    ssl_stash_begin(&d->stash, c, w->g != NULL);
    h = ssl_vit_blocks_forward(c, d->blocks, d->cfg.depth, w, h, &d->stash);
    h = ssl_layernorm_forward(c, &d->norm, w, h);
    /* the CLS token is dropped before the prediction (the official code predicts it, then drops it) */
    ssl_tensor z = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * L * D)), B, L, D);
    c->be->copy2d(c, B, L * D, h.data + D, (L + 1) * D, z.data, L * D);
    return ssl_linear_forward(c, &d->pred, w, z);
}

ssl_tensor ssl_mae_decoder_backward(ssl_ctx *c, ssl_mae_decoder *d, const ssl_weights *w, ssl_tensor dpred)
{
    const int64_t B = d->B, k = d->keep, L = d->L, D = d->cfg.dim;
    SSL_ASSERTF(dpred.ndim == 3 && dpred.shape[0] == B && dpred.shape[1] == L && dpred.shape[2] == d->F,
                "mae decoder: dpred must be (%lld, %lld, %lld)", (long long)B, (long long)L, (long long)d->F);
    ssl_tensor dz = ssl_linear_backward(c, &d->pred, w, dpred);
    ssl_tensor dh = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (L + 1) * D)), B, L + 1, D);
    c->be->fill(c, dh.data, ssl_tensor_numel(dh), 0.0f); /* the dropped CLS row */
    c->be->copy2d(c, B, L * D, dz.data, L * D, dh.data + D, (L + 1) * D);
    const size_t mark = ssl_arena_mark(&c->act); /* memory by liveness, as resnet_backward */
    dh = ssl_layernorm_backward(c, &d->norm, w, dh);
    dh = ssl_vit_blocks_backward(c, d->blocks, d->cfg.depth, w, dh, &d->stash, mark);
    double t0 = ssl_prof_begin(c);
    ssl_tensor ds = ssl_vit_select_tokens_backward(c, dh, L, d->rows); /* back to shuffle order */
    if (w->g && k < L) {
        float *dm = ssl_arena_floats(&c->act, (size_t)(B * (L - k) * D));
        c->be->copy2d(c, B, (L - k) * D, ds.data + (k + 1) * D, (L + 1) * D, dm, (L - k) * D);
        c->be->bias_grad(c, B * (L - k), D, 1, dm, w->g + d->mask_token);
    }
    ssl_tensor de = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(B * (k + 1) * D)), B, k + 1, D);
    c->be->copy2d(c, B, (k + 1) * D, ds.data, (L + 1) * D, de.data, (k + 1) * D);
    ssl_prof_end(c, SSL_PROF_TOKENS_BWD, t0, 0);
    return ssl_linear_backward(c, &d->embed, w, de);
}
