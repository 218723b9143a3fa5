/* The trainer's view pipelines (framework/train/views.c):
 *   - a method's single group of 2 views with no per-view settings gives exactly the bytes of
 *     ssl_augment_batch (SimCLR's runs do not move);
 *   - augment.view_blur_p / view_solarize_p set view k's probabilities, and only view k's: view 1 at
 *     solarize 1 equals ssl_augment_view of the edited pipeline, view 0 stays as it was;
 *   - a method with two groups of different sizes and a pipeline hook gets group 1 as a
 *     (count * n, C, size, size) tensor whose views are ssl_augment_view of the hooked pipeline with
 *     view ids continuing after group 0's, so no two views share a random stream. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/train/session.h"
#include "framework/train/views.h"

#include <string.h>

#define N 5
#define H 28
#define C 1

/* The batch path the reader threads' per-sample path must equal: each view of the whole batch by
 * ssl_augment_view, group after group, view-major. */
static void views_of_batch(const ssl_view_pipes *vp, uint64_t seed, int64_t epoch, const uint8_t *images, int n, int h,
                           int w, int c, const int64_t *sample_index, float *out, ssl_views *v)
{
    v->n = n;
    v->ngroups = vp->plan.ngroups;
    v->index = sample_index;
    int id = 0;
    for (int g = 0; g < vp->plan.ngroups; g++) {
        const int cnt = vp->plan.group[g].count, S = vp->plan.group[g].size;
        const size_t per_view = (size_t)n * (size_t)c * (size_t)S * (size_t)S;
        v->group[g] = ssl_tensor_4d(out, (int64_t)cnt * n, c, S, S);
        for (int j = 0; j < cnt; j++, id++)
            ssl_augment_view(&vp->pipe[id], seed, epoch, images, n, h, w, c, sample_index, id, out + (size_t)j * per_view);
        out += (size_t)cnt * per_view;
    }
}

static int two_groups(const ssl_config *cfg, ssl_view_plan *v, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    v->ngroups = 2;
    v->group[0] = (ssl_view_group){2, cfg->model.img_size};
    v->group[1] = (ssl_view_group){3, 12};
    return 0;
}

static void local_crops(const ssl_config *cfg, int group, int view, ssl_augment_config *a)
{
    (void)cfg, (void)view;
    if (group == 1) a->crop_scale[0] = 0.05f, a->crop_scale[1] = 0.4f;
}

static void bad_crop(const ssl_config *cfg, int group, int view, ssl_augment_config *a)
{
    (void)cfg;
    if (group == 1 && view == 2) a->crop_scale[0] = 0.9f, a->crop_scale[1] = 0.1f;
}

static int plan_none(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen)
{
    (void)m, (void)cfg, (void)pl, (void)err, (void)errlen;
    return 0;
}

