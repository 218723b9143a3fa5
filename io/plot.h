/* Training curves for `sslrun plot`: a tolerant reader for metrics.jsonl (io/metrics.c writes it) and
 * a PNG renderer with three stacked panels (loss, learning rate, kNN top-1) on a shared step axis.
 * No JSON or plotting library: the records are flat, and the figure only needs lines and a 5x7 font. */
#ifndef SSL_IO_PLOT_H
#define SSL_IO_PLOT_H

#include <stddef.h>

/* Figure size and series colours (0xRRGGBB), public so tests can look for the curves in the PNG. */
#define SSL_PLOT_WIDTH 900
#define SSL_PLOT_HEIGHT 700
#define SSL_PLOT_LOSS_RGB 0x1f77b4
#define SSL_PLOT_LR_RGB 0xd62728
#define SSL_PLOT_KNN_RGB 0x2ca02c

enum { SSL_PLOT_PANEL_LOSS, SSL_PLOT_PANEL_LR, SSL_PLOT_PANEL_KNN, SSL_PLOT_NPANELS };

/* One metric over steps, ascending and unique. value is NaN where the record held null (or a
 * non-finite number): the line breaks there instead of bridging over a divergence. */
typedef struct {
    long long *step;
    double *value;
    size_t n;
} ssl_plot_curve;

typedef struct {
    ssl_plot_curve curve[SSL_PLOT_NPANELS]; /* "loss", "lr", "knn_top1" */
    long long first_step, last_step;        /* over every record, so the panels share one axis */
    size_t steps;                           /* distinct steps with at least one record */
    size_t skipped;                         /* non-blank lines that held no usable record */
} ssl_plot_series;

/* Read metrics.jsonl. Keys may come in any order; unknown keys, strings, booleans and nested values
 * are ignored; a line without an integral "step" or that is not one JSON object is skipped and
 * counted (a torn line from a crash followed on the same line by a resumed run's record still
 * yields that record). A resumed run re-logs steps: per step and key the last line in the file
 * wins, and a kNN-only line at a step keeps that step's loss and lr.
 * Returns 0, or -1 with "<path>: <reason>" in err (unreadable, or no record at all); on success
 * free *out with ssl_plot_series_free. */
int ssl_plot_read(const char *path, ssl_plot_series *out, char *err, size_t errlen);
void ssl_plot_series_free(ssl_plot_series *s);

/* Data area of a panel in pixels: the first step maps to column x0, the last to x1 (a single step:
 * the middle), the curve's maximum to row y0 and its minimum to row y1 (constant: the middle). */
typedef struct {
    int x0, y0, x1, y1;
} ssl_plot_rect;
ssl_plot_rect ssl_plot_data_rect(int panel);

/* Render SSL_PLOT_WIDTH x SSL_PLOT_HEIGHT RGB to png_path, written as png_path.tmp and renamed so
 * a reader never sees half a PNG. Returns 0, or -1 with "<path>: <reason>" in err. */
int ssl_plot_render(const ssl_plot_series *s, const char *png_path, char *err, size_t errlen);

/* ssl_plot_read + ssl_plot_render. */
int ssl_plot_metrics(const char *metrics_path, const char *png_path, char *err, size_t errlen);

#endif
