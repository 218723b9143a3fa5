/* Method registry: config name -> implementation. The config schema's method.name choices and the
 * per-method sections must list the same names (tests/unit/test_method_registry.c). */
#include "methods/method.h"

#include "framework/core/check.h"

#include <stdio.h>
#include <string.h>

static const ssl_method_vtable *const methods[] = {
    &ssl_method_simclr,
    &ssl_method_moco_v2,
    &ssl_method_moco_v3,
    &ssl_method_byol,
    &ssl_method_dino,
    &ssl_method_mae,
};
#define NMETHODS ((int)(sizeof methods / sizeof methods[0]))

int ssl_method_count(void) { return NMETHODS; }

const ssl_method_vtable *ssl_method_at(int i) { return i >= 0 && i < NMETHODS ? methods[i] : NULL; }

const ssl_method_vtable *ssl_method_find(const char *name)
{
    for (int i = 0; i < NMETHODS; i++)
        if (strcmp(name, methods[i]->name) == 0) return methods[i];
    return NULL;
}

const char *ssl_method_names(void)
{
    static char buf[256];
    if (!buf[0]) {
        size_t len = 0;
        for (int i = 0; i < NMETHODS; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? ", " : "", methods[i]->name);
    }
    return buf;
}

void ssl_scalars_add(ssl_scalars *s, const char *name, double v)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->name[i], name) == 0) {
            s->v[i] += v;
            return;
        }
    SSL_ASSERTF(s->n < SSL_SCALARS_MAX && strlen(name) < sizeof s->name[0], "too many monitors or too long a name: %s",
                name);
    snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
    s->v[s->n++] = v;
}

int ssl_method_configure(const ssl_config *cfg, ssl_view_plan *views, char *err, size_t errlen)
{
    const ssl_method_vtable *vt = ssl_method_find(cfg->method.name);
    if (!vt) {
        snprintf(err, errlen, "unknown method '%s' (available: %s)", cfg->method.name, ssl_method_names());
        return -1;
    }
    memset(views, 0, sizeof *views);
    if (vt->configure(cfg, views, err, errlen)) return -1;
    SSL_ASSERTF(views->ngroups >= 1 && views->ngroups <= SSL_VIEW_GROUPS_MAX, "%s: %d view groups", vt->name,
                views->ngroups);
    int total = 0;
    for (int g = 0; g < views->ngroups; g++) {
        SSL_ASSERTF(views->group[g].count >= 1 && views->group[g].size >= 1, "%s: view group %d is empty", vt->name, g);
        total += views->group[g].count;
    }
    if (total > SSL_VIEWS_MAX) {
        snprintf(err, errlen, "%s takes %d views per image; at most %d are supported", vt->name, total, SSL_VIEWS_MAX);
        return -1;
    }
    const ssl_config_floats *per[2] = {&cfg->augment.view_blur_p, &cfg->augment.view_solarize_p};
    for (int i = 0; i < 2; i++)
        if (per[i]->n > total) {
            snprintf(err, errlen, "augment.%s has %d entries, but %s takes %d views per image",
                     i ? "view_solarize_p" : "view_blur_p", per[i]->n, vt->name, total);
            return -1;
        }
    return 0;
}

int ssl_method_init(ssl_method *m, const ssl_config *cfg, ssl_model *encoder, ssl_plan *pl, char *err,
                    size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (ssl_method_configure(cfg, &m->views, err, errlen)) return -1;
    m->vt = ssl_method_find(cfg->method.name);
    m->cfg = cfg;
    m->encoder = encoder;
    return m->vt->plan(m, cfg, pl, err, errlen);
}

void ssl_method_free(ssl_method *m)
{
    if (m->vt && m->vt->free) m->vt->free(m);
    memset(m, 0, sizeof *m);
}
