/* Model registry: arch name -> builder. */
#include "framework/models/model.h"

#include "framework/core/check.h"

#include <stdio.h>
#include <string.h>

typedef int (*builder_fn)(ssl_model *m, ssl_plan *pl, const char *prefix, char *err);

static const struct {
    const char *prefix;
    builder_fn build;
} builders[] = {
    {"resnet", ssl_resnet_build},
    {"vit_", ssl_vit_build},
};

void ssl_model_config_default(ssl_model_config *cfg, const char *arch)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->arch, sizeof cfg->arch, "%s", arch);
    cfg->in_chans = 3;
    cfg->width = 64;
    cfg->img_size = 224;
    cfg->patch_size = 16;
}

int ssl_model_build(ssl_model *m, const ssl_model_config *cfg, ssl_plan *pl, const char *prefix,
                    char *err)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    for (size_t i = 0; i < sizeof builders / sizeof builders[0]; i++)
        if (strncmp(cfg->arch, builders[i].prefix, strlen(builders[i].prefix)) == 0)
            return builders[i].build(m, pl, prefix ? prefix : "", err);
    snprintf(err, 256, "unknown model arch '%s' (resnet18, resnet34, resnet50, vit_tiny, "
                       "vit_small, vit_base)", cfg->arch);
    return -1;
}

void ssl_model_instance(ssl_model *dst, const ssl_model *src)
{
    SSL_ASSERTF(dst != src && src->impl && src->clone, "ssl_model_instance: '%s' is not a built model",
                src->cfg.arch);
    *dst = *src;
    dst->impl = NULL;
    src->clone(dst, src); /* registers nothing: the plan already holds the source's tensors */
    SSL_ASSERT(dst->impl && dst->impl != src->impl);
}

void ssl_model_free(ssl_model *m)
{
    if (m->free) m->free(m);
    memset(m, 0, sizeof *m);
}
