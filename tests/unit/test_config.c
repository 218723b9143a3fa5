/* Typed YAML config: defaults, a full file, overrides, every error class with its exact
 * file:line:col and dotted key, did-you-mean suggestions, bool and list forms, the printed table,
 * and write -> load round trips compared key by key through the schema. */
#include <stdio.h>

#include "common/testutil.h"
#include "io/config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    SSL_EXPECT(fp != NULL, "cannot create %s", path);
    if (!fp) return;
    fputs(text, fp);
    fclose(fp);
}

static void path_in_dir(const char *dir, char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* Load yaml (written to err.yaml; NULL: no file) with overrides, expecting failure with a message
 * that contains every non-NULL want. The position is asserted as the exact "err.yaml:L:C: " so a
 * line or column off by one fails. */
static void expect_error(const char *dir, int line, const char *yaml, int nov, const char **ov,
                         const char *want1, const char *want2, const char *want3)
{
    char path[256], err[1024] = "";
    path_in_dir(dir, path, sizeof path, "err.yaml");
    if (yaml) write_file(path, yaml);
    ssl_config c;
    int rc = ssl_config_load(&c, yaml ? path : NULL, nov, (char **)ov, err, sizeof err);
    if (rc != -1) {
        ssl_test_failures++;
        fprintf(stderr, "FAIL %s:%d: load succeeded, expected an error containing '%s'\n", __FILE__,
                line, want1);
        return;
    }
    const char *wants[3] = {want1, want2, want3};
    for (int i = 0; i < 3; i++) {
        if (wants[i] && !strstr(err, wants[i])) {
            ssl_test_failures++;
            fprintf(stderr, "FAIL %s:%d: error\n  %s\nlacks\n  %s\n", __FILE__, line, err,
                    wants[i]);
        }
    }
}
#define EXPECT_ERR(yaml, w1, w2, w3) expect_error(dir, __LINE__, yaml, 0, NULL, w1, w2, w3)

/* Key-by-key equality through the schema (not memcmp: padding and unused list slots must not
 * matter, and a failure should name the key). */
static int same_values(const ssl_config *a, const ssl_config *b, const char *what)
{
    int n, ok = 1;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++) {
        const void *x = (const char *)a + s[i].offset, *y = (const char *)b + s[i].offset;
        int eq = 1;
        switch (s[i].type) {
        case SSL_CONFIG_INT: eq = *(const int *)x == *(const int *)y; break;
        case SSL_CONFIG_FLOAT: eq = *(const double *)x == *(const double *)y; break;
        case SSL_CONFIG_BOOL: eq = *(const bool *)x == *(const bool *)y; break;
        case SSL_CONFIG_STRING:
        case SSL_CONFIG_ENUM: eq = strcmp(x, y) == 0; break;
        case SSL_CONFIG_FLOATS: {
            const ssl_config_floats *p = x, *q = y;
            eq = p->n == q->n;
            for (int j = 0; eq && j < p->n; j++)
                eq = p->v[j] == q->v[j];
            break;
        }
        case SSL_CONFIG_INTS: {
            const ssl_config_ints *p = x, *q = y;
            eq = p->n == q->n;
            for (int j = 0; eq && j < p->n; j++)
                eq = p->v[j] == q->v[j];
            break;
        }
        }
        if (!eq) {
            char va[256], vb[256];
            ssl_config_format(a, &s[i], va, sizeof va);
            ssl_config_format(b, &s[i], vb, sizeof vb);
            fprintf(stderr, "  %s: %s.%s differs: %s vs %s\n", what, s[i].section, s[i].key, va,
                    vb);
            ok = 0;
        }
    }
    return ok;
}

