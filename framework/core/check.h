/* Always-on invariant checks and checked allocation.
 * SSL_ASSERT / SSL_ABORT stay on in release builds: a wrong shape must stop the run with file:line,
 * not corrupt a week of training. The abort hook lets the MPI layer turn a local failure into
 * MPI_Abort so that no rank is left hanging. */
#ifndef SSL_CORE_CHECK_H
#define SSL_CORE_CHECK_H

#include <stddef.h>

#if defined(__GNUC__)
#define SSL_NORETURN __attribute__((noreturn))
#define SSL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SSL_NORETURN
#define SSL_PRINTF(a, b)
#endif

/* Print "sslrun: file:line: message" and terminate through the abort hook (default: abort()). */
SSL_NORETURN void ssl_abort_at(const char *file, int line, const char *fmt, ...) SSL_PRINTF(3, 4);

/* printf into a caller's error buffer (err may be NULL or errlen 0: nothing is written). */
void ssl_seterr(char *err, size_t errlen, const char *fmt, ...) SSL_PRINTF(3, 4);

/* Installed by the comm layer once MPI is up; called after the message is printed. */
typedef void (*ssl_abort_hook)(void);
void ssl_set_abort_hook(ssl_abort_hook hook);
/* Text put before every error message of this process ("rank 3: " in multi-rank jobs). */
void ssl_set_message_prefix(const char *prefix);
const char *ssl_message_prefix(void);

#define SSL_ABORT(...) ssl_abort_at(__FILE__, __LINE__, __VA_ARGS__)
#define SSL_ASSERT(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) ssl_abort_at(__FILE__, __LINE__, "assertion failed: %s", #cond);         \
    } while (0)
#define SSL_ASSERTF(cond, ...)                                                                 \
    do {                                                                                       \
        if (!(cond)) ssl_abort_at(__FILE__, __LINE__, __VA_ARGS__);                           \
    } while (0)

/* malloc/calloc that abort with the requested size instead of returning NULL. Memory is 64-byte
 * aligned (one cache line, one AVX-512 vector) and released with ssl_free. */
void *ssl_malloc(size_t bytes);
void *ssl_calloc(size_t count, size_t size);
void ssl_free(void *p);

/* Number of ssl_malloc/ssl_calloc calls so far: tests use it to prove a step allocates nothing. */
size_t ssl_alloc_count(void);

#endif
