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
/* The context's stream (a cudaStream_t), for code outside the .cu files: framework/comm/nccl.c. */
void *ssl_cuda_ctx_stream(ssl_ctx *c);
/* The NCCL device communicator over host's ranks (framework/comm/nccl.c), made collectively after
 * ssl_cuda_select_device; NULL on every rank, with the reason, when any rank fails. Only in a build
 * with NCCL (SSL_HAVE_NCCL), where it is the table's dev_comm_create. */
struct ssl_comm;
struct ssl_dev_comm *ssl_nccl_create(struct ssl_comm *host, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
