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
