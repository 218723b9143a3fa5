/* Clocks: monotonic seconds for durations, Unix time for timestamps in logs. */
#ifndef SSL_CORE_TIMER_H
#define SSL_CORE_TIMER_H

#include <time.h>

static inline double ssl_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Seconds since the Unix epoch (metrics.jsonl "time": lines up with scheduler logs). */
static inline double ssl_wall_time(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
