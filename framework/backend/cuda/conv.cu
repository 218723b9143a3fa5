/* CUDA convolution through cuDNN (legacy convolution API: deprecated in cuDNN 9 but complete, and
 * one call per op; the graph API is the route for fused conv+BN+ReLU later).
 * A plan per geometry holds the four descriptors and the algorithm of each direction, chosen once
 * by cuDNN's heuristics (no timing runs): the first algorithm that is supported and, for the two
 * backward directions, deterministic, so a run gives the same bits every time (as the CPU backend).
 * The math type is FMA-only (exact fp32, comparable with the CPU op by op) unless SSL_CUDA_TF32=1. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <cudnn.h>
#include <string.h>

#define SSL_CUDNN_CHECK(call)                                                                  \
    do {                                                                                       \
        cudnnStatus_t s_ = (call);                                                             \
        if (s_ != CUDNN_STATUS_SUCCESS) SSL_ABORT("%s: %s", #call, cudnnGetErrorString(s_));   \
    } while (0)

/* Largest workspace an algorithm may ask for: beyond it the next candidate is taken. */
#define CONV_WS_MAX ((size_t)1 << 30)

struct ssl_cuda_conv_plan {
    ssl_conv_shape s;
    int bf16; /* model.precision bf16: bf16 tensors, fp32 compute on the tensor cores */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws_fwd, ws_data, ws_filter;
};

static int same_shape(const ssl_conv_shape *a, const ssl_conv_shape *b)
{
    return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->K == b->K &&
           a->R == b->R && a->stride == b->stride && a->pad == b->pad;
}

/* The first heuristic candidate that is supported, fits CONV_WS_MAX, (when asked) is deterministic
 * and runs with the descriptors as they are: its workspace is asked of cuDNN again for them
 * (ws_of), since the heuristics may list an algorithm under another math type than the
 * descriptor's, whose size need not hold for the call; the larger of the two is kept. The three
 * perf structs share these fields, hence the template. */
template <typename Perf, typename WsOf>
static int pick(const Perf *p, int n, int need_determinism, const char *what, const ssl_conv_shape *s, size_t *ws,
                WsOf ws_of)
{
    for (int i = 0; i < n; i++) {
        if (p[i].status != CUDNN_STATUS_SUCCESS || p[i].memory > CONV_WS_MAX) continue;
        if (need_determinism && p[i].determinism != CUDNN_DETERMINISTIC) continue;
        size_t bytes = 0;
        if (ws_of(p[i].algo, &bytes) != CUDNN_STATUS_SUCCESS || bytes > CONV_WS_MAX) continue;
        *ws = bytes > p[i].memory ? bytes : p[i].memory;
        return (int)p[i].algo;
    }
    SSL_ABORT("cuDNN offers no usable %s algorithm for N=%d C=%d H=%d W=%d K=%d R=%d stride %d pad %d",
              what, s->N, s->C, s->H, s->W, s->K, s->R, s->stride, s->pad);
}

static ssl_cuda_conv_plan *plan_for(ssl_ctx *c, const ssl_conv_shape *s, int bf16)
{
    ssl_cuda_state *st = ssl_cuda_st(c);
    for (int i = 0; i < st->nconv; i++)
        if (same_shape(&st->conv[i].s, s) && st->conv[i].bf16 == bf16) return &st->conv[i];
    if (st->nconv == st->capconv) {
        /* grows by doubling; plans are made on the first steps only, never in the steady state */
        int cap = st->capconv ? 2 * st->capconv : 16;
        ssl_cuda_conv_plan *grown = (ssl_cuda_conv_plan *)ssl_calloc((size_t)cap, sizeof *grown);
        if (st->nconv) memcpy(grown, st->conv, (size_t)st->nconv * sizeof *grown);
        ssl_free(st->conv);
        st->conv = grown, st->capconv = cap;
    }
    ssl_cuda_conv_plan *p = &st->conv[st->nconv++];
    memset(p, 0, sizeof *p);
    p->s = *s;
    p->bf16 = bf16;
    /* bf16: cuDNN's BFLOAT16 configuration (x, w, y in bf16, compute in fp32), tensor cores allowed */
    const cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    SSL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
    SSL_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
    SSL_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    SSL_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    SSL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, dt, s->N, s->C, s->H, s->W));
    SSL_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, dt, s->N, s->K, s->P, s->Q));
    SSL_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NCHW, s->K, s->C, s->R, s->R));
    SSL_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    SSL_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, st->tf32 || bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    int n;
    cudnnConvolutionFwdAlgoPerf_t pf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    SSL_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(st->dnn, p->x, p->w, p->conv, p->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, pf));
    p->fwd = (cudnnConvolutionFwdAlgo_t)pick(pf, n, 0, "forward", s, &p->ws_fwd,
                                             [&](cudnnConvolutionFwdAlgo_t a, size_t *b) {
                                                 return cudnnGetConvolutionForwardWorkspaceSize(
                                                     st->dnn, p->x, p->w, p->conv, p->y, a, b);
                                             });
    cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    SSL_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(st->dnn, p->w, p->y, p->conv, p->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, pd));
    p->bwd_data = (cudnnConvolutionBwdDataAlgo_t)pick(pd, n, 1, "backward-data", s, &p->ws_data,
                                                      [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
                                                          return cudnnGetConvolutionBackwardDataWorkspaceSize(
                                                              st->dnn, p->w, p->y, p->conv, p->x, a, b);
                                                      });
    cudnnConvolutionBwdFilterAlgoPerf_t pw[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    SSL_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(st->dnn, p->x, p->y, p->conv, p->w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, pw));
    p->bwd_filter = (cudnnConvolutionBwdFilterAlgo_t)pick(pw, n, 1, "backward-filter", s, &p->ws_filter,
                                                          [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
                                                              return cudnnGetConvolutionBackwardFilterWorkspaceSize(
                                                                  st->dnn, p->x, p->y, p->conv, p->w, a, b);
                                                          });
    return p;
}

