/* Layer normalisation over the last dim (torch.nn.LayerNorm, eps 1e-6 as torchvision's ViT). */
#ifndef SSL_LAYERS_LAYERNORM_H
#define SSL_LAYERS_LAYERNORM_H

#include "framework/layers/layer.h"

typedef struct {
    int D;
    float eps;
    size_t gamma, beta;
    ssl_tensor x;
    float *mean, *rstd;
} ssl_layernorm;

void ssl_layernorm_init(ssl_layernorm *l, ssl_plan *pl, const char *name, int D, float eps);
ssl_tensor ssl_layernorm_forward(ssl_ctx *c, ssl_layernorm *l, const ssl_weights *w, ssl_tensor x);
ssl_tensor ssl_layernorm_backward(ssl_ctx *c, ssl_layernorm *l, const ssl_weights *w, ssl_tensor dy);

#endif
