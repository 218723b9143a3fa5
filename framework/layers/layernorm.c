/* Layer normalisation layer (see layernorm.h). */
#include "framework/layers/layernorm.h"

#include "framework/core/check.h"

void ssl_layernorm_init(ssl_layernorm *l, ssl_plan *pl, const char *name, int D, float eps)
{
    char n[112];
    *l = (ssl_layernorm){.D = D, .eps = eps};
    int64_t s[1] = {D};
    const unsigned fl = SSL_SEG_NO_WD | SSL_SEG_NO_ADAPT;
    ssl_layer_name(n, name, "weight");
    l->gamma = ssl_params_add(pl->params, n, 1, s, fl, SSL_INIT_ONE, 0);
    ssl_layer_name(n, name, "bias");
    l->beta = ssl_params_add(pl->params, n, 1, s, fl, SSL_INIT_ZERO, 0);
}

ssl_tensor ssl_layernorm_forward(ssl_ctx *c, ssl_layernorm *l, const ssl_weights *w, ssl_tensor x)
{
    SSL_ASSERT(x.shape[x.ndim - 1] == l->D);
    double t0 = ssl_prof_begin(c);
    int64_t rows = (int64_t)(ssl_tensor_numel(x) / (size_t)l->D);
    ssl_tensor y = x;
    y.data = ssl_arena_floats(&c->act, ssl_tensor_numel(x));
    l->mean = ssl_arena_floats(&c->act, (size_t)rows);
    l->rstd = ssl_arena_floats(&c->act, (size_t)rows);
    c->be->layernorm_fwd(c, rows, l->D, l->eps, x.data, w->p + l->gamma, w->p + l->beta, y.data,
                         l->mean, l->rstd);
    l->x = x;
    ssl_prof_end(c, SSL_PROF_LN_FWD, t0, 0);
    return y;
}

ssl_tensor ssl_layernorm_backward(ssl_ctx *c, ssl_layernorm *l, const ssl_weights *w, ssl_tensor dy)
{
    double t0 = ssl_prof_begin(c);
    int64_t rows = (int64_t)(ssl_tensor_numel(l->x) / (size_t)l->D);
    ssl_tensor dx = l->x;
    dx.data = ssl_arena_floats(&c->act, ssl_tensor_numel(dx));
    c->be->layernorm_bwd(c, rows, l->D, dy.data, l->x.data, w->p + l->gamma, l->mean, l->rstd,
                         dx.data, w->g ? w->g + l->gamma : NULL, w->g ? w->g + l->beta : NULL);
    ssl_prof_end(c, SSL_PROF_LN_BWD, t0, 0);
    return dx;
}
