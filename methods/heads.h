/* MLP heads as the SSL papers build them (projectors, predictors, DINO's head trunk), planned into
 * the shared parameter buffer with torch nn.Sequential names ("projector.0.weight", ...: the module
 * index counts every Linear, BatchNorm and activation), so exported heads load into torch.
 *   hidden layer:  Linear(bias?) [-> BN(affine)] -> act
 *   last layer:    Linear(last_bias?) [-> BN(affine or not)]
 * An ssl_mlp is a plain struct with no pointers it owns: a struct copy is a second instance (same
 * offsets, its own saved state), so a head can run on two views before either backward. */
#ifndef SSL_METHODS_HEADS_H
#define SSL_METHODS_HEADS_H

#include "framework/layers/batchnorm.h"
#include "framework/layers/linear.h"

#define SSL_MLP_MAX 8

typedef enum { SSL_ACT_RELU, SSL_ACT_GELU } ssl_act;
typedef enum { SSL_LAST_BN_NONE, SSL_LAST_BN_PLAIN, SSL_LAST_BN_AFFINE } ssl_last_bn;

typedef struct {
    int layers;       /* linear layers, 1..SSL_MLP_MAX */
    int in, hidden, out;
    int bias;         /* hidden linears carry a bias */
    int last_bias;    /* the last linear carries a bias */
    int bn;           /* BatchNorm (affine) after each hidden linear */
    ssl_last_bn last_bn;
    ssl_act act;      /* after each hidden layer */
    float trunc_std;  /* > 0: weights trunc_normal(std), biases 0 (DINO's _init_weights); 0: torch's default */
} ssl_mlp_spec;

typedef struct {
    ssl_mlp_spec spec;
    ssl_linear lin[SSL_MLP_MAX];
    ssl_batchnorm bn[SSL_MLP_MAX]; /* used where has_bn */
    int has_bn[SSL_MLP_MAX];
    ssl_tensor act_in[SSL_MLP_MAX]; /* saved for the unfused activation's backward */
    ssl_tensor act_out[SSL_MLP_MAX];
    int seg0, seg1; /* its parameter segments: backward reports them done (ssl_ctx_grads_done) */
} ssl_mlp;

/* Plan an MLP named `name` ("projector"); returns 0, or -1 with err for a spec out of range. */
int ssl_mlp_init(ssl_mlp *h, ssl_plan *pl, const char *name, const ssl_mlp_spec *spec, char *err, size_t errlen);
/* x (rows, in) -> (rows, out); train selects BN batch statistics. */
ssl_tensor ssl_mlp_forward(ssl_ctx *c, ssl_mlp *h, const ssl_weights *w, ssl_tensor x, int train);
/* Accumulates parameter gradients into w->g; returns d(input) (dy may be overwritten). */
ssl_tensor ssl_mlp_backward(ssl_ctx *c, ssl_mlp *h, const ssl_weights *w, ssl_tensor dy);

/* L2-normalised rows of x (N, D) into the arena; the norms (N) too when norm is not NULL (for the
 * backward, c->be->l2norm_bwd). */
ssl_tensor ssl_normalized(ssl_ctx *c, ssl_tensor x, float **norm);

#endif
