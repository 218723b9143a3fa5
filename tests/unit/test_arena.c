/* The activation arena's release_keep (memory by liveness): in the sizing cycle (extra blocks) and
 * in the sized one (one base block) the kept bytes arrive intact at the mark, what came after the
 * mark is given back (the next allocation reuses it), the high-water mark counts only what was
 * live, so the second cycle needs no extra block; a move that would overlap gives back nothing. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/arena.h"
#include "framework/core/check.h"

#include <string.h>

static void copy(void *user, void *dst, const void *src, size_t bytes)
{
    (*(int *)user)++;
    memcpy(dst, src, bytes);
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
    /* overlap: dx right above a small dy would land on itself: nothing given back */
    ssl_arena_reset(&a);
    size_t mark = ssl_arena_mark(&a);
    float *dy = ssl_arena_floats(&a, 16), *dx = ssl_arena_floats(&a, 64);
    const size_t top = ssl_arena_mark(&a);
    SSL_EXPECT(ssl_arena_release_keep(&a, mark, dx, 64 * sizeof(float), copy, &copies) == dx &&
                   ssl_arena_mark(&a) == top,
               "an overlapping move gave memory back");
    (void)dy;
    ssl_arena_free(&a);
    return ssl_test_exit();
}
