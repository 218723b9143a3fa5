/* CPU convolution through oneDNN primitives (the library PyTorch's CPU convolutions use).
 * Creating a primitive costs milliseconds, so each (shape, direction, layout) is created once and
 * cached in the context's backend state with its reorders, memory objects and a shared scratch
 * arena: after the first step a convolution allocates and creates nothing. */
#include "framework/backend/cpu/cpu.h"
#include "framework/core/check.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdio.h>
#include <string.h>

/* Every oneDNN call: fn(args) must succeed; the message names the call and the conv shape. */
#define DNNL_CHECK(fn, args, s)                                                                \
    do {                                                                                       \
        dnnl_status_t st_ = fn args;                                                           \
        SSL_ASSERTF(st_ == dnnl_success,                                                       \
                    "%s failed (%s) for conv N=%d C=%d H=%d W=%d K=%d R=%d stride=%d pad=%d", \
                    #fn, dnnl_status2str(st_), (s)->N, (s)->C, (s)->H, (s)->W, (s)->K, (s)->R, \
                    (s)->stride, (s)->pad);                                                    \
    } while (0)

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2 };

/* One tensor argument of a convolution: the caller's plain tensor and, when the primitive wants
 * another layout, a buffer in that layout (in the arena) with the reorder between the two. */
typedef struct {
    int dnnl_arg;              /* DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, ... */
    dnnl_memory_t user;        /* plain NCHW / OIHW; handle set per call */
    dnnl_memory_t prim;        /* primitive layout; NULL when the primitive uses user directly */
    dnnl_primitive_t reorder;  /* user -> prim (inputs), prim -> user (output; += for dw) */
    dnnl_memory_t reorder_scratch;
    size_t off;                /* of the prim buffer in the arena */
    int relayout;              /* the primitive's layout differs from the plain one */
} conv_arg;

typedef struct {
    ssl_conv_shape s;          /* key: shape, direction, layout mode */
    int dir, blocked;
    dnnl_primitive_desc_t hint; /* forward pd the backward pds were created against */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratch;     /* the primitive's scratchpad, at arena offset 0 */
    conv_arg arg[3];           /* two inputs, then the output */
    size_t arena_bytes;        /* this entry's arena need */
    char impl[96];
} conv_entry;

struct ssl_cpu_conv_cache {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    conv_entry **e;
    int n, cap;
    void *arena;               /* scratchpads and reorder buffers; convs run one at a time */
    size_t arena_bytes;
};

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static struct ssl_cpu_conv_cache *cache_get(ssl_ctx *c, const ssl_conv_shape *s)
{
    ssl_cpu_state *st = c->be_state;
    SSL_ASSERTF(st, "CPU backend state missing (ssl_cpu_ctx_init not run)");
    if (!st->conv) {
        struct ssl_cpu_conv_cache *cc = ssl_calloc(1, sizeof *cc);
        DNNL_CHECK(dnnl_engine_create, (&cc->eng, dnnl_cpu, 0), s);
        DNNL_CHECK(dnnl_stream_create, (&cc->strm, cc->eng, dnnl_stream_default_flags), s);
        st->conv = cc;
    }
    return st->conv;
}

static void md_plain(dnnl_memory_desc_t *md, int a, int b, int h, int w, dnnl_format_tag_t tag,
                     const ssl_conv_shape *s)
{
    dnnl_dims_t d = {a, b, h, w};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag, (md, 4, d, dnnl_f32, tag), s);
}

static dnnl_primitive_attr_t attr_user_scratchpad(const ssl_conv_shape *s)
{
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create, (&attr), s);
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode, (attr, dnnl_scratchpad_mode_user), s);
    return attr;
}

/* Scratchpad memory object of pd (NULL when it needs none); its size goes into *bytes. */
static dnnl_memory_t scratch_mem(struct ssl_cpu_conv_cache *cc, const_dnnl_primitive_desc_t pd,
                                 size_t *bytes, const ssl_conv_shape *s)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t n = md ? dnnl_memory_desc_get_size(md) : 0;
    if (n == 0) return NULL;
    if (n > *bytes) *bytes = n;
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create, (&m, md, cc->eng, DNNL_MEMORY_NONE), s);
    return m;
}

/* Set up argument a: user memory of plain layout `user_md`; the primitive wants `want`. An output
 * reorder of the filter gradient adds into the user tensor (sum post-op: dw += ...). */
