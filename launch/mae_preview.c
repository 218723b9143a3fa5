/* `sslrun mae-preview CONFIG.yaml [k=v ...] [--ckpt PATH] --out recon.png`: what an MAE run
 * reconstructs. Eight test images (data.test, spread over the split, the evaluation transform) go
 * through the method's own masked forward (methods/mae.h, masks keyed by run.seed and the
 * checkpoint's step) and are drawn in three rows: the original, the masked input (removed patches
 * grey), and the reconstruction with the visible patches of the original pasted over the prediction,
 * as MAE's visualisation does. With mae.norm_pix_loss the decoder predicts normalised patches; each
 * is de-normalised with its own target mean and variance from the original image (MAE's demo
 * notebook), so the picture shows what the loss scored. */
#include "framework/core/check.h"
#include "framework/layers/mae_loss.h"
#include "framework/train/session.h"
#include "io/dataset.h"
#include "io/eval_views.h"
#include "io/png_grid.h"
#include "launch/cli.h"
#include "methods/mae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PREVIEW_IMAGES 8

/* Patch l of image x (C, S, S) as MAE's target row: p*p*C values in (i, j, c) order, to or from `row`. */
static void patch_io(float *x, int C, int S, int p, int64_t l, float *row, int to_row)
{
    const int g = S / p, py = (int)(l / g), px = (int)(l % g);
    for (int i = 0, k = 0; i < p; i++)
        for (int j = 0; j < p; j++)
            for (int ch = 0; ch < C; ch++, k++) {
                float *v = x + ((size_t)ch * S + (size_t)(py * p + i)) * S + (size_t)(px * p + j);
                if (to_row) row[k] = *v;
                else *v = row[k];
            }
}

/* The three rows for n images: orig (n, C, S, S) normalised views, pred (n, L, F) host, mask (n, L).
 * out (3n, C, S, S): originals, masked inputs, reconstructions. */
static void compose(const float *orig, const float *pred, const float *mask, int n, int C, int S, int p,
                    int norm_pix, const float *mean, const float *std, float *out)
{
    const int64_t L = (int64_t)(S / p) * (S / p), F = (int64_t)p * p * C;
    const size_t per = (size_t)C * S * S;
    float row[4096], grey[3];
    SSL_ASSERTF(F <= 4096, "mae-preview: patches of %lld values", (long long)F);
    for (int ch = 0; ch < C; ch++) grey[ch] = (0.5f - mean[ch]) / std[ch]; /* mid-grey once un-normalised */
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * per, *mk = out + (size_t)(n + i) * per, *r = out + (size_t)(2 * n + i) * per;
        memcpy(o, orig + (size_t)i * per, per * sizeof(float));
        memcpy(mk, o, per * sizeof(float));
        memcpy(r, o, per * sizeof(float)); /* kept patches stay the original's */
        for (int64_t l = 0; l < L; l++) {
            if (mask[(size_t)i * L + l] == 0.0f) continue;
            patch_io(o, C, S, p, l, row, 1);
            double m = 0, v = 0;
            for (int64_t k = 0; k < F; k++) m += row[k];
            m /= (double)F;
            for (int64_t k = 0; k < F; k++) v += (row[k] - m) * (row[k] - m);
            v /= (double)(F > 1 ? F - 1 : 1); /* unbiased, as the loss's target */
            const float *pr = pred + ((size_t)i * L + l) * F;
            for (int64_t k = 0; k < F; k++)
                row[k] = norm_pix ? (float)(pr[k] * sqrt(v + SSL_MAE_NORM_PIX_EPS) + m) : pr[k];
            patch_io(r, C, S, p, l, row, 0);
            for (int64_t k = 0; k < F; k++) row[k] = grey[k % C];
            patch_io(mk, C, S, p, l, row, 0);
        }
    }
}

