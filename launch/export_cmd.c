/* `sslrun export CHECKPOINT --out encoder.safetensors [--teacher] [--names torchvision|timm]`: the
 * encoder of a checkpoint (heads dropped) in safetensors with torchvision's parameter names, plus BN
 * running statistics, so torchvision.models.resnet18() / vit_b_16()-style models load it with
 * load_state_dict(strict=False) missing only their classification head; --names timm names a ViT as
 * timm's VisionTransformer (DINO's and MAE's own code) does. --teacher exports the EMA teacher's encoder instead (MoCo's
 * key encoder, BYOL's target), which has the student's layout. The model is rebuilt from the config
 * stored inside the checkpoint, so no other file is needed. */
#include "io/checkpoint.h"
#include "io/export.h"
#include "launch/cli.h"
#include "framework/train/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssl_cmd_export(int argc, char **argv)
{
    const char *out = NULL, *ckpt = NULL;
    int teacher = ssl_cli_take_flag(&argc, argv, "--teacher");
    const char *names_arg = ssl_cli_take_value(&argc, argv, "--names");
    ssl_export_names names = SSL_NAMES_TORCHVISION;
    if (names_arg && ssl_export_names_parse(names_arg, &names)) {
        fprintf(stderr, "sslrun export: --names expects torchvision or timm, got '%s'\n", names_arg);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!ckpt) ckpt = argv[i];
        else out = NULL, ckpt = NULL, i = argc;
    }
    if (!ckpt || !out) {
        fprintf(stderr, "usage: sslrun export CHECKPOINT.h5 --out encoder.safetensors [--teacher] [--names torchvision|timm]\n");
        return 2;
    }
    char err[2048];
    ssl_config cfg;
    ssl_session s;
    memset(&s, 0, sizeof s);
    int rc = 1;
    if (ssl_ckpt_config(ckpt, &cfg, err, sizeof err)) goto out;
    ssl_ckpt probe = {0};
    if (ssl_ckpt_load(&probe, ckpt, err, sizeof err)) goto out;
    if (probe.in_chans < 1) {
        snprintf(err, sizeof err, "%s: no in_chans attribute (written by an older sslrun)", ckpt);
        goto out;
    }
    /* export is file I/O, no compute: the host backend reads the arrays in place whatever device the run used */
    snprintf(cfg.device.backend, sizeof cfg.device.backend, "cpu");
    if (ssl_session_init(&s, &cfg, (int)probe.in_chans, NULL, err, sizeof err)) goto out;
    ssl_ckpt ck = {0};
    ssl_session_ckpt_arrays(&s, &ck, NULL);
    if (ssl_ckpt_load(&ck, ckpt, err, sizeof err)) goto out;
    /* The encoder is planned first: its segments precede every head's. */
    ssl_params enc = s.params, encbuf = s.buffers;
    enc.nseg = s.encoder_segments;
    encbuf.nseg = s.encoder_buffer_segments;
    if (teacher) { /* a teacher mirrors a prefix of the layout, so the same segments index into it */
        const ssl_ckpt_array *tp = NULL, *tb = NULL;
        for (int i = 0; i < ck.narrays; i++) {
            if (!strcmp(ck.arrays[i].name, "teacher/params")) tp = &ck.arrays[i];
            if (!strcmp(ck.arrays[i].name, "teacher/buffers")) tb = &ck.arrays[i];
        }
        if (!tp || !tb) {
            snprintf(err, sizeof err, "%s: method %s has no teacher to export (--teacher)", ckpt, cfg.method.name);
            goto out;
        }
        enc.data = tp->data;
        encbuf.data = tb->data;
    }
    if (ssl_export_safetensors(out, &enc, &encbuf, NULL, NULL, names, err, sizeof err)) goto out;
    printf("wrote %s: %s %sencoder, %d tensors + %d BN buffers, %s names (step %lld)\n", out, cfg.model.arch,
           teacher ? "teacher " : "", enc.nseg, encbuf.nseg, names == SSL_NAMES_TIMM ? "timm" : "torchvision",
           (long long)ck.step);
    rc = 0;
out:
    if (rc) fprintf(stderr, "sslrun: %s\n", err);
    if (s.params.data) ssl_session_free(&s);
    return rc;
}
