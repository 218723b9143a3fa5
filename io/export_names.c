/* torchvision -> timm ViT names (export_names.h). */
#include "io/export_names.h"

#include <stdio.h>
#include <string.h>

void ssl_timm_name(const char *tv, char *out, size_t len)
{
    static const char *const whole[][2] = {
        {"conv_proj.weight", "patch_embed.proj.weight"}, {"conv_proj.bias", "patch_embed.proj.bias"},
        {"class_token", "cls_token"},                    {"encoder.pos_embedding", "pos_embed"},
        {"encoder.ln.weight", "norm.weight"},            {"encoder.ln.bias", "norm.bias"},
        {"heads.head.weight", "head.weight"},            {"heads.head.bias", "head.bias"},
    };
    static const char *const part[][2] = {
        {"ln_1.", "norm1."},
        {"ln_2.", "norm2."},
        {"self_attention.in_proj_weight", "attn.qkv.weight"},
        {"self_attention.in_proj_bias", "attn.qkv.bias"},
        {"self_attention.out_proj.", "attn.proj."},
        {"mlp.0.", "mlp.fc1."},
        {"mlp.3.", "mlp.fc2."},
    };
    out[0] = 0;
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++)
        if (!strcmp(tv, whole[i][0])) {
            snprintf(out, len, "%s", whole[i][1]);
            return;
        }
    int k, at = 0;
    if (sscanf(tv, "encoder.layers.encoder_layer_%d.%n", &k, &at) != 1 || !at) return;
    for (size_t i = 0; i < sizeof part / sizeof *part; i++)
        if (!strncmp(tv + at, part[i][0], strlen(part[i][0]))) {
            snprintf(out, len, "blocks.%d.%s%s", k, part[i][1], tv + at + strlen(part[i][0]));
            return;
        }
}

int ssl_export_names_parse(const char *s, ssl_export_names *names)
{
    if (!strcmp(s, "torchvision")) *names = SSL_NAMES_TORCHVISION;
    else if (!strcmp(s, "timm")) *names = SSL_NAMES_TIMM;
    else return -1;
    return 0;
}
