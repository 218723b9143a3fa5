/* The activation arena's release_keep (memory by liveness): in the sizing cycle (extra blocks) and
 * in the sized one (one base block) the kept bytes arrive intact at the mark, what came after the
 * mark is given back (the next allocation reuses it), the high-water mark counts only what was
 * live, so the second cycle needs no extra block; an overlapping move lands intact. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/arena.h"
#include "framework/core/check.h"

#include <string.h>

static void copy(void *user, void *dst, const void *src, size_t bytes)
{
    (*(int *)user)++;
    memmove(dst, src, bytes);
}

/* One "backward": below the mark a live buffer; above it dy, an intermediate and dx; keep dx. */
static void cycle(ssl_arena *a, int sized, int *copies)
{
    float *live = ssl_arena_floats(a, 100);
    for (int i = 0; i < 100; i++) live[i] = (float)i;
    size_t mark = ssl_arena_mark(a);
    float *dy = ssl_arena_floats(a, 1000), *mid = ssl_arena_floats(a, 3000), *dx = ssl_arena_floats(a, 500);
    memset(dy, 0, 1000 * sizeof *dy), memset(mid, 0, 3000 * sizeof *mid);
    for (int i = 0; i < 500; i++) dx[i] = 0.5f * (float)i;
    const int c0 = *copies;
    float *kept = ssl_arena_release_keep(a, mark, dx, 500 * sizeof(float), copy, copies);
    SSL_EXPECT(*copies == c0 + 1, "cycle %d: the kept bytes were not moved", sized);
    int ok = 1;
    for (int i = 0; i < 500; i++) ok &= kept[i] == 0.5f * (float)i;
    SSL_EXPECT(ok, "cycle %d: kept bytes changed", sized);
    SSL_EXPECT(ssl_arena_mark(a) == mark + 2048, "cycle %d: top %zu, want mark + 2048 (2000 B, 64-aligned)", sized,
               ssl_arena_mark(a));
    if (sized) {
        SSL_EXPECT(kept == (float *)(a->base + 448), "sized cycle: kept not at the mark's place");
        float *next = ssl_arena_floats(a, 16);
        SSL_EXPECT(next == kept + 512, "sized cycle: the next allocation does not reuse what was given back");
        SSL_EXPECT(a->nextra == 0, "sized cycle: %d extra blocks", a->nextra);
    }
    for (int i = 0; i < 100; i++) ok &= live[i] == (float)i;
    SSL_EXPECT(ok, "cycle %d: the buffer below the mark changed", sized);
}

/* The other end: two owners push (sizing cycle: blocks of their own), the high-water mark counts both
 * ends together, so the sized cycle takes everything from the base: the other end from its top down,
 * the first from its bottom up, never meeting. A pop stops at another owner's allocation; what is
 * popped is given back to both ends (poisoned when asked). */
static void hi_cycle(ssl_arena *a, int sized)
{
    const int A = 1, B = 2;
    float *lo = ssl_arena_floats(a, 1000);
    const size_t h0 = ssl_arena_hi_mark(a);
    char *a1 = ssl_arena_hi_alloc(a, 3000, &A);
    const size_t h1 = ssl_arena_hi_mark(a);
    char *a2 = ssl_arena_hi_alloc(a, 100, &A);
    char *b1 = ssl_arena_hi_alloc(a, 500, &B);
    memset(a1, 1, 3000), memset(a2, 2, 100), memset(b1, 3, 500);
    SSL_EXPECT(ssl_arena_hi_mark(a) == 3008 + 128 + 512, "hi mark %zu", ssl_arena_hi_mark(a));
    float *lo2 = ssl_arena_floats(a, 2000); /* the most live at once: 4032 + 8000 + 3648 */
    SSL_EXPECT(a->peak == 4032 + 8000 + 3648, "cycle %d: peak %zu, want both ends' sum", sized, a->peak);
    if (sized) {
        SSL_EXPECT(a1 == a->base + a->cap - 3008 && a2 == a1 - 128 && b1 == a2 - 512 && a->nhi == 3 &&
                       (char *)lo2 + 8000 == b1 && (char *)lo == a->base,
                   "sized cycle: the ends are not packed against each other in the base");
    }
    ssl_arena_hi_release(a, h1, &A); /* B's on top: nothing moves */
    SSL_EXPECT(ssl_arena_hi_mark(a) == 3008 + 128 + 512, "a pop went past another owner's allocation");
    ssl_arena_hi_release(a, h1, &B); /* B's popped, then A's a2 is not B's */
    SSL_EXPECT(ssl_arena_hi_mark(a) == 3008 + 128, "B's pop: hi mark %zu", ssl_arena_hi_mark(a));
    if (sized) SSL_EXPECT((unsigned char)b1[7] == 0xFF, "the popped bytes were not poisoned");
    ssl_arena_hi_release(a, h1, &A);
    SSL_EXPECT(ssl_arena_hi_mark(a) == h1 && a1[2999] == 1, "A's pop to its mark: hi mark %zu", ssl_arena_hi_mark(a));
    if (sized) { /* what was popped is room for the first end again */
        float *more = ssl_arena_floats(a, 128);
        SSL_EXPECT((char *)more == (char *)lo2 + 8000, "sized cycle: the first end does not reuse the room");
    }
    ssl_arena_hi_release(a, h0, &A);
    SSL_EXPECT(ssl_arena_hi_mark(a) == 0 && a->nhi == 0, "all popped: hi mark %zu", ssl_arena_hi_mark(a));
}

