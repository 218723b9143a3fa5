/* 2-D convolution layer on (N, C, H, W); weight (K, C, R, R) as torch, optional bias (K). */
#ifndef SSL_LAYERS_CONV2D_H
#define SSL_LAYERS_CONV2D_H

#include "framework/layers/layer.h"

typedef struct {
    int cin, cout, k, stride, pad, bias;
    size_t w, b;
    int skip_dx;
    /* Set by a model whose reader of y takes bf16 input (a BN): under bf16 storage (precision bf16,
     * saved activations bf16) y is then a bf16 tensor, lossless since the op rounds its results. */
    int bf16_out;
    ssl_tensor x;        /* saved input */
    ssl_conv_shape s;    /* geometry of the last forward */
} ssl_conv2d;

/* Weight init: kaiming normal, fan_out, ReLU gain (torchvision ResNet): std = sqrt(2 / (K R R)). */
void ssl_conv2d_init(ssl_conv2d *l, ssl_plan *pl, const char *name, int cin, int cout, int k,
                     int stride, int pad, int bias);
ssl_tensor ssl_conv2d_forward(ssl_ctx *c, ssl_conv2d *l, const ssl_weights *w, ssl_tensor x);
ssl_tensor ssl_conv2d_backward(ssl_ctx *c, ssl_conv2d *l, const ssl_weights *w, ssl_tensor dy);

#endif
