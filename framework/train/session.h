/* A training session built from a resolved config: context, encoder + method heads planned into one
 * flat parameter buffer, the method's own state (teacher, queue), and the run directory. Shared by
 * the trainer, eval and export so the three always agree on the model a config describes and on
 * what its checkpoints hold. */
#ifndef SSL_TRAIN_SESSION_H
#define SSL_TRAIN_SESSION_H

#include "framework/comm/binding.h"
#include "framework/optim/optim.h"
#include "io/augment.h"
#include "io/checkpoint.h"
#include "io/config.h"
#include "methods/method.h"

typedef struct {
    ssl_config cfg;
    char run_dir[1024];
    char ckpt_dir[1100];
    ssl_ctx ctx;
    ssl_params params, buffers;
    ssl_model encoder;
    ssl_method method;
    int in_chans;
    int encoder_segments, encoder_buffer_segments; /* the encoder's segments come first */
} ssl_session;

/* device.backend's table, or NULL with err: "device.backend 'cuda' is not available: <why>". */
const struct ssl_backend *ssl_session_backend(const ssl_config *cfg, char *err, size_t errlen);

/* This rank's binding (framework/comm/binding.h: node-local rank from the launcher, CPUs, and the
 * device local_rank % devices of device.backend's kind), that device selected for every context
 * made afterwards, and comm's device communicator by comm.device (framework/comm/device.h).
 * Collective. Call before ssl_session_init. Returns 0 or -1 with err (a backend that is not
 * available, an environment that contradicts itself, comm.device: nccl without NCCL). */
int ssl_session_bind(const ssl_config *cfg, struct ssl_comm *comm, ssl_binding *b, char *err, size_t errlen);

/* Build everything a config describes for images with `in_chans` channels (from the dataset).
 * comm: the ranks that train together (NULL: this process alone, as eval and export). Returns 0 or
 * -1 with err. Parameters are initialised from run.seed; the method's state is
 * allocated (its `start` hook, which fills it, is the trainer's to call). The session must not move
 * in memory afterwards (the method points at its config). */
int ssl_session_init(ssl_session *s, const ssl_config *cfg, int in_chans, struct ssl_comm *comm, char *err,
                     size_t errlen);
void ssl_session_free(ssl_session *s);

/* The arrays a checkpoint of this session holds, in one place for save, resume, eval and export:
 * params, buffers, the optimizer's moments (opt may be NULL: eval and export do not load them),
 * and the method's state. */
void ssl_session_ckpt_arrays(ssl_session *s, ssl_ckpt *ck, const ssl_optim *opt);

/* Augmentation config from the config's augment section for C channels and the model's input size. */
void ssl_session_augment_config(const ssl_config *cfg, int C, ssl_augment_config *a);
/* Evaluation transform: the image resized to the model's input size and normalised, nothing else. */
void ssl_session_eval_transform(const ssl_config *cfg, int C, ssl_augment_config *a);

/* augment.on resolved for backend be: auto is device wherever the host cannot read device memory. */
int ssl_session_augment_on_device(const ssl_config *cfg, const struct ssl_backend *be);

/* snprintf for paths: aborts with the path when it does not fit (never a silently cut path). */
void ssl_pathf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));


#endif
