/* MAE's per-sample random masking (REFERENCE §5.1; models_mae.py random_masking), as host-side index
 * bookkeeping for one step: noise (N, L) -> ids_shuffle = argsort(noise) per row (ascending; ties in
 * index order), ids_restore = argsort(ids_shuffle); the first `keep` of ids_shuffle are the visible
 * patches, the rest are masked. The outputs feed ssl_vit_forward_tokens (ids_keep),
 * ssl_mae_decoder_forward (ids_restore) and ssl_mae_loss (mask). */
#ifndef SSL_LAYERS_MAE_MASK_H
#define SSL_LAYERS_MAE_MASK_H

#include <stdint.h>

/* Visible patches of L at mask_ratio: (int)(L * (1 - mask_ratio)) in double, as MAE's len_keep (a
 * float ratio would truncate differently, e.g. L = 10 at 0.6 gives 3 instead of 4). */
int64_t ssl_mae_keep(int64_t L, double mask_ratio);

/* noise (N, L) uniform in [0, 1): row i from the Philox stream (key, sample0 + i), so a sample's
 * mask depends on its global index, not on the rank or batch it lands in. Key it per step, e.g.
 * ssl_rng_hash(seed, step). */
void ssl_mae_noise(uint64_t key, int64_t sample0, int64_t N, int64_t L, float *noise);

/* ids_keep (N, keep): ids_shuffle[:, :keep], in shuffle order (ascending noise); ids_restore (N, L):
 * the rank of each patch in ids_shuffle; mask (N, L): 0 for kept, 1 for masked, in patch order. */
void ssl_mae_mask(int64_t N, int64_t L, int64_t keep, const float *noise, int32_t *ids_keep,
                  int32_t *ids_restore, float *mask);

#endif
