/* Evaluation views (see eval_views.h). */
#include "io/eval_views.h"

#include "framework/core/check.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

void ssl_eval_reader_free(ssl_eval_reader *r)
{
    for (int t = 0; t < r->ndec; t++) {
        ssl_jpeg_decoder_free(&r->dec[t]);
        ssl_free(r->ws[t]);
    }
    ssl_free(r->dec);
    ssl_free(r->ws);
    ssl_free(r->img);
    ssl_free(r->enc);
    ssl_free(r->off);
    memset(r, 0, sizeof *r);
}

static void grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap && *p) return;
    ssl_free(*p);
    *cap = need + 1;
    *p = ssl_malloc(*cap);
}

int ssl_eval_read_views(ssl_eval_reader *r, ssl_dataset *ds, const ssl_augment_config *a, const int64_t *idx, int n,
                        float *out, int32_t *y, char *err, size_t errlen)
{
    const int C = ssl_dataset_channels(ds), S = a->out_size;
    if (!ssl_dataset_is_jpeg(ds)) {
        const int H = ssl_dataset_height(ds), W = ssl_dataset_width(ds);
        grow(&r->img, &r->img_cap, (size_t)n * H * W * C);
        if (ssl_dataset_read(ds, idx, n, r->img, y, err, errlen)) return -1;
        ssl_augment_batch(a, 0, 0, r->img, n, H, W, C, idx, out);
        return 0;
    }
    if (n + 1 > r->off_cap) {
        ssl_free(r->off);
        r->off_cap = n + 1;
        r->off = ssl_malloc((size_t)r->off_cap * sizeof *r->off);
    }
    if (ssl_dataset_read_encoded(ds, idx, n, &r->enc, &r->enc_cap, r->off, y, err, errlen)) return -1;
    const int T = omp_get_max_threads();
    if (r->ndec < T) {
        ssl_eval_reader keep = *r;
        r->dec = ssl_calloc((size_t)T, sizeof *r->dec);
        r->ws = ssl_calloc((size_t)T, sizeof *r->ws);
        for (int t = 0; t < keep.ndec; t++) r->dec[t] = keep.dec[t], r->ws[t] = keep.ws[t];
        for (int t = keep.ndec; t < T; t++) r->ws[t] = ssl_malloc(ssl_aug_workspace_bytes(S));
        ssl_free(keep.dec);
        ssl_free(keep.ws);
        r->ndec = T;
    }
    const int32_t *hw = ssl_dataset_sizes(ds);
    int bad = -1;
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < n; i++) {
        const int t = omp_get_thread_num(), h = hw[2 * idx[i]], w = hw[2 * idx[i] + 1];
        ssl_augment_params p;
        ssl_augment_center_params(h, w, SSL_EVAL_CENTER_FRAC, &p);
        const uint8_t *px;
        int Hs, Ws;
        char why[256];
        if (ssl_jpeg_decode_crops(&r->dec[t], r->enc + r->off[i], r->off[i + 1] - r->off[i], h, w, C, &p, &S, 1, &px,
                                  &Hs, &Ws, why, sizeof why)) {
#pragma omp critical(ssl_eval_views_err)
            if (bad < 0 || i < bad) {
                bad = i;
                int64_t row = 0;
                const char *path = ssl_dataset_locate(ds, idx[i], &row);
                snprintf(err, errlen, "%s: dataset 'jpeg' row %lld (sample %lld): %s", path, (long long)row,
                         (long long)idx[i], why);
            }
            continue;
        }
        ssl_augment_apply(a, &p, px, Hs, Ws, C, out + (size_t)i * C * S * S, r->ws[t]);
    }
    return bad >= 0 ? -1 : 0;
}
