/* The SSL method interface: one lifecycle that every method goes through (DESIGN §2b), driven by the
 * trainer (framework/train/). In order:
 *
 *   configure  config time: check the method's own section (named after it) against the rest and
 *              declare the views it consumes, so a bad combination fails before anything is built;
 *   plan       heads after the encoder in the same flat parameter buffer (one all-reduce covers
 *              all); a teacher mirrors a prefix of that layout (encoder + projector);
 *   alloc      after the parameters exist: teacher buffers, queues, centres (sharded ones get their
 *              rank's range from the communicator);
 *   state      register what a checkpoint holds (teacher, queue shards, pointers) — the same call
 *              serves save, resume, eval and export;
 *   start      after broadcast and load: resumed = 0 means fresh state (copy student -> teacher,
 *              draw the queue); 1 means it was loaded;
 *   step       forward, loss, backward into w->g for one micro-batch, with the progress record and
 *              named monitors for metrics.jsonl;
 *   after_optim after the optimizer: EMA teachers, enqueue, centre updates;
 *   on_epoch   before an epoch's first step, and on resume for the epoch resumed in (schedules that
 *              change per epoch, unfreezing);
 *   agree      before a checkpoint or an evaluation: state the ranks compute apart (a teacher's BN
 *              statistics over per-rank batches, as shuffle-BN's) averaged over c->comm, so every rank
 *              holds one model;
 *   free.
 *
 * Adding a method is one file (a vtable), one line in registry.c, and one config section in
 * io/config_schema.c named after it. */
#ifndef SSL_METHODS_METHOD_H
#define SSL_METHODS_METHOD_H

#include "framework/models/model.h"
#include "io/augment.h"
#include "io/checkpoint.h"
#include "io/config.h"

/* Where training stands, handed to step and the hooks after it. */
typedef struct {
    int64_t step;            /* the optimizer step being taken, 0-based */
    int64_t total_steps;
    int64_t steps_per_epoch;
    double epoch;            /* fractional epochs done when this step began: step / steps_per_epoch */
    int micro, accum;        /* micro-batch index within the step, and how many make a step */
    double lr, wd;           /* the step's scheduled values; set for after_optim (parameters a method
                              * owns and updates itself: DINO's sharded prototypes) */
} ssl_progress;

/* Views a method consumes, in groups of one size (DINO: 2 global + N local crops; others: one
 * group of 2). The trainer produces them; a step receives each group as (count * n, C, size, size),
 * view-major (all first views, then all second views, ...). Each view has its own augmentation
 * pipeline (the vtable's view_pipeline) and its own random stream: view ids run over all groups in
 * order, so group 0's views are the ids a single group would have. */
#define SSL_VIEW_GROUPS_MAX 4
#define SSL_VIEWS_MAX 16 /* views per image, all groups together */
typedef struct {
    int count; /* views per image */
    int size;  /* px */
} ssl_view_group;

typedef struct {
    int ngroups;
    ssl_view_group group[SSL_VIEW_GROUPS_MAX];
} ssl_view_plan;

typedef struct {
    int n; /* images (this rank's micro-batch) */
    int ngroups;
    ssl_tensor group[SSL_VIEW_GROUPS_MAX];
    /* (n) HOST: each image's global dataset index, the key of per-sample randomness a method draws
     * itself (MAE's masks), so a sample draws the same on any rank count; NULL where no trainer ran */
    const int64_t *index;
} ssl_views;

/* Named monitors a step reports (collapse detectors, logit means); the trainer averages them over
 * ranks and micro-batches and writes them next to the loss. */
#define SSL_SCALARS_MAX 8
typedef struct {
    int n;
    char name[SSL_SCALARS_MAX][32];
    double v[SSL_SCALARS_MAX];
} ssl_scalars;

/* Add or accumulate (same name) a monitor; more than SSL_SCALARS_MAX names is a programming error. */
void ssl_scalars_add(ssl_scalars *s, const char *name, double v);

typedef struct ssl_method ssl_method;

typedef struct {
    const char *name;    /* registry and config-section name */
    const char *summary; /* one line: the method and its paper */
    /* 1: on_epoch freezes and thaws parameter segments (DINO's last layer), so checkpoints carry the
     * optimizer's per-segment step counts */
    int freezes;
    int (*configure)(const ssl_config *cfg, ssl_view_plan *views, char *err, size_t errlen);
    int (*plan)(ssl_method *m, const ssl_config *cfg, ssl_plan *pl, char *err, size_t errlen);
    /* optional hooks (NULL: nothing to do) */
    /* The pipeline of view `view` (0-based within group `group`): `a` arrives as the augment section
     * at the group's size and the data's channels; the method edits it (DINO's local crops, BYOL's
     * asymmetric blur and solarize). The trainer checks the result. */
    void (*view_pipeline)(const ssl_config *cfg, int group, int view, ssl_augment_config *a);
    int (*alloc)(ssl_method *m, ssl_ctx *c, ssl_params *params, const ssl_params *buffers, char *err,
                 size_t errlen);
    void (*state)(ssl_method *m, ssl_ckpt *ck);
    void (*start)(ssl_method *m, ssl_ctx *c, const ssl_weights *w, int resumed);
    /* Returns this rank's loss, the mean over its samples (the mean over ranks is the global loss);
     * summed over ranks, w->g is W times the gradient of the global loss, so the trainer's
     * all-reduce(AVG) gives exactly that gradient. Collectives go through c->comm / c->bn_comm. */
    double (*step)(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_views *v, const ssl_progress *p,
                   ssl_scalars *out);
    void (*after_optim)(ssl_method *m, ssl_ctx *c, const ssl_weights *w, const ssl_progress *p);
    void (*on_epoch)(ssl_method *m, ssl_ctx *c, int64_t epoch);
    void (*agree)(ssl_method *m, ssl_ctx *c);
    void (*free)(ssl_method *m);
} ssl_method_vtable;

struct ssl_method {
    const ssl_method_vtable *vt;
    const ssl_config *cfg; /* the session's resolved config (outlives the method) */
    ssl_model *encoder;
    ssl_view_plan views;
    void *impl;
};

/* The registry (registry.c). */
const ssl_method_vtable *ssl_method_find(const char *name);
/* "simclr, ..." : every registered name, for messages and checks. */
const char *ssl_method_names(void);
int ssl_method_count(void);
const ssl_method_vtable *ssl_method_at(int i);

/* Config-time check of cfg->method.name and its section; fills views. 0 or -1 with err. */
int ssl_method_configure(const ssl_config *cfg, ssl_view_plan *views, char *err, size_t errlen);
/* Look up cfg->method.name, configure it and plan its heads after `encoder` into pl. 0 or -1 with err. */
int ssl_method_init(ssl_method *m, const ssl_config *cfg, ssl_model *encoder, ssl_plan *pl, char *err,
                    size_t errlen);
void ssl_method_free(ssl_method *m);

extern const ssl_method_vtable ssl_method_simclr;
extern const ssl_method_vtable ssl_method_moco_v2;
extern const ssl_method_vtable ssl_method_moco_v3;
extern const ssl_method_vtable ssl_method_byol;
extern const ssl_method_vtable ssl_method_dino;
extern const ssl_method_vtable ssl_method_mae;

#endif
