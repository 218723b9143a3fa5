/* Checkpoint staging through host copies (see ckpt_stage.h). */
#include "framework/train/ckpt_stage.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"

#include <string.h>

static void stage(ssl_ckpt_staging *st, ssl_ctx *c, ssl_ckpt *ck, int download)
{
    memset(st, 0, sizeof *st);
    st->ctx = c, st->ck = ck;
    if (c->be->host_memory) return;
    for (int i = 0; i < ck->narrays; i++) {
        ssl_ckpt_array *a = &ck->arrays[i];
        if (a->dtype != SSL_CKPT_F32 || !a->data) continue;
        float *host = ssl_malloc(a->n * sizeof(float));
        if (download) c->be->download(host, a->data, a->n * sizeof(float));
        st->dev[i] = a->data;
        a->data = host;
    }
}

void ssl_ckpt_stage_save(ssl_ckpt_staging *st, ssl_ctx *c, ssl_ckpt *ck) { stage(st, c, ck, 1); }

void ssl_ckpt_stage_load(ssl_ckpt_staging *st, ssl_ctx *c, ssl_ckpt *ck) { stage(st, c, ck, 0); }

void ssl_ckpt_stage_end(ssl_ckpt_staging *st, int upload)
{
    if (!st->ck) return;
    for (int i = 0; i < st->ck->narrays; i++) {
        ssl_ckpt_array *a = &st->ck->arrays[i];
        if (!st->dev[i]) continue;
        if (upload) st->ctx->be->upload(st->dev[i], a->data, a->n * sizeof(float));
        ssl_free(a->data);
        a->data = st->dev[i];
        st->dev[i] = NULL;
    }
}
