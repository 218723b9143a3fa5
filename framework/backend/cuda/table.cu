/* The CUDA op table, spelled out in backend.h's order (designated initialisers in C++ must follow
 * it). ssl_cuda_missing_ops() names any op left NULL, and registry.c refuses a partial table, so
 * nothing runs on a partial backend. */
#include "framework/backend/cuda/cuda_impl.cuh"

#include <stddef.h>
#include <string.h>

static const ssl_backend cuda_backend = {
    .name = "cuda",
    .host_memory = 0,
    .device_count = ssl_cuda_device_count,
    .select_device = ssl_cuda_select_device,
#ifdef SSL_HAVE_NCCL
    .dev_comm_create = ssl_nccl_create,
#else /* named anyway: C++ warns of a member left out of designated initialisers (-Wextra) */
    .dev_comm_create = NULL,
#endif
    .alloc = ssl_cuda_alloc,
    .free = ssl_cuda_free,
    .upload = ssl_cuda_upload,
    .download = ssl_cuda_download,
    .host_alloc = ssl_cuda_host_alloc,
    .host_free = ssl_cuda_host_free,
    .upload_async = ssl_cuda_upload_async,
    .upload_ahead = ssl_cuda_upload_ahead,
    .upload_join = ssl_cuda_upload_join,
    .sync = ssl_cuda_sync,
    .timing_mark = ssl_cuda_timing_mark,
    .timing_seconds = ssl_cuda_timing_seconds,
    .timing_reset = ssl_cuda_timing_reset,
    .ctx_init = ssl_cuda_ctx_init,
    .ctx_free = ssl_cuda_ctx_free,
    .gemm = ssl_cuda_mp_gemm,
    .gemm_batched = ssl_cuda_mp_gemm_batched,
    .gemm_batched2 = ssl_cuda_mp_gemm_batched2,
    .gemm_batched2_bf16 = ssl_cuda_mp_gemm_batched2_bf16,
    .conv2d_fwd = ssl_cuda_conv2d_fwd,
    .conv2d_bwd_data = ssl_cuda_conv2d_bwd_data,
    .conv2d_bwd_filter = ssl_cuda_conv2d_bwd_filter,
    .conv2d_fwd_bf16 = ssl_cuda_conv2d_fwd_bf16,
    .conv2d_bwd_filter_bf16 = ssl_cuda_conv2d_bwd_filter_bf16,
    .fill = ssl_cuda_fill,
    .copy = ssl_cuda_copy,
    .cast_f32_bf16 = ssl_cuda_cast_f32_bf16,
    .cast_bf16_f32 = ssl_cuda_cast_bf16_f32,
    .scale = ssl_cuda_scale,
    .axpby = ssl_cuda_axpby,
    .axpby_rows = ssl_cuda_axpby_rows,
    .add = ssl_cuda_add,
    .mul = ssl_cuda_mul,
    .relu_fwd = ssl_cuda_relu_fwd,
    .relu_bwd = ssl_cuda_relu_bwd,
    .relu_bwd_bf16 = ssl_cuda_relu_bwd_bf16,
    .gelu_fwd = ssl_cuda_gelu_fwd,
    .gelu_bwd = ssl_cuda_gelu_bwd,
    .bias_add = ssl_cuda_bias_add,
    .bias_grad = ssl_cuda_bias_grad,
    .bn_stats = ssl_cuda_bn_stats,
    .bn_apply = ssl_cuda_bn_apply,
    .bn_stats_bf16 = ssl_cuda_bn_stats_bf16,
    .bn_apply_bf16 = ssl_cuda_bn_apply_bf16,
    .bn_bwd_stats = ssl_cuda_bn_bwd_stats,
    .bn_bwd_data = ssl_cuda_bn_bwd_data,
    .bn_bwd_stats_bf16 = ssl_cuda_bn_bwd_stats_bf16,
    .bn_bwd_data_bf16 = ssl_cuda_bn_bwd_data_bf16,
    .bn_finalize = ssl_cuda_bn_finalize,
    .bn_param_grads = ssl_cuda_bn_param_grads,
    .maxpool_fwd = ssl_cuda_maxpool_fwd,
    .maxpool_bwd = ssl_cuda_maxpool_bwd,
    .avgpool_fwd = ssl_cuda_avgpool_fwd,
    .avgpool_bwd = ssl_cuda_avgpool_bwd,
    .layernorm_fwd = ssl_cuda_layernorm_fwd,
    .layernorm_bwd = ssl_cuda_layernorm_bwd,
    .softmax_fwd = ssl_cuda_softmax_fwd,
    .softmax_bwd = ssl_cuda_softmax_bwd,
    .log_softmax_fwd = ssl_cuda_log_softmax_fwd,
    .log_softmax_bwd = ssl_cuda_log_softmax_bwd,
    .l2norm_fwd = ssl_cuda_l2norm_fwd,
    .l2norm_bwd = ssl_cuda_l2norm_bwd,
    .ntxent_rows = ssl_cuda_ntxent_rows,
    .row_max = ssl_cuda_row_max,
    .row_sumexp = ssl_cuda_row_sumexp,
    .softmax_apply = ssl_cuda_softmax_apply,
    .dino_xent_rows = ssl_cuda_dino_xent_rows,
    .mae_loss_rows = ssl_cuda_mae_loss_rows,
    .copy2d = ssl_cuda_copy2d,
    .add2d = ssl_cuda_add2d,
    .gather_rows = ssl_cuda_gather_rows,
    .scatter_add_rows = ssl_cuda_scatter_add_rows,
    .patchify = ssl_cuda_patchify,
    .unpatchify = ssl_cuda_unpatchify,
    .patchify_hwc = ssl_cuda_patchify_hwc,
    .resize_bicubic_fwd = ssl_cuda_resize_bicubic_fwd,
    .resize_bicubic_bwd = ssl_cuda_resize_bicubic_bwd,
    .sumsq = ssl_cuda_sumsq,
    .sumsq_segments = ssl_cuda_sumsq_segments,
    .dot = ssl_cuda_dot,
    .sum = ssl_cuda_sum,
    .xlogx_sum = ssl_cuda_xlogx_sum,
    .sgd_update = ssl_cuda_sgd_update,
    .adam_direction = ssl_cuda_adam_direction,
    .sgd_update_multi = ssl_cuda_sgd_update_multi,
    .adam_direction_multi = ssl_cuda_adam_direction_multi,
    .axpby_multi = ssl_cuda_axpby_multi,
    .augment = ssl_cuda_augment,
};

