/* metrics.jsonl: one JSON object per logged step, appended and flushed so a crash loses at most the
 * line being written and `tail -f` shows progress. Only rank 0 opens one. */
#ifndef SSL_IO_METRICS_H
#define SSL_IO_METRICS_H

#include <stdio.h>

typedef struct {
    FILE *fp;
    char line[4096];
    int len;
} ssl_metrics;

/* Open path for appending, first dropping every record of a step after resume_step (a run resumed
 * from step S, perhaps an older checkpoint than the last logged step, continues one history in
 * which each step appears once; records without a step, such as run headers, stay). Returns 0, or
 * -1 with errno set. */
int ssl_metrics_open(ssl_metrics *m, const char *path, long long resume_step);
void ssl_metrics_close(ssl_metrics *m);
/* Build one record: begin, then fields, then end (writes the line). */
void ssl_metrics_begin(ssl_metrics *m);
void ssl_metrics_int(ssl_metrics *m, const char *key, long long v);
void ssl_metrics_num(ssl_metrics *m, const char *key, double v);   /* NaN/inf written as null */
/* v as a JSON string (quoted, escaped) to fp: for the JSON files written whole (eval, finetune). */
void ssl_json_put_str(FILE *fp, const char *v);
void ssl_metrics_str(ssl_metrics *m, const char *key, const char *v);
void ssl_metrics_time(ssl_metrics *m, const char *key, double unix_s); /* Unix time, millisecond digits */
void ssl_metrics_end(ssl_metrics *m);

#endif