static void test_defaults(void)
{
    ssl_config c;
    ssl_config_defaults(&c);
    SSL_EXPECT(strcmp(c.run.name, "simclr") == 0, "run.name %s", c.run.name);
    SSL_EXPECT(strcmp(c.run.out_dir, "runs") == 0, "run.out_dir");
    SSL_EXPECT(c.run.seed == 0 && c.run.log_every == 10 && c.run.version == SSL_CONFIG_VERSION,
               "run ints");
    SSL_EXPECT(strcmp(c.model.arch, "resnet18") == 0 && c.model.small_stem && c.model.width == 64 &&
                   c.model.img_size == 32 && c.model.patch_size == 4 && !c.model.sincos_pos,
               "model");
    SSL_EXPECT(strcmp(c.method.name, "simclr") == 0 && c.simclr.temperature == 0.2 &&
                   c.simclr.proj_hidden == 2048 && c.simclr.proj_dim == 128 &&
                   c.simclr.proj_layers == 2 && c.run.version == SSL_CONFIG_VERSION,
               "method");
    SSL_EXPECT(c.data.train[0] == '\0' && c.data.test[0] == '\0' && c.data.batch_size == 256 &&
                   c.data.workers == 2 && c.data.drop_last && c.data.limit == 0,
               "data");
    const ssl_config_augment *a = &c.augment;
    SSL_EXPECT(a->views == 2 && a->crop_scale.n == 2 && a->crop_scale.v[0] == 0.08 &&
                   a->crop_scale.v[1] == 1.0 && a->crop_ratio.n == 2 &&
                   a->crop_ratio.v[0] == 0.75 && a->crop_ratio.v[1] == 1.3333,
               "augment crops");
    SSL_EXPECT(a->flip_p == 0.5 && a->jitter_p == 0.8 && a->brightness == 0.4 &&
                   a->contrast == 0.4 && a->saturation == 0.4 && a->hue == 0.1 &&
                   a->grayscale_p == 0.2 && a->blur_p == 0 && a->solarize_p == 0,
               "augment probabilities");
    SSL_EXPECT(a->blur_sigma.n == 2 && a->blur_sigma.v[0] == 0.1 && a->blur_sigma.v[1] == 2.0 &&
                   a->mean.n == 0 && a->std.n == 0,
               "augment lists");
    const ssl_config_optim *o = &c.optim;
    SSL_EXPECT(strcmp(o->name, "lars") == 0 && o->lr == 0.3 &&
                   strcmp(o->lr_scaling, "linear") == 0 && o->weight_decay == 1e-6 &&
                   o->momentum == 0.9 && !o->nesterov && o->beta1 == 0.9 && o->beta2 == 0.999 &&
                   o->eps == 1e-8 && o->eta == 0.001 && o->clip_grad == 0 && o->accum_steps == 1,
               "optim");
    SSL_EXPECT(c.schedule.epochs == 100 && c.schedule.warmup_epochs == 10 &&
                   c.schedule.final_lr == 0 && c.schedule.wd_end == -1,
               "schedule");
    SSL_EXPECT(c.checkpoint.every_steps == 0 && c.checkpoint.keep == 3 && c.checkpoint.resume,
               "checkpoint");
    SSL_EXPECT(c.eval.knn_k.n == 2 && c.eval.knn_k.v[0] == 20 && c.eval.knn_k.v[1] == 200 &&
                   c.eval.knn_temperature == 0.07 && c.eval.knn_every_epochs == 0 &&
                   c.eval.linear_epochs == 10 && c.eval.linear_lr == 0.1 &&
                   c.eval.linear_batch == 256,
               "eval");
    SSL_EXPECT(strcmp(c.device.backend, "cpu") == 0 && c.device.threads == 0, "device");

    char err[512] = "";
    SSL_EXPECT(ssl_config_validate(&c, err, sizeof err) == 0, "defaults invalid: %s", err);
    /* Loading nothing gives the defaults. */
    ssl_config d;
    SSL_EXPECT(ssl_config_load(&d, NULL, 0, NULL, err, sizeof err) == 0, "load(NULL): %s", err);
    SSL_EXPECT(same_values(&c, &d, "load(NULL) vs defaults"), "load(NULL) == defaults");
    SSL_EXPECT(ssl_config_compare(&c, &d, NULL, 0) == 0, "compare defaults");

    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    SSL_EXPECT(n >= 60, "schema has %d keys", n);
    SSL_EXPECT(ssl_config_find("optim.lr") && ssl_config_find("optim.lr")->type == SSL_CONFIG_FLOAT,
               "find optim.lr");
    SSL_EXPECT(!ssl_config_find("optim.nope") && !ssl_config_find("nodot"), "find unknown");
    for (int i = 0; i < n; i++)
        SSL_EXPECT(s[i].doc && *s[i].doc, "%s.%s has no doc", s[i].section, s[i].key);
}

static const char *full_yaml = "# a full recipe\n"
                               "run:\n"
                               "  name: fmnist_simclr\n"
                               "  out_dir: /scratch/runs\n"
                               "  seed: 42\n"
                               "  log_every: 5\n"
                               "  version: 2\n"
                               "model:\n"
                               "  arch: vit_small\n"
                               "  small_stem: no\n"
                               "  width: 32\n"
                               "  img_size: 28\n"
                               "  patch_size: 7\n"
                               "  sincos_pos: yes\n"
                               "method:\n"
                               "  name: simclr\n"
                               "simclr:\n"
                               "  temperature: 0.5\n"
                               "  proj_hidden: 512\n"
                               "  proj_dim: 64\n"
                               "  proj_layers: 3\n"
                               "data:\n"
                               "  train: \"/data/fmnist/train-*.h5\"\n"
                               "  test: '/data/fmnist/test.h5'\n"
                               "  batch_size: 512\n"
                               "  workers: 4\n"
                               "  drop_last: false\n"
                               "  limit: 1000\n"
                               "augment:\n"
                               "  views: 4\n"
                               "  crop_scale: [0.2, 1.0]\n"
                               "  crop_ratio: [0.5, 2]\n"
                               "  flip_p: 0.25\n"
                               "  jitter_p: 0.5\n"
                               "  brightness: 0.3\n"
                               "  contrast: 0.2\n"
                               "  saturation: 0.1\n"
                               "  hue: 0.05\n"
                               "  grayscale_p: 0.1\n"
                               "  blur_p: 0.5\n"
                               "  blur_sigma:\n"
                               "    - 0.5\n"
                               "    - 1.5\n"
                               "  solarize_p: 0.2\n"
                               "  mean: [0.2860]\n"
                               "  std: [0.3530]\n"
                               "optim:\n"
                               "  name: adamw\n"
                               "  lr: 1.5e-4\n"
                               "  lr_scaling: sqrt\n"
                               "  weight_decay: 0.05\n"
                               "  momentum: 0.95\n"
                               "  nesterov: true\n"
                               "  beta1: 0.8\n"
                               "  beta2: 0.95\n"
                               "  eps: 1e-6\n"
                               "  eta: 0.02\n"
                               "  clip_grad: 3.0\n"
                               "  accum_steps: 2\n"
                               "schedule:\n"
                               "  epochs: 200\n"
                               "  warmup_epochs: 2.5\n"
                               "  final_lr: 1e-6\n"
                               "  wd_end: 0.4\n"
                               "checkpoint:\n"
                               "  every_steps: 500\n"
                               "  keep: 0\n"
                               "  resume: off\n"
                               "eval:\n"
                               "  knn_k: [1, 10, 50]\n"
                               "  knn_temperature: 0.1\n"
                               "  knn_every_epochs: 10\n"
                               "  linear_epochs: 0\n"
                               "  linear_lr: 0.5\n"
                               "  linear_batch: 1024\n"
                               "device:\n"
                               "  backend: cuda\n"
                               "  threads: 8\n";

