/* `sslrun plot RUN_DIR [--out FILE.png]`: loss, learning rate and kNN top-1 of a run as one PNG
 * (default RUN_DIR/plot.png). Reading and drawing live in io/plot.c so the unit test can reach them;
 * this file only turns arguments into paths and errors into the exit code. */
#include "io/plot.h"
#include "launch/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: sslrun plot RUN_DIR [--out FILE.png]\n");
    return 2;
}

int ssl_cmd_plot(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc || out) return usage();
            out = argv[++i];
        } else if (argv[i][0] == '-' || dir) {
            return usage();
        } else {
            dir = argv[i];
        }
    }
    if (!dir) return usage();

    /* A trailing slash on RUN_DIR is common from shell completion; avoid "runs/x//metrics.jsonl". */
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/') dlen--;
    const size_t room = dlen + sizeof "/metrics.jsonl";
    char *metrics = malloc(room), *def_out = malloc(room);
    if (!metrics || !def_out) {
        free(metrics);
        free(def_out);
        fprintf(stderr, "sslrun plot: out of memory\n");
        return 1;
    }
    snprintf(metrics, room, "%.*s/metrics.jsonl", (int)dlen, dir);
    snprintf(def_out, room, "%.*s/plot.png", (int)dlen, dir);
    if (!out) out = def_out;

    char err[2048];
    ssl_plot_series s;
    int rc = 1;
    if (ssl_plot_read(metrics, &s, err, sizeof err)) {
        fprintf(stderr, "sslrun plot: %s\n", err);
    } else {
        if (ssl_plot_render(&s, out, err, sizeof err)) {
            fprintf(stderr, "sslrun plot: %s\n", err);
        } else {
            printf("wrote %s: steps %lld..%lld (%zu logged, %zu kNN records", out, s.first_step, s.last_step,
                   s.steps, s.curve[SSL_PLOT_PANEL_KNN].n);
            if (s.skipped) printf(", %zu unreadable lines skipped", s.skipped);
            printf(")\n");
            rc = 0;
        }
        ssl_plot_series_free(&s);
    }
    free(metrics);
    free(def_out);
    return rc;
}
