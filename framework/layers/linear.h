/* Fully connected layer on rows: y (rows, out) = x (rows, in) @ W^T + b, W (out, in) as torch. */
#ifndef SSL_LAYERS_LINEAR_H
#define SSL_LAYERS_LINEAR_H

#include "framework/layers/layer.h"

typedef struct {
    int in, out, bias;
    size_t w, b;      /* offsets of weight (out, in) and bias (out) */
    int skip_dx;
    ssl_tensor x;     /* saved input (rows, in) */
} ssl_linear;

/* init: SSL_INIT_UNIFORM with bound 1/sqrt(in) for weight and bias (torch.nn.Linear default)
 * unless w_init/w_a say otherwise; bias excluded from weight decay and adaptation. */
void ssl_linear_init(ssl_linear *l, ssl_plan *pl, const char *name, int in, int out, int bias);
void ssl_linear_init_ex(ssl_linear *l, ssl_plan *pl, const char *name, int in, int out, int bias,
                        ssl_init_kind w_init, float w_a);
/* x: any tensor whose last dim is `in`; y has the same leading dims with last dim `out`. */
ssl_tensor ssl_linear_forward(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor x);
/* The same, and *pre: the product before the bias as a bf16 tensor (arena). Under bf16 precision the
 * product is rounded to bf16, so this is lossless: adding the bias to it again (bias_add, as here)
 * gives y's bits, from half the bytes. */
ssl_tensor ssl_linear_forward_pre(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor x, ssl_tensor *pre);
ssl_tensor ssl_linear_backward(ssl_ctx *c, ssl_linear *l, const ssl_weights *w, ssl_tensor dy);

#endif
