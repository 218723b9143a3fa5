/* MAE's reconstruction loss (see mae_loss.h). */
#include "framework/layers/mae_loss.h"

#include "framework/core/check.h"

ssl_tensor ssl_mae_patchify(ssl_ctx *c, ssl_tensor imgs, int p)
{
    SSL_ASSERTF(imgs.ndim == 4 && p > 0 && imgs.shape[2] % p == 0 && imgs.shape[3] % p == 0,
                "mae: expected images (N, C, H, W) with H, W multiples of the patch size %d", p);
    const int N = (int)imgs.shape[0], C = (int)imgs.shape[1], H = (int)imgs.shape[2], W = (int)imgs.shape[3];
    const int64_t L = (int64_t)(H / p) * (W / p), F = (int64_t)p * p * C;
    ssl_tensor t = ssl_tensor_3d(ssl_arena_floats(&c->act, (size_t)(N * L * F)), N, L, F);
    c->be->patchify_hwc(c, N, C, H, W, p, imgs.data, t.data);
    return t;
}

double ssl_mae_loss(ssl_ctx *c, ssl_tensor imgs, int p, ssl_tensor pred, const float *mask, int norm_pix,
                    float *dpred)
{
    double t0 = ssl_prof_begin(c);
    ssl_tensor t = ssl_mae_patchify(c, imgs, p);
    SSL_ASSERTF(pred.ndim == 3 && pred.shape[0] == t.shape[0] && pred.shape[1] == t.shape[1] &&
                    pred.shape[2] == t.shape[2],
                "mae loss: pred must be (%lld, %lld, %lld)", (long long)t.shape[0], (long long)t.shape[1],
                (long long)t.shape[2]);
    const int64_t rows = t.shape[0] * t.shape[1], F = t.shape[2];
    double msum = 0.0;
    for (int64_t r = 0; r < rows; r++) msum += mask[r];
    SSL_ASSERTF(msum > 0.0, "mae loss: the mask removes no patch (mask ratio 0?)");
    float *m = ssl_arena_floats(&c->act, (size_t)rows);
    c->be->upload(m, mask, (size_t)rows * sizeof *m);
    double sum = 0.0;
    c->be->mae_loss_rows(c, rows, F, norm_pix ? SSL_MAE_NORM_PIX_EPS : 0.0f, pred.data, t.data, m,
                         (float)(1.0 / msum), dpred, &sum);
    ssl_prof_end(c, SSL_PROF_LOSS, t0, 0);
    return sum / msum;
}