static void hi_end(void)
{
    ssl_arena a;
    ssl_arena_init(&a, ssl_malloc, ssl_free);
    a.poison = 1;
    hi_cycle(&a, 0);
    ssl_arena_reset(&a);
    SSL_EXPECT(a.cap == 4032 + 8000 + 3648 && a.nextra == 0 && a.nhi == 0, "reset: cap %zu", a.cap);
    const size_t n = ssl_alloc_count();
    hi_cycle(&a, 1);
    SSL_EXPECT(ssl_alloc_count() == n, "the sized cycle allocated %zu times", ssl_alloc_count() - n);
    SSL_EXPECT(a.nextra == 0, "sized cycle: %d extra blocks", a.nextra);
    ssl_arena_free(&a);
}

int main(void)
{
    ssl_arena a;
    ssl_arena_init(&a, ssl_malloc, ssl_free);
    int copies = 0;
    cycle(&a, 0, &copies);
    /* live + dy + mid + dx (each rounded up to 64 B) was the most live at once */
    SSL_EXPECT(a.peak == 448 + 4032 + 12032 + 2048, "peak %zu", a.peak);
    ssl_arena_reset(&a);
    SSL_EXPECT(a.cap == a.peak && a.nextra == 0, "reset: cap %zu, %d extra blocks", a.cap, a.nextra);
    cycle(&a, 1, &copies);
    /* overlap: dx right above a small dy moves onto itself, bytes intact (the copy allows it), as the
     * sizing cycle would have moved it */
    ssl_arena_reset(&a);
    size_t mark = ssl_arena_mark(&a);
    float *dy = ssl_arena_floats(&a, 16), *dx = ssl_arena_floats(&a, 64);
    for (int i = 0; i < 64; i++) dx[i] = (float)i;
    float *moved = ssl_arena_release_keep(&a, mark, dx, 64 * sizeof(float), copy, &copies);
    int same = moved == dy && ssl_arena_mark(&a) == mark + 256;
    for (int i = 0; i < 64; i++) same &= moved[i] == (float)i;
    SSL_EXPECT(same, "an overlapping move did not land at the mark intact");

    /* release gives everything back to the mark, extra blocks since it included */
    ssl_arena_release(&a, mark);
    SSL_EXPECT(ssl_arena_mark(&a) == mark && ssl_arena_floats(&a, 1) == dy,
               "release: the next allocation is not at the mark");
    ssl_arena_release(&a, mark);
    float *big = ssl_arena_floats(&a, 100000); /* overflow: an extra block */
    SSL_EXPECT(a.nextra == 1, "overflow: %d extra blocks", a.nextra);
    ssl_arena_release(&a, mark);
    SSL_EXPECT(a.nextra == 0 && ssl_arena_mark(&a) == mark, "release: the extra block since the mark was kept");
    (void)big;
    ssl_arena_free(&a);
    hi_end();
    return ssl_test_exit();
}