static int empty(const ssl_conv_shape *s)
{
    return s->N <= 0 || s->C <= 0 || s->K <= 0 || s->P <= 0 || s->Q <= 0;
}

/* model.precision bf16: operands cast into the mixed scratch (16-byte aligned slots), the bf16 result
 * converted back (y, dx assigned; dw added in fp32). */
static inline size_t al8(size_t n) { return (n + 7) & ~(size_t)7; }

/* yh (bf16) = the bf16 convolution of x and w, cast into the mixed scratch (xh: nx + 8 + nw elements) */
static void fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *xh, uint16_t *yh)
{
    ssl_cuda_conv_plan *p = plan_for(c, s, 1);
    void *ws = p->ws_fwd ? ssl_ctx_workspace(c, p->ws_fwd) : NULL;
    const float one = 1.0f, zero = 0.0f;
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R;
    uint16_t *wh = xh + al8(nx);
    ssl_cuda_cast_f32_bf16(c, xh, x, nx);
    ssl_cuda_cast_f32_bf16(c, wh, w, nw);
    SSL_CUDNN_CHECK(cudnnConvolutionForward(ssl_cuda_st(c)->dnn, &one, p->x, xh, p->w, wh, p->conv, p->fwd, ws,
                                            p->ws_fwd, &zero, p->y, yh));
}

void ssl_cuda_conv2d_fwd(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, float *y)
{
    if (empty(s)) return;
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R,
                 ny = (size_t)s->N * s->K * s->P * s->Q;
    if (c->bf16) {
        uint16_t *xh = ssl_cuda_mixed_scratch(c, al8(nx) + al8(nw) + ny), *yh = xh + al8(nx) + al8(nw);
        fwd_bf16(c, s, x, w, xh, yh);
        ssl_cuda_cast_bf16_f32(c, y, yh, ny);
        return;
    }
    ssl_cuda_conv_plan *p = plan_for(c, s, 0);
    void *ws = p->ws_fwd ? ssl_ctx_workspace(c, p->ws_fwd) : NULL;
    const float one = 1.0f, zero = 0.0f;
    SSL_CUDNN_CHECK(cudnnConvolutionForward(ssl_cuda_st(c)->dnn, &one, p->x, x, p->w, w, p->conv, p->fwd, ws,
                                            p->ws_fwd, &zero, p->y, y));
}

/* y as bf16 bits: cuDNN's bf16 result written where it belongs, no conversion back */
void ssl_cuda_conv2d_fwd_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *x, const float *w, uint16_t *y)
{
    SSL_ASSERTF(c->bf16, "conv2d_fwd_bf16 outside a bf16 region (ssl_ctx_autocast)");
    if (empty(s)) return;
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R;
    fwd_bf16(c, s, x, w, ssl_cuda_mixed_scratch(c, al8(nx) + nw), y);
}

void ssl_cuda_conv2d_bwd_data(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *w, float *dx)
{
    if (empty(s)) return;
    const int bf16 = c->bf16;
    ssl_cuda_conv_plan *p = plan_for(c, s, bf16);
    void *ws = p->ws_data ? ssl_ctx_workspace(c, p->ws_data) : NULL;
    const float one = 1.0f, zero = 0.0f; /* dx is assigned */
    if (!bf16) {
        SSL_CUDNN_CHECK(cudnnConvolutionBackwardData(ssl_cuda_st(c)->dnn, &one, p->w, w, p->y, dy, p->conv,
                                                     p->bwd_data, ws, p->ws_data, &zero, p->x, dx));
        return;
    }
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R,
                 ny = (size_t)s->N * s->K * s->P * s->Q;
    uint16_t *dyh = ssl_cuda_mixed_scratch(c, al8(ny) + al8(nw) + nx), *wh = dyh + al8(ny), *dxh = wh + al8(nw);
    ssl_cuda_cast_f32_bf16(c, dyh, dy, ny);
    ssl_cuda_cast_f32_bf16(c, wh, w, nw);
    SSL_CUDNN_CHECK(cudnnConvolutionBackwardData(ssl_cuda_st(c)->dnn, &one, p->w, wh, p->y, dyh, p->conv, p->bwd_data,
                                                 ws, p->ws_data, &zero, p->x, dxh));
    ssl_cuda_cast_bf16_f32(c, dx, dxh, nx);
}

