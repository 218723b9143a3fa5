/* Flat parameter storage with a segment table (see params.h). */
#include "framework/tensor/params.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/core/rng.h"

#include <stdio.h>
#include <string.h>

#define SEG_ALIGN 16 /* floats: every segment starts on a 64-byte boundary */

void ssl_params_init(ssl_params *p) { memset(p, 0, sizeof *p); }

void ssl_params_free(ssl_params *p)
{
    if (p->be) {
        if (p->data) p->be->free(p->data);
        if (p->grad) p->be->free(p->grad);
    }
    ssl_free(p->seg);
    memset(p, 0, sizeof *p);
}

size_t ssl_params_add(ssl_params *p, const char *name, int ndim, const int64_t *shape,
                      unsigned flags, ssl_init_kind init, float init_a)
{
    SSL_ASSERTF(!p->data, "ssl_params_add(%s) after ssl_params_alloc", name);
    SSL_ASSERT(ndim >= 1 && ndim <= 4);
    SSL_ASSERTF(ssl_params_find(p, name) < 0, "duplicate parameter name %s", name);
    if (p->nseg == p->cap) {
        int ncap = p->cap ? 2 * p->cap : 64;
        ssl_segment *n = ssl_calloc((size_t)ncap, sizeof *n);
        if (p->nseg) memcpy(n, p->seg, (size_t)p->nseg * sizeof *n);
        ssl_free(p->seg);
        p->seg = n;
        p->cap = ncap;
    }
    ssl_segment *s = &p->seg[p->nseg++];
    memset(s, 0, sizeof *s);
    SSL_ASSERTF(strlen(name) < sizeof s->name, "parameter name too long: %s", name);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->n = 1;
    for (int i = 0; i < ndim; i++) {
        SSL_ASSERTF(shape[i] > 0, "parameter %s has non-positive dim %d", name, i);
        s->shape[i] = shape[i];
        s->n *= (size_t)shape[i];
    }
    s->flags = flags;
    s->init = init;
    s->init_a = init_a;
    s->off = p->numel;
    p->numel += (s->n + SEG_ALIGN - 1) / SEG_ALIGN * SEG_ALIGN;
    p->count += s->n;
    return s->off;
}

int ssl_params_find(const ssl_params *p, const char *name)
{
    for (int i = 0; i < p->nseg; i++)
        if (strcmp(p->seg[i].name, name) == 0) return i;
    return -1;
}

void ssl_params_alloc(ssl_params *p, const ssl_backend *be, int with_grad)
{
    SSL_ASSERT(!p->data);
    p->be = be;
    size_t bytes = (p->numel ? p->numel : SEG_ALIGN) * sizeof(float);
    p->data = be->alloc(bytes);
    if (with_grad) p->grad = be->alloc(bytes);
    /* Zero through a host buffer: padding must be zero so flat norms and all-reduces are exact. */
    float *zero = ssl_calloc(bytes / sizeof(float), sizeof(float));
    be->upload(p->data, zero, bytes);
    if (with_grad) be->upload(p->grad, zero, bytes);
    ssl_free(zero);
}

void ssl_params_init_values(ssl_params *p, uint64_t seed)
{
    SSL_ASSERT(p->data);
    size_t maxn = 0;
    for (int i = 0; i < p->nseg; i++)
        if (p->seg[i].n > maxn) maxn = p->seg[i].n;
    float *h = ssl_malloc((maxn ? maxn : 1) * sizeof(float));
    for (int i = 0; i < p->nseg; i++) {
        const ssl_segment *s = &p->seg[i];
        ssl_rng r;
        /* Keyed by segment index: adding a head does not change the encoder's initial values. */
        ssl_rng_init(&r, seed, (uint64_t)i);
        switch (s->init) {
        case SSL_INIT_ZERO: memset(h, 0, s->n * sizeof(float)); break;
        case SSL_INIT_ONE:
            for (size_t j = 0; j < s->n; j++) h[j] = 1.0f;
            break;
        case SSL_INIT_UNIFORM: ssl_rng_fill_uniform(&r, h, s->n, -s->init_a, s->init_a); break;
        case SSL_INIT_NORMAL: ssl_rng_fill_normal(&r, h, s->n, 0.0f, s->init_a); break;
        case SSL_INIT_TRUNC_NORMAL: ssl_rng_fill_trunc_normal(&r, h, s->n, s->init_a); break;
        case SSL_INIT_CONST_DATA:
            SSL_ASSERTF(s->init_data, "parameter %s has no init data", s->name);
            memcpy(h, s->init_data, s->n * sizeof(float));
            break;
        }
        p->be->upload(p->data + s->off, h, s->n * sizeof(float));
    }
    ssl_free(h);
}

void ssl_params_zero_grad(ssl_ctx *c, ssl_params *p)
{
    SSL_ASSERT(p->grad);
    c->be->fill(c, p->grad, p->numel, 0.0f);
}
