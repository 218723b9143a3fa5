/* Multi-head self-attention on tokens (B, T, D), as torch.nn.MultiheadAttention with batch_first:
 * packed in_proj (3D, D) + bias, softmax(Q K^T / sqrt(dh)) V per head, out_proj (D, D) + bias.
 * Parameter names follow torch: <name>.in_proj_weight, <name>.in_proj_bias, <name>.out_proj.*. */
#ifndef SSL_LAYERS_ATTENTION_H
#define SSL_LAYERS_ATTENTION_H

#include "framework/layers/linear.h"

typedef struct {
    int D, heads;
    ssl_linear qkv, proj;
    int64_t B, T;
    ssl_tensor qkv_out; /* (B, T, 3D); a bf16 view between forward and backward under bf16 storage */
    float *probs;    /* (B, H, T, T) softmax output */
    float *ctx;      /* (B, T, D) per-head outputs, heads side by side */
} ssl_attention;

void ssl_attention_init(ssl_attention *l, ssl_plan *pl, const char *name, int D, int heads);
ssl_tensor ssl_attention_forward(ssl_ctx *c, ssl_attention *l, const ssl_weights *w, ssl_tensor x);
ssl_tensor ssl_attention_backward(ssl_ctx *c, ssl_attention *l, const ssl_weights *w, ssl_tensor dy);
/* The softmax output again, from the saved q and k (arena): what forward computed, bit for bit (the
 * same products on the same inputs), for a backward whose forward did not keep it. */
void ssl_attention_recompute_probs(ssl_ctx *c, ssl_attention *l);

#endif
