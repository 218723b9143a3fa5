/* CPU memory: host allocations, copies are memcpy, sync is a no-op; the per-context backend state
 * (convolution choice and oneDNN primitive cache) is created and freed here. */
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <dnnl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *ssl_cpu_alloc(size_t bytes) { return ssl_malloc(bytes); }
void ssl_cpu_free(void *p) { ssl_free(p); }
void ssl_cpu_upload(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void ssl_cpu_upload_async(ssl_ctx *c, void *dst, const void *src, size_t bytes)
{
    (void)c;
    memcpy(dst, src, bytes);
}
void ssl_cpu_download(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void ssl_cpu_sync(ssl_ctx *c) { (void)c; }

#if defined(__x86_64__) || defined(__i386__)
#include <pmmintrin.h> /* _MM_DENORMALS_ZERO_ON */
#include <xmmintrin.h>
static void flush_subnormals(void) { _mm_setcsr(_mm_getcsr() | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON); }
#elif defined(__aarch64__)
static void flush_subnormals(void) /* FPCR.FZ: inputs and results */
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1u << 24)));
}
#else
static void flush_subnormals(void) {}
#endif

/* Backend state: the convolution choice (SSL_CONV, read once here so a hot loop never calls getenv)
 * and the oneDNN primitive cache, created lazily by the first convolution (conv_dnnl.c). */
void ssl_cpu_ctx_init(ssl_ctx *c)
{
    /* A fixed mmap threshold: blocks of 1 MiB and more are mapped and go back to the system when
     * freed. glibc's default threshold rises to the size of each large block freed, after which
     * such blocks come from the heap and stay in it: the arena's first-step sizing blocks kept
     * ~1 GB resident for ResNet-50 at 224 px, batch 16, for the rest of the run. */
    static int threshold_set;
    if (!threshold_set) threshold_set = 1, mallopt(M_MMAP_THRESHOLD, 1 << 20);
    /* Subnormals flushed to zero (FTZ) and read as zero (DAZ) on every OpenMP thread, the calling one
     * included, so process-wide in effect: the state is per thread, the pool's threads persist (the
     * session sets the thread count before this) and threads started later inherit it.
     * x86 takes a microcode assist for each multiply with a subnormal operand or result: GELU's far
     * tail made a MAE decoder's weight-gradient GEMMs 7 ms -> 490 ms and the whole step 2.3x slower
     * (bench_step --method mae, Xeon). The cost is an error below FLT_MIN (1.2e-38) where one
     * arises; bf16 casts work on the bits and are unaffected (test_ref_bf16). */
#pragma omp parallel
    flush_subnormals();
    ssl_cpu_state *st = ssl_calloc(1, sizeof *st);
    const char *e = getenv("SSL_CONV");
    if (!e || !*e || strcmp(e, "auto") == 0) st->conv_algo = SSL_CPU_CONV_AUTO;
    else if (strcmp(e, "im2col") == 0) st->conv_algo = SSL_CPU_CONV_IM2COL;
    else if (strcmp(e, "dnnl") == 0 || strcmp(e, "dnnl_plain") == 0)
        st->conv_algo = SSL_CPU_CONV_DNNL_PLAIN;
    else if (strcmp(e, "dnnl_blocked") == 0) st->conv_algo = SSL_CPU_CONV_DNNL_BLOCKED;
    else SSL_ABORT("SSL_CONV='%s': expected auto, im2col, dnnl, dnnl_plain or dnnl_blocked", e);
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    st->avx512 = (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
    c->be_state = st;
}

void ssl_cpu_ctx_free(ssl_ctx *c)
{
    ssl_cpu_state *st = c->be_state;
    if (!st) return;
    if (st->conv) ssl_cpu_conv_cache_free(st->conv);
    ssl_free(st->mix);
    ssl_free(st);
    c->be_state = NULL;
}
