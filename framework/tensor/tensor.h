/* ssl_tensor: a non-owning view (data pointer + shape) of fp32 memory on the context's device.
 * Only arenas own memory; tensors are passed by value. Image activations are (N, C, H, W);
 * token activations are (B, T, D); feature rows are (N, D). */
#ifndef SSL_TENSOR_TENSOR_H
#define SSL_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SSL_MAX_DIMS 4

typedef struct {
    float *data;
    int ndim;
    int64_t shape[SSL_MAX_DIMS];
} ssl_tensor;

static inline ssl_tensor ssl_tensor_2d(float *d, int64_t a, int64_t b)
{
    ssl_tensor t = {d, 2, {a, b, 1, 1}};
    return t;
}
static inline ssl_tensor ssl_tensor_3d(float *d, int64_t a, int64_t b, int64_t c)
{
    ssl_tensor t = {d, 3, {a, b, c, 1}};
    return t;
}
static inline ssl_tensor ssl_tensor_4d(float *d, int64_t a, int64_t b, int64_t c, int64_t e)
{
    ssl_tensor t = {d, 4, {a, b, c, e}};
    return t;
}
static inline size_t ssl_tensor_numel(ssl_tensor t)
{
    size_t n = 1;
    for (int i = 0; i < t.ndim; i++) n *= (size_t)t.shape[i];
    return n;
}

#endif
