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

    /* release gives everything back to the mark; count (a stand-in held outside) raises the peak, so
     * the next sized cycle fits it (fits: in the base block, room left) */
    ssl_arena_release(&a, mark);
    SSL_EXPECT(ssl_arena_mark(&a) == mark && ssl_arena_floats(&a, 1) == dy, "release: the next allocation is not at the mark");
    ssl_arena_release(&a, mark);
    SSL_EXPECT(ssl_arena_fits(&a, mark, a.cap) && !ssl_arena_fits(&a, mark, a.cap + 64), "fits: the base block's room");
    const size_t peak = a.peak;
    ssl_arena_count(&a, a.cap + 4096);
    SSL_EXPECT(a.peak == a.cap + 4096 && a.peak > peak, "count: peak %zu, want %zu", a.peak, a.cap + 4096);
    float *big = ssl_arena_floats(&a, 100000); /* overflow: an extra block */
    SSL_EXPECT(!ssl_arena_fits(&a, mark, 0), "fits: true with an extra block since the mark");
    ssl_arena_release(&a, mark);
    SSL_EXPECT(a.nextra == 0 && ssl_arena_mark(&a) == mark, "release: the extra block since the mark was kept");
    (void)big;
    ssl_arena_free(&a);
    return ssl_test_exit();
}
