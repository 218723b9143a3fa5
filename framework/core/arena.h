/* Activation arena: a two-ended bump allocator reset at every step.
 * The first step sizes it (overflow goes to extra blocks); the next reset folds everything into one
 * block of the high-water size, so from the second step on a training step allocates nothing.
 * Memory comes from the backend allocator, so the same arena serves host and device memory.
 * Backward passes give back what is dead (ssl_arena_release_keep): the high-water size counts
 * what is live, not everything a step ever allocated.
 * The block's other end holds the saved activations (core/stash.h), pushed unit by unit as a forward
 * goes and popped as its backward is done with them: other tensors (a method's gradients for a
 * second backward, a teacher's outputs) lie on the first end above the ones that died, so one end
 * could not give those back. The high-water size counts both ends together. */
#ifndef SSL_CORE_ARENA_H
#define SSL_CORE_ARENA_H

#include <stddef.h>

typedef struct {
    void *p;
    size_t bytes;
    const void *owner; /* who may pop it (ssl_arena_hi_release) */
    int extra;         /* a block of its own (sizing cycle) */
} ssl_arena_hi;

typedef struct ssl_arena {
    void *(*alloc_fn)(size_t bytes); /* backend allocator */
    void (*free_fn)(void *p);
    char *base;                      /* main block */
    size_t cap, used;                /* bytes in / used of the main block */
    size_t overflow_bytes;           /* bytes held in extra blocks */
    void **extra;                    /* extra blocks taken while sizing, in allocation order */
    size_t *extra_at, *extra_bytes;  /* each one's place in the step's allocation sequence, size */
    int nextra, extra_cap;
    size_t top;                      /* bytes live in this step (the allocation sequence's end) */
    size_t peak;                     /* high-water mark of top + hi_top */
    size_t hi_used, hi_top;          /* the other end: bytes used at the base's end; bytes live */
    ssl_arena_hi *hi;                /* its allocations, oldest first */
    int nhi, hi_cap;
    int poison;                      /* tests: fill what the other end gives back with NaN (host memory) */
} ssl_arena;

void ssl_arena_init(ssl_arena *a, void *(*alloc_fn)(size_t), void (*free_fn)(void *));
void ssl_arena_free(ssl_arena *a);
/* 64-byte aligned, uninitialised. */
void *ssl_arena_alloc(ssl_arena *a, size_t bytes);
float *ssl_arena_floats(ssl_arena *a, size_t n);
/* Forget all allocations; grow the main block to the high-water mark if the last cycle overflowed. */
void ssl_arena_reset(ssl_arena *a);

/* The current end of the allocation sequence, for ssl_arena_release_keep. */
size_t ssl_arena_mark(const ssl_arena *a);
/* Give back everything allocated since `mark` (its users are done with it). */
void ssl_arena_release(ssl_arena *a, size_t mark);
/* Give back everything allocated since `mark` except the `bytes` at `keep`, which move to the mark:
 * copy(user, dst, src, bytes) moves them (a backend copy: the arena may hold device memory; dst is
 * below src and the two may overlap). Returns keep's new address, or keep itself with nothing given
 * back when keep is not above the mark. Only for allocations whose users are done with them (a
 * backward block's intermediates). The sizing cycle and the sized one give back the same bytes, so
 * the sized arena holds every later step. */
void *ssl_arena_release_keep(ssl_arena *a, size_t mark, void *keep, size_t bytes,
                             void (*copy)(void *user, void *dst, const void *src, size_t bytes), void *user);

/* The other end: `bytes` (64-byte aligned) pushed for `owner`, below what it holds; an extra block
 * of its own when the two ends would meet (the sizing cycle). */
void *ssl_arena_hi_alloc(ssl_arena *a, size_t bytes, const void *owner);
/* Bytes live at the other end, for ssl_arena_hi_release. */
size_t ssl_arena_hi_mark(const ssl_arena *a);
/* Pop what the other end took since `mark`, as long as the newest belongs to `owner`: another
 * owner's allocation on top (a forward whose backward has not run yet) stops it, and what lies below
 * waits for the reset. */
void ssl_arena_hi_release(ssl_arena *a, size_t mark, const void *owner);

#endif
