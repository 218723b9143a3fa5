/* MAE's decoder (REFERENCE §5.2; models_mae.py forward_decoder), planned into the encoder's ssl_plan
 * under the official names: decoder_embed (Linear D_enc -> dim, bias), mask_token (1, 1, dim),
 * decoder_pos_embed (1, 1 + L, dim: fixed 2-D sin-cos with a zero CLS row, SSL_SEG_FROZEN),
 * decoder_blocks.<i>.* (the encoder's transformer block, vit.h, with its torchvision sub-names),
 * decoder_norm, decoder_pred (Linear dim -> p*p*C, bias).
 * Forward: embed the encoder's tokens (N, 1 + keep, D_enc) (CLS first, then the kept patches in
 * shuffle order), append L - keep mask tokens, unshuffle with ids_restore, add the positions, blocks,
 * LN, drop the CLS token, predict -> (N, L, p*p*C) pixels per patch in MAE's (i, j, c) order
 * (ssl_mae_loss's target). Runs at the planned grid only. One forward -> backward pair at a time: the
 * struct keeps what backward needs. Layer conventions as layer.h (gradients accumulate). */
#ifndef SSL_MODELS_MAE_DECODER_H
#define SSL_MODELS_MAE_DECODER_H

#include "framework/models/vit.h"

typedef struct {
    int enc_dim;             /* the encoder's token width */
    int grid, patch, in_chans; /* the encoder's patch grid side, patch size, image channels */
    int dim, depth, heads;   /* 512, 8, 16: MAE's _dec512d8b */
} ssl_mae_decoder_config;

typedef struct {
    ssl_mae_decoder_config cfg;
    int64_t L, F;            /* patches per image, p*p*C */
    ssl_linear embed, pred;
    size_t mask_token, pos;
    float *pos_data;         /* host sin-cos table, the plan's init data for decoder_pos_embed */
    ssl_vit_block *blocks;
    ssl_layernorm norm;
    /* per call, forward -> backward */
    int64_t B, keep;
    const int32_t *rows;     /* device row index of the unshuffle */
    ssl_stash stash;         /* the blocks' saved tensors (core/stash.h) */
} ssl_mae_decoder;

/* MAE's decoder (512 wide, 8 blocks, 16 heads) for a built ViT encoder (ssl_vit_build). */
void ssl_mae_decoder_config_default(ssl_mae_decoder_config *cfg, const ssl_model *encoder);

/* Plan the decoder's parameters into pl under "<prefix>.<official name>" (prefix may be ""). Returns 0,
 * or -1 with a message in err (size 256) for a bad geometry (dim must divide by heads and by 4). */
int ssl_mae_decoder_init(ssl_mae_decoder *d, const ssl_mae_decoder_config *cfg, ssl_plan *pl,
                         const char *prefix, char *err);
void ssl_mae_decoder_free(ssl_mae_decoder *d);

/* x (N, 1 + keep, enc_dim) -> pred (N, L, p*p*C). ids_restore (N, L) HOST (ssl_mae_mask): patch l is
 * the token of shuffle rank ids_restore[l], a kept token when that is < keep, else a mask token. */
ssl_tensor ssl_mae_decoder_forward(ssl_ctx *c, ssl_mae_decoder *d, const ssl_weights *w, ssl_tensor x,
                                   const int32_t *ids_restore);
/* dpred (N, L, p*p*C) -> d(x) (N, 1 + keep, enc_dim); accumulates the decoder's gradients. */
ssl_tensor ssl_mae_decoder_backward(ssl_ctx *c, ssl_mae_decoder *d, const ssl_weights *w, ssl_tensor dpred);

#endif
