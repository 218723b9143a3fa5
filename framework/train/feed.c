/* Micro-batches to the device, one ahead (see feed.h). */
#include "framework/train/feed.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <stdio.h>
#include <string.h>

void ssl_feed_init(ssl_feed *f, const ssl_ctx *c, int n)
{
    memset(f, 0, sizeof *f);
    f->ahead = !c->be->host_memory && c->be->upload_ahead && c->be->upload_join;
    for (int s = 0; s < 2 && f->ahead; s++) {
        f->indices[s] = ssl_malloc((size_t)n * sizeof *f->indices[s]);
        f->labels[s] = ssl_malloc((size_t)n * sizeof *f->labels[s]);
    }
}

/* The loader's next batch into slot s: its copy queued on the copy stream, its batch copied out of the
 * loader's slot (released at the next ssl_loader_next, before this batch computes). */
static int fetch(ssl_feed *f, ssl_loader *l, const ssl_view_pipes *vp, ssl_ctx *c, int C, int s, char *err,
                 size_t errlen)
{
    ssl_batch b;
    if (ssl_loader_next(l, &b, err, errlen)) return -1;
    if (!f->buf[s]) f->buf[s] = c->be->alloc(ssl_view_pipes_staging_floats(vp, b.n, C) * sizeof(float));
    f->bytes[s] = ssl_view_pipes_upload_bytes(vp, &b, C);
    c->be->upload_ahead(c, f->buf[s], b.out, f->bytes[s]);
    memcpy(f->indices[s], b.indices, (size_t)b.n * sizeof *b.indices);
    if (b.labels) memcpy(f->labels[s], b.labels, (size_t)b.n * sizeof *b.labels);
    f->meta[s] = (ssl_batch){.labels = b.labels ? f->labels[s] : NULL, .indices = f->indices[s], .n = b.n,
                             .epoch = b.epoch, .step = b.step, .C = b.C};
    return 0;
}

int ssl_feed_next(ssl_feed *f, ssl_loader *l, const ssl_view_pipes *vp, ssl_ctx *c, int C, float **views,
                  ssl_batch *b, char *err, size_t errlen)
{
    if (!f->ahead) { /* the views from the loader's page-locked slot, in the compute stream (or in place) */
        if (ssl_loader_next(l, b, err, errlen)) return -1;
        const size_t cap = ssl_view_pipes_staging_floats(vp, b->n, C);
        float *staged = ssl_ctx_upload_staged(c, &f->buf[0], cap, b->out,
                                              (ssl_view_pipes_upload_bytes(vp, b, C) + 3) / sizeof(float));
        *views = ssl_view_pipes_make(vp, c, staged, b->n, C, &f->views);
        return 0;
    }
    if (f->deferred) {
        snprintf(err, errlen, "%s", f->deferred);
        return -1;
    }
    if (!f->have && fetch(f, l, vp, c, C, f->cur, err, errlen)) return -1;
    c->be->upload_join(c); /* this batch's copy is done, and the compute stream waits for it */
    const int mine = f->cur;
    /* the next one now, to be copied while this one computes; a failure is this batch's successor's */
    char why[2048];
    f->have = fetch(f, l, vp, c, C, 1 - mine, why, sizeof why) == 0;
    if (!f->have) {
        f->deferred = ssl_malloc(strlen(why) + 1);
        memcpy(f->deferred, why, strlen(why) + 1);
    }
    f->cur = 1 - mine;
    *views = ssl_view_pipes_make(vp, c, f->buf[mine], f->meta[mine].n, C, &f->views);
    *b = f->meta[mine];
    return 0;
}

void ssl_feed_free(ssl_feed *f, ssl_ctx *c)
{
    if (f->ahead && f->have) c->be->upload_join(c); /* before the loader frees the slot it reads */
    for (int s = 0; s < 2; s++) {
        if (f->buf[s]) c->be->free(f->buf[s]);
        ssl_free(f->indices[s]);
        ssl_free(f->labels[s]);
    }
    if (f->views) c->be->free(f->views);
    ssl_free(f->deferred);
    memset(f, 0, sizeof *f);
}