static void check_full(const ssl_config *c)
{
    SSL_EXPECT(strcmp(c->run.name, "fmnist_simclr") == 0 &&
                   strcmp(c->run.out_dir, "/scratch/runs") == 0 && c->run.seed == 42 &&
                   c->run.log_every == 5 && c->run.version == 2,
               "run");
    SSL_EXPECT(strcmp(c->model.arch, "vit_small") == 0 && !c->model.small_stem &&
                   c->model.width == 32 && c->model.img_size == 28 && c->model.patch_size == 7 &&
                   c->model.sincos_pos,
               "model");
    SSL_EXPECT(c->simclr.temperature == 0.5 && c->simclr.proj_hidden == 512 &&
                   c->simclr.proj_dim == 64 && c->simclr.proj_layers == 3,
               "simclr");
    SSL_EXPECT(strcmp(c->data.train, "/data/fmnist/train-*.h5") == 0 &&
                   strcmp(c->data.test, "/data/fmnist/test.h5") == 0 && c->data.batch_size == 512 &&
                   c->data.workers == 4 && !c->data.drop_last && c->data.limit == 1000,
               "data");
    const ssl_config_augment *a = &c->augment;
    SSL_EXPECT(a->views == 4 && a->crop_scale.n == 2 && a->crop_scale.v[0] == 0.2 &&
                   a->crop_scale.v[1] == 1.0 && a->crop_ratio.v[0] == 0.5 &&
                   a->crop_ratio.v[1] == 2.0,
               "crops");
    SSL_EXPECT(a->flip_p == 0.25 && a->jitter_p == 0.5 && a->brightness == 0.3 &&
                   a->contrast == 0.2 && a->saturation == 0.1 && a->hue == 0.05 &&
                   a->grayscale_p == 0.1 && a->blur_p == 0.5 && a->solarize_p == 0.2,
               "augment scalars");
    SSL_EXPECT(a->blur_sigma.n == 2 && a->blur_sigma.v[0] == 0.5 && a->blur_sigma.v[1] == 1.5,
               "block-sequence blur_sigma");
    SSL_EXPECT(a->mean.n == 1 && a->mean.v[0] == 0.2860 && a->std.n == 1 && a->std.v[0] == 0.3530,
               "mean/std");
    const ssl_config_optim *o = &c->optim;
    SSL_EXPECT(strcmp(o->name, "adamw") == 0 && o->lr == 1.5e-4 &&
                   strcmp(o->lr_scaling, "sqrt") == 0 && o->weight_decay == 0.05 &&
                   o->momentum == 0.95 && o->nesterov && o->beta1 == 0.8 && o->beta2 == 0.95 &&
                   o->eps == 1e-6 && o->eta == 0.02 && o->clip_grad == 3.0 && o->accum_steps == 2,
               "optim");
    SSL_EXPECT(c->schedule.epochs == 200 && c->schedule.warmup_epochs == 2.5 &&
                   c->schedule.final_lr == 1e-6 && c->schedule.wd_end == 0.4,
               "schedule");
    SSL_EXPECT(c->checkpoint.every_steps == 500 && c->checkpoint.keep == 0 && !c->checkpoint.resume,
               "checkpoint");
    SSL_EXPECT(c->eval.knn_k.n == 3 && c->eval.knn_k.v[0] == 1 && c->eval.knn_k.v[1] == 10 &&
                   c->eval.knn_k.v[2] == 50 && c->eval.knn_temperature == 0.1 &&
                   c->eval.knn_every_epochs == 10 && c->eval.linear_epochs == 0 &&
                   c->eval.linear_lr == 0.5 && c->eval.linear_batch == 1024,
               "eval");
    SSL_EXPECT(strcmp(c->device.backend, "cuda") == 0 && c->device.threads == 8, "device");
}

