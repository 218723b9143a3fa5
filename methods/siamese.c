/* Student / EMA-teacher pairs (see siamese.h). */
#include "methods/siamese.h"

#include "framework/comm/device.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"

int ssl_siamese_plan(ssl_siamese *s, ssl_model *encoder, ssl_plan *pl, const ssl_mlp_spec *proj,
                     const ssl_mlp_spec *pred, char *err, size_t errlen)
{
    if (ssl_mlp_init(&s->proj[0], pl, "projector", proj, err, errlen)) return -1;
    s->tn = pl->params->numel; /* the teacher: everything planned so far */
    s->tnbuf = pl->buffers->numel;
    if (ssl_mlp_init(&s->pred[0], pl, "predictor", pred, err, errlen)) return -1;
    s->proj[1] = s->tproj = s->proj[0];
    s->pred[1] = s->pred[0];
    ssl_model_instance(&s->enc2, encoder);
    ssl_model_instance(&s->tenc, encoder);
    s->enc[0] = encoder;
    s->enc[1] = &s->enc2;
    return 0;
}

void ssl_siamese_alloc(ssl_siamese *s, const ssl_params *params, const ssl_params *buffers)
{
    ssl_teacher_init(&s->teacher, params, s->tn, buffers, s->tnbuf);
}

void ssl_siamese_state(ssl_siamese *s, ssl_ckpt *ck)
{
    ssl_ckpt_add(ck, "teacher/params", s->teacher.p, s->teacher.n);
    ssl_ckpt_add(ck, "teacher/buffers", s->teacher.buf, s->teacher.nbuf);
}

void ssl_siamese_agree(ssl_siamese *s, ssl_ctx *c)
{
    if (!c->bn_comm && c->comm && c->comm->world > 1 && s->teacher.nbuf)
        ssl_dev_allreduce(c, c->comm, s->teacher.buf, s->teacher.nbuf, SSL_F32, SSL_AVG);
}

void ssl_siamese_start(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, int resumed)
{
    if (!resumed) ssl_teacher_copy(c, &s->teacher, w);
}

void ssl_siamese_free(ssl_siamese *s)
{
    ssl_teacher_free(&s->teacher);
    if (s->enc2.impl) ssl_model_free(&s->enc2);
    if (s->tenc.impl) ssl_model_free(&s->tenc);
}

void ssl_siamese_forward(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, ssl_tensor views, int N, ssl_siamese_out *o)
{
    SSL_ASSERTF(views.shape[0] == 2 * (int64_t)N, "expected 2 x %d views, got %lld", N, (long long)views.shape[0]);
    ssl_tensor x[2] = {views, views};
    x[0].shape[0] = x[1].shape[0] = N;
    x[1].data += ssl_tensor_numel(views) / 2;
    for (int i = 0; i < 2; i++) {
        o->z[i] = ssl_mlp_forward(c, &s->proj[i], w, s->enc[i]->forward(c, s->enc[i], w, x[i], 1), 1);
        o->q[i] = ssl_mlp_forward(c, &s->pred[i], w, o->z[i], 1);
    }
    /* one teacher instance serves both views: it runs no backward */
    ssl_weights tw = ssl_teacher_weights(&s->teacher);
    for (int i = 0; i < 2; i++)
        o->t[i] = ssl_mlp_forward(c, &s->tproj, &tw, s->tenc.forward(c, &s->tenc, &tw, x[i], 1), 1);
}

void ssl_siamese_backward(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, ssl_tensor dq[2])
{
    for (int i = 1; i >= 0; i--) {
        ssl_tensor d = ssl_mlp_backward(c, &s->pred[i], w, dq[i]);
        d = ssl_mlp_backward(c, &s->proj[i], w, d);
        s->enc[i]->backward(c, s->enc[i], w, d);
    }
}
