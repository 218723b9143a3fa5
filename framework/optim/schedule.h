/* Per-step hyper-parameter schedules: linear-warmup + cosine learning rate, DINO's cosine weight
 * decay, the BYOL / MoCo v3 / DINO EMA-momentum ramp to 1, and batch-size learning-rate scaling.
 * Pure host arithmetic in double; the training loop evaluates them every step and passes the
 * values to ssl_optim_step and the EMA update. */
#ifndef SSL_OPTIM_SCHEDULE_H
#define SSL_OPTIM_SCHEDULE_H

#include <stdint.h>

/* Linear warmup from 0, then half-cosine from base to final_value (REFERENCE §1.11, §2.6, §4.6):
 *   step <  warmup:          base * step / warmup            (step is 0-based, NOT step + 1)
 *   warmup <= step < total:  final + 0.5 (base - final) (1 + cos(pi p)),
 *                            p = (step - warmup) / (total - warmup)
 *   step >= total:           final
 * The first update therefore runs at lr 0, as in MoCo v3, MAE, SimCLR and BYOL (their schedules are
 * evaluated at the 0-based iteration / fractional epoch before the update); the curve is
 * continuous at step == warmup, where it equals base. DINO's linspace warmup differs only in
 * reaching base one step earlier. */
typedef struct {
    double base;          /* peak value, reached at step == warmup_steps (the scaled lr) */
    double final_value;   /* value at total_steps (min_lr; 0 in MoCo v3, SimCLR, BYOL) */
    int64_t warmup_steps; /* >= 0 */
    int64_t total_steps;  /* > warmup_steps */
} ssl_sched_lr_config;

double ssl_sched_lr(const ssl_sched_lr_config *s, int64_t step);

/* Half-cosine from start (t = 0) to end (t >= T): end + 0.5 (start - end) (1 + cos(pi t / T)),
 * DINO's cosine_scheduler without warmup. t may be fractional; t is clamped to [0, T]. */
double ssl_sched_cosine(double start, double end, double t, double T);

/* DINO's weight-decay schedule: cosine from wd_start (0.04) to wd_end (0.4) over total steps. */
double ssl_sched_wd(double wd_start, double wd_end, int64_t step, int64_t total);

/* EMA (teacher / momentum-encoder) momentum rising from m0 to 1 (BYOL §3.3, MoCo v3 §2.6):
 * m(t) = 1 - (1 - m0) (cos(pi t / T) + 1) / 2. t and T in the same unit: steps (BYOL, DINO) or
 * fractional epochs (MoCo v3, updated every iteration). Clamped to 1 for t >= T. */
double ssl_sched_ema_momentum(double m0, double t, double T);

/* Learning-rate scaling with the global batch size (REFERENCE §1.11):
 * linear: base * batch / 256 (MoCo, BYOL, DINO, MAE); sqrt: base * sqrt(batch) (SimCLR small B). */
double ssl_sched_lr_scale_linear(double base, int64_t batch);
double ssl_sched_lr_scale_sqrt(double base, int64_t batch);

#endif
