/* The process-wide HDF5 lock (see h5lock.h). This is the one deliberate static in io/: it guards a
 * library whose own state is already a process global, so there is nothing per-object to hang it
 * on. pthread_once makes a recursive mutex, which has no POSIX static initialiser. */
#include "io/h5lock.h"

#include "framework/core/check.h"

#include <pthread.h>

static pthread_once_t h5_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t h5_mutex;

static void h5_lock_init(void)
{
    pthread_mutexattr_t a;
    SSL_ASSERT(pthread_mutexattr_init(&a) == 0);
    SSL_ASSERT(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE) == 0);
    SSL_ASSERT(pthread_mutex_init(&h5_mutex, &a) == 0);
    SSL_ASSERT(pthread_mutexattr_destroy(&a) == 0);
}

void ssl_h5_lock(void)
{
    SSL_ASSERT(pthread_once(&h5_once, h5_lock_init) == 0);
    SSL_ASSERT(pthread_mutex_lock(&h5_mutex) == 0);
}

void ssl_h5_unlock(void) { SSL_ASSERT(pthread_mutex_unlock(&h5_mutex) == 0); }
