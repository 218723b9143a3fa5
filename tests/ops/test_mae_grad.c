/* Finite-difference gradient checks of MAE's pieces on tiny models, parameter by parameter:
 *  - ssl_vit_forward_tokens / ssl_vit_backward_tokens, loss sum(tokens * r), on a kept subset of the
 *    patches (learned positions: only the kept patches' rows get a gradient), on a subset at another
 *    image size than planned (positions resized, their gradient through the resize's adjoint), on all
 *    tokens (ids NULL), and with frozen sin-cos positions, whose gradient must stay exactly zero;
 *  - the whole MAE chain: encoder tokens on a subset -> ssl_mae_decoder -> ssl_mae_loss (norm_pix), every
 *    encoder and decoder parameter (the mask token's gradient sums the masked slots; the unshuffle's
 *    adjoint routes the others back to the encoder);
 *  - ssl_mae_loss alone: d(pred) with and without norm_pix, element by element.
 * Every backward feeds the gradients of all layers beneath it, so a wrong row routing anywhere shows
 * in the segments underneath. */
#include <stdio.h>

#include "common/testutil.h"
#include "framework/core/check.h"
#include "framework/layers/mae_loss.h"
#include "framework/layers/mae_mask.h"
#include "framework/models/mae_decoder.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ssl_ctx c;
    ssl_params p, b;
    ssl_model enc;
    ssl_mae_decoder dec;
    int with_dec;
    int N, Cin, H, W, patch, L, keep; /* L: patches of this call's grid */
    float *x, *r;                      /* images (N, C, H, W); r scores the tokens (tokens cases) */
    int32_t *ids_keep, *ids_restore;   /* NULL ids_keep: all tokens */
    float *mask;
    ssl_tensor y;
} harness;

/* The scalar: sum(tokens * r), or the MAE loss through the decoder. Backward when g is non-NULL. */
static double run(harness *h, float *g)
{
    ssl_ctx_step_begin(&h->c);
    ssl_weights w = {h->p.data, g, h->b.data};
    ssl_tensor x = ssl_tensor_4d(h->x, h->N, h->Cin, h->H, h->W);
    ssl_tensor t = ssl_vit_forward_tokens(&h->c, &h->enc, &w, x, h->ids_keep, h->keep, 1);
    h->y = t;
    if (!h->with_dec) {
        if (g) {
            float *dy = ssl_arena_floats(&h->c.act, ssl_tensor_numel(t));
            memcpy(dy, h->r, ssl_tensor_numel(t) * sizeof(float));
            ssl_vit_backward_tokens(&h->c, &h->enc, &w, ssl_tensor_3d(dy, t.shape[0], t.shape[1], t.shape[2]));
        }
        return ssl_test_dot(t.data, h->r, ssl_tensor_numel(t));
    }
    ssl_tensor pred = ssl_mae_decoder_forward(&h->c, &h->dec, &w, t, h->ids_restore);
    float *dpred = g ? ssl_arena_floats(&h->c.act, ssl_tensor_numel(pred)) : NULL;
    const double loss = ssl_mae_loss(&h->c, x, h->patch, pred, h->mask, 1, dpred);
    if (g) ssl_vit_backward_tokens(&h->c, &h->enc, &w, ssl_mae_decoder_backward(&h->c, &h->dec, &w,
                                                                                ssl_tensor_3d(dpred, pred.shape[0], pred.shape[1], pred.shape[2])));
    return loss;
}

static double loss_fn(void *ud) { return run(ud, NULL); }

typedef struct {
    const char *name;
    int img, H, W; /* planned image size, this call's */
    int sincos, subset, decoder;
} grad_case;

