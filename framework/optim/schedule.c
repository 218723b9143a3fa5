/* Learning-rate, weight-decay and EMA-momentum schedules (see schedule.h). Host-only arithmetic in
 * double so that the per-step values are identical on every rank and every backend. */
#include "framework/optim/schedule.h"

#include "framework/core/check.h"

#include <math.h>

/* M_PI is not in ISO C (the build defines _POSIX_C_SOURCE only). */
#define PI 3.14159265358979323846

double ssl_sched_cosine(double start, double end, double t, double T)
{
    SSL_ASSERTF(T > 0.0, "cosine schedule length must be > 0 (got %g)", T);
    if (t <= 0.0) return start;
    if (t >= T) return end;
    return end + 0.5 * (start - end) * (1.0 + cos(PI * t / T));
}

double ssl_sched_lr(const ssl_sched_lr_config *s, int64_t step)
{
    SSL_ASSERTF(s->warmup_steps >= 0 && s->total_steps > s->warmup_steps,
                "lr schedule needs 0 <= warmup (%lld) < total (%lld)", (long long)s->warmup_steps,
                (long long)s->total_steps);
    if (step < 0) step = 0;
    if (step < s->warmup_steps) return s->base * (double)step / (double)s->warmup_steps;
    return ssl_sched_cosine(s->base, s->final_value, (double)(step - s->warmup_steps),
                            (double)(s->total_steps - s->warmup_steps));
}

double ssl_sched_wd(double wd_start, double wd_end, int64_t step, int64_t total)
{
    return ssl_sched_cosine(wd_start, wd_end, (double)step, (double)total);
}

double ssl_sched_ema_momentum(double m0, double t, double T)
{
    SSL_ASSERTF(T > 0.0, "EMA schedule length must be > 0 (got %g)", T);
    if (t >= T) return 1.0;
    if (t < 0.0) t = 0.0;
    /* Written as BYOL's schedules.py writes it: the small quantity 1 - m0 is what decays. */
    return 1.0 - (1.0 - m0) * (cos(PI * t / T) + 1.0) * 0.5;
}

double ssl_sched_lr_scale_linear(double base, int64_t batch)
{
    SSL_ASSERT(batch > 0);
    return base * (double)batch / 256.0;
}

double ssl_sched_lr_scale_sqrt(double base, int64_t batch)
{
    SSL_ASSERT(batch > 0);
    return base * sqrt((double)batch);
}