int ssl_cmd_mae_preview(int argc, char **argv)
{
    const char *out = ssl_cli_take_value(&argc, argv, "--out"), *ckpt = ssl_cli_take_value(&argc, argv, "--ckpt");
    if (argc < 1 || !out) {
        fprintf(stderr, "usage: sslrun mae-preview CONFIG.yaml [k=v ...] [--ckpt PATH] --out recon.png\n");
        return 2;
    }
    char err[2048], path[1200];
    ssl_config cfg;
    ssl_view_plan plan;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) ||
        ssl_method_configure(&cfg, &plan, err, sizeof err)) {
        fprintf(stderr, "sslrun: %s\n", err);
        return 2;
    }
    if (strcmp(cfg.method.name, "mae") != 0 || !cfg.data.test[0]) {
        fprintf(stderr, "sslrun: mae-preview needs method.name mae (got %s) and data.test (test images)\n",
                cfg.method.name);
        return 2;
    }
    ssl_session s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    const int n = PREVIEW_IMAGES;
    ssl_eval_reader rd = {0};
    float *orig = NULL, *pred = NULL, *grid = NULL;
    ssl_dataset *ds = ssl_dataset_open(cfg.data.test, err, sizeof err);
    if (!ds) goto done;
    const int C = ssl_dataset_channels(ds);
    /* a few images: the host backend, whatever device the run used (the arrays are read in place) */
    snprintf(cfg.device.backend, sizeof cfg.device.backend, "cpu");
    if (ssl_session_init(&s, &cfg, C, NULL, err, sizeof err)) goto done;
    ssl_ckpt ck = {0};
    ssl_session_ckpt_arrays(&s, &ck, NULL);
    if (ckpt) {
        if (ssl_ckpt_load(&ck, ckpt, err, sizeof err)) goto done;
    } else {
        int found = ssl_ckpt_resume(&ck, s.ckpt_dir, 0, path, sizeof path, err, sizeof err);
        if (found == 1) snprintf(err, sizeof err, "no checkpoint in %s (train first, or pass --ckpt)", s.ckpt_dir);
        if (found) goto done;
        ckpt = path;
    }
    int64_t idx[PREVIEW_IMAGES];
    for (int i = 0; i < n; i++) idx[i] = i * (ssl_dataset_size(ds) / n);
    ssl_augment_config a;
    ssl_session_eval_transform(&cfg, C, &a);
    const int S = a.out_size, p = ssl_mae_patch_size(&s.method);
    const int64_t L = ssl_mae_patches(&s.method), F = (int64_t)p * p * C;
    const size_t per = (size_t)C * S * S;
    orig = ssl_malloc((size_t)n * per * sizeof(float));
    if (ssl_eval_read_views(&rd, ds, &a, idx, n, orig, NULL, err, sizeof err)) goto done;

    ssl_ctx *c = &s.ctx;
    ssl_ctx_step_begin(c);
    ssl_weights w = {s.params.data, NULL, s.buffers.data};
    ssl_tensor x = ssl_tensor_4d(ssl_arena_floats(&c->act, (size_t)n * per), n, C, S, S);
    c->be->upload(x.data, orig, (size_t)n * per * sizeof(float));
    const float *mask;
    ssl_tensor pr = ssl_mae_forward(&s.method, c, &w, x, idx, ssl_mae_step_key((uint64_t)cfg.run.seed, ck.step), &mask);
    const double loss = ssl_mae_loss(c, x, p, pr, mask, cfg.mae.norm_pix_loss, NULL);
    pred = ssl_malloc((size_t)n * L * F * sizeof(float));
    c->be->download(pred, pr.data, (size_t)n * L * F * sizeof(float));
    grid = ssl_malloc(3 * (size_t)n * per * sizeof(float));
    compose(orig, pred, mask, n, C, S, p, cfg.mae.norm_pix_loss, a.mean, a.std, grid);
    if (ssl_png_write_grid(out, grid, 3 * n, C, S, n, a.mean, a.std, err, sizeof err)) goto done;
    printf("wrote %s: %d test images of %dx%d in rows original / masked (%.0f%% of %lld patches grey) / "
           "reconstruction; %s at step %lld, loss on the masked patches %.4f\n",
           out, n, S, S, 100.0 * cfg.mae.mask_ratio, (long long)L, ckpt, (long long)ck.step, loss);
    rc = 0;
done:
    if (rc) fprintf(stderr, "sslrun: %s\n", err);
    ssl_free(grid), ssl_free(pred), ssl_free(orig);
    ssl_eval_reader_free(&rd);
    if (s.params.data) ssl_session_free(&s);
    if (ds) ssl_dataset_close(ds);
    return rc;
}
