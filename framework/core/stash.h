/* Saved activations kept in bfloat16 between a model's forward and its backward (mixed precision;
 * the role of torch's saved-tensor pack hooks). A model queues what its layers saved for backward
 * as it finishes a unit (a residual block), then packs: the queued tensors are copied to the
 * arena's other end (core/arena.h; bf16, or as they are for statistics and indices), everything
 * the unit allocated since `mark` is given back, and the unit's output moves down to the mark. As
 * the backward goes, the model drops the units whose readers are done (ssl_stash_drop). The
 * queued pointers are rewritten to their copies; a bf16 copy replaces its tensor's memory and turns
 * the tensor into a bf16 view (tensor.h), which the backward's ops read where it lies (the backend
 * ops ending in _bf16): nothing is widened back into memory.
 *
 * Only values the backward reads through bfloat16 anyway are worth queuing as bf16: a product's
 * input (GEMM and convolution inputs are read rounded), a convolution's output (its results are
 * rounded), or a ReLU mask. Then the backward's numbers are those of fp32 storage, bit for bit, and
 * the forward keeps half the bytes plus none of the dead ones.
 *
 * On when c->precision_bf16 is set, c->acts_fp32 is not, and a backward will follow. A forward
 * with no backward after it (a teacher's, evaluation's) keeps nothing in any precision: its packs
 * give back all but the output. Otherwise every call is a no-op and packing returns `keep`. */
#ifndef SSL_CORE_STASH_H
#define SSL_CORE_STASH_H

#include "framework/core/ctx.h"
#include "framework/tensor/tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *ref;  /* float **, double ** or int32_t **, by kind */
    int kind;
    size_t n;   /* elements */
} ssl_stash_ref;

typedef struct {
    int on;                 /* bf16 storage */
    int release;            /* forward only: packs keep the output alone */
    ssl_stash_ref *q;       /* queued for the next pack */
    int nq, qcap;
    size_t hi0;             /* the arena's other end at the forward's start */
    size_t *ends;           /* ... after each unit's pack */
    int nunits, ends_cap;
} ssl_stash;

/* Start a forward: forget the last one's copies; on when c's precision says so and `backward`. */
void ssl_stash_begin(ssl_stash *s, const ssl_ctx *c, int backward);
/* Queue *ref (n elements) for the next pack, as it is. Pointers with the same value share one copy. */
void ssl_stash_f32(ssl_stash *s, float **ref, size_t n);
void ssl_stash_f64(ssl_stash *s, double **ref, size_t n);
void ssl_stash_i32(ssl_stash *s, int32_t **ref, size_t n);
/* Queue t as a bf16 view: at the pack, t's memory becomes its bf16 copy (t's bytes when it is bf16
 * already) and t itself SSL_T_BF16. Tensors over the same memory share one copy. (The next forward's
 * layers assign their tensors whole, as they make them.) */
void ssl_stash_view(ssl_stash *s, ssl_tensor *t);
/* Pack the queue as the next unit, giving back everything since *mark (an ssl_arena_mark taken
 * before the unit's first allocation) but the n floats at `keep` (the unit's output, not queued),
 * which move to the mark: returns keep's new address; *mark is then the mark just before it, where
 * the next unit's pack starts. */
float *ssl_stash_pack(ssl_ctx *c, ssl_stash *s, size_t *mark, float *keep, size_t n);
/* Units packed so far in this forward: the index the next pack's unit gets. */
int ssl_stash_units(const ssl_stash *s);
/* In the backward: the copies of units `unit` on are read no more; give them back (when no other
 * stash pushed copies after them: then they wait for the step's end). */
void ssl_stash_drop(ssl_ctx *c, ssl_stash *s, int unit);
/* Between the layers of a backward: with bf16 storage on, everything allocated since `mark` (the
 * layer's temporaries and its output gradient) is given back but the gradient d, which moves to
 * the mark (ssl_ctx_release_keep); returns it there. With it off, d as it is: moving every
 * gradient would cost more time than the memory it frees. */
ssl_tensor ssl_stash_keep(ssl_ctx *c, const ssl_stash *s, size_t mark, ssl_tensor d);
/* Free the queue (a model instance's own; copies share nothing). */
void ssl_stash_free(ssl_stash *s);

#endif