static void arg_init(struct ssl_cpu_conv_cache *cc, conv_entry *e, conv_arg *a, int dnnl_arg,
                     const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *want,
                     int is_output, int accumulate, size_t *scratch_bytes, size_t *arena_end)
{
    const ssl_conv_shape *s = &e->s;
    a->dnnl_arg = dnnl_arg;
    DNNL_CHECK(dnnl_memory_create, (&a->user, user_md, cc->eng, DNNL_MEMORY_NONE), s);
    a->relayout = !dnnl_memory_desc_equal(user_md, want);
    if (!a->relayout && !accumulate) return;
    DNNL_CHECK(dnnl_memory_create, (&a->prim, want, cc->eng, DNNL_MEMORY_NONE), s);
    a->off = *arena_end;
    *arena_end += align64(dnnl_memory_desc_get_size(want));
    dnnl_primitive_attr_t attr = attr_user_scratchpad(s);
    if (accumulate) {
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create, (&po), s);
        DNNL_CHECK(dnnl_post_ops_append_sum, (po, 1.0f), s);
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops, (attr, po), s);
        DNNL_CHECK(dnnl_post_ops_destroy, (po), s);
    }
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = is_output ? want : user_md, *to = is_output ? user_md : want;
    DNNL_CHECK(dnnl_reorder_primitive_desc_create, (&rpd, from, cc->eng, to, cc->eng, attr), s);
    DNNL_CHECK(dnnl_primitive_attr_destroy, (attr), s);
    DNNL_CHECK(dnnl_primitive_create, (&a->reorder, rpd), s);
    a->reorder_scratch = scratch_mem(cc, rpd, scratch_bytes, s);
    DNNL_CHECK(dnnl_primitive_desc_destroy, (rpd), s);
}

static conv_entry *entry_create(struct ssl_cpu_conv_cache *cc, const ssl_conv_shape *s, int dir,
                                int blocked)
{
    conv_entry *e = ssl_calloc(1, sizeof *e);
    e->s = *s;
    e->dir = dir;
    e->blocked = blocked;

    /* The caller's tensors, and what the primitive is offered: the same plain layouts, or "any" so
     * it picks its native blocked layout (nChw8c / OIhw8i8o on AVX2). */
    dnnl_memory_desc_t x_md, w_md, y_md, xa, wa, ya;
    md_plain(&x_md, s->N, s->C, s->H, s->W, dnnl_nchw, s);
    md_plain(&w_md, s->K, s->C, s->R, s->R, dnnl_oihw, s);
    md_plain(&y_md, s->N, s->K, s->P, s->Q, dnnl_nchw, s);
    dnnl_format_tag_t any = dnnl_format_tag_any;
    md_plain(&xa, s->N, s->C, s->H, s->W, blocked ? any : dnnl_nchw, s);
    md_plain(&wa, s->K, s->C, s->R, s->R, blocked ? any : dnnl_oihw, s);
    md_plain(&ya, s->N, s->K, s->P, s->Q, blocked ? any : dnnl_nchw, s);

    /* Symmetric padding as PyTorch passes it (pad_r = pad_l even where a stride leaves the last
     * padded row unused): oneDNN takes the floor output size, and no pad is ever negative. */
    dnnl_dims_t strides = {s->stride, s->stride}, pl = {s->pad, s->pad}, pr = {s->pad, s->pad};

    dnnl_convolution_desc_t fd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init,
               (&fd, dnnl_forward_training, dnnl_convolution_direct, &xa, &wa, NULL, &ya, strides,
                pl, pr), s);
    dnnl_primitive_attr_t attr = attr_user_scratchpad(s);
    if (dir == DIR_FWD) {
        DNNL_CHECK(dnnl_primitive_desc_create, (&e->pd, &fd, attr, cc->eng, NULL), s);
    } else {
        DNNL_CHECK(dnnl_primitive_desc_create, (&e->hint, &fd, NULL, cc->eng, NULL), s);
        dnnl_convolution_desc_t bd;
        if (dir == DIR_BWD_DATA)
            DNNL_CHECK(dnnl_convolution_backward_data_desc_init,
                       (&bd, dnnl_convolution_direct, &xa, &wa, &ya, strides, pl, pr), s);
        else
            DNNL_CHECK(dnnl_convolution_backward_weights_desc_init,
                       (&bd, dnnl_convolution_direct, &xa, &wa, NULL, &ya, strides, pl, pr), s);
        DNNL_CHECK(dnnl_primitive_desc_create, (&e->pd, &bd, attr, cc->eng, e->hint), s);
    }
    DNNL_CHECK(dnnl_primitive_attr_destroy, (attr), s);
    DNNL_CHECK(dnnl_primitive_create, (&e->prim, e->pd), s);

    size_t scratch_bytes = 0, end;
    e->scratch = scratch_mem(cc, e->pd, &scratch_bytes, s);
    /* Arguments in arena order after the scratch region, whose final size (the largest of the
     * conv's and the reorders' scratchpads: they run one after another) is known only at the end,
     * so the buffers are laid out from 0 and shifted below. */
    end = 0;
