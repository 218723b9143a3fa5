/* Where a fine-tuning run's starting weights come from (ssl_ft_source, finetune.h): a pretraining
 * checkpoint (the method's heads dropped: only the encoder's tensors are taken, by name), a
 * safetensors file (`sslrun export` output, torchvision weights of the same arch, or timm ViT weights
 * through a name table), or nothing (random init). Every encoder tensor and BN buffer must be found
 * with its exact shape; the classification head always starts from run.seed. */
#include "framework/train/ckpt_stage.h"
#include "framework/train/finetune_weights.h"

#include "framework/core/check.h"
#include "io/export.h"
#include "io/export_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Segment i of p takes src (host, n floats) when the shape matches. */
static int put(ssl_ctx *c, ssl_params *p, int i, const float *src, size_t n, int ndim, const int64_t *shape,
               const char *from, char *err, size_t errlen)
{
    const ssl_segment *g = &p->seg[i];
    int same = n == g->n && ndim == g->ndim;
    for (int d = 0; same && d < ndim; d++) same = shape[d] == g->shape[d];
    if (!same) {
        snprintf(err, errlen, "%s: tensor '%s' has %zu values in another shape than this model's (%zu values): "
                 "another arch, width, patch or image size?", from, g->name, n, g->n);
        return -1;
    }
    c->be->upload(p->data + g->off, src, n * sizeof(float));
    return 0;
}

/* The encoder segments [0, nseg) of dst and all of dst_buf from a pretraining session's arrays. */
static int copy_by_name(ssl_ctx *c, ssl_params *dst, int nseg, ssl_params *dst_buf, const ssl_session *s,
                        const char *path, char *err, size_t errlen)
{
    float *host = ssl_malloc((s->params.numel > s->buffers.numel ? s->params.numel : s->buffers.numel) *
                             sizeof(float) + sizeof(float));
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        ssl_params *d = pass ? dst_buf : dst;
        const ssl_params *sp = pass ? &s->buffers : &s->params;
        const int limit = pass ? s->encoder_buffer_segments : s->encoder_segments;
        s->ctx.be->download(host, sp->data, sp->numel * sizeof(float));
        for (int i = 0; i < (pass ? d->nseg : nseg) && !rc; i++) {
            int j = ssl_params_find(sp, d->seg[i].name);
            if (j < 0 || j >= limit) {
                snprintf(err, errlen, "%s: the encoder has no tensor '%s' (a checkpoint of another arch?)", path,
                         d->seg[i].name);
                rc = -1;
            } else {
                const ssl_segment *g = &sp->seg[j];
                rc = put(c, d, i, host + g->off, g->n, g->ndim, g->shape, path, err, errlen);
            }
        }
    }
    ssl_free(host);
    return rc;
}

int ssl_finetune_from_checkpoint(ssl_ctx *c, ssl_params *params, int nseg, ssl_params *buffers, int in_chans,
                                 const char *path, char *desc, size_t desclen, char *err, size_t errlen)
{
    ssl_config pc;
    ssl_session s;
    memset(&s, 0, sizeof s);
    int rc = -1;
    if (ssl_ckpt_config(path, &pc, err, errlen)) goto out;
    ssl_ckpt probe = {0};
    if (ssl_ckpt_load(&probe, path, err, errlen)) goto out;
    if (probe.in_chans != in_chans) {
        snprintf(err, errlen, "%s: an encoder of %lld-channel images; data.train has %d", path,
                 (long long)probe.in_chans, in_chans);
        goto out;
    }
    pc.device.threads = 0; /* the pretraining run's thread count is not this job's */
    if (ssl_session_init(&s, &pc, in_chans, NULL, err, errlen)) goto out;
    ssl_ckpt ck = {0};
    ssl_session_ckpt_arrays(&s, &ck, NULL);
    ssl_ckpt_staging st;
    ssl_ckpt_stage_load(&st, &s.ctx, &ck);
    int bad = ssl_ckpt_load(&ck, path, err, errlen);
    ssl_ckpt_stage_end(&st, !bad);
    if (bad) goto out;
    if (copy_by_name(c, params, nseg, buffers, &s, path, err, errlen)) goto out;
    snprintf(desc, desclen, "checkpoint %s (%s, step %lld)", path, pc.method.name, (long long)ck.step);
    rc = 0;
out:
    if (s.params.data) ssl_session_free(&s);
    return rc;
}

int ssl_finetune_from_safetensors(ssl_ctx *c, ssl_params *params, int nseg, ssl_params *buffers, const char *path,
                                  char *desc, size_t desclen, char *err, size_t errlen)
{
    ssl_safetensors_header h;
    if (ssl_safetensors_read_header(path, &h, err, errlen)) return -1;
    FILE *fp = fopen(path, "rb");
    float *host = NULL;
    int rc = fp ? 0 : -1, used = 0, timm = 0;
    if (!fp) snprintf(err, errlen, "%s: cannot open", path);
    for (int pass = 0; pass < 2 && !rc; pass++) {
        ssl_params *d = pass ? buffers : params;
        for (int i = 0; i < (pass ? d->nseg : nseg) && !rc; i++) {
            const ssl_segment *g = &d->seg[i];
            char alt[160];
            int k = ssl_safetensors_find(&h, g->name);
            ssl_timm_name(g->name, alt, sizeof alt);
            if (k < 0 && alt[0] && (k = ssl_safetensors_find(&h, alt)) >= 0) timm++;
            if (k < 0) {
                snprintf(err, errlen, "%s: no tensor '%s'%s%s%s (weights of another arch?)", path, g->name,
                         alt[0] ? " (nor timm's '" : "", alt, alt[0] ? "')" : "");
                rc = -1;
                break;
            }
            const ssl_safetensors_entry *e = &h.entries[k];
            if (strcmp(e->dtype, "F32")) {
                snprintf(err, errlen, "%s: tensor '%s' is %s; only F32 weights load (convert with "
                         "tensor.float() first)", path, e->name, e->dtype);
                rc = -1;
                break;
            }
            size_t n = (size_t)(e->end - e->begin) / sizeof(float);
            host = realloc(host, n * sizeof(float) + sizeof(float));
            if (fseeko(fp, (off_t)(h.data_start + e->begin), SEEK_SET) || fread(host, sizeof(float), n, fp) != n) {
                snprintf(err, errlen, "%s: cannot read tensor '%s'", path, e->name);
                rc = -1;
                break;
            }
            rc = put(c, d, i, host, n, e->ndim, e->shape, path, err, errlen);
            used++;
        }
    }
    if (!rc)
        snprintf(desc, desclen, "weights %s (%d tensors%s, %d others in the file unused)", path, used,
                 timm ? ", timm names" : "", h.n - used);
    free(host);
    if (fp) fclose(fp);
    ssl_safetensors_header_free(&h);
    return rc;
}
