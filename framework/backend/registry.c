/* Backend registry: the only place that knows which backends are compiled in. */
#include "framework/backend/backend.h"

#include <stdio.h>
#include <string.h>

#ifdef SSL_HAVE_CUDA
#include "framework/backend/cuda/cuda.h"

/* The CUDA table is handed out only once every op is filled in: a partial table would let a run
 * start and then crash at its first convolution (or, worse, in a rarely used op hours in). Until
 * then only the cross-backend op test, which checks op by op, takes it (ssl_backend_cuda()). */
static const ssl_backend *cuda_if_complete(void)
{
    const char *missing[8];
    int n = ssl_cuda_missing_ops(missing, 8);
    if (n == 0) return ssl_backend_cuda();
    fprintf(stderr, "sslrun: the cuda backend is incomplete (%d ops missing:", n);
    for (int i = 0; i < n && i < 8; i++) fprintf(stderr, " %s", missing[i]);
    fprintf(stderr, "%s)\n", n > 8 ? " ..." : "");
    return NULL;
}
#endif

const ssl_backend *ssl_backend_get(const char *name)
{
    if (!name || strcmp(name, "cpu") == 0) return ssl_backend_cpu();
#ifdef SSL_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return cuda_if_complete();
#endif
    return NULL;
}
