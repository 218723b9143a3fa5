/* bfloat16 casts against PyTorch (fixture from make_fixtures_bf16.py): every fp32 input's bf16
 * rounding (ties to even, subnormals, overflow to inf, signed zeros, inf) equals torch's
 * x.to(torch.bfloat16) bit for bit, and the way back is exact. NaN stays NaN: torch's own patterns
 * differ by code path (its vectorised CPU kernel gives 0xFFFF, its scalar conversion 0x7FC0), so only
 * NaN-ness is compared there, and ours is the scalar path's 0x7FC0 on every backend. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/backend/backend.h"
#include "framework/core/ctx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

int main(void)
{
    ssl_fixture *f = ssl_fixture_load("bf16.bin");
    if (!f) return 1;
    size_t n = 0, ny = 0;
    const float *x = ssl_fixture_get(f, "x", &n), *want = ssl_fixture_get(f, "y", &ny);
    SSL_EXPECT(n == ny && n > 10000, "fixture sizes %zu / %zu", n, ny);
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    uint16_t *h = malloc(n * sizeof *h);
    float *back = malloc(n * sizeof *back);
    c.be->cast_f32_bf16(&c, h, x, n);
    c.be->cast_bf16_f32(&c, back, h, n);
    size_t bad = 0, nan = 0, ties = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = bits_of(x[i]);
        if ((u & 0xFFFFu) == 0x8000u) ties++;
        if (isnan(x[i])) {
            nan++;
            SSL_EXPECT(h[i] == 0x7FC0 && isnan(back[i]), "[%zu] NaN 0x%08x -> 0x%04x", i, u, h[i]);
            continue;
        }
        if (bits_of(back[i]) != bits_of(want[i]) || h[i] != bits_of(want[i]) >> 16) {
            if (bad++ < 5)
                fprintf(stderr, "FAIL [%zu] 0x%08x: ours 0x%04x, torch 0x%04x\n", i, u, h[i], bits_of(want[i]) >> 16);
        }
    }
    SSL_EXPECT(!bad, "%zu of %zu values round differently from torch", bad, n);
    SSL_EXPECT(nan > 0 && ties > 100, "fixture lacks NaN (%zu) or ties (%zu)", nan, ties);
    printf("bf16: %zu values (%zu exact ties, %zu NaN) equal torch's rounding, %zu differ\n", n, ties, nan, bad);
    free(h), free(back);
    ssl_ctx_free(&c);
    ssl_fixture_free(f);
    return ssl_test_exit();
}
