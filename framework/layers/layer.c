/* Shared layer helpers. */
#include "framework/layers/layer.h"

#include "framework/core/check.h"

#include <stdio.h>

void ssl_layer_name(char *out, const char *prefix, const char *suffix)
{
    int n = (prefix && prefix[0]) ? snprintf(out, 112, "%s.%s", prefix, suffix)
                                  : snprintf(out, 112, "%s", suffix);
    SSL_ASSERTF(n > 0 && n < 112, "parameter name too long: %s.%s", prefix, suffix);
}

void ssl_relu_backward(ssl_ctx *c, ssl_tensor y, ssl_tensor dy, ssl_tensor dx)
{
    const size_t n = ssl_tensor_numel(dy);
    SSL_ASSERT(ssl_tensor_numel(y) == n && ssl_tensor_numel(dx) == n);
    if (y.dtype == SSL_T_BF16) c->be->relu_bwd_bf16(c, n, y.bf16, dy.data, dx.data);
    else c->be->relu_bwd(c, n, y.data, dy.data, dx.data);
}
