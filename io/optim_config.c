/* ssl_optim_config_from (see optim_config.h). */
#include "io/optim_config.h"

#include <string.h>

ssl_optim_kind ssl_optim_kind_from_name(const char *name)
{
    static const struct {
        const char *name;
        ssl_optim_kind kind;
    } kinds[] = {{"sgd", SSL_OPTIM_SGD}, {"adamw", SSL_OPTIM_ADAMW}, {"lars", SSL_OPTIM_LARS}, {"lamb", SSL_OPTIM_LAMB}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(name, kinds[i].name)) return kinds[i].kind;
    return SSL_OPTIM_SGD; /* the config schema admits only the names above */
}

ssl_optim_config ssl_optim_config_from(const ssl_config *cfg)
{
    ssl_optim_config oc = ssl_optim_config_default(ssl_optim_kind_from_name(cfg->optim.name));
    oc.momentum = (float)cfg->optim.momentum;
    oc.nesterov = cfg->optim.nesterov;
    oc.beta1 = (float)cfg->optim.beta1;
    oc.beta2 = (float)cfg->optim.beta2;
    oc.eps = (float)cfg->optim.eps;
    oc.eta = (float)cfg->optim.eta;
    oc.grad_scale = 1.0f / (float)(cfg->optim.accum_steps > 0 ? cfg->optim.accum_steps : 1);
    return oc;
}
