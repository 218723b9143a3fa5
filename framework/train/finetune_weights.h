/* Starting weights for fine-tuning (finetune_weights.c): the encoder tensors [0, nseg) of params and
 * every BN buffer, taken by name from a pretraining checkpoint or a safetensors file. On success desc
 * receives a one-line description for finetune.json; 0, or -1 with a message naming the file and the
 * tensor. */
#ifndef SSL_TRAIN_FINETUNE_WEIGHTS_H
#define SSL_TRAIN_FINETUNE_WEIGHTS_H

#include "framework/train/session.h"

/* A pretraining checkpoint: its session is rebuilt from the config stored inside (as export does),
 * loaded, and its encoder's tensors copied; the method's heads and state are dropped. */
int ssl_finetune_from_checkpoint(ssl_ctx *c, ssl_params *params, int nseg, ssl_params *buffers, int in_chans,
                                 const char *path, char *desc, size_t desclen, char *err, size_t errlen);

/* A safetensors file: torchvision names (ours, `sslrun export` output), or for a ViT timm's
 * (patch_embed.proj, cls_token, pos_embed, blocks.K.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2},
 * norm). F32 only; other entries (a classifier, num_batches_tracked) are ignored and counted. */
int ssl_finetune_from_safetensors(ssl_ctx *c, ssl_params *params, int nseg, ssl_params *buffers, const char *path,
                                  char *desc, size_t desclen, char *err, size_t errlen);

#endif
