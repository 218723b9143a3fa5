/* The SSL method interface. A method owns its heads (planned into the same flat parameter buffer as
 * the encoder, so one all-reduce covers everything), its teacher / queue / centre state, its loss,
 * and says what it checkpoints. The registry (registry.c) maps config names to implementations;
 * adding a method is one file plus one table line. */
#ifndef SSL_METHODS_METHOD_H
#define SSL_METHODS_METHOD_H

#include "framework/models/model.h"

/* What the methods read from the configuration (filled by the launcher from the YAML config). */
typedef struct {
    char name[32];      /* simclr */
    float temperature;  /* NT-Xent / InfoNCE temperature */
    int proj_hidden;    /* projector hidden width */
    int proj_dim;       /* projector output width */
    int proj_layers;    /* projector linear layers (>= 1) */
    int gather_negatives; /* SimCLR: negatives from every rank's samples (1) or this rank's (0) */
} ssl_method_config;

typedef struct ssl_method ssl_method;

typedef struct {
    const char *name;
    int views; /* augmented views per image the method consumes */
    /* Plan heads (after the encoder) into pl; returns 0 or -1 with err (256 bytes). */
    int (*init)(ssl_method *m, const ssl_method_config *cfg, ssl_model *encoder, ssl_plan *pl,
                char *err);
    /* One training step on views (views*N, C, S, S), view-major (all first views, then all second):
     * forward, loss, backward into w->g. Returns this rank's loss, the mean over its samples (the mean
     * over ranks is the global loss); summed over ranks, w->g is W times the gradient of the global
     * loss, so the caller's all-reduce(AVG) of w->g gives exactly that gradient. Collectives the method needs
     * (global negatives, synchronised BN) go through c->comm and c->bn_comm. */
    double (*step)(ssl_method *m, ssl_ctx *c, const ssl_weights *w, ssl_tensor views, int n_images);
    void (*free)(ssl_method *m);
} ssl_method_vtable;

struct ssl_method {
    const ssl_method_vtable *vt;
    ssl_method_config cfg;
    ssl_model *encoder;
    void *impl;
};

/* Look up and initialise a method by cfg->name; returns 0 or -1 with err (256 bytes). */
int ssl_method_init(ssl_method *m, const ssl_method_config *cfg, ssl_model *encoder, ssl_plan *pl,
                    char *err);
void ssl_method_free(ssl_method *m);

extern const ssl_method_vtable ssl_method_simclr;

#endif
