/* Pooling layers: max pool (ResNet's ImageNet stem) and global average pool (encoder output). */
#ifndef SSL_LAYERS_POOL_H
#define SSL_LAYERS_POOL_H

#include "framework/layers/layer.h"

typedef struct {
    int k, stride, pad;
    ssl_tensor x;
    int P, Q;
    int32_t *idx;   /* argmax per output (N, C, P, Q) */
} ssl_maxpool;

void ssl_maxpool_init(ssl_maxpool *l, int k, int stride, int pad);
ssl_tensor ssl_maxpool_forward(ssl_ctx *c, ssl_maxpool *l, ssl_tensor x);
ssl_tensor ssl_maxpool_backward(ssl_ctx *c, ssl_maxpool *l, ssl_tensor dy);

/* (N, C, H, W) -> (N, C) */
typedef struct {
    ssl_tensor x;
} ssl_avgpool;

ssl_tensor ssl_avgpool_forward(ssl_ctx *c, ssl_avgpool *l, ssl_tensor x);
ssl_tensor ssl_avgpool_backward(ssl_ctx *c, ssl_avgpool *l, ssl_tensor dy);

#endif
