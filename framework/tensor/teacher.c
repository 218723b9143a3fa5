/* EMA teachers (see teacher.h). */
#include "framework/tensor/teacher.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"


void ssl_teacher_init(ssl_teacher *t, const ssl_params *params, size_t n, const ssl_params *buffers, size_t nbuf)
{
    SSL_ASSERTF(n <= params->numel && nbuf <= buffers->numel, "teacher prefix %zu/%zu exceeds %zu/%zu", n, nbuf,
                params->numel, buffers->numel);
    *t = (ssl_teacher){.n = n, .nbuf = nbuf, .be = params->be};
    t->p = t->be->alloc((n ? n : 1) * sizeof(float));
    t->buf = t->be->alloc((nbuf ? nbuf : 1) * sizeof(float));
}

void ssl_teacher_free(ssl_teacher *t)
{
    if (t->be) {
        t->be->free(t->p);
        t->be->free(t->buf);
    }
    *t = (ssl_teacher){0};
}

void ssl_teacher_copy(ssl_ctx *c, ssl_teacher *t, const ssl_weights *student)
{
    if (t->n) c->be->copy(c, t->p, student->p, t->n);
    if (t->nbuf) c->be->copy(c, t->buf, student->buf, t->nbuf);
}

void ssl_teacher_ema(ssl_ctx *c, ssl_teacher *t, const ssl_weights *student, float m)
{
    if (t->n) c->be->axpby(c, t->n, 1.0f - m, student->p, m, t->p);
}

ssl_weights ssl_teacher_weights(const ssl_teacher *t) { return (ssl_weights){t->p, NULL, t->buf}; }
