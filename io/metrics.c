/* metrics.jsonl writer (see metrics.h). */
#include "io/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

/* The "step" value of a record, or -1 when it has none (a run header). */
static long long record_step(const char *line)
{
    const char *k = strstr(line, "\"step\":");
    return k ? strtoll(k + 7, NULL, 10) : -1;
}

/* Rewrite path without the step records beyond `upto`, through a temporary file and a rename so a
 * crash here cannot lose the history that is kept. Nothing is written when nothing is cut (the
 * usual resume: the run was stopped right after its checkpoint). */
static int cut_after(const char *path, long long upto)
{
    FILE *in = fopen(path, "r");
    if (!in) return errno == ENOENT ? 0 : -1;
    char tmp[4200], line[8192];
    int cut = 0;
    while (!cut && fgets(line, sizeof line, in)) cut = record_step(line) > upto;
    if (!cut) {
        fclose(in);
        return 0;
    }
    rewind(in);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return -1;
    }
    while (fgets(line, sizeof line, in))
        if (record_step(line) <= upto) fputs(line, out);
    fclose(in);
    int bad = fclose(out) != 0 || rename(tmp, path) != 0;
    if (bad) unlink(tmp);
    return bad ? -1 : 0;
}

int ssl_metrics_open(ssl_metrics *m, const char *path, long long resume_step)
{
    memset(m, 0, sizeof *m);
    if (strlen(path) > 4096 || cut_after(path, resume_step)) return -1;
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

void ssl_metrics_time(ssl_metrics *m, const char *k, double v)
{
    key(m, k);
    put(m, "%.3f", v);
}

/* One character of a JSON string as it is written (quote, backslash and controls escaped). */
static const char *json_char(char ch, char buf[8])
{
    if (ch == '"' || ch == '\\') snprintf(buf, 8, "\\%c", ch);
    else if ((unsigned char)ch < 0x20) snprintf(buf, 8, "\\u%04x", (unsigned)(unsigned char)ch);
    else buf[0] = ch, buf[1] = 0;
    return buf;
}

void ssl_json_put_str(FILE *fp, const char *v)
{
    char b[8];
    fputc('"', fp);
    for (const char *s = v; *s; s++) fputs(json_char(*s, b), fp);
    fputc('"', fp);
}

void ssl_metrics_str(ssl_metrics *m, const char *k, const char *v)
{
    char b[8];
    key(m, k);
    put(m, "\"");
    for (const char *s = v; *s; s++) put(m, "%s", json_char(*s, b));
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
