/* Small subcommands: dataset preparation (public datasets, image folders), augmentation preview and
 * config inspection. */
#include "io/config.h"
#include "io/dataset.h"
#include "io/png_grid.h"
#include "io/prep.h"
#include "io/shard_verify.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "launch/cli.h"
#include "framework/train/session.h"
#include "framework/train/views.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssl_cmd_prep(int argc, char **argv)
{
    const char *out = ssl_cli_take_value(&argc, argv, "--out"), *src = ssl_cli_take_value(&argc, argv, "--src");
    const char *shard = ssl_cli_take_value(&argc, argv, "--shard-size");
    const char *size = ssl_cli_take_value(&argc, argv, "--size"), *prefix = ssl_cli_take_value(&argc, argv, "--prefix");
    const char *format = ssl_cli_take_value(&argc, argv, "--format"), *quality = ssl_cli_take_value(&argc, argv, "--quality");
    const char *verify = ssl_cli_take_value(&argc, argv, "--verify");
    const char *labels = ssl_cli_take_value(&argc, argv, "--labels"), *classes = ssl_cli_take_value(&argc, argv, "--classes");
    const int force = ssl_cli_take_flag(&argc, argv, "--force");
    if (verify && argc == 0 && !out && !src && !shard && !size && !prefix && !format && !quality && !labels &&
        !classes && !force)
        return ssl_shard_verify(verify, stdout) == 0 ? 0 : 1;
    const int images = argc >= 1 && !strcmp(argv[0], "images");
    if (images && argc == 2 && !src) { /* the source folder may also come positionally */
        src = argv[1];
        argc = 1;
    }
    if (argc != 1 || !out || verify || (!images && (size || prefix || format || quality || labels || classes || force)) ||
        (images && !src) || (classes && !labels)) {
        fprintf(stderr, "usage: sslrun prep fashion-mnist|cifar10|cifar100 [--src DIR] --out DIR "
                        "[--shard-size N]\n"
                        "       [mpirun -np P] sslrun prep images SRC_DIR --out DIR [--size S] [--prefix NAME] "
                        "[--shard-size N] [--format raw|jpeg] [--quality Q] [--force]\n"
                        "       [mpirun -np P] sslrun prep images VAL_DIR --out DIR --prefix val --labels FILE "
                        "[--classes CLASSES.txt] ...\n"
                        "       sslrun prep --verify DIR|GLOB|SHARD\n"
                        "  images: SRC_DIR/<class>/<image> (PNG, JPEG) -> DIR/NAME-*.h5 (NAME: train) "
                        "and DIR/classes.txt;\n"
                        "  --size S: shorter side to S, centre S x S crop (default: keep the size, "
                        "which must be the same for all)\n"
                        "  --format jpeg: JPEG shards, each image its own size (--size S: shorter side "
                        "to S, no crop);\n"
                        "    JPEG files stored as they are when not resized, others encoded at "
                        "--quality Q (default 90)\n"
                        "  --labels FILE: VAL_DIR is a flat folder of images labelled by FILE (LOC_val_solution.csv,\n"
                        "    or 'name class' lines) with classes from --classes (default DIR/classes.txt)\n"
                        "  under mpirun every rank writes every P-th shard; a rerun resumes (DIR/NAME.manifest),\n"
                        "    other options or files are refused unless --force (start over)\n"
                        "  cifar10/cifar100: the binary or the Python (pickle) release\n"
                        "  --verify: read every shard whole (checksums) and decode every JPEG; "
                        "exit 1 if any is bad\n");
        return 2;
    }
    int ss = 10000, S = 0, Q = 90;
    if (format && strcmp(format, "raw") && strcmp(format, "jpeg")) {
        fprintf(stderr, "sslrun prep: --format expects raw or jpeg, got '%s'\n", format);
        return 2;
    }
    if (quality && (ssl_cli_parse_int(quality, 1, 100, &Q) || !format || strcmp(format, "jpeg"))) {
        fprintf(stderr, "sslrun prep: --quality expects an integer in [1, 100] with --format jpeg, "
                        "got '%s'\n", quality);
        return 2;
    }
    if (shard && ssl_cli_parse_int(shard, 1, INT_MAX, &ss)) {
        fprintf(stderr, "sslrun prep: --shard-size expects a positive integer, got '%s'\n", shard);
        return 2;
    }
    if (size && ssl_cli_parse_int(size, 1, 8192, &S)) {
        fprintf(stderr, "sslrun prep: --size expects an integer in [1, 8192], got '%s'\n", size);
        return 2;
    }
    if (!images && ssl_comm_mpi_launched()) {
        fprintf(stderr, "sslrun prep %s: runs in one process; start it without mpirun\n", argv[0]);
        return 2;
    }
    char err[2048];
    int rc;
    if (!strcmp(argv[0], "fashion-mnist"))
        rc = ssl_prep_fashion_mnist(src ? src : "/usr/share/datasets/fashion-mnist", out, ss, err, sizeof err);
    else if (!strcmp(argv[0], "cifar10") || !strcmp(argv[0], "cifar100"))
        rc = src ? ssl_prep_cifar(src, out, !strcmp(argv[0], "cifar100"), ss, err, sizeof err) : -1;
    else if (images) {
        /* every rank runs the prep (ssl_prep_images shares the work) and reports the same result */
        ssl_comm *comm = ssl_cli_job_begin();
        const ssl_prep_images_opts o = {.prefix = prefix ? prefix : "train", .size = S, .shard_size = ss,
                                        .format = format && !strcmp(format, "jpeg") ? SSL_PREP_JPEG : SSL_PREP_RAW,
                                        .quality = Q, .labels = labels, .classes = classes, .force = force,
                                        .comm = comm};
        rc = ssl_prep_images(src, out, &o, err, sizeof err);
        const int rank = comm->rank;
        /* rank 0 reports before the ranks part: a rank that exits non-zero first makes mpirun kill the rest */
        if (rc && rank == 0) fprintf(stderr, "sslrun prep: %s\n", err), fflush(stderr);
        ssl_barrier(comm);
        ssl_cli_job_end(comm);
        if (rc) return 1;
        if (rank != 0) return 0;
    } else {
        fprintf(stderr, "sslrun prep: unknown dataset '%s' (fashion-mnist, cifar10, cifar100, images)\n", argv[0]);
        return 2;
    }
    if (rc && !src && strcmp(argv[0], "fashion-mnist")) { /* a usage error */
        fprintf(stderr, "sslrun prep: --src DIR is required for %s\n", argv[0]);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "sslrun prep: %s\n", err);
        return 1;
    }
    printf("wrote %s shards to %s\n", argv[0], out);
    return 0;
}

