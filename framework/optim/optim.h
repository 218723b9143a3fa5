/* Optimizers over a flat ssl_params (SGD, AdamW, LARS, LAMB) and gradient utilities (global and
 * per-tensor norm clipping). Everything goes through the backend op table, so the CUDA backend
 * reuses this file unchanged; a step's updates are fused ops over every segment at once (one
 * launch per stage: AdamW two, LARS three plus one batched norm query, not one per tensor). State buffers (momentum, Adam m and v) have the same
 * flat layout as the parameters, so a checkpoint saves each one as a single dataset. */
#ifndef SSL_OPTIM_OPTIM_H
#define SSL_OPTIM_OPTIM_H

#include "framework/backend/backend.h"
#include "framework/core/ctx.h"
#include "framework/tensor/params.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SSL_OPTIM_SGD,   /* torch.optim.SGD: coupled weight decay, optional (Nesterov) momentum */
    SSL_OPTIM_ADAMW, /* torch.optim.AdamW: decoupled weight decay, Adam bias correction */
    SSL_OPTIM_LARS,  /* MoCo v3 / DINO / BYOL LARS (REFERENCE §1.12), PyTorch-style momentum */
    SSL_OPTIM_LAMB,  /* TF-Addons LAMB (REFERENCE §6.1) */
} ssl_optim_kind;

typedef struct {
    ssl_optim_kind kind;
    float momentum;   /* SGD, LARS: momentum coefficient (0 = none; SGD only) */
    int nesterov;     /* SGD: Nesterov momentum */
    float beta1;      /* AdamW, LAMB: first-moment decay */
    float beta2;      /* AdamW, LAMB: second-moment decay */
    float eps;        /* AdamW, LAMB: added to sqrt(vhat) */
    float eta;        /* LARS: trust coefficient */
    /* Multiplies the stored gradient before use. With gradient accumulation over K micro-batches
     * (each backward adding its micro-batch-mean gradient, ops accumulate with +=), set 1/K: the
     * step then sees the mean over the full batch. 1 without accumulation; must be > 0. */
    float grad_scale;
} ssl_optim_config;

typedef struct {
    ssl_optim_config cfg;
    ssl_params *p;
    const struct ssl_backend *be; /* owner of the state buffers */
    int64_t step;  /* completed steps */
    /* updates each segment has had (torch's per-parameter state['step']): Adam's bias correction
     * uses t = seg_step + 1, so a segment frozen for a while (DINO's last layer) starts at t = 1 when
     * it thaws, as torch's AdamW which skips parameters without a gradient. Host, p->nseg entries. */
    int64_t *seg_step;
    /* Device buffers of p->numel floats, zero-initialised, indexed like p->data:
     * m: SGD/LARS momentum buffer (NULL for SGD without momentum), AdamW/LAMB first moment;
     * v: AdamW/LAMB second moment, NULL otherwise. */
    float *m;
    float *v;
    /* Host, p->nseg entries, or NULL (all 1): segment i steps with lr * seg_lr_scale[i] (AdamW's
     * decoupled decay too, as a torch param group's lr). Set and owned by the caller after init:
     * fine-tuning's layer-wise lr decay. */
    const float *seg_lr_scale;
    /* Host scratch, p->nseg entries each, allocated once: a step's fused ops' segment table
     * (backend.h's *_multi: one launch per op for all tensors), and the trust ratios' norm queries. */
    ssl_opt_seg *tab;
    size_t *norm_off, *norm_n;
    double *norm_w2, *norm_d2;
} ssl_optim;

/* Reference defaults for `kind`: SGD momentum 0.9; AdamW betas (0.9, 0.999), eps 1e-8 (torch);
 * LARS momentum 0.9, eta 1e-3 (MoCo v3, BYOL); LAMB betas (0.9, 0.999), eps 1e-6 (TF-Addons);
 * grad_scale 1. */
ssl_optim_config ssl_optim_config_default(ssl_optim_kind kind);

/* Allocate zeroed state on c's backend for parameters p (which must have gradients). */
void ssl_optim_init(ssl_optim *o, ssl_ctx *c, ssl_params *p, const ssl_optim_config *cfg);
void ssl_optim_free(ssl_optim *o);
/* Position the optimizer after `step` completed steps with no segment ever frozen (a resume from a
 * checkpoint without per-segment counts). */
void ssl_optim_set_step(ssl_optim *o, int64_t step);

/* One update of every non-frozen segment with learning rate lr and weight decay wd (both from the
 * schedules, per step). Segment flags: SSL_SEG_FROZEN segments are skipped entirely (no decay, no
 * state change); SSL_SEG_NO_WD segments get wd 0; SSL_SEG_NO_ADAPT segments get no LARS/LAMB trust
 * ratio (and, in LARS, no weight decay either, as the references treat biases and norm params).
 *
 * The step CONSUMES the gradient: AdamW, LAMB and LARS overwrite each segment's gradient with its
 * update direction to avoid scratch memory. The training loop therefore zeroes the gradients after
 * the step, never between the micro-batches of one accumulated step:
 *     zero_grad; { forward; backward } x K; [clip]; ssl_optim_step; zero_grad ...
 *
 * Per algorithm, with g = grad_scale * grad and wd already 0 where excluded:
 *   SGD:   d = g + wd*w; m = mu*m + d; w -= lr * (nesterov ? d + mu*m : m)
 *   AdamW: w *= 1 - lr*wd; then Adam with bias correction (t from 1)
 *   LARS:  dp = g + wd*w; q = eta*||w||/||dp|| (1 if a norm is 0); m = mu*m + q*dp; w -= lr*m
 *          NO_ADAPT segments: m = mu*m + g; w -= lr*m
 *   LAMB:  u = mhat/(sqrt(vhat)+eps) + wd*w; r = ||w||/||u|| (1 if a norm is 0 or NO_ADAPT);
 *          w -= lr*r*u
 * Norms are per segment (per tensor). */
void ssl_optim_step(ssl_optim *o, ssl_ctx *c, float lr, float wd);

/* Clip the gradient of all non-frozen segments to global L2 norm max_norm, as
 * torch.nn.utils.clip_grad_norm_: multiply by max_norm / (norm + 1e-6) when that is below 1.
 * gscale is the optimizer's grad_scale: the norm is that of gscale*grad, the gradient the step will
 * use, so thresholds do not depend on the accumulation count. Returns the pre-clip norm. */
double ssl_optim_clip_global_norm(ssl_ctx *c, ssl_params *p, float max_norm, float gscale);
/* The global L2 norm of gscale*grad over non-frozen segments (what clipping would see), unchanged. */
double ssl_optim_grad_norm(ssl_ctx *c, ssl_params *p, float gscale);

/* DINO's clip_gradients: each non-frozen segment's gradient is multiplied by
 * max_norm / (||gscale*g|| + 1e-6) when that is below 1. Returns the pre-clip global norm
 * (of gscale*grad) for logging. */
double ssl_optim_clip_per_tensor(ssl_ctx *c, ssl_params *p, float max_norm, float gscale);

#endif
