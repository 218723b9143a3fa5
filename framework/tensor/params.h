/* Flat parameter storage with a segment table.
 * A model first *plans* its tensors (name, shape, flags, init) with ssl_params_add, then
 * ssl_params_alloc gives one device arena for values and one with the same layout for gradients.
 * Whole-model operations (gradient all-reduce, EMA teacher update, zero-grad, checkpoint) are one call
 * over the flat buffer; per-tensor ones (LARS/LAMB norms, weight-decay exclusion, export names)
 * walk the segment table. The same type holds non-trainable buffers (BN running stats). */
#ifndef SSL_TENSOR_PARAMS_H
#define SSL_TENSOR_PARAMS_H

#include <stddef.h>
#include <stdint.h>

struct ssl_backend;

/* Segment flags. */
enum {
    SSL_SEG_NO_WD = 1u << 0,    /* excluded from weight decay (biases, norm affine, tokens) */
    SSL_SEG_NO_ADAPT = 1u << 1, /* excluded from LARS/LAMB trust-ratio adaptation */
    SSL_SEG_FROZEN = 1u << 2,   /* never updated (MoCo v3's frozen patch projection) */
};

/* How a segment is initialised by ssl_params_init_values. */
typedef enum {
    SSL_INIT_ZERO,
    SSL_INIT_ONE,
    SSL_INIT_UNIFORM,      /* U(-a, a) */
    SSL_INIT_NORMAL,       /* N(0, a^2) */
    SSL_INIT_TRUNC_NORMAL, /* N(0, a^2) truncated at +-2a */
    SSL_INIT_CONST_DATA,   /* host data supplied by the model (fixed sin-cos embedding) */
} ssl_init_kind;

typedef struct {
    char name[112];           /* torchvision state_dict key */
    size_t off;               /* offset in floats into the flat buffers (16-float aligned) */
    size_t n;                 /* number of elements */
    int ndim;
    int64_t shape[4];
    unsigned flags;
    ssl_init_kind init;
    float init_a;
    const float *init_data;   /* SSL_INIT_CONST_DATA: host pointer owned by the model */
} ssl_segment;

typedef struct {
    const struct ssl_backend *be;
    ssl_segment *seg;
    int nseg, cap;
    size_t numel;      /* total floats including alignment padding */
    size_t count;      /* sum of segment sizes: the parameter count */
    float *data;       /* device buffer, numel floats */
    float *grad;       /* device buffer, same layout; NULL for buffers without gradients */
} ssl_params;

void ssl_params_init(ssl_params *p);
void ssl_params_free(ssl_params *p);

/* Plan a tensor; returns its offset into the flat buffers. Must precede ssl_params_alloc. */
size_t ssl_params_add(ssl_params *p, const char *name, int ndim, const int64_t *shape,
                      unsigned flags, ssl_init_kind init, float init_a);
/* Find a segment by name; -1 when absent. */
int ssl_params_find(const ssl_params *p, const char *name);

/* Allocate the planned buffers on a backend (with_grad: also the gradient buffer). Zero-filled. */
void ssl_params_alloc(ssl_params *p, const struct ssl_backend *be, int with_grad);
/* Draw every segment's initial values (host RNG, keyed by seed and segment index; uploaded). */
void ssl_params_init_values(ssl_params *p, uint64_t seed);
struct ssl_ctx;
void ssl_params_zero_grad(struct ssl_ctx *c, ssl_params *p);

#endif
