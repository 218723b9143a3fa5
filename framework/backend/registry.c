/* Backend registry: the only place that knows which backends are compiled in. */
#include "framework/backend/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SSL_HAVE_CUDA
#include "framework/backend/cuda/cuda.h"

/* The trainer gets the CUDA table only when every op is filled in (a partial table would let a run
 * start and crash at its first convolution, or in a rarely used op hours in). The loop is
 * device-clean (test_devsim, test_devsim_mpi prove it on the devsim backend), but the CUDA ops have
 * not yet been compared with the CPU's on a GPU (test_backend_ops cpu cuda): until they have, a run
 * takes them only when asked to with SSL_CUDA_UNVERIFIED=1 (benchmarks/gpu_check.sh does). The
 * cross-backend op test takes the table directly (ssl_backend_cuda()). */
static const ssl_backend *cuda_if_ready(char *why, size_t len)
{
    const char *missing[8];
    int n = ssl_cuda_missing_ops(missing, 8);
    if (n > 0) {
        int k = snprintf(why, len, "the cuda backend is incomplete (%d ops missing:", n);
        for (int i = 0; i < n && i < 8 && k > 0 && (size_t)k < len; i++)
            k += snprintf(why + k, len - (size_t)k, " %s", missing[i]);
        if (k > 0 && (size_t)k < len) snprintf(why + k, len - (size_t)k, "%s)", n > 8 ? " ..." : "");
        return NULL;
    }
    const char *e = getenv("SSL_CUDA_UNVERIFIED");
    if (!e || strcmp(e, "1") != 0) {
        snprintf(why, len, "the cuda backend has not been verified on a GPU yet (planned: its op-by-op comparison with "
                 "the CPU); SSL_CUDA_UNVERIFIED=1 takes it anyway, else use device.backend=cpu");
        return NULL;
    }
    if (ssl_cuda_device_count() == 0) {
        snprintf(why, len, "no CUDA device is visible to this process (driver, CUDA_VISIBLE_DEVICES?)");
        return NULL;
    }
    return ssl_backend_cuda();
}
#endif

const ssl_backend *ssl_backend_lookup(const char *name, char *why, size_t len)
{
    if (!name || strcmp(name, "cpu") == 0) return ssl_backend_cpu();
    if (strcmp(name, "devsim") == 0) return ssl_backend_devsim();
#ifdef SSL_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return cuda_if_ready(why, len);
#else
    if (strcmp(name, "cuda") == 0) {
        snprintf(why, len, "this sslrun was built without CUDA (the CUDA toolkit, cuDNN and -DSSL_WITH_CUDA=ON at "
                 "configure time)");
        return NULL;
    }
#endif
    snprintf(why, len, "no backend of that name (cpu, cuda, devsim)");
    return NULL;
}

const ssl_backend *ssl_backend_get(const char *name)
{
    char why[512];
    const ssl_backend *be = ssl_backend_lookup(name, why, sizeof why);
    if (!be) fprintf(stderr, "sslrun: backend '%s': %s\n", name, why);
    return be;
}
