/* Session construction (see session.h). */
#include "framework/train/session.h"

#include "framework/comm/device.h"
#include "framework/core/check.h"

#include <errno.h>
#include <stdarg.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

void ssl_pathf(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    SSL_ASSERTF(n >= 0 && (size_t)n < size, "path too long: %s...", out);
}

const ssl_backend *ssl_session_backend(const ssl_config *cfg, char *err, size_t errlen)
{
    char why[512];
    const ssl_backend *be = ssl_backend_lookup(cfg->device.backend, why, sizeof why);
    if (!be) snprintf(err, errlen, "device.backend '%s' is not available: %s", cfg->device.backend, why);
    return be;
}

int ssl_session_bind(const ssl_config *cfg, struct ssl_comm *comm, ssl_binding *b, char *err, size_t errlen)
{
    const ssl_backend *be = ssl_session_backend(cfg, err, errlen);
    if (!be) return -1;
    if (ssl_binding_detect(b, comm, be->device_count ? be->device_count() : 0, NULL, NULL, err, errlen)) return -1;
    if (be->select_device && b->gpu >= 0) be->select_device(b->gpu);
    return ssl_dev_comm_attach(comm, be, cfg->comm.device, err, errlen);
}

int ssl_session_init(ssl_session *s, const ssl_config *cfg, int in_chans, struct ssl_comm *comm, char *err,
                     size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->in_chans = in_chans;
    ssl_pathf(s->run_dir, sizeof s->run_dir, "%s/%s", cfg->run.out_dir, cfg->run.name);
    ssl_pathf(s->ckpt_dir, sizeof s->ckpt_dir, "%s/checkpoints", s->run_dir);
    if (cfg->device.threads > 0) omp_set_num_threads(cfg->device.threads);
    if (!ssl_session_backend(cfg, err, errlen)) return -1;
    ssl_ctx_init(&s->ctx, cfg->device.backend);
    s->ctx.comm = comm; /* before the method allocates: sharded state takes its range from it */
    s->ctx.precision_bf16 = !strcmp(cfg->model.precision, "bf16");
    s->ctx.acts_fp32 = !strcmp(cfg->model.saved_activations, "fp32");
    ssl_params_init(&s->params);
    ssl_params_init(&s->buffers);
    ssl_plan pl = {&s->params, &s->buffers};
    ssl_model_config mc;
    ssl_model_config_default(&mc, cfg->model.arch);
    mc.in_chans = in_chans;
    mc.small_stem = cfg->model.small_stem;
    mc.width = cfg->model.width;
    mc.img_size = cfg->model.img_size;
    mc.patch_size = cfg->model.patch_size;
    mc.sincos_pos = cfg->model.sincos_pos;
    mc.freeze_patch_embed = cfg->model.freeze_patch_embed;
    mc.vit_dim = cfg->model.vit_dim, mc.vit_depth = cfg->model.vit_depth, mc.vit_heads = cfg->model.vit_heads;
    char e[256];
    if (ssl_model_build(&s->encoder, &mc, &pl, "", e)) {
        snprintf(err, errlen, "model: %s", e);
        return -1;
    }
    s->encoder_segments = s->params.nseg;
    s->encoder_buffer_segments = s->buffers.nseg;
    if (ssl_method_init(&s->method, &s->cfg, &s->encoder, &pl, e, sizeof e)) {
        snprintf(err, errlen, "%s: %s", cfg->method.name, e);
        return -1;
    }
    ssl_params_alloc(&s->params, s->ctx.be, 1);
    ssl_params_alloc(&s->buffers, s->ctx.be, 0);
    ssl_params_init_values(&s->params, (uint64_t)cfg->run.seed);
    ssl_params_init_values(&s->buffers, (uint64_t)cfg->run.seed);
    const ssl_method_vtable *vt = s->method.vt;
    if (vt->alloc && vt->alloc(&s->method, &s->ctx, &s->params, &s->buffers, e, sizeof e)) {
        snprintf(err, errlen, "%s: %s", cfg->method.name, e);
        return -1;
    }
    return 0;
}

void ssl_session_ckpt_arrays(ssl_session *s, ssl_ckpt *ck, const ssl_optim *opt)
{
    ssl_ckpt_add(ck, "params", s->params.data, s->params.numel);
    ssl_ckpt_add(ck, "buffers", s->buffers.data, s->buffers.numel);
    if (opt && opt->m) ssl_ckpt_add(ck, "optim/m", opt->m, s->params.numel);
    if (opt && opt->v) ssl_ckpt_add(ck, "optim/v", opt->v, s->params.numel);
    if (opt && s->method.vt->freezes) ssl_ckpt_add_i64(ck, "optim/seg_step", opt->seg_step, (size_t)s->params.nseg);
    if (s->method.vt->state) s->method.vt->state(&s->method, ck);
}

void ssl_session_free(ssl_session *s)
{
    ssl_method_free(&s->method);
    ssl_model_free(&s->encoder);
    ssl_params_free(&s->params);
    ssl_params_free(&s->buffers);
    ssl_ctx_free(&s->ctx);
}

static void norm_stats(const ssl_config *cfg, int C, ssl_augment_config *a)
{
    for (int i = 0; i < C && i < 3; i++) {
        if (cfg->augment.mean.n > i) a->mean[i] = (float)cfg->augment.mean.v[i];
        if (cfg->augment.std.n > i) a->std[i] = (float)cfg->augment.std.v[i];
    }
}

void ssl_session_augment_config(const ssl_config *cfg, int C, ssl_augment_config *a)
{
    ssl_augment_config_default(a, C, cfg->model.img_size);
    const ssl_config_augment *g = &cfg->augment;
    a->views = g->views;
    a->crop_scale[0] = (float)g->crop_scale.v[0], a->crop_scale[1] = (float)g->crop_scale.v[1];
    a->crop_ratio[0] = (float)g->crop_ratio.v[0], a->crop_ratio[1] = (float)g->crop_ratio.v[1];
    a->flip_p = (float)g->flip_p;
    a->jitter_p = (float)g->jitter_p;
    a->brightness = (float)g->brightness;
    a->contrast = (float)g->contrast;
    a->saturation = (float)g->saturation;
    a->hue = (float)g->hue;
    a->grayscale_p = (float)g->grayscale_p;
    a->blur_p = (float)g->blur_p;
    a->blur_sigma[0] = (float)g->blur_sigma.v[0], a->blur_sigma[1] = (float)g->blur_sigma.v[1];
    a->solarize_p = (float)g->solarize_p;
    norm_stats(cfg, C, a);
}

void ssl_session_eval_transform(const ssl_config *cfg, int C, ssl_augment_config *a)
{
    ssl_augment_config_default(a, C, cfg->model.img_size);
    a->views = 1;
    a->crop_scale[0] = a->crop_scale[1] = 1.0f;
    a->crop_ratio[0] = a->crop_ratio[1] = 1.0f;
    a->flip_p = a->jitter_p = a->grayscale_p = a->blur_p = a->solarize_p = 0.0f;
    norm_stats(cfg, C, a);
}

int ssl_session_augment_on_device(const ssl_config *cfg, const struct ssl_backend *be)
{
    return !strcmp(cfg->augment.on, "device") || (!strcmp(cfg->augment.on, "auto") && !be->host_memory);
}
