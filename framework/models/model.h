/* Encoders: ResNet-18/34/50 (ImageNet or small-image stem, any base width) and ViT-Ti/S/B (any
 * image and patch size). A model is planned into an ssl_plan (parameters named like torchvision's
 * state_dict, so exports load there) and run with explicit ssl_weights.
 * forward() maps images (N, C, H, W) to (N, out_dim): pooled features, or logits when
 * num_classes > 0. backward() takes d(out) and accumulates parameter gradients; no image grad.
 * forward() keeps what backward() needs in the model's layer structs, so one model runs one
 * forward/backward pair at a time; ssl_model_instance gives further copies (two views with separate
 * BatchNorm batches, an EMA teacher) that share the parameter layout but not that saved state. */
#ifndef SSL_MODELS_MODEL_H
#define SSL_MODELS_MODEL_H

#include "framework/layers/layer.h"

typedef struct {
    char arch[32];      /* resnet18 | resnet34 | resnet50 | vit_tiny | vit_small | vit_base */
    int in_chans;       /* image channels (3; 1 for grayscale data) */
    int num_classes;    /* 0: no classification head; forward returns features */
    /* ResNet */
    int small_stem;     /* 3x3 stride-1 stem conv, no max-pool (28-64 px inputs) */
    int width;          /* channels of the first stage (64 in torchvision) */
    /* ViT */
    int img_size, patch_size;
    int sincos_pos;     /* fixed 2-D sin-cos position embedding (MoCo v3 / MAE) instead of learned */
    int vit_dim, vit_depth, vit_heads; /* 0: the arch's defaults */
    int freeze_patch_embed; /* MoCo v3's stop-grad conv1: conv_proj weight and bias SSL_SEG_FROZEN,
                             * weight xavier-uniform, and backward computes no gradient for them */
} ssl_model_config;

/* Defaults for an arch name: torchvision geometry, 3 channels, 224 px, patch 16, width 64. */
void ssl_model_config_default(ssl_model_config *cfg, const char *arch);

typedef struct ssl_model ssl_model;
struct ssl_model {
    ssl_model_config cfg;
    int feat_dim;   /* dimension of the pooled features */
    int out_dim;    /* dimension of forward's output (num_classes or feat_dim) */
    void *impl;
    ssl_tensor (*forward)(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor x, int train);
    void (*backward)(ssl_ctx *c, ssl_model *m, const ssl_weights *w, ssl_tensor dy);
    void (*free)(ssl_model *m);
    /* ssl_model_instance's per-arch part: dst already holds a copy of *src; give it its own impl
     * (layer structs with the same offsets, fresh saved state), sharing nothing that either frees. */
    void (*clone)(ssl_model *dst, const ssl_model *src);
    /* forward FLOPs per image (multiply-add = 2), for throughput / MFU reports */
    double flops_per_image;
};

/* Plan a model; returns 0, or -1 with a message in err (size 256) for an unknown arch or bad
 * geometry. Names are "<prefix>.<torchvision key>" (prefix may be ""). */
int ssl_model_build(ssl_model *m, const ssl_model_config *cfg, ssl_plan *pl, const char *prefix,
                    char *err);
void ssl_model_free(ssl_model *m);

/* A second instance of a built model: the same parameter and buffer offsets (it runs on any ssl_weights with
 * the layout of the plan it was built into), its own per-call saved state, so instances can each run forward
 * before any runs backward. Free with ssl_model_free; the source must outlive its use (the two may be freed
 * in either order). */
void ssl_model_instance(ssl_model *dst, const ssl_model *src);

/* Implementations (registry in model.c). */
int ssl_resnet_build(ssl_model *m, ssl_plan *pl, const char *prefix, char *err);
int ssl_vit_build(ssl_model *m, ssl_plan *pl, const char *prefix, char *err);

#endif
