/* DINO's last layer (REFERENCE §4.1): weight_norm(Linear(in, K, bias=False)) with weight_g fixed to 1
 * (norm_last_layer=True): W_k = V_k / ||V_k|| for every output row k, y = x W^T. Only V is a parameter,
 * planned as the segment "<name>.weight_v" of shape (k, in) (torch's `last_layer.weight_v`), initialised
 * as nn.Linear's weight (U(+-1/sqrt(in))), with weight decay as the official parameter groups give
 * every 2-D tensor. Backward goes through the normalisation: dV += (dW - W (W . dW)) / ||V|| per row.
 *
 * Sharded (a model-parallel head): the layer holds rows [off, off + k) of V and produces those columns
 * of y; its dx is this shard's partial sum, which the caller sums over the shards (all-reduce, or
 * reduce-scatter to the rows' owners). Sharded V is initialised per rank from the segment's stream,
 * so its values depend on the rank count (drawing rows by global index, as
 * ssl_moco_queue_init does, is left to the method).
 *
 * freeze = 1 (freeze_last_layer's first epoch): backward still returns dx but leaves dV untouched;
 * the method additionally keeps the optimizer off the segment (the official code sets the gradient to
 * None, so AdamW skips its moments and weight decay too). */
#ifndef SSL_LAYERS_WNORM_LINEAR_H
#define SSL_LAYERS_WNORM_LINEAR_H

#include "framework/layers/layer.h"

typedef struct {
    int in;             /* bottleneck dim */
    int64_t K, off, k;  /* all rows (prototypes); this layer's rows [off, off + k) */
    size_t v;           /* offset of weight_v (k, in) */
    int freeze;         /* 1: backward does not touch dV */
    int skip_dx;
    ssl_tensor x;       /* saved input (rows, in) */
    float *w, *norm;    /* saved W = V / ||V|| (k, in) and ||V|| (k), arena */
} ssl_wnorm_linear;

/* Unsharded: off = 0, k = K. */
void ssl_wnorm_linear_init(ssl_wnorm_linear *l, ssl_plan *pl, const char *name, int in, int64_t K,
                           int64_t off, int64_t k);
/* x: any tensor whose last dim is `in`; y: the same leading dims, last dim k. */
ssl_tensor ssl_wnorm_linear_forward(ssl_ctx *c, ssl_wnorm_linear *l, const ssl_weights *w, ssl_tensor x);
/* dy (rows, k) -> dx (rows, in), assigned (NULL data with skip_dx); dV += ... into w->g unless
 * freeze or w->g == NULL. */
ssl_tensor ssl_wnorm_linear_backward(ssl_ctx *c, ssl_wnorm_linear *l, const ssl_weights *w, ssl_tensor dy);

#endif
