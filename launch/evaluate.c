/* `sslrun eval CONFIG.yaml [k=v ...] [--ckpt PATH] [--random-init] [--raw-pixels]`: frozen-feature
 * evaluation of a pretrained encoder. Features of the train split (all of it, as DINO's eval_knn,
 * or the first eval.train_limit samples) and the test split are extracted once (eval-mode BN, the image resized to the model input and
 * normalised), then weighted kNN (DINO's eval_knn) and a linear probe run on them. Results go to the
 * terminal and RUN_DIR/eval.json. --random-init and --raw-pixels give the two baselines.
 * Under mpirun each rank loads the checkpoint, extracts its 1/P of each split (all-gathered) and votes
 * for its 1/P of the test rows, as the kNN monitor of pretraining; rank 0 runs the linear probe
 * (its GEMMs are small next to the extraction) and writes the results. */
#include "framework/comm/binding.h"
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "framework/core/timer.h"
#include "framework/eval/knn.h"
#include "framework/eval/linear_probe.h"
#include "io/checkpoint.h"
#include "io/dataset.h"
#include "io/metrics.h"
#include "io/prep.h"
#include "launch/cli.h"
#include "framework/train/ckpt_stage.h"
#include "framework/train/features.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssl_cmd_eval(int argc, char **argv)
{
    int random_init = ssl_cli_take_flag(&argc, argv, "--random-init");
    int raw = ssl_cli_take_flag(&argc, argv, "--raw-pixels");
    const char *ckpt = ssl_cli_take_value(&argc, argv, "--ckpt");
    if (argc < 1 || random_init + raw > 1 || (ckpt && random_init + raw)) {
        fprintf(stderr, "usage: sslrun eval CONFIG.yaml [k=v ...] [--ckpt PATH | --random-init | --raw-pixels]\n%s",
                argc < 1 ? "" : "(--ckpt, --random-init and --raw-pixels exclude each other)\n");
        return 2;
    }
    ssl_comm *comm = ssl_cli_job_begin();
    const int rank0 = comm->rank == 0, W = comm->world;
    char err[2048] = "", path[1200], used[1200] = ""; /* used: the checkpoint evaluated */
    ssl_config cfg;
    int bad_config = ssl_config_load(&cfg, argv[0], argc - 1, argv + 1, err, sizeof err) != 0;
    if (!bad_config && (!cfg.data.train[0] || !cfg.data.test[0])) {
        snprintf(err, sizeof err, "%s is empty: eval %s", cfg.data.train[0] ? "data.test" : "data.train",
                 cfg.data.train[0] ? "classifies its images" : "trains its kNN and linear probe on its features");
        bad_config = 1;
    }
    if (bad_config) {
        if (rank0) fprintf(stderr, "sslrun: %s\n", err);
        ssl_cli_job_end(comm);
        return 2;
    }
    if (W > 1) {
        omp_set_num_threads(ssl_cli_rank_threads(&cfg, comm));
        ssl_comm_watchdog_start(comm, cfg.comm.timeout_s);
    }
    ssl_session s;
    memset(&s, 0, sizeof s);
    ssl_features tr = {0}, te = {0};
    int rc = 1, agreed = 0; /* agreed: every rank failed alike (rank 0 reports) */
    ssl_binding bind; /* this rank's device before any context */
    if (ssl_session_bind(&cfg, comm, &bind, err, sizeof err)) goto out;
    ssl_dataset *probe = ssl_dataset_open(cfg.data.train, err, sizeof err);
    if (!probe) goto out;
    int C = ssl_dataset_channels(probe);
    ssl_dataset_close(probe);
    /* the session itself is per rank (no comm): sharded method state is not needed to evaluate */
    if (ssl_session_init(&s, &cfg, C, NULL, err, sizeof err)) goto out;
    const char *what = raw ? "raw pixels" : random_init ? "random init" : NULL;
    int64_t step = 0;
    if (!what) {
        ssl_ckpt ck = {0};
        ssl_session_ckpt_arrays(&s, &ck, NULL);
        ssl_ckpt_staging st;
        ssl_ckpt_stage_load(&st, &s.ctx, &ck);
        int found;
        if (ckpt) {
            found = ssl_ckpt_load(&ck, ckpt, err, sizeof err);
        } else {
            /* the run's newest checkpoint that loads (damaged newer ones are reported, not moved) */
            found = ssl_ckpt_resume(&ck, s.ckpt_dir, 0, path, sizeof path, err, sizeof err);
            if (found == 1) snprintf(err, sizeof err, "no checkpoint in %s (train first, or pass --ckpt)", s.ckpt_dir);
            if (!found) ckpt = path;
        }
        ssl_ckpt_stage_end(&st, found == 0);
        double bad = found != 0; /* the ranks read the file each: all go on, or all stop */
        ssl_allreduce(comm, &bad, 1, SSL_F64, SSL_MAX);
        if (bad > 0) {
            if (!found) snprintf(err, sizeof err, "another rank could not load the checkpoint");
            agreed = 1;
            goto out;
        }
        step = ck.step;
        snprintf(used, sizeof used, "%s", ckpt); /* path is reused for eval.json below */
        what = used;
    }
    double t0 = ssl_now();
    if (W > 1) {
        agreed = 1; /* the collective steps agree on failures inside */
        if (ssl_extract_features_all(&s, comm, cfg.data.train, cfg.eval.train_limit, raw, &tr, err, sizeof err) ||
            ssl_extract_features_all(&s, comm, cfg.data.test, 0, raw, &te, err, sizeof err))
            goto out;
    } else if (ssl_extract_features(&s, cfg.data.train, cfg.eval.train_limit, raw, &tr, err, sizeof err) ||
               ssl_extract_features(&s, cfg.data.test, 0, raw, &te, err, sizeof err)) {
        goto out;
    }
    if (rank0)
        printf("features (%s): %lld train, %lld test, dim %d, %.1f s on %d rank(s)\n", what, (long long)tr.n,
               (long long)te.n, tr.dim, ssl_now() - t0, W);
    double knn[8] = {0}, lin = 0;
    if (W > 1 ? ssl_eval_knn_all(&s, comm, &tr, &te, knn, err, sizeof err) : ssl_eval_knn(&s, &tr, &te, knn, err, sizeof err))
        goto out;
    agreed = 0; /* from here on rank 0 works alone */
    if (!rank0) {
        rc = 0;
        goto out;
    }
    for (int i = 0; i < cfg.eval.knn_k.n; i++)
        printf("kNN top-1 (k=%d, T=%.2f): %.2f%%\n", cfg.eval.knn_k.v[i], cfg.eval.knn_temperature, knn[i]);
    if (cfg.eval.linear_epochs > 0) {
        float *own_tr, *own_te;
        const float *xtr = ssl_features_device(&s.ctx, &tr, &own_tr), *xte = ssl_features_device(&s.ctx, &te, &own_te);
        int bad = ssl_linear_probe(&s.ctx, xtr, tr.y, tr.n, xte, te.y, te.n, tr.dim, tr.num_classes,
                                   cfg.eval.linear_epochs, (float)cfg.eval.linear_lr, cfg.eval.linear_batch, 0.0f,
                                   (uint64_t)cfg.run.seed, &lin, err, sizeof err);
        if (own_tr) s.ctx.be->free(own_tr);
        if (own_te) s.ctx.be->free(own_te);
        if (bad) goto out;
        printf("linear probe top-1 (%d epochs): %.2f%%\n", cfg.eval.linear_epochs, lin);
    }
    if (ssl_make_dirs(s.run_dir, err, sizeof err) == 0) {
        ssl_pathf(path, sizeof path, "%s/eval%s.json", s.run_dir, raw ? "_raw_pixels" : random_init ? "_random_init" : "");
        FILE *fp = fopen(path, "w");
        if (fp) {
            fprintf(fp, "{\"features\": \"%s\", ", raw ? "raw_pixels" : random_init ? "random_init" : "checkpoint");
            if (!raw && !random_init) { /* which one: --ckpt may name another run's */
                fprintf(fp, "\"checkpoint\": ");
                ssl_json_put_str(fp, used);
                fprintf(fp, ", ");
            }
            fprintf(fp, "\"step\": %lld, \"knn_temperature\": %g, \"knn_top1\": {", (long long)step,
                    cfg.eval.knn_temperature);
            for (int i = 0; i < cfg.eval.knn_k.n; i++)
                fprintf(fp, "%s\"%d\": %.4f", i ? ", " : "", cfg.eval.knn_k.v[i], knn[i]);
            fprintf(fp, "}, \"linear_top1\": %.6f, \"linear_epochs\": %d, \"train_samples\": %lld, "
                        "\"test_samples\": %lld}\n", lin, cfg.eval.linear_epochs, (long long)tr.n, (long long)te.n);
            fclose(fp);
            printf("wrote %s\n", path);
        }
    }
    rc = 0;
out:
    if (rc && (!agreed || rank0)) fprintf(stderr, "sslrun: %s%s\n", agreed ? "" : ssl_cli_job_prefix(), err);
    if (rc && !agreed && W > 1) comm->ops->abort(comm, 1); /* this rank alone: the others may wait for it */
    ssl_features_free(&tr);
    ssl_features_free(&te);
    if (s.params.data) ssl_session_free(&s);
    ssl_cli_job_end(comm);
    return rc;
}