static void test_full_file_and_overrides(const char *dir)
{
    char path[256], err[1024] = "";
    path_in_dir(dir, path, sizeof path, "full.yaml");
    write_file(path, full_yaml);
    ssl_config c;
    SSL_EXPECT(ssl_config_load(&c, path, 0, NULL, err, sizeof err) == 0, "full: %s", err);
    check_full(&c);

    /* Overrides win over the file, apply in order (the later of two wins), and take strings
     * verbatim: a glob and a '#' that YAML would read as an alias and a comment. */
    const char *ov[] = {"optim.lr=0.6",
                        "augment.crop_scale=[0.3,0.9]",
                        "data.train=*.h5",
                        "run.name=exp #3: b",
                        "model.sincos_pos=off",
                        "eval.knn_k=[5]",
                        "optim.lr=0.7",
                        "data.test=",
                        "run.out_dir=\"quoted: yes\"",
                        "augment.mean=[0.5, 0.25, 0.125]",
                        "augment.std=[1, 2, 4]"};
    int nov = (int)(sizeof ov / sizeof ov[0]);
    SSL_EXPECT(ssl_config_load(&c, path, nov, (char **)ov, err, sizeof err) == 0, "overrides: %s",
               err);
    SSL_EXPECT(c.optim.lr == 0.7, "later override wins: %g", c.optim.lr);
    SSL_EXPECT(c.augment.crop_scale.n == 2 && c.augment.crop_scale.v[0] == 0.3 &&
                   c.augment.crop_scale.v[1] == 0.9,
               "list override");
    SSL_EXPECT(strcmp(c.data.train, "*.h5") == 0, "glob verbatim: %s", c.data.train);
    SSL_EXPECT(strcmp(c.run.name, "exp #3: b") == 0, "string verbatim: %s", c.run.name);
    SSL_EXPECT(strcmp(c.run.out_dir, "quoted: yes") == 0, "quoted string: %s", c.run.out_dir);
    SSL_EXPECT(!c.model.sincos_pos, "bool override");
    SSL_EXPECT(c.eval.knn_k.n == 1 && c.eval.knn_k.v[0] == 5, "int list override");
    SSL_EXPECT(c.data.test[0] == '\0', "empty override");
    SSL_EXPECT(c.augment.mean.n == 3 && c.augment.mean.v[2] == 0.125 && c.augment.std.v[2] == 4,
               "float list of 3");
    SSL_EXPECT(c.run.seed == 42 && c.schedule.epochs == 200, "file values kept");

    /* ssl_config_set directly: same rules, no prefix. */
    SSL_EXPECT(ssl_config_set(&c, "schedule.epochs", "7", err, sizeof err) == 0, "set: %s", err);
    SSL_EXPECT(c.schedule.epochs == 7, "set epochs");
    SSL_EXPECT(ssl_config_set(&c, "schedule.epochs", "x", err, sizeof err) == -1 &&
                   strcmp(err, "'schedule.epochs' expects an integer, got 'x'") == 0,
               "set error: %s", err);
    SSL_EXPECT(ssl_config_set(&c, "epochs", "1", err, sizeof err) == -1 &&
                   strstr(err, "'epochs' is not a section.key name"),
               "set bad name: %s", err);

    /* ssl_config_parse names the text's origin in its messages (config stored in checkpoints). */
    ssl_config_defaults(&c);
    const char *text = "optim:\n  lr: 0.1\n  lrr: 2\n";
    SSL_EXPECT(
        ssl_config_parse(&c, text, strlen(text), "ckpt.h5:/config", err, sizeof err) == -1 &&
            strstr(err, "ckpt.h5:/config:3:3: unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
        "parse error: %s", err);
}

static void test_bools(const char *dir)
{
    const char *forms[][2] = {{"true", "1"}, {"false", "0"}, {"yes", "1"},  {"no", "0"},
                              {"on", "1"},   {"off", "0"},   {"True", "1"}, {"FALSE", "0"},
                              {"Yes", "1"},  {"NO", "0"}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char yaml[128], path[256], err[512] = "";
        snprintf(yaml, sizeof yaml, "checkpoint:\n  resume: %s\ndata:\n  drop_last: %s\n",
                 forms[i][0], forms[i][0]);
        path_in_dir(dir, path, sizeof path, "bool.yaml");
        write_file(path, yaml);
        ssl_config c;
        int rc = ssl_config_load(&c, path, 0, NULL, err, sizeof err);
        int want = forms[i][1][0] == '1';
        SSL_EXPECT(rc == 0 && c.checkpoint.resume == want && c.data.drop_last == want,
                   "bool form %s: rc %d %s", forms[i][0], rc, err);
        char ov[64];
        snprintf(ov, sizeof ov, "model.small_stem=%s", forms[i][0]);
        const char *ovp[] = {ov};
        rc = ssl_config_load(&c, NULL, 1, (char **)ovp, err, sizeof err);
        SSL_EXPECT(rc == 0 && c.model.small_stem == want, "bool override %s", ov);
    }
    EXPECT_ERR("data:\n  drop_last: 1\n", "err.yaml:2:14: ",
               "'data.drop_last' expects a boolean (true/false, yes/no, on/off), got '1'", NULL);
    EXPECT_ERR("data:\n  drop_last: \"true\"\n",
               "err.yaml:2:14: ", "'data.drop_last' expects a boolean",
               "got the quoted string 'true'");
}

static void test_errors(const char *dir)
{
    /* Unknown key, with the suggestion from the alias table, at the key's position. */
    EXPECT_ERR("run:\n"
               "  seed: 1\n"
               "\n"
               "optim:\n"
               "  name: sgd\n"
               "  # a comment line still counts\n"
               "  lerning_rate: 0.1\n",
               "err.yaml:7:3: unknown key 'optim.lerning_rate' (did you mean 'optim.lr'?)", NULL,
               NULL);
    EXPECT_ERR("simclr:\n  temprature: 0.5\n", "err.yaml:2:3: ",
               "unknown key 'simclr.temprature' (did you mean 'simclr.temperature'?)", NULL);
    EXPECT_ERR("data:\n  bs: 64\n", "err.yaml:2:3: ", "(did you mean 'data.batch_size'?)", NULL);
    EXPECT_ERR("optim:\n  lr: 0.1\n  batch_size: 64\n",
               "err.yaml:3:3: ", "unknown key 'optim.batch_size' (did you mean 'data.batch_size'?)",
               NULL);
    EXPECT_ERR("optim:\n  zzzzzz: 1\n", "err.yaml:2:3: unknown key 'optim.zzzzzz'",
               "(keys of 'optim': name, lr,", NULL);
    /* Unknown section, with a suggestion; a key written at the top level. */
    EXPECT_ERR("run:\n  seed: 1\noptimizer:\n  lr: 0.1\n",
               "err.yaml:3:1: unknown section 'optimizer' (did you mean 'optim'?)", NULL, NULL);
    EXPECT_ERR("augmnet:\n  views: 2\n",
               "err.yaml:1:1: unknown section 'augmnet' (did you mean 'augment'?)", NULL, NULL);
    EXPECT_ERR("\nlr: 0.1\n", "err.yaml:2:1: unknown section 'lr' (did you mean 'optim.lr'?)", NULL,
               NULL);
    EXPECT_ERR("qqqqqq:\n  x: 1\n", "err.yaml:1:1: unknown section 'qqqqqq' (sections: run, model,",
               NULL, NULL);

    /* Wrong types, at the value's position. */
    EXPECT_ERR("data:\n  workers: 2\n  batch_size: abc\n",
               "err.yaml:3:15: 'data.batch_size' expects an integer, got 'abc'", NULL, NULL);
    EXPECT_ERR("data:\n  batch_size: 2.5\n",
               "err.yaml:2:15: 'data.batch_size' expects an integer, got '2.5'", NULL, NULL);
    EXPECT_ERR("optim:\n  lr: \"0.1\"\n",
               "err.yaml:2:7: 'optim.lr' expects a number, got the quoted string '0.1'", NULL,
               NULL);
    EXPECT_ERR("optim:\n  lr:\n", "err.yaml:2:", "'optim.lr' expects a number, got an empty value",
               NULL);
    EXPECT_ERR("optim:\n  lr: nan\n", "err.yaml:2:7: 'optim.lr' expects a finite number, got 'nan'",
               NULL, NULL);
    EXPECT_ERR("optim:\n  lr: [1, 2]\n", "err.yaml:2:7: 'optim.lr' expects a number, got a list",
               NULL, NULL);
    EXPECT_ERR("run:\n  name: {a: 1}\n", "err.yaml:2:9: 'run.name' expects a string, got a mapping",
               NULL, NULL);
    EXPECT_ERR("optim: 3\n", "err.yaml:1:8: section 'optim' must be a mapping of keys", NULL, NULL);
    EXPECT_ERR("- run\n- optim\n", "err.yaml:1:1: expected a mapping of sections", "got a list",
               NULL);

    /* Out of range: each bound kind. */
    EXPECT_ERR("simclr:\n  temperature: -1\n",
               "err.yaml:2:16: 'simclr.temperature' must be > 0, got -1", NULL, NULL);
    EXPECT_ERR("optim:\n  momentum: 1\n",
               "err.yaml:2:13: 'optim.momentum' must be in [0, 1), got 1", NULL, NULL);
    EXPECT_ERR("data:\n  batch_size: 0\n",
               "err.yaml:2:15: 'data.batch_size' must be in [1, 16777216], got 0", NULL, NULL);
    EXPECT_ERR("run:\n  seed: 99999999999\n",
               "err.yaml:2:9: 'run.seed' must be in [0, 2147483647], got 99999999999", NULL, NULL);
    EXPECT_ERR("run:\n  name: \"\"\n", "err.yaml:2:9: 'run.name' must not be empty", NULL, NULL);

    /* Enums, with a suggestion. */
    EXPECT_ERR("optim:\n  name: adam\n",
               "err.yaml:2:9: 'optim.name' must be one of sgd, adamw, lars, lamb, got 'adam'",
               "(did you mean 'adamw'?)", NULL);
    EXPECT_ERR("model:\n  arch: resnet101\n", "err.yaml:2:9: 'model.arch' must be one of resnet18,",
               "got 'resnet101'", NULL);

    /* Lists: length, element type and bound at the element's own column, order. */
    EXPECT_ERR("augment:\n  crop_scale: [0.1, 0.5, 1.0]\n",
               "err.yaml:2:15: 'augment.crop_scale' expects 2 numbers, got 3", NULL, NULL);
    EXPECT_ERR("eval:\n  knn_k: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n",
               "err.yaml:2:10: 'eval.knn_k' expects 1 to 8 integers, got 9", NULL, NULL);
    EXPECT_ERR("augment:\n  mean: [0.1, 0.2, 0.3, 0.4]\n",
               "err.yaml:2:9: 'augment.mean' expects at most 3 numbers, got 4", NULL, NULL);
    EXPECT_ERR("augment:\n  crop_scale: [0.1, abc]\n",
               "err.yaml:2:21: 'augment.crop_scale[1]' expects a number, got 'abc'", NULL, NULL);
    EXPECT_ERR("augment:\n  crop_scale: [0.1, 1.5]\n",
               "err.yaml:2:21: 'augment.crop_scale[1]' must be in (0, 1], got 1.5", NULL, NULL);
    EXPECT_ERR("augment:\n  blur_sigma:\n    - 1\n    - -2\n",
               "err.yaml:4:7: 'augment.blur_sigma[1]' must be > 0, got -2", NULL, NULL);
    EXPECT_ERR("eval:\n  knn_k: [10, 2.5]\n",
               "err.yaml:2:15: 'eval.knn_k[1]' expects an integer, got '2.5'", NULL, NULL);
    EXPECT_ERR(
        "augment:\n  crop_scale: [0.9, 0.2]\n",
        "err.yaml:2:15: 'augment.crop_scale' must be [min, max] with min <= max, got [0.9, 0.2]",
        NULL, NULL);

    /* Duplicates. */
    EXPECT_ERR("optim:\n  lr: 0.1\n  momentum: 0.8\n  lr: 0.2\n",
               "err.yaml:4:3: duplicate key 'optim.lr' (first set at line 2)", NULL, NULL);
    EXPECT_ERR("optim:\n  lr: 0.1\nrun:\n  seed: 3\noptim:\n  eps: 0.2\n",
               "err.yaml:5:1: duplicate section 'optim' (first at line 1)", NULL, NULL);

    /* YAML syntax errors carry libyaml's own text and position. */
    EXPECT_ERR("optim:\n  lr: 0.1\n momentum: 0.8\n",
               "err.yaml:3:2: YAML syntax error: did not find expected key",
               "(while parsing a block mapping at line 1, column 1)", NULL);
    EXPECT_ERR("optim:\n  lr: [0.1\n  momentum: 0.8\n",
               "err.yaml:3:11: YAML syntax error: did not find expected ',' or ']'",
               "(while parsing a flow sequence at line 2, column 7)", NULL);
    EXPECT_ERR("run:\n  name: &a x\n  out_dir: *b\n",
               "err.yaml:3:12: YAML syntax error: found undefined alias", NULL, NULL);
    EXPECT_ERR("run:\n  seed: 1\n---\nrun:\n  seed: 2\n",
               "err.yaml:4:1: a config is one YAML document; found a second one", NULL, NULL);

    /* Rules between keys point at the key set last. */
    EXPECT_ERR("augment:\n  mean: [0.5, 0.5, 0.5]\n  std: [0.2]\n",
               "err.yaml:3:8: 'augment.mean' has 3 values but 'augment.std' has 1", NULL, NULL);
    EXPECT_ERR("model:\n  arch: vit_tiny\n  img_size: 30\n",
               "err.yaml:3:13: 'model.img_size' (30) must be a multiple of 'model.patch_size' (4) "
               "for vit_tiny",
               NULL, NULL);
    EXPECT_ERR("run:\n  seed: 1\n  version: 3\n",
               "err.yaml:3:12: 'run.version' is 3, but this sslrun reads config versions up to 2",
               NULL, NULL);

    /* Files that cannot be read. */
    char path[256], err[512] = "", want[300];
    ssl_config c;
    path_in_dir(dir, path, sizeof path, "missing.yaml");
    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path);
    SSL_EXPECT(ssl_config_load(&c, path, 0, NULL, err, sizeof err) == -1 && strcmp(err, want) == 0,
               "missing file: %s", err);
    SSL_EXPECT(ssl_config_load(&c, dir, 0, NULL, err, sizeof err) == -1 &&
                   strstr(err, "cannot read '") && strstr(err, "Is a directory"),
               "directory: %s", err);

    /* Overrides. */
    const char *o1[] = {"optim.lr=abc"};
    expect_error(dir, __LINE__, NULL, 1, o1,
                 "override 'optim.lr=abc': 'optim.lr' expects a number, got 'abc'", NULL, NULL);
    const char *o2[] = {"optim.lerning_rate=0.1"};
    expect_error(dir, __LINE__, NULL, 1, o2,
                 "override 'optim.lerning_rate=0.1': unknown key 'optim.lerning_rate' (did you "
                 "mean 'optim.lr'?)",
                 NULL, NULL);
    const char *bad_forms[] = {"optim.lr", "lr=0.1", "=3", ".lr=3", "optim.=3", "a.b.c=1"};
    for (int i = 0; i < 6; i++) {
        char w[64];
        snprintf(w, sizeof w, "override '%s': expected section.key=value", bad_forms[i]);
        expect_error(dir, __LINE__, NULL, 1, &bad_forms[i], w, NULL, NULL);
    }
    const char *o3[] = {"optim.lr=0.1", "optimiser.lr=0.1"};
    expect_error(dir, __LINE__, NULL, 2, o3,
                 "override 'optimiser.lr=0.1': unknown section 'optimiser' in 'optimiser.lr' (did "
                 "you mean 'optim'?)",
                 NULL, NULL);
    const char *o4[] = {"augment.crop_scale=[0.1, 0.2"};
    expect_error(dir, __LINE__, NULL, 1, o4,
                 "override 'augment.crop_scale=[0.1, 0.2': invalid YAML value: ",
                 "did not find expected ',' or ']'", NULL);
    const char *o5[] = {"optim.name=adam"};
    expect_error(dir, __LINE__, NULL, 1, o5,
                 "override 'optim.name=adam': 'optim.name' must be one of sgd, adamw, lars, lamb, "
                 "got 'adam'",
                 NULL, NULL);
    const char *o6[] = {"augment.std=[0.5]"};
    expect_error(
        dir, __LINE__, NULL, 1, o6,
        "override 'augment.std=[0.5]': 'augment.mean' has 0 values but 'augment.std' has 1", NULL,
        NULL);
    /* An override error wins over nothing in the file: the file's own keys are fine. */
    const char *o7[] = {"simclr.temperature=0"};
    expect_error(dir, __LINE__, "simclr:\n  temperature: 0.1\n", 1, o7,
                 "override 'simclr.temperature=0': 'simclr.temperature' must be > 0, got 0", NULL,
                 NULL);
}

