/* `sslrun plot` internals: the metrics.jsonl reader (key order, null, duplicate steps, kNN-only
 * lines, garbage and torn lines) and the PNG it renders, read back with libpng to check the size and
 * that each curve is drawn where the layout says (and not where a null breaks it). */
#include <stdio.h>

#include "common/testutil.h"
#include "io/plot.h"

#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    SSL_EXPECT(fp, "open %s", path);
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

/* RGB pixels of a PNG, or NULL; *w, *h receive its size. */
static uint8_t *read_png(const char *path, int *w, int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = PNG_FORMAT_RGB;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    if (!px || !png_image_finish_read(&img, NULL, px, 0, NULL)) {
        png_image_free(&img);
        free(px);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return px;
}

/* Pixels of colour rgb in column x between rows y0 and y1 (inclusive). */
static int count_in_column(const uint8_t *px, int w, int x, int y0, int y1, uint32_t rgb)
{
    int n = 0;
    for (int y = y0; y <= y1; y++) {
        const uint8_t *p = px + ((size_t)y * w + x) * 3;
        n += p[0] == (uint8_t)(rgb >> 16) && p[1] == (uint8_t)(rgb >> 8) && p[2] == (uint8_t)rgb;
    }
    return n;
}

static int count_in_rect(const uint8_t *px, int w, ssl_plot_rect r, uint32_t rgb)
{
    int n = 0;
    for (int x = r.x0 - 3; x <= r.x1 + 3; x++) n += count_in_column(px, w, x, r.y0 - 3, r.y1 + 3, rgb);
    return n;
}

/* Column of a step, by the rule ssl_plot_data_rect documents. */
static int step_x(ssl_plot_rect r, long long step, long long first, long long last)
{
    return r.x0 + (int)lround((double)(step - first) / (double)(last - first) * (r.x1 - r.x0));
}

int main(void)
{
    char dir[] = "/tmp/ssl_plot_XXXXXX";
    SSL_EXPECT(mkdtemp(dir), "mkdtemp");
    char metrics[256], png[256], err[512];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    snprintf(png, sizeof png, "%s/plot.png", dir);

    write_file(metrics,
               "{\"step\":10,\"epoch\":0,\"loss\":6.0,\"lr\":0.001,\"img_per_s\":40.9}\n"
               "this is not json\n"
               "{\"lr\":0.002,\"step\":20,\"loss\":5.0,\"epoch\":0}\n"
               "{\"step\":30,\"epoch\":0,\"loss\":null,\"lr\":3e-3,\"note\":\"a \\\"q\\\"\"}\n"
               "\n"
               "{\"step\":20,\"epoch\":0,\"loss\":4.5,\"lr\":0.0025}\n" /* resumed run: replaces 20 */
               "{\"step\":30,\"epoch\":0,\"knn_top1\":81.25,\"knn_k\":20}\n"
               "{ \"step\" : 40 , \"epoch\":1, \"loss\":4.0, \"lr\":0.004 }\n"
               "{\"step\":50,\"loss\":3.5,\"lr\":0.005,\"ep\n" /* torn by a crash */
               "{\"step\":50,\"epoch\":1,\"loss\":3.0,\"lr\":0.005,\"img_per_s\":1e2}\n"
               "{\"step\":60,\"lo{\"step\":60,\"epoch\":1,\"loss\":2.5,\"lr\":0.006}\n" /* torn + resumed */
               "{\"epoch\":2,\"loss\":1.0}\n"                                        /* no step: a header */
               "{\"event\":\"start\",\"time\":1796179512.250,\"ranks\":2}\n");   /* a run header */

    /* ---- reader ---- */
    ssl_plot_series s;
    SSL_EXPECT(ssl_plot_read(metrics, &s, err, sizeof err) == 0, "read: %s", err);
    const long long want_steps[] = {10, 20, 30, 40, 50, 60};
    const double want_loss[] = {6.0, 4.5, NAN, 4.0, 3.0, 2.5};
    const double want_lr[] = {0.001, 0.0025, 0.003, 0.004, 0.005, 0.006};
    SSL_EXPECT(s.first_step == 10 && s.last_step == 60, "step range %lld..%lld", s.first_step, s.last_step);
    SSL_EXPECT(s.steps == 6, "distinct steps %zu", s.steps);
    SSL_EXPECT(s.skipped == 2, "skipped %zu lines, want 2 (garbage, torn; step-less headers are not damage)",
               s.skipped);
    const ssl_plot_curve *loss = &s.curve[SSL_PLOT_PANEL_LOSS], *lr = &s.curve[SSL_PLOT_PANEL_LR],
                         *knn = &s.curve[SSL_PLOT_PANEL_KNN];
    SSL_EXPECT(loss->n == 6 && lr->n == 6, "loss %zu, lr %zu points", loss->n, lr->n);
    for (size_t i = 0; i < 6 && i < loss->n && i < lr->n; i++) {
        SSL_EXPECT(loss->step[i] == want_steps[i] && lr->step[i] == want_steps[i], "step[%zu] %lld %lld", i,
                   loss->step[i], lr->step[i]);
        SSL_EXPECT(isnan(want_loss[i]) ? isnan(loss->value[i]) : loss->value[i] == want_loss[i],
                   "loss[%zu] = %g, want %g", i, loss->value[i], want_loss[i]);
        SSL_EXPECT(lr->value[i] == want_lr[i], "lr[%zu] = %g, want %g", i, lr->value[i], want_lr[i]);
    }
    SSL_EXPECT(knn->n == 1 && knn->step[0] == 30 && knn->value[0] == 81.25, "knn: %zu points", knn->n);

    /* ---- renderer ---- */
    SSL_EXPECT(ssl_plot_render(&s, png, err, sizeof err) == 0, "render: %s", err);
    ssl_plot_series_free(&s);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", png);
    SSL_EXPECT(access(tmp, F_OK) != 0, "%s left behind", tmp);
    int w = 0, h = 0;
    uint8_t *px = read_png(png, &w, &h);
    SSL_EXPECT(px, "read back %s", png);
    if (px) {
        SSL_EXPECT(w == SSL_PLOT_WIDTH && h == SSL_PLOT_HEIGHT, "size %dx%d", w, h);
        const ssl_plot_rect rl = ssl_plot_data_rect(SSL_PLOT_PANEL_LOSS);
        const ssl_plot_rect rr = ssl_plot_data_rect(SSL_PLOT_PANEL_LR);
        const ssl_plot_rect rk = ssl_plot_data_rect(SSL_PLOT_PANEL_KNN);
        SSL_EXPECT(rl.y1 < rr.y0 && rr.y1 < rk.y0 && rk.y1 < h && rl.x1 < w, "panels stacked in the image");
        /* First step, loss 6.0 = the maximum: top-left corner of the loss data area. */
        SSL_EXPECT(count_in_column(px, w, rl.x0, rl.y0, rl.y0 + 1, SSL_PLOT_LOSS_RGB) > 0,
                   "loss curve at the first step's column");
        SSL_EXPECT(count_in_column(px, w, rl.x1, rl.y1 - 1, rl.y1 + 1, SSL_PLOT_LOSS_RGB) > 0,
                   "loss curve at the last step's column, at its minimum");
        /* loss at step 30 is null: nothing drawn in that column, though the lr line passes it. */
        const int x30 = step_x(rl, 30, 10, 60);
        SSL_EXPECT(count_in_column(px, w, x30, rl.y0 - 2, rl.y1 + 2, SSL_PLOT_LOSS_RGB) == 0,
                   "the null at step 30 breaks the loss line");
        SSL_EXPECT(count_in_column(px, w, x30, rr.y0 - 2, rr.y1 + 2, SSL_PLOT_LR_RGB) > 0,
                   "lr line at step 30");
        SSL_EXPECT(count_in_column(px, w, x30, rk.y0, rk.y1, SSL_PLOT_KNN_RGB) > 0, "kNN marker at step 30");
        SSL_EXPECT(count_in_rect(px, w, rl, SSL_PLOT_LR_RGB) == 0 &&
                       count_in_rect(px, w, rr, SSL_PLOT_LOSS_RGB) == 0,
                   "each curve stays in its panel");
        free(px);
    }

    /* No kNN record, a single step: still renders. */
    write_file(metrics, "{\"step\":5,\"loss\":1.0,\"lr\":0.1}\n");
    SSL_EXPECT(ssl_plot_metrics(metrics, png, err, sizeof err) == 0, "single record: %s", err);
    px = read_png(png, &w, &h);
    SSL_EXPECT(px && w == SSL_PLOT_WIDTH && h == SSL_PLOT_HEIGHT, "single-record PNG");
    if (px) {
        const ssl_plot_rect rl = ssl_plot_data_rect(SSL_PLOT_PANEL_LOSS);
        const ssl_plot_rect rk = ssl_plot_data_rect(SSL_PLOT_PANEL_KNN);
        SSL_EXPECT(count_in_column(px, w, (rl.x0 + rl.x1) / 2, rl.y0, rl.y1, SSL_PLOT_LOSS_RGB) > 0,
                   "single loss value drawn mid-panel");
        SSL_EXPECT(count_in_rect(px, w, rk, SSL_PLOT_KNN_RGB) == 0, "no kNN curve");
        free(px);
    }

    /* Errors name the path. */
    write_file(metrics, "garbage\n{\"loss\":1}\n");
    SSL_EXPECT(ssl_plot_metrics(metrics, png, err, sizeof err) != 0 && strstr(err, metrics) &&
                   strstr(err, "no parsable records"),
               "no records: %s", err);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.jsonl", dir);
    err[0] = '\0';
    SSL_EXPECT(ssl_plot_metrics(missing, png, err, sizeof err) != 0 && strstr(err, missing) &&
                   strstr(err, "No such file"),
               "missing file: %s", err);
    write_file(metrics, "{\"step\":1,\"loss\":1}\n");
    char bad_out[300];
    snprintf(bad_out, sizeof bad_out, "%s/no/such/dir/plot.png", dir);
    SSL_EXPECT(ssl_plot_metrics(metrics, bad_out, err, sizeof err) != 0 && strstr(err, bad_out),
               "unwritable output: %s", err);

    unlink(metrics);
    unlink(png);
    rmdir(dir);
    return ssl_test_exit();
}
