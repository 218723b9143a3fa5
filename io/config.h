/* Typed run configuration: one schema table (io/config_schema.c) of section, key, type, default,
 * bounds and doc drives loading from YAML (libyaml), `section.key=value` command-line overrides,
 * validation, the resolved-config table printed at start, and the YAML text stored in every run
 * directory and checkpoint. Errors name file:line:col (1-based) and the dotted key. */
#ifndef SSL_IO_CONFIG_H
#define SSL_IO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Format version written as run.version. A file from a newer sslrun is refused; when a key changes
 * meaning or name, this is bumped and config.c gains the step that upgrades older files. */
#define SSL_CONFIG_VERSION 2 /* 2: method settings in a section named after the method (simclr.*) */
#define SSL_CONFIG_LIST_MAX 8    /* elements of a list-valued key */
#define SSL_CONFIG_NAME_MAX 128  /* bytes of a name-like string, including the NUL */
#define SSL_CONFIG_PATH_MAX 1024 /* bytes of a path or glob, including the NUL */
#define SSL_CONFIG_ENUM_MAX 32   /* bytes of an enum value, including the NUL */

typedef struct {
    int n; /* elements in use, 0..SSL_CONFIG_LIST_MAX */
    double v[SSL_CONFIG_LIST_MAX];
} ssl_config_floats;

typedef struct {
    int n;
    int v[SSL_CONFIG_LIST_MAX];
} ssl_config_ints;

/* Field names equal the YAML keys; defaults, bounds and docs are in the schema table
 * (`sslrun config` prints it). Enum-typed keys hold one of their allowed strings, which
 * the registries (methods, models, optimizers) look up by name. */
typedef struct {
    char name[SSL_CONFIG_NAME_MAX];
    char out_dir[SSL_CONFIG_PATH_MAX];
    int seed;
    int log_every;
    int max_steps;
    int version;
} ssl_config_run;

typedef struct {
    char arch[SSL_CONFIG_ENUM_MAX];
    bool small_stem;
    int width;
    int img_size;
    int patch_size;
    bool sincos_pos;
    bool freeze_patch_embed;
    bool sync_bn;
    char precision[SSL_CONFIG_ENUM_MAX]; /* fp32 | bf16 */
    char saved_activations[SSL_CONFIG_ENUM_MAX]; /* bf16 | fp32: storage under precision bf16 */
    int vit_dim, vit_depth, vit_heads; /* 0: the arch's defaults */
} ssl_config_model;

typedef struct {
    char name[SSL_CONFIG_ENUM_MAX]; /* one of methods/registry.c's names */
} ssl_config_method;

/* One section per method, named after it (the registry's name); a method reads only its own. */
typedef struct {
    double temperature;
    int proj_hidden;
    int proj_dim;
    int proj_layers;
    bool gather_negatives;
} ssl_config_simclr;

typedef struct {
    int proj_hidden;
    int proj_dim;
    int pred_hidden;
    double momentum;
} ssl_config_byol;

typedef struct {
    int dim;
    int mlp_dim;
    double temperature;
    double momentum;
} ssl_config_moco_v3;

typedef struct {
    int queue_size;
    int dim;
    int mlp_hidden;
    double temperature;
    double momentum;
    bool shuffle_bn;
    int shuffle_bn_groups; /* 0: one per rank */
} ssl_config_moco_v2;

typedef struct {
    int out_dim;
    int hidden_dim;
    int bottleneck_dim;
    double momentum;
    double student_temp;
    double teacher_temp;
    double warmup_teacher_temp;
    int warmup_teacher_temp_epochs;
    double center_momentum;
    int freeze_last_layer;
    int local_crops;
    int local_size;
    ssl_config_floats local_scale;
    bool shard_head;
} ssl_config_dino;

typedef struct {
    double mask_ratio;
    int decoder_depth;
    int decoder_dim;
    int decoder_heads;
    bool norm_pix_loss;
} ssl_config_mae;

typedef struct {
    char train[SSL_CONFIG_PATH_MAX];
    char test[SSL_CONFIG_PATH_MAX];
    int batch_size;
    int workers;
    bool drop_last;
    char on_corrupt[SSL_CONFIG_ENUM_MAX]; /* skip | stop: a JPEG that does not decode */
    char sampling[SSL_CONFIG_ENUM_MAX];   /* global | local: which samples a rank reads */
    int limit;
} ssl_config_data;

