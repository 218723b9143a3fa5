/* Exports load into torchvision: ResNet-18 (ImageNet and small stem) and a small ViT are exported
 * (one planned under "backbone." next to a projector, exported with prefix filtering and
 * stripping), then check_export.py loads each into the torchvision model by state_dict name and
 * checks its eval-mode features equal sslrun's. Skipped (77) without /usr/bin/python3 + torch. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/models/model.h"
#include "io/export.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *arch;   /* sslrun arch */
    int small_stem, img;
    const char *prefix; /* planned under this prefix ("" none) */
    const char *pyarch; /* check_export.py's ARCH */
} export_case;

/* Export one model and its check data; appends "FILE ARCH IO_FILE --" to args. */
static void run_case(ssl_ctx *c, const char *dir, const export_case *ec, char *args, size_t cap)
{
    ssl_params p, b;
    ssl_params_init(&p);
    ssl_params_init(&b);
    ssl_plan pl = {&p, &b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, ec->arch);
    cfg.num_classes = 0;
    cfg.small_stem = ec->small_stem;
    cfg.img_size = ec->img;
    cfg.patch_size = 8;
    cfg.vit_dim = 64, cfg.vit_depth = 2, cfg.vit_heads = 4;
    ssl_model m;
    char err[512];
    SSL_ASSERTF(ssl_model_build(&m, &cfg, &pl, ec->prefix, err) == 0, "%s", err);
    char filter[64] = "";
    if (*ec->prefix) {
        /* a method's extra parameters live beside the encoder and must not be exported */
        int64_t s[2] = {8, m.feat_dim};
        ssl_params_add(&p, "projector.0.weight", 2, s, 0, SSL_INIT_NORMAL, 1.0f);
        snprintf(filter, sizeof filter, "%s.", ec->prefix);
    }
    ssl_params_alloc(&p, c->be, 0);
    ssl_params_alloc(&b, c->be, 0);
    ssl_params_init_values(&p, 17);
    ssl_params_init_values(&b, 17);

    /* one train-mode forward moves the BN running stats off their (0, 1) start, so the export
     * must carry them for the eval features to match */
    const int N = 2, S = ec->img;
    size_t nimg = (size_t)N * 3 * S * S;
    float *x = malloc(2 * nimg * sizeof(float));
    ssl_test_uniform(x, 2 * nimg, 5, -1.0f, 1.0f);
    ssl_weights w = {p.data, NULL, b.data};
    ssl_ctx_step_begin(c);
    m.forward(c, &m, &w, ssl_tensor_4d(x + nimg, N, 3, S, S), 1);
    ssl_ctx_step_begin(c);
    ssl_tensor y = m.forward(c, &m, &w, ssl_tensor_4d(x, N, 3, S, S), 0);
    SSL_ASSERT(y.shape[0] == N && y.shape[1] == m.feat_dim);

    char path[512], iopath[512];
    snprintf(path, sizeof path, "%s/%s%s.safetensors", dir, ec->arch, ec->small_stem ? "_small" : "");
    SSL_EXPECT(ssl_export_safetensors(path, &p, &b, filter, filter, SSL_NAMES_TORCHVISION, err, sizeof err) == 0, "%s: %s",
               ec->arch, err);
    /* the check data travels in the same format: input images and the features sslrun computed */
    ssl_params io;
    ssl_params_init(&io);
    int64_t si[4] = {N, 3, S, S}, sf[2] = {N, m.feat_dim};
    size_t oi = ssl_params_add(&io, "input", 4, si, 0, SSL_INIT_ZERO, 0);
    size_t of = ssl_params_add(&io, "features", 2, sf, 0, SSL_INIT_ZERO, 0);
    ssl_params_alloc(&io, c->be, 0);
    c->be->upload(io.data + oi, x, nimg * sizeof(float));
    c->be->copy(c, io.data + of, y.data, (size_t)N * (size_t)m.feat_dim);
    snprintf(iopath, sizeof iopath, "%s/%s%s_io.safetensors", dir, ec->arch, ec->small_stem ? "_small" : "");
    SSL_EXPECT(ssl_export_safetensors(iopath, &io, NULL, NULL, NULL, SSL_NAMES_TORCHVISION, err, sizeof err) == 0, "io: %s", err);

    size_t len = strlen(args);
    int n = snprintf(args + len, cap - len, " '%s' '%s' '%s' --", path, ec->pyarch, iopath);
    SSL_ASSERT(n > 0 && (size_t)n < cap - len);

    free(x);
    ssl_params_free(&io);
    ssl_model_free(&m);
    ssl_params_free(&p);
    ssl_params_free(&b);
}

int main(void)
{
    if (system("/usr/bin/python3 -c 'import torch, torchvision' >/dev/null 2>&1") != 0) {
        printf("skipped: /usr/bin/python3 cannot import torch and torchvision\n");
        return 77;
    }
    /* check_export.py sits next to this source file (CMake compiles it by absolute path) */
    char script[1024];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    SSL_ASSERTF(slash && (size_t)(slash - script) + 20 < sizeof script, "source path %s", __FILE__);
    strcpy(slash + 1, "check_export.py");

    char dir[] = "/tmp/ssl_export_torch_XXXXXX";
    SSL_ASSERT(mkdtemp(dir) != NULL);
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    const export_case cases[] = {
        {"resnet18", 0, 64, "", "resnet18"},
        {"resnet18", 1, 32, "backbone", "resnet18_small"},
        {"vit_tiny", 0, 32, "", "vit:32:8:2:4:64"},
    };
    /* one python run for all models: importing torch takes seconds */
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s'", script);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&c, dir, &cases[i], cmd, sizeof cmd);
    cmd[strlen(cmd) - 3] = '\0'; /* the last " --" */
    fflush(stdout);
    int rc = system(cmd);
    SSL_EXPECT(rc == 0, "torchvision check failed (%d): %s", rc, cmd);
    ssl_ctx_free(&c);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    SSL_EXPECT(system(cmd) == 0, "cleanup");
    return ssl_test_exit();
}