static void setup(harness *h, const grad_case *gc)
{
    memset(h, 0, sizeof *h);
    ssl_ctx_init(&h->c, "cpu");
    ssl_params_init(&h->p);
    ssl_params_init(&h->b);
    ssl_plan pl = {&h->p, &h->b};
    ssl_model_config cfg;
    ssl_model_config_default(&cfg, "vit_tiny");
    cfg.in_chans = 2, cfg.img_size = gc->img, cfg.patch_size = 4, cfg.sincos_pos = gc->sincos;
    cfg.vit_dim = 12, cfg.vit_depth = 2, cfg.vit_heads = 3;
    char err[256];
    SSL_ASSERTF(ssl_model_build(&h->enc, &cfg, &pl, "", err) == 0, "%s", err);
    h->with_dec = gc->decoder;
    if (gc->decoder) {
        ssl_mae_decoder_config dc;
        ssl_mae_decoder_config_default(&dc, &h->enc);
        dc.dim = 8, dc.depth = 1, dc.heads = 2;
        SSL_ASSERTF(ssl_mae_decoder_init(&h->dec, &dc, &pl, "", err) == 0, "%s", err);
    }
    ssl_params_alloc(&h->p, h->c.be, 1);
    ssl_params_alloc(&h->b, h->c.be, 0);
    ssl_params_init_values(&h->p, 7);
    /* zero-initialised tokens and biases would hide their gradients' dependence: randomise all but
     * the frozen sin-cos tables */
    float *planned = malloc(h->p.numel * sizeof(float));
    memcpy(planned, h->p.data, h->p.numel * sizeof(float));
    ssl_test_uniform(h->p.data, h->p.numel, 11, -0.5f, 0.5f);
    for (int i = 0; i < h->p.nseg; i++)
        if (h->p.seg[i].flags & SSL_SEG_FROZEN)
            memcpy(h->p.data + h->p.seg[i].off, planned + h->p.seg[i].off, h->p.seg[i].n * sizeof(float));
    free(planned);

    h->N = 3, h->Cin = cfg.in_chans, h->H = gc->H, h->W = gc->W, h->patch = cfg.patch_size;
    h->L = (gc->H / 4) * (gc->W / 4);
    const size_t nx = (size_t)h->N * h->Cin * h->H * h->W, NL = (size_t)h->N * h->L;
    h->x = malloc(nx * sizeof(float));
    ssl_test_uniform(h->x, nx, 5, -1, 1);
    h->keep = gc->subset ? (int)ssl_mae_keep(h->L, 0.6) : h->L;
    float *noise = malloc(NL * sizeof(float));
    ssl_mae_noise(3, 0, h->N, h->L, noise);
    h->ids_keep = malloc(NL * sizeof(int32_t));
    h->ids_restore = malloc(NL * sizeof(int32_t));
    h->mask = malloc(NL * sizeof(float));
    ssl_mae_mask(h->N, h->L, h->keep, noise, h->ids_keep, h->ids_restore, h->mask);
    free(noise);
    if (!gc->subset) free(h->ids_keep), h->ids_keep = NULL;
    const size_t nr = (size_t)h->N * (1 + h->keep) * cfg.vit_dim;
    h->r = malloc(nr * sizeof(float));
    ssl_test_uniform(h->r, nr, 6, -1, 1);
}

static void teardown(harness *h)
{
    free(h->x), free(h->r), free(h->ids_keep), free(h->ids_restore), free(h->mask);
    if (h->with_dec) ssl_mae_decoder_free(&h->dec);
    ssl_model_free(&h->enc);
    ssl_params_free(&h->p);
    ssl_params_free(&h->b);
    ssl_ctx_free(&h->c);
}

/* The rows of the position gradient of patches no image kept must be exactly zero (planned grid). */
static void check_dropped_positions(const harness *h, const float *grad)
{
    const int s = ssl_params_find(&h->p, "encoder.pos_embedding");
    const int64_t D = h->p.seg[s].shape[2];
    char *kept = calloc((size_t)h->L, 1);
    for (int i = 0; i < h->N * h->keep; i++) kept[h->ids_keep[i]] = 1;
    size_t nz = 0, dropped = 0;
    for (int l = 0; l < h->L; l++)
        if (!kept[l]) {
            dropped++;
            for (int64_t j = 0; j < D; j++) nz += grad[h->p.seg[s].off + (size_t)(1 + l) * D + j] != 0.0f;
        }
    SSL_EXPECT(dropped > 0, "no patch was dropped by every image: the check is vacuous");
    SSL_EXPECT(nz == 0, "%zu non-zero position gradients on %zu patches no image kept", nz, dropped);
    free(kept);
}

