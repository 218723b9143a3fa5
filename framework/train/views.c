/* View pipelines (see views.h). */
#include "framework/train/views.h"

#include "framework/backend/backend.h"
#include "framework/core/check.h"
#include "framework/train/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssl_view_pipes_init(ssl_view_pipes *vp, const ssl_method_vtable *vt, const ssl_view_plan *plan,
                        const ssl_config *cfg, int C, char *err, size_t errlen)
{
    vp->plan = *plan;
    vp->nviews = 0;
    vp->device = 0, vp->stage_cap = 0;
    const ssl_config_augment *ac = &cfg->augment;
    for (int g = 0; g < vp->plan.ngroups; g++)
        for (int j = 0; j < vp->plan.group[g].count; j++) {
            const int k = vp->nviews;
            ssl_augment_config *a = &vp->pipe[vp->nviews++];
            ssl_session_augment_config(cfg, C, a);
            a->views = 1;
            a->out_size = vp->plan.group[g].size;
            if (k < ac->view_blur_p.n) a->blur_p = (float)ac->view_blur_p.v[k];
            if (k < ac->view_solarize_p.n) a->solarize_p = (float)ac->view_solarize_p.v[k];
            if (vt->view_pipeline) vt->view_pipeline(cfg, g, j, a);
            char why[512];
            if (ssl_augment_config_check(a, C, why, sizeof why)) {
                snprintf(err, errlen, "%s view group %d, view %d: %s", vt->name, g, j, why);
                return -1;
            }
        }
    return 0;
}

size_t ssl_view_pipes_floats(const ssl_view_pipes *vp, int n, int C)
{
    size_t f = 0;
    for (int g = 0; g < vp->plan.ngroups; g++) {
        const size_t S = (size_t)vp->plan.group[g].size;
        f += (size_t)vp->plan.group[g].count * (size_t)n * (size_t)C * S * S;
    }
    return f;
}

/* Device staging: this header, the jobs (view id major, then sample), the source pixels. */
typedef struct {
    uint64_t used; /* bytes of source pixels staged so far */
} stage_head;
enum { HEAD_BYTES = 64 }; /* keeps the jobs 64-byte aligned */

static size_t jobs_bytes(const ssl_view_pipes *vp, int n)
{
    return ((size_t)n * (size_t)vp->nviews * sizeof(ssl_aug_job) + 63) & ~(size_t)63;
}

