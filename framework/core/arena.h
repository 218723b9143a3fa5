/* Activation arena: a bump allocator reset at every step.
 * The first step sizes it (overflow goes to extra blocks); the next reset folds everything into one
 * block of the high-water size, so from the second step on a training step allocates nothing.
 * Memory comes from the backend allocator, so the same arena serves host and device memory. */
#ifndef SSL_CORE_ARENA_H
#define SSL_CORE_ARENA_H

#include <stddef.h>

typedef struct ssl_arena {
    void *(*alloc_fn)(size_t bytes); /* backend allocator */
    void (*free_fn)(void *p);
    char *base;                      /* main block */
    size_t cap, used;                /* bytes in / used of the main block */
    size_t overflow_bytes;           /* bytes handed out from extra blocks since the last reset */
    void **extra;                    /* extra blocks taken while sizing */
    int nextra, extra_cap;
    size_t peak;                     /* high-water mark of used + overflow_bytes */
} ssl_arena;

void ssl_arena_init(ssl_arena *a, void *(*alloc_fn)(size_t), void (*free_fn)(void *));
void ssl_arena_free(ssl_arena *a);
/* 64-byte aligned, uninitialised. */
void *ssl_arena_alloc(ssl_arena *a, size_t bytes);
float *ssl_arena_floats(ssl_arena *a, size_t n);
/* Forget all allocations; grow the main block to the high-water mark if the last cycle overflowed. */
void ssl_arena_reset(ssl_arena *a);

#endif
