/* The configuration schema: one line per key (section, key, default, bounds, doc).
 * Adding a key: a field in the section struct in config.h and one line here; the macros check at
 * compile time that the field exists and has the C type the line declares. */
#include "io/config.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>

#define NOMAX HUGE_VAL
#define LO_OPEN SSL_CONFIG_LO_OPEN
#define HI_OPEN SSL_CONFIG_HI_OPEN
#define ORDERED SSL_CONFIG_ORDERED
#define NONEMPTY SSL_CONFIG_NONEMPTY

/* offset and size of c.sec.key; fails to compile (negative array size) when the field's type is
 * not ctype, so a table line can never write a double into an int. */
#define FIELD(sec, key, ctype)                                                                 \
    offsetof(ssl_config, sec.key) +                                                            \
        0 * sizeof(char[_Generic(((ssl_config *)0)->sec.key, ctype: 1, default: -1)]),         \
        sizeof(((ssl_config *)0)->sec.key)

#define I(sec, key, def, lo, hi, doc)                                                          \
    {#sec, #key, SSL_CONFIG_INT, FIELD(sec, key, int), def, lo, hi, 0, 0, 0, NULL, doc}
#define F(sec, key, def, lo, hi, flags, doc)                                                   \
    {#sec, #key, SSL_CONFIG_FLOAT, FIELD(sec, key, double), def, lo, hi, flags, 0, 0, NULL, doc}
#define B(sec, key, def, doc)                                                                  \
    {#sec, #key, SSL_CONFIG_BOOL, FIELD(sec, key, bool), def, 0, 0, 0, 0, 0, NULL, doc}
#define S(sec, key, def, flags, doc)                                                           \
    {#sec, #key, SSL_CONFIG_STRING, FIELD(sec, key, char *), def, 0, 0, flags, 0, 0, NULL, doc}
#define E(sec, key, def, choices, doc)                                                         \
    {#sec, #key, SSL_CONFIG_ENUM, FIELD(sec, key, char *), def, 0, 0, 0, 0, 0, choices, doc}
#define FL(sec, key, def, nmin, nmax, lo, hi, flags, doc)                                      \
    {#sec, #key, SSL_CONFIG_FLOATS, FIELD(sec, key, ssl_config_floats), def, lo, hi, flags,   \
     nmin, nmax, NULL, doc}
#define IL(sec, key, def, nmin, nmax, lo, hi, flags, doc)                                      \
    {#sec, #key, SSL_CONFIG_INTS, FIELD(sec, key, ssl_config_ints), def, lo, hi, flags, nmin, \
     nmax, NULL, doc}

static const ssl_config_key schema[] = {
    S(run, name, "simclr", NONEMPTY, "run name: the run directory is out_dir/name"),
    S(run, out_dir, "runs", NONEMPTY, "parent directory of run directories"),
    I(run, seed, "0", 0, INT_MAX, "seed of all randomness: init, sampler, augmentation"),
    I(run, log_every, "10", 1, NOMAX, "steps between metrics.jsonl records"),
    I(run, max_steps, "0", 0, NOMAX, "stop with a checkpoint after this many steps in one invocation (0: no limit)"),
    I(run, version, "2", 1, NOMAX, "config format version (files from newer sslrun are refused; 1 is read "
      "with its old key names)"),

    E(model, arch, "resnet18", "resnet18|resnet34|resnet50|vit_tiny|vit_small|vit_base",
      "encoder architecture"),
    B(model, small_stem, "true", "ResNet: 3x3 stride-1 stem without max-pool, for small images"),
    I(model, width, "64", 1, 4096, "ResNet base width (64 = torchvision); ViTs ignore it"),
    I(model, img_size, "32", 8, 4096, "view size fed to the encoder, px"),
    I(model, patch_size, "4", 1, 256, "ViT patch size, px (img_size must be a multiple)"),
    B(model, sincos_pos, "false", "ViT: fixed 2-D sin-cos position embedding instead of learned"),
    B(model, freeze_patch_embed, "false", "ViT: random, frozen patch projection (MoCo v3's stop-grad-conv1)"),
    B(model, sync_bn, "true", "BatchNorm statistics over the global batch of all ranks (false: per rank)"),
    E(model, precision, "fp32", "fp32|bf16", "bf16: GEMM / convolution inputs and results in bfloat16, fp32 "
      "accumulation, master weights, norms, losses and optimizer (torch.autocast's rule)"),
    E(model, saved_activations, "bf16", "bf16|fp32", "under precision bf16: what the backward reads is kept in "
      "bfloat16 from forward to backward (the same numbers, about half the activation memory); fp32 keeps it as computed"),
    I(model, vit_dim, "0", 0, 65536, "ViT token width (0: the arch's, 192 / 384 / 768)"),
    I(model, vit_depth, "0", 0, 1024, "ViT blocks (0: the arch's, 12)"),
    I(model, vit_heads, "0", 0, 1024, "ViT attention heads (0: the arch's, 3 / 6 / 12)"),

    /* method.name's choices are the method registry's names (methods/registry.c), each with a
     * section of its own below; tests/unit/test_method_registry.c holds the two together */
    E(method, name, "simclr", "simclr|moco_v2|moco_v3|byol|dino|mae", "self-supervised method (its settings: the section of that name)"),

    F(simclr, temperature, "0.2", 0, NOMAX, LO_OPEN, "NT-Xent temperature"),
    I(simclr, proj_hidden, "2048", 1, 65536, "projector hidden width"),
    I(simclr, proj_dim, "128", 1, 65536, "projector output dimension"),
    I(simclr, proj_layers, "2", 1, 8, "projector linear layers"),
    B(simclr, gather_negatives, "true", "negatives from all ranks (false: each rank's own samples, "
      "as lightly's gather_distributed=False)"),

    I(byol, proj_hidden, "4096", 1, 65536, "projector hidden width"),
    I(byol, proj_dim, "256", 1, 65536, "projector output dimension (the predictor's input and output)"),
    I(byol, pred_hidden, "4096", 1, 65536, "predictor hidden width"),
    F(byol, momentum, "0.996", 0, 1, HI_OPEN, "target EMA momentum at step 0, cosine-scheduled to 1 at the end"),

    I(moco_v2, queue_size, "65536", 1, 1 << 26, "negative keys in the queue (sharded over ranks)"),
    I(moco_v2, dim, "128", 1, 65536, "projector output dimension (the keys')"),
    I(moco_v2, mlp_hidden, "2048", 1, 65536, "projector hidden width"),
    F(moco_v2, temperature, "0.2", 0, NOMAX, LO_OPEN, "InfoNCE temperature"),
    F(moco_v2, momentum, "0.999", 0, 1, HI_OPEN, "key-encoder EMA momentum (constant)"),
    B(moco_v2, shuffle_bn, "true", "keys' BN over a random slice of the global batch (the paper's shuffle-BN); false: as model.sync_bn"),
    I(moco_v2, shuffle_bn_groups, "0", 0, 1 << 20,
      "shuffle-BN: the shuffled global batch is encoded in this many groups, BN over each alone (0: one per rank; "
      "a multiple of the rank count; one rank needs > 1, MoCo's single-GPU SplitBatchNorm)"),

    I(moco_v3, dim, "256", 1, 65536, "projector and predictor output dimension"),
    I(moco_v3, mlp_dim, "4096", 1, 65536, "projector and predictor hidden width"),
    F(moco_v3, temperature, "1.0", 0, NOMAX, LO_OPEN, "InfoNCE temperature (paper: 1.0 ResNet, 0.2 ViT)"),
    F(moco_v3, momentum, "0.99", 0, 1, HI_OPEN, "momentum-encoder EMA at epoch 0, cosine-scheduled to 1 at the end"),

    I(dino, out_dim, "65536", 1, 1 << 24, "prototypes: the head's output dimension"),
    I(dino, hidden_dim, "2048", 1, 65536, "head MLP hidden width"),
    I(dino, bottleneck_dim, "256", 1, 65536, "head bottleneck (the weight-normalised last layer's input)"),
    F(dino, momentum, "0.996", 0, 1, HI_OPEN, "teacher EMA momentum at step 0, cosine-scheduled to 1 at the end"),
    F(dino, student_temp, "0.1", 0, NOMAX, LO_OPEN, "student softmax temperature"),
    F(dino, teacher_temp, "0.04", 0, NOMAX, LO_OPEN, "teacher temperature after the warm-up (0.07 for long ViT runs)"),
    F(dino, warmup_teacher_temp, "0.04", 0, NOMAX, LO_OPEN, "teacher temperature at epoch 0, linear to teacher_temp"),
    I(dino, warmup_teacher_temp_epochs, "0", 0, NOMAX, "epochs of teacher-temperature warm-up"),
    F(dino, center_momentum, "0.9", 0, 1, 0, "EMA momentum of the teacher centre"),
    I(dino, freeze_last_layer, "1", 0, NOMAX, "epochs the last (prototype) layer stays frozen"),
    I(dino, local_crops, "8", 0, 14, "local crops per image (the 2 global crops are augment.crop_scale at model.img_size)"),
    I(dino, local_size, "0", 0, 4096, "local crop size, px (0: 3/7 of model.img_size in whole patches, 96 at 224)"),
    FL(dino, local_scale, "[0.05, 0.4]", 2, 2, 0, 1, LO_OPEN | ORDERED, "local crops: area fraction [min, max]"),
    B(dino, shard_head, "false", "prototypes (last layer, its teacher, the centre) sharded over ranks: head memory "
      "per rank falls as 1 / ranks; the same loss and gradients as replicated"),

    F(mae, mask_ratio, "0.75", 0, 1, HI_OPEN, "fraction of each image's patches removed (the encoder sees the rest)"),
    I(mae, decoder_depth, "8", 0, 1024, "decoder transformer blocks"),
    I(mae, decoder_dim, "512", 4, 65536, "decoder token width (a multiple of decoder_heads and of 4)"),
    I(mae, decoder_heads, "16", 1, 1024, "decoder attention heads"),
    B(mae, norm_pix_loss, "true", "targets are each patch's pixels normalised by its own mean and variance"),

    S(data, train, "", 0, "training shards: an HDF5 file, a directory or a glob"),
    S(data, test, "", 0, "evaluation shards for kNN / linear probe (\"\" = none)"),
    I(data, batch_size, "256", 1, 1 << 24, "images per step, all ranks together"),
    I(data, workers, "2", 0, 256, "reader threads per rank: read, decode and augment batches ahead of the step "
      "(0 = 1)"),
    B(data, drop_last, "true", "drop each epoch's last incomplete batch"),
    I(data, limit, "0", 0, NOMAX, "use only the first N training samples (0 = all)"),
    E(data, sampling, "global", "global|local", "global: one permutation of all samples per epoch, cut into "
      "per-rank slices (any rank count sees the same batches); local: each rank permutes only its own "
      "contiguous 1/ranks of the samples (its own shards), for node-local caches"),
    E(data, on_corrupt, "skip", "skip|stop", "a JPEG that does not decode: skip it (its batch slot takes the next "
      "image's views; counted and named in the log) or stop the run"),

    I(augment, views, "2", 1, 16, "augmented views per image"),
    FL(augment, crop_scale, "[0.08, 1.0]", 2, 2, 0, 1, LO_OPEN | ORDERED,
       "random resized crop: area fraction [min, max]"),
    FL(augment, crop_ratio, "[0.75, 1.3333]", 2, 2, 0, NOMAX, LO_OPEN | ORDERED,
       "random resized crop: aspect ratio [min, max]"),
    F(augment, flip_p, "0.5", 0, 1, 0, "horizontal flip probability"),
    F(augment, jitter_p, "0.8", 0, 1, 0, "colour jitter probability"),
    F(augment, brightness, "0.4", 0, NOMAX, 0, "colour jitter: brightness strength"),
    F(augment, contrast, "0.4", 0, NOMAX, 0, "colour jitter: contrast strength"),
    F(augment, saturation, "0.4", 0, NOMAX, 0, "colour jitter: saturation strength"),
    F(augment, hue, "0.1", 0, 0.5, 0, "colour jitter: hue strength"),
    F(augment, grayscale_p, "0.2", 0, 1, 0, "grayscale conversion probability"),
    F(augment, blur_p, "0.0", 0, 1, 0, "Gaussian blur probability"),
    FL(augment, blur_sigma, "[0.1, 2.0]", 2, 2, 0, NOMAX, LO_OPEN | ORDERED,
       "Gaussian blur sigma [min, max], px"),
    F(augment, solarize_p, "0.0", 0, 1, 0, "solarization probability"),
    FL(augment, view_blur_p, "[]", 0, 8, 0, 1, 0,
       "blur probability per view: entry k for view k (BYOL, MoCo v3, DINO's global crops: [1.0, 0.1]); "
       "views past the list: blur_p"),
    FL(augment, view_solarize_p, "[]", 0, 8, 0, 1, 0,
       "solarization probability per view, as view_blur_p (BYOL, MoCo v3: [0.0, 0.2]); views past the list: solarize_p"),
    FL(augment, mean, "[]", 0, 3, 0, 1, 0, "per-channel normalisation mean ([] = dataset default)"),
    FL(augment, std, "[]", 0, 3, 0, NOMAX, LO_OPEN,
       "per-channel normalisation std ([] = dataset default)"),
    E(augment, on, "auto", "auto|loader|device", "where the views are made: loader (the reader threads) or device "
      "(the readers draw the parameters and stage the source pixels; the backend's augment op makes the views "
      "after one upload); auto: device on a GPU backend, loader on the CPU"),

    E(optim, name, "lars", "sgd|adamw|lars|lamb", "optimizer"),
    F(optim, lr, "0.3", 0, NOMAX, LO_OPEN, "base learning rate, scaled by lr_scaling"),
    E(optim, lr_scaling, "linear", "none|linear|sqrt",
      "peak lr: none = lr, linear = lr*batch/256, sqrt = lr*sqrt(batch)"),
    F(optim, weight_decay, "1e-6", 0, NOMAX, 0, "weight decay (start if schedule.wd_end >= 0)"),
    F(optim, momentum, "0.9", 0, 1, HI_OPEN, "SGD / LARS momentum"),
    B(optim, nesterov, "false", "SGD: Nesterov momentum"),
    F(optim, beta1, "0.9", 0, 1, HI_OPEN, "AdamW / LAMB first-moment decay"),
    F(optim, beta2, "0.999", 0, 1, HI_OPEN, "AdamW / LAMB second-moment decay"),
    F(optim, eps, "1e-8", 0, NOMAX, LO_OPEN, "AdamW / LAMB denominator epsilon"),
    F(optim, eta, "0.001", 0, NOMAX, LO_OPEN, "LARS trust coefficient"),
    F(optim, clip_grad, "0", 0, NOMAX, 0, "max gradient L2 norm (0 = no clipping)"),
    E(optim, clip_mode, "global", "global|per_tensor",
      "clip_grad bounds the norm of all gradients together, or of each tensor's (DINO)"),
    I(optim, accum_steps, "1", 1, 1024, "micro-batches accumulated into one step"),

    I(schedule, epochs, "100", 1, 1000000, "training epochs"),
    F(schedule, warmup_epochs, "10", 0, NOMAX, 0, "linear lr warmup, epochs (fractions allowed)"),
    F(schedule, final_lr, "0", 0, NOMAX, 0, "lr at the end of the cosine decay"),
    F(schedule, wd_end, "-1", -1, NOMAX, 0,
      "weight decay reached by a cosine schedule (-1 = constant weight_decay)"),

    I(checkpoint, every_steps, "0", 0, NOMAX, "steps between checkpoints (0 = end / signal only)"),
    I(checkpoint, keep, "3", 0, NOMAX, "newest checkpoints kept (0 = all)"),
    B(checkpoint, resume, "true", "resume from the newest complete checkpoint of the run"),

    I(eval, train_limit, "0", 0, NOMAX,
      "training samples whose features form the kNN bank and probe set (0 = all, not just data.limit)"),
    IL(eval, knn_k, "[20, 200]", 1, SSL_CONFIG_LIST_MAX, 1, NOMAX, 0, "kNN neighbour counts"),
    F(eval, knn_temperature, "0.07", 0, NOMAX, LO_OPEN, "kNN vote weighting temperature"),
    I(eval, knn_every_epochs, "0", 0, NOMAX, "epochs between kNN evaluations, training (0 = off)"),
    I(eval, linear_epochs, "10", 0, NOMAX, "linear-probe epochs (0 = no linear probe)"),
    F(eval, linear_lr, "0.1", 0, NOMAX, LO_OPEN, "linear-probe learning rate"),
    I(eval, linear_batch, "256", 1, 1 << 24, "linear-probe batch size"),

    E(device, backend, "cpu", "cpu|cuda|devsim", "compute backend (devsim: the CPU ops on host-unreadable memory, for tests)"),
    I(device, threads, "0", 0, 4096,
      "CPU threads per rank (0 = OMP_NUM_THREADS, else the node's cores / ranks on the node)"),

    F(comm, timeout_s, "900", 0, NOMAX, 0,
      "seconds one collective may wait before the job is ended with a report naming it (0 = never)"),
    E(comm, device, "auto", "auto|nccl|staged", "collectives on device memory: NCCL where the backend has it "
      "(auto; nccl: or stop), else staged through host memory and MPI"),
    E(comm, overlap, "auto", "auto|on|off", "gradient all-reduce in buckets started as backward finishes them "
      "(auto: where a device communicator runs them on a stream of their own; off: one all-reduce after backward)"),
    F(comm, bucket_mb, "25", 0, NOMAX, LO_OPEN, "size of a gradient bucket, MB (comm.overlap)"),

    S(finetune, name, "finetune", NONEMPTY, "fine-tuning directory inside the run directory (one per label fraction, "
      "say)"),
    I(finetune, epochs, "10", 1, 1000000, "fine-tuning epochs (over the label_fraction subset)"),
    I(finetune, batch_size, "0", 0, 1 << 24, "images per fine-tuning step, all ranks together (0 = data.batch_size)"),
    F(finetune, lr, "5e-4", 0, NOMAX, LO_OPEN, "base learning rate; peak = lr * batch / 256 (MAE's blr)"),
    E(finetune, optimizer, "adamw", "sgd|adamw|lars|lamb",
      "fine-tuning optimizer, at its reference defaults (AdamW betas 0.9/0.999, eps 1e-8; SGD/LARS momentum 0.9)"),
    F(finetune, weight_decay, "0.05", 0, NOMAX, 0, "weight decay (not on biases, norm parameters, tokens)"),
    F(finetune, warmup_epochs, "1", 0, NOMAX, 0, "linear lr warmup, epochs, then cosine to 0"),
    F(finetune, label_smoothing, "0.1", 0, 1, HI_OPEN, "cross-entropy target: (1 - s) one-hot + s / classes"),
    F(finetune, layer_decay, "1.0", 0, 1, LO_OPEN,
      "layer-wise lr decay: layer i of L gets lr * decay^(L+1-i) (ViT: embeddings 0, blocks 1..depth, head "
      "depth+1, as MAE; ResNet: stem 0, layer1-4 1..4, fc 5); 1 = off"),
    F(finetune, label_fraction, "1.0", 0, 1, LO_OPEN,
      "fraction of each class of data.train used (0.01 / 0.1: the label-efficiency protocol; seeded by run.seed)"),
    I(finetune, img_size, "0", 0, 4096, "fine-tuning input size, px (0 = model.img_size; a ViT resizes its positions)"),
    FL(finetune, crop_scale, "[0.08, 1.0]", 2, 2, 0, 1, LO_OPEN | ORDERED,
       "random resized crop area fraction [min, max] (the only augmentation with the flip)"),
    F(finetune, flip_p, "0.5", 0, 1, 0, "horizontal flip probability"),
};

const ssl_config_key *ssl_config_schema(int *n)
{
    *n = (int)(sizeof schema / sizeof schema[0]);
    return schema;
}
