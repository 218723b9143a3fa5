/* MAE's reconstruction loss (REFERENCE §5.3; models_mae.py patchify / forward_loss), in fp32 with
 * double row sums: target = patchify(imgs) (N, L, p*p*C) in MAE's (i, j, c) feature order; with
 * norm_pix each patch is normalised by its own mean and unbiased variance, (x - mean) / (var + 1e-6)^0.5;
 * loss = sum over patches of mask * mean over p*p*C of (pred - target)^2, divided by sum(mask): only
 * the masked patches count. Per rank: every sample masks the same number of patches, so the mean of
 * the ranks' losses (and gradients) equals the loss over the global batch. Scratch from c->act. */
#ifndef SSL_LAYERS_MAE_LOSS_H
#define SSL_LAYERS_MAE_LOSS_H

#include "framework/backend/backend.h"
#include "framework/tensor/tensor.h"

#define SSL_MAE_NORM_PIX_EPS 1e-6f /* models_mae.py forward_loss */

/* The pixel targets (N, L, p*p*C) of images (N, C, H, W), H and W multiples of p (arena). */
ssl_tensor ssl_mae_patchify(ssl_ctx *c, ssl_tensor imgs, int p);

/* The loss of pred (N, L, p*p*C) (ssl_mae_decoder_forward) against imgs, over the patches where mask
 * (N, L) HOST (ssl_mae_mask) is 1; it must mask at least one. dpred (N, L, p*p*C) device receives
 * d(loss)/d(pred) (assigned; zero on kept patches; NULL: loss only). */
double ssl_mae_loss(ssl_ctx *c, ssl_tensor imgs, int p, ssl_tensor pred, const float *mask, int norm_pix,
                    float *dpred);

#endif
