/* CUDA backend: the C-visible entry points (the op table itself is reached through
 * ssl_backend_cuda()). Defined in the .cu files here, which are C++, hence the C linkage. */
#ifndef SSL_BACKEND_CUDA_CUDA_H
#define SSL_BACKEND_CUDA_CUDA_H

#include "framework/backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA op table, complete or not: registry.c hands it out only when ssl_cuda_missing_ops() is 0,
 * so the trainer cannot run on a partial table; the cross-backend op test takes it directly. */
const ssl_backend *ssl_backend_cuda(void);
/* Number of NULL ops in the table; their names go to names[0 .. min(count, max)) (names may be NULL). */
int ssl_cuda_missing_ops(const char **names, int max);
/* CUDA devices visible to this process; 0 when there is none or the driver is unusable (tests skip). */
int ssl_cuda_device_count(void);
/* cudaSetDevice for this process's later contexts (before any of them is made). */
void ssl_cuda_select_device(int index);

#ifdef __cplusplus
}
#endif

#endif