typedef struct {
    int views;
    ssl_config_floats crop_scale;
    ssl_config_floats crop_ratio;
    double flip_p;
    double jitter_p;
    double brightness;
    double contrast;
    double saturation;
    double hue;
    double grayscale_p;
    double blur_p;
    ssl_config_floats blur_sigma;
    double solarize_p;
    ssl_config_floats view_blur_p;     /* per view; views past the list: blur_p */
    ssl_config_floats view_solarize_p; /* per view; views past the list: solarize_p */
    ssl_config_floats mean;
    ssl_config_floats std;
    char on[SSL_CONFIG_ENUM_MAX]; /* auto | loader | device: where the pixel work runs */
} ssl_config_augment;

typedef struct {
    char name[SSL_CONFIG_ENUM_MAX];
    double lr;
    char lr_scaling[SSL_CONFIG_ENUM_MAX];
    double weight_decay;
    double momentum;
    bool nesterov;
    double beta1;
    double beta2;
    double eps;
    double eta;
    double clip_grad;
    char clip_mode[SSL_CONFIG_ENUM_MAX];
    int accum_steps;
} ssl_config_optim;

typedef struct {
    int epochs;
    double warmup_epochs;
    double final_lr;
    double wd_end;
} ssl_config_schedule;

typedef struct {
    int every_steps;
    int keep;
    bool resume;
} ssl_config_checkpoint;

typedef struct {
    int train_limit;
    ssl_config_ints knn_k;
    double knn_temperature;
    int knn_every_epochs;
    int linear_epochs;
    double linear_lr;
    int linear_batch;
} ssl_config_eval;

typedef struct {
    char backend[SSL_CONFIG_ENUM_MAX];
    int threads;
} ssl_config_device;

typedef struct {
    double timeout_s;
    char device[SSL_CONFIG_ENUM_MAX];
    char overlap[SSL_CONFIG_ENUM_MAX]; /* auto | on | off */
    double bucket_mb;
} ssl_config_comm;

/* `sslrun finetune`: supervised training of the encoder + a linear head on data.train's labels. */
typedef struct {
    char name[SSL_CONFIG_NAME_MAX]; /* RUN_DIR/<name>/: one directory per fine-tuning protocol */
    int epochs;
    int batch_size; /* 0: data.batch_size */
    double lr;
    char optimizer[SSL_CONFIG_ENUM_MAX];
    double weight_decay;
    double warmup_epochs;
    double label_smoothing;
    double layer_decay;
    double label_fraction;
    int img_size; /* 0: model.img_size */
    ssl_config_floats crop_scale;
    double flip_p;
} ssl_config_finetune;

typedef struct ssl_config {
    ssl_config_run run;
    ssl_config_model model;
    ssl_config_method method;
    ssl_config_simclr simclr;
    ssl_config_byol byol;
    ssl_config_moco_v2 moco_v2;
    ssl_config_moco_v3 moco_v3;
    ssl_config_dino dino;
    ssl_config_mae mae;
    ssl_config_data data;
    ssl_config_augment augment;
    ssl_config_optim optim;
    ssl_config_schedule schedule;
    ssl_config_checkpoint checkpoint;
    ssl_config_eval eval;
    ssl_config_device device;
    ssl_config_comm comm;
    ssl_config_finetune finetune;
} ssl_config;

/* ---- schema ---------------------------------------------------------------------------------- */

typedef enum {
    SSL_CONFIG_INT,    /* int */
    SSL_CONFIG_FLOAT,  /* double */
    SSL_CONFIG_BOOL,   /* bool: true/false, yes/no, on/off (any case) */
    SSL_CONFIG_STRING, /* char[size] */
    SSL_CONFIG_ENUM,   /* char[size] holding one of `choices` */
    SSL_CONFIG_FLOATS, /* ssl_config_floats */
    SSL_CONFIG_INTS,   /* ssl_config_ints */
} ssl_config_type;

/* Flags of a schema entry. */
#define SSL_CONFIG_LO_OPEN 1u  /* value (or each element) must be > lo rather than >= lo */
#define SSL_CONFIG_HI_OPEN 2u  /* ... < hi rather than <= hi */
#define SSL_CONFIG_ORDERED 4u  /* list: non-decreasing, e.g. a [min, max] pair */
#define SSL_CONFIG_NONEMPTY 8u /* string: must not be "" */

