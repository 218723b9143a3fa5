/* Parameter naming conventions of the exported encoder. sslrun's own names are torchvision's state_dict
 * keys; DINO's and MAE's ViT checkpoints, and most ViT users, use timm's (patch_embed.proj, cls_token,
 * pos_embed, blocks.K.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head). Both keep
 * the same tensors in the same layout (timm's qkv rows are torchvision's in_proj rows, q then k then
 * v), so a rename is all a conversion needs. ResNets are named alike in both. */
#ifndef SSL_IO_EXPORT_NAMES_H
#define SSL_IO_EXPORT_NAMES_H

#include <stddef.h>

typedef enum { SSL_NAMES_TORCHVISION = 0, SSL_NAMES_TIMM } ssl_export_names;

/* timm's name for a torchvision ViT key into out, or "" when the key has no other name in timm. */
void ssl_timm_name(const char *torchvision, char *out, size_t len);

/* "torchvision" / "timm" -> 0 and *names; -1 for anything else. */
int ssl_export_names_parse(const char *s, ssl_export_names *names);

#endif