static void set(ssl_config *cfg, const char *k, const char *v)
{
    char err[256];
    SSL_ASSERTF(ssl_config_set(cfg, k, v, err, sizeof err) == 0, "%s", err);
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

int main(void)
{
    uint8_t img[N * H * H * C];
    int64_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = 1000 + 37 * i;
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)((i * 7919u) >> 3);
    ssl_config *cfg = ssl_calloc(1, sizeof *cfg);
    ssl_config_defaults(cfg);
    set(cfg, "model.img_size", "28");
    set(cfg, "augment.blur_p", "0.5");
    const size_t per = (size_t)N * C * 28 * 28;
    char err[512];

    /* SimCLR: one group of 2 = ssl_augment_batch */
    ssl_view_plan plan;
    SSL_ASSERT(ssl_method_configure(cfg, &plan, err, sizeof err) == 0);
    ssl_view_pipes vp;
    SSL_ASSERTF(ssl_view_pipes_init(&vp, ssl_method_find("simclr"), &plan, cfg, C, err, sizeof err) == 0, "%s", err);
    SSL_EXPECT(vp.nviews == 2 && ssl_view_pipes_floats(&vp, N, C) == 2 * per, "2 views of 28 px");
    float *got = ssl_malloc(2 * per * sizeof *got), *want = ssl_malloc(2 * per * sizeof *want);
    ssl_views v;
    views_of_batch(&vp, 9, 3, img, N, H, H, C, idx, got, &v);
    ssl_augment_config a;
    ssl_session_augment_config(cfg, C, &a);
    ssl_augment_batch(&a, 9, 3, img, N, H, H, C, idx, want);
    SSL_EXPECT(v.ngroups == 1 && v.n == N && v.group[0].shape[0] == 2 * N && v.group[0].data == got, "group tensor");
    SSL_EXPECT(same(got, want, 2 * per), "one group of 2 views differs from ssl_augment_batch");

    /* per-view solarize: view 1 only */
    set(cfg, "augment.view_solarize_p", "[0.0, 1.0]");
    SSL_ASSERT(ssl_view_pipes_init(&vp, ssl_method_find("simclr"), &plan, cfg, C, err, sizeof err) == 0);
    SSL_EXPECT(vp.pipe[0].solarize_p == 0.0f && vp.pipe[1].solarize_p == 1.0f, "per-view solarize_p not applied");
    views_of_batch(&vp, 9, 3, img, N, H, H, C, idx, got, &v);
    SSL_EXPECT(same(got, want, per), "view 0 changed with view 1's solarize_p");
    SSL_EXPECT(!same(got + per, want + per, per), "view 1 is not solarized");
    a.solarize_p = 1.0f;
    ssl_augment_view(&a, 9, 3, img, N, H, H, C, idx, 1, want + per);
    SSL_EXPECT(same(got + per, want + per, per), "view 1 differs from its own pipeline");

    /* two groups through a method's hook */
    set(cfg, "augment.view_solarize_p", "[]");
    ssl_method_vtable vt = {.name = "multi", .configure = two_groups, .plan = plan_none, .view_pipeline = local_crops};
    SSL_ASSERT(two_groups(cfg, &plan, err, sizeof err) == 0);
    SSL_ASSERT(ssl_view_pipes_init(&vp, &vt, &plan, cfg, C, err, sizeof err) == 0);
    const size_t loc = (size_t)N * C * 12 * 12;
    SSL_EXPECT(vp.nviews == 5 && ssl_view_pipes_floats(&vp, N, C) == 2 * per + 3 * loc, "2 + 3 views");
    float *all = ssl_malloc((2 * per + 3 * loc) * sizeof *all), *one = ssl_malloc(loc * sizeof *one);
    views_of_batch(&vp, 9, 3, img, N, H, H, C, idx, all, &v);
    SSL_EXPECT(v.ngroups == 2 && v.group[1].shape[0] == 3 * N && v.group[1].shape[2] == 12 &&
                   v.group[1].shape[3] == 12 && v.group[1].data == all + 2 * per,
               "group 1 tensor");
    ssl_augment_config l;
    ssl_session_augment_config(cfg, C, &l);
    l.out_size = 12, l.crop_scale[0] = 0.05f, l.crop_scale[1] = 0.4f;
    for (int j = 0; j < 3; j++) {
        ssl_augment_view(&l, 9, 3, img, N, H, H, C, idx, 2 + j, one);
        SSL_EXPECT(same(v.group[1].data + j * loc, one, loc), "local view %d differs from its pipeline (view id %d)", j,
                   2 + j);
    }
    ssl_augment_view(&l, 9, 3, img, N, H, H, C, idx, 0, one);
    SSL_EXPECT(!same(v.group[1].data, one, loc), "local view 0 reused global view 0's random stream");
    SSL_EXPECT(same(all, got, per), "group 0 of a two-group plan differs from the one-group plan");

    /* the reader threads' per-sample path (ssl_view_pipes_sample, sample by sample in any order, and
     * standing in for another slot) is the batch path byte for byte */
    ssl_batch b = {0};
    b.images = img, b.indices = idx, b.n = N, b.epoch = 3;
#undef H
#undef C
    b.H = b.W = 28, b.C = 1;
#define H 28
#define C 1
    float *per_sample = ssl_calloc(2 * per + 3 * loc, sizeof *per_sample);
    void *scratch = ssl_calloc(1, ssl_view_pipes_scratch_bytes(&vp));
    for (int i = N - 1; i >= 0; i--)
        SSL_ASSERT(ssl_view_pipes_sample(&vp, 9, &b, i, i, per_sample, scratch, err, sizeof err) == 0);
    SSL_EXPECT(same(per_sample, all, 2 * per + 3 * loc), "per-sample views differ from the batch path");
    SSL_ASSERT(ssl_view_pipes_sample(&vp, 9, &b, 2, 0, per_sample, scratch, err, sizeof err) == 0);
    const size_t img1 = (size_t)C * 12 * 12;
    SSL_EXPECT(same(per_sample + 2 * per, all + 2 * per + 2 * img1, img1) &&
                   same(per_sample + 2 * per + img1, all + 2 * per + img1, img1),
               "sample 2 standing in for slot 0: slot 0 holds sample 2's views, slot 1 is untouched");
    ssl_view_scratch_free(scratch);
    ssl_free(scratch);
    ssl_free(per_sample);

    /* a pipeline a hook breaks is reported with its group and view */
    vt.view_pipeline = bad_crop;
    SSL_EXPECT(ssl_view_pipes_init(&vp, &vt, &plan, cfg, C, err, sizeof err) == -1 &&
                   strstr(err, "multi view group 1, view 2") && strstr(err, "crop_scale"),
               "broken pipeline: '%s'", err);
    ssl_free(one);
    ssl_free(all);
    ssl_free(got);
    ssl_free(want);
    ssl_free(cfg);
    printf("view pipelines: %d views in 2 groups checked\n", 5);
    return ssl_test_exit();
}
