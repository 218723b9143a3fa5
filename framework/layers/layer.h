/* Shared layer conventions.
 * A layer is a small struct planned once (its parameters registered in an ssl_params by offset),
 * then run with explicit weights: ssl_weights names the parameter, gradient and buffer bases, so
 * the same layer structs serve a student (with gradients) and an EMA teacher (without).
 * forward() allocates its output from the context's activation arena and keeps what backward needs
 * in the layer struct; backward() returns the input gradient (assigned, arena) and ACCUMULATES
 * (+=) parameter gradients into w->g. Setting skip_dx on the first layer saves the image gradient. */
#ifndef SSL_LAYERS_LAYER_H
#define SSL_LAYERS_LAYER_H

#include "framework/backend/backend.h"
#include "framework/tensor/params.h"
#include "framework/tensor/tensor.h"

typedef struct {
    const float *p; /* parameter values (ssl_params.data) */
    float *g;       /* parameter gradients (ssl_params.grad); NULL: forward only */
    float *buf;     /* non-trainable buffers (BN running stats) */
} ssl_weights;

/* Parameter/buffer planning context handed to every layer's init. */
typedef struct {
    ssl_params *params;
    ssl_params *buffers;
} ssl_plan;

/* "prefix.suffix" into out (size 112), or suffix alone when prefix is empty. */
void ssl_layer_name(char *out, const char *prefix, const char *suffix);

/* dx = dy where the ReLU output y is positive, else 0 (dx may alias dy); y fp32 or a bf16 view. */
void ssl_relu_backward(ssl_ctx *c, ssl_tensor y, ssl_tensor dy, ssl_tensor dx);

#endif
