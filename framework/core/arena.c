/* Activation arena (see arena.h). */
#include "framework/core/arena.h"

#include "framework/core/check.h"

#include <string.h>

#define ARENA_ALIGN 64

static size_t aligned(size_t bytes)
{
    size_t need = (bytes + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    return need ? need : ARENA_ALIGN;
}

void ssl_arena_init(ssl_arena *a, void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
    memset(a, 0, sizeof *a);
    a->alloc_fn = alloc_fn;
    a->free_fn = free_fn;
}

/* Free the extra blocks from index `from` on. */
static void free_extra_from(ssl_arena *a, int from)
{
    for (int i = from; i < a->nextra; i++) {
        a->free_fn(a->extra[i]);
        a->overflow_bytes -= a->extra_bytes[i];
    }
    a->nextra = from < a->nextra ? from : a->nextra;
}

/* Free the other end's extra blocks and forget its allocations. */
static void hi_clear(ssl_arena *a)
{
    for (int i = 0; i < a->nhi; i++)
        if (a->hi[i].extra) a->free_fn(a->hi[i].p);
    a->nhi = 0;
    a->hi_used = a->hi_top = 0;
}

static int hi_extra(const ssl_arena *a)
{
    for (int i = 0; i < a->nhi; i++)
        if (a->hi[i].extra) return 1;
    return 0;
}

void ssl_arena_free(ssl_arena *a)
{
    hi_clear(a);
    ssl_free(a->hi);
    free_extra_from(a, 0);
    ssl_free(a->extra);
    ssl_free(a->extra_at);
    ssl_free(a->extra_bytes);
    if (a->base) a->free_fn(a->base);
    memset(a, 0, sizeof *a);
}

static void push_extra(ssl_arena *a, void *p, size_t at, size_t bytes)
{
    if (a->nextra == a->extra_cap) {
        int ncap = a->extra_cap ? 2 * a->extra_cap : 64;
        void **n = ssl_malloc((size_t)ncap * sizeof *n);
        size_t *at2 = ssl_malloc((size_t)ncap * sizeof *at2), *b2 = ssl_malloc((size_t)ncap * sizeof *b2);
        if (a->nextra) {
            memcpy(n, a->extra, (size_t)a->nextra * sizeof *n);
            memcpy(at2, a->extra_at, (size_t)a->nextra * sizeof *at2);
            memcpy(b2, a->extra_bytes, (size_t)a->nextra * sizeof *b2);
        }
        ssl_free(a->extra), ssl_free(a->extra_at), ssl_free(a->extra_bytes);
        a->extra = n, a->extra_at = at2, a->extra_bytes = b2;
        a->extra_cap = ncap;
    }
    a->extra[a->nextra] = p;
    a->extra_at[a->nextra] = at;
    a->extra_bytes[a->nextra++] = bytes;
    a->overflow_bytes += bytes;
}

/* the high-water mark counts both ends */
static void note_peak(ssl_arena *a)
{
    if (a->top + a->hi_top > a->peak) a->peak = a->top + a->hi_top;
}

static void grew(ssl_arena *a, size_t need)
{
    a->top += need;
    note_peak(a);
}

void *ssl_arena_alloc(ssl_arena *a, size_t bytes)
{
    size_t need = aligned(bytes);
    void *p;
    if (a->used + a->hi_used + need <= a->cap) {
        p = a->base + a->used;
        a->used += need;
    } else {
        /* Sizing cycle: serve from a dedicated block; the next reset folds it into the base. */
        p = a->alloc_fn(need);
        push_extra(a, p, a->top, need);
    }
    grew(a, need);
    return p;
}

float *ssl_arena_floats(ssl_arena *a, size_t n) { return ssl_arena_alloc(a, n * sizeof(float)); }

void ssl_arena_reset(ssl_arena *a)
{
    const int overflowed = a->nextra || hi_extra(a);
    hi_clear(a);
    if (overflowed) {
        free_extra_from(a, 0);
        if (a->peak > a->cap) {
            if (a->base) a->free_fn(a->base);
            a->cap = a->peak;
            a->base = a->alloc_fn(a->cap);
        }
    }
    a->used = 0;
    a->top = 0;
}

size_t ssl_arena_mark(const ssl_arena *a) { return a->top; }

void ssl_arena_release(ssl_arena *a, size_t mark)
{
    SSL_ASSERT(mark <= a->top);
    if (!a->nextra || a->extra_at[a->nextra - 1] < mark) {
        a->used -= a->top - mark; /* all of it in the base, as in release_keep */
        a->top = mark;
        return;
    }
    /* Sizing cycle: the blocks taken since the mark are freed (base allocations stay until the reset). */
    int from = a->nextra;
    while (from > 0 && a->extra_at[from - 1] >= mark) from--;
    free_extra_from(a, from);
    a->top = mark;
}

void *ssl_arena_release_keep(ssl_arena *a, size_t mark, void *keep, size_t bytes,
                             void (*copy)(void *user, void *dst, const void *src, size_t bytes), void *user)
{
    SSL_ASSERT(mark <= a->top);
    const size_t need = aligned(bytes);
    if (!a->nextra || a->extra_at[a->nextra - 1] < mark) {
        /* Everything since the mark is in the base, where the step's sequence and the block agree
         * (no extra block since the mark): move keep down to base + (the mark's base offset). */
        const size_t freed = a->top - mark, start = a->used - freed;
        char *dst = a->base + start, *src = keep;
        if (src == dst) {
        } else if (src > dst && src + need <= a->base + a->used) {
            copy(user, dst, src, bytes); /* may overlap: the sizing cycle moved it too */
        } else {
            return keep; /* keep is not above the mark: give back nothing */
        }
        a->used = start + need;
        a->top = mark + need;
        return dst;
    }
    /* Sizing cycle: keep goes to a block of its own at the mark's place in the sequence, and the
     * blocks taken since the mark are freed (base allocations since the mark stay until the reset). */
    void *p = a->alloc_fn(need);
    copy(user, p, keep, bytes);
    int from = a->nextra;
    while (from > 0 && a->extra_at[from - 1] >= mark) from--;
    free_extra_from(a, from);
    a->top = mark;
    push_extra(a, p, a->top, need);
    grew(a, need);
    return p;
}

void *ssl_arena_hi_alloc(ssl_arena *a, size_t bytes, const void *owner)
{
    const size_t need = aligned(bytes);
    if (a->nhi == a->hi_cap) {
        const int ncap = a->hi_cap ? 2 * a->hi_cap : 64;
        ssl_arena_hi *n = ssl_malloc((size_t)ncap * sizeof *n);
        if (a->nhi) memcpy(n, a->hi, (size_t)a->nhi * sizeof *n);
        ssl_free(a->hi);
        a->hi = n, a->hi_cap = ncap;
    }
    ssl_arena_hi *h = &a->hi[a->nhi++];
    *h = (ssl_arena_hi){NULL, need, owner, 0};
    if (a->used + a->hi_used + need <= a->cap) {
        a->hi_used += need;
        h->p = a->base + a->cap - a->hi_used;
    } else { /* sizing cycle, as ssl_arena_alloc */
        h->p = a->alloc_fn(need);
        h->extra = 1;
    }
    a->hi_top += need;
    note_peak(a);
    return h->p;
}

size_t ssl_arena_hi_mark(const ssl_arena *a) { return a->hi_top; }

void ssl_arena_hi_release(ssl_arena *a, size_t mark, const void *owner)
{
    while (a->nhi && a->hi_top > mark && a->hi[a->nhi - 1].owner == owner) {
        ssl_arena_hi *h = &a->hi[--a->nhi];
        if (h->extra) {
            a->free_fn(h->p);
        } else {
            if (a->poison) memset(h->p, 0xFF, h->bytes);
            a->hi_used -= h->bytes;
        }
        a->hi_top -= h->bytes;
    }
}