/* write -> load gives identical values, for defaults and for a config with every kind of value
 * changed, including strings that need quoting in YAML. */
static void test_round_trip(const char *dir)
{
    char path[256], err[1024] = "";
    path_in_dir(dir, path, sizeof path, "written.yaml");
    ssl_config a, b;
    ssl_config_defaults(&a);
    SSL_EXPECT(ssl_config_write_yaml(&a, path, err, sizeof err) == 0, "write: %s", err);
    SSL_EXPECT(ssl_config_load(&b, path, 0, NULL, err, sizeof err) == 0, "reload: %s", err);
    SSL_EXPECT(same_values(&a, &b, "defaults round trip"), "defaults round trip");

    const char *ov[] = {"run.name=we\"ird: #name \\ with\ttab",
                        "run.out_dir=/tmp/ünïcode dir/",
                        "run.seed=2147483647",
                        "data.train=*.h5",
                        "data.test=null",
                        "model.arch=vit_base",
                        "model.img_size=224",
                        "model.patch_size=16",
                        "model.small_stem=false",
                        "simclr.temperature=0.1234567890123",
                        "optim.lr=3e-300",
                        "optim.weight_decay=0.30000000000000004",
                        "optim.name=lamb",
                        "optim.lr_scaling=none",
                        "schedule.warmup_epochs=1e-3",
                        "schedule.final_lr=123456789012345",
                        "augment.mean=[0.1, 0.2, 0.3]",
                        "augment.std=[0.3, 0.2, 0.1]",
                        "augment.crop_ratio=[0.1, 0.1]",
                        "eval.knn_k=[1, 2, 3, 4, 5, 6, 7, 8]",
                        "checkpoint.resume=no"};
    int nov = (int)(sizeof ov / sizeof ov[0]);
    SSL_EXPECT(ssl_config_load(&a, NULL, nov, (char **)ov, err, sizeof err) == 0, "overrides: %s",
               err);
    SSL_EXPECT(strcmp(a.run.name, "we\"ird: #name \\ with\ttab") == 0, "raw name: %s", a.run.name);
    SSL_EXPECT(strcmp(a.data.test, "null") == 0, "verbatim 'null' string: %s", a.data.test);
    SSL_EXPECT(ssl_config_write_yaml(&a, path, err, sizeof err) == 0, "write: %s", err);
    SSL_EXPECT(ssl_config_load(&b, path, 0, NULL, err, sizeof err) == 0, "reload: %s", err);
    SSL_EXPECT(same_values(&a, &b, "changed round trip"), "changed round trip");
    SSL_EXPECT(ssl_config_compare(&a, &b, NULL, 0) == 0, "compare after round trip");

    /* The in-memory text parses back to the same values too (what checkpoints store). */
    char *text = ssl_config_to_yaml(&a);
    SSL_EXPECT(text != NULL, "to_yaml");
    if (text) {
        ssl_config_defaults(&b);
        SSL_EXPECT(ssl_config_parse(&b, text, strlen(text), "text", err, sizeof err) == 0,
                   "parse text: %s", err);
        SSL_EXPECT(same_values(&a, &b, "text round trip"), "text round trip");
        free(text);
    }

    /* The comparison is not vacuous: one changed value is found and named. */
    b.optim.eps = 2e-8;
    char first[96] = "";
    SSL_EXPECT(ssl_config_compare(&a, &b, first, sizeof first) == 1 &&
                   strcmp(first, "optim.eps") == 0,
               "compare finds optim.eps: %s", first);
    fprintf(stderr, "(expected difference below)\n");
    SSL_EXPECT(!same_values(&a, &b, "mutated"), "mutation detected");

    char wpath[300];
    path_in_dir(dir, wpath, sizeof wpath, "no/such/dir/x.yaml");
    SSL_EXPECT(ssl_config_write_yaml(&a, wpath, err, sizeof err) == -1 &&
                   strstr(err, "cannot write '") && strstr(err, "No such file or directory"),
               "write error: %s", err);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static char *capture(void (*fn)(const ssl_config *, FILE *), const ssl_config *c)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *fp = open_memstream(&buf, &size);
    if (!fp) return NULL;
    fn(c, fp);
    fclose(fp);
    return buf;
}

