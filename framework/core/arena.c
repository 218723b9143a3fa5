/* Activation arena (see arena.h). */
#include "framework/core/arena.h"

#include "framework/core/check.h"

#include <string.h>

#define ARENA_ALIGN 64

void ssl_arena_init(ssl_arena *a, void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
    memset(a, 0, sizeof *a);
    a->alloc_fn = alloc_fn;
    a->free_fn = free_fn;
}

static void free_extra(ssl_arena *a)
{
    for (int i = 0; i < a->nextra; i++) a->free_fn(a->extra[i]);
    a->nextra = 0;
    a->overflow_bytes = 0;
}

void ssl_arena_free(ssl_arena *a)
{
    free_extra(a);
    ssl_free(a->extra);
    if (a->base) a->free_fn(a->base);
    memset(a, 0, sizeof *a);
}

void *ssl_arena_alloc(ssl_arena *a, size_t bytes)
{
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need == 0) need = ARENA_ALIGN;
    void *p;
    if (a->used + need <= a->cap) {
        p = a->base + a->used;
        a->used += need;
    } else {
        /* Sizing cycle: serve from a dedicated block; the next reset folds it into the base. */
        if (a->nextra == a->extra_cap) {
            int ncap = a->extra_cap ? 2 * a->extra_cap : 64;
            void **n = ssl_malloc((size_t)ncap * sizeof *n);
            if (a->nextra) memcpy(n, a->extra, (size_t)a->nextra * sizeof *n);
            ssl_free(a->extra);
            a->extra = n;
            a->extra_cap = ncap;
        }
        p = a->alloc_fn(need);
        a->extra[a->nextra++] = p;
        a->overflow_bytes += need;
    }
    if (a->used + a->overflow_bytes > a->peak) a->peak = a->used + a->overflow_bytes;
    return p;
}

float *ssl_arena_floats(ssl_arena *a, size_t n) { return ssl_arena_alloc(a, n * sizeof(float)); }

void ssl_arena_reset(ssl_arena *a)
{
    if (a->nextra) {
        free_extra(a);
        if (a->peak > a->cap) {
            if (a->base) a->free_fn(a->base);
            a->cap = a->peak;
            a->base = a->alloc_fn(a->cap);
        }
    }
    a->used = 0;
}
