/* Always-on checks, abort hook and counted, aligned allocation. */
#include "framework/core/check.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ssl_abort_hook abort_hook;
static atomic_size_t alloc_count;
static char prefix[32];

void ssl_set_abort_hook(ssl_abort_hook hook) { abort_hook = hook; }
void ssl_set_message_prefix(const char *p) { snprintf(prefix, sizeof prefix, "%s", p ? p : ""); }
const char *ssl_message_prefix(void) { return prefix; }

void ssl_abort_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sslrun: %s%s:%d: ", prefix, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (abort_hook) abort_hook();
    abort();
}

void *ssl_malloc(size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    if (posix_memalign(&p, 64, rounded) != 0 || !p)
        SSL_ABORT("out of memory allocating %zu bytes", bytes);
    atomic_fetch_add(&alloc_count, 1);
    return p;
}

void *ssl_calloc(size_t count, size_t size)
{
    if (size && count > (size_t)-1 / size) SSL_ABORT("allocation overflow: %zu x %zu", count, size);
    void *p = ssl_malloc(count * size);
    memset(p, 0, count * size);
    return p;
}

void ssl_free(void *p) { free(p); }

size_t ssl_alloc_count(void) { return atomic_load(&alloc_count); }

void ssl_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