static void print_schema_adapter(const ssl_config *c, FILE *fp)
{
    (void)c;
    ssl_config_print_schema(fp);
}

/* The line of text that starts with prefix followed by a space, or NULL. */
static const char *line_of(const char *text, const char *prefix, char *buf, size_t len)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, pl) == 0 && p[pl] == ' ') {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            snprintf(buf, len, "%.*s", (int)l, p);
            return buf;
        }
    }
    return NULL;
}

/* Config version 1 (sslrun 0.4: SimCLR's settings under method.*): a file that says version 1 is read
 * with its old names (the config stored in an older checkpoint); at version 2 an old name is an error
 * that gives the new one, from the file or an override. */
static void test_renamed_keys(const char *dir)
{
    char path[256], err[1024] = "";
    path_in_dir(dir, path, sizeof path, "v1.yaml");
    write_file(path, "run:\n  version: 1\nmethod:\n  name: simclr\n  temperature: 0.3\n  proj_dim: 64\n");
    ssl_config c;
    const char *ov[] = {"method.proj_layers=3"};
    SSL_EXPECT(ssl_config_load(&c, path, 1, (char **)ov, err, sizeof err) == 0, "version 1 file: %s", err);
    SSL_EXPECT(c.simclr.temperature == 0.3 && c.simclr.proj_dim == 64 && c.simclr.proj_layers == 3 &&
                   c.run.version == 1,
               "old names land in simclr.*");
    /* written back, it uses the new names and still loads */
    char *yaml = ssl_config_to_yaml(&c);
    ssl_config d;
    ssl_config_defaults(&d);
    SSL_EXPECT(yaml && strstr(yaml, "simclr:") && ssl_config_parse(&d, yaml, strlen(yaml), "back", err, sizeof err) == 0 &&
                   ssl_config_compare(&c, &d, NULL, 0) == 0,
               "version 1 round trip: %s", err);
    free(yaml);
    expect_error(dir, __LINE__, "method:\n  name: simclr\n  temperature: 0.3\n", 0, NULL,
                 "err.yaml:3:3: 'method.temperature' is 'simclr.temperature' since config version 2",
                 "run.version: 1", NULL);
    const char *o2[] = {"method.gather_negatives=false"};
    expect_error(dir, __LINE__, "run:\n  version: 2\n", 1, o2,
                 "override 'method.gather_negatives=false': 'method.gather_negatives' is "
                 "'simclr.gather_negatives' since config version 2", NULL, NULL);
}