/* Every op of backend.h by name. The static_assert below ties the list to the struct: an op added
 * to backend.h without a line here fails the build instead of escaping the completeness check. */
#define SSL_BACKEND_OPS(X) \
    X(alloc) \
    X(free) \
    X(upload) \
    X(download) \
    X(host_alloc) \
    X(host_free) \
    X(upload_async) \
    X(upload_ahead) \
    X(upload_join) \
    X(sync) \
    X(timing_mark) \
    X(timing_seconds) \
    X(timing_reset) \
    X(ctx_init) \
    X(ctx_free) \
    X(gemm) \
    X(gemm_batched) \
    X(gemm_batched2) \
    X(gemm_batched2_bf16) \
    X(conv2d_fwd) \
    X(conv2d_bwd_data) \
    X(conv2d_bwd_filter) \
    X(conv2d_fwd_bf16) \
    X(conv2d_bwd_filter_bf16) \
    X(fill) \
    X(copy) \
    X(cast_f32_bf16) \
    X(cast_bf16_f32) \
    X(scale) \
    X(axpby) \
    X(axpby_rows) \
    X(add) \
    X(mul) \
    X(relu_fwd) \
    X(relu_bwd) \
    X(relu_bwd_bf16) \
    X(gelu_fwd) \
    X(gelu_bwd) \
    X(bias_add) \
    X(bias_grad) \
    X(bn_stats) \
    X(bn_apply) \
    X(bn_stats_bf16) \
    X(bn_apply_bf16) \
    X(bn_bwd_stats) \
    X(bn_bwd_data) \
    X(bn_bwd_stats_bf16) \
    X(bn_bwd_data_bf16) \
    X(bn_finalize) \
    X(bn_param_grads) \
    X(maxpool_fwd) \
    X(maxpool_bwd) \
    X(avgpool_fwd) \
    X(avgpool_bwd) \
    X(layernorm_fwd) \
    X(layernorm_bwd) \
    X(softmax_fwd) \
    X(softmax_bwd) \
    X(log_softmax_fwd) \
    X(log_softmax_bwd) \
    X(l2norm_fwd) \
    X(l2norm_bwd) \
    X(ntxent_rows) \
    X(row_max) \
    X(row_sumexp) \
    X(softmax_apply) \
    X(dino_xent_rows) \
    X(mae_loss_rows) \
    X(copy2d) \
    X(add2d) \
    X(gather_rows) \
    X(scatter_add_rows) \
    X(patchify) \
    X(unpatchify) \
    X(patchify_hwc) \
    X(resize_bicubic_fwd) \
    X(resize_bicubic_bwd) \
    X(augment) \
    X(sumsq) \
    X(sumsq_segments) \
    X(dot) \
    X(sum) \
    X(xlogx_sum) \
    X(sgd_update) \
    X(adam_direction) \
    X(sgd_update_multi) \
    X(adam_direction_multi) \
    X(axpby_multi) \

struct op_entry {
    const char *name;
    size_t offset;
};
#define OP_ENTRY(op) {#op, offsetof(ssl_backend, op)},
static const op_entry ops[] = {SSL_BACKEND_OPS(OP_ENTRY)};
#define NOPS (sizeof ops / sizeof ops[0])
static_assert(offsetof(ssl_backend, alloc) + NOPS * sizeof(void (*)(void)) == sizeof(ssl_backend),
              "backend.h gained or lost an op: update SSL_BACKEND_OPS in backend/cuda/table.cu");

extern "C" const ssl_backend *ssl_backend_cuda(void) { return &cuda_backend; }

extern "C" int ssl_cuda_missing_ops(const char **names, int max)
{
    int count = 0;
    for (size_t k = 0; k < NOPS; k++) {
        void (*fn)(void);
        memcpy(&fn, (const char *)&cuda_backend + ops[k].offset, sizeof fn);
        if (fn) continue;
        if (names && count < max) names[count] = ops[k].name;
        count++;
    }
    return count;
}
