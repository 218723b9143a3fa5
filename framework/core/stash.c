/* Saved activations in bfloat16 between forward and backward (see stash.h). */
#include "framework/core/stash.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <string.h>

/* K_VIEW: an fp32 tensor kept as a bf16 view; K_VIEW16: a tensor that is bf16 already */
enum { K_F32, K_F64, K_I32, K_VIEW, K_VIEW16 };

static const size_t k_bytes[] = {4, 8, 4, 2, 2}; /* bytes per element of each kind's copy */

static size_t align64(size_t b) { return (b + 63) & ~(size_t)63; }

static void *get(const ssl_stash_ref *r)
{
    switch (r->kind) {
    case K_F64: return *(double **)r->ref;
    case K_I32: return *(int32_t **)r->ref;
    case K_VIEW:
    case K_VIEW16: return ((ssl_tensor *)r->ref)->data;
    default: return *(float **)r->ref;
    }
}

static void set(const ssl_stash_ref *r, void *p)
{
    switch (r->kind) {
    case K_F64: *(double **)r->ref = p; break;
    case K_I32: *(int32_t **)r->ref = p; break;
    case K_VIEW:
    case K_VIEW16:
        ((ssl_tensor *)r->ref)->bf16 = p;
        ((ssl_tensor *)r->ref)->dtype = SSL_T_BF16;
        break;
    default: *(float **)r->ref = p; break;
    }
}

/* Grow *arr (elements of `size` bytes) to hold one more; no allocation once it is large enough. */
static void *grow(void *arr, int n, int *cap, size_t size)
{
    if (n < *cap) return arr;
    int ncap = *cap ? 2 * *cap : 32;
    void *a = ssl_malloc((size_t)ncap * size);
    if (n) memcpy(a, arr, (size_t)n * size);
    ssl_free(arr);
    *cap = ncap;
    return a;
}

void ssl_stash_begin(ssl_stash *s, const ssl_ctx *c, int backward)
{
    s->on = c->precision_bf16 && !c->acts_fp32 && backward;
    s->release = !backward;
    s->nq = 0;
    s->nunits = 0;
    s->hi0 = ssl_arena_hi_mark(&c->act);
}

static void queue(ssl_stash *s, void *ref, int kind, size_t n)
{
    if (!s->on) return;
    s->q = grow(s->q, s->nq, &s->qcap, sizeof *s->q);
    s->q[s->nq++] = (ssl_stash_ref){ref, kind, n};
}

void ssl_stash_f32(ssl_stash *s, float **ref, size_t n) { queue(s, ref, K_F32, n); }
void ssl_stash_f64(ssl_stash *s, double **ref, size_t n) { queue(s, ref, K_F64, n); }
void ssl_stash_i32(ssl_stash *s, int32_t **ref, size_t n) { queue(s, ref, K_I32, n); }
void ssl_stash_view(ssl_stash *s, ssl_tensor *t)
{
    queue(s, t, t->dtype == SSL_T_BF16 ? K_VIEW16 : K_VIEW, ssl_tensor_numel(*t));
}

/* The first queued ref with the same pointer as ref i (i itself when it is the first). */
static int first_of(const ssl_stash *s, int i)
{
    const void *p = get(&s->q[i]);
    for (int j = 0; j < i; j++)
        if (get(&s->q[j]) == p) {
            SSL_ASSERTF(s->q[j].kind == s->q[i].kind && s->q[j].n == s->q[i].n,
                        "stash: one tensor queued with two sizes or kinds");
            return j;
        }
    return i;
}

float *ssl_stash_pack(ssl_ctx *c, ssl_stash *s, size_t *mark, float *keep, size_t n)
{
    if (!s->on && !s->release) return keep;
    const double t0 = ssl_prof_begin(c);
    /* Where each copy goes, relative to the copies' start; a ref sharing a pointer shares a copy. */
    size_t total = 0, at[64];
    int first[64];
    SSL_ASSERTF(s->nq <= 64, "stash: %d tensors queued in one unit (at most 64)", s->nq);
    for (int i = 0; i < s->nq; i++) {
        const int j = first[i] = first_of(s, i);
        if (j < i) {
            at[i] = at[j];
            continue;
        }
        at[i] = total;
        total += align64(s->q[i].n * k_bytes[s->q[i].kind]);
    }
    /* The copies go to the arena's other end, written where they stay; then everything the unit
     * allocated on this end is dead but its output, which moves down to the mark. */
    char *copies = total ? ssl_arena_hi_alloc(&c->act, total, s) : NULL;
    for (int i = 0; i < s->nq; i++) {
        if (first[i] < i) continue;
        const ssl_stash_ref *r = &s->q[i];
        if (r->kind == K_VIEW) c->be->cast_f32_bf16(c, (uint16_t *)(copies + at[i]), get(r), r->n);
        else /* whole floats: a bf16 tensor's allocation is rounded up to them (conv2d.c), a copy's to 64 bytes */
            c->be->copy(c, (float *)(copies + at[i]), get(r), (r->n * k_bytes[r->kind] + 3) / sizeof(float));
    }
    float *out = ssl_ctx_release_keep(c, *mark, keep, n); /* *mark: the output's place, the next unit's */
    for (int i = 0; i < s->nq; i++) set(&s->q[i], copies + at[i]);
    s->nq = 0;
    if (s->on) {
        s->ends = grow(s->ends, s->nunits, &s->ends_cap, sizeof *s->ends);
        s->ends[s->nunits++] = ssl_arena_hi_mark(&c->act);
    }
    ssl_prof_end(c, SSL_PROF_STORE, t0, 0);
    return out;
}

int ssl_stash_units(const ssl_stash *s) { return s->nunits; }

void ssl_stash_drop(ssl_ctx *c, ssl_stash *s, int unit)
{
    if (!s->on || unit >= s->nunits) return;
    ssl_arena_hi_release(&c->act, unit > 0 ? s->ends[unit - 1] : s->hi0, s);
    s->nunits = unit;
}

ssl_tensor ssl_stash_keep(ssl_ctx *c, const ssl_stash *s, size_t mark, ssl_tensor d)
{
    if (s->on) d.data = ssl_ctx_release_keep(c, mark, d.data, ssl_tensor_numel(d));
    return d;
}

void ssl_stash_free(ssl_stash *s)
{
    ssl_free(s->q);
    ssl_free(s->ends);
    memset(s, 0, sizeof *s);
}