#define ARG(i, darg, umd, query, is_out, acc)                                                 \
    arg_init(cc, e, &e->arg[i], darg, umd, dnnl_primitive_desc_query_md(e->pd, query, 0), is_out, \
             acc, &scratch_bytes, &end)
    if (dir == DIR_FWD) {
        ARG(0, DNNL_ARG_SRC, &x_md, dnnl_query_src_md, 0, 0);
        ARG(1, DNNL_ARG_WEIGHTS, &w_md, dnnl_query_weights_md, 0, 0);
        ARG(2, DNNL_ARG_DST, &y_md, dnnl_query_dst_md, 1, 0);
    } else if (dir == DIR_BWD_DATA) {
        ARG(0, DNNL_ARG_DIFF_DST, &y_md, dnnl_query_diff_dst_md, 0, 0);
        ARG(1, DNNL_ARG_WEIGHTS, &w_md, dnnl_query_weights_md, 0, 0);
        ARG(2, DNNL_ARG_DIFF_SRC, &x_md, dnnl_query_diff_src_md, 1, 0);
    } else {
        /* Backward weights overwrites its output; dw += comes from a reorder with a sum post-op
         * out of an arena buffer (one extra pass over dw, small next to the convolution). */
        ARG(0, DNNL_ARG_DIFF_DST, &y_md, dnnl_query_diff_dst_md, 0, 0);
        ARG(1, DNNL_ARG_SRC, &x_md, dnnl_query_src_md, 0, 0);
        ARG(2, DNNL_ARG_DIFF_WEIGHTS, &w_md, dnnl_query_diff_weights_md, 1, 1);
    }
#undef ARG
    size_t sb = align64(scratch_bytes);
    for (int i = 0; i < 3; i++)
        if (e->arg[i].prim) e->arg[i].off += sb;
    e->arena_bytes = sb + end;

    const char *name = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query, (e->pd, dnnl_query_impl_info_str, 0, (void *)&name), s);
    int len = snprintf(e->impl, sizeof e->impl, "%s", name ? name : "?");
    static const char *const argname[3][3] = {
        {"x", "w", "y"}, {"dy", "w", "dx"}, {"dy", "x", "dw"}};
    for (int i = 0; i < 3 && len < (int)sizeof e->impl; i++)
        if (e->arg[i].relayout)
            len += snprintf(e->impl + len, sizeof e->impl - (size_t)len, " +reorder(%s)",
                            argname[dir][i]);
    return e;
}

static void entry_free(conv_entry *e)
{
    const ssl_conv_shape *s = &e->s;
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        if (a->reorder) DNNL_CHECK(dnnl_primitive_destroy, (a->reorder), s);
        if (a->reorder_scratch) DNNL_CHECK(dnnl_memory_destroy, (a->reorder_scratch), s);
        if (a->prim) DNNL_CHECK(dnnl_memory_destroy, (a->prim), s);
        if (a->user) DNNL_CHECK(dnnl_memory_destroy, (a->user), s);
    }
    if (e->scratch) DNNL_CHECK(dnnl_memory_destroy, (e->scratch), s);
    DNNL_CHECK(dnnl_primitive_destroy, (e->prim), s);
    DNNL_CHECK(dnnl_primitive_desc_destroy, (e->pd), s);
    if (e->hint) DNNL_CHECK(dnnl_primitive_desc_destroy, (e->hint), s);
    ssl_free(e);
}

void ssl_cpu_conv_cache_free(struct ssl_cpu_conv_cache *cc)
{
    static const ssl_conv_shape none = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < cc->n; i++) entry_free(cc->e[i]);
    ssl_free(cc->e);
    ssl_free(cc->arena);
    DNNL_CHECK(dnnl_stream_destroy, (cc->strm), &none);
    DNNL_CHECK(dnnl_engine_destroy, (cc->eng), &none);
    ssl_free(cc);
}

static int shape_eq(const ssl_conv_shape *a, const ssl_conv_shape *b)
{
    return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->K == b->K &&
           a->R == b->R && a->stride == b->stride && a->pad == b->pad && a->P == b->P &&
           a->Q == b->Q;
}

/* The cached entry, created on first use. A network has a few dozen (shape, direction) pairs, so a
 * linear scan costs nanoseconds next to a convolution. */
