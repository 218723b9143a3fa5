/* MAE the method (methods/mae.c) beyond its vtable: the masked forward that the training step and
 * `sslrun mae-preview` share, so the preview reconstructs exactly what training scored. */
#ifndef SSL_METHODS_MAE_H
#define SSL_METHODS_MAE_H

#include "methods/method.h"

/* The masking key of optimizer step `step`: sample i's noise is Philox stream i of this key
 * (ssl_mae_noise), i its global dataset index, so its mask depends on (seed, step, sample) alone. */
uint64_t ssl_mae_step_key(uint64_t seed, int64_t step);

/* Patch size and patches per image (L) of a configured MAE method. */
int ssl_mae_patch_size(const ssl_method *m);
int64_t ssl_mae_patches(const ssl_method *m);

/* MAE's forward on images x (N, C, S, S), S = model.img_size, normalised as the views: masks drawn
 * for the samples index (N, host) under key, the encoder on each image's kept patches, the decoder
 * -> pred (N, L, p*p*C) (arena) in MAE's patch-feature order. *mask receives the host mask (N, L),
 * 1 = removed; it belongs to the method and holds until its next forward. A backward
 * (ssl_mae_decoder_backward, ssl_vit_backward_tokens) may follow, as the step does. */
ssl_tensor ssl_mae_forward(ssl_method *m, ssl_ctx *c, const ssl_weights *w, ssl_tensor x, const int64_t *index,
                           uint64_t key, const float **mask);

#endif
