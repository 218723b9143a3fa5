/* CPU memory: host allocations, copies are memcpy, sync is a no-op. */
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <string.h>

void *ssl_cpu_alloc(size_t bytes) { return ssl_malloc(bytes); }
void ssl_cpu_free(void *p) { ssl_free(p); }
void ssl_cpu_upload(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void ssl_cpu_download(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void ssl_cpu_sync(ssl_ctx *c) { (void)c; }
void ssl_cpu_ctx_init(ssl_ctx *c) { c->be_state = NULL; }
void ssl_cpu_ctx_free(ssl_ctx *c) { (void)c; }
