/* The method registry (methods/registry.c) and the config schema (io/config_schema.c) name the same
 * methods: method.name's choices are exactly the registry's names, in order; every method has a
 * config section named after it; every section that is not a trainer section belongs to a method;
 * each method accepts the default config of its own section, declares its views, and plans heads. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "methods/method.h"

#include <string.h>

static const char *const trainer_sections[] = {"run",  "model",      "method", "data",   "augment", "optim",
                                               "schedule", "checkpoint", "eval", "device", "comm",
                                               "finetune"};

static int is_trainer_section(const char *s)
{
    for (size_t i = 0; i < sizeof trainer_sections / sizeof *trainer_sections; i++)
        if (!strcmp(s, trainer_sections[i])) return 1;
    return 0;
}

int main(void)
{
    const ssl_config_key *k = ssl_config_find("method.name");
    SSL_ASSERT(k && k->type == SSL_CONFIG_ENUM);
    char names[256] = "";
    for (int i = 0; i < ssl_method_count(); i++) {
        const ssl_method_vtable *vt = ssl_method_at(i);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "|" : "", vt->name);
        SSL_EXPECT(ssl_method_find(vt->name) == vt, "find %s", vt->name);
        SSL_EXPECT(vt->summary && *vt->summary && vt->configure && vt->plan && vt->step, "%s: incomplete vtable",
                   vt->name);
    }
    SSL_EXPECT(!strcmp(k->choices, names), "method.name choices '%s' != registry '%s'", k->choices, names);

    int n;
    const ssl_config_key *s = ssl_config_schema(&n);
    for (int i = 0; i < n; i++)
        SSL_EXPECT(is_trainer_section(s[i].section) || ssl_method_find(s[i].section),
                   "section '%s' belongs to no method and is not the trainer's", s[i].section);
    for (int m = 0; m < ssl_method_count(); m++) {
        const ssl_method_vtable *vt = ssl_method_at(m);
        int keys = 0;
        for (int i = 0; i < n; i++) keys += !strcmp(s[i].section, vt->name);
        SSL_EXPECT(keys > 0, "method %s has no config section '%s'", vt->name, vt->name);

        /* its defaults configure and plan after a small encoder */
        ssl_config *cfg = ssl_calloc(1, sizeof *cfg);
        ssl_config_defaults(cfg);
        snprintf(cfg->method.name, sizeof cfg->method.name, "%s", vt->name);
        cfg->model.width = 4;
        if (!strcmp(vt->name, "mae")) { /* MAE refuses a ResNet and takes one view */
            snprintf(cfg->model.arch, sizeof cfg->model.arch, "vit_tiny");
            cfg->augment.views = 1;
        }
        char err[512];
        ssl_view_plan views;
        SSL_EXPECT(ssl_method_configure(cfg, &views, err, sizeof err) == 0 && views.ngroups >= 1 &&
                       views.group[0].count >= 1 && views.group[0].size > 0,
                   "%s: configure: %s", vt->name, err);
        ssl_params p, b;
        ssl_params_init(&p);
        ssl_params_init(&b);
        ssl_plan pl = {&p, &b};
        ssl_model_config mc;
        ssl_model_config_default(&mc, cfg->model.arch);
        mc.width = 4, mc.small_stem = 1, mc.img_size = cfg->model.img_size, mc.patch_size = cfg->model.patch_size;
        ssl_model enc;
        SSL_ASSERTF(ssl_model_build(&enc, &mc, &pl, "", err) == 0, "%s", err);
        int before = p.nseg;
        ssl_method meth;
        SSL_EXPECT(ssl_method_init(&meth, cfg, &enc, &pl, err, sizeof err) == 0 && p.nseg > before,
                   "%s: plan: %s", vt->name, err);
        ssl_method_free(&meth);
        ssl_model_free(&enc);
        ssl_params_free(&p);
        ssl_params_free(&b);
        ssl_free(cfg);
    }
    ssl_config cfg;
    ssl_config_defaults(&cfg);
    snprintf(cfg.method.name, sizeof cfg.method.name, "nosuch");
    char err[512];
    ssl_view_plan views;
    SSL_EXPECT(ssl_method_configure(&cfg, &views, err, sizeof err) == -1 && strstr(err, "unknown method 'nosuch'") &&
                   strstr(err, ssl_method_names()),
               "unknown method: %s", err);
    printf("%d method(s): %s\n", ssl_method_count(), ssl_method_names());
    return ssl_test_exit();
}
