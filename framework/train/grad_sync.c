/* ssl_grad_sync (see grad_sync.h). */
#include "framework/train/grad_sync.h"

#include "framework/comm/comm.h"
#include "framework/comm/device.h"
#include "framework/core/check.h"

#include <string.h>

static int complete(const ssl_grad_sync *g, const ssl_grad_bucket *b)
{
    for (int s = b->seg0; s < b->seg1; s++)
        if (g->want[s] <= 0 || g->got[s] < g->want[s]) return 0;
    return 1;
}

static void start(ssl_grad_sync *g, ssl_grad_bucket *b)
{
    b->started = 1;
    ssl_dev_allreduce_start(g->ctx, g->comm, g->params->grad + b->off, b->n, SSL_F32, SSL_AVG);
}

/* The hook (ssl_ctx.grads_done): segments [seg0, seg1) of gradient buffer gr are done for this call. */
static void on_done(void *u, const float *gr, int seg0, int seg1)
{
    ssl_grad_sync *g = u;
    if (gr != g->params->grad) return; /* another parameter set's model (not this trainer's) */
    SSL_ASSERTF(seg0 >= 0 && seg1 <= g->params->nseg && seg0 <= seg1, "grads_done: segments [%d, %d) of %d", seg0,
                seg1, g->params->nseg);
    for (int s = seg0; s < seg1; s++) {
        g->got[s]++;
        SSL_ASSERTF(!g->b[g->bucket_of[s]].started,
                    "gradient of '%s' written after its bucket's all-reduce started: backward ran differently from "
                    "the first step (set comm.overlap: off)",
                    g->params->seg[s].name);
    }
    if (!g->learned) return;
    int last = -1;
    for (int s = seg0; s < seg1; s++) {
        const int k = g->bucket_of[s];
        if (k == last) continue;
        last = k;
        if (!g->b[k].started && complete(g, &g->b[k])) {
            start(g, &g->b[k]);
            g->early++;
        }
    }
}

void ssl_grad_sync_init(ssl_grad_sync *g, int on, ssl_ctx *c, ssl_comm *comm, const ssl_params *p, double bucket_mb)
{
    memset(g, 0, sizeof *g);
    g->ctx = c, g->comm = comm, g->params = p;
    g->on = on && comm && comm->world > 1 && p->nseg > 0;
    if (!g->on) return;
    const int ns = p->nseg;
    g->bucket_of = ssl_calloc((size_t)ns, sizeof *g->bucket_of);
    g->want = ssl_calloc((size_t)ns, sizeof *g->want);
    g->got = ssl_calloc((size_t)ns, sizeof *g->got);
    g->b = ssl_calloc((size_t)ns, sizeof *g->b);
    const size_t cap = (size_t)(bucket_mb * 1e6 / sizeof(float)) > 0 ? (size_t)(bucket_mb * 1e6 / sizeof(float)) : 1;
    /* from the last segment down: a bucket spans the flat buffer from its first segment's offset to
     * the end of its last (the alignment padding between them included, so one call covers it) */
    int s1 = ns;
    while (s1 > 0) {
        int s0 = s1 - 1;
        const size_t end = p->seg[s1 - 1].off + p->seg[s1 - 1].n;
        while (s0 > 0 && end - p->seg[s0 - 1].off <= cap) s0--;
        ssl_grad_bucket *b = &g->b[g->nb];
        b->seg0 = s0, b->seg1 = s1, b->off = p->seg[s0].off, b->n = end - p->seg[s0].off;
        for (int s = s0; s < s1; s++) g->bucket_of[s] = g->nb;
        g->nb++;
        s1 = s0;
    }
}

void ssl_grad_sync_begin(ssl_grad_sync *g)
{
    if (!g->on) return;
    memset(g->got, 0, (size_t)g->params->nseg * sizeof *g->got);
    for (int k = 0; k < g->nb; k++) g->b[k].started = 0;
    g->ctx->grads_done = on_done;
    g->ctx->grads_done_u = g;
}

void ssl_grad_sync_finish(ssl_grad_sync *g)
{
    if (!g->on) {
        ssl_dev_allreduce(g->ctx, g->comm, g->params->grad, g->params->numel, SSL_F32, SSL_AVG);
        return;
    }
    g->ctx->grads_done = NULL, g->ctx->grads_done_u = NULL;
    if (!g->learned) {
        /* the first step counted; every rank must have counted alike, or the start order (which
         * pairs the buckets across ranks) would differ: else stay with the end-of-backward order */
        memcpy(g->want, g->got, (size_t)g->params->nseg * sizeof *g->want);
        double sig[2] = {0, 0};
        for (int s = 0; s < g->params->nseg; s++) sig[0] += (double)g->want[s] * (double)(s + 1);
        sig[1] = -sig[0];
        ssl_allreduce(g->comm, sig, 2, SSL_F64, SSL_MAX);
        if (sig[0] != -sig[1]) memset(g->want, 0, (size_t)g->params->nseg * sizeof *g->want);
        g->learned = 1;
    }
    for (int k = 0; k < g->nb; k++)
        if (!g->b[k].started) start(g, &g->b[k]);
    g->total += g->nb;
    ssl_dev_wait_all(g->ctx, g->comm);
}

void ssl_grad_sync_free(ssl_grad_sync *g)
{
    ssl_free(g->bucket_of);
    ssl_free(g->want);
    ssl_free(g->got);
    ssl_free(g->b);
    memset(g, 0, sizeof *g);
}
