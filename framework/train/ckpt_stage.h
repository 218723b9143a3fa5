/* Host staging of a checkpoint's arrays on a backend whose memory the host cannot read (CUDA): the
 * checkpoint writer and reader (io/checkpoint.c) work on host memory, so the fp32 arrays, which
 * live in the backend's memory, are swapped for host copies around a save or load (int64 arrays,
 * integer method state, live on the host already). On a host-memory backend (CPU) every call is a
 * no-op and the arrays are written from and read into place. */
#ifndef SSL_TRAIN_CKPT_STAGE_H
#define SSL_TRAIN_CKPT_STAGE_H

#include "framework/core/ctx.h"
#include "io/checkpoint.h"

typedef struct {
    ssl_ctx *ctx;
    ssl_ckpt *ck;
    void *dev[SSL_CKPT_MAX_ARRAYS]; /* the registered device pointers (NULL: not staged) */
} ssl_ckpt_staging;

/* Before a save: each fp32 array downloaded into a host copy that ck now points to. */
void ssl_ckpt_stage_save(ssl_ckpt_staging *st, ssl_ctx *c, ssl_ckpt *ck);
/* Before a load: ck points to host buffers the reader fills (device contents are left as they are). */
void ssl_ckpt_stage_load(ssl_ckpt_staging *st, ssl_ctx *c, ssl_ckpt *ck);
/* After either: with upload (a load that succeeded) the host copies go to the device; then the
 * host copies are freed and ck points to the device arrays again. */
void ssl_ckpt_stage_end(ssl_ckpt_staging *st, int upload);

#endif
