/* Backend registry: the only place that knows which backends are compiled in. */
#include "framework/backend/backend.h"

#include <stdio.h>
#include <string.h>

#ifdef SSL_HAVE_CUDA
#include "framework/backend/cuda/cuda.h"

/* The trainer gets the CUDA table only when every op is filled in (a partial table would let a run
 * start and crash at its first convolution, or in a rarely used op hours in) AND the training loop
 * hands ops device memory only. Today the loop still touches tensors from the host in places (BN
 * running statistics, gradient averaging, eval features, checkpoint staging), so it stays 0 until
 * that is done; the cross-backend op test takes the table directly (ssl_backend_cuda()). */
#define SSL_CUDA_LOOP_DEVICE_CLEAN 0

static const ssl_backend *cuda_if_ready(void)
{
    const char *missing[8];
    int n = ssl_cuda_missing_ops(missing, 8);
    if (n > 0) {
        fprintf(stderr, "sslrun: the cuda backend is incomplete (%d ops missing:", n);
        for (int i = 0; i < n && i < 8; i++) fprintf(stderr, " %s", missing[i]);
        fprintf(stderr, "%s)\n", n > 8 ? " ..." : "");
        return NULL;
    }
    if (!SSL_CUDA_LOOP_DEVICE_CLEAN) {
        fprintf(stderr, "sslrun: the cuda backend's ops are complete, but the training loop does not run "
                        "on device memory yet (planned); use device.backend=cpu\n");
        return NULL;
    }
    return ssl_backend_cuda();
}
#endif

const ssl_backend *ssl_backend_get(const char *name)
{
    if (!name || strcmp(name, "cpu") == 0) return ssl_backend_cpu();
    if (strcmp(name, "devsim") == 0) return ssl_backend_devsim();
#ifdef SSL_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return cuda_if_ready();
#endif
    return NULL;
}
