/* Backend registry: the only place that knows which backends are compiled in. */
#include "framework/backend/backend.h"

#include <string.h>

#ifdef SSL_HAVE_CUDA
const ssl_backend *ssl_backend_cuda(void);
#endif

const ssl_backend *ssl_backend_get(const char *name)
{
    if (!name || strcmp(name, "cpu") == 0) return ssl_backend_cpu();
#ifdef SSL_HAVE_CUDA
    if (strcmp(name, "cuda") == 0) return ssl_backend_cuda();
#endif
    return NULL;
}
