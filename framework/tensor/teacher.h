/* An EMA teacher (MoCo's key encoder, BYOL's target, DINO's teacher): a second flat parameter buffer
 * with the layout of the student's first `n` floats (encoder + projector are planned before any
 * predictor, so the teacher is a prefix), and its own BatchNorm buffers (the teacher's forward
 * passes update them). Run it with ssl_teacher_weights on the student's model instances; the EMA
 * over all of it is one axpby; its momentum schedule is ssl_sched_ema_momentum (optim/schedule.h). */
#ifndef SSL_TENSOR_TEACHER_H
#define SSL_TENSOR_TEACHER_H

#include "framework/layers/layer.h"

typedef struct {
    size_t n, nbuf; /* floats mirrored from the student's params / buffers */
    float *p, *buf; /* device */
    const struct ssl_backend *be;
} ssl_teacher;

/* Allocate a teacher for params[0, n) and buffers[0, nbuf) (zero-filled; ssl_teacher_copy fills it). */
void ssl_teacher_init(ssl_teacher *t, const ssl_params *params, size_t n, const ssl_params *buffers, size_t nbuf);
void ssl_teacher_free(ssl_teacher *t);
/* teacher := student (parameters and buffers of w): a fresh run's start. */
void ssl_teacher_copy(ssl_ctx *c, ssl_teacher *t, const ssl_weights *student);
/* teacher = m * teacher + (1 - m) * student over the parameters (buffers are the teacher's own).
 * Frozen segments stay equal to the student's up to rounding (both start equal and neither moves). */
void ssl_teacher_ema(ssl_ctx *c, ssl_teacher *t, const ssl_weights *student, float m);
/* Forward-only weights of the teacher (no gradient). */
ssl_weights ssl_teacher_weights(const ssl_teacher *t);

#endif