typedef struct {
    const char *section;
    const char *key;
    ssl_config_type type;
    size_t offset;       /* of the field in ssl_config */
    size_t size;         /* of the field (bounds string length) */
    const char *def;     /* default, written as in a YAML file ("0.3", "[0.08, 1.0]", "\"\"") */
    double lo, hi;       /* numbers and list elements: bounds (+-HUGE_VAL = none) */
    unsigned flags;      /* SSL_CONFIG_LO_OPEN ... */
    int nmin, nmax;      /* lists: allowed element counts */
    const char *choices; /* enums: allowed values separated by '|' */
    const char *doc;     /* one line */
} ssl_config_key;

/* The schema table, in print order (grouped by section); *n receives its length. */
const ssl_config_key *ssl_config_schema(int *n);
/* Entry for "section.key", or NULL. */
const ssl_config_key *ssl_config_find(const char *dotted_key);

/* ---- loading --------------------------------------------------------------------------------- */

/* Every key at its schema default. */
void ssl_config_defaults(ssl_config *c);

/* Defaults, then the YAML file at path (NULL or "": none), then overrides[0..noverrides) of the
 * form "section.key=value" in order (later wins), then cross-key validation.
 * The file is one mapping of sections to mappings of keys; lists are sequences ([a, b] or block).
 * A key may appear once per file; unknown sections and keys are errors, with a suggestion.
 * An override value is parsed by the same YAML scalar rules as a file value (lists as [a,b]),
 * except that a string or enum value not starting with a quote is taken verbatim, so globs and
 * names with '#' or ': ' need no shell-level YAML quoting. Quoted scalars are strings: "0.1" is
 * not accepted where a number is expected.
 * Returns 0, or -1 with a message in err such as
 *   "pretrain.yaml:7:3: unknown key 'optim.lerning_rate' (did you mean 'optim.lr'?)"
 *   "override 'optim.lr=abc': 'optim.lr' expects a number, got 'abc'". */
int ssl_config_load(ssl_config *c, const char *path, int noverrides, char **overrides, char *err,
                    size_t errlen);

/* Apply YAML text (a config file's contents, e.g. the copy stored in a checkpoint) on top of c,
 * then validate. name labels messages ("ckpt_100.h5:/config:3:5: ..."). Returns 0 or -1. */
int ssl_config_parse(ssl_config *c, const char *text, size_t len, const char *name, char *err,
                     size_t errlen);

/* Set one key from text as an override would ("optim.lr", "0.1"); checks the key's type and
 * bounds but not cross-key rules (see ssl_config_validate). Returns 0 or -1 with a message. */
int ssl_config_set(ssl_config *c, const char *dotted_key, const char *value, char *err,
                   size_t errlen);

/* Check every key's bounds and the rules between keys ([min, max] pairs ordered, augment.mean and
 * augment.std of equal length, ViT img_size a multiple of patch_size, version supported).
 * Returns 0 or -1 with a message. */
int ssl_config_validate(const ssl_config *c, char *err, size_t errlen);
/* The longest directory a config may lead to (run.out_dir/run.name/finetune.name), in bytes. */
#define SSL_CONFIG_RUN_DIR_MAX 900

/* ---- output ---------------------------------------------------------------------------------- */

/* Resolved config, one line per key: "section.key  value", with "*  (default D)" appended where
 * the value differs from the schema default. */
void ssl_config_print(const ssl_config *c, FILE *fp);

/* Every key: name, type, default, doc and bounds or allowed values (`sslrun config`). */
void ssl_config_print_schema(FILE *fp);

/* The resolved config as YAML that ssl_config_load / ssl_config_parse read back to identical
 * values (floats in shortest round-trip form, strings double-quoted). Malloc'd; NULL only when
 * out of memory. */
char *ssl_config_to_yaml(const ssl_config *c);

/* Write ssl_config_to_yaml(c) to path. Returns 0 or -1 with a message naming the file. */
int ssl_config_write_yaml(const ssl_config *c, const char *path, char *err, size_t errlen);

/* Value of one key as text, as printed and written ("0.3", "[0.08, 1]", "true", raw strings). */
void ssl_config_format(const ssl_config *c, const ssl_config_key *k, char *buf, size_t len);

/* Number of keys whose values differ between a and b (floats compared exactly); the first such
 * key's name goes to first_diff when it is non-NULL. For checking a resumed run's config. */
int ssl_config_compare(const ssl_config *a, const ssl_config *b, char *first_diff, size_t len);

#endif