static int larger_first(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

void ssl_view_pipes_use_device(ssl_view_pipes *vp, const ssl_dataset *ds, int n)
{
    const size_t C = (size_t)ssl_dataset_channels(ds);
    const int64_t N = ssl_dataset_size(ds);
    vp->device = 1;
    if (!ssl_dataset_is_jpeg(ds)) {
        vp->stage_cap = (size_t)n * (size_t)ssl_dataset_height(ds) * (size_t)ssl_dataset_width(ds) * C;
        return;
    }
    /* the sum of the n largest: exact for the worst batch, where n times the largest image would
     * reserve gigabytes of page-locked memory per slot for one outsized photograph */
    const int32_t *hw = ssl_dataset_sizes(ds);
    size_t *px = ssl_malloc((size_t)(N > 0 ? N : 1) * sizeof *px);
    for (int64_t i = 0; i < N; i++) px[i] = (size_t)hw[2 * i] * (size_t)hw[2 * i + 1] * C;
    qsort(px, (size_t)N, sizeof *px, larger_first);
    vp->stage_cap = 0;
    for (int64_t i = 0; i < N && i < n; i++) vp->stage_cap += px[i];
    ssl_free(px);
}

size_t ssl_view_pipes_staging_floats(const ssl_view_pipes *vp, int n, int C)
{
    if (!vp->device) return ssl_view_pipes_floats(vp, n, C);
    return (HEAD_BYTES + jobs_bytes(vp, n) + vp->stage_cap + 3) / sizeof(float);
}

/* Sample src's pixels (px, H x W) into the staging, and its views' jobs into sample dst's places.
 * Only the rectangle the crops cover is staged (bilinear taps never leave a crop), the crops moved
 * into it: the views are the same bytes, the upload smaller. */
static void stage(const ssl_view_pipes *vp, const ssl_batch *b, const ssl_augment_params *p, int dst,
                  const uint8_t *px, int H, int W, float *out)
{
    stage_head *h = (stage_head *)out;
    int y0 = H, x0 = W, y1 = 0, x1 = 0;
    for (int k = 0; k < vp->nviews; k++) {
        y0 = p[k].crop_y < y0 ? p[k].crop_y : y0, x0 = p[k].crop_x < x0 ? p[k].crop_x : x0;
        y1 = p[k].crop_y + p[k].crop_h > y1 ? p[k].crop_y + p[k].crop_h : y1;
        x1 = p[k].crop_x + p[k].crop_w > x1 ? p[k].crop_x + p[k].crop_w : x1;
    }
    const size_t C = (size_t)b->C, row = (size_t)(x1 - x0) * C, bytes = (size_t)(y1 - y0) * row;
    SSL_ASSERTF(h->used + bytes <= vp->stage_cap, "augment staging: %zu + %zu bytes of sources exceed %zu",
                (size_t)h->used, bytes, vp->stage_cap);
    uint8_t *to = (uint8_t *)out + HEAD_BYTES + jobs_bytes(vp, b->n) + h->used;
    for (int y = y0; y < y1; y++) memcpy(to + (size_t)(y - y0) * row, px + ((size_t)y * (size_t)W + (size_t)x0) * C, row);
    ssl_aug_job *jobs = (ssl_aug_job *)((char *)out + HEAD_BYTES);
    size_t off = 0;
    for (int g = 0, id = 0; g < vp->plan.ngroups; g++) {
        const int cnt = vp->plan.group[g].count, S = vp->plan.group[g].size;
        const size_t img = (size_t)b->C * (size_t)S * (size_t)S, per_view = (size_t)b->n * img;
        for (int j = 0; j < cnt; j++, id++) {
            ssl_aug_job *jb = &jobs[(size_t)id * (size_t)b->n + (size_t)dst];
            ssl_augment_job(&vp->pipe[id], &p[id], y1 - y0, x1 - x0, b->C, jb);
            jb->crop_y -= y0, jb->crop_x -= x0;
            jb->src = (int64_t)h->used;
            jb->dst = (int64_t)(off + (size_t)j * per_view + (size_t)dst * img);
        }
        off += (size_t)cnt * per_view;
    }
    h->used += bytes;
}

size_t ssl_view_pipes_upload_bytes(const ssl_view_pipes *vp, const ssl_batch *b, int C)
{
    if (!vp->device) return ssl_view_pipes_floats(vp, b->n, C) * sizeof(float);
    return HEAD_BYTES + jobs_bytes(vp, b->n) + ((const stage_head *)b->out)->used;
}

float *ssl_view_pipes_make(const ssl_view_pipes *vp, ssl_ctx *c, float *staged, int n, int C, float **views)
{
    if (!vp->device) return staged;
    const size_t pix = HEAD_BYTES + jobs_bytes(vp, n);
    const char *d = (const char *)staged;
    if (!*views) *views = c->be->alloc(ssl_view_pipes_floats(vp, n, C) * sizeof(float)); /* host-memory too */
    int max_S = 0;
    for (int g = 0; g < vp->plan.ngroups; g++)
        if (vp->plan.group[g].size > max_S) max_S = vp->plan.group[g].size;
    c->be->augment(c, n * vp->nviews, max_S, (const uint8_t *)(d + pix), (const ssl_aug_job *)(d + HEAD_BYTES),
                   *views);
    return *views;
}

void ssl_view_pipes_single(ssl_view_pipes *vp, const ssl_augment_config *a, int size)
{
    vp->plan.ngroups = 1;
    vp->plan.group[0] = (ssl_view_group){.count = 1, .size = size};
    vp->nviews = 1;
    vp->pipe[0] = *a;
    vp->device = 0, vp->stage_cap = 0;
}

enum { SCRATCH_HEAD = 64 }; /* the decoder, padded so the workspace stays 64-byte aligned */

size_t ssl_view_pipes_scratch_bytes(const ssl_view_pipes *vp)
{
    _Static_assert(sizeof(ssl_jpeg_decoder) <= SCRATCH_HEAD, "decoder outgrew the scratch head");
    size_t b = 0;
    for (int g = 0; g < vp->plan.ngroups; g++) {
        size_t w = ssl_aug_workspace_bytes(vp->plan.group[g].size);
        if (w > b) b = w;
    }
    return SCRATCH_HEAD + b;
}

void ssl_view_scratch_free(void *scratch) { ssl_jpeg_decoder_free(scratch); }

int ssl_view_pipes_sample(const ssl_view_pipes *vp, uint64_t seed, const ssl_batch *b, int src, int dst, float *out,
                          void *scratch, char *err, size_t errlen)
{
    ssl_augment_params p[SSL_VIEWS_MAX];
    int size[SSL_VIEWS_MAX], h, w, id = 0;
    ssl_batch_size(b, src, &h, &w);
    for (int g = 0; g < vp->plan.ngroups; g++)
        for (int j = 0; j < vp->plan.group[g].count; j++, id++) {
            ssl_augment_draw(&vp->pipe[id], seed, b->epoch, b->indices[src], id, h, w, b->C, &p[id]);
            size[id] = vp->plan.group[g].size;
        }
    const uint8_t *px;
    int H, W;
    if (ssl_batch_pixels(b, src, scratch, p, size, vp->nviews, &px, &H, &W, err, errlen)) return -1;
    if (vp->device) {
        stage(vp, b, p, dst, px, H, W, out);
        return 0;
    }
    void *ws = (char *)scratch + SCRATCH_HEAD;
    id = 0;
    for (int g = 0; g < vp->plan.ngroups; g++) {
        const int cnt = vp->plan.group[g].count, S = vp->plan.group[g].size;
        const size_t img = (size_t)b->C * (size_t)S * (size_t)S, per_view = (size_t)b->n * img;
        for (int j = 0; j < cnt; j++, id++)
            ssl_augment_apply(&vp->pipe[id], &p[id], px, H, W, b->C, out + (size_t)j * per_view + (size_t)dst * img,
                              ws);
        out += (size_t)cnt * per_view;
    }
    return 0;
}

int ssl_view_pipes_batch(const ssl_view_pipes *vp, uint64_t seed, const ssl_batch *b, const ssl_dataset *ds, int stop,
                         int rank, int64_t *corrupt, float *out, void *scratch, char *err, size_t errlen)
{
    if (vp->device) ((stage_head *)out)->used = 0;
    for (int i = 0; i < b->n; i++) {
        char why[512];
        if (ssl_view_pipes_sample(vp, seed, b, i, i, out, scratch, why, sizeof why) == 0) continue;
        int64_t row = 0;
        const char *path = ssl_dataset_locate(ds, b->indices[i], &row);
        const long long bad = __atomic_add_fetch(corrupt, 1, __ATOMIC_RELAXED);
        if (stop) {
            snprintf(err, errlen, "%s: dataset 'jpeg' row %lld (sample %lld): %s (data.on_corrupt: stop)", path,
                     (long long)row, (long long)b->indices[i], why);
            return -1;
        }
        fprintf(stderr, "warning: rank %d: %s: dataset 'jpeg' row %lld (sample %lld): %s; skipped (%lld so far)\n",
                rank, path, (long long)row, (long long)b->indices[i], why, bad);
        int k = 1;
        for (; k < b->n; k++)
            if (ssl_view_pipes_sample(vp, seed, b, (i + k) % b->n, i, out, scratch, why, sizeof why) == 0) break;
        if (k == b->n) {
            snprintf(err, errlen, "%s: no image of this batch decodes (the last: %s)", path, why);
            return -1;
        }
    }
    return 0;
}

void ssl_view_pipes_bind(const ssl_view_pipes *vp, int n, int C, float *out, ssl_views *v)
{
    v->n = n;
    v->ngroups = vp->plan.ngroups;
    for (int g = 0; g < vp->plan.ngroups; g++) {
        const int cnt = vp->plan.group[g].count, S = vp->plan.group[g].size;
        v->group[g] = ssl_tensor_4d(out, (int64_t)cnt * n, C, S, S);
        out += (size_t)cnt * (size_t)n * (size_t)C * (size_t)S * (size_t)S;
    }
}