static conv_entry *entry_get(ssl_ctx *c, const ssl_conv_shape *s, int dir, int blocked)
{
    struct ssl_cpu_conv_cache *cc = cache_get(c, s);
    for (int i = 0; i < cc->n; i++) {
        conv_entry *e = cc->e[i];
        if (e->dir == dir && e->blocked == blocked && shape_eq(&e->s, s)) {
            if (i > 0) { /* move to front: the next lookup of the same layer is immediate */
                cc->e[i] = cc->e[i - 1];
                cc->e[i - 1] = e;
            }
            return e;
        }
    }
    conv_entry *e = entry_create(cc, s, dir, blocked);
    if (cc->n == cc->cap) {
        int cap = cc->cap ? 2 * cc->cap : 32;
        conv_entry **ne = ssl_malloc((size_t)cap * sizeof *ne);
        if (cc->n) memcpy(ne, cc->e, (size_t)cc->n * sizeof *ne);
        ssl_free(cc->e);
        cc->e = ne;
        cc->cap = cap;
    }
    cc->e[cc->n++] = e;
    if (e->arena_bytes > cc->arena_bytes) {
        ssl_free(cc->arena);
        cc->arena = ssl_malloc(e->arena_bytes);
        cc->arena_bytes = e->arena_bytes;
    }
    return e;
}

static void set_handle(dnnl_memory_t m, void *p, const ssl_conv_shape *s)
{
    if (m) DNNL_CHECK(dnnl_memory_set_data_handle, (m, p), s);
}

static void exec(dnnl_primitive_t p, struct ssl_cpu_conv_cache *cc, int nargs,
                 const dnnl_exec_arg_t *args, const ssl_conv_shape *s)
{
    DNNL_CHECK(dnnl_primitive_execute, (p, cc->strm, nargs, args), s);
}

/* Run entry e on the caller's tensors in0, in1 -> out. */
static void run(ssl_ctx *c, const ssl_conv_shape *s, int dir, int blocked, const float *in0,
                const float *in1, float *out)
{
    conv_entry *e = entry_get(c, s, dir, blocked);
    struct ssl_cpu_conv_cache *cc = ((ssl_cpu_state *)c->be_state)->conv;
    char *arena = cc->arena;
    void *ptr[3] = {(void *)in0, (void *)in1, out};
    dnnl_exec_arg_t args[4];
    int nargs = 0;
    for (int i = 0; i < 3; i++) {
        conv_arg *a = &e->arg[i];
        set_handle(a->user, ptr[i], s);
        set_handle(a->reorder_scratch, arena, s);
        if (a->prim) {
            set_handle(a->prim, arena + a->off, s);
            if (i < 2) { /* inputs: into the primitive's layout first */
                dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->prim},
                                         {DNNL_ARG_SCRATCHPAD, a->reorder_scratch}};
                exec(a->reorder, cc, a->reorder_scratch ? 3 : 2, ra, s);
            }
        }
        args[nargs++] = (dnnl_exec_arg_t){a->dnnl_arg, a->prim ? a->prim : a->user};
    }
    if (e->scratch) {
        set_handle(e->scratch, arena, s);
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    }
    exec(e->prim, cc, nargs, args, s);
    conv_arg *o = &e->arg[2];
    if (o->prim) { /* back to plain layout (and, for dw, added to it) */
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, o->prim}, {DNNL_ARG_TO, o->user},
                                 {DNNL_ARG_SCRATCHPAD, o->reorder_scratch}};
        exec(o->reorder, cc, o->reorder_scratch ? 3 : 2, ra, s);
    }
    DNNL_CHECK(dnnl_stream_wait, (cc->strm), s);
}

void ssl_cpu_conv2d_fwd_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w,
                             float *y, int blocked)
{
    run(c, s, DIR_FWD, blocked, x, w, y);
}

void ssl_cpu_conv2d_bwd_data_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                                  const float *w, float *dx, int blocked)
{
    run(c, s, DIR_BWD_DATA, blocked, dy, w, dx);
}

void ssl_cpu_conv2d_bwd_filter_dnnl(ssl_ctx *c, const ssl_conv_shape *s, const float *dy,
                                    const float *x, float *dw, int blocked)
{
    run(c, s, DIR_BWD_FILTER, blocked, dy, x, dw);
}

const char *ssl_cpu_conv_dnnl_impl(ssl_ctx *c, const ssl_conv_shape *s, int dir, int blocked)
{
    SSL_ASSERTF(dir >= 0 && dir <= 2, "conv direction %d", dir);
    return entry_get(c, s, dir, blocked)->impl;
}
