/* Method registry: config name -> implementation. */
#include "methods/method.h"

#include <stdio.h>
#include <string.h>

static const ssl_method_vtable *const methods[] = {
    &ssl_method_simclr,
};

int ssl_method_init(ssl_method *m, const ssl_method_config *cfg, ssl_model *encoder, ssl_plan *pl,
                    char *err)
{
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(cfg->name, methods[i]->name) == 0) {
            m->vt = methods[i];
            m->cfg = *cfg;
            m->encoder = encoder;
            return m->vt->init(m, cfg, encoder, pl, err);
        }
    snprintf(err, 256, "unknown method '%s' (available: simclr)", cfg->name);
    return -1;
}

void ssl_method_free(ssl_method *m)
{
    if (m->vt && m->vt->free) m->vt->free(m);
    memset(m, 0, sizeof *m);
}
