/* The CPU backend runs its threads with subnormals flushed (FTZ) and read as zero (DAZ): a GEMM fed
 * GELU's far tail (or products of tiny values) otherwise takes a microcode assist per multiply on
 * x86, which measured a MAE step 2.3x slower (benchmarks/bench_step --method mae). Checked on every
 * OpenMP thread after the context exists, and through the backend's GEMM itself. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <float.h>
#include <omp.h>
#include <string.h>

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The operands, read from memory on every thread at run time (no constant folding) */
static volatile float probe_min = FLT_MIN, probe_half = 0.5f, probe_sub;

int main(void)
{
#if !defined(__x86_64__) && !defined(__i386__) && !defined(__aarch64__)
    printf("no flush of subnormals on this architecture: skipping\n");
    return 77;
#endif
    probe_sub = from_bits(1u); /* the smallest subnormal */
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    const int want = omp_get_max_threads();
    int ftz = 0, daz = 0, gemm_ftz = 0, gemm_daz = 0, seen = 0;
    /* each thread checks itself, and the GEMM run on it (oneDNN's sgemm runs sequentially inside a
     * parallel region): FLT_MIN x 0.5, and a subnormal times 2^100 */
#pragma omp parallel reduction(+ : ftz, daz, gemm_ftz, gemm_daz, seen)
    {
        const float min = probe_min, half = probe_half, sub = probe_sub;
        volatile float r = min * half; /* subnormal result: 0 under FTZ */
        volatile float s = sub + min;  /* FLT_MIN + 1 ulp normally; FLT_MIN when sub reads as 0 (DAZ) */
        ftz += r == 0.0f;
        daz += s == FLT_MIN;
        float a[2] = {FLT_MIN, from_bits(8u)}, b[2] = {0.5f, 0x1p100f}, out[2] = {1, 1};
        c.be->gemm(&c, 0, 0, 1, 1, 1, 1.0f, a, 1, b, 1, 0.0f, out, 1);
        c.be->gemm(&c, 0, 0, 1, 1, 1, 1.0f, a + 1, 1, b + 1, 1, 0.0f, out + 1, 1);
        gemm_ftz += out[0] == 0.0f;
        gemm_daz += out[1] == 0.0f;
        seen++;
    }
    SSL_EXPECT(seen == want, "%d of %d threads ran", seen, want);
    SSL_EXPECT(ftz == seen, "%d of %d threads flush subnormal results to zero", ftz, seen);
    SSL_EXPECT(daz == seen, "%d of %d threads read subnormal operands as zero", daz, seen);
    SSL_EXPECT(gemm_ftz == seen, "gemm: FLT_MIN * 0.5 is 0 (FTZ) on %d of %d threads", gemm_ftz, seen);
    SSL_EXPECT(gemm_daz == seen, "gemm: a subnormal times 2^100 is 0 (DAZ) on %d of %d threads", gemm_daz, seen);
    printf("%d threads: subnormal results flushed, subnormal operands read as zero, in the GEMM too\n", seen);
    ssl_ctx_free(&c);
    return ssl_test_exit();
}
