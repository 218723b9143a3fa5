/* The two-view student / EMA-teacher pair that BYOL and MoCo v3 share: an online encoder -> projector ->
 * predictor run on each view separately (BatchNorm per view, as both papers), and a teacher (encoder +
 * projector, an EMA of the online ones, a prefix of the parameter layout) run on each view without
 * gradient. View 2 runs through second instances (same weights, own saved state), so both views'
 * forwards precede both backwards. The methods differ only in their loss and momentum schedule. */
#ifndef SSL_METHODS_SIAMESE_H
#define SSL_METHODS_SIAMESE_H

#include "framework/tensor/teacher.h"
#include "methods/heads.h"
#include "methods/method.h"

typedef struct {
    ssl_model *enc[2];         /* the session's encoder; an instance of it for view 2 */
    ssl_model enc2, tenc;      /* view 2's instance; the teacher's */
    ssl_mlp proj[2], pred[2];  /* online heads, one instance per view */
    ssl_mlp tproj;             /* the teacher's projector instance */
    size_t tn, tnbuf;          /* the teacher mirrors params[0, tn), buffers[0, tnbuf) */
    ssl_teacher teacher;
} ssl_siamese;

/* Plan "projector" then "predictor" after the encoder. 0, or -1 with err. */
int ssl_siamese_plan(ssl_siamese *s, ssl_model *encoder, ssl_plan *pl, const ssl_mlp_spec *proj,
                     const ssl_mlp_spec *pred, char *err, size_t errlen);
void ssl_siamese_alloc(ssl_siamese *s, const ssl_params *params, const ssl_params *buffers);
/* teacher/params, teacher/buffers */
void ssl_siamese_state(ssl_siamese *s, ssl_ckpt *ck);
/* The teacher's BN statistics averaged over ranks when its BN ran per rank (c->bn_comm NULL). */
void ssl_siamese_agree(ssl_siamese *s, ssl_ctx *c);
/* A fresh run's teacher is a copy of the student. */
void ssl_siamese_start(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, int resumed);
void ssl_siamese_free(ssl_siamese *s);

typedef struct {
    ssl_tensor z[2]; /* online projections */
    ssl_tensor q[2]; /* online predictions */
    ssl_tensor t[2]; /* teacher projections (no gradient) */
} ssl_siamese_out;

/* Both views (view-major (2N, C, H, W)) through the online networks, then through the teacher. */
void ssl_siamese_forward(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, ssl_tensor views, int N, ssl_siamese_out *o);
/* d(loss)/d(q) of each view back through predictor, projector and encoder (gradients accumulate). */
void ssl_siamese_backward(ssl_siamese *s, ssl_ctx *c, const ssl_weights *w, ssl_tensor dq[2]);

#endif
