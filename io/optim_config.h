/* The optimizer a config asks for: optim.* as an ssl_optim_config (kind, betas, momentum, eps, eta),
 * with grad_scale 1 / optim.accum_steps (each micro-batch's backward adds its mean gradient). Shared
 * by the trainer and by methods that own parameters of their own (DINO's sharded prototypes). */
#ifndef SSL_IO_OPTIM_CONFIG_H
#define SSL_IO_OPTIM_CONFIG_H

#include "framework/optim/optim.h"
#include "io/config.h"

ssl_optim_config ssl_optim_config_from(const ssl_config *cfg);
/* "sgd" | "adamw" | "lars" | "lamb" (the schema's choices) -> the kind. */
ssl_optim_kind ssl_optim_kind_from_name(const char *name);

#endif
