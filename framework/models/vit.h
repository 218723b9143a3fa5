/* ViT pieces beyond ssl_model's pooled forward (vit.c): the output tokens of a built ViT, for all
 * patches or for a subset of them (MAE's encoder sees only its kept patches), and the parts MAE's
 * decoder (mae_decoder.c) shares with the encoder: the transformer block, the fixed 2-D sin-cos
 * table and the selection of token rows. Index arrays (ids) are HOST int32: per-step bookkeeping
 * (ssl_mae_mask); the selection uploads its row index to the activation arena. */
#ifndef SSL_MODELS_VIT_H
#define SSL_MODELS_VIT_H

#include "framework/core/stash.h"
#include "framework/layers/attention.h"
#include "framework/layers/layernorm.h"
#include "framework/models/model.h"

/* Pre-norm transformer block: x + MHSA(LN(x)), then + MLP(GELU, ratio 4)(LN(.)); LN eps 1e-6.
 * Parameters are torchvision's EncoderLayer names under `name`: ln_1, self_attention.*, ln_2,
 * mlp.0, mlp.3 (timm's norm1, attn.qkv/proj, norm2, mlp.fc1/fc2). */
typedef struct {
    ssl_layernorm ln1, ln2;
    ssl_attention attn;
    ssl_linear fc1, fc2;
    ssl_tensor h1; /* fc1 output (GELU input), saved for backward */
    ssl_tensor h1pre; /* under bf16 storage, instead: fc1's product before its bias, in bf16 (lossless) */
    int pre16;        /* keep h1pre, not h1 (set by ssl_vit_blocks_forward) */
    int unit;       /* its stash unit */
    int seg0, seg1; /* its parameter segments: backward reports them done (ssl_ctx_grads_done) */
} ssl_vit_block;

void ssl_vit_block_init(ssl_vit_block *b, ssl_plan *pl, const char *name, int D, int heads);
/* x (B, T, D) -> (B, T, D). */
ssl_tensor ssl_vit_block_forward(ssl_ctx *c, ssl_vit_block *b, const ssl_weights *w, ssl_tensor x);
/* A stack of blocks, each packed into st as it finishes (core/stash.h: bf16 storage of the products'
 * inputs, or nothing but its output in a forward with no backward); x stays where it is. The
 * backward returns d(x), accumulates the blocks' gradients, unpacks each block before it runs and
 * holds one block's temporaries at a time. */
ssl_tensor ssl_vit_blocks_forward(ssl_ctx *c, ssl_vit_block *blocks, int depth, const ssl_weights *w, ssl_tensor x,
                                  ssl_stash *st);
/* mark: an ssl_arena_mark from before dy was allocated (what came after it is dead once the last
 * block has run); each block's input gradient moves there. */
ssl_tensor ssl_vit_blocks_backward(ssl_ctx *c, ssl_vit_block *blocks, int depth, const ssl_weights *w, ssl_tensor dy,
                                   ssl_stash *st, size_t mark);

/* The fixed 2-D sin-cos position table (1 + gh*gw, D) on the host (ssl_free): a zero CLS row, then per
 * patch (row-major) D/4 frequencies w_k = 1e4^(-k/(D/4)) each of sin(x w), cos(x w), sin(y w),
 * cos(y w), x the patch column, y its row: MAE's get_2d_sincos_pos_embed (its meshgrid puts the
 * column coordinate first). D must divide by 4. */
float *ssl_vit_sincos_table(int gh, int gw, int D);

/* Row selection in token sequences x (B, 1 + T, D): y (B, 1 + n, D) with y[b, 0] = x[b, 0] (the CLS
 * token) and y[b, 1 + j] = x[b, 1 + ids[b*n + j]], ids (B, n) host indices < T. *rows receives the
 * device row index (arena) for the backward. */
ssl_tensor ssl_vit_select_tokens(ssl_ctx *c, ssl_tensor x, int64_t n, const int32_t *ids, const int32_t **rows);
/* Its adjoint: dx (B, 1 + T, D) holding dy's rows where they were taken from, zero elsewhere. */
ssl_tensor ssl_vit_select_tokens_backward(ssl_ctx *c, ssl_tensor dy, int64_t T, const int32_t *rows);

/* Every output token of a built ViT (m from ssl_vit_build) after the final LN, head not applied:
 * patch embedding, + position, the kept patches ids_keep (N, keep) host (MAE's ids_shuffle[:, :keep],
 * any order) with the CLS token (+ its position) first, blocks, LN -> (N, 1 + keep, D). ids_keep NULL:
 * all T patches of this call's grid -> (N, 1 + T, D). Images of another size than planned resize the
 * positions as forward does. Replaces the saved state of m's previous forward. */
ssl_tensor ssl_vit_forward_tokens(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor x,
                                  const int32_t *ids_keep, int keep, int train);
/* Backward of the last ssl_vit_forward_tokens: dy (N, 1 + keep, D); accumulates the gradients. */
void ssl_vit_backward_tokens(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor dy);

#endif