int ssl_cmd_augment_preview(int argc, char **argv)
{
    const char *out = ssl_cli_take_value(&argc, argv, "--out");
    if (argc < 1 || !out) {
        fprintf(stderr, "usage: sslrun augment-preview CONFIG.yaml [k=v ...] --out grid.png\n");
        return 2;
    }
    char err[2048];
    ssl_config cfg;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err)) {
        fprintf(stderr, "sslrun: %s\n", err);
        return 2;
    }
    ssl_dataset *ds = ssl_dataset_open(cfg.data.train, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "sslrun: %s\n", err);
        return 1;
    }
    const int n = 8, C = ssl_dataset_channels(ds);
    ssl_view_plan plan;
    ssl_view_pipes vp;
    int rc = 1;
    ssl_batch_buf buf = {0};
    ssl_batch b;
    void *scratch = NULL;
    float *views = NULL, *grid = NULL;
    int64_t idx[8];
    for (int i = 0; i < n; i++) idx[i] = i * (ssl_dataset_size(ds) / n);
    if (ssl_method_configure(&cfg, &plan, err, sizeof err) ||
        ssl_view_pipes_init(&vp, ssl_method_find(cfg.method.name), &plan, &cfg, C, err, sizeof err) ||
        ssl_batch_read(ds, idx, n, 0, &buf, &b, err, sizeof err))
        goto done;
    views = ssl_malloc(ssl_view_pipes_floats(&vp, n, C) * sizeof(float));
    grid = ssl_malloc(ssl_view_pipes_floats(&vp, n, C) * sizeof(float));
    scratch = ssl_calloc(1, ssl_view_pipes_scratch_bytes(&vp));
    for (int i = 0; i < n; i++) /* the trainer's per-sample path: JPEG decoded at the crops' scale */
        if (ssl_view_pipes_sample(&vp, (uint64_t)cfg.run.seed, &b, i, i, views, scratch, err, sizeof err)) goto done;
    ssl_views v;
    ssl_view_pipes_bind(&vp, n, C, views, &v);
    /* one PNG per view group (its own size): one image per row, its views side by side */
    for (int g = 0, first = 0; g < v.ngroups; first += plan.group[g++].count) {
        const int cnt = plan.group[g].count, S = plan.group[g].size;
        const size_t per = (size_t)C * S * S;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < cnt; k++)
                memcpy(grid + ((size_t)i * cnt + k) * per, v.group[g].data + ((size_t)k * n + i) * per,
                       per * sizeof(float));
        char path[PATH_MAX];
        const char *dot = strrchr(out, '.');
        if (g == 0) snprintf(path, sizeof path, "%s", out);
        else snprintf(path, sizeof path, "%.*s-group%d%s", dot ? (int)(dot - out) : (int)strlen(out), out, g, dot ? dot : "");
        const ssl_augment_config *a = &vp.pipe[first];
        if (ssl_png_write_grid(path, grid, n * cnt, C, S, cnt, a->mean, a->std, err, sizeof err)) goto done;
        printf("wrote %s: %d images x %d views of %dx%d (view group %d of %s)\n", path, n, cnt, S, S, g, cfg.method.name);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "sslrun: %s\n", err);
    ssl_free(grid);
    ssl_batch_buf_free(&buf);
    if (scratch) ssl_view_scratch_free(scratch);
    ssl_free(scratch);
    ssl_free(views);
    ssl_dataset_close(ds);
    return rc ? 1 : 0;
}

int ssl_cmd_config(int argc, char **argv)
{
    if (argc == 0) {
        ssl_config_print_schema(stdout);
        return 0;
    }
    char err[2048];
    ssl_config cfg;
    ssl_view_plan plan;
    if (ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) ||
        ssl_method_configure(&cfg, &plan, err, sizeof err)) { /* the method's own checks: what pretrain would refuse */
        fprintf(stderr, "sslrun: %s\n", err);
        return 2;
    }
    ssl_config_print(&cfg, stdout);
    return 0;
}
