/* ssl_tensor: a non-owning view (data pointer + shape + element type) of memory on the context's
 * device. Only arenas own memory; tensors are passed by value. Image activations are (N, C, H, W);
 * token activations are (B, T, D); feature rows are (N, D).
 *
 * Element types: fp32 (`data`, what every constructor makes), or bfloat16 bits (`bf16`): a saved
 * activation kept in bf16 between forward and backward (core/stash.h), which the ops that read it
 * take as it is (the backend ops ending in _bf16). A layer that reads a saved tensor dispatches on
 * its dtype; one that makes a new tensor of a saved one's shape goes through ssl_tensor_like. */
#ifndef SSL_TENSOR_TENSOR_H
#define SSL_TENSOR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SSL_MAX_DIMS 4

enum { SSL_T_F32 = 0, SSL_T_BF16 = 1 };

typedef struct {
    union {
        float *data;   /* SSL_T_F32 */
        uint16_t *bf16; /* SSL_T_BF16: bfloat16 bits (fp32's upper half) */
    };
    int ndim;
    int64_t shape[SSL_MAX_DIMS];
    int dtype; /* SSL_T_F32 unless set: every constructor and zero-initialised tensor is fp32 */
} ssl_tensor;

static inline ssl_tensor ssl_tensor_2d(float *d, int64_t a, int64_t b)
{
    ssl_tensor t = {.data = d, .ndim = 2, .shape = {a, b, 1, 1}};
    return t;
}
static inline ssl_tensor ssl_tensor_3d(float *d, int64_t a, int64_t b, int64_t c)
{
    ssl_tensor t = {.data = d, .ndim = 3, .shape = {a, b, c, 1}};
    return t;
}
static inline ssl_tensor ssl_tensor_4d(float *d, int64_t a, int64_t b, int64_t c, int64_t e)
{
    ssl_tensor t = {.data = d, .ndim = 4, .shape = {a, b, c, e}};
    return t;
}
/* An fp32 tensor of t's shape at d (t may be of any dtype). */
static inline ssl_tensor ssl_tensor_like(ssl_tensor t, float *d)
{
    t.data = d;
    t.dtype = SSL_T_F32;
    return t;
}
static inline size_t ssl_tensor_numel(ssl_tensor t)
{
    size_t n = 1;
    for (int i = 0; i < t.ndim; i++) n *= (size_t)t.shape[i];
    return n;
}

#endif