static void check_case(const grad_case *gc)
{
    harness h;
    setup(&h, gc);
    ssl_params_zero_grad(&h.c, &h.p);
    run(&h, h.p.grad);
    SSL_EXPECT(h.y.shape[1] == 1 + h.keep, "%s: %lld tokens, expected 1 + %d", gc->name, (long long)h.y.shape[1], h.keep);
    float *grad = malloc(h.p.numel * sizeof(float));
    memcpy(grad, h.p.grad, h.p.numel * sizeof(float));
    char what[200];
    int checked = 0;
    for (int i = 0; i < h.p.nseg; i++) {
        const ssl_segment *s = &h.p.seg[i];
        snprintf(what, sizeof what, "%s %s", gc->name, s->name);
        if (s->flags & SSL_SEG_FROZEN) {
            size_t nz = 0;
            for (size_t j = 0; j < s->n; j++) nz += grad[s->off + j] != 0.0f;
            SSL_EXPECT(nz == 0, "%s: frozen, but %zu non-zero gradients", what, nz);
            continue;
        }
        /* smooth losses (LN, softmax, GELU): a directional check of the whole tensor plus elements of
         * the small ones and of the tokens and positions, whose rows the subset routes */
        ssl_test_gradcheck_dir(what, loss_fn, &h, h.p.data + s->off, s->n, grad + s->off, 100 + (uint64_t)i, 1e-3f,
                               1e-2);
        const int routed = strstr(s->name, "pos_embedding") || strstr(s->name, "token");
        if (s->n <= 64 || routed)
            ssl_test_gradcheck(what, loss_fn, &h, h.p.data + s->off, s->n, grad + s->off, routed ? 40 : 6, 3e-3f,
                               2e-3, 2e-2);
        checked++;
    }
    if (gc->subset && !gc->sincos && gc->H == gc->img && gc->W == gc->img) check_dropped_positions(&h, grad);
    printf("%s: %lld tokens, checked %d parameter tensors\n", gc->name, (long long)h.y.shape[1], checked);
    free(grad);
    teardown(&h);
}

/* ssl_mae_loss's d(pred), element by element. */
typedef struct {
    ssl_ctx *c;
    ssl_tensor imgs, pred;
    const float *mask;
    int norm_pix;
} loss_ud;

static double mae_loss_fn(void *p)
{
    loss_ud *u = p;
    ssl_ctx_step_begin(u->c);
    return ssl_mae_loss(u->c, u->imgs, 4, u->pred, u->mask, u->norm_pix, NULL);
}

static void check_loss(int norm_pix)
{
    ssl_ctx c;
    ssl_ctx_init(&c, "cpu");
    enum { N = 2, CH = 3, S = 8, L = 4, F = 48 };
    float *imgs = malloc(sizeof(float) * N * CH * S * S), *pred = malloc(sizeof(float) * N * L * F);
    float *dpred = malloc(sizeof(float) * N * L * F), mask[N * L] = {1, 0, 1, 1, 0, 1, 1, 0};
    ssl_test_uniform(imgs, N * CH * S * S, 21, -1, 1);
    ssl_test_uniform(pred, N * L * F, 22, -1, 1);
    loss_ud u = {&c, ssl_tensor_4d(imgs, N, CH, S, S), ssl_tensor_3d(pred, N, L, F), mask, norm_pix};
    ssl_ctx_step_begin(&c);
    ssl_mae_loss(&c, u.imgs, 4, u.pred, mask, norm_pix, dpred);
    size_t nz = 0; /* kept patches (mask 0) get no gradient */
    for (int r = 0; r < N * L; r++)
        for (int f = 0; f < F; f++) nz += mask[r] == 0.0f && dpred[r * F + f] != 0.0f;
    SSL_EXPECT(nz == 0, "mae loss: %zu gradients on kept patches", nz);
    ssl_test_gradcheck(norm_pix ? "mae loss d(pred) norm_pix" : "mae loss d(pred)", mae_loss_fn, &u, pred, N * L * F,
                       dpred, 200, 1e-2f, 1e-5, 1e-3);
    free(imgs), free(pred), free(dpred);
    ssl_ctx_free(&c);
}

int main(void)
{
    static const grad_case cases[] = {
        {"tokens subset", 12, 12, 12, 0, 1, 0},
        /* planned 3x3 grid run at 2x4: the subset indexes this call's grid, positions resized */
        {"tokens subset 12px at 8x16", 12, 8, 16, 0, 1, 0},
        {"tokens all", 12, 12, 12, 0, 0, 0},
        {"tokens subset sincos", 12, 12, 12, 1, 1, 0},
        {"mae chain", 12, 12, 12, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);
    check_loss(0);
    check_loss(1);
    return ssl_test_exit();
}