/* dw += the bf16 filter gradient of dy (cast into dyh) and xh (bf16), computed into dwh */
static void bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const ssl_cuda_conv_plan *p, void *ws,
                            const float *dy, const uint16_t *xh, uint16_t *dyh, uint16_t *dwh, float *dw)
{
    const size_t ny = (size_t)s->N * s->K * s->P * s->Q, nw = (size_t)s->K * s->C * s->R * s->R;
    const float one = 1.0f, zero = 0.0f;
    ssl_cuda_cast_f32_bf16(c, dyh, dy, ny);
    /* the bf16 gradient assigned, then added to the fp32 one (torch: a bf16 .grad cast onto the master's) */
    SSL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ssl_cuda_st(c)->dnn, &one, p->x, xh, p->y, dyh, p->conv,
                                                   p->bwd_filter, ws, p->ws_filter, &zero, p->w, dwh));
    ssl_cuda_unpack_bf16(c, 1, 1, 1, (int64_t)nw, dwh, 1.0f, dw, 0, 0, 0);
}

void ssl_cuda_conv2d_bwd_filter(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const float *x, float *dw)
{
    if (empty(s)) return;
    const int bf16 = c->bf16;
    ssl_cuda_conv_plan *p = plan_for(c, s, bf16);
    void *ws = p->ws_filter ? ssl_ctx_workspace(c, p->ws_filter) : NULL;
    const float one = 1.0f; /* dw accumulates (beta 1), as every parameter gradient */
    if (!bf16) {
        SSL_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ssl_cuda_st(c)->dnn, &one, p->x, x, p->y, dy, p->conv,
                                                       p->bwd_filter, ws, p->ws_filter, &one, p->w, dw));
        return;
    }
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)s->K * s->C * s->R * s->R,
                 ny = (size_t)s->N * s->K * s->P * s->Q;
    uint16_t *dyh = ssl_cuda_mixed_scratch(c, al8(ny) + al8(nx) + nw), *xh = dyh + al8(ny), *dwh = xh + al8(nx);
    ssl_cuda_cast_f32_bf16(c, xh, x, nx);
    bwd_filter_bf16(c, s, p, ws, dy, xh, dyh, dwh, dw);
}

/* x is a saved bf16 activation: cuDNN reads it where it lies, no cast, no copy */
void ssl_cuda_conv2d_bwd_filter_bf16(ssl_ctx *c, const ssl_conv_shape *s, const float *dy, const uint16_t *x,
                                     float *dw)
{
    SSL_ASSERTF(c->bf16, "conv2d_bwd_filter_bf16 outside a bf16 region (ssl_ctx_autocast)");
    if (empty(s)) return;
    ssl_cuda_conv_plan *p = plan_for(c, s, 1);
    void *ws = p->ws_filter ? ssl_ctx_workspace(c, p->ws_filter) : NULL;
    const size_t ny = (size_t)s->N * s->K * s->P * s->Q, nw = (size_t)s->K * s->C * s->R * s->R;
    uint16_t *dyh = ssl_cuda_mixed_scratch(c, al8(ny) + nw);
    bwd_filter_bf16(c, s, p, ws, dy, x, dyh, dyh + al8(ny), dw);
}

void ssl_cuda_conv_init(ssl_cuda_state *st)
{
    SSL_CUDNN_CHECK(cudnnCreate(&st->dnn));
    SSL_CUDNN_CHECK(cudnnSetStream(st->dnn, st->stream));
}

void ssl_cuda_conv_free(ssl_cuda_state *st)
{
    for (int i = 0; i < st->nconv; i++) {
        ssl_cuda_conv_plan *p = &st->conv[i];
        cudnnDestroyTensorDescriptor(p->x);
        cudnnDestroyTensorDescriptor(p->y);
        cudnnDestroyFilterDescriptor(p->w);
        cudnnDestroyConvolutionDescriptor(p->conv);
    }
    ssl_free(st->conv);
    st->conv = NULL, st->nconv = st->capconv = 0;
    if (st->dnn) SSL_CUDNN_CHECK(cudnnDestroy(st->dnn));
    st->dnn = NULL;
}
