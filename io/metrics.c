/* metrics.jsonl writer (see metrics.h). */
#include "io/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

int ssl_metrics_open(ssl_metrics *m, const char *path)
{
    memset(m, 0, sizeof *m);
    m->fp = fopen(path, "a");
    return m->fp ? 0 : -1;
}

void ssl_metrics_close(ssl_metrics *m)
{
    if (m->fp) fclose(m->fp);
    m->fp = NULL;
}

static void put(ssl_metrics *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int room = (int)sizeof m->line - m->len;
    int n = vsnprintf(m->line + m->len, (size_t)(room > 0 ? room : 0), fmt, ap);
    va_end(ap);
    if (n > 0) m->len += n < room ? n : room - 1;
}

static void key(ssl_metrics *m, const char *k) { put(m, "%s\"%s\":", m->len > 1 ? "," : "", k); }

void ssl_metrics_begin(ssl_metrics *m)
{
    m->len = 0;
    put(m, "{");
}

void ssl_metrics_int(ssl_metrics *m, const char *k, long long v)
{
    key(m, k);
    put(m, "%lld", v);
}

void ssl_metrics_num(ssl_metrics *m, const char *k, double v)
{
    key(m, k);
    if (isfinite(v)) put(m, "%.9g", v);
    else put(m, "null");
}

void ssl_metrics_str(ssl_metrics *m, const char *k, const char *v)
{
    key(m, k);
    put(m, "\"");
    for (const char *s = v; *s; s++) {
        if (*s == '"' || *s == '\\') put(m, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) put(m, "\\u%04x", (unsigned)(unsigned char)*s);
        else put(m, "%c", *s);
    }
    put(m, "\"");
}

void ssl_metrics_end(ssl_metrics *m)
{
    put(m, "}");
    if (m->fp) {
        fprintf(m->fp, "%s\n", m->line);
        fflush(m->fp);
    }
}
