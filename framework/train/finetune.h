/* The fine-tuning trainer (`sslrun finetune`, launch/finetune.c): the pretrained encoder with a
 * linear classification head (num_classes = the dataset's), trained end to end on data.train's labels
 * with label-smoothed cross-entropy, then top-1 on data.test. Same shape and guarantees as the
 * pretraining trainer (trainer.h), whose pieces it reuses where they are not tied to a method
 * (sampler, loader, augmentation, schedules, optimizer, checkpoint files, metrics, the step record):
 *
 *   ssl_finetune_setup   dataset and its label_fraction subset, encoder + head in one flat buffer,
 *                        layer-wise lr scales, optimizer, sampler, schedule, RUN_DIR/finetune/
 *   ssl_finetune_resume  the newest fine-tuning checkpoint, else the source weights (a pretraining
 *                        checkpoint, an exported / torchvision / timm safetensors file, or random);
 *                        one set of weights on every rank; metrics; the loader at the position
 *   ssl_finetune_step    one optimizer step: local slice of the global batch, forward, loss,
 *                        backward, gradient all-reduce (average), loss + stop flag agreed, AdamW
 *   ssl_finetune_log / _save / _evaluate / _write_json / _free
 *
 * Data parallel as pretraining: finetune.batch_size is the global batch, rank r takes the r-th
 * contiguous 1/P of every step's samples (the sampler permutes the subset with a key independent of
 * the rank count), BatchNorm over the global batch when model.sync_bn, checkpoints that resume on any
 * rank count. Where it lives: RUN_DIR/finetune/{config.yaml, metrics.jsonl, checkpoints/,
 * source.txt, finetune.json}. */
#ifndef SSL_TRAIN_FINETUNE_H
#define SSL_TRAIN_FINETUNE_H

#include "framework/train/trainer.h"

/* Where the starting weights come from (a fresh run only; a resumed one continues its checkpoint). */
typedef enum {
    SSL_FT_FROM_RUN,     /* the newest pretraining checkpoint of run.out_dir/run.name */
    SSL_FT_FROM_CKPT,    /* a pretraining checkpoint file (path) */
    SSL_FT_FROM_WEIGHTS, /* a safetensors file with torchvision (ours) or timm ViT names (path) */
    SSL_FT_SCRATCH,      /* random init from run.seed: the supervised baseline */
} ssl_ft_source_kind;

typedef struct {
    ssl_ft_source_kind kind;
    const char *path;
} ssl_ft_source;

typedef struct {
    ssl_config cfg; /* resolved: the finetune section's 0 defaults filled in */
    char run_dir[1024], dir[1100], ckpt_dir[1200];
    struct ssl_comm *comm;
    int rank0, tty;
    ssl_ctx ctx;
    ssl_params params, buffers;
    ssl_model model;          /* encoder + head (the last two segments) */
    int encoder_segments;     /* params segments before the head's */
    int in_chans, num_classes, img_size, batch;
    float *lr_scale;          /* (params.nseg) layer decay, the optimizer's seg_lr_scale */
    ssl_optim opt;
    ssl_grad_sync gsync;      /* the gradient all-reduce (comm.overlap: buckets during backward) */
    ssl_dataset *ds;
    int64_t npool;            /* labelled samples to choose from: the first data.limit (0: all) */
    int64_t *subset, nsubset; /* ascending dataset indices of the label_fraction subset */
    uint64_t seed;            /* sampler and augmentation key: run.seed, apart from pretraining's */
    ssl_sampler sampler;
    ssl_loader loader;
    int loader_started;
    ssl_metrics metrics;
    int metrics_open;
    ssl_view_pipes pipes;     /* one view: random resized crop + flip, normalised */
    int64_t corrupt;          /* images that did not decode (reader threads add atomically) */
    int32_t *labels;          /* (local batch) */
    ssl_feed feed;            /* batches from the loader to the device */
    int64_t steps_per_epoch, total_steps, step, first_step;
    double lr_peak, ips, t_start;
    ssl_sched_lr_config lr;
    char source[1300];        /* where the weights came from, for finetune.json */
    int source_known;         /* source was read back from source.txt (a resumed run) */
    int config_error;         /* the error is the config's or the command line's: exit 2 */
} ssl_finetuner;

int ssl_finetune_setup(ssl_finetuner *f, const ssl_config *cfg, struct ssl_comm *comm, char *err, size_t errlen);
int ssl_finetune_resume(ssl_finetuner *f, const ssl_ft_source *src, char *err, size_t errlen);
/* As ssl_train_step (trainer.h): 0, or -1 with err (*nan set when the global loss is not finite). */
int ssl_finetune_step(ssl_finetuner *f, int signalled, ssl_step_record *r, int *nan, char *err, size_t errlen);
void ssl_finetune_log(ssl_finetuner *f, const ssl_step_record *r);
int ssl_finetune_save_due(const ssl_finetuner *f, const ssl_step_record *r);
int ssl_finetune_save(ssl_finetuner *f, char *err, size_t errlen);
/* Top-1 (percent) of the current model on data.test at the fine-tuning size (eval-mode BN, the image
 * resized and normalised); every rank classifies its contiguous 1/P, the counts are summed.
 * Collective. */
int ssl_finetune_evaluate(ssl_finetuner *f, double *top1, int64_t *ntest, char *err, size_t errlen);
/* RUN_DIR/finetune/finetune.json (rank 0). */
int ssl_finetune_write_json(const ssl_finetuner *f, double top1, int64_t ntest, double seconds, char *err,
                            size_t errlen);
void ssl_finetune_free(ssl_finetuner *f);

/* ---- pieces, public for the reference tests ------------------------------------------------ */

/* Label-smoothed cross-entropy, mean over the n rows of logits (n, K) (device): the target is
 * (1 - s) one-hot(label) + s / K, as torch's CrossEntropyLoss(label_smoothing=s) and timm's
 * LabelSmoothingCrossEntropy. Writes d(loss)/d(logits) into dlogits (device, n*K) and returns the
 * loss. labels: host, n entries in [0, K). */
double ssl_finetune_loss(ssl_ctx *c, ssl_tensor logits, const int32_t *labels, float smoothing, float *dlogits);

/* Layer-wise lr decay scales (MAE's param_groups_lrd): segment i of p gets decay^(L+1 - layer(i)).
 * ViT names (torchvision): conv_proj.*, class_token, encoder.pos_embedding are layer 0,
 * encoder.layers.encoder_layer_<k>.* layer k+1, everything else (encoder.ln, heads.head.*) layer
 * L+1 with L the number of blocks. ResNet names: conv1.*, bn1.* (the stem) layer 0, layer<k>.* layer k,
 * fc.* layer 5 (L = 4): our choice, each stage as one "block" (layer decay is a ViT recipe; no
 * reference defines it for ResNets). decay 1 gives all ones. */
void ssl_finetune_layer_scales(const ssl_params *p, double decay, float *scale);

#endif