static void test_print(void)
{
    int n;
    ssl_config_schema(&n);
    ssl_config c;
    ssl_config_defaults(&c);
    c.optim.lr = 0.6;
    snprintf(c.data.train, sizeof c.data.train, "/data/*.h5");
    char *out = capture(ssl_config_print, &c);
    SSL_EXPECT(out != NULL, "print");
    if (!out) return;
    SSL_EXPECT(count_lines(out) == n, "print has %d lines for %d keys", count_lines(out), n);
    char line[512];
    const char *l = line_of(out, "optim.lr", line, sizeof line);
    SSL_EXPECT(l && strstr(l, "0.6") && strstr(l, "*  (default 0.3)"), "changed line: %s",
               l ? l : "(none)");
    l = line_of(out, "data.train", line, sizeof line);
    SSL_EXPECT(l && strstr(l, "/data/*.h5") && strstr(l, "(default \"\")"), "string line: %s",
               l ? l : "(none)");
    l = line_of(out, "run.seed", line, sizeof line);
    SSL_EXPECT(l && !strchr(l, '*') && strstr(l, " 0"), "unchanged line: %s", l ? l : "(none)");
    l = line_of(out, "schedule.warmup_epochs", line, sizeof line);
    SSL_EXPECT(l && strstr(l, " 10") && !strstr(l, "e+"), "10 printed without exponent: %s",
               l ? l : "(none)");
    /* Values line up in one column. */
    const char *a = strstr(out, "run.name"), *b = strstr(out, "eval.knn_k");
    if (a && b) {
        const char *va = strstr(a, "simclr"), *vb = strstr(b, "[20, 200]");
        const char *la = a, *lb = b;
        SSL_EXPECT(va && vb && va - la == vb - lb, "value column aligned");
    }
    free(out);

    out = capture(print_schema_adapter, &c);
    SSL_EXPECT(out != NULL, "schema");
    if (!out) return;
    SSL_EXPECT(count_lines(out) == n + 1, "schema: header + %d keys, got %d lines", n,
               count_lines(out));
    l = line_of(out, "optim.name", line, sizeof line);
    SSL_EXPECT(l && strstr(l, "enum") && strstr(l, "lars") &&
                   strstr(l, "one of sgd, adamw, lars, lamb"),
               "schema enum line: %s", l ? l : "(none)");
    l = line_of(out, "simclr.temperature", line, sizeof line);
    SSL_EXPECT(l && strstr(l, "float") && strstr(l, "0.2") && strstr(l, "(> 0)"),
               "schema float line: %s", l ? l : "(none)");
    l = line_of(out, "augment.crop_scale", line, sizeof line);
    SSL_EXPECT(l && strstr(l, "float[2]") && strstr(l, "[0.08, 1]"), "schema list line: %s",
               l ? l : "(none)");
    free(out);
}

int main(void)
{
    char dir[] = "/tmp/ssl_config_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_full_file_and_overrides(dir);
    test_bools(dir);
    test_errors(dir);
    test_round_trip(dir);
    test_renamed_keys(dir);
    test_print();
    const char *names[] = {"err.yaml", "full.yaml", "bool.yaml", "written.yaml", "v1.yaml"};
    for (int i = 0; i < 5; i++) {
        char p[256];
        path_in_dir(dir, p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return ssl_test_exit();
}
